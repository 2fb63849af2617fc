"""Pure rules of 进度停滞: stall phrases, no-progress, when to escalate, and the 障碍分析清单."""

from __future__ import annotations

import datetime as dt

import pytest

from domain.parsing.dates import normalize
from domain.parsing.simplify import to_simplified
from domain.rules.checklist import (
    AlertItem,
    ChecklistInput,
    EvidenceItem,
    LibraryEntry,
    ObstacleItem,
    TouchItem,
    build_checklist,
    obstacle_key,
)
from domain.rules.stall import _is_noise, compact, find_stall_phrases, is_no_progress, should_escalate
from domain.rules.thresholds import DEFAULT_STALL_PHRASES

PHRASES = DEFAULT_STALL_PHRASES


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("客户在忙,再约时间", ["客户在忙", "再约时间"]),
        ("客户在忙,再约时间", ["客户在忙", "再约时间"]),
        ("客户 在忙。 再约·时间!", ["客户在忙", "再约时间"]),
        ("华东建材 电话 没接电话,明天再打", ["没接电话"]),
        ("张总说等领导回复", ["等领导回复"]),
        ("微信发了方案,已读不回", ["已读不回"]),
        ("下次再说吧,客户在忙", ["下次再说", "客户在忙"]),  # in the order they are said
        ("再约时间……再约时间", ["再约时间"]),  # each phrase once
        ("聊了报价细节,下周三上门拜访", []),
        ("客户很忙但约好了周五面谈", []),
        ("", []),
    ],
)
def test_stall_phrases_are_found_whatever_the_punctuation(text, found):
    assert find_stall_phrases(text, PHRASES) == found


def test_a_phrase_inside_a_longer_phrase_is_reported_once_as_the_longer_one():
    assert find_stall_phrases("客户说再考虑一下", ["再考虑", "再考虑一下"]) == ["再考虑一下"]
    assert find_stall_phrases("再考虑,然后再考虑一下", ["再考虑", "再考虑一下"]) == ["再考虑", "再考虑一下"]


def test_configured_phrases_are_matched_half_width_and_case_blind():
    assert find_stall_phrases("客户说 ＯＫ 再说", ["ok再说"]) == ["ok再说"]
    assert find_stall_phrases("随便聊聊", [" ", "、"]) == []  # empty after cleaning: ignored


@pytest.mark.parametrize(
    ("phrases", "stage_advanced", "milestone", "expected"),
    [
        (["客户在忙"], False, False, True),
        (["客户在忙"], True, False, False),  # the stage moved: progress
        (["客户在忙"], False, True, False),  # a deliverable arrived: progress
        (["客户在忙"], True, True, False),
        ([], False, False, False),  # nothing stalled was said
    ],
)
def test_no_progress_needs_a_stall_phrase_and_no_movement(phrases, stage_advanced, milestone, expected):
    assert is_no_progress(phrases, stage_advanced=stage_advanced, milestone_completed=milestone) is expected


@pytest.mark.parametrize(
    ("newest_first", "expected"),
    [
        ([True, True], True),
        ([True, True, False], True),  # only the last two matter
        ([True, False, True], False),  # stall, progress, stall
        ([False, True], False),
        ([True], False),  # a single stall is not a run
        ([], False),
    ],
)
def test_escalation_needs_the_last_two_counted_touches_without_progress(newest_first, expected):
    assert should_escalate(newest_first) is expected


# ------------------------------------------------------------------------------ checklist

TODAY = dt.date(2026, 11, 27)
LIBRARY = {
    obstacle_key("技术适配存疑"): LibraryEntry(
        "技术适配存疑", "先安排技术对接会", ("技术负责人参加过对接会吗?", "测试标准由谁确认?")
    ),
    obstacle_key("预算审批未启动"): LibraryEntry("预算审批未启动", "", ("预算由哪个部门发起?",)),
}
DEFAULTS = ("默认问题一", "默认问题二")


def _touch(day: int, phrases: tuple[str, ...] = (), summary: str = "电话沟通") -> TouchItem:
    return TouchItem(dt.date(2026, 11, day), "电话", summary, phrases, bool(phrases))


def _input(**changes) -> ChecklistInput:
    base = {
        "customer": "华东建材",
        "owner": "李明",
        "stage": "需求确认",
        "stage_entered_on": dt.date(2026, 11, 20),
        "today": TODAY,
        "touches": [_touch(27, ("没接电话",)), _touch(26, ("客户在忙", "再约时间")), _touch(24), _touch(22)],
        "obstacles": [],
        "alerts": [],
        "library": LIBRARY,
        "default_questions": DEFAULTS,
    }
    return ChecklistInput(**{**base, **changes})


def test_checklist_header_touches_and_phrases():
    sheet = build_checklist(_input())
    assert (sheet.customer, sheet.owner, sheet.stage, sheet.days_in_stage) == ("华东建材", "李明", "需求确认", 7)
    assert [t.occurred_on.day for t in sheet.touches] == [27, 26, 24]  # the last three, newest first
    assert sheet.stall_phrases == ("客户在忙", "再约时间", "没接电话")  # oldest first, each once


def test_phrases_of_a_touch_that_still_made_progress_are_not_stall_phrases():
    moved = TouchItem(dt.date(2026, 11, 25), "电话", "客户在忙,但签了意向书", ("客户在忙",), no_progress=False)
    sheet = build_checklist(_input(touches=[_touch(27, ("没接电话",)), moved]))
    assert sheet.stall_phrases == ("没接电话",)


@pytest.mark.parametrize(
    ("obstacles", "key_obstacle", "questions", "guidance"),
    [
        # no obstacles answered: the default questions
        ([], "", DEFAULTS, ()),
        # an open obstacle with a library entry: its questions and guidance
        (
            [ObstacleItem("② 技术适配存疑", "open", TODAY)],
            "",
            ("技术负责人参加过对接会吗?", "测试标准由谁确认?"),
            ("技术适配存疑",),
        ),
        # a resolved obstacle no longer drives the review
        ([ObstacleItem("技术适配存疑", "resolved", TODAY)], "", DEFAULTS, ()),
        # an obstacle the library does not know: defaults
        ([ObstacleItem("竞品压价", "open", TODAY)], "", DEFAULTS, ()),
        # several obstacles: questions of each, in obstacle order, without repeats
        (
            [ObstacleItem("预算审批未启动", "open", TODAY), ObstacleItem("技术适配存疑", "awaiting_evidence", TODAY)],
            "",
            ("预算由哪个部门发起?", "技术负责人参加过对接会吗?", "测试标准由谁确认?"),
            ("预算审批未启动", "技术适配存疑"),
        ),
        # the customer's recorded key obstacle (e.g. imported) counts too
        ([], "预算审批未启动", ("预算由哪个部门发起?",), ("预算审批未启动",)),
    ],
)
def test_review_questions_come_from_the_obstacle_library(obstacles, key_obstacle, questions, guidance):
    sheet = build_checklist(_input(obstacles=obstacles, key_obstacle=key_obstacle))
    assert sheet.questions == questions
    assert tuple(g.obstacle for g in sheet.guidance) == guidance


def test_open_obstacles_come_before_resolved_ones_and_keep_their_evidence():
    memo = EvidenceItem("file", dt.date(2026, 11, 23), "对接纪要.pdf")
    sheet = build_checklist(
        _input(
            obstacles=[
                ObstacleItem("决策链不清晰", "resolved", dt.date(2026, 11, 25)),
                ObstacleItem("技术适配存疑", "open", dt.date(2026, 11, 21), "技术对接会议纪要", (memo,)),
            ]
        )
    )
    assert [o.option for o in sheet.obstacles] == ["技术适配存疑", "决策链不清晰"]
    assert sheet.obstacles[0].evidence == (memo,)


def test_red_alerts_are_listed_first_and_the_sheet_is_json_ready():
    alerts = [
        AlertItem("cold", "yellow", dt.date(2026, 11, 24)),
        AlertItem("quote_overdue", "red", dt.date(2026, 11, 26)),
    ]
    sheet = build_checklist(_input(alerts=alerts))
    assert [a.rule for a in sheet.alerts] == ["quote_overdue", "cold"]
    data = sheet.to_dict()
    assert data["touches"][0]["occurred_on"] == "2026-11-27"
    assert data["alerts"][0]["raised_on"] == "2026-11-26"
    assert data["days_in_stage"] == 7


def test_days_in_stage_never_go_negative():
    assert build_checklist(_input(stage_entered_on=TODAY + dt.timedelta(days=1))).days_in_stage == 0


def test_compact_drops_exactly_spaces_punctuation_symbols_and_controls_for_every_character():
    # compact() remembers each character's class in a translate table; check it against the
    # definition for every character of the planes reps type in, twice (first seen, then remembered).
    for _ in range(2):
        for start in range(0, 0x30000, 4096):
            text = "".join(chr(c) for c in range(start, start + 4096) if not 0xD800 <= c <= 0xDFFF)
            prepared = normalize(to_simplified(text))
            assert compact(text) == "".join(ch for ch in prepared if not _is_noise(ch))
