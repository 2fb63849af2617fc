"""Text hygiene for names and free text that people type: what is invisible is not content.

``visible_text`` is the one normalisation for anything that becomes a stored name (a customer, a
competitor, an option): NFC, zero-width and other format characters removed, control characters
removed (a tab or newline becomes a space), whitespace runs collapsed, ends stripped. A message of
only invisible characters normalises to ``""``, so it can never become a customer with an invisible
name. ``unstorable_reason`` tells why a string cannot be stored at all (a lone surrogate, a NUL),
for inputs that must be refused rather than cleaned.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["has_visible_content", "unstorable_reason", "visible_text"]

# Invisible characters that Unicode does not class as format (Cf) but that render as nothing.
_EXTRA_INVISIBLE = frozenset(
    {
        "\u115f",  # HANGUL CHOSEONG FILLER
        "\u1160",  # HANGUL JUNGSEONG FILLER
        "\u3164",  # HANGUL FILLER
        "\uffa0",  # HALFWIDTH HANGUL FILLER
        "\u2800",  # BRAILLE PATTERN BLANK
        "\u034f",  # COMBINING GRAPHEME JOINER (Mn)
    }
)
_SPACES = re.compile(r"\s+")


def _is_invisible(char: str) -> bool:
    category = unicodedata.category(char)
    # Cf: ZWSP, ZWNJ, ZWJ, LRM/RLM, bidi controls, BOM, word joiner, soft hyphen …
    # Cc: C0/C1 controls (NUL, BEL, ESC …); whitespace controls are turned into spaces first.
    # Co/Cn: private use and unassigned code points carry nothing a reader can see.
    return category in ("Cf", "Cc", "Co", "Cn", "Cs") or char in _EXTRA_INVISIBLE or "\ufe00" <= char <= "\ufe0f"


def visible_text(text: str) -> str:
    """``text`` as a reader sees it: NFC, invisible and control characters gone, spaces collapsed."""
    normalised = unicodedata.normalize("NFC", text)
    kept = "".join(" " if ch.isspace() else ch for ch in normalised if ch.isspace() or not _is_invisible(ch))
    return _SPACES.sub(" ", kept).strip()


def has_visible_content(text: str) -> bool:
    """True when something would remain on screen (a name made of zero-width spaces has none)."""
    return bool(visible_text(text))


def unstorable_reason(text: str) -> str | None:
    """Why ``text`` cannot be stored as given (UTF-8 text columns), or ``None`` when it can.

    A lone surrogate cannot be encoded as UTF-8 at all; PostgreSQL refuses NUL in text. Both are
    refused at the edge instead of being cleaned, because they mean the sender is broken or hostile.
    """
    for index, char in enumerate(text):
        if char == "\x00":
            return f"NUL character at position {index}"
        if "\ud800" <= char <= "\udfff":
            return f"lone surrogate U+{ord(char):04X} at position {index}"
    return None
