"""Building the follow-up questions of a touch message and the confirmations on its card.

Pure builders (no storage, no sending): ``handlers/touches.py`` decides when to ask and keeps the
choices in the dialogue draft. A question quotes what the rep wrote; where the likely answers are
known (the days of a vague "下周", soon days for an action without a date) they follow as buttons.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from cards.model import Button, ButtonStyle, Card, CardField, new_task_id
from domain.parsing.questions import Confirm, DayChoice, day_choices, soon_choices
from handlers import texts_touch as texts
from handlers.format import format_due, weekday_name

QUOTE_CHARS = 30


def with_part_of_day(action_text: str | None, part: str | None) -> str | None:
    """"去现场" due 下午 → "下午 去现场" (the date is stored as a day; the part of it lives here)."""
    if not action_text or not part or part in action_text:
        return action_text
    return f"{part} {action_text}"


def quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"


def _relative(day: dt.date, today: dt.date) -> str:
    delta = (day - today).days
    if delta in texts.RELATIVE_DAYS:
        return texts.RELATIVE_DAYS[delta]
    this_monday = today - dt.timedelta(days=today.weekday())
    if (day - this_monday).days >= 7:
        return texts.NEXT_WEEK_DAY.format(weekday=weekday_name(day))
    return texts.THIS_WEEK_DAY.format(weekday=weekday_name(day))


def _choice(day: DayChoice, today: dt.date, first: dt.date | None = None, action_text: str | None = None) -> dict[str, Any]:
    """One choice as kept in the draft: its button label, the due date, and an action if it sets one."""
    if day.unsure:
        label = texts.UNSURE_BUTTON
    elif action_text:
        label = texts.CHOICE_ACTION_LABEL.format(relative=_relative(day.date, today), action=action_text)
    else:
        label = texts.CHOICE_LABEL.format(relative=_relative(day.date, today), date=f"{day.date.month}月{day.date.day}日")
    return {"label": label, "due": day.date.isoformat(), "action": action_text, "unsure": day.unsure}


def which_day_choices(first: dt.date, latest: dt.date, today: dt.date) -> list[dict[str, Any]]:
    """下周 → [下周一(…)] [下周三(…)] [下周五(…)] [不确定]."""
    return [_choice(day, today, first) for day in day_choices(first, latest)]


def when_choices(today: dt.date) -> list[dict[str, Any]]:
    """An action without a date (or with one gone): [明天] [后天] [下周一]."""
    return [_choice(day, today) for day in soon_choices(today)]


def next_choices(today: dt.date) -> list[dict[str, Any]]:
    """Neither action nor date: [明天再联系] [后天再联系] [下周一再联系]."""
    return [_choice(day, today, action_text=texts.DEFAULT_NEXT_ACTION) for day in soon_choices(today)]


def action_choices(due: dt.date) -> list[dict[str, Any]]:
    """A date without an action: the usual next steps [电话跟进] [上门拜访] [发资料]."""
    return [{"label": a, "due": due.isoformat(), "action": a, "unsure": False} for a in texts.USUAL_ACTIONS]


def choices_card(body: str, choices: list[dict[str, Any]], pack: Callable[[int], str]) -> Card:
    """The likely answers as buttons; ``pack(i)`` is the encoded action of the i-th choice."""
    buttons = tuple(
        Button(choice["label"], pack(i), ButtonStyle.PRIMARY if i == 0 else ButtonStyle.DEFAULT)
        for i, choice in enumerate(choices)
    )
    return Card(task_id=new_task_id("ask"), title=texts.CHOICES_TITLE, body=body, buttons=buttons)


def which_day_body(raw_text: str, expression: str) -> str:
    return texts.ASK_WHICH_DAY.format(text=quote(raw_text), expression=expression)


def when_body(action_text: str) -> str:
    return texts.ASK_WHEN_BODY.format(action=quote(action_text))


def past_date_body(raw_text: str) -> str:
    return texts.PAST_DATE_BODY.format(text=quote(raw_text))


def unsure_due_label(first: dt.date, latest: dt.date) -> str:
    return texts.UNSURE_LABEL.format(first=f"{first.month}月{first.day}日", latest=f"{latest.month}月{latest.day}日")


def confirmation_field(confirms: list[str], customer: str, due: dt.date, today: dt.date) -> CardField | None:
    """"是指「华东建材」吗? 下次动作是今天 12月3日 周四吗?" for the fields read with low confidence."""
    asks = []
    if Confirm.CUSTOMER in confirms:
        asks.append(texts.CONFIRM_CUSTOMER.format(customer=customer))
    if Confirm.DATE in confirms:
        asks.append(texts.CONFIRM_DATE.format(date=format_due(due, today)))
    return CardField(texts.FIELD_CONFIRM, " ".join(asks)) if asks else None


def confirm_buttons(confirm_action: str, undo: Button) -> tuple[Button, ...]:
    """[对的] [不对,撤销]: "no" is the touch's own undo."""
    return (
        Button(texts.CONFIRM_YES_BUTTON, confirm_action, ButtonStyle.PRIMARY),
        Button(texts.CONFIRM_NO_BUTTON, undo.action, ButtonStyle.DANGER),
    )


def without_confirmation(card: Card, undo: Button) -> Card:
    """The saved touch's card once confirmed: the question gone, the plain undo button back."""
    return Card(
        task_id=card.task_id,
        title=card.title,
        body=card.body,
        fields=tuple(f for f in card.fields if f.label != texts.FIELD_CONFIRM),
        buttons=(undo,),
    )
