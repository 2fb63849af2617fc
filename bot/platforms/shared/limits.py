"""A per-target sliding-window limit kept in process, for hard platform ceilings.

The outbox already spaces items per target from what the database says was sent (shared by
replicas). One outbox item may still become several platform messages (a long text in parts, an
image and its caption), and some targets punish a single excess harshly (a DingTalk custom robot
is throttled for ten minutes after its 21st message in a minute). ``WindowLimiter.reserve`` is
asked before each such message: it answers how long to wait, or records the send and answers 0.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

_MAX_TARGETS = 10_000


class WindowLimiter:
    def __init__(self, count: int, per_seconds: float, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        if count <= 0 or per_seconds <= 0:
            raise ValueError("a window needs a positive count and length")
        self.count = count
        self.per_seconds = per_seconds
        self._monotonic = monotonic
        self._sent: OrderedDict[str, deque[float]] = OrderedDict()

    def reserve(self, target: str) -> float:
        """0 and the send recorded, or the seconds to wait before ``target`` may get another."""
        now = self._monotonic()
        sent = self._sent.get(target)
        if sent is None:
            sent = self._sent[target] = deque()
            while len(self._sent) > _MAX_TARGETS:
                self._sent.popitem(last=False)
        self._sent.move_to_end(target)
        while sent and now - sent[0] >= self.per_seconds:
            sent.popleft()
        if len(sent) >= self.count:
            return sent[0] + self.per_seconds - now
        sent.append(now)
        return 0.0

    def release(self, target: str) -> None:
        """Give back the latest reservation (the message was not sent after all)."""
        sent = self._sent.get(target)
        if sent:
            sent.pop()
