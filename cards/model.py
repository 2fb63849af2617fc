"""卡片: the neutral interactive card, rendered natively by each platform adapter.

A card has a task id (unique, at most 128 bytes of ``[A-Za-z0-9_\\-@]`` so that every platform
accepts it), a title, a body, key/value fields and either buttons or a list of options to choose
from. Every button carries a typed action payload (a ``CardAction`` subclass), encoded as a short
prefixed string that the dispatcher routes on.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import re
import secrets
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Self

MAX_PAYLOAD_BYTES = 64
MAX_TASK_ID_BYTES = 128
_TASK_ID_RE = re.compile(r"^[A-Za-z0-9_\-@]{1,128}$")
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9_]{0,15}$")
_ARG_RE = re.compile(r"^[A-Za-z0-9_\-.@]*$")


class InvalidPayload(ValueError):
    """A card action payload that is malformed or too long."""


class CardAction:
    """A typed card action payload: one small frozen dataclass per action (aiogram's CallbackData).

    A subclass names its readable prefix and its typed fields (``int``, ``str`` or ``int | None``)::

        @dataclass(frozen=True)
        class Undo(CardAction, prefix="undo"):
            touch_id: int

    ``Undo(42).pack()`` is ``"undo:42"`` and ``Undo.unpack("undo:42")`` is ``Undo(42)``: the
    encoded form is ``prefix:field1:field2``, at most 64 bytes, so cards sent before a field was
    typed still decode. Trailing fields that are ``None`` are left out when packing and take their
    defaults when unpacking. Anything malformed raises ``InvalidPayload``.
    """

    prefix: ClassVar[str] = ""
    _field_table: ClassVar[list[tuple[dataclasses.Field[Any], type]]]

    def __init_subclass__(cls, *, prefix: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not _PREFIX_RE.match(prefix):
            raise ValueError(f"bad action prefix {prefix!r}")
        cls.prefix = prefix

    @classmethod
    def _fields(cls) -> list[tuple[dataclasses.Field[Any], type]]:
        # Read once per class: resolving the type hints costs more than the rest of a pack.
        known: list[tuple[dataclasses.Field[Any], type]] | None = cls.__dict__.get("_field_table")
        if known is None:
            known = cls._field_table = cls._read_fields()
        return known

    @classmethod
    def _read_fields(cls) -> list[tuple[dataclasses.Field[Any], type]]:
        hints = typing.get_type_hints(cls)
        out: list[tuple[dataclasses.Field[Any], type]] = []
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            kind = hints[f.name]
            base = int if kind in (int, int | None) else str if kind in (str, str | None) else None
            if base is None:
                raise TypeError(f"{cls.__name__}.{f.name}: action fields are int or str, not {kind!r}")
            out.append((f, base))
        return out

    def pack(self) -> str:
        args = [getattr(self, f.name) for f, _base in self._fields()]
        while args and args[-1] is None:
            args.pop()
        texts = ["" if a is None else str(a) for a in args]
        if not all(_ARG_RE.match(a) for a in texts):
            raise InvalidPayload(f"bad argument in {type(self).__name__}: {texts!r}")
        text = ":".join((self.prefix, *texts))
        if len(text.encode()) > MAX_PAYLOAD_BYTES:
            raise InvalidPayload(f"payload longer than {MAX_PAYLOAD_BYTES} bytes: {text!r}")
        return text

    @classmethod
    def unpack(cls, text: str) -> Self:
        if payload_prefix(text) != cls.prefix:
            raise InvalidPayload(f"not a {cls.prefix!r} payload: {text!r}")
        args = text.split(":")[1:]
        fields = cls._fields()
        if len(args) > len(fields) or not all(_ARG_RE.match(a) for a in args):
            raise InvalidPayload(f"malformed payload {text!r}")
        values: dict[str, Any] = {}
        for (f, base), arg in itertools.zip_longest(fields, args):
            if arg is None or arg == "":
                if f.default is dataclasses.MISSING:
                    raise InvalidPayload(f"payload {text!r} lacks {f.name}")
                continue
            if base is int and not arg.isdigit():
                raise InvalidPayload(f"payload {text!r}: {f.name} is not a number")
            values[f.name] = int(arg) if base is int else arg
        return cls(**values)


def payload_prefix(text: str) -> str:
    """The prefix an encoded payload is routed on; raises ``InvalidPayload`` if malformed."""
    if not text or len(text.encode()) > MAX_PAYLOAD_BYTES:
        raise InvalidPayload("empty or oversized payload")
    prefix = text.split(":", 1)[0]
    if not _PREFIX_RE.match(prefix):
        raise InvalidPayload(f"malformed payload {text!r}")
    return prefix


class ButtonStyle(enum.StrEnum):
    PRIMARY = "primary"
    DEFAULT = "default"
    DANGER = "danger"


@dataclass(frozen=True)
class Button:
    label: str
    action: str  # an encoded CardAction (options of a choice card: the option's key)
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
        # What ``dataclasses.asdict`` gives (tests compare the two), without its recursive deep copy:
        # every value here is immutable already.
        return {
            "task_id": self.task_id,
            "title": self.title,
            "body": self.body,
            "fields": tuple({"label": f.label, "value": f.value} for f in self.fields),
            "buttons": tuple(_button_json(b) for b in self.buttons),
            "choice_mode": self.choice_mode,
            "options": tuple(_button_json(b) for b in self.options),
            "submit": _button_json(self.submit) if self.submit is not None else None,
            "closed_note": self.closed_note,
        }

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


def _button_json(button: Button) -> dict[str, Any]:
    return {"label": button.label, "action": button.action, "style": button.style}


def new_task_id(kind: str) -> str:
    """A unique task id such as ``undo-1f3a9c...``."""
    return f"{kind}-{secrets.token_hex(8)}"
