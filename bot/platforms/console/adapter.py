"""The console as a platform: delivery means "visible in the console feed"."""

from __future__ import annotations

from bot.events import MediaRef
from bot.platforms.base import MediaUnavailable, Outgoing, RateLimit
from storage.models import Member, Team


def group_address(team: Team) -> str:
    return f"team:{team.key}"


class ConsolePlatform:
    name = "console"

    def member_address(self, member: Member) -> str | None:
        return member.code

    def group_address(self, team: Team) -> str | None:
        return group_address(team)

    def rate_limits(self, target_kind: str) -> tuple[RateLimit, ...]:
        return ()

    async def deliver(self, item: Outgoing) -> str | None:
        return f"console-{item.id}"

    async def fetch_media(self, ref: MediaRef) -> bytes:
        # Console uploads are staged in the request itself; there is nothing to fetch.
        raise MediaUnavailable("console media is always staged at upload")

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
