"""Routing neutral events to handlers.

Each feature module owns a ``Router`` (``bot.router``); ``build_dispatcher`` assembles the list
``handlers.catalogue.all_routers`` gives, in that order. Order of precedence: card actions, slash commands, an open dialogue, media, text.

Before a member's event reaches a handler the dispatcher resolves, once, what handlers need: the
member's live dialogue (``ctx.dialogue``; an expired one is ended), and for a card answer the
clicked card, checked (it exists, is the member's, is still open), with the options chosen
(``ctx.card``, ``ctx.chosen``) and the payload unpacked into its registered ``CardAction`` class.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot import texts
from bot.clock import FrozenClock
from bot.context import Ctx, DomainHooks, JobContext
from bot.errors import UserError
from bot.events import MEDIA_KINDS, EventKind
from bot.replies import Reply, Text, ToMember
from bot.router import ActionRoute, Claim, CommandRoute, DialogueHandler, Handler, Router
from cards.model import Card, ChoiceMode, InvalidPayload, payload_prefix
from handlers.admin import effective_config
from handlers.catalogue import all_routers
from storage import cards as card_store
from storage import dialogues, job_runs
from storage import members as member_store
from storage.models import CardRecord, Dialogue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Click:
    """A card answer: a button clicked, options submitted, or a numbered reply to a card's text."""

    action: str  # the encoded payload
    task_id: str
    values: tuple[str, ...] = ()  # the options chosen on a choice card
    response_code: str | None = None


class Dispatcher:
    def __init__(self, routers: Iterable[Router]) -> None:
        self.routers = list(routers)
        self._commands: dict[str, CommandRoute] = {}
        self._actions: dict[str, ActionRoute] = {}
        self._dialogues: dict[str, DialogueHandler] = {}
        self._jobs: dict[str, Handler] = {}
        self._media: Handler | None = None
        self._text: Handler | None = None
        self._media_dialogues: set[str] = set()
        self._text_claims: list[Claim] = []
        self._media_claims: list[Claim] = []
        self.hooks = DomainHooks()
        for router in self.routers:
            self._media_dialogues |= router.media_dialogue_states
            self._text_claims += router.text_claims
            self._media_claims += router.media_claims
            self.hooks.after_touch += router.touch_hooks
            self.hooks.after_effective += router.effective_hooks
            self.hooks.after_undo += router.undo_hooks
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
        self._command_infos = tuple(self.command_routes)  # the same for every event

    @property
    def command_routes(self) -> list[CommandRoute]:
        return [route for router in self.routers for route in router.commands]

    @property
    def job_names(self) -> list[str]:
        return sorted(self._jobs)

    async def dispatch(self, ctx: Ctx) -> list[Reply]:
        """Run the matching handler; a ``UserError`` undoes its changes and becomes the reply.

        The handler runs in a savepoint, rolled back on a ``UserError``. With
        ``ctx.no_savepoint`` there is none and the ``UserError`` propagates: the caller must roll
        back the whole transaction, and then answer with ``refusal`` instead of dispatching the
        event again.
        """
        ctx.hooks = self.hooks
        ctx.commands = self._command_infos
        # Thresholds admins set in chat (/规则 设置) apply to every event, jobs included.
        ctx.config = await effective_config(ctx.session, ctx.config)
        if ctx.no_savepoint:
            return await self._route(ctx)
        try:
            async with ctx.session.begin_nested():
                return await self._route(ctx)
        except UserError as exc:
            return self.refusal(ctx, exc)

    def refusal(self, ctx: Ctx, exc: UserError) -> list[Reply]:
        """The reply to an event whose handler refused it (its changes undone)."""
        log.info("refused %s event %s: %s", ctx.event.platform, ctx.event.platform_msg_id, exc.detail)
        return [Text(exc.message)]

    async def _route(self, ctx: Ctx) -> list[Reply]:
        event = ctx.event
        if event.kind in (EventKind.SCHEDULE, EventKind.SYSTEM):
            handler = self._jobs.get(event.job or "")
            if handler is None:
                raise LookupError(f"no handler for job {event.job!r}")
            if event.kind is EventKind.SCHEDULE:
                return await self._scheduled_run(ctx, handler)
            return await handler(ctx)
        if ctx.member is None:
            return await self._unknown_sender(ctx)
        if event.kind is EventKind.ENTER:
            return [Text(texts.WELCOME.format(name=ctx.member.name))]
        ctx.dialogue = await self._live_dialogue(ctx)
        ctx.dialogue_loaded = True
        if event.kind is EventKind.ACTION:
            click = Click(event.action or "", event.task_id or "", event.action_values, event.response_code)
            return await self._action(ctx, click)
        if event.kind is EventKind.TEXT and event.text.strip().startswith(("/", "/")):
            return await self._command(ctx)
        if event.kind is EventKind.TEXT and (numbered := await self._numbered_choice(ctx)) is not None:
            return numbered
        dialogue = ctx.dialogue
        if dialogue is not None and dialogue.state in self._dialogues and (
            event.kind is EventKind.TEXT or (event.kind in MEDIA_KINDS and dialogue.state in self._media_dialogues)
        ):
            # A dialogue handler returns None to pass the message on (e.g. it only waits for
            # an attachment and the rep wrote something else).
            replies = await self._dialogues[dialogue.state](ctx)
            if replies is not None:
                return replies
        if event.kind in MEDIA_KINDS:
            for claim in self._media_claims:
                if (replies := await claim(ctx)) is not None:
                    return replies
            if self._media:
                return await self._media(ctx)
        if event.kind is EventKind.TEXT:
            for claim in self._text_claims:
                if (replies := await claim(ctx)) is not None:
                    return replies
            if self._text:
                return await self._text(ctx)
        return [Text(texts.UNSUPPORTED_MESSAGE)]

    async def _live_dialogue(self, ctx: Ctx) -> Dialogue | None:
        """The member's dialogue in this conversation (row-locked); an expired one is ended."""
        if ctx.dialogue_stored is False:
            return None  # looked for with the sender, in this transaction
        key = dialogues.DialogueKey(ctx.event.platform, ctx.event.conversation, ctx.acting.id)
        dialogue = await dialogues.load_dialogue(ctx.session, key)
        if dialogue is not None and dialogue.expires_at <= ctx.now():
            await dialogues.clear_dialogue(ctx.session, key)
            return None
        return dialogue

    async def _scheduled_run(self, ctx: Ctx, handler: Handler) -> list[Reply]:
        """Run a job with its run on ``ctx.job``, and record the run (a ``JobRun`` row).

        The row is written in the handler's transaction, so a run is recorded exactly when its
        effects and its replies are committed.

        A replay (``pacebot jobs run NAME --now ISO``) carries its instant in ``job_args["now"]``:
        whichever process handles it, the handler's clock stands at that instant, so every rule,
        message and claimed period is evaluated as of it. ``started_at`` and ``finished_at`` stay
        this process's own time: when the run really happened.
        """
        event = ctx.event
        worker_clock = ctx.clock
        started = worker_clock.now()
        replay_now = event.job_args.get("now")
        if replay_now:
            ctx.clock = FrozenClock(dt.datetime.fromisoformat(str(replay_now)))
        run_started = ctx.now()
        raw_as_of = event.job_args.get("as_of")
        as_of = min(dt.datetime.fromisoformat(str(raw_as_of)), run_started) if raw_as_of else run_started
        period = str(event.job_args.get("period") or run_started.isoformat(timespec="minutes"))
        ctx.job = JobContext(name=event.job or "", period=period, as_of=as_of)
        try:
            replies = await handler(ctx)
        finally:
            ctx.clock = worker_clock
        summary = "; ".join([*ctx.job.notes, f"{len(replies)} message(s) queued"])
        await job_runs.record_run(ctx.session, job=ctx.job.name, period=period, as_of=as_of, started_at=started,
                                  finished_at=worker_clock.now(), summary=summary)
        return replies

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
        if not route.allows(ctx.acting.role):
            return [Text(texts.COMMAND_NOT_PERMITTED.format(name=name))]
        return await route.handler(ctx)

    async def _numbered_choice(self, ctx: Ctx) -> list[Reply] | None:
        """A reply such as "2" or "1 3" to the member's latest open card: its text fallback's choices.

        Cards reach some people as text (platforms or places that cannot show them), so the numbers
        the fallback lists must work. Only recent cards with a real choice (two or more options)
        count, so a lone "1" never undoes a touch through its confirmation card.
        """
        numbers = ctx.event.text.replace(",", " ").replace(",", " ").split()
        if not numbers or not all(n.isdigit() for n in numbers):
            return None
        since = ctx.now() - dt.timedelta(minutes=ctx.config.touch.dialogue_idle_minutes)
        record = await card_store.latest_open_card(ctx.session, ctx.acting.id, since)
        if record is None:
            return None
        card = Card.from_json(record.payload)
        choices = card.buttons if card.choice_mode is ChoiceMode.BUTTONS else card.options
        picked = [int(n) for n in numbers]
        if len(choices) < 2 or not all(1 <= n <= len(choices) for n in picked):
            return None
        if card.choice_mode is ChoiceMode.BUTTONS or card.submit is None:
            if len(picked) != 1:
                return None
            click = Click(choices[picked[0] - 1].action, card.task_id)
        else:
            if card.choice_mode is ChoiceMode.SINGLE and len(picked) != 1:
                return None
            values = tuple(choices[n - 1].action for n in dict.fromkeys(picked))
            click = Click(card.submit.action, card.task_id, values)
        return await self._action(ctx, click, record)

    async def _action(self, ctx: Ctx, click: Click, record: CardRecord | None = None) -> list[Reply]:
        """Check the clicked card, unpack the payload into its registered class, run the handler
        with the card on ``ctx.card``, and close the card (one answer only)."""
        try:
            route = self._actions.get(payload_prefix(click.action))
            if route is None:
                return [Text(texts.CARD_ACTION_INVALID)]
            payload = route.payload.unpack(click.action)
        except InvalidPayload:
            return [Text(texts.CARD_ACTION_INVALID)]
        if record is None or record.task_id != click.task_id:
            record = await card_store.get_card(ctx.session, click.task_id)
        if record is None:
            return [Text(texts.CARD_UNKNOWN)]
        if record.member_id is not None and record.member_id != ctx.acting.id:
            return [Text(texts.CARD_NOT_YOURS)]
        if record.answered_at is not None:
            return [Text(texts.CARD_ALREADY_ANSWERED)]
        card = Card.from_json(record.payload)
        # A card without options has nothing to choose: whatever values a platform sends along
        # with a button press (template parameters, say) mean nothing and are dropped.
        values = click.values if card.options else ()
        if click.action not in _offered(card) or not set(values) <= {o.action for o in card.options}:
            # Least privilege: a click acts only through a button (and with options) its card
            # offers, never with a payload of the member's choosing (forged, or from another card).
            log.info("action %r %r is not offered by card %s", click.action, click.values, record.task_id)
            return [Text(texts.CARD_ACTION_INVALID)]
        if click.response_code:
            await card_store.remember_platform_state(
                ctx.session, record.task_id, ctx.event.platform, {"response_code": click.response_code}
            )
        ctx.card, ctx.chosen = card, values
        replies = await route.handler(ctx, payload)
        if route.closes_card and not await card_store.mark_answered(
            ctx.session, record.task_id, payload.pack(), ctx.now()
        ):
            # A concurrent click answered it first: undo this one's changes.
            raise UserError(texts.CARD_ALREADY_ANSWERED, detail=f"card {record.task_id} answered concurrently")
        return replies


def _offered(card: Card) -> set[str]:
    """The payloads a card's buttons (or its submit button) carry."""
    return {button.action for button in card.buttons} | ({card.submit.action} if card.submit else set())


def _add_once(table: dict[str, Any], key: str, value: object, what: str) -> None:
    if key in table:
        raise ValueError(f"duplicate {what} {key!r}")
    table[key] = value


def build_dispatcher() -> Dispatcher:
    return Dispatcher(all_routers())
