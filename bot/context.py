"""What a handler gets besides the event: typed, and free of anything platform-specific.

The dispatcher fills in what it resolved before calling a handler: the member's dialogue in this
conversation (``dialogue``), the clicked card and the options chosen on it (``card``, ``chosen``),
the domain hooks, the registered commands and, for scheduled runs, the run (``job``). Handlers
use these and never load them again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Config
from bot.events import Event
from bot.replies import CardUpdate, Reply
from cards.model import Card
from domain.enums import Role
from storage.media import MediaStore
from storage.models import Customer, Dialogue, Member, Touch


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


# Domain hooks: other capabilities react to a touch being logged, becoming effective or undone.
TouchHook = Callable[["Ctx", Touch, Customer], Awaitable[list[Reply]]]


@dataclass
class DomainHooks:
    after_touch: list[TouchHook] = field(default_factory=list)
    after_effective: list[TouchHook] = field(default_factory=list)
    after_undo: list[TouchHook] = field(default_factory=list)

    async def touch_logged(self, ctx: Ctx, touch: Touch, customer: Customer) -> list[Reply]:
        return [reply for hook in self.after_touch for reply in await hook(ctx, touch, customer)]

    async def touch_effective(self, ctx: Ctx, touch: Touch, customer: Customer) -> list[Reply]:
        return [reply for hook in self.after_effective for reply in await hook(ctx, touch, customer)]

    async def touch_undone(self, ctx: Ctx, touch: Touch, customer: Customer) -> list[Reply]:
        return [reply for hook in self.after_undo for reply in await hook(ctx, touch, customer)]


@dataclass(frozen=True)
class CommandInfo:
    """What a registered slash command is: its names, who may use it, and what /帮助 says of it."""

    names: tuple[str, ...]
    roles: frozenset[Role] | None  # None: everyone
    summary: str
    usage: str = ""  # the arguments, as /帮助 shows them (e.g. "客户 [目标阶段]")

    def allows(self, role: Role) -> bool:
        return self.roles is None or role in self.roles


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
    hooks: DomainHooks = field(default_factory=DomainHooks)
    # Set by the dispatcher: every registered command (for /帮助).
    commands: tuple[CommandInfo, ...] = ()
    # Set by the dispatcher for scheduled runs.
    job: JobContext | None = None
    # Set by the dispatcher for member events: the member's live dialogue in this conversation.
    # ``handlers.dialogue`` keeps it current when a handler saves or ends a dialogue.
    dialogue: Dialogue | None = None
    # True once ``dialogue`` is known to be the member's dialogue as stored (the dispatcher loaded
    # it): ending a dialogue that is known not to exist then costs no statement.
    dialogue_loaded: bool = False
    # Set by the inbox when it learnt, with the sender, whether the sender has a dialogue row in
    # this conversation (same transaction, nothing written since): None when not known. The
    # dispatcher then needs no statement of its own to find that there is none.
    dialogue_stored: bool | None = None
    # Set by the inbox: the handler runs without a savepoint of its own, and a ``UserError``
    # reaches the inbox, which rolls the whole transaction back (see ``Dispatcher.dispatch``).
    no_savepoint: bool = False
    # Set by the dispatcher for card actions: the clicked card (checked: it exists, is the
    # member's and is still open) and the options chosen on it (choice cards).
    card: Card | None = None
    chosen: tuple[str, ...] = ()

    @property
    def tz(self) -> ZoneInfo:
        return self.config.tz

    def now(self) -> dt.datetime:
        return self.clock.now()

    def today(self) -> dt.date:
        return self.clock.now().astimezone(self.tz).date()

    def local_date(self, instant: dt.datetime) -> dt.date:
        """The local calendar day of ``instant`` (in the configured time zone)."""
        return instant.astimezone(self.tz).date()

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

    @property
    def clicked(self) -> Card:
        """The clicked card; the dispatcher sets it for every card action."""
        assert self.card is not None, "handler needs a clicked card"
        return self.card

    def close_card(self, note: str) -> CardUpdate:
        """The clicked card, closed: no buttons, ``note`` saying what happened."""
        return CardUpdate(self.clicked.closed(note))

