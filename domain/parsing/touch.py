"""A rep's free-text touch message → channel, duration, today's summary, next action and due date.

Pure and rule based. The message is cut into clauses on ``,,。;;、!?`` and line breaks. The
next-action clause is the one with a future date expression or a marker such as ``下次``,
``准备``, ``约了``, ``再去`` (a future date beats a bare marker; a date the customer merely
mentioned — ``他说明天开会`` — counts for less; on a tie the earlier clause wins). Within that clause,
text before the marker/date that is separated from it by a space or carries past-tense content
(``电话约了下周三见面`` → today ``电话``) stays with today's action. Everything else is today's
action: channel, duration and the proposal flag are read from it only.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

from domain.enums import Channel
from domain.parsing.dates import NUMBER_PATTERN as _N
from domain.parsing.dates import (
    DueDate,
    WorkdayCounter,
    cn_to_int,
    find_all_due_dates,
    find_due_date,
    normalize,
)
from domain.parsing.simplify import to_simplified

__all__ = ["LOW_CONFIDENCE", "Channel", "Confidence", "ParsedTouch", "detect_channel", "parse_duration", "parse_next_action", "parse_touch"]


@dataclass(frozen=True)
class Confidence:
    """How sure the reading of each field is, 0..1 (0: not found). Below ``LOW_CONFIDENCE`` a field is
    confirmed with the rep rather than silently saved."""

    channel: float = 0.0
    duration: float = 0.0
    summary: float = 0.0
    next_action: float = 0.0
    next_due: float = 0.0


LOW_CONFIDENCE = 0.7


@dataclass(frozen=True)
class ParsedTouch:
    channel: Channel | None
    duration_minutes: int | None
    summary: str
    next_action: str | None
    next_due: datetime.date | None
    next_due_expression: str | None
    proposal: bool
    # A vague due date ("下周", "过几天") is a range: ``next_due`` is its first day, this its last.
    next_due_latest: datetime.date | None = None
    next_due_part: str | None = None  # part of the day the action is due ("下午", "晚上")
    confidence: Confidence = field(default=Confidence(), compare=False)

    @property
    def next_due_vague(self) -> bool:
        return self.next_due_latest is not None


# --------------------------------------------------------------------------------------------
# Channel
# --------------------------------------------------------------------------------------------

_CHANNEL_KEYWORDS: dict[str, Channel] = {}
for _channel, _words in (
    (
        Channel.WECHAT,
        "微信电话 微信通话 微信语音 微信视频 视频通话 视频电话 语音通话 微信 威信 企业微信 企微 语音 视频",
    ),
    (
        Channel.PHONE,
        "打电话 通电话 电话 通话 致电 电联 来电 回电 去电 座机 拨了 拨过 拨打 拨通 再拨 拨过去 打过去 打给 打了过去",
    ),
    (
        Channel.VISIT,
        "拜访 上门 登门 见面 面谈 面聊 面访 当面 到店 现场 来访 吃饭 饭局 喝茶 参观 考察 走访 工地 来公司 到公司",
    ),
    (Channel.EMAIL, "发邮件 邮件 邮箱 电邮"),
    (Channel.OTHER, "视频会议 腾讯会议 钉钉会议 线上会议 短信 钉钉 展会"),
):
    for _word in _words.split():
        _CHANNEL_KEYWORDS[_word] = _channel
_ASCII_CHANNELS = {
    "call": Channel.PHONE,
    "phone": Channel.PHONE,
    "tel": Channel.PHONE,
    "wx": Channel.WECHAT,
    "vx": Channel.WECHAT,
    "weixin": Channel.WECHAT,
    "wechat": Channel.WECHAT,
    "visit": Channel.VISIT,
    "email": Channel.EMAIL,
    "e-mail": Channel.EMAIL,
    "mail": Channel.EMAIL,
    "sms": Channel.OTHER,
    "qq": Channel.OTHER,
}
# One-character pinyin slips of a channel word (店话 for 电话, 微心 for 微信): read, with less confidence.
_CHANNEL_SLIPS: dict[str, Channel] = {}
for _channel, _words in (
    (Channel.PHONE, "店话 点话 电化 电活 垫话 殿话 典话"),
    (Channel.WECHAT, "威信 微心 为信 维信 薇信 微新 围信 微型聊"),
    (Channel.VISIT, "拜方 败访 摆访 百访 拜仿 白访 拜放"),
    (Channel.EMAIL, "油件 邮建 游件 由件 邮见"),
):
    for _word in _words.split():
        _CHANNEL_SLIPS[_word] = _channel
        _CHANNEL_KEYWORDS.setdefault(_word, _channel)
_CHANNEL_RE = re.compile(
    "|".join(re.escape(w) for w in sorted(_CHANNEL_KEYWORDS, key=len, reverse=True))
    + "|(?<![a-z])(?:"
    + "|".join(re.escape(w) for w in sorted(_ASCII_CHANNELS, key=len, reverse=True))
    + ")(?![a-z])"
)


def detect_channel(text: str) -> Channel | None:
    """Channel of the first channel keyword in ``text`` (longest keyword at that position)."""
    return _channel_reading(normalize(to_simplified(text)))[0]


def _channel_reading(norm: str) -> tuple[Channel | None, float]:
    m = _CHANNEL_RE.search(norm)
    if m is None:
        return None, 0.0
    channel = _CHANNEL_KEYWORDS.get(m[0]) or _ASCII_CHANNELS[m[0]]
    return channel, (0.6 if m[0] in _CHANNEL_SLIPS and m[0] != "威信" else 1.0)


# --------------------------------------------------------------------------------------------
# Duration
# --------------------------------------------------------------------------------------------

_APPROX = r"(?:来|多|余|几|左右)?"
_HOURS_UNIT = r"(?:小时|钟头|小是|中头|hours?(?![a-z])|hrs?(?![a-z])|h(?![a-z]))"
_MINUTES_UNIT = r"(?:分钟|分种|分中|分重|mins?(?![a-z])|minutes?(?![a-z])|分(?![\u4e00-\u9fffa-z0-9]))"
_DURATION_RULES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(
            rf"(?<![0-9.点:])([0-9]+(?:\.[0-9]+)?|{_N})\s*{_APPROX}\s*个?\s*{_APPROX}\s*(半)?\s*(?:个)?\s*{_HOURS_UNIT}"
            rf"(?:\s*(?:零|又)?\s*([0-9]{{1,2}}|[一二三四五六七八九十]{{1,3}})\s*{_MINUTES_UNIT})?"
        ),
        "hours",
    ),
    (re.compile(rf"半\s*个?\s*{_HOURS_UNIT}"), "half"),
    (re.compile(rf"个把\s*{_HOURS_UNIT}"), "about_an_hour"),
    (re.compile(r"(?<![0-9])([0-9]|[一二三两])\s*刻\s*钟"), "quarters"),
    (re.compile(rf"(?<![0-9.点:])([0-9]{{1,3}}|{_N})\s*{_APPROX}\s*个?\s*{_MINUTES_UNIT}"), "minutes"),
]
_MAX_MINUTES = 24 * 60


def _number(token: str) -> float | None:
    if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", token):
        return float(token)
    value = cn_to_int(token)
    return float(value) if value is not None else None


def parse_duration(text: str) -> int | None:
    """Minutes of the first duration in ``text`` ("20分钟", "一个半小时", "40来分钟", "一刻钟")."""
    return _duration_reading(normalize(to_simplified(text)))[0]


def _duration_reading(norm: str) -> tuple[int | None, float]:
    found: list[tuple[int, int, int]] = []
    for pattern, kind in _DURATION_RULES:
        for m in pattern.finditer(norm):
            minutes: float | None
            if kind == "hours":
                hours = _number(m[1])
                if hours is None:
                    continue
                minutes = hours * 60 + (30 if m[2] else 0)
                if m[3]:
                    extra = _number(m[3])
                    minutes += extra or 0
            elif kind == "half":
                minutes = 30
            elif kind == "about_an_hour":
                minutes = 60
            elif kind == "quarters":
                quarters = _number(m[1])
                minutes = None if quarters is None else quarters * 15
            else:
                minutes = _number(m[1])
            if minutes is None or minutes <= 0 or minutes > _MAX_MINUTES:
                continue
            found.append((m.start(), m.start() - m.end(), round(minutes)))
    if not found:
        return None, 0.0
    found.sort()
    return found[0][2], 1.0


# --------------------------------------------------------------------------------------------
# Proposal
# --------------------------------------------------------------------------------------------

_PROPOSAL_RE = re.compile(
    r"方案|报价单|报价表|报价文件|标书|投标文件|建议书|设计稿|proposal|quotation|quote"
    r"|(?:发|给|提交|递交|出|做|改|传|送|寄|更新|调整)(?:了|过去|过去了)?(?:一版|一份|新|最新|份|版)?(?:的)?报价"
    r"|报价(?:已|发|给|传|提交)"
)
_PROPOSAL_NEGATION = re.compile(r"(?:没|未|还没|尚未|不|没有|要|需要|想要|索要|问)\S{0,2}$")


def _mentions_proposal(text: str) -> bool:
    for m in _PROPOSAL_RE.finditer(text):
        if not _PROPOSAL_NEGATION.search(text, max(0, m.start() - 4), m.start()):
            return True
    return False


# --------------------------------------------------------------------------------------------
# Next action
# --------------------------------------------------------------------------------------------

_FW = "\uff0c\uff1b\uff1a\uff01\uff1f\uff5e"  # full-width , ; : ! ? ~ (the original text keeps them)
_CLAUSE_DELIMITERS = re.compile(r"[,;。!?、\n\r;]+")
_NEXT_MARKER_RE = re.compile(
    r"下次|下一步|下步|下回|接下来|后续|回头|改天|准备(?!了)|计划(?!了)|打算|约了|约好|约定|预约|说好"
    r"|(?:上午|下午|中午|晚上|傍晚|晚点|晚些|稍后|待会|等会|过会)(?=\s*再)"
    r"|再(?=去|约|联系|跟进|打|发|谈|聊|沟通|拜访|确认|催|来|过去|上门|见|送|提交|报|看|电话|微信)"
)
# Markers that alone (no date) do not make a clause a next action: an appointment made today.
_APPOINTMENT_ONLY = frozenset({"约了", "约好", "约定", "预约", "说好"})
_LONE_MARKER_RE = re.compile(
    r"(?:下次|下一步|下步|下回|接下来|后续|回头|准备|计划|打算|然后|之后|我们|我)+[:\s]*"
)
_OWN_SUBJECT_RE = re.compile(r"[\s\x00]*(?:我们|我)")
_THIRD_PARTY_RE = re.compile(r"[\s\x00]*(?:他们|他|她|对方|客户|甲方|厂家|老板)")
_REPORTED_RE = re.compile(r"说(?!好)|表示|反馈|提到|告诉我|听说")
_PAST_RE = re.compile(r"了|过(?![去来])|已经|已")
_FILLER_RE = re.compile(
    r"(?:[\s\x00]|我们|我|然后|并且|并|再|和|跟|也|还|就|那么|那|先|另外|同时|之后|后面|最后|于是|所以|双方|他们|他|她"
    r"|对方|客户|说好|商量|决定|定了|定|约)+"
)
_TIME_ADJUNCT_RE = re.compile(
    rf"\s*的?\s*(?:上午|下午|中午|晚上|早上|早晨|傍晚|凌晨|白天)?\s*"
    rf"(?:(?:{_N})\s*(?:点|:|时)\s*(?:半|一刻|[0-9]{{1,2}}|[零一二三四五六七八九十]{{1,3}})?\s*分?)?"
    r"\s*(?:左右|前后|之前|以前|前(?![往去来]))?"
)
_TIME_ADJUNCT_BEFORE_RE = re.compile(r"(?:上午|下午|中午|晚上|早上|早晨|傍晚)\s*$")
_LEAD_STRIP_RE = re.compile(
    rf"^(?:[\s\x00,.;:!?、。~\-{_FW}]|好的|(?:下次|下一步|下步)(?:动作|行动|计划|安排)|下次|下一步|回头|下步|下回|接下来|后续|然后|之后|到时候|到时|等到|计划|打算|准备|预计|争取"
    r"|约了|约好了|约好|约定了|约定|预约了|预约|说好了|说好|双方|我们|我(?![司方])|就|先(?!生)|要(?![求点])"
    r"|会(?![议谈面])|将|需要|定在|约在|安排在|定于|在(?!线)|于)+"
)
_TAIL_STRIP_RE = re.compile(
    rf"(?:[\s\x00,.;:!?、。~\-{_FW}]|吧|哈|啊|呀|啦|哦|呢|嘛|了|定在|约在|安排在|放在|改到|改在|推到|定于|在|于|最晚|最迟"
    r"|之前|以前|前|时间定在|时间是|时间为)+$"
)
_PUNCT_RUN_RE = re.compile(rf"\s*([,;。、!?{_FW}])(?:\s*[,;。、!?{_FW}])*\s*")
_SPACE_RUN_RE = re.compile(r"[ \t\u3000]+")
_WHITESPACE_RE = re.compile(r"\s+")
_BLANKS_RE = re.compile("\x00+")  # characters blanked out (customer name, next action)
_BLANK_RUN_RE = re.compile(r"\s*\x00+\s*")
_EDGE_CHARS = " \t\r\n\u3000,;。、!?.:~-—\uff0c\uff1b\uff1a\uff01\uff1f\uff0e\uff5e"
_TODAY_INTENT_RE = re.compile(r"今晚|前|内")
_TODAY_WORD_RE = re.compile(r"今天|今日|今早|刚才|刚刚")
_LINK_BEFORE_DATE_RE = re.compile(r"(?:定在|约在|安排在|放在|改到|改在|推到|定于|在|于|最晚|最迟)\s*$")
_DURATION_HINT_RE = re.compile(
    r"[0-9一二两三四五六七八九十半]\s*(?:来|多|余)?\s*个?\s*(?:分钟|小时|钟头|min|h|刻钟)"
)


@dataclass
class _Clause:
    start: int
    end: int
    dates: list[DueDate]
    marker: re.Match[str] | None
    score: int


def _is_next_date(due: DueDate, today: datetime.date, analysis: str, clause_end: int) -> bool:
    """A date the next action can be due on: in the future, or later today ("今晚", "今天再打")."""
    if due.date > today:
        return True
    if due.date < today:
        # "11月20日发报价单" is a plan with a date already gone (a slip): keep it as the next action
        # so the caller can ask for a valid date. "11月20日见过面" is a past event and is not.
        return _is_planned_past_date(due, today, analysis, clause_end)
    segment_end = due.span[1]
    while segment_end < clause_end and not analysis[segment_end].isspace():
        segment_end += 1
    following = analysis[due.span[1] : segment_end]
    if _TODAY_INTENT_RE.search(due.expression):
        return True
    if _NEXT_MARKER_RE.search(following) and not _PAST_RE.search(following):
        return True
    # "傍晚再联系", "晚上发报价", "周四拜访" written on a Thursday: later today, unless what follows
    # reads as done ("下午拜访了", "上午电话 1小时").
    if due.part_of_day is not None or _TODAY_PLAN_RE.search(due.expression):
        plan = _APPOINTMENT_DONE_RE.sub("", following)
        return bool(plan.strip()) and not _is_todayish(plan, channel_counts=False)
    return False


_WEEKDAY_RE = re.compile(r"周|星期|礼拜")
_TODAY_PLAN_RE = re.compile(r"周|星期|礼拜|晚点|晚些|待会|等会|过会|一会|稍后|下班|收工")
_APPOINTMENT_DONE_RE = re.compile(r"约(?:好)?了")


_ABSOLUTE_DATE_RE = re.compile(r"月|\d[./-]\d")


def _is_planned_past_date(due: DueDate, today: datetime.date, analysis: str, clause_end: int) -> bool:
    if not _ABSOLUTE_DATE_RE.search(due.expression) or (today - due.date).days > 60:
        return False
    following = analysis[due.span[1] : clause_end]
    return bool(following.strip()) and not _PAST_RE.search(following)


def _clean_action(text: str) -> str | None:
    text = _LEAD_STRIP_RE.sub("", text)
    text = _TAIL_STRIP_RE.sub("", text)
    text = _BLANK_RUN_RE.sub(lambda m: " " if " " in m[0] else "", text)
    text = _SPACE_RUN_RE.sub(" ", text).strip(_EDGE_CHARS)
    return text or None


def _join_gap(m: re.Match[str]) -> str:
    text, start, end = m.string, m.start(), m.end()
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    return " " if before.isascii() and before.isalnum() and after.isascii() and after.isalnum() else ""


def _clean_summary(text: str) -> str:
    text = _BLANKS_RE.sub(_join_gap, text)
    text = _SPACE_RUN_RE.sub(" ", text)
    text = _PUNCT_RUN_RE.sub(lambda m: m[1], text)
    text = re.sub(r"\s*\n\s*", "\n", text)
    return text.strip(_EDGE_CHARS)


def _without(text: str, start: int, end: int) -> str:
    """``text`` with [start, end) and a time-of-day adjunct around it blanked out."""
    adjunct = _TIME_ADJUNCT_RE.match(normalize(text), end)
    if adjunct is not None:
        end = adjunct.end()
    before = _TIME_ADJUNCT_BEFORE_RE.search(text, 0, start)
    if before is not None:
        start = before.start()
    return text[:start] + "\x00" * (end - start) + text[end:]


def _reported(analysis: str, clause_start: int, position: int) -> bool:
    """Whether the date at ``position`` sits in reported speech within its space-separated segment."""
    segment_start = position
    while segment_start > clause_start and not analysis[segment_start - 1].isspace():
        segment_start -= 1
    return _REPORTED_RE.search(analysis, segment_start, position) is not None


def _segment_bounds(analysis: str, low: int, high: int, position: int) -> tuple[int, int]:
    start = position
    while start > low and not analysis[start - 1].isspace():
        start -= 1
    end = position
    while end < high and not analysis[end].isspace():
        end += 1
    return start, end


def _commitment(analysis: str, clause_start: int, clause_end: int, due: DueDate) -> int:
    """How clearly the date's segment is the rep's own plan: +1 marker or 我/我们, -1 他们/客户 ..."""
    seg_start, seg_end = _segment_bounds(analysis, clause_start, clause_end, due.span[0])
    segment = analysis[seg_start:seg_end]
    if _NEXT_MARKER_RE.search(segment) or _OWN_SUBJECT_RE.match(segment):
        return 1
    if _THIRD_PARTY_RE.match(segment):
        return -1
    # "周日客户不在", "15号才回来": the date is when the customer is away, not the rep's plan.
    if _CUSTOMER_STATE_RE.search(analysis, due.span[1], seg_end):
        return -1
    return 0


_CUSTOMER_STATE_RE = re.compile(
    r"(?:客户|他们|他|她|对方|老板|甲方|[\u4e00-\u9fff]总)|不在|出差|开会|休息|放假|才回来|回来|没空|没见|没人|不方便"
)


def _strength(due: DueDate, today: datetime.date, analysis: str) -> int:
    """How surely a candidate date is the next action's: a later day beats a plan for later today
    ("今天上午电话 今晚发资料": 今晚), which beats a slipped past date."""
    if due.date > today:
        return 2
    if due.date < today:
        return 0
    following = analysis[due.span[1] : due.span[1] + 4]
    return 2 if _TODAY_INTENT_RE.search(due.expression) or _NEXT_MARKER_RE.match(following) else 1


def _clauses(analysis: str, today: datetime.date, dates: list[DueDate]) -> list[_Clause]:
    clauses: list[_Clause] = []
    position = 0
    for delimiter in [*_CLAUSE_DELIMITERS.finditer(analysis), None]:
        end = delimiter.start() if delimiter is not None else len(analysis)
        start = position
        position = delimiter.end() if delimiter is not None else len(analysis)
        if not analysis[start:end].strip(" \x00\t"):
            continue
        inside = [
            d
            for d in dates
            if start <= d.span[0] and d.span[1] <= end and _is_next_date(d, today, analysis, end)
        ]
        # A date the customer mentioned ("客户说下周开会") is not the rep's next action, and one
        # the rep commits to ("我们下周一前...", "...再跟进") beats one about the customer's plans.
        inside = [d for d in inside if not _reported(analysis, start, d.span[0])]
        inside.sort(key=lambda d: (-_strength(d, today, analysis), -_commitment(analysis, start, end, d)))
        marker = None
        for m in _NEXT_MARKER_RE.finditer(analysis, start, end):
            if inside or m[0] not in _APPOINTMENT_ONLY:
                marker = m
                break
        score = (2 if inside else 0) + (1 if marker else 0)
        clauses.append(_Clause(start, end, inside, marker, score))
    return clauses


def _segment_start(analysis: str, clause: _Clause, anchor: int) -> int:
    """Start of the whitespace-separated segment of ``clause`` that contains ``anchor``."""
    i = anchor
    while i > clause.start and not analysis[i - 1].isspace():
        i -= 1
    return i


def _is_todayish(segment: str, channel_counts: bool = True) -> bool:
    """Whether text reads as something done today: past tense, a duration, 今天, or a channel."""
    return bool(
        _PAST_RE.search(segment)
        or _DURATION_HINT_RE.search(segment)
        or _TODAY_WORD_RE.search(segment)
        or (channel_counts and _CHANNEL_RE.search(segment))
    )


def _locate_next(masked: str, analysis: str, clause: _Clause) -> tuple[int, int, str | None, DueDate | None]:
    """(start, end) of the next-action part of ``clause``, the next action text, and the due date.

    ``masked`` is the original text with the customer name blanked out.
    """
    due = clause.dates[0] if clause.dates else None
    if due is None:
        anchor = clause.marker.start() if clause.marker is not None else clause.start
    else:
        # A marker in the date's own segment starts the plan ("约了张总下周三…", "准备下周一…").
        anchor = due.span[0]
        segment_start, _end = _segment_bounds(analysis, clause.start, clause.end, anchor)
        marker = _NEXT_MARKER_RE.search(analysis, segment_start, anchor)
        if marker is not None:
            anchor = marker.start()
    seg_start = _segment_start(analysis, clause, anchor)
    # A lone marker word just before ("准备 下周三上门") belongs to the plan as well.
    while seg_start > clause.start:
        previous_start, previous_end = _segment_bounds(analysis, clause.start, clause.end, seg_start - 1)
        while previous_end > previous_start and analysis[previous_end - 1].isspace():
            previous_end -= 1
        previous_start = _segment_start(analysis, clause, previous_end)
        previous = analysis[previous_start:previous_end]
        if not previous or not _LONE_MARKER_RE.fullmatch(previous):
            break
        seg_start = previous_start
        anchor = min(anchor, previous_start)
    prefix = analysis[seg_start:anchor]

    # Later space-separated segments that read as today's doings go back to today's part
    # ("两天后再打 今天聊了十分钟").
    stop = clause.end
    position = anchor
    while True:
        gap = _WHITESPACE_RE.search(analysis, position, clause.end)
        if gap is None:
            break
        following_end = gap.end()
        while following_end < clause.end and not analysis[following_end].isspace():
            following_end += 1
        following = analysis[gap.end() : following_end]
        if due is not None and due.span[0] >= gap.end():
            break  # the due date itself lies further on
        if (
            following
            and _is_todayish(following, channel_counts=False)
            and not _NEXT_MARKER_RE.search(following)
        ):
            stop = gap.start()
            break
        position = gap.end()

    def action_from(begin: int) -> str | None:
        body = masked[begin:stop]
        if due is not None and begin <= due.span[0] < stop:
            body = _without(body, due.span[0] - begin, due.span[1] - begin)
        return _clean_action(body)

    if not prefix or _FILLER_RE.fullmatch(prefix) is not None:
        return seg_start, stop, action_from(anchor), due
    after = action_from(anchor)
    if after is None and due is not None and anchor == due.span[0]:
        # The date closes the clause ("上门拜访定在下周三", "发报价单周五前"): the action is before it.
        linked = bool(_LINK_BEFORE_DATE_RE.search(prefix)) or due.expression.endswith("前")
        if linked or not _is_todayish(prefix):
            return seg_start, stop, action_from(seg_start), due
        return anchor, stop, None, due
    if not _is_todayish(prefix):
        # A topic or person before the date belongs to the plan ("方案下周给", "张总下周三来访").
        return seg_start, stop, action_from(seg_start), due
    return anchor, stop, after, due


def parse_touch(
    text: str,
    today: datetime.date,
    customer_span: tuple[int, int] | None = None,
    calendar: WorkdayCounter | None = None,
) -> ParsedTouch:
    """Read one touch message. ``calendar`` counts "N个工作日后" (default: the holiday library).

    Traditional characters are read as simplified (the summary comes out simplified).
    """
    text = to_simplified(text)
    removed = bytearray(len(text))
    masked = text  # the customer's name blanked out, so it is never read as a date or a marker
    if customer_span is not None:
        c_start, c_end = max(0, customer_span[0]), min(len(text), customer_span[1])
        for i in range(c_start, c_end):
            removed[i] = 1
        if c_start < c_end:
            masked = text[:c_start] + "\x00" * (c_end - c_start) + text[c_end:]
    analysis = normalize(masked)
    dates = find_all_due_dates(masked, today, calendar)

    clauses = _clauses(analysis, today, dates)
    chosen: _Clause | None = None
    for clause in clauses:
        if clause.score > 0 and (chosen is None or clause.score > chosen.score):
            chosen = clause

    next_action: str | None = None
    due: DueDate | None = None
    if chosen is not None:
        cut, stop, next_action, due = _locate_next(masked, analysis, chosen)
        for i in range(cut, stop):
            removed[i] = 1
        if next_action is None and due is not None:
            next_action = _borrow_neighbour_action(masked, analysis, clauses, chosen, removed)

    kept = "".join(ch if not removed[i] else "\x00" for i, ch in enumerate(text))
    summary = _clean_summary(kept)
    today_part = normalize(kept)
    channel, channel_confidence = _channel_reading(today_part)
    duration, duration_confidence = _duration_reading(today_part)
    return ParsedTouch(
        channel=channel,
        duration_minutes=duration,
        summary=summary,
        next_action=next_action,
        next_due=due.date if due else None,
        next_due_expression=due.expression if due else None,
        proposal=_mentions_proposal(today_part),
        next_due_latest=due.latest if due is not None and due.vague else None,
        next_due_part=due.part_of_day if due else None,
        confidence=Confidence(
            channel=channel_confidence,
            duration=duration_confidence,
            summary=1.0 if summary else 0.0,
            next_action=(1.0 if len(next_action) > 1 else 0.6) if next_action else 0.0,
            next_due=_due_confidence(due, today),
        ),
    )


def _due_confidence(due: DueDate | None, today: datetime.date) -> float:
    if due is None:
        return 0.0
    if due.vague:
        return 0.3  # a week or "a few days": ask which day
    if due.date == today and _WEEKDAY_RE.search(due.expression):
        return 0.6  # "周四拜访" on a Thursday: today, most likely — confirmed on the card
    if due.part_of_day is None and _TODAY_PLAN_RE.search(due.expression) and "周" not in due.expression:
        return 0.8  # "晚点", "待会": today, time unsaid
    return 1.0


def _borrow_neighbour_action(
    text: str, analysis: str, clauses: list[_Clause], chosen: _Clause, removed: bytearray
) -> str | None:
    """A bare date clause ("...,下周三,上门拜访" / "下次带样品,周五") takes its action from a neighbour."""
    position = clauses.index(chosen)
    neighbours: list[_Clause] = []
    if position + 1 < len(clauses):
        after = clauses[position + 1]
        body = analysis[after.start : after.end]
        if not after.dates and not _PAST_RE.search(body) and not _DURATION_HINT_RE.search(body):
            neighbours.append(after)
    if position > 0:
        before = clauses[position - 1]
        if before.marker is not None and not before.dates:
            neighbours.append(before)
    for neighbour in neighbours:
        action = _clean_action(text[neighbour.start : neighbour.end])
        if action:
            for i in range(neighbour.start, neighbour.end):
                removed[i] = 1
            return action
    return None


def parse_next_action(
    text: str, today: datetime.date, calendar: WorkdayCounter | None = None
) -> tuple[str | None, DueDate | None]:
    """A slot-filling answer: ``"周五前发报价单"`` → ``("发报价单", DueDate(...))``.

    ``"明天"`` → ``(None, DueDate)``; ``"再约"`` → ``("再约", None)``.
    """
    text = to_simplified(text)
    due = find_due_date(text, today, calendar)
    body = text if due is None else _without(text, due.span[0], due.span[1])
    return _clean_action(body), due
