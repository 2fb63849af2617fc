"""What a feature module registers: commands, card actions, dialogue states, claims, jobs, hooks.

Each feature module under ``handlers/`` owns one ``Router``; the wiring assembles them into the
dispatcher explicitly, in one place. This module is the handler-facing half of routing: it knows
nothing of how events arrive or where replies go.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.context import Ctx
from bot.replies import Reply
from cards.model import ActionPayload
from domain.enums import Role

Handler = Callable[[Ctx], Awaitable[list[Reply]]]
# A dialogue handler may return None to hand the message on to normal routing.
DialogueHandler = Callable[[Ctx], Awaitable[list[Reply] | None]]
ActionHandler = Callable[[Ctx, ActionPayload], Awaitable[list[Reply]]]
# A claim looks at a message first and either handles it (returns replies) or passes (None).
Claim = Callable[[Ctx], Awaitable[list[Reply] | None]]
# Domain hooks: other capabilities react to a touch being logged or becoming effective.
TouchHook = Callable[[Ctx, Any, Any], Awaitable[list[Reply]]]


@dataclass
class DomainHooks:
    after_touch: list[TouchHook] = field(default_factory=list)
    after_effective: list[TouchHook] = field(default_factory=list)
    after_undo: list[TouchHook] = field(default_factory=list)

    async def touch_logged(self, ctx: Ctx, touch: Any, customer: Any) -> list[Reply]:
        return [reply for hook in self.after_touch for reply in await hook(ctx, touch, customer)]

    async def touch_effective(self, ctx: Ctx, touch: Any, customer: Any) -> list[Reply]:
        return [reply for hook in self.after_effective for reply in await hook(ctx, touch, customer)]

    async def touch_undone(self, ctx: Ctx, touch: Any, customer: Any) -> list[Reply]:
        return [reply for hook in self.after_undo for reply in await hook(ctx, touch, customer)]


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
    dialogue_states: dict[str, DialogueHandler] = field(default_factory=dict)
    media_handler: Handler | None = None
    text_handler: Handler | None = None
    jobs: dict[str, Handler] = field(default_factory=dict)
    text_claims: list[Claim] = field(default_factory=list)
    media_claims: list[Claim] = field(default_factory=list)
    media_dialogue_states: set[str] = field(default_factory=set)
    touch_hooks: list[TouchHook] = field(default_factory=list)
    effective_hooks: list[TouchHook] = field(default_factory=list)
    undo_hooks: list[TouchHook] = field(default_factory=list)

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

    def dialogue(self, *states: str, media: bool = False) -> Callable[[DialogueHandler], DialogueHandler]:
        """Handle messages while a dialogue is in one of ``states`` (attachments too if ``media``)."""

        def register(fn: DialogueHandler) -> DialogueHandler:
            for state in states:
                self.dialogue_states[state] = fn
                if media:
                    self.media_dialogue_states.add(state)
            return fn

        return register

    def claim_text(self, fn: Claim) -> Claim:
        self.text_claims.append(fn)
        return fn

    def claim_media(self, fn: Claim) -> Claim:
        self.media_claims.append(fn)
        return fn

    def after_touch(self, fn: TouchHook) -> TouchHook:
        self.touch_hooks.append(fn)
        return fn

    def after_effective(self, fn: TouchHook) -> TouchHook:
        self.effective_hooks.append(fn)
        return fn

    def after_undo(self, fn: TouchHook) -> TouchHook:
        self.undo_hooks.append(fn)
        return fn

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
