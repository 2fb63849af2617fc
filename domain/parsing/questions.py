"""Which follow-up questions a touch message still needs, and the likely answers to offer.

Pure. The handler asks them one at a time, in this order; ``questions_for`` lists them all so the
number a message would cost can be counted (``bench/parser_questions.py``). A question is asked
only for a field that is missing or truly vague; a field read with low confidence is confirmed on
the saved touch's card instead (``confirmations_for``).
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass

from domain.parsing.customers import CustomerMatch
from domain.parsing.touch import LOW_CONFIDENCE, ParsedTouch

__all__ = [
    "CUSTOMER_LOW_CONFIDENCE",
    "Ask",
    "Confirm",
    "DayChoice",
    "confirmations_for",
    "day_choices",
    "questions_for",
    "soon_choices",
]

CUSTOMER_LOW_CONFIDENCE = 0.8  # a customer matched below this is confirmed ("是指 华东建材 吗?")


class Ask(enum.StrEnum):
    CUSTOMER = "customer"  # several candidates, or no customer: a card to choose or create a lead
    SUMMARY = "summary"  # nothing said about what was done
    PAST_DATE = "past_date"  # the next action's date has already gone
    NEXT = "next"  # neither a next action nor a date
    NEXT_DAY = "next_day"  # a vague date ("下周"): which day
    NEXT_DATE = "next_date"  # an action without a date
    NEXT_ACTION = "next_action"  # a date without an action


class Confirm(enum.StrEnum):
    CUSTOMER = "customer"
    DATE = "date"


@dataclass(frozen=True)
class DayChoice:
    date: datetime.date
    unsure: bool = False  # "不确定": keep the range, due by its last day


def questions_for(
    match: CustomerMatch, parsed: ParsedTouch, today: datetime.date, *, chit_chat: bool = False
) -> list[Ask]:
    """Every question the message still needs, in the order they are asked (none for chit-chat)."""
    if chit_chat:
        return []
    asks: list[Ask] = []
    if match.status != "matched":
        asks.append(Ask.CUSTOMER)
    if not parsed.summary:
        asks.append(Ask.SUMMARY)
    due = parsed.next_due
    if due is not None and due < today:
        asks.append(Ask.PAST_DATE)
    elif not parsed.next_action and due is None:
        asks.append(Ask.NEXT)
    elif due is None:
        asks.append(Ask.NEXT_DATE)
    else:
        if parsed.next_due_vague:
            asks.append(Ask.NEXT_DAY)
        if not parsed.next_action:
            asks.append(Ask.NEXT_ACTION)
    return asks


def confirmations_for(match: CustomerMatch, parsed: ParsedTouch) -> list[Confirm]:
    """Fields saved but read with low confidence: confirmed on the card, never asked from scratch."""
    confirms: list[Confirm] = []
    if match.status == "matched" and match.confidence < CUSTOMER_LOW_CONFIDENCE:
        confirms.append(Confirm.CUSTOMER)
    if parsed.next_due is not None and not parsed.next_due_vague and parsed.confidence.next_due < LOW_CONFIDENCE:
        confirms.append(Confirm.DATE)
    return confirms


def day_choices(first: datetime.date, latest: datetime.date) -> list[DayChoice]:
    """Likely days in a vague range: for a week Monday, Wednesday, Friday; then "不确定"."""
    span = (latest - first).days
    if span >= 4:
        days = [first, first + datetime.timedelta(days=2), first + datetime.timedelta(days=4)]
    else:
        days = [first + datetime.timedelta(days=i) for i in range(span + 1)][:3]
    return [DayChoice(day) for day in days] + [DayChoice(latest, unsure=True)]


def soon_choices(today: datetime.date) -> list[DayChoice]:
    """Likely days for an action written without one: tomorrow, the day after, next Monday."""
    monday = today + datetime.timedelta(days=7 - today.weekday())
    days = [today + datetime.timedelta(days=1), today + datetime.timedelta(days=2), monday]
    return [DayChoice(day) for day in dict.fromkeys(days)]
