"""Inbox queries: incoming events stored before acknowledgement, claimed and processed once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import BindParameter, Integer, Table, and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import InboxStatus
from storage.db import dialect_insert, rowcount
from storage.models import InboxItem


@dataclass(frozen=True)
class Incoming:
    """One event to store: its de-duplication key, the conversation it belongs to, its JSON."""

    platform: str
    platform_msg_id: str
    conversation_key: str
    payload: dict[str, Any]


async def store_incoming(
    session: AsyncSession,
    *,
    platform: str,
    platform_msg_id: str,
    conversation_key: str,
    payload: dict[str, Any],
    now: dt.datetime,
) -> tuple[int, bool]:
    """Store one event; returns (inbox id, is_new). A redelivered message id is not stored twice."""
    [result] = await store_incoming_many(
        session, [Incoming(platform, platform_msg_id, conversation_key, payload)], now=now
    )
    return result


async def store_incoming_many(
    session: AsyncSession, items: Sequence[Incoming], *, now: dt.datetime
) -> list[tuple[int, bool]]:
    """Store events in one statement; (inbox id, is_new) for each, in order.

    One ``INSERT … ON CONFLICT DO NOTHING`` decides, so concurrent deliveries of the same message
    (WeCom retries, DingTalk redelivery) race safely on the unique constraint. Within ``items``,
    only the first of several with one message id is new.
    """
    first: dict[tuple[str, str], int] = {}
    for index, item in enumerate(items):
        first.setdefault((item.platform, item.platform_msg_id), index)
    if not first:
        return []
    rows = [
        {
            "platform": items[index].platform,
            "platform_msg_id": items[index].platform_msg_id,
            "conversation_key": items[index].conversation_key,
            "payload": items[index].payload,
            "status": InboxStatus.PENDING,
            "attempts": 0,
            "received_at": now,
        }
        for index in first.values()
    ]
    # One statement whatever the number of rows (SQLAlchemy's "insertmanyvalues"), compiled once
    # and cached: a statement built with ``.values(rows)`` was compiled anew for every batch.
    # Core on the session's connection: the ORM's execution path adds nothing for a table statement.
    connection = await session.connection()
    inserted = await connection.execute(_insert_incoming(session), rows)
    ids = {(row.platform, row.platform_msg_id): row.id for row in inserted}
    new = set(ids)
    stored_before = [key for key in first if key not in ids]
    if stored_before:
        ids.update(await _find_many(session, stored_before))
    keys = [(item.platform, item.platform_msg_id) for item in items]
    return [(ids[key], key in new and first[key] == index) for index, key in enumerate(keys)]


_INSERT_INCOMING: dict[str, Any] = {}


def _insert_incoming(session: AsyncSession) -> Any:
    """The accepting insert, built once per dialect."""
    dialect = session.get_bind().dialect.name
    statement = _INSERT_INCOMING.get(dialect)
    if statement is None:
        statement = _INSERT_INCOMING[dialect] = (
            dialect_insert(session)(_INBOX)
            .on_conflict_do_nothing(index_elements=["platform", "platform_msg_id"])
            .returning(_INBOX.c.id, _INBOX.c.platform, _INBOX.c.platform_msg_id)
        )
    return statement


async def _find_many(session: AsyncSession, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    by_platform: dict[str, list[str]] = {}
    for platform, msg_id in keys:
        by_platform.setdefault(platform, []).append(msg_id)
    rows = await session.execute(
        select(InboxItem.id, InboxItem.platform, InboxItem.platform_msg_id).where(
            or_(
                *(
                    and_(InboxItem.platform == platform, InboxItem.platform_msg_id.in_(msg_ids))
                    for platform, msg_ids in by_platform.items()
                )
            )
        )
    )
    return {(row.platform, row.platform_msg_id): row.id for row in rows}


async def claim(session: AsyncSession, inbox_id: int, now: dt.datetime, lease: dt.timedelta) -> bool:
    """Take the lease on a pending item; False when someone else holds it or it is finished."""
    result = await session.execute(
        update(InboxItem)
        .where(
            InboxItem.id == inbox_id,
            InboxItem.status == InboxStatus.PENDING,
            or_(InboxItem.lease_until.is_(None), InboxItem.lease_until <= now),
        )
        .values(lease_until=now + lease, attempts=InboxItem.attempts + 1)
    )
    return rowcount(result) == 1


async def load(session: AsyncSession, inbox_id: int) -> InboxItem | None:
    return await session.get(InboxItem, inbox_id)


async def finish(session: AsyncSession, inbox_id: int, now: dt.datetime) -> bool:
    """Mark processed, inside the transaction that holds the handler's changes.

    Returns False when the item was already finished (a second processor lost the race), in
    which case the caller must roll back.
    """
    result = await session.execute(
        update(InboxItem)
        .where(InboxItem.id == inbox_id, InboxItem.status == InboxStatus.PENDING)
        .values(status=InboxStatus.DONE, processed_at=now, lease_until=None, error=None)
    )
    return rowcount(result) == 1


async def record_failure(
    session: AsyncSession, inbox_id: int, attempt: int, error: str, *, give_up: bool, retry_at: dt.datetime,
    uncounted: bool = False, now: dt.datetime | None = None,
) -> bool:
    """Record that claim number ``attempt`` failed: retry at ``retry_at``, or give up for good.

    Only while the item is still pending and nobody claimed it since: a worker whose lease ran out
    must neither mark an item another worker finished as failed nor cut short that worker's lease.
    Returns False when the failure was not recorded for that reason. An ``uncounted`` failure (the
    platform was unreachable: a retry period, not the attempts, decides) gives its attempt back.
    With ``now``, an item given up records when (``processed_at``: what /死信 sorts by).
    """
    values: dict[str, Any] = {"error": error[:4000], "lease_until": retry_at}
    if give_up:
        values["status"] = InboxStatus.FAILED
        if now is not None:
            values["processed_at"] = now
    elif uncounted:
        values["attempts"] = attempt - 1
    result = await session.execute(
        update(InboxItem)
        .where(InboxItem.id == inbox_id, InboxItem.status == InboxStatus.PENDING, InboxItem.attempts == attempt)
        .values(**values)
    )
    return rowcount(result) == 1


async def due_items(session: AsyncSession, now: dt.datetime, limit: int) -> list[tuple[int, str]]:
    """Pending items whose lease is free, oldest first: (id, conversation key)."""
    rows = await session.execute(
        select(InboxItem.id, InboxItem.conversation_key)
        .where(
            InboxItem.status == InboxStatus.PENDING,
            or_(InboxItem.lease_until.is_(None), InboxItem.lease_until <= now),
        )
        .order_by(InboxItem.id)
        .limit(limit)
    )
    return [(row.id, row.conversation_key) for row in rows]


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(InboxItem.status, func.count()).group_by(InboxItem.status))
    return {status.value: n for status, n in rows}


# --- batch claims, backlog ----------------------------------------------------------------------

_INBOX = cast(Table, InboxItem.__table__)


@dataclass(frozen=True)
class Claimed:
    """An inbox item whose lease this worker now holds (one attempt counted)."""

    id: int
    platform: str
    conversation_key: str
    attempts: int
    payload: dict[str, Any]
    received_at: dt.datetime | None = None  # when stored (or redriven): an outage's retry period counts from it


def _build_claim_heads(*, once: bool) -> Any:
    # Built once per dialect: building the statement and its cache key cost about as much as running it.
    now: BindParameter[dt.datetime] = bindparam("now")
    heads = (
        select(func.min(_INBOX.c.id))
        .where(_INBOX.c.status == InboxStatus.PENDING)
        .group_by(_INBOX.c.conversation_key)
    )
    free = or_(_INBOX.c.lease_until.is_(None), _INBOX.c.lease_until <= now)
    candidates = (
        select(_INBOX.c.id)
        .where(_INBOX.c.id.in_(heads), free)
        .order_by(_INBOX.c.id)
        .limit(bindparam("limit", type_=Integer))
        # PostgreSQL: replicas claiming at the same moment skip each other's rows instead of
        # queuing on their locks (SQLite has one writer and ignores this).
        .with_for_update(skip_locked=True)
    )
    if once:
        # Evaluated once: as a subquery PostgreSQL may run it again per row, and SKIP LOCKED then
        # skips the rows the first run locked and returns further heads (more than ``limit``).
        candidates = select(candidates.cte("candidates").prefix_with("MATERIALIZED").c.id)
    return (
        update(_INBOX)
        .where(_INBOX.c.id.in_(candidates), _INBOX.c.status == InboxStatus.PENDING, free)
        .values(lease_until=bindparam("lease_until"), attempts=_INBOX.c.attempts + 1)
        .returning(_INBOX.c.id, _INBOX.c.platform, _INBOX.c.conversation_key, _INBOX.c.attempts, _INBOX.c.payload,
                   _INBOX.c.received_at)
    )


_CLAIM_HEADS: dict[str, Any] = {}


async def claim_heads(session: AsyncSession, now: dt.datetime, lease: dt.timedelta, limit: int) -> list[Claimed]:
    """Lease the oldest pending item of up to ``limit`` conversations, oldest first, in one statement.

    Only the head of a conversation is ever claimable, so a member's messages are handled in
    order even by several replicas (the next one becomes the head when this one is finished or
    given up), and each batch takes at most one message per conversation: one rep's flood waits
    its turn behind the other reps' messages instead of in front of them. The claim re-checks the
    lease on the row it updates, so two replicas racing for a head cannot both win it.
    """
    dialect = session.get_bind().dialect.name
    statement = _CLAIM_HEADS.get(dialect)
    if statement is None:
        statement = _CLAIM_HEADS[dialect] = _build_claim_heads(once=dialect == "postgresql")
    # Core on the session's connection: the ORM's execution path adds nothing for a table statement.
    connection = await session.connection()
    rows = await connection.execute(statement, {"now": now, "lease_until": now + lease, "limit": limit})
    claimed = [Claimed(r.id, r.platform, r.conversation_key, r.attempts, r.payload, r.received_at) for r in rows]
    return sorted(claimed, key=lambda item: item.id)


async def claim_one(session: AsyncSession, inbox_id: int, now: dt.datetime, lease: dt.timedelta) -> Claimed | None:
    """Lease one given item (as ``claim``) and return what processing it needs, in one statement."""
    row = (
        await session.execute(
            update(_INBOX)
            .where(
                _INBOX.c.id == inbox_id,
                _INBOX.c.status == InboxStatus.PENDING,
                or_(_INBOX.c.lease_until.is_(None), _INBOX.c.lease_until <= now),
            )
            .values(lease_until=now + lease, attempts=_INBOX.c.attempts + 1)
            .returning(_INBOX.c.id, _INBOX.c.platform, _INBOX.c.conversation_key, _INBOX.c.attempts, _INBOX.c.payload,
                   _INBOX.c.received_at)
        )
    ).first()
    return Claimed(row.id, row.platform, row.conversation_key, row.attempts, row.payload, row.received_at) if row else None


async def finish_item(session: AsyncSession, inbox_id: int, now: dt.datetime) -> bool:
    """``finish`` as a Core statement (no ORM bookkeeping on the hot path)."""
    result = await session.execute(
        update(_INBOX)
        .where(_INBOX.c.id == inbox_id, _INBOX.c.status == InboxStatus.PENDING)
        .values(status=InboxStatus.DONE, processed_at=now, lease_until=None, error=None)
    )
    return bool(cast(Any, result).rowcount == 1)


async def statuses(session: AsyncSession, ids: Sequence[int]) -> dict[int, InboxStatus]:
    if not ids:
        return {}
    rows = await session.execute(select(_INBOX.c.id, _INBOX.c.status).where(_INBOX.c.id.in_(ids)))
    return {row.id: InboxStatus(row.status) for row in rows}


@dataclass(frozen=True)
class Backlog:
    """积压: how many events wait to be processed, and since when the oldest has waited."""

    pending: int
    oldest_received_at: dt.datetime | None

    def oldest_age_seconds(self, now: dt.datetime) -> float:
        return max(0.0, (now - self.oldest_received_at).total_seconds()) if self.oldest_received_at else 0.0


async def backlog(session: AsyncSession) -> Backlog:
    """Pending events (including ones waiting for a retry) and the oldest one's arrival."""
    row = (
        await session.execute(
            select(func.count(), func.min(_INBOX.c.id)).where(_INBOX.c.status == InboxStatus.PENDING)
        )
    ).one()
    count, oldest_id = row[0], row[1]
    if not count:
        return Backlog(0, None)
    received = await session.scalar(select(InboxItem.received_at).where(InboxItem.id == oldest_id))
    return Backlog(int(count), received)


_FINISH_MANY = (  # built once
    update(_INBOX)
    .where(_INBOX.c.id.in_(bindparam("ids", expanding=True)), _INBOX.c.status == InboxStatus.PENDING)
    .values(status=InboxStatus.DONE, processed_at=bindparam("now"), lease_until=None, error=None)
    .returning(_INBOX.c.id)
)


async def finish_many(session: AsyncSession, ids: Sequence[int], now: dt.datetime) -> set[int]:
    """``finish`` for several items in one statement; returns the ids it finished (an id missing
    from the result was finished by someone else, and the caller must roll back)."""
    if not ids:
        return set()
    connection = await session.connection()
    rows = await connection.execute(_FINISH_MANY, {"ids": list(ids), "now": now})
    return {row.id for row in rows}


_ANY_PENDING = (  # built once
    select(_INBOX.c.id)
    .where(_INBOX.c.status == InboxStatus.PENDING, _INBOX.c.conversation_key.in_(bindparam("keys", expanding=True)))
    .limit(1)
)


async def any_pending(session: AsyncSession, conversation_keys: Sequence[str]) -> bool:
    """Whether any of these conversations has an item waiting (pending, whatever its lease)."""
    if not conversation_keys:
        return False
    connection = await session.connection()
    row = (await connection.execute(_ANY_PENDING, {"keys": list(conversation_keys)})).first()
    return row is not None


async def release_many(session: AsyncSession, claims: Sequence[tuple[int, int]]) -> None:
    """Give back leases taken for items not handled after all: (id, attempts as claimed).

    Each is claimable again at once and its attempt is given back, only while it is still pending
    under that very claim (nobody claimed or finished it since).
    """
    for inbox_id, attempts in claims:
        await session.execute(
            update(_INBOX)
            .where(_INBOX.c.id == inbox_id, _INBOX.c.status == InboxStatus.PENDING, _INBOX.c.attempts == attempts)
            .values(lease_until=None, attempts=attempts - 1)
        )
