"""Routing neutral events to handlers.

Each feature module owns a ``Router`` (``bot.router``); ``build_dispatcher`` assembles the list
``handlers.catalogue.all_routers`` gives, in that order. Order of precedence: card actions, slash commands, an open dialogue, media, text.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable

from bot import texts
from bot.context import Ctx, JobContext
from bot.errors import UserError
from bot.events import MEDIA_KINDS, EventKind
from bot.replies import Reply, Text, ToMember
from bot.router import ActionRoute, Claim, CommandRoute, DialogueHandler, DomainHooks, Handler, Router
from cards.model import ActionPayload, Card, ChoiceMode, InvalidPayload
from handlers.admin import effective_config
from handlers.catalogue import all_routers
from storage import cards as card_store
from storage import dialogues, job_runs
from storage import members as member_store

log = logging.getLogger(__name__)

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

    @property
    def command_routes(self) -> list[CommandRoute]:
        return [route for router in self.routers for route in router.commands]

    @property
    def job_names(self) -> list[str]:
        return sorted(self._jobs)

    async def dispatch(self, ctx: Ctx) -> list[Reply]:
        """Run the matching handler; a ``UserError`` undoes its changes and becomes the reply."""
        ctx.hooks = self.hooks
        # Thresholds admins set in chat (/规则 设置) apply to every event, jobs included.
        ctx.config = await effective_config(ctx.session, ctx.config)
        try:
            async with ctx.session.begin_nested():
                return await self._route(ctx)
        except UserError as exc:
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
        if event.kind is EventKind.ACTION:
            return await self._action(ctx)
        if event.kind is EventKind.ENTER:
            return [Text(texts.WELCOME.format(name=ctx.member.name))]
        if event.kind is EventKind.TEXT and event.text.strip().startswith(("/", "/")):
            return await self._command(ctx)
        if event.kind is EventKind.TEXT and (numbered := await self._numbered_choice(ctx)) is not None:
            return numbered
        key = dialogues.DialogueKey(event.platform, event.conversation, ctx.member.id)
        dialogue = await dialogues.load_dialogue(ctx.session, key)
        if dialogue is not None:
            if dialogue.expires_at <= ctx.now():
                await dialogues.clear_dialogue(ctx.session, key)
            elif dialogue.state in self._dialogues and (
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

    async def _scheduled_run(self, ctx: Ctx, handler: Handler) -> list[Reply]:
        """Run a job with its run on ``ctx.job``, and record the run (a ``JobRun`` row).

        The row is written in the handler's transaction, so a run is recorded exactly when its
        effects and its replies are committed.
        """
        event = ctx.event
        started = ctx.now()
        raw_as_of = event.job_args.get("as_of")
        as_of = min(dt.datetime.fromisoformat(str(raw_as_of)), started) if raw_as_of else started
        period = str(event.job_args.get("period") or started.isoformat(timespec="minutes"))
        ctx.job = JobContext(name=event.job or "", period=period, as_of=as_of)
        replies = await handler(ctx)
        summary = "; ".join([*ctx.job.notes, f"{len(replies)} message(s) queued"])
        await job_runs.record_run(ctx.session, job=ctx.job.name, period=period, as_of=as_of, started_at=started,
                                  finished_at=ctx.now(), summary=summary)
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
        if route.roles is not None and ctx.acting.role not in route.roles:
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
            action, values = choices[picked[0] - 1].action, ()
        else:
            if card.choice_mode is ChoiceMode.SINGLE and len(picked) != 1:
                return None
            action, values = card.submit.action, tuple(choices[n - 1].action for n in dict.fromkeys(picked))
        ctx.event = dataclasses.replace(
            ctx.event, kind=EventKind.ACTION, action=action, task_id=card.task_id, action_values=values
        )
        return await self._action(ctx)

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
        if route.closes_card and not await card_store.mark_answered(
            ctx.session, card.task_id, payload.encode(), ctx.now()
        ):
            # A concurrent click answered it first: undo this one's changes.
            raise UserError(texts.CARD_ALREADY_ANSWERED, detail=f"card {card.task_id} answered concurrently")
        return replies


def _add_once(table: dict, key: str, value: object, what: str) -> None:
    if key in table:
        raise ValueError(f"duplicate {what} {key!r}")
    table[key] = value


def build_dispatcher() -> Dispatcher:
    return Dispatcher(all_routers())
