"""Splitting outgoing text at a platform's byte limit, on line boundaries where possible."""

from __future__ import annotations


def split_utf8(text: str, limit: int) -> list[str]:
    """Split into parts of at most ``limit`` UTF-8 bytes, on line boundaries where possible.

    A line longer than the limit is cut between characters (never inside one). Empty text gives
    one empty part so that callers always send something.
    """
    if len(text.encode()) <= limit:
        return [text]
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.splitlines(keepends=True):
        for piece in _cut_line(line, limit):
            n = len(piece.encode())
            if size + n > limit and current:
                parts.append("".join(current).rstrip("\n"))
                current, size = [], 0
            current.append(piece)
            size += n
    if current:
        parts.append("".join(current).rstrip("\n"))
    return [p for p in parts if p.strip()] or [_cut_line(text, limit)[0]]


def _cut_line(line: str, limit: int) -> list[str]:
    if len(line.encode()) <= limit:
        return [line]
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for ch in line:
        n = len(ch.encode())
        if size + n > limit:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(ch)
        size += n
    if current:
        pieces.append("".join(current))
    return pieces
