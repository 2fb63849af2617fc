"""进度停滞: whether a touch made substantive progress, and when a run of stalls needs a manager.

Pure functions (SPEC §3.2). A touch makes *no substantive progress* when its text contains one of
the configured stall phrases (再约时间, 客户在忙, 等领导回复 …) and, since the previous touch, the
customer neither advanced a stage nor completed a milestone. The last two counted touches both
without progress → escalate.

Phrase matching ignores spaces, punctuation and full-width forms on both sides, so
"客户在忙,再约时间", "客户 在忙" and "再约·时间" all match. A phrase found only inside a longer
matched phrase ("再考虑" inside "再考虑一下") is reported once, as the longer phrase.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

from domain.parsing.dates import normalize

__all__ = ["ESCALATE_AFTER", "compact", "find_stall_phrases", "is_no_progress", "should_escalate"]

# Consecutive no-progress touches that put a customer under review.
ESCALATE_AFTER = 2


def _is_noise(ch: str) -> bool:
    """Whitespace, punctuation and symbols: never part of what a phrase means."""
    return ch.isspace() or unicodedata.category(ch)[0] in "PSZC"


def compact(text: str) -> str:
    """``text`` half-width, lower case, without spaces, punctuation or symbols."""
    return "".join(ch for ch in normalize(text) if not _is_noise(ch))


def find_stall_phrases(text: str, phrases: Iterable[str]) -> list[str]:
    """The configured stall phrases found in ``text``, in the order they appear, each once."""
    haystack = compact(text)
    if not haystack:
        return []
    hits: list[tuple[int, int, str]] = []
    for phrase in dict.fromkeys(phrases):  # de-duplicated, configuration order kept
        needle = compact(phrase)
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
    return list(dict.fromkeys(phrase for _start, _end, phrase in kept))


def is_no_progress(stall_phrases: Sequence[str], *, stage_advanced: bool, milestone_completed: bool) -> bool:
    """A stall phrase was said, and neither the stage nor a milestone moved since the last touch."""
    return bool(stall_phrases) and not stage_advanced and not milestone_completed


def should_escalate(no_progress_newest_first: Sequence[bool], *, run: int = ESCALATE_AFTER) -> bool:
    """True when the newest ``run`` counted touches all made no progress.

    The caller passes only the touches that count: not withdrawn, and logged after the customer
    last came back from a review. Fewer than ``run`` touches never escalate.
    """
    return len(no_progress_newest_first) >= run and all(no_progress_newest_first[:run])
