"""Retention: finished inbox, outbox, dialogue and card rows older than their age are deleted.

Every purge is one set-based statement per table (no per-row loops). What counts as finished:

- inbox: processed (``done``) before the cutoff. Failed items stay for an admin. Rows that point at
  a purged item (touches, evidence, competitor sightings, outgoing messages) keep their content and
  lose only the link; de-duplication of a replayed callback no longer needs it, because callbacks
  older than the platform's replay window are refused at the edge (see ``[wecom]
  timestamp_window_seconds``, which configuration requires to be shorter than the inbox age).
- outbox: ``sent`` before the cutoff. Dead letters stay until an admin redrives or removes them.
- dialogues: expired before the cutoff.
- cards: answered before the cutoff, or sent before it and never answered.

``referenced_media`` lists the content hashes any stored row still refers to, so the media store can
remove the files nothing refers to (``MediaStore.remove_unreferenced``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import InboxStatus, OutboxStatus
from storage.models import (
    CardRecord,
    CompetitorIntel,
    Dialogue,
    Evidence,
    InboxItem,
    OutboxItem,
    ScriptPack,
    Touch,
)

_SHA = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Cutoffs:
    """Rows finished before these instants are purged."""

    inbox: dt.datetime
    outbox: dt.datetime
    dialogue: dt.datetime
    card: dt.datetime


@dataclass(frozen=True)
class Purged:
    inbox: int = 0
    outbox: int = 0
    dialogues: int = 0
    cards: int = 0

    def describe(self) -> str:
        return f"inbox {self.inbox}, outbox {self.outbox}, dialogues {self.dialogues}, cards {self.cards}"


async def purge_finished(session: AsyncSession, cutoffs: Cutoffs) -> Purged:
    """Delete finished rows older than the cutoffs; return how many of each."""
    outbox = await session.execute(
        delete(OutboxItem)
        .where(OutboxItem.status == OutboxStatus.SENT, OutboxItem.sent_at < cutoffs.outbox)
        .execution_options(synchronize_session=False)
    )
    finished_inbox = (
        select(InboxItem.id)
        .where(
            InboxItem.status == InboxStatus.DONE,
            func.coalesce(InboxItem.processed_at, InboxItem.received_at) < cutoffs.inbox,
        )
        .scalar_subquery()
    )
    for model in (Touch, Evidence, CompetitorIntel, OutboxItem):
        await session.execute(
            update(model)
            .where(model.source_event_id.in_(finished_inbox))
            .values(source_event_id=None)
            .execution_options(synchronize_session=False)
        )
    inbox = await session.execute(
        delete(InboxItem).where(InboxItem.id.in_(finished_inbox)).execution_options(synchronize_session=False)
    )
    dialogues = await session.execute(
        delete(Dialogue).where(Dialogue.expires_at < cutoffs.dialogue).execution_options(synchronize_session=False)
    )
    cards = await session.execute(
        delete(CardRecord)
        .where(func.coalesce(CardRecord.answered_at, CardRecord.created_at) < cutoffs.card)
        .execution_options(synchronize_session=False)
    )
    return Purged(
        inbox=_count(inbox), outbox=_count(outbox), dialogues=_count(dialogues), cards=_count(cards)
    )


async def referenced_media(session: AsyncSession) -> set[str]:
    """Content hashes (sha256) of media that stored rows still refer to.

    Evidence, competitor photos and script pack files are kept for good; media named by events not
    yet processed, by messages not yet sent (or dead, awaiting a redrive) and by image messages still
    stored is kept until then.
    """
    found: set[str] = set()
    rows = await session.execute(select(Evidence.sha256, Evidence.path, Evidence.thumb_path))
    for row in rows:
        found.update(_hashes(" ".join(value for value in row if value)))
    found.update(_hashes(" ".join(p for p in await session.scalars(select(CompetitorIntel.photo_path)) if p)))
    found.update(s for s in await session.scalars(select(ScriptPack.file_sha256)) if s)
    pending_payloads = await session.scalars(
        select(InboxItem.payload).where(InboxItem.status == InboxStatus.PENDING)
    )
    for payload in pending_payloads:
        found.update(_hashes(json.dumps(payload)))
    # Images stay while their message does (the console shows sent messages with their pictures).
    outgoing = await session.scalars(
        select(OutboxItem.payload).where((OutboxItem.status != OutboxStatus.SENT) | (OutboxItem.kind == "image"))
    )
    for payload in outgoing:
        found.update(_hashes(json.dumps(payload)))
    return found


def _hashes(text: str) -> set[str]:
    return set(_SHA.findall(text))


def _count(result: object) -> int:
    return max(int(getattr(result, "rowcount", 0) or 0), 0)
