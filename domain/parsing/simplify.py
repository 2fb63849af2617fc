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


def _traditional_characters() -> str:
    """Every ideograph OpenCC changes on its own (one call; newlines keep phrases apart)."""
    chars = [chr(c) for c in range(0x3400, 0xA000)] + [chr(c) for c in range(0xF900, 0xFB00)]
    converted: str = _CONVERTER.convert("\n".join(chars))
    return "".join(a for a, b in zip(chars, converted.split("\n"), strict=True) if a != b)


# Most messages are simplified already: one character-class search settles that.
_TRADITIONAL_RE = re.compile("[" + re.escape(_traditional_characters()) + "]")


@functools.lru_cache(maxsize=4096)
def _char(ch: str) -> str:
    converted: str = _CONVERTER.convert(ch)
    return converted if len(converted) == 1 else ch


def to_simplified(text: str) -> str:
    """``text`` in simplified characters, of the same length (ASCII and simplified text unchanged)."""
    if not _TRADITIONAL_RE.search(text):
        return text
    converted: str = _CONVERTER.convert(text)
    if len(converted) == len(text):
        return converted
    return "".join(_char(ch) for ch in text)
