"""Outgoing media: read back from the media store (checked against its sha256), and the platform
media ids of uploads, reused while the platform keeps them."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from bot.platforms.base import DeliveryError
from storage.media import MediaRejected, MediaStore

log = logging.getLogger(__name__)


_SHA = re.compile(r"^[0-9a-f]{64}$")
MEDIA_ID_TTL = 2.5 * 86_400  # both platforms keep temporary media three days
_MAX_IDS = 1000


async def load_outgoing_media(media: MediaStore, sha: str, path: Any) -> bytes:
    """The bytes an outbox item names, read in a thread; a ``DeliveryError`` (permanent) otherwise."""
    if not _SHA.match(sha):
        raise DeliveryError(f"outbox item names no valid sha256 ({sha[:16]!r})", retryable=False)
    try:
        data = await asyncio.to_thread(read_media, media, sha, path if isinstance(path, str) else None)
    except MediaRejected as exc:
        raise DeliveryError(f"media {sha[:12]}: {exc.detail}", retryable=False) from exc
    if data is None:
        raise DeliveryError(f"media {sha[:12]} is not in the media store", retryable=False)
    return data


class UploadedMedia:
    """Media ids of files already uploaded, by a key the platform chooses, until shortly before the
    platform forgets them; expired entries are dropped once there are many."""

    def __init__(self, ttl: float = MEDIA_ID_TTL, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._monotonic = monotonic
        self._ids: dict[Hashable, tuple[str, float]] = {}

    async def media_id(self, key: Hashable, upload: Callable[[], Awaitable[str]]) -> str:
        now = self._monotonic()
        cached = self._ids.get(key)
        if cached and cached[1] > now:
            return cached[0]
        media_id = await upload()
        self._ids[key] = (media_id, now + self._ttl)
        if len(self._ids) > _MAX_IDS:
            self._ids = {k: v for k, v in self._ids.items() if v[1] > now}
        return media_id


def read_media(media: MediaStore, sha: str, path: str | None) -> bytes | None:
    """The stored bytes with this sha256: at ``path`` if given, else wherever the store keeps them."""
    candidates = []
    if path:
        candidates.append(media.path_of(path))
    root = media.root
    candidates.extend(sorted((root / "generated").glob(f"{sha}.*")))
    candidates.extend(sorted((root / "evidence" / sha[:2]).glob(f"{sha}.*")))
    candidates.append(root / "incoming" / sha)
    for candidate in candidates:
        try:
            data = candidate.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            continue
        if hashlib.sha256(data).hexdigest() == sha:
            return data
        log.error("media file %s does not match its sha256; skipped", candidate.name)
    return None
