"""Reading outgoing media back from the media store, checked against its sha256 (blocking: run it
in a thread)."""

from __future__ import annotations

import hashlib
import logging

from storage.media import MediaStore

log = logging.getLogger(__name__)


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
