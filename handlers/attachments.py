"""Attachments kept as evidence: the one way a staged upload is verified and stored.

A rejected file (not a real image, a decompression bomb, an executable …) is refused with the
media store's message and its staged copy is discarded; nothing else changes.
"""

from __future__ import annotations

import asyncio
import contextlib

from bot.context import Ctx
from bot.errors import UserError
from bot.events import EventKind
from domain.enums import EvidenceKind
from storage.media import MediaRejected, StoredMedia

EVIDENCE_KIND = {
    EventKind.IMAGE: EvidenceKind.PHOTO,
    EventKind.VOICE: EvidenceKind.VOICE,
    EventKind.VIDEO: EvidenceKind.VIDEO,
    EventKind.FILE: EvidenceKind.FILE,
}


async def store_staged(ctx: Ctx, *, sha256: str, kind: EvidenceKind, filename: str, mime: str) -> StoredMedia:
    """Verify and store a staged upload; a rejected one raises ``UserError`` and is discarded."""
    try:
        data = await asyncio.to_thread(ctx.media.read_staged, sha256)
        return await asyncio.to_thread(ctx.media.store, data, kind_hint=kind.value, filename=filename, mime=mime)
    except MediaRejected as exc:
        with contextlib.suppress(MediaRejected):  # an invalid staged id has nothing to discard
            await asyncio.to_thread(ctx.media.discard_staged, sha256)
        raise UserError(exc.user_message, detail=exc.detail) from exc
