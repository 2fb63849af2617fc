"""Outbox items sent in several parts (a long text split in two, an image then its caption …).

When a later part fails, the platform has already shown the earlier ones; the retry must send
only the rest. ``PartProgress`` remembers, per outbox item, how many parts went out — in memory
and bounded, so a process that restarts in the middle of an item sends all of it again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

Send = Callable[[], Awaitable[str | None]]  # one part: its platform receipt, if any

REMEMBERED_ITEMS = 10_000
RECEIPT_CHARS = 256


class PartProgress:
    """How many parts of each recently attempted outbox item a platform accepted."""

    def __init__(self, remembered: int = REMEMBERED_ITEMS) -> None:
        self._done: OrderedDict[int, int] = OrderedDict()
        self._remembered = remembered

    async def send_remaining(self, item_id: int, sends: Sequence[Send]) -> str | None:
        """Send the parts of ``item_id`` not accepted before, in order; the receipts joined.

        A part that raises leaves the progress so far remembered for the next attempt."""
        done = self._done.get(item_id, 0)
        receipts: list[str] = []
        for index, send in enumerate(sends):
            if index < done:
                continue
            receipt = await send()
            if receipt:
                receipts.append(receipt)
            self._remember(item_id, index + 1)
        self._done.pop(item_id, None)
        return ",".join(receipts)[:RECEIPT_CHARS] or None

    def _remember(self, item_id: int, parts: int) -> None:
        self._done[item_id] = parts
        self._done.move_to_end(item_id)
        while len(self._done) > self._remembered:
            self._done.popitem(last=False)
