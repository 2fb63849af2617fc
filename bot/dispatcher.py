"""Routing neutral events to handlers.

Each feature module owns a ``Router``; ``handlers.build_dispatcher`` assembles them explicitly in
one place. Order of precedence: card actions, slash commands, an open dialogue, media, text.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from bot import texts
from bot.context import Ctx
from bot.errors import UserError
from bot.events import MEDIA_KINDS, EventKind
from bot.replies import Reply, Text, ToMember
from cards.model import ActionPayload, InvalidPayload
from storage import cards as card_store
from storage import dialogues
from storage import members as member_store
from storage.models import Role

log = logging.getLogger(__name__)

Handler = Callable[[Ctx], Awaitable[list[Reply]]]
ActionHandler = Callable[[Ctx, ActionPayload], Awaitable[list[Reply]]]


@dataclass(frozen=True)
class CommandRoute:
    names: tuple[str, ...]
    handler: Handler
    roles: frozenset[Role] | None  # None: everyone
    summary: str


@dataclass(frozen=True)
class ActionRoute:
    prefix: str
    handler: ActionHandler
    closes_card: bool


@dataclass
class Router:
    name: str
    commands: list[CommandRoute] = field(default_factory=list)
    actions: list[ActionRoute] = field(default_factory=list)
    dialogue_states: dict[str, Handler] = field(default_factory=dict)
    media_handler: Handler | None = None
    text_handler: Handler | None = None
    jobs: dict[str, Handler] = field(default_factory=dict)

    def command(self, *names: str, roles: Iterable[Role] | None = None, summary: str = "") -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.commands.append(CommandRoute(names, fn, frozenset(roles) if roles else None, summary))
            return fn

        return register

    def action(self, prefix: str, *, closes_card: bool = True) -> Callable[[ActionHandler], ActionHandler]:
        def register(fn: ActionHandler) -> ActionHandler:
            self.actions.append(ActionRoute(prefix, fn, closes_card))
            return fn

        return register

    def dialogue(self, *states: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            for state in states:
                self.dialogue_states[state] = fn
            return fn

        return register

    def media(self, fn: Handler) -> Handler:
        self.media_handler = fn
        return fn

    def text(self, fn: Handler) -> Handler:
        self.text_handler = fn
        return fn

    def job(self, name: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.jobs[name] = fn
            return fn

        return register


class Dispatcher:
    def __init__(self, routers: Iterable[Router]) -> None:
        self.routers = list(routers)
        self._commands: dict[str, CommandRoute] = {}
        self._actions: dict[str, ActionRoute] = {}
        self._dialogues: dict[str, Handler] = {}
        self._jobs: dict[str, Handler] = {}
        self._media: Handler | None = None
        self._text: Handler | None = None
        for router in self.routers:
            for route in router.commands:
                for name in route.names:
                    _add_once(self._commands, name, route, "command")
            for action_route in router.actions:
                _add_once(self._actions, action_route.prefix, action_route, "action prefix")
            for state, handler in router.dialogue_states.items():
                _add_once(self._dialogues, state, handler, "dialogue state")
            for job, handler in router.jobs.items():
                _add_once(self._jobs, job, handler, "job")
            if router.media_handler:
                self._media = router.media_handler
            if router.text_handler:
                self._text = router.text_handler

    @property
    def command_routes(self) -> list[CommandRoute]:
        return [route for router in self.routers for route in router.commands]

    @property
    def job_names(self) -> list[str]:
        return sorted(self._jobs)

    async def dispatch(self, ctx: Ctx) -> list[Reply]:
        """Run the matching handler; a ``UserError`` undoes its changes and becomes the reply."""
        try:
            async with ctx.session.begin_nested():
                return await self._route(ctx)
        except UserError as exc:
            log.info("refused %s event %s: %s", ctx.event.platform, ctx.event.platform_msg_id, exc.detail)
            return [Text(exc.message)]

    async def _route(self, ctx: Ctx) -> list[Reply]:
        event = ctx.event
        if event.kind is EventKind.SCHEDULE:
            handler = self._jobs.get(event.job or "")
            if handler is None:
                raise LookupError(f"no handler for job {event.job!r}")
            return await handler(ctx)
        if ctx.member is None:
            return await self._unknown_sender(ctx)
        if event.kind is EventKind.ACTION:
            return await self._action(ctx)
        if event.kind is EventKind.ENTER:
            return [Text(texts.WELCOME.format(name=ctx.member.name))]
        if event.kind is EventKind.TEXT and event.text.strip().startswith(("/", "/")):
            return await self._command(ctx)
        key = dialogues.DialogueKey(event.platform, event.conversation, ctx.member.id)
        dialogue = await dialogues.load_dialogue(ctx.session, key)
        if dialogue is not None:
            if dialogue.expires_at <= ctx.now():
                await dialogues.clear_dialogue(ctx.session, key)
            elif event.kind is EventKind.TEXT and dialogue.state in self._dialogues:
                return await self._dialogues[dialogue.state](ctx)
        if event.kind in MEDIA_KINDS and self._media:
            return await self._media(ctx)
        if event.kind is EventKind.TEXT and self._text:
            return await self._text(ctx)
        return [Text(texts.UNSUPPORTED_MESSAGE)]

    async def _unknown_sender(self, ctx: Ctx) -> list[Reply]:
        first = await member_store.note_unknown_sender(
            ctx.session, ctx.event.platform, ctx.event.sender, ctx.now()
        )
        if not first:
            return []
        log.warning("message from unknown %s user %r", ctx.event.platform, ctx.event.sender)
        notes: list[Reply] = [Text(texts.UNKNOWN_MEMBER)]
        for admin in await member_store.admins(ctx.session):
            notes.append(
                Text(texts.UNKNOWN_MEMBER_ADMIN_NOTE.format(platform=ctx.event.platform, user=ctx.event.sender),
                     to=ToMember(admin.id))
            )
        return notes

    async def _command(self, ctx: Ctx) -> list[Reply]:
        name = ctx.event.text.strip().replace("/", "/", 1).split(maxsplit=1)[0]
        route = self._commands.get(name)
        if route is None:
            return [Text(texts.UNKNOWN_COMMAND.format(name=name))]
        if route.roles is not None and ctx.acting.role not in route.roles:
            return [Text(texts.COMMAND_NOT_PERMITTED.format(name=name))]
        return await route.handler(ctx)

    async def _action(self, ctx: Ctx) -> list[Reply]:
        event = ctx.event
        try:
            payload = ActionPayload.decode(event.action or "")
        except InvalidPayload:
            return [Text(texts.CARD_ACTION_INVALID)]
        route = self._actions.get(payload.prefix)
        if route is None:
            return [Text(texts.CARD_ACTION_INVALID)]
        card = await card_store.get_card(ctx.session, event.task_id or "")
        if card is None:
            return [Text(texts.CARD_UNKNOWN)]
        if card.member_id is not None and card.member_id != ctx.acting.id:
            return [Text(texts.CARD_NOT_YOURS)]
        if card.answered_at is not None:
            return [Text(texts.CARD_ALREADY_ANSWERED)]
        if event.response_code:
            await card_store.remember_platform_state(
                ctx.session, card.task_id, event.platform, {"response_code": event.response_code}
            )
        replies = await route.handler(ctx, payload)
        if route.closes_card:
            await card_store.mark_answered(ctx.session, card.task_id, payload.encode(), ctx.now())
        return replies


def _add_once(table: dict, key: str, value: object, what: str) -> None:
    if key in table:
        raise ValueError(f"duplicate {what} {key!r}")
    table[key] = value
