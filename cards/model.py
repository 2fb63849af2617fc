"""卡片: the neutral interactive card, rendered natively by each platform adapter.

A card has a task id (unique, at most 128 bytes of ``[A-Za-z0-9_\\-@]`` so that every platform
accepts it), a title, a body, key/value fields and either buttons or a list of options to choose
from. Every button and option carries a typed action payload (``ActionPayload``), encoded as a
short prefixed string that the dispatcher routes on.
"""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import asdict, dataclass
from typing import Any

MAX_PAYLOAD_BYTES = 64
MAX_TASK_ID_BYTES = 128
_TASK_ID_RE = re.compile(r"^[A-Za-z0-9_\-@]{1,128}$")
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9_]{0,15}$")
_ARG_RE = re.compile(r"^[A-Za-z0-9_\-.@]*$")


class InvalidPayload(ValueError):
    """A card action payload that is malformed or too long."""


@dataclass(frozen=True)
class ActionPayload:
    """A typed button payload: ``prefix:arg1:arg2``, at most 64 bytes."""

    prefix: str
    args: tuple[str, ...] = ()

    def encode(self) -> str:
        if not _PREFIX_RE.match(self.prefix):
            raise InvalidPayload(f"bad prefix {self.prefix!r}")
        for arg in self.args:
            if not _ARG_RE.match(arg):
                raise InvalidPayload(f"bad argument {arg!r}")
        text = ":".join((self.prefix, *self.args))
        if len(text.encode()) > MAX_PAYLOAD_BYTES:
            raise InvalidPayload(f"payload longer than {MAX_PAYLOAD_BYTES} bytes: {text!r}")
        return text

    @classmethod
    def decode(cls, text: str) -> ActionPayload:
        if not text or len(text.encode()) > MAX_PAYLOAD_BYTES:
            raise InvalidPayload("empty or oversized payload")
        prefix, *args = text.split(":")
        if not _PREFIX_RE.match(prefix) or not all(_ARG_RE.match(a) for a in args):
            raise InvalidPayload(f"malformed payload {text!r}")
        return cls(prefix, tuple(args))


def action(prefix: str, *args: object) -> str:
    return ActionPayload(prefix, tuple(str(a) for a in args)).encode()


class ButtonStyle(enum.StrEnum):
    PRIMARY = "primary"
    DEFAULT = "default"
    DANGER = "danger"


@dataclass(frozen=True)
class Button:
    label: str
    action: str  # encoded ActionPayload
    style: ButtonStyle = ButtonStyle.DEFAULT


@dataclass(frozen=True)
class CardField:
    label: str
    value: str


class ChoiceMode(enum.StrEnum):
    BUTTONS = "buttons"  # one click decides
    SINGLE = "single"  # choose one option, then submit
    MULTIPLE = "multiple"  # choose several options, then submit


@dataclass(frozen=True)
class Card:
    task_id: str
    title: str
    body: str = ""
    fields: tuple[CardField, ...] = ()
    buttons: tuple[Button, ...] = ()
    choice_mode: ChoiceMode = ChoiceMode.BUTTONS
    # For SINGLE / MULTIPLE: options are buttons whose ``action`` is the option key; the submit
    # button's action receives the chosen keys as the event's ``action_values``.
    options: tuple[Button, ...] = ()
    submit: Button | None = None
    closed_note: str = ""  # when set the card is final: shown instead of buttons

    def __post_init__(self) -> None:
        if not _TASK_ID_RE.match(self.task_id):
            raise InvalidPayload(f"bad task id {self.task_id!r}")

    def closed(self, note: str) -> Card:
        """The same card, answered: no buttons, a note saying what happened."""
        return Card(
            task_id=self.task_id, title=self.title, body=self.body, fields=self.fields, closed_note=note
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Card:
        return cls(
            task_id=data["task_id"],
            title=data["title"],
            body=data.get("body", ""),
            fields=tuple(CardField(**f) for f in data.get("fields", ())),
            buttons=tuple(Button(**b) for b in data.get("buttons", ())),
            choice_mode=ChoiceMode(data.get("choice_mode", "buttons")),
            options=tuple(Button(**b) for b in data.get("options", ())),
            submit=Button(**data["submit"]) if data.get("submit") else None,
            closed_note=data.get("closed_note", ""),
        )


def new_task_id(kind: str) -> str:
    """A unique task id such as ``undo-1f3a9c...``."""
    return f"{kind}-{secrets.token_hex(8)}"
