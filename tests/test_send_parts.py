"""A multi-part outbox item whose later part fails sends only the rest when it is retried."""

from __future__ import annotations

import pytest

from bot.platforms.shared.parts import PartProgress


class Flaky:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.fail_next = {"b"}

    def part(self, name: str):  # type: ignore[no-untyped-def]
        async def send() -> str | None:
            if name in self.fail_next:
                self.fail_next.discard(name)
                raise RuntimeError(f"{name} refused")
            self.sent.append(name)
            return f"r-{name}"
        return send


async def test_a_retry_sends_only_the_parts_not_accepted_before():
    platform, progress = Flaky(), PartProgress()
    parts = [platform.part(name) for name in "abc"]
    with pytest.raises(RuntimeError):
        await progress.send_remaining(7, parts)
    assert await progress.send_remaining(7, parts) == "r-b,r-c"
    assert platform.sent == ["a", "b", "c"]
    # Done: the item is forgotten, so a new delivery of it would start from the first part.
    assert await progress.send_remaining(7, [platform.part("d")]) == "r-d"


async def test_only_the_most_recent_items_are_remembered():
    platform, progress = Flaky(), PartProgress(remembered=2)
    platform.fail_next = {"x2", "y2", "z2"}
    for item in ("x", "y", "z"):
        with pytest.raises(RuntimeError):
            await progress.send_remaining(ord(item), [platform.part(f"{item}1"), platform.part(f"{item}2")])
    platform.sent.clear()
    await progress.send_remaining(ord("x"), [platform.part("x1"), platform.part("x2")])  # forgotten: from the start
    await progress.send_remaining(ord("z"), [platform.part("z1"), platform.part("z2")])
    assert platform.sent == ["x1", "x2", "z2"]
