"""Rendering neutral replies for WeCom: byte-limited splitting and Card → ``template_card``.

One function, ``render_card``, turns any ``Card`` into a WeCom template card or says it cannot
(``None``), in which case the sender uses the card's text fallback. Which WeCom card type is used
depends only on the card's shape (choice mode, number of choices), never on what the card is for,
so a new kind of card needs no change here.

  ChoiceMode.BUTTONS, 1-6 buttons             → button_interaction
  ChoiceMode.SINGLE / MULTIPLE, 1-20 options  → vote_interaction (checkbox mode 0 / 1) + submit
  anything else (no choices, closed, >6 buttons, >20 options, duplicate keys) → text fallback

``multiple_interaction`` (up to three drop-down questions) has no counterpart in the neutral card,
which asks one question; its callbacks are still parsed (all selected option ids are collected).

Text limits are WeCom's documented maxima in characters; longer labels are cut with "…".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cards.model import Button, ButtonStyle, Card, ChoiceMode

TEXT_LIMIT_BYTES = 2048  # app text / markdown content, robot text
ROBOT_MARKDOWN_LIMIT_BYTES = 4096


@dataclass(frozen=True)
class CardLimits:
    title: int = 36  # main_title.title
    desc: int = 44  # main_title.desc
    sub_title: int = 160  # sub_title_text
    keyname: int = 5  # horizontal_content_list[].keyname
    value: int = 26  # horizontal_content_list[].value
    horizontal_items: int = 6
    button_text: int = 10
    buttons: int = 6
    option_text: int = 17  # checkbox option text
    options: int = 20
    key_bytes: int = 1024  # button key / submit key / question key
    option_id_bytes: int = 128


LIMITS = CardLimits()

# WeCom button styles: 1 blue (primary), 2 grey, 3 red, 4 ... (1-4 accepted).
_STYLE = {ButtonStyle.PRIMARY: 1, ButtonStyle.DEFAULT: 2, ButtonStyle.DANGER: 3}
QUESTION_KEY = "choice"


def cut(text: str, limit: int) -> str:
    text = " ".join(text.split()) if "\n" not in text else text.strip()
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def split_utf8(text: str, limit: int) -> list[str]:
    """Split into parts of at most ``limit`` UTF-8 bytes, on line boundaries where possible.

    A line longer than the limit is cut between characters (never inside one). Empty text gives
    one empty part so that callers always send something.
    """
    if len(text.encode()) <= limit:
        return [text]
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.splitlines(keepends=True):
        for piece in _cut_line(line, limit):
            n = len(piece.encode())
            if size + n > limit and current:
                parts.append("".join(current).rstrip("\n"))
                current, size = [], 0
            current.append(piece)
            size += n
    if current:
        parts.append("".join(current).rstrip("\n"))
    return [p for p in parts if p.strip()] or [_cut_line(text, limit)[0]]


def _cut_line(line: str, limit: int) -> list[str]:
    if len(line.encode()) <= limit:
        return [line]
    pieces, current, size = [], [], 0
    for ch in line:
        n = len(ch.encode())
        if size + n > limit:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(ch)
        size += n
    if current:
        pieces.append("".join(current))
    return pieces


def markdown_text(title: str, text: str) -> str:
    return f"**{title}**\n{text}" if title else text


# ------------------------------------------------------------------------------ cards


def render_card(card: Card, *, task_id: str | None = None) -> dict[str, Any] | None:
    """The ``template_card`` object for ``card``, or ``None`` when only the text fallback fits."""
    if card.closed_note:
        return None
    for layout in _LAYOUTS:
        body = layout(card)
        if body is not None:
            body["task_id"] = task_id or card.task_id
            return body
    return None


def render_card_update(card: Card) -> dict[str, Any] | None:
    """What ``message/update_template_card`` needs besides agent id and response code.

    A closed card keeps its content and greys out its buttons with the note as their label; an
    open card is replaced as a whole. ``None``: the new state can only be sent as text.
    """
    if card.closed_note:
        return {"button": {"replace_name": cut(card.closed_note, LIMITS.button_text)}}
    body = render_card(card)
    return {"template_card": body} if body is not None else None


def _header(card: Card) -> dict[str, Any]:
    body: dict[str, Any] = {"main_title": {"title": cut(card.title, LIMITS.title)}}
    shown = list(card.fields[: LIMITS.horizontal_items])
    overflow = card.fields[LIMITS.horizontal_items :]
    lines = [card.body] if card.body else []
    lines.extend(f"{f.label}:{f.value}" for f in overflow)
    if lines:
        body["sub_title_text"] = cut("\n".join(lines), LIMITS.sub_title)
    if shown:
        body["horizontal_content_list"] = [
            {"keyname": cut(f.label, LIMITS.keyname), "value": cut(f.value, LIMITS.value)} for f in shown
        ]
    return body


def _keys_fit(keys: list[str], limit: int) -> bool:
    return len(set(keys)) == len(keys) and all(k and len(k.encode()) <= limit for k in keys)


def _button_interaction(card: Card) -> dict[str, Any] | None:
    buttons = card.buttons
    if card.choice_mode is not ChoiceMode.BUTTONS or not 1 <= len(buttons) <= LIMITS.buttons:
        return None
    if not _keys_fit([b.action for b in buttons], LIMITS.key_bytes):
        return None
    body = {"card_type": "button_interaction", **_header(card)}
    body["button_list"] = [_button(b) for b in buttons]
    return body


def _vote_interaction(card: Card) -> dict[str, Any] | None:
    options, submit = card.options, card.submit
    if card.choice_mode is ChoiceMode.BUTTONS or submit is None or not 1 <= len(options) <= LIMITS.options:
        return None
    if not _keys_fit([o.action for o in options], LIMITS.option_id_bytes):
        return None
    if not _keys_fit([submit.action], LIMITS.key_bytes):
        return None
    body = {"card_type": "vote_interaction", **_header(card)}
    body["checkbox"] = {
        "question_key": QUESTION_KEY,
        "option_list": [{"id": o.action, "text": cut(o.label, LIMITS.option_text), "is_checked": False} for o in options],
        "mode": 1 if card.choice_mode is ChoiceMode.MULTIPLE else 0,
    }
    body["submit_button"] = {"text": cut(submit.label, LIMITS.button_text) or "提交", "key": submit.action}
    return body


def _button(button: Button) -> dict[str, Any]:
    return {"text": cut(button.label, LIMITS.button_text), "style": _STYLE.get(button.style, 2), "key": button.action}


# Tried in order; the first layout that fits the card is used.
_LAYOUTS = (_button_interaction, _vote_interaction)
