"""死信: inbox events that failed for good and outbox messages given up on, listed, reported, redriven.

Which of them admins were already told about is one small setting (the ids reported, pruned to
those still dead), so each failure is reported once, and one that is redriven and fails again is
reported again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import InboxStatus, OutboxStatus
from storage.models import InboxItem, OutboxItem, Setting

Kind = Literal["inbox", "outbox"]
REPORTED_KEY = "dead_letters.reported"


@dataclass(frozen=True)
class DeadLetter:
    """One failure: an incoming event not processed (inbox) or a message not delivered (outbox)."""

    kind: Kind
    id: int
    platform: str
    failed_at: dt.datetime
    reason: str
    # inbox: the sender's platform id; outbox: the recipient's address and member/team id.
    party: str
    target_kind: str = ""
    target_id: int = 0
    text: str = ""


async def dead_letters(session: AsyncSession, limit: int = 200) -> list[DeadLetter]:
    """Failed inbox items and dead outbox messages, newest failure first."""
    inbox_rows = await session.scalars(
        select(InboxItem).where(InboxItem.status == InboxStatus.FAILED).order_by(InboxItem.id.desc()).limit(limit)
    )
    outbox_rows = await session.scalars(
        select(OutboxItem).where(OutboxItem.status == OutboxStatus.DEAD).order_by(OutboxItem.id.desc()).limit(limit)
    )
    letters = [_inbox_letter(row) for row in inbox_rows] + [_outbox_letter(row) for row in outbox_rows]
    letters.sort(key=lambda letter: (_naive(letter.failed_at), letter.id), reverse=True)
    return letters[:limit]


def _inbox_letter(row: InboxItem) -> DeadLetter:
    payload = row.payload or {}
    return DeadLetter(
        kind="inbox", id=row.id, platform=row.platform,
        failed_at=row.processed_at or row.lease_until or row.received_at,
        reason=row.error or "", party=str(payload.get("sender") or ""), text=str(payload.get("text") or ""),
    )


def _outbox_letter(row: OutboxItem) -> DeadLetter:
    return DeadLetter(
        kind="outbox", id=row.id, platform=row.platform, failed_at=row.next_attempt_at,
        reason=row.last_error or "", party=row.target, target_kind=row.target_kind, target_id=row.target_id,
        text=_outbox_text(row.payload),
    )


def _outbox_text(payload: dict[str, Any] | None) -> str:
    payload = payload or {}
    for key in ("text", "title", "content"):
        if isinstance(payload.get(key), str):
            return str(payload[key])
    card = payload.get("card")
    if isinstance(card, dict) and isinstance(card.get("title"), str):
        return str(card["title"])
    return ""


def _naive(at: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes, PostgreSQL aware ones: compare them alike.
    return at.replace(tzinfo=None) if at.tzinfo is None else at.astimezone(dt.UTC).replace(tzinfo=None)


async def take_unreported(session: AsyncSession) -> list[DeadLetter]:
    """The dead letters no admin was told about yet, marked reported in this transaction.

    Call inside the transaction that queues the report, so both commit together. On PostgreSQL the
    setting's row is locked, so two replicas sweeping at once do not both report the same item.
    """
    row = await session.scalar(select(Setting).where(Setting.key == REPORTED_KEY).with_for_update())
    reported = row.value if row is not None else {}
    letters = await dead_letters(session, limit=100_000)
    before = {(kind, int(i)) for kind in ("inbox", "outbox") for i in reported.get(kind, [])}
    new = [letter for letter in letters if (letter.kind, letter.id) not in before]
    now_dead: dict[str, list[int]] = {"inbox": [], "outbox": []}
    for letter in letters:
        now_dead[letter.kind].append(letter.id)
    value = {kind: sorted(ids) for kind, ids in now_dead.items()}
    if row is None:
        session.add(Setting(key=REPORTED_KEY, value=value))
    elif value != {kind: sorted(int(i) for i in reported.get(kind, [])) for kind in now_dead}:
        row.value = value
    return new


async def redrive(session: AsyncSession, letter: DeadLetter, now: dt.datetime) -> bool:
    """Back in the queue: an outbox message to be sent again with its attempts reset, an inbox event
    to be processed again. False when it is no longer a dead letter."""
    if letter.kind == "outbox":
        result = await session.execute(
            update(OutboxItem)
            .where(OutboxItem.id == letter.id, OutboxItem.status == OutboxStatus.DEAD)
            # The retry period counts again from now.
            .values(status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now, created_at=now,
                    lease_until=None, last_error=None)
        )
    else:
        result = await session.execute(
            update(InboxItem)
            .where(InboxItem.id == letter.id, InboxItem.status == InboxStatus.FAILED)
            .values(status=InboxStatus.PENDING, attempts=0, lease_until=None, processed_at=None, error=None,
                    received_at=now)
        )
    return bool(getattr(result, "rowcount", 0) == 1)


async def dead_outbox_ids(session: AsyncSession) -> list[int]:
    """Every dead outbox message's id, oldest first (``pacebot outbox redrive --all``)."""
    return list(await session.scalars(
        select(OutboxItem.id).where(OutboxItem.status == OutboxStatus.DEAD).order_by(OutboxItem.id)
    ))


async def dead_outbox(session: AsyncSession, item_id: int) -> DeadLetter | None:
    """One outbox message, when it is dead."""
    row = await session.scalar(
        select(OutboxItem).where(OutboxItem.id == item_id, OutboxItem.status == OutboxStatus.DEAD)
    )
    return _outbox_letter(row) if row is not None else None
