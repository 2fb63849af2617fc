"""客户导入: recognising a customer spreadsheet's header, parsing its cells, validating its rows.

Pure: takes the sheet as rows of cell values (as a spreadsheet reader returns them: ``str``,
``int``, ``float``, ``bool``, ``date``, ``datetime`` or ``""`` for an empty cell) and the facts it
needs about the organisation as plain mappings; returns the rows to write or every reason a row
is refused. Nothing here reads a file or a database.

Row numbers are the ones a spreadsheet shows: the first row of the sheet is row 1.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Field → header names it is recognised by (the first is the canonical one, used by the export).
HEADER_SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": ("客户名称", "客户", "公司名称", "客户名"),
    "industry": ("所属行业", "行业"),
    "contacts": ("联系人",),
    "last_touch": ("最近跟进日期", "最后跟进", "上次跟进时间", "最近跟进"),
    "stage": ("当前阶段", "阶段"),
    "obstacle": ("关键障碍",),
    "expected_sign": ("预计签约时间", "预计签约日期"),
    "owner": ("负责人", "销售", "跟进人"),
    "aliases": ("别名", "简称"),
}
CANONICAL_HEADERS: dict[str, str] = {key: names[0] for key, names in HEADER_SYNONYMS.items()}
# Columns the export adds that are computed, not data: an import of an export ignores them.
EXPORT_ONLY_HEADERS: tuple[str, ...] = ("在当前阶段天数", "未关闭预警")
HEADER_SEARCH_ROWS = 10  # the header row is looked for within the first rows of the sheet
MAX_ROWS = 200_000
MAX_CELL_CHARS = 2000

_LIST_SPLIT = re.compile(r"[、,,/;;\n]+")
_SPACES = re.compile(r"[\s\u3000]+")
_FULL_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_MONTH_DAY = re.compile(r"^(\d{1,2})\s*[月/-]\s*(\d{1,2})\s*日?$")
_EXCEL_EPOCH = dt.date(1899, 12, 30)


class ImportRejected(Exception):
    """The whole file is refused (no name column, unreadable, too large …); ``code`` names why."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class RowError:
    """One refused row: its spreadsheet row number, a reason code and the offending value."""

    row: int
    code: str
    detail: str = ""


@dataclass(frozen=True)
class Header:
    row: int  # spreadsheet row number of the header (1-based)
    columns: dict[str, int]  # field → column index
    custom: dict[str, int]  # custom field name → column index


@dataclass(frozen=True)
class ImportRow:
    row: int
    name: str
    owner_id: int | None
    industry: str | None = None
    contacts: tuple[str, ...] | None = None
    aliases: tuple[str, ...] | None = None
    last_touch: dt.date | None = None
    stage: str | None = None
    obstacle: str | None = None
    expected_sign: dt.date | None = None
    custom: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportPlan:
    header: Header
    rows: list[ImportRow]
    errors: list[RowError]

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class Directory:
    """What validation needs to know about the organisation."""

    owners: Mapping[str, int]  # member code or (unambiguous) name → member id
    stages_by_owner: Mapping[int, Collection[str]]  # member id → stage names of their pipeline
    existing_owners_by_name: Mapping[str, Collection[int]]  # customer name → owner ids having it
    default_owner: int | None = None


def normalise_header(text: Any) -> str:
    cleaned = _SPACES.sub("", str(text or ""))
    cleaned = cleaned.replace("(", "(").replace(")", ")").rstrip("*")
    return re.sub(r"\((必填|选填|可选)\)$", "", cleaned)


_FIELD_BY_HEADER: dict[str, str] = {name: key for key, names in HEADER_SYNONYMS.items() for name in names}


def find_header(rows: Sequence[Sequence[Any]]) -> Header:
    """The header row within the first ``HEADER_SEARCH_ROWS`` rows: the first with a name column."""
    for index, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        names = [normalise_header(cell) for cell in row]
        if not any(_FIELD_BY_HEADER.get(n) == "name" for n in names):
            continue
        columns: dict[str, int] = {}
        custom: dict[str, int] = {}
        for col, name in enumerate(names):
            if not name or name in EXPORT_ONLY_HEADERS:
                continue
            key = _FIELD_BY_HEADER.get(name)
            if key is None:
                custom.setdefault(name[:64], col)
            elif key in columns:
                raise ImportRejected("duplicate_column", name)
            else:
                columns[key] = col
        return Header(row=index + 1, columns=columns, custom=custom)
    raise ImportRejected("no_name_column", str(HEADER_SEARCH_ROWS))


def cell_text(value: Any) -> str:
    """A cell as text: numbers without a spurious ".0", dates as ISO dates."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, dt.date):
        return value.isoformat()
    return _SPACES.sub(" ", str(value)).strip()


def parse_date(value: Any, today: dt.date, *, prefer_past: bool) -> dt.date | None:
    """A date cell: an Excel date, a serial number, or text (2026/11/03, 2026年11月3日, 11月3日).

    A date without a year is the nearest one in the past (``prefer_past``, for when something
    happened) or in the future (for when something is expected). Empty → None; else ValueError.
    """
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, bool):
        raise ValueError(str(value))
    if isinstance(value, int | float):
        return _serial(float(value))
    text = _SPACES.sub("", str(value))
    if not text:
        return None
    if text.isdigit() and len(text) == 5:
        return _serial(float(text))
    if match := _FULL_DATE.match(text):
        return _date(int(match[1]), int(match[2]), int(match[3]), text)
    if match := _MONTH_DAY.match(text):
        month, day = int(match[1]), int(match[2])
        candidate = _date(today.year, month, day, text)
        if prefer_past and candidate > today:
            candidate = _date(today.year - 1, month, day, text)
        elif not prefer_past and candidate < today:
            candidate = _date(today.year + 1, month, day, text)
        return candidate
    raise ValueError(text)


def _serial(number: float) -> dt.date:
    # Excel's serial day numbers; 1..2958465 covers 1900-01-01..9999-12-31. Time of day is dropped.
    if not 1 <= number <= 2_958_465:
        raise ValueError(str(number))
    return _EXCEL_EPOCH + dt.timedelta(days=int(number))


def _date(year: int, month: int, day: int, text: str) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise ValueError(text) from None


def split_list(value: Any) -> tuple[str, ...]:
    """联系人 / 别名: several, separated by 、 , , / ; ; (order kept, duplicates dropped)."""
    parts = (part.strip() for part in _LIST_SPLIT.split(cell_text(value)))
    return tuple(dict.fromkeys(part[:64] for part in parts if part))


def fill_merged(rows: list[list[Any]], merged: Sequence[tuple[tuple[int, int], tuple[int, int]]]) -> None:
    """A merged range's value belongs to every cell it covers (a reader gives it to the first only)."""
    for (top, left), (bottom, right) in merged:
        if top >= len(rows) or left >= len(rows[top]):
            continue
        value = rows[top][left]
        for r in range(top, min(bottom, len(rows) - 1) + 1):
            for c in range(left, min(right, len(rows[r]) - 1) + 1):
                rows[r][c] = value


def plan_import(rows: Sequence[Sequence[Any]], directory: Directory, today: dt.date) -> ImportPlan:
    """Validate every data row below the header; all of them, so that every bad row is reported."""
    header = find_header(rows)
    columns = header.columns
    has_owner = "owner" in columns
    data_rows = len(rows) - header.row
    if data_rows > MAX_ROWS:
        raise ImportRejected("too_many_rows", str(data_rows))
    planned: list[ImportRow] = []
    errors: list[RowError] = []
    seen: dict[tuple[int | None, str], int] = {}

    def get(row: Sequence[Any], key: str) -> Any:
        col = columns.get(key)
        return row[col] if col is not None and col < len(row) else ""

    for index in range(header.row, len(rows)):
        row = rows[index]
        number = index + 1
        if all(cell == "" or cell is None for cell in row):
            continue
        name = cell_text(get(row, "name"))
        if not name:
            errors.append(RowError(number, "no_name"))
            continue
        if len(name) > 128:
            errors.append(RowError(number, "name_too_long", name[:20]))
            continue
        row_errors: list[RowError] = []
        owner_id: int | None = None
        if has_owner:
            owner_text = cell_text(get(row, "owner"))
            owner_id = directory.owners.get(owner_text) if owner_text else directory.default_owner
            if owner_id is None:
                row_errors.append(RowError(number, "unknown_owner" if owner_text else "no_owner", owner_text))
        else:
            existing = directory.existing_owners_by_name.get(name, ())
            if len(existing) > 1:
                row_errors.append(RowError(number, "ambiguous_customer", name))
            elif not existing:
                owner_id = directory.default_owner
                if owner_id is None:
                    row_errors.append(RowError(number, "no_owner", ""))
        key = (owner_id, name)
        if key in seen:
            row_errors.append(RowError(number, "duplicate", str(seen[key])))
        else:
            seen[key] = number
        stage = cell_text(get(row, "stage")) if "stage" in columns else None
        if stage and owner_id is not None and stage not in directory.stages_by_owner.get(owner_id, ()):
            row_errors.append(RowError(number, "unknown_stage", stage))
        dates: dict[str, dt.date | None] = {}
        for key_name, past in (("last_touch", True), ("expected_sign", False)):
            try:
                dates[key_name] = parse_date(get(row, key_name), today, prefer_past=past)
            except ValueError as exc:
                row_errors.append(RowError(number, f"bad_date_{key_name}", str(exc)[:40]))
        last_touch = dates.get("last_touch")
        if last_touch is not None and last_touch > today:
            row_errors.append(RowError(number, "future_last_touch", last_touch.isoformat()))
        if row_errors:
            errors.extend(row_errors)
            continue
        planned.append(
            ImportRow(
                row=number,
                name=name,
                owner_id=owner_id,
                industry=cell_text(get(row, "industry"))[:64] if "industry" in columns else None,
                contacts=split_list(get(row, "contacts")) if "contacts" in columns else None,
                aliases=split_list(get(row, "aliases")) if "aliases" in columns else None,
                last_touch=last_touch,
                stage=stage or None,
                obstacle=cell_text(get(row, "obstacle"))[:256] if "obstacle" in columns else None,
                expected_sign=dates.get("expected_sign"),
                custom={
                    title: text[:MAX_CELL_CHARS]
                    for title, col in header.custom.items()
                    if (text := cell_text(row[col] if col < len(row) else ""))
                },
            )
        )
    if not planned and not errors:
        raise ImportRejected("no_rows")
    return ImportPlan(header=header, rows=planned, errors=errors)
