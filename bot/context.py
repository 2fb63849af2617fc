"""What a handler gets besides the event: typed, and free of anything platform-specific."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Config
from bot.events import Event
from storage.media import MediaStore
from storage.models import Member


@dataclass
class JobContext:
    """The scheduled run a ``schedule`` event stands for, set by the dispatcher before its handler."""

    name: str
    period: str
    as_of: dt.datetime  # the scheduled instant (never later than the clock's now)
    notes: list[str] = field(default_factory=list)

    def report(self, summary: str) -> None:
        """Add a line to the run's summary (kept in its JobRun row, printed by the CLI)."""
        self.notes.append(summary)


@dataclass
class Ctx:
    session: AsyncSession
    clock: Clock
    config: Config
    event: Event
    member: Member | None
    media: MediaStore
    inbox_id: int | None = None
    # Set by the dispatcher: lets a capability tell the others that a touch was logged.
    hooks: Any = None
    # Set by the dispatcher for scheduled runs.
    job: JobContext | None = None

    @property
    def tz(self) -> ZoneInfo:
        return self.config.tz

    def now(self) -> dt.datetime:
        return self.clock.now()

    def today(self) -> dt.date:
        return self.clock.now().astimezone(self.tz).date()

    @property
    def run(self) -> JobContext:
        """The scheduled run; the dispatcher sets it for every ``schedule`` event."""
        assert self.job is not None, "handler needs a scheduled run"
        return self.job

    @property
    def acting(self) -> Member:
        """The acting member; the dispatcher guarantees one for non-scheduled events."""
        assert self.member is not None, "handler needs a member"
        return self.member
