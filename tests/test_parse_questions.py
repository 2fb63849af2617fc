"""Which follow-up questions a message needs, and which readings are confirmed instead (pure)."""

from __future__ import annotations

import datetime
import random

from domain.parsing.chitchat import is_chit_chat
from domain.parsing.customers import CustomerMatch, CustomerName, match_customer
from domain.parsing.questions import (
    Ask,
    Confirm,
    DayChoice,
    confirmations_for,
    day_choices,
    questions_for,
    soon_choices,
)
from domain.parsing.touch import parse_touch
from domain.rules.stall import find_stalls

D = datetime.date
THU = D(2026, 12, 3)
NAMES = [CustomerName(1, "华东建材", contacts=("王建国",)), CustomerName(2, "金地置业")]


def plan(text: str, today: datetime.date = THU) -> tuple[list[Ask], list[Confirm]]:
    match = match_customer(text, NAMES)
    parsed = parse_touch(text, today, match.span if match.status == "matched" else None)
    return questions_for(match, parsed, today, chit_chat=is_chit_chat(text)), confirmations_for(match, parsed)


def test_a_complete_message_needs_no_question_and_no_confirmation() -> None:
    assert plan("华东建材 电话20分钟 聊了报价细节 下周三上门拜访") == ([], [])


def test_chit_chat_needs_no_question() -> None:
    assert plan("你好") == ([], [])


def test_a_vague_week_asks_which_day_only() -> None:
    assert plan("华东建材 电话20分钟 聊了报价 下周再联系") == ([Ask.NEXT_DAY], [])


def test_a_message_without_a_next_step_asks_for_it() -> None:
    assert plan("华东建材 电话20分钟 聊了报价") == ([Ask.NEXT], [])


def test_an_action_without_a_date_asks_when() -> None:
    assert plan("华东建材 电话20分钟 聊了报价 准备发报价单") == ([Ask.NEXT_DATE], [])


def test_an_unknown_customer_asks_for_the_customer() -> None:
    asks, _ = plan("远大重工 电话20分钟 聊了报价 明天发报价单")
    assert asks == [Ask.CUSTOMER]


def test_a_misspelt_customer_is_confirmed_not_asked() -> None:
    match = match_customer("华东建才 电话20分钟", NAMES)
    assert match.status == "matched" and match.customer_id == 1 and match.confidence < 0.8
    assert plan("华东建才 电话20分钟 聊了报价 明天发报价单") == ([], [Confirm.CUSTOMER])


def test_the_name_as_written_is_matched_with_full_confidence() -> None:
    assert match_customer("华东建材 电话", NAMES).confidence == 1.0
    assert CustomerMatch(status="none").confidence == 0.0


def test_a_weekday_that_is_today_is_confirmed() -> None:
    assert plan("华东建材 电话20分钟 聊了报价 周四拜访") == ([], [Confirm.DATE])


def test_day_choices_for_a_week_are_monday_wednesday_friday_and_not_sure() -> None:
    assert day_choices(D(2026, 12, 7), D(2026, 12, 11)) == [
        DayChoice(D(2026, 12, 7)),
        DayChoice(D(2026, 12, 9)),
        DayChoice(D(2026, 12, 11)),
        DayChoice(D(2026, 12, 11), unsure=True),
    ]


def test_day_choices_for_a_few_days_list_them() -> None:
    assert [c.date for c in day_choices(D(2026, 12, 5), D(2026, 12, 6))] == [D(2026, 12, 5), D(2026, 12, 6), D(2026, 12, 6)]


def test_soon_choices_are_tomorrow_the_day_after_and_next_monday() -> None:
    assert [c.date for c in soon_choices(THU)] == [D(2026, 12, 4), D(2026, 12, 5), D(2026, 12, 7)]
    # on a Saturday "the day after tomorrow" is next Monday already: listed once
    assert [c.date for c in soon_choices(D(2026, 12, 5))] == [D(2026, 12, 6), D(2026, 12, 7)]


VOCABULARY = "你好 谢谢 好的 没人接 等老板 不用 签了 再考虑 已读 不回 客户 在忙 下周 電話 华东建材 , 。 👍 ok 1h".split()


def test_random_messages_never_break_stall_or_chit_chat_reading() -> None:
    rng = random.Random(20261203)
    for _ in range(1000):
        text = rng.choice(["", " "]).join(rng.choice(VOCABULARY) for _ in range(rng.randint(0, 8)))
        for hit in find_stalls(text, ("再约时间",)):
            assert hit.phrase and hit.start < hit.end
        chat = is_chit_chat(text)
        assert chat in (True, False)
        plan(text)
