"""Reps' everyday wording, one table per class (see tests/rep_messages.py), read as the handler does."""

from __future__ import annotations

import datetime

import pytest

from domain.parsing.chitchat import is_chit_chat
from domain.parsing.customers import CustomerMatch, CustomerName, match_customer
from domain.parsing.touch import ParsedTouch, parse_touch
from domain.rules.stall import find_stall_phrases, find_stalls
from domain.rules.thresholds import DEFAULT_STALL_PHRASES
from tests.rep_messages import (
    ACTIONS,
    CHIT_CHAT,
    CUSTOMERS,
    NOT_CHIT_CHAT,
    OWNERSHIP,
    SAME_DAY,
    SLIPS,
    STALLS,
    SUMMARIES,
    WORKDAYS,
    Act,
    Due,
    Slip,
    Stall,
    Summary,
)

NAMES = [CustomerName(cid, name, contacts=contacts) for cid, name, contacts in CUSTOMERS]


def read(text: str, today: datetime.date) -> tuple[CustomerMatch, ParsedTouch]:
    match = match_customer(text, NAMES)
    return match, parse_touch(text, today, match.span if match.status == "matched" else None)


@pytest.mark.parametrize("case", STALLS, ids=lambda c: c.text)
def test_stall_is_recognised_by_meaning(case: Stall) -> None:
    kinds = {hit.kind for hit in find_stalls(case.text, DEFAULT_STALL_PHRASES)}
    assert kinds == set(case.kinds)
    # what escalation stores: a non-empty list exactly when the message stalls
    assert bool(find_stall_phrases(case.text, DEFAULT_STALL_PHRASES)) is bool(case.kinds)


def test_configured_phrases_extend_the_classes() -> None:
    text = "客户说要走个内部评审"
    assert find_stall_phrases(text, DEFAULT_STALL_PHRASES) == []
    assert find_stall_phrases(text, (*DEFAULT_STALL_PHRASES, "内部评审")) == ["内部评审"]


@pytest.mark.parametrize("case", SAME_DAY + OWNERSHIP + WORKDAYS, ids=lambda c: c.text)
def test_next_due_date_is_the_action_date(case: Due) -> None:
    match, parsed = read(case.text, case.today)
    assert match.status == "matched"
    assert parsed.next_due == case.due
    if case.action is not None:
        assert parsed.next_action is not None and case.action in parsed.next_action
    assert parsed.next_due_vague is case.vague
    if case.vague:
        assert parsed.next_due_latest is not None and parsed.next_due_latest > parsed.next_due
    if case.part is not None:
        assert parsed.next_due_part == case.part


@pytest.mark.parametrize("case", ACTIONS, ids=lambda c: c.text)
def test_actions_and_channels_are_read(case: Act) -> None:
    match, parsed = read(case.text, case.today)
    assert match.status == "matched"
    assert parsed.channel == case.channel
    if case.action is None:
        assert parsed.next_action is None
    else:
        assert parsed.next_action is not None and case.action in parsed.next_action
        assert parsed.next_due == case.due


@pytest.mark.parametrize("case", SUMMARIES, ids=lambda c: c.text)
def test_summary_keeps_who_and_how_and_leaves_out_the_next_action(case: Summary) -> None:
    match, parsed = read(case.text, datetime.date(2026, 12, 3))
    assert match.status == "matched"
    for word in case.keeps:
        assert word in parsed.summary
    for word in case.drops:
        assert word not in parsed.summary


@pytest.mark.parametrize("text", CHIT_CHAT)
def test_chit_chat_is_recognised(text: str) -> None:
    assert is_chit_chat(text)


@pytest.mark.parametrize("text", NOT_CHIT_CHAT)
def test_a_touch_opening_with_a_greeting_is_not_chit_chat(text: str) -> None:
    assert not is_chit_chat(text)


@pytest.mark.parametrize("case", SLIPS, ids=lambda c: c.text)
def test_traditional_characters_and_slips_are_read(case: Slip) -> None:
    match, parsed = read(case.text, datetime.date(2026, 12, 3))
    assert match.customer_id == case.customer_id
    assert parsed.channel == case.channel
    assert parsed.duration_minutes == case.duration
    assert parsed.next_due == case.due
