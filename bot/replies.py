"""Neutral replies: what handlers return. Adapters render them natively; the outbox stores them.

Each reply has an addressee: a member (1:1) or a team's group. ``None`` means "whoever sent the
event being handled". Handlers never send anything themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cards.model import Card


@dataclass(frozen=True)
class ToMember:
    member_id: int


@dataclass(frozen=True)
class ToGroup:
    team_id: int


Address = ToMember | ToGroup | None


@dataclass(frozen=True)
class Text:
    text: str
    to: Address = None


@dataclass(frozen=True)
class Markdown:
    title: str
    text: str
    to: Address = None


@dataclass(frozen=True)
class Image:
    """An image stored in the media store, referenced by its sha256 (and its stored path, if known)."""

    sha256: str
    caption: str = ""
    to: Address = None
    path: str = ""  # e.g. "generated/<sha256>.png": where the console serves it from


@dataclass(frozen=True)
class File:
    sha256: str
    filename: str
    to: Address = None


@dataclass(frozen=True)
class CardReply:
    card: Card
    to: Address = None


@dataclass(frozen=True)
class CardUpdate:
    """Replace a card already sent (same task id) — e.g. after a button was clicked."""

    card: Card
    to: Address = None


Reply = Text | Markdown | Image | File | CardReply | CardUpdate


def reply_kind(reply: Reply) -> str:
    return {
        Text: "text",
        Markdown: "markdown",
        Image: "image",
        File: "file",
        CardReply: "card",
        CardUpdate: "card_update",
    }[type(reply)]


def reply_payload(reply: Reply) -> dict[str, Any]:
    match reply:
        case Text(text=text):
            return {"text": text}
        case Markdown(title=title, text=text):
            return {"title": title, "text": text}
        case Image(sha256=sha, caption=caption, path=path):
            return {"sha256": sha, "caption": caption, **({"path": path} if path else {})}
        case File(sha256=sha, filename=name):
            return {"sha256": sha, "filename": name}
        case CardReply(card=card) | CardUpdate(card=card):
            return {"card": card.to_json()}
    raise TypeError(f"not a reply: {reply!r}")
