"""Chit-chat: a greeting, thanks or an acknowledgement is not a touch and names no customer."""

from __future__ import annotations

import re

from domain.parsing.dates import normalize
from domain.parsing.simplify import to_simplified

__all__ = ["is_chit_chat", "is_greeting"]

_WORDS = (
    "你好 您好 你们好 大家好 早 早上好 上午好 中午好 下午好 晚上好 早安 午安 晚安 在吗 在不在 在么 在嘛 有人吗"
    " 谢谢 谢了 多谢 感谢 谢谢你 谢谢您 辛苦了 辛苦 好的 好 好滴 好嘞 好吧 行 可以 嗯 嗯嗯 哦 哦哦 收到 明白 知道了"
    " 了解 ok okay 好的收到 哈哈 哈哈哈 hello hi hey 哈喽 嗨 thx thanks thank you 再见 拜拜 bye"
)
_PARTICLES = "啊呀啦哈哦呢吧嘛么哟喔~"
_CHAT_RE = re.compile(
    "(?:"
    + "|".join(re.escape(w) for w in sorted(_WORDS.split(), key=len, reverse=True))
    + f")+[{_PARTICLES}]*"
)
_NOISE_RE = re.compile(r"[\s,.;:!?、。~…·'\"“”‘’()\-_]+")
_SYMBOLS_ONLY_RE = re.compile(r"[\W_]*", re.UNICODE)


def is_chit_chat(text: str) -> bool:
    """A message made only of greetings, thanks, acknowledgements and emoji ("你好", "好的谢谢", "👍")."""
    norm = _NOISE_RE.sub("", normalize(to_simplified(text)).strip())
    if not norm:
        return bool(text.strip())  # "?" or "..." alone
    if _SYMBOLS_ONLY_RE.fullmatch(norm):
        return True  # emoji and symbols only
    words = norm.replace("thankyou", "thanks")
    return _CHAT_RE.fullmatch(words) is not None


_GREETING_RE = re.compile(r"你好|您好|大家好|早|午好|晚上好|在吗|在不在|在么|在嘛|有人吗|hello|hi|hey|哈喽|嗨")


def is_greeting(text: str) -> bool:
    """Chit-chat that opens a conversation ("你好", "在吗") rather than closing one ("谢谢", "好的")."""
    return is_chit_chat(text) and _GREETING_RE.search(normalize(to_simplified(text))) is not None
