"""``pacebot jobs list | run NAME [--now ISO] [--force]``: see the jobs, or run one period as of an instant.

``jobs run`` works the same whether or not a service (one or several ``pacebot serve`` replicas)
runs on the database. It stores the period's ``schedule`` event in the inbox, like a timer does,
and then follows that item *in the database*: when its lease is free this process takes it and
processes it (claims are atomic, so a running service and this command never both run it); when
another process holds it, it waits for that process's outcome. The same goes for the run's
messages. The ``--now`` instant travels with the event, so the run is evaluated as of it wherever
it is processed.

Exit codes: 0 done (or the period already ran: nothing is run twice without ``--force``),
1 the run failed (with the reason), 2 bad usage, 3 still queued or running elsewhere when
``--timeout`` ran out — not failed; ``pacebot jobs list`` shows when it finished.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sys
from dataclasses import dataclass

from bot.bootstrap import build_runtime
from bot.config import Config
from bot.runtime import Runtime
from bot.scheduler import JOBS, JOBS_BY_NAME, PLATFORM, accept_job, period_of
from domain.enums import InboxStatus, OutboxStatus
from storage import job_runs

EXIT_DONE = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_STILL_QUEUED = 3
DEFAULT_TIMEOUT_SECONDS = 120.0
_POLL_SECONDS = 0.2

log = logging.getLogger(__name__)


async def run_cli(
    config: Config, action: str, name: str | None = None, now: str | None = None, *,
    force: bool = False, timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> int:
    instant: dt.datetime | None = None
    if now:
        try:
            instant = dt.datetime.fromisoformat(now)
        except ValueError:
            print(f"pacebot: --now {now!r} is not an ISO 8601 date-time", file=sys.stderr)
            return EXIT_USAGE
        if instant.tzinfo is None:
            print("pacebot: --now needs a time zone offset, e.g. 2026-12-01T09:00:00+08:00", file=sys.stderr)
            return EXIT_USAGE
    if timeout <= 0:
        print("pacebot: --timeout must be a positive number of seconds", file=sys.stderr)
        return EXIT_USAGE
    runtime = await build_runtime(config)
    try:
        handled = set(runtime.dispatcher.job_names)
        if action == "list":
            return await _list(runtime, handled, instant)
        assert name is not None
        if name not in JOBS_BY_NAME or name not in handled:
            known = ", ".join(spec.name for spec in JOBS if spec.name in handled)
            reason = "has no handler yet" if name in JOBS_BY_NAME else "is not a job"
            print(f"pacebot: {name!r} {reason}; jobs: {known}", file=sys.stderr)
            return EXIT_USAGE
        # Platforms only (to send the run's messages): no workers, so this process takes nothing
        # from the queues but the run it stores and the messages that run queues.
        await runtime.start(workers=False)
        return await run_job(runtime, name, now=instant, force=force, timeout=timeout)
    finally:
        await runtime.stop()


async def _list(runtime: Runtime, handled: set[str], instant: dt.datetime | None) -> int:
    async with runtime.sessions() as session:
        runs = await job_runs.latest_runs(session)
        pending = await job_runs.pending_runs(session, PLATFORM)
    tz = runtime.config.tz
    now = instant or runtime.clock.now()
    for spec in JOBS:
        schedule = spec.schedule(runtime.config)
        run = runs.get(spec.name)
        last = f"last run {run.period} ({run.summary})" if run else "never run"
        state = "" if spec.name in handled else " [no handler yet]"
        due = period_of(spec, runtime.config, now).fire.astimezone(tz).isoformat(timespec="minutes")
        print(f"{spec.name:<20} {schedule.describe():<18} {spec.about}{state}\n{'':<20} latest period {due}; {last}")
        for queued in (p for p in pending if p.job == spec.name):
            where = "queued"
            if queued.attempts:
                where = f"attempt {queued.attempts}" + (f" failed: {queued.error}; retrying" if queued.error else "")
            print(f"{'':<20} not finished yet: period {queued.period}, inbox item {queued.inbox_id} ({where})")
    return EXIT_DONE


def _say(text: str, *, error: bool = False) -> None:
    print(text, file=sys.stderr if error else sys.stdout, flush=True)


async def run_job(
    runtime: Runtime, name: str, *, now: dt.datetime | None = None, force: bool = False,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> int:
    """Run ``name``'s period at ``now`` (default: the current one) once, here or by a running service."""
    tz = runtime.config.tz
    period = period_of(JOBS_BY_NAME[name], runtime.config, now or runtime.clock.now())
    evaluated = (now or period.fire).astimezone(tz).isoformat()
    label = f"job {name} period {period.key} (as of {evaluated})"
    if not force:
        async with runtime.sessions() as session:
            ran = await job_runs.run_of(session, name, period.key)
        if ran is not None:
            _say(f"{label}: already ran, finished {_local(ran.finished_at, tz)}: {ran.summary}")
            _say("  not run again; add --force to run the period again")
            return EXIT_DONE
    accepted, _ = await accept_job(runtime, name, replay=force, now=now)
    if accepted.is_new:
        _say(f"{label}: queued as inbox item {accepted.inbox_id}; waiting up to {timeout:g} s for it to be "
             "processed (here, or by a running service)")
    else:
        _say(f"{label}: already queued as inbox item {accepted.inbox_id} (by the service's timer or an earlier "
             f"run); waiting up to {timeout:g} s for it")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    state = await _follow_run(runtime, accepted.inbox_id, deadline)
    if state is None or state.status is InboxStatus.PENDING:
        return _still_queued(label, accepted.inbox_id, state)
    if state.status is InboxStatus.FAILED:
        _say(f"{label}: failed after {state.attempts} attempt(s): {state.error}", error=True)
        if not accepted.is_new and not force:
            _say("  add --force to run the period again", error=True)
        return EXIT_FAILED
    async with runtime.sessions() as session:
        run = await job_runs.run_of(session, name, period.key)
    _say(f"{label}: done")
    if run is not None:
        _say(f"  {run.summary}")
    delivery = await _follow_replies(runtime, accepted.inbox_id, deadline)
    _say(f"  messages: {delivery.sent} sent, {delivery.waiting} waiting for retry, {delivery.dead} failed"
         + (f", {delivery.in_flight} still being sent" if delivery.in_flight else ""))
    return EXIT_DONE


def _local(instant: dt.datetime | None, tz: dt.tzinfo) -> str:
    return instant.astimezone(tz).isoformat(timespec="seconds") if instant else "?"


def _still_queued(label: str, inbox_id: int, state: job_runs.QueuedRun | None) -> int:
    where = "being processed or waiting for a retry" if state and state.attempts else "queued"
    reason = f" (last attempt: {state.error})" if state and state.error else ""
    _say(f"{label}: still {where} as inbox item {inbox_id}{reason} — not failed. A running service finishes it; "
         "check with `pacebot jobs list`, or run this command again without --force: it waits for this same run "
         "(or takes it when no service runs) and never runs the period twice.", error=True)
    return EXIT_STILL_QUEUED


async def _follow_run(runtime: Runtime, inbox_id: int, deadline: float) -> job_runs.QueuedRun | None:
    """Until the item is finished or ``deadline``: take it whenever its lease is free, else watch it."""
    loop = asyncio.get_running_loop()
    said: tuple[int, str | None] | None = None
    while True:
        async with runtime.sessions() as session:
            state = await job_runs.queued_run(session, inbox_id)
        if state is None or state.status is not InboxStatus.PENDING:
            return state
        free = state.lease_until is None or state.lease_until <= runtime.clock.now()
        if free and loop.time() < deadline:
            try:
                await runtime.inbox.process(inbox_id)  # does nothing when another process claimed it first
                continue
            except Exception as exc:  # the database is busy or away: look again shortly
                log.warning("could not take inbox item %s here: %s", inbox_id, exc)
        if said != (state.attempts, state.error) and state.attempts:
            said = (state.attempts, state.error)
            if state.error:
                _say(f"  attempt {state.attempts} failed ({state.error}); trying again at "
                     f"{_local(state.lease_until, runtime.config.tz)}")
            else:
                _say(f"  being processed by another process (attempt {state.attempts})")
        if loop.time() >= deadline:
            return state
        await asyncio.sleep(_POLL_SECONDS)


@dataclass(frozen=True)
class Delivery:
    sent: int = 0
    waiting: int = 0  # left for a retry or deferred (a running service sends them)
    dead: int = 0
    in_flight: int = 0  # not tried yet, or being sent, when the deadline came


async def _follow_replies(runtime: Runtime, inbox_id: int, deadline: float) -> Delivery:
    """Send the run's untried messages (each is claimed: one sender only), or wait for whoever sends them."""
    loop = asyncio.get_running_loop()
    while True:
        async with runtime.sessions() as session:
            replies = await job_runs.replies_of(session, inbox_id)
        now = runtime.clock.now()
        # Untried and due: a message deferred (a target's rate limit) is left to the service.
        untried = [r for r in replies if r.status is OutboxStatus.PENDING and r.attempts == 0 and r.next_attempt_at <= now]
        sending = [r for r in replies if r.status is OutboxStatus.SENDING]
        ours = untried + [
            r for r in sending if r.lease_until is not None and r.lease_until < now
        ]
        for reply in ours:
            if loop.time() >= deadline:
                break
            await runtime.outbox.deliver(reply.id)
        if ours and loop.time() < deadline:
            continue
        if not (untried or sending) or loop.time() >= deadline:
            count = {status: sum(r.status is status for r in replies) for status in OutboxStatus}
            waiting = count[OutboxStatus.PENDING] - len(untried)
            return Delivery(count[OutboxStatus.SENT], waiting, count[OutboxStatus.DEAD], len(untried) + len(sending))
        await asyncio.sleep(_POLL_SECONDS)

