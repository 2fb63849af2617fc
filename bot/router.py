"""What a feature module registers: commands, card actions, dialogue states, claims, jobs, hooks.

Each feature module under ``handlers/`` owns one ``Router``; the wiring assembles them into the
dispatcher explicitly, in one place. This module is the handler-facing half of routing: it knows
nothing of how events arrive or where replies go.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.context import CommandInfo, Ctx, DomainHooks, TouchHook
from bot.replies import Reply
from cards.model import CardAction
from domain.enums import Role

__all__ = [
    "ActionHandler", "ActionRoute", "Claim", "CommandRoute", "DialogueHandler", "DialogueState", "DomainHooks",
    "Handler", "Router", "TouchHook",
]

Handler = Callable[[Ctx], Awaitable[list[Reply]]]
# A dialogue handler may return None to hand the message on to normal routing.
DialogueHandler = Callable[[Ctx], Awaitable[list[Reply] | None]]
# An action handler receives the clicked button's payload as an instance of the registered class.
ActionHandler = Callable[[Ctx, Any], Awaitable[list[Reply]]]
# A claim looks at a message first and either handles it (returns replies) or passes (None).
Claim = Callable[[Ctx], Awaitable[list[Reply] | None]]

A = TypeVar("A", bound=CardAction)


class DialogueState(enum.StrEnum):
    """Base of each capability's dialogue states; a member's value is what the database stores."""


@dataclass(frozen=True, kw_only=True)
class CommandRoute(CommandInfo):
    handler: Handler


@dataclass(frozen=True)
class ActionRoute:
    payload: type[CardAction]
    handler: ActionHandler
    closes_card: bool

    @property
    def prefix(self) -> str:
        return self.payload.prefix


@dataclass
class Router:
    name: str
    commands: list[CommandRoute] = field(default_factory=list)
    actions: list[ActionRoute] = field(default_factory=list)
    dialogue_states: dict[DialogueState, DialogueHandler] = field(default_factory=dict)
    media_handler: Handler | None = None
    text_handler: Handler | None = None
    jobs: dict[str, Handler] = field(default_factory=dict)
    text_claims: list[Claim] = field(default_factory=list)
    media_claims: list[Claim] = field(default_factory=list)
    media_dialogue_states: set[DialogueState] = field(default_factory=set)
    touch_hooks: list[TouchHook] = field(default_factory=list)
    effective_hooks: list[TouchHook] = field(default_factory=list)
    undo_hooks: list[TouchHook] = field(default_factory=list)

    def command(
        self, *names: str, roles: Iterable[Role] | None = None, summary: str = "", usage: str = ""
    ) -> Callable[[Handler], Handler]:
        """A slash command; ``summary`` and ``usage`` are what /帮助 lists (for the roles allowed)."""

        def register(fn: Handler) -> Handler:
            self.commands.append(CommandRoute(names, frozenset(roles) if roles else None, summary, usage, handler=fn))
            return fn

        return register

    def action(
        self, payload: type[A], *, closes_card: bool = True
    ) -> Callable[[Callable[[Ctx, A], Awaitable[list[Reply]]]], Callable[[Ctx, A], Awaitable[list[Reply]]]]:
        """A card action, routed on ``payload``'s prefix; the handler gets the unpacked instance.

        With ``closes_card`` the dispatcher marks the clicked card answered after the handler ran
        (a second click is refused); without it the card stays open (e.g. [驳回] asks for a reason).
        """

        def register(fn: Callable[[Ctx, A], Awaitable[list[Reply]]]) -> Callable[[Ctx, A], Awaitable[list[Reply]]]:
            self.actions.append(ActionRoute(payload, fn, closes_card))
            return fn

        return register

    def dialogue(self, *states: DialogueState, media: bool = False) -> Callable[[DialogueHandler], DialogueHandler]:
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
