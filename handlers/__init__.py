"""What the bot does: one router per capability, assembled here explicitly."""

from __future__ import annotations

from bot.dispatcher import Dispatcher


def build_dispatcher() -> Dispatcher:
    from handlers import customers, evidence, today, touches
    from handlers import help as help_module

    return Dispatcher(
        [
            help_module.router,
            today.router,
            customers.router,
            evidence.router,
            touches.router,
        ]
    )
