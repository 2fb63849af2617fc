"""进度停滞: whether a touch made substantive progress, and when a run of stalls needs a manager.

Pure functions (SPEC §3.2). A touch makes *no substantive progress* when its text says the
customer stalled and, since the previous touch, the customer neither advanced a stage nor completed
a milestone. The last two counted touches both without progress → escalate.

A stall is recognised by meaning, in six classes reps write a hundred ways (``StallKind``): no
answer (无人接听, 打了两次没人理, 关机), busy or away (正开会, 出差了), thinking it over (还要想想),
postponed (过阵子再聊, 年后再说), waiting on a third party (等老板拍板, 走流程) and read-and-ignored
(已读没回, 石沉大海). The configured stall phrases (再约时间, 客户在忙 …) extend the classes.
A class word under a negation (不用再等领导了, 不用考虑了) is no stall, and real progress said
after the last stall (…后来直接签了合同, 今天打通了) makes the whole message progress.

Phrase matching ignores spaces, punctuation and full-width forms on both sides, so
"客户在忙,再约时间", "客户 在忙" and "再约·时间" all match. A phrase found only inside a longer
matched phrase ("再考虑" inside "再考虑一下") is reported once, as the longer phrase.
"""

from __future__ import annotations

import enum
import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from domain.parsing.dates import normalize
from domain.parsing.simplify import to_simplified

__all__ = [
    "ESCALATE_AFTER",
    "StallHit",
    "StallKind",
    "compact",
    "find_stall_phrases",
    "find_stalls",
    "is_no_progress",
    "should_escalate",
]

# Consecutive no-progress touches that put a customer under review.
ESCALATE_AFTER = 2


def _is_noise(ch: str) -> bool:
    """Whitespace, punctuation and symbols: never part of what a phrase means."""
    return ch.isspace() or unicodedata.category(ch)[0] in "PSZC"


class _DropNoise(dict[int, str | None]):
    """A ``str.translate`` table deleting noise characters, filled as characters are first seen
    (a message's characters are mostly ones seen before: the lookup runs in C)."""

    LIMIT = 50_000  # distinct characters remembered; beyond, each is classified again

    def __missing__(self, code: int) -> str | None:
        ch = chr(code)
        kept = None if _is_noise(ch) else ch
        if len(self) < self.LIMIT:
            self[code] = kept
        return kept


_DROP_NOISE = _DropNoise()


def compact(text: str) -> str:
    """``text`` simplified, half-width, lower case, without spaces, punctuation or symbols."""
    return normalize(to_simplified(text)).translate(_DROP_NOISE)


class StallKind(enum.StrEnum):
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    THINKING = "thinking"
    POSTPONED = "postponed"
    WAITING = "waiting"
    IGNORED = "ignored"
    PHRASE = "phrase"  # a configured phrase outside every class


_THIRD_PARTY = r"(?:老板|领导|上面|上级|总部|财务|采购|法务|技术|他们|对方|客户|甲方|董事长|老总|总经理|[\u4e00-\u9fff]总)"
_CLASS_PATTERNS: tuple[tuple[StallKind, re.Pattern[str]], ...] = (
    (
        StallKind.NO_ANSWER,
        re.compile(
            r"(?:没人|无人|没有人|没|没有|未|不)接(?:听|通|电话)?(?![受待单洽手触到])|(?:打|拨)不通|没(?:打|拨)?通"
            r"|关机|占线|停机|无人应答|没人应|没人理|没人回应|挂断|拒接|拉黑"
        ),
    ),
    (
        StallKind.BUSY,
        re.compile(
            r"(?:正在|正|在)(?:开会|忙|出差|外地|外面|路上|开车|休假|住院)|在忙|很忙|太忙|忙着|忙不过来|没空|没时间"
            r"|(?<!我)(?<!我们)出差|不在(?:公司|办公室|单位|本地|国内)|不方便|休假中|(?<!我)请假"
        ),
    ),
    (
        StallKind.THINKING,
        re.compile(r"想想|想一想|考虑|斟酌|琢磨|犹豫|掂量|权衡|比较比较|对比一下|货比三家"),
    ),
    (
        StallKind.POSTPONED,
        re.compile(
            r"过(?:一)?阵子|过段时间|过一段|过些(?:天|日子)|(?:年|节)后再|以后再|下次再说|回头再说|改天再|再说吧|再说(?![明服一])"
            r"|暂缓|先放(?:放|一放)|放一放|搁置|推迟|延期|往后(?:推|放)|再约时间|改期|缓一缓|等等看|再等等|暂时不"
        ),
    ),
    (
        StallKind.WAITING,
        re.compile(
            rf"等(?:一下)?{_THIRD_PARTY}.{{0,6}}?(?:拍板|决定|定|批|审批|确认|回复|回话|答复|签字|消息|通知|意见|开会)"
            rf"|等{_THIRD_PARTY}|走流程|走审批|审批中|在审批|内部(?:流程|讨论|评估|商量)|上会"
        ),
    ),
    (
        StallKind.IGNORED,
        re.compile(
            r"已读(?:不回|没回|未回)?(?![了过])|(?:不|没|未|没有)回(?:复|消息|话|应)?(?![来去家公国头访款])"
            r"|没反应|没动静|石沉大海|没下文|没音讯|(?<!人)(?:不|没)(?:搭)?理(?![想由解财])"
        ),
    ),
)
# "不用再等领导了", "不用考虑了": the class word is denied.
_NEGATED_BEFORE = re.compile(r"(?:不用|不需要|无需|用不着|不必|没必要|别|不再)(?:再)?$")
# Said after the last stall, these make the touch progress ("…后来直接签了合同").
_PROGRESS = re.compile(
    r"签了|已签|签下|签订了|签约了|签好|定了|定下|敲定|确定了|说定|同意了|同意|答应了|答应|成交|中标|下单|下了单"
    r"|付款了|付了|打款了|已付|已打款|打通了|接通了|联系上了|回复了|回消息了|拍板了|批了|通过了|约好|约定了|约到了"
)


@dataclass(frozen=True)
class StallHit:
    kind: StallKind
    phrase: str  # the configured phrase, or the words the rep wrote (compacted)
    start: int  # in the compacted text
    end: int


@functools.lru_cache(maxsize=1024)
def _compact_phrase(phrase: str) -> str:
    """``compact`` of a configured phrase: the same few phrases are looked for in every touch."""
    return compact(phrase)


def _configured_hits(haystack: str, phrases: Iterable[str]) -> list[tuple[int, int, str]]:
    hits: list[tuple[int, int, str]] = []
    for phrase in dict.fromkeys(phrases):  # de-duplicated, configuration order kept
        needle = _compact_phrase(phrase)
        if not needle:
            continue
        start = haystack.find(needle)
        while start != -1:
            hits.append((start, start + len(needle), phrase))
            start = haystack.find(needle, start + 1)
    # Longest first, so that a phrase inside a longer hit at the same place is dropped.
    hits.sort(key=lambda hit: (hit[0] - hit[1], hit[0]))
    kept: list[tuple[int, int, str]] = []
    for start, end, phrase in hits:
        if any(k_start <= start and end <= k_end for k_start, k_end, _ in kept):
            continue
        kept.append((start, end, phrase))
    kept.sort()
    return kept


def _class_hits(haystack: str) -> list[StallHit]:
    hits: list[StallHit] = []
    for kind, pattern in _CLASS_PATTERNS:
        for m in pattern.finditer(haystack):
            if _NEGATED_BEFORE.search(haystack, max(0, m.start() - 4), m.start()):
                continue
            hits.append(StallHit(kind, m[0], m.start(), m.end()))
    # One reading per stretch of text: the earliest, then longest, wins ("没人理" is no answer).
    hits.sort(key=lambda h: (h.start, h.start - h.end))
    kept: list[StallHit] = []
    for hit in hits:
        if any(k.start < hit.end and hit.start < k.end for k in kept):
            continue
        kept.append(hit)
    return kept


def find_stalls(text: str, phrases: Iterable[str] = ()) -> list[StallHit]:
    """Every stall said in ``text``, in order: class hits and configured phrases.

    A configured phrase covering a class hit takes that class ("再约时间" is postponed); one
    outside every class is ``StallKind.PHRASE``. Progress said after the last stall clears all.
    """
    haystack = compact(text)
    if not haystack:
        return []
    classes = _class_hits(haystack)
    hits: list[StallHit] = []
    for start, end, phrase in _configured_hits(haystack, phrases):
        inside = [c for c in classes if start <= c.start and c.end <= end]
        if not inside:
            overlapping = [c for c in classes if c.start < end and start < c.end]
            inside = overlapping
        hits.append(StallHit(inside[0].kind if inside else StallKind.PHRASE, phrase, start, end))
    for hit in classes:
        if not any(h.start < hit.end and hit.start < h.end for h in hits):
            hits.append(hit)
    if not hits:
        return []
    hits.sort(key=lambda h: (h.start, h.end))
    if _PROGRESS.search(haystack, max(h.end for h in hits)):
        return []
    return hits


def find_stall_phrases(text: str, phrases: Iterable[str]) -> list[str]:
    """The stalls in ``text`` as words to show: configured phrases as configured, class hits as
    written; in the order they appear, each once."""
    return list(dict.fromkeys(hit.phrase for hit in find_stalls(text, phrases)))


def is_no_progress(stall_phrases: Sequence[str], *, stage_advanced: bool, milestone_completed: bool) -> bool:
    """A stall phrase was said, and neither the stage nor a milestone moved since the last touch."""
    return bool(stall_phrases) and not stage_advanced and not milestone_completed


def should_escalate(no_progress_newest_first: Sequence[bool], *, run: int = ESCALATE_AFTER) -> bool:
    """True when the newest ``run`` counted touches all made no progress.

    The caller passes only the touches that count: not withdrawn, and logged after the customer
    last came back from a review. Fewer than ``run`` touches never escalate.
    """
    return len(no_progress_newest_first) >= run and all(no_progress_newest_first[:run])
