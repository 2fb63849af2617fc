"""Rendering neutral replies for DingTalk: message bodies per channel and Card → card parameters.

Three channels carry the same content in different envelopes:

  robot API   ``msgKey`` + ``msgParam`` (sampleText, sampleMarkdown, sampleImageMsg, sampleFile)
  webhooks    ``{"msgtype": "text"|"markdown", ...}`` (session webhooks and custom group robots)
  cards       ``cardParamMap`` of the interactive card template (see docs/dingtalk.md for the
              template's variables and what its buttons must send back)

A ``Card`` always has a markdown form (its guaranteed text fallback, with numbered options that a
one-digit reply answers); the template form is used only when a template is configured.
"""

from __future__ import annotations

import json
from typing import Any

from bot.platforms.shared.text import split_utf8
from cards.model import Card, ChoiceMode
from cards.text import card_as_text

TEXT_LIMIT_BYTES = 5000  # DingTalk's text and markdown bodies; longer messages go out in parts
_STYLE = {"primary": "blue", "danger": "red", "default": "gray"}


def text_parts(text: str) -> list[str]:
    return split_utf8(text, TEXT_LIMIT_BYTES)


def markdown_parts(title: str, text: str) -> list[tuple[str, str]]:
    """(title, markdown) parts; DingTalk markdown needs two spaces before a newline to break a line."""
    heading = f"#### {title}\n" if title else ""
    lines = "  \n".join(text.splitlines())
    parts = split_utf8(heading + lines, TEXT_LIMIT_BYTES)
    return [(title or part.strip().splitlines()[0][:20] or "Pacebot", part) for part in parts]


def card_markdown(card: Card) -> tuple[str, str]:
    """The card as markdown: its text fallback (numbered options answered by a digit)."""
    lines = card_as_text(card).splitlines()
    return card.title[:40], "  \n".join(lines)


def robot_message(kind: str, content: dict[str, str]) -> tuple[str, dict[str, str]]:
    """(msgKey, msgParam) of the robot API for a text or markdown part."""
    if kind == "markdown":
        return "sampleMarkdown", {"title": content["title"], "text": content["text"]}
    return "sampleText", {"content": content["content"]}


def webhook_message(kind: str, content: dict[str, str]) -> dict[str, Any]:
    if kind == "markdown":
        return {"msgtype": "markdown", "markdown": {"title": content["title"], "text": content["text"]}}
    return {"msgtype": "text", "text": {"content": content["content"]}}


def card_params(card: Card) -> dict[str, str]:
    """The template's ``cardParamMap``: every value a string (lists as JSON), as DingTalk requires."""
    body = "\n\n".join([card.body] if card.body else [])
    fields = "  \n".join(f"**{f.label}**:{f.value}" for f in card.fields)
    params = {
        "task_id": card.task_id,
        "title": card.title,
        "body": body,
        "fields": fields,
        "closed": "true" if card.closed_note else "false",
        "closed_note": card.closed_note,
        "buttons": "[]",
        "options": "[]",
        "multiple": "false",
        "submit_text": "",
        "submit_action": "",
    }
    if card.closed_note:
        return params
    if card.choice_mode is ChoiceMode.BUTTONS:
        params["buttons"] = json.dumps(
            [{"text": b.label, "action": b.action, "color": _STYLE.get(str(b.style), "gray")} for b in card.buttons],
            ensure_ascii=False,
        )
    else:
        params["options"] = json.dumps([{"text": o.label, "value": o.action} for o in card.options], ensure_ascii=False)
        params["multiple"] = "true" if card.choice_mode is ChoiceMode.MULTIPLE else "false"
        if card.submit is not None:
            params["submit_text"] = card.submit.label or "提交"
            params["submit_action"] = card.submit.action
    return params


def open_space_id(target_kind: str, ident: str) -> str:
    space = "IM_GROUP" if target_kind == "group" else "IM_ROBOT"
    return f"dtv1.card//{space}.{ident}"
