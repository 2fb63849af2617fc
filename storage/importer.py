"""客户导入: reading a customer spreadsheet and writing it in one all-or-nothing transaction.

The file is read with python-calamine (xlsx, xls, ods) or as CSV; the rows are validated by
``domain.importing``; then every customer is created or updated with set-based statements
(executemany), never one query per row. Nothing is written when any row is bad.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from python_calamine import CalamineError, CalamineWorkbook
from sqlalchemy import BigInteger, String, Table, bindparam, exists, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import CustomerStatus, Role
from domain.importing import Directory, ImportPlan, ImportRejected, ImportRow, fill_merged
from storage import audit
from storage.models import Customer, Member, Pipeline, Stage, StageHistory, Team

MAX_IMPORT_BYTES = 20 * 1024 * 1024
MAX_UNPACKED_BYTES = 400 * 1024 * 1024  # a zip bomb dressed as .xlsx is refused before reading
READABLE = ("xlsx", "xls", "ods", "csv")
MACRO_EXTS = ("xlsm", "xltm", "xlam", "xlsb")
IMPORTED_NOTE = "导入"
BATCH = 5000
LOOKUP_BATCH = 900  # ids per IN (…): within every SQLite build's parameter limit

_CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]
_HISTORY: Table = StageHistory.__table__  # type: ignore[assignment]


def file_ext(filename: str) -> str:
    return filename.rsplit(".", 1)[-1].lower() if "." in filename else ""


def read_sheet(data: bytes, filename: str) -> list[list[Any]]:
    """The first sheet's cells, positioned as the spreadsheet shows them (row 1 is index 0)."""
    ext = file_ext(filename)
    if not data:
        raise ImportRejected("empty_file")
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportRejected("too_large", str(len(data)))
    if ext in MACRO_EXTS:
        raise ImportRejected("macro", ext)
    if ext and ext not in READABLE:
        raise ImportRejected("unsupported_type", ext)
    if ext == "csv":
        return _read_csv(data)
    if data.startswith(b"PK"):
        _check_zip(data)
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        if not workbook.sheet_names:
            raise ImportRejected("no_rows")
        sheet = workbook.get_sheet_by_index(0)
        rows: list[list[Any]] = sheet.to_python(skip_empty_area=False)
        merged = sheet.merged_cell_ranges or []
    except CalamineError as exc:
        raise ImportRejected("unreadable", str(exc)[:200]) from exc
    except (ValueError, OSError) as exc:  # malformed inner XML surfaces as these
        raise ImportRejected("unreadable", str(exc)[:200]) from exc
    fill_merged(rows, merged)
    return rows


def _check_zip(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise ImportRejected("unreadable", str(exc)[:200]) from exc
    if any(info.filename.lower().endswith("vbaproject.bin") for info in infos):
        raise ImportRejected("macro", "vbaProject.bin")
    if sum(info.file_size for info in infos) > MAX_UNPACKED_BYTES:
        raise ImportRejected("too_large", "unpacked")


def _read_csv(data: bytes) -> list[list[Any]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ImportRejected("unreadable", "csv encoding")
    if "\x00" in text:
        raise ImportRejected("unreadable", "binary data in csv")
    return [list(row) for row in csv.reader(io.StringIO(text))]


# -- what validation needs ----------------------------------------------------------------------


async def load_directory(session: AsyncSession, *, default_owner: int | None = None) -> Directory:
    members = (
        await session.execute(
            select(Member.id, Member.code, Member.name, Member.team_id).where(
                Member.active.is_(True), Member.role.in_([Role.REP, Role.MANAGER])
            )
        )
    ).all()
    owners: dict[str, int] = {}
    name_count: dict[str, int] = defaultdict(int)
    for member in members:
        name_count[member.name] += 1
    for member in members:
        if name_count[member.name] == 1:
            owners[member.name] = member.id
    for member in members:  # a code wins over a namesake's name
        owners[member.code] = member.id
    pipelines = await _pipeline_stages(session)
    team_pipeline = dict((await session.execute(select(Team.id, Team.pipeline_id))).all())
    default_id = await _default_pipeline_id(session)
    stages_by_owner = {
        m.id: pipelines[team_pipeline.get(m.team_id) or default_id].keys() for m in members
    }
    existing: dict[str, list[int]] = defaultdict(list)
    for name, owner_id in (await session.execute(select(Customer.name, Customer.owner_id))).all():
        existing[name].append(owner_id)
    return Directory(owners=owners, stages_by_owner=stages_by_owner, existing_owners_by_name=existing,
                     default_owner=default_owner)


async def _pipeline_stages(session: AsyncSession) -> dict[int, dict[str, int]]:
    """Pipeline id → stage name → stage id, in pipeline order."""
    stages: dict[int, dict[str, int]] = defaultdict(dict)
    rows = await session.execute(select(Stage.pipeline_id, Stage.name, Stage.id).order_by(Stage.pipeline_id, Stage.position))
    for pipeline_id, name, stage_id in rows.all():
        stages[pipeline_id][name] = stage_id
    return stages


async def _default_pipeline_id(session: AsyncSession) -> int:
    pipeline_id = await session.scalar(select(Pipeline.id).where(Pipeline.is_default.is_(True)).limit(1))
    if pipeline_id is None:
        pipeline_id = await session.scalar(select(Pipeline.id).order_by(Pipeline.id).limit(1))
    assert pipeline_id is not None, "no pipeline: run the migrations and start once"
    return int(pipeline_id)


# -- writing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int
    dry_run: bool = False

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged


def local_midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """An imported 最近跟进日期 counts as a touch at the start of that local day."""
    return dt.datetime.combine(day, dt.time(), tzinfo=tz)


async def apply_plan(
    session: AsyncSession,
    plan: ImportPlan,
    *,
    now: dt.datetime,
    tz: ZoneInfo,
    actor_id: int | None,
    source: str,
    dry_run: bool = False,
) -> ImportResult:
    """Create or update every planned customer (the plan must have no errors)."""
    assert plan.ok, "a plan with errors is never applied"
    pipelines = await _pipeline_stages(session)
    default_pipeline = await _default_pipeline_id(session)
    owner_pipeline = {
        member_id: pipeline_id or default_pipeline
        for member_id, pipeline_id in (
            await session.execute(select(Member.id, Team.pipeline_id).outerjoin(Team, Team.id == Member.team_id))
        ).all()
    }
    c = _CUSTOMERS.c
    # Only ids and keys of every customer are held at once; full rows are read per batch of matches,
    # so a re-import of 100,000 customers stays small.
    by_key: dict[tuple[int, str], int] = {}
    by_name: dict[str, list[int]] = defaultdict(list)
    for customer_id, owner_id, name in (await session.execute(select(c.id, c.owner_id, c.name))).all():
        by_key[(owner_id, name)] = customer_id
        by_name[name].append(customer_id)
    new_rows: list[ImportRow] = []
    matched: list[tuple[ImportRow, int]] = []
    for item in plan.rows:
        # No owner column: the one existing customer of that name (validation made sure there is one).
        found = by_key.get((item.owner_id, item.name)) if item.owner_id is not None else by_name[item.name][0]
        if found is None:
            new_rows.append(item)
        else:
            matched.append((item, found))
    del by_key, by_name

    updated = unchanged = 0
    columns = (c.id, c.name, c.owner_id, c.pipeline_id, c.stage_id, c.stage_entered_at, c.industry, c.contacts,
               c.aliases, c.custom_fields, c.key_obstacle, c.expected_sign_date, c.last_touch_at)
    for start in range(0, len(matched), LOOKUP_BATCH):
        chunk = matched[start:start + LOOKUP_BATCH]
        rows = await session.execute(select(*columns).where(c.id.in_([customer_id for _item, customer_id in chunk])))
        current = {row.id: row for row in rows.all()}
        updates: list[dict[str, Any]] = []
        stage_moves: list[dict[str, Any]] = []
        for item, customer_id in chunk:
            change = _changes(item, current[customer_id], pipelines, now, tz)
            if change is None:
                unchanged += 1
                continue
            values, new_stage = change
            updates.append(values)
            if new_stage is not None:
                stage_moves.append({"b_customer": customer_id, "b_stage": new_stage})
        updated += len(updates)
        if not dry_run:
            await _write_updates(session, updates, stage_moves, now=now, actor_id=actor_id)
    if dry_run:
        return ImportResult(len(new_rows), updated, unchanged, dry_run=True)

    if new_rows:
        # One executemany for the customers, then one INSERT … SELECT for their first stays: set-based,
        # where RETURNING per row would cost a round trip each on SQLite.
        before = await session.scalar(select(func.coalesce(func.max(_CUSTOMERS.c.id), 0)))
        sqlite = _SqliteRows(pipelines, owner_pipeline, now, tz) if session.get_bind().dialect.name == "sqlite" else None
        for start in range(0, len(new_rows), BATCH):  # batches keep the parameter lists small
            batch = new_rows[start:start + BATCH]
            if sqlite is not None:
                await _insert_sqlite(session, [sqlite.row(item) for item in batch])
            else:
                await session.execute(insert(_CUSTOMERS), [_new_customer(i, pipelines, owner_pipeline, now, tz) for i in batch])
        new = select(
            _CUSTOMERS.c.id, _CUSTOMERS.c.stage_id, literal(now, Customer.created_at.type),
            literal(actor_id, BigInteger()), literal(IMPORTED_NOTE, String()),
        ).where(
            _CUSTOMERS.c.id > before,
            ~exists().where(_HISTORY.c.customer_id == _CUSTOMERS.c.id),
        )
        await session.execute(
            insert(_HISTORY).from_select(["customer_id", "stage_id", "entered_at", "member_id", "note"], new)
        )
    result = ImportResult(len(new_rows), updated, unchanged)
    await audit.record(
        session, member_id=actor_id, action="import", subject=source[:256], now=now,
        after={"created": result.created, "updated": result.updated, "unchanged": result.unchanged},
    )
    return result


_SQLITE_COLUMNS = (
    "name", "owner_id", "pipeline_id", "stage_id", "stage_entered_at", "industry", "aliases", "contacts",
    "custom_fields", "status", "value", "key_obstacle", "expected_sign_date", "created_at", "last_touch_at",
    "snoozed_until", "snooze_reason", "flags",
)


class _SqliteRows:
    """New customers as driver parameters, bound the way the models' column types bind them on SQLite
    (instants as naive UTC text, JSON as text): at 100,000 rows the ORM layer's per-value type
    processing costs more than the insert itself. Repeated values are encoded once."""

    def __init__(self, pipelines: dict[int, dict[str, int]], owner_pipeline: dict[int, int], now: dt.datetime,
                 tz: ZoneInfo) -> None:
        self.pipelines = pipelines
        self.owner_pipeline = owner_pipeline
        self.tz = tz
        self.now_text = self.instant(now)
        self.encode = json.JSONEncoder(ensure_ascii=False).encode
        self.lists: dict[tuple[str, ...], str] = {}
        self.days: dict[dt.date, str] = {}

    @staticmethod
    def instant(value: dt.datetime) -> str:
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def list_text(self, values: tuple[str, ...] | None) -> str:
        key = values or ()
        text = self.lists.get(key)
        if text is None:
            text = self.lists[key] = self.encode(list(key))
        return text

    def day_text(self, day: dt.date) -> str:
        text = self.days.get(day)
        if text is None:
            text = self.days[day] = self.instant(local_midnight(day, self.tz))
        return text

    def row(self, item: ImportRow) -> tuple[Any, ...]:
        assert item.owner_id is not None
        pipeline_id = self.owner_pipeline[item.owner_id]
        stages = self.pipelines[pipeline_id]
        stage_id = stages[item.stage] if item.stage else next(iter(stages.values()))
        return (
            item.name, item.owner_id, pipeline_id, stage_id, self.now_text, item.industry or "",
            self.list_text(item.aliases), self.list_text(item.contacts),
            self.encode(item.custom) if item.custom else "{}", CustomerStatus.ACTIVE.value, 0, item.obstacle or "",
            item.expected_sign.isoformat() if item.expected_sign else None, self.now_text,
            self.day_text(item.last_touch) if item.last_touch else None, None, "", "[]",
        )


async def _insert_sqlite(session: AsyncSession, rows: list[tuple[Any, ...]]) -> None:
    placeholders = ", ".join("?" for _ in _SQLITE_COLUMNS)
    connection = await session.connection()
    await connection.exec_driver_sql(f"INSERT INTO customers ({', '.join(_SQLITE_COLUMNS)}) VALUES ({placeholders})", rows)


async def _write_updates(
    session: AsyncSession, updates: list[dict[str, Any]], stage_moves: list[dict[str, Any]], *, now: dt.datetime,
    actor_id: int | None,
) -> None:
    if updates:
        keys = [k for k in updates[0] if k != "b_id"]
        statement = update(_CUSTOMERS).where(_CUSTOMERS.c.id == bindparam("b_id")).values({k: bindparam(k) for k in keys})
        await session.execute(statement, updates)
    if stage_moves:
        await session.execute(
            update(_HISTORY)
            .where(_HISTORY.c.customer_id == bindparam("b_customer"), _HISTORY.c.left_at.is_(None))
            .values(left_at=now),
            stage_moves,
        )
        await session.execute(
            insert(_HISTORY),
            [{"customer_id": m["b_customer"], "stage_id": m["b_stage"], "entered_at": now, "member_id": actor_id,
              "note": IMPORTED_NOTE} for m in stage_moves],
        )


def _new_customer(
    item: ImportRow, pipelines: dict[int, dict[str, int]], owner_pipeline: dict[int, int], now: dt.datetime, tz: ZoneInfo
) -> dict[str, Any]:
    assert item.owner_id is not None
    pipeline_id = owner_pipeline[item.owner_id]
    stages = pipelines[pipeline_id]
    stage_id = stages[item.stage] if item.stage else next(iter(stages.values()))
    return {
        "name": item.name,
        "owner_id": item.owner_id,
        "pipeline_id": pipeline_id,
        "stage_id": stage_id,
        "stage_entered_at": now,
        "industry": item.industry or "",
        "aliases": list(item.aliases or ()),
        "contacts": list(item.contacts or ()),
        "custom_fields": dict(item.custom),
        "status": CustomerStatus.ACTIVE,
        "value": 0,
        "key_obstacle": item.obstacle or "",
        "expected_sign_date": item.expected_sign,
        "created_at": now,
        "last_touch_at": local_midnight(item.last_touch, tz) if item.last_touch else None,
        "snoozed_until": None,
        "snooze_reason": "",
        "flags": [],
    }


def _changes(
    item: ImportRow, current: Any, pipelines: dict[int, dict[str, int]], now: dt.datetime, tz: ZoneInfo
) -> tuple[dict[str, Any], int | None] | None:
    """The full new values of an existing customer's importable columns, or None if nothing changes."""
    values: dict[str, Any] = {
        "b_id": current.id,
        "industry": current.industry if item.industry is None else item.industry,
        "contacts": list(current.contacts or []) if item.contacts is None else list(item.contacts),
        "aliases": list(current.aliases or []) if item.aliases is None else list(item.aliases),
        "custom_fields": {**(current.custom_fields or {}), **item.custom},
        "key_obstacle": current.key_obstacle if item.obstacle is None else item.obstacle,
        "expected_sign_date": item.expected_sign or current.expected_sign_date,
        "last_touch_at": current.last_touch_at,
        "stage_id": current.stage_id,
    }
    if item.last_touch is not None and (
        current.last_touch_at is None or current.last_touch_at.astimezone(tz).date() < item.last_touch
    ):
        values["last_touch_at"] = local_midnight(item.last_touch, tz)
    new_stage: int | None = None
    if item.stage:
        stage_id = pipelines[current.pipeline_id].get(item.stage)
        if stage_id is not None and stage_id != current.stage_id:
            new_stage = values["stage_id"] = stage_id
    same = (
        values["industry"] == current.industry
        and values["contacts"] == list(current.contacts or [])
        and values["aliases"] == list(current.aliases or [])
        and values["custom_fields"] == (current.custom_fields or {})
        and values["key_obstacle"] == current.key_obstacle
        and values["expected_sign_date"] == current.expected_sign_date
        and values["last_touch_at"] == current.last_touch_at
        and new_stage is None
    )
    if same:
        return None
    # A stage set by an import is entered now (an import is not a move: no obstacle card).
    values["stage_entered_at"] = now if new_stage is not None else current.stage_entered_at
    return values, new_stage
