"""Outbox queries: outgoing messages queued with the state they report, delivered by a worker."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Table,
    bindparam,
    case,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter

from domain.enums import OutboxStatus
from storage.db import rowcount
from storage.models import CardRecord, OutboxItem


def enqueue(
    session: AsyncSession,
    *,
    platform: str,
    target_kind: str,
    target_id: int,
    target: str,
    kind: str,
    payload: dict[str, Any],
    now: dt.datetime,
    source_event_id: int | None = None,
) -> OutboxItem:
    item = OutboxItem(
        source_event_id=source_event_id,
        platform=platform,
        target_kind=target_kind,
        target_id=target_id,
        target=target,
        kind=kind,
        payload=payload,
        status=OutboxStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(item)
    return item


async def due_items(session: AsyncSession, platforms: Sequence[str], now: dt.datetime, limit: int) -> list[tuple[int, str]]:
    """Items ready to send, oldest first, as (id, "platform:target") so a target gets them in order."""
    rows = await session.execute(
        select(OutboxItem.id, OutboxItem.platform, OutboxItem.target)
        .where(
            OutboxItem.platform.in_(platforms),
            or_(
                (OutboxItem.status == OutboxStatus.PENDING) & (OutboxItem.next_attempt_at <= now),
                # A worker died mid-send: its lease ran out, try again.
                (OutboxItem.status == OutboxStatus.SENDING) & (OutboxItem.lease_until < now),
            ),
        )
        .order_by(OutboxItem.id)
        .limit(limit)
    )
    return [(row.id, f"{row.platform}:{row.target}") for row in rows]


async def claim(session: AsyncSession, item_id: int, now: dt.datetime, lease: dt.timedelta) -> OutboxItem | None:
    result = await session.execute(
        update(OutboxItem)
        .where(
            OutboxItem.id == item_id,
            or_(
                (OutboxItem.status == OutboxStatus.PENDING) & (OutboxItem.next_attempt_at <= now),
                (OutboxItem.status == OutboxStatus.SENDING) & (OutboxItem.lease_until < now),
            ),
        )
        .values(status=OutboxStatus.SENDING, lease_until=now + lease, attempts=OutboxItem.attempts + 1)
    )
    if rowcount(result) != 1:
        return None
    return await session.get(OutboxItem, item_id, populate_existing=True)


async def mark_sent(session: AsyncSession, item_id: int, now: dt.datetime, receipt: str | None) -> None:
    await session.execute(
        update(OutboxItem)
        .where(OutboxItem.id == item_id)
        .values(status=OutboxStatus.SENT, sent_at=now, lease_until=None, platform_receipt=receipt, last_error=None)
    )


async def mark_retry(session: AsyncSession, item_id: int, attempt: int, retry_at: dt.datetime, error: str) -> None:
    """Claim number ``attempt`` failed: back in the queue at ``retry_at`` (see ``_still_claimed``)."""
    await session.execute(
        update(OutboxItem)
        .where(OutboxItem.id == item_id, *_still_claimed(attempt))
        .values(status=OutboxStatus.PENDING, next_attempt_at=retry_at, lease_until=None, last_error=error[:4000])
    )


async def defer(session: AsyncSession, item_id: int, retry_at: dt.datetime, reason: str) -> None:
    """Put back without counting an attempt (e.g. the target's rate limit is full)."""
    await session.execute(
        update(OutboxItem)
        .where(OutboxItem.id == item_id)
        .values(
            status=OutboxStatus.PENDING,
            next_attempt_at=retry_at,
            lease_until=None,
            attempts=OutboxItem.attempts - 1,
            last_error=reason,
        )
    )


async def mark_dead(
    session: AsyncSession, item_id: int, attempt: int, error: str, now: dt.datetime | None = None
) -> None:
    """Claim number ``attempt`` failed for good: a dead letter (see ``_still_claimed``).

    With ``now``, ``next_attempt_at`` records when it was given up (what /死信 sorts by).
    """
    values: dict[str, Any] = {"status": OutboxStatus.DEAD, "lease_until": None, "last_error": error[:4000]}
    if now is not None:
        values["next_attempt_at"] = now
    await session.execute(
        update(OutboxItem).where(OutboxItem.id == item_id, *_still_claimed(attempt)).values(**values)
    )


def _still_claimed(attempt: int) -> tuple[ColumnElement[bool], ...]:
    # A sender whose lease ran out reports late: by then another worker may have claimed the item
    # again (and be sending it, or have sent it). Its failure must not requeue or bury that one.
    return OutboxItem.status == OutboxStatus.SENDING, OutboxItem.attempts == attempt


async def sent_count_since(session: AsyncSession, platform: str, target: str, since: dt.datetime) -> int:
    """How many messages went to one target since an instant (for per-target rate limits)."""
    return await session.scalar(
        select(func.count())
        .select_from(OutboxItem)
        .where(OutboxItem.platform == platform, OutboxItem.target == target, OutboxItem.sent_at >= since)
    ) or 0


async def replies_to_event(session: AsyncSession, inbox_id: int) -> list[OutboxItem]:
    rows = await session.scalars(
        select(OutboxItem).where(OutboxItem.source_event_id == inbox_id).order_by(OutboxItem.id)
    )
    return list(rows)


async def feed(
    session: AsyncSession, *, target_kind: str, target_id: int, after_id: int, limit: int
) -> list[OutboxItem]:
    """Everything pushed to one member or group, on any platform, after an item id."""
    rows = await session.scalars(
        select(OutboxItem)
        .where(OutboxItem.target_kind == target_kind, OutboxItem.target_id == target_id, OutboxItem.id > after_id)
        .order_by(OutboxItem.id)
        .limit(limit)
    )
    return list(rows)


async def dead_letters(session: AsyncSession, limit: int = 50) -> list[OutboxItem]:
    rows = await session.scalars(
        select(OutboxItem).where(OutboxItem.status == OutboxStatus.DEAD).order_by(OutboxItem.id.desc()).limit(limit)
    )
    return list(rows)


# --- batch claims and grouped state changes ------------------------------------------------------

_OUTBOX = cast(Table, OutboxItem.__table__)
_UNSENT = (OutboxStatus.PENDING, OutboxStatus.SENDING)


@dataclass(frozen=True)
class ClaimedSend:
    """An outbox item whose send lease this worker now holds (one attempt counted)."""

    id: int
    platform: str
    target_kind: str
    target: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    created_at: dt.datetime | None = None  # when queued (or redriven): the retry period counts from it
    sent_since: tuple[int, ...] = ()  # messages sent to the target since each ``count_since`` instant


# The updated row's columns, named with their table, for subqueries of a RETURNING clause: SQLite's
# compiler leaves RETURNING's columns unqualified, and inside a subquery of the same table an
# unqualified name means the subquery's own row.
_UPDATED: dict[str, ColumnElement[Any]] = {name: literal_column(f"{_OUTBOX.name}.{name}") for name in ("id", "platform", "target")}


def _build_claim_heads(*, once: bool) -> Any:
    # Built once per dialect: the construction and cache-key work cost about as much as running it.
    #
    # Every clause is answered from an index, whatever the outbox holds: the due items come from
    # ``ix_outbox_due`` (pending and due, or sending with a lapsed lease), and "no earlier unsent
    # message to the same target" is one probe of ``ix_outbox_target_head`` per due item. (Grouping
    # all unsent items by target to find each one's oldest let SQLite walk every row of the platform,
    # sent ones included: the claim grew with the outbox's history, ~250 ms at 20,000 sent rows.)
    now: BindParameter[dt.datetime] = bindparam("now")
    # The platform test inside each branch, so that SQLite searches the index by status and platform.
    platforms = _OUTBOX.c.platform.in_(bindparam("platforms", expanding=True))
    due_here = or_(
        (_OUTBOX.c.status == OutboxStatus.PENDING) & platforms & (_OUTBOX.c.next_attempt_at <= now),
        (_OUTBOX.c.status == OutboxStatus.SENDING) & platforms & (_OUTBOX.c.lease_until < now),
    )
    earlier = _OUTBOX.alias("earlier")
    is_head = ~(
        select(earlier.c.id)
        .where(earlier.c.status.in_(_UNSENT), earlier.c.platform == _OUTBOX.c.platform,
               earlier.c.target == _OUTBOX.c.target, earlier.c.id < _OUTBOX.c.id)
        .exists()
    )
    candidates = (
        select(_OUTBOX.c.id)
        .where(due_here, is_head)
        .order_by(_OUTBOX.c.id)
        .limit(bindparam("limit", type_=Integer))
        .with_for_update(skip_locked=True)  # PostgreSQL replicas skip each other's rows
    )
    if once:
        # Evaluated once: as a subquery PostgreSQL may run it again per row, and SKIP LOCKED then
        # skips the rows the first run locked and returns further heads (more than ``limit``).
        # (SQLite, one writer and no row locks, runs the plain subquery once, and faster.)
        candidates = select(candidates.cte("candidates").prefix_with("MATERIALIZED").c.id)
    return (
        update(_OUTBOX)
        .where(_OUTBOX.c.id.in_(candidates), due_here)
        .values(status=OutboxStatus.SENDING, lease_until=bindparam("lease_until"), attempts=_OUTBOX.c.attempts + 1)
        .returning(_OUTBOX.c.id, _OUTBOX.c.platform, _OUTBOX.c.target_kind, _OUTBOX.c.target, _OUTBOX.c.kind,
                   _OUTBOX.c.payload, _OUTBOX.c.attempts, _OUTBOX.c.created_at)
    )


_CLAIM_HEADS: dict[str, Any] = {}


async def claim_heads(
    session: AsyncSession, platforms: Sequence[str], now: dt.datetime, lease: dt.timedelta, limit: int,
    *, count_since: Sequence[dt.datetime] = (),
) -> list[ClaimedSend]:
    """Lease the oldest unsent item of up to ``limit`` targets, when it is due.

    Only a target's oldest unsent message can be claimed, so a person receives messages in the
    order they were written and at most one is in flight per target across all replicas — which
    is also what makes a per-target rate limit, counted from the ``sent_at`` of stored rows,
    exact across replicas. Different targets' heads are claimed together and sent concurrently.
    With ``count_since``, each claimed item carries how many messages went to its target since
    each of those instants (``ClaimedSend.sent_since``), counted in the same transaction by one
    more statement per platform. (Counted in the claim's RETURNING clause, SQLite could not use
    an index for the count and read the whole outbox once per claimed item.)
    """
    dialect = session.get_bind().dialect.name
    statement = _CLAIM_HEADS.get(dialect)
    if statement is None:
        statement = _CLAIM_HEADS[dialect] = _build_claim_heads(once=dialect == "postgresql")
    params: dict[str, Any] = {"platforms": list(platforms), "now": now, "lease_until": now + lease, "limit": limit}
    # Core on the session's connection: the ORM's execution path adds nothing for a table statement.
    connection = await session.connection()
    rows = (await connection.execute(statement, params)).all()
    counts: dict[tuple[str, str], list[int]] = {}
    if count_since and rows:
        targets: dict[str, set[str]] = {}
        for row in rows:
            targets.setdefault(row[1], set()).add(row[3])
        for platform, names in targets.items():
            for target, numbers in (await sent_counts_within(session, platform, sorted(names), count_since)).items():
                counts[(platform, target)] = numbers
    nothing = (0,) * len(count_since)
    claimed = [
        ClaimedSend(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7],
                    tuple(counts.get((row[1], row[3]), nothing)))
        for row in rows
    ]
    claimed.sort(key=lambda item: item.id)
    return claimed


async def sent_counts_since(
    session: AsyncSession, platform: str, targets: Sequence[str], since: dt.datetime
) -> dict[str, int]:
    """``sent_count_since`` for several targets of one platform in one statement."""
    if not targets:
        return {}
    rows = await session.execute(
        select(_OUTBOX.c.target, func.count())
        .where(_OUTBOX.c.platform == platform, _OUTBOX.c.target.in_(targets), _OUTBOX.c.sent_at >= since)
        .group_by(_OUTBOX.c.target)
    )
    return {target: count for target, count in rows}


_COUNTS_WITHIN: dict[int, Any] = {}


def _counts_within(windows: int) -> Any:
    """The statement counting ``windows`` windows at once, built once per number of windows."""
    statement = _COUNTS_WITHIN.get(windows)
    if statement is None:
        counts = [func.sum(case((_OUTBOX.c.sent_at >= bindparam(f"since_{n}"), 1), else_=0)) for n in range(windows)]
        statement = _COUNTS_WITHIN[windows] = (
            select(_OUTBOX.c.target, *counts)
            .where(_OUTBOX.c.platform == bindparam("platform"),
                   _OUTBOX.c.target.in_(bindparam("targets", expanding=True)),
                   _OUTBOX.c.sent_at >= bindparam("oldest"))
            .group_by(_OUTBOX.c.target)
        )
    return statement


async def sent_counts_within(
    session: AsyncSession, platform: str, targets: Sequence[str], sinces: Sequence[dt.datetime]
) -> dict[str, list[int]]:
    """Messages sent to each target since each of ``sinces`` (one count per window), in one
    statement; a target with nothing sent in the widest window is absent."""
    if not targets or not sinces:
        return {}
    params: dict[str, Any] = {"platform": platform, "targets": list(targets), "oldest": min(sinces)}
    params.update((f"since_{n}", since) for n, since in enumerate(sinces))
    connection = await session.connection()
    rows = await connection.execute(_counts_within(len(sinces)), params)
    return {row[0]: [int(n or 0) for n in row[1:]] for row in rows}


_MARK_SENT = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("item_id"))
    .values(status=OutboxStatus.SENT, sent_at=bindparam("now"), lease_until=None,
            platform_receipt=bindparam("receipt"), last_error=None)
)


async def mark_sent_many(session: AsyncSession, receipts: Sequence[tuple[int, str | None]], now: dt.datetime) -> None:
    """``mark_sent`` for several items in one statement: (item id, receipt) each."""
    if not receipts:
        return
    connection = await session.connection()
    await connection.execute(_MARK_SENT, [{"item_id": i, "receipt": r, "now": now} for i, r in receipts])


def _build_mark_sent_one() -> Any:
    following = _OUTBOX.alias("following")
    # Read in the same statement: another unsent message to the same recipient, now its head.
    has_next = (
        select(following.c.id)
        .where(following.c.platform == _UPDATED["platform"], following.c.target == _UPDATED["target"],
               following.c.status.in_(_UNSENT), following.c.id != _UPDATED["id"])
        .exists()
    )
    return _MARK_SENT.returning(has_next)


_MARK_SENT_ONE = _build_mark_sent_one()


async def mark_sent_one(session: AsyncSession, item_id: int, receipt: str | None, now: dt.datetime) -> bool:
    """``mark_sent`` for one item, and whether its recipient has another message not yet sent
    (``any_unsent`` for that recipient) — one statement where the two took two."""
    connection = await session.connection()
    row = (await connection.execute(_MARK_SENT_ONE, {"item_id": item_id, "receipt": receipt, "now": now})).first()
    return bool(row[0]) if row is not None else False


async def defer_many(session: AsyncSession, deferrals: Sequence[tuple[int, dt.datetime]], reason: str) -> None:
    """``defer`` for several items in one statement: (item id, retry at) each."""
    if not deferrals:
        return
    await session.execute(
        update(_OUTBOX)
        .where(_OUTBOX.c.id == bindparam("item_id"))
        .values(status=OutboxStatus.PENDING, next_attempt_at=bindparam("retry_at"), lease_until=None,
                attempts=_OUTBOX.c.attempts - 1, last_error=reason),
        [{"item_id": i, "retry_at": at} for i, at in deferrals],
    )


async def card_states(session: AsyncSession, task_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per-platform card handles (``CardRecord.platform_state``) for card updates being sent."""
    if not task_ids:
        return {}
    rows = await session.execute(select(CardRecord.task_id, CardRecord.platform_state).where(CardRecord.task_id.in_(task_ids)))
    return {task_id: state or {} for task_id, state in rows}


async def backlog(session: AsyncSession) -> tuple[int, dt.datetime | None]:
    """Unsent messages (pending or being sent) and the oldest one's creation time."""
    row = (await session.execute(
        select(func.count(), func.min(_OUTBOX.c.created_at)).where(_OUTBOX.c.status.in_(_UNSENT))
    )).one()
    return int(row[0]), row[1]


_INSERT_OUTBOX = insert(_OUTBOX)  # built once


async def enqueue_many(session: AsyncSession, rows: Sequence[dict[str, Any]], *, now: dt.datetime) -> None:
    """Queue several messages in one statement (as ``enqueue``; each row names platform,
    target_kind, target_id, target, kind, payload and source_event_id)."""
    if not rows:
        return
    connection = await session.connection()  # Core: the ORM's execution path adds nothing here
    await connection.execute(
        _INSERT_OUTBOX,
        [{**row, "status": OutboxStatus.PENDING, "attempts": 0, "next_attempt_at": now, "created_at": now} for row in rows],
    )


_ANY_UNSENT_ONE_PLATFORM = (
    select(_OUTBOX.c.id)
    .where(_OUTBOX.c.status.in_(_UNSENT), _OUTBOX.c.platform == bindparam("platform"),
           _OUTBOX.c.target.in_(bindparam("targets", expanding=True)))
    .limit(1)
)


async def any_unsent(session: AsyncSession, recipients: Sequence[tuple[str, str]]) -> bool:
    """Whether any of these (platform, target) recipients has a message not yet sent."""
    if not recipients:
        return False
    by_platform: dict[str, list[str]] = {}
    for platform, target in recipients:
        by_platform.setdefault(platform, []).append(target)
    connection = await session.connection()
    if len(by_platform) == 1:
        [(platform, targets)] = by_platform.items()
        statement: Any = _ANY_UNSENT_ONE_PLATFORM
        params: dict[str, Any] = {"platform": platform, "targets": targets}
    else:
        statement = (
            select(_OUTBOX.c.id)
            .where(
                _OUTBOX.c.status.in_(_UNSENT),
                or_(*(
                    (_OUTBOX.c.platform == platform) & _OUTBOX.c.target.in_(targets)
                    for platform, targets in by_platform.items()
                )),
            )
            .limit(1)
        )
        params = {}
    return (await connection.execute(statement, params)).first() is not None
