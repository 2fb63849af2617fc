"""Every capability's router, listed here explicitly.

Order matters where capabilities look at the same message: slash commands and card actions are
routed by name; free text and attachments are offered to the "claims" in router order (a stage
move, a competitor sighting, a supporter's answer …) before falling back to touch logging and
evidence. The wiring (``bot.dispatcher.build_dispatcher``) assembles these into the dispatcher.
"""

from __future__ import annotations

from bot.router import Router
from handlers import (
    admin,
    alerts,
    calibration,
    competitors,
    customers,
    deadletters,
    digest,
    directory,
    escalation,
    evidence,
    feedback,
    importing,
    library_admin,
    obstacles,
    playbooks,
    resources,
    retention,
    rewards,
    stages,
    today,
    touches,
)
from handlers import help as help_module


def all_routers() -> list[Router]:
    return [
        help_module.router,
        retention.router,  # the purge job only: its place among the routers does not matter
        today.router,
        customers.router,
        stages.router,
        obstacles.router,
        escalation.router,
        resources.router,
        competitors.router,
        playbooks.router,
        rewards.router,
        alerts.router,
        feedback.router,
        admin.router,
        deadletters.router,
        importing.router,
        library_admin.router,
        directory.router,  # after every other claim: only what nothing else wants is a greeting
        evidence.router,
        touches.router,
        digest.router,
        calibration.router,
    ]
