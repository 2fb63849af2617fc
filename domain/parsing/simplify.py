"""Traditional → simplified Chinese, before anything else reads a message.

Reps on a traditional-Chinese input method write 電話 for 电话 and 華東 for 华东. OpenCC (the
maintained converter, with its own phrase tables) turns the text into simplified characters. The
result always has the length of the input, so spans found in it index the original message:
should a phrase conversion ever change the length, the text is converted character by character.

Pure: OpenCC reads its dictionaries once, when the converter is built at import.
"""

from __future__ import annotations

import functools
import re

import opencc

__all__ = ["to_simplified"]

_CONVERTER = opencc.OpenCC("t2s")
# Characters that can only need converting if the text has a CJK ideograph at all.
_CJK_RE = re.compile("[\u3400-\u9fff\uf900-\ufaff]")


@functools.lru_cache(maxsize=4096)
def _char(ch: str) -> str:
    converted: str = _CONVERTER.convert(ch)
    return converted if len(converted) == 1 else ch


def to_simplified(text: str) -> str:
    """``text`` in simplified characters, of the same length (ASCII and simplified text unchanged)."""
    if not _CJK_RE.search(text):
        return text
    converted: str = _CONVERTER.convert(text)
    if len(converted) == len(text):
        return converted
    return "".join(_char(ch) for ch in text)
