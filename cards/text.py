"""The guaranteed text fallback of a card, for platforms or clients that cannot show it."""

from __future__ import annotations

from cards.model import Card, ChoiceMode


def card_as_text(card: Card) -> str:
    lines = [f"【{card.title}】"]
    if card.body:
        lines.append(card.body)
    lines.extend(f"{f.label}:{f.value}" for f in card.fields)
    if card.closed_note:
        lines.append(f"✔ {card.closed_note}")
        return "\n".join(lines)
    choices = card.buttons if card.choice_mode is ChoiceMode.BUTTONS else card.options
    if len(choices) == 1:
        lines.append(f"[{choices[0].label}]")
    elif choices:
        # Numbered replies work: the dispatcher maps them onto the member's latest open card.
        lines.append("请回复序号选择:" if card.choice_mode is not ChoiceMode.MULTIPLE else "可多选,回复序号(如 1 3):")
        lines.extend(f"{i}. {b.label}" for i, b in enumerate(choices, 1))
    return "\n".join(lines)
