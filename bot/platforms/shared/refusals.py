"""Keeping a flood of refused requests from taking the event loop away from genuine callbacks.

Every refusal is already cheap (judged from the query string or headers where possible, the body
cut short), but a client that sends refusable requests as fast as the answers come still gets
thousands of answers a second, each of them event-loop time. ``RefusalGuard`` prices a refusal by
the address it came from: each address may be refused ``burst`` times at once and then
``per_second`` times a second at full speed; beyond that its refusals are answered only after
``hold_seconds`` (a timer, not work), which slows a client that waits for its answers to one
request a second per connection. At most a quarter of the process's open-file limit (and 1024)
refusals wait at a time, across all routes (``HeldBudget``); a refusal beyond that is answered at
once and its connection closed, so holding never takes the descriptors new connections need.

Only refusals of requests not (yet) authenticated are priced: a request that passed its signature
check (``mark_signed``) never waits and never counts, even if it is refused later (undecryptable,
unknown customer …), so a flood from the address WeCom's callbacks come from (or from the reverse
proxy in front of every callback) does not slow them. A refusal that leaves more than
``DRAIN_LIMIT`` bytes of its body unread also closes its connection, rather than the server
reading the rest to keep it alive. Whether to answer, hold or close is decided after the
refusal is counted and logged (``bot.observability``), so the metrics see every refused request.
"""

from __future__ import annotations

import asyncio
import enum
import resource
import time
from collections.abc import Callable

from aiohttp import web
from prometheus_client import Counter

from bot.observability import METRICS, refusals

DRAIN_LIMIT = 65_536
HELD = Counter("pacebot_refusals_held", "Refusals answered late because their address was refused too often",
               ["scope"], registry=METRICS.registry)
SIGNED = web.RequestKey("pacebot_signed", bool)


def mark_signed(request: web.Request) -> None:
    """The request passed its signature (or secret) check: its refusals, if any, are never held."""
    request[SIGNED] = True


class Decision(enum.Enum):
    ANSWER = "answer"  # at once
    HOLD = "hold"  # after hold_seconds
    CLOSE = "close"  # at once, and the connection closed: as many are held as may be


def _default_max_held() -> int:
    """A quarter of the open files this process may have, at most 1024: holding never starves
    accept() of file descriptors."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(16, min(1024, soft // 4)) if soft != resource.RLIM_INFINITY else 1024


class HeldBudget:
    """How many refusals may wait at once, shared by every route's guard in the process."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit if limit is not None else _default_max_held()
        self.waiting = 0


SHARED_BUDGET = HeldBudget()


class RefusalGuard:
    # Addresses remembered at most; beyond it those whose allowance is full again are forgotten.
    MAX_ADDRESSES = 4096

    def __init__(self, scope: str, *, burst: int = 20, per_second: float = 5.0, hold_seconds: float = 1.0,
                 budget: HeldBudget = SHARED_BUDGET, clock: Callable[[], float] = time.monotonic) -> None:
        self.scope = scope
        self.burst = burst
        self.per_second = per_second
        self.hold_seconds = hold_seconds
        self.budget = budget
        self.clock = clock
        self._allowance: dict[str, tuple[float, float]] = {}  # address → (refusals left, as of)
        self._held: dict[str, int] = {}

    def decide(self, address: str) -> Decision:
        """How to answer one more refusal of ``address`` (and take it from its allowance)."""
        now = self.clock()
        left, since = self._allowance.get(address, (float(self.burst), now))
        left = min(float(self.burst), left + (now - since) * self.per_second)
        if left >= 1.0:
            self._remember(address, left - 1.0, now)
            return Decision.ANSWER
        self._remember(address, left, now)
        return Decision.CLOSE if self.budget.waiting >= self.budget.limit else Decision.HOLD

    def held(self, address: str) -> int:
        return self._held.get(address, 0)

    async def settle(self, request: web.Request, refusal: web.StreamResponse) -> None:
        """Before ``refusal`` is sent: return at once, after the hold, or at once with the
        connection marked for closing."""
        if not request.content.is_eof() and (request.content_length or DRAIN_LIMIT + 1) > DRAIN_LIMIT:
            refusal.force_close()
        if request.get(SIGNED):
            return
        address = request.remote or ""
        decision = self.decide(address)
        if decision is Decision.ANSWER:
            return
        if decision is Decision.CLOSE:
            refusal.force_close()
            return
        refusals.warning(self.scope, "held", "%s refused more than %d times at once from %s: its refusals are "
                         "answered after %.1f s", self.scope, self.burst, address, self.hold_seconds)
        HELD.labels(scope=self.scope).inc()
        self._held[address] = self._held.get(address, 0) + 1
        self.budget.waiting += 1
        try:
            await asyncio.sleep(self.hold_seconds)
        finally:
            self.budget.waiting -= 1
            if (count := self._held[address] - 1) > 0:
                self._held[address] = count
            else:
                del self._held[address]

    def _remember(self, address: str, left: float, now: float) -> None:
        self._allowance[address] = (left, now)
        if len(self._allowance) > self.MAX_ADDRESSES:
            # Forget the addresses whose allowance is full again; if most are still spending theirs
            # (requests from very many addresses), forget them all rather than prune on every request.
            kept = {a: (n, t) for a, (n, t) in self._allowance.items() if n + (now - t) * self.per_second < self.burst}
            if len(kept) > self.MAX_ADDRESSES // 2:
                kept = {}
            kept[address] = (left, now)
            self._allowance = kept
