"""A streaming .xlsx writer for exports: values only, rows written as they come, bounded memory.

Why not xlsxwriter: at 100,000 customers (1.3 million cells) its per-cell bookkeeping (argument
checks, dimension tracking, one XML writer call per cell) alone took longer than the whole export
may. An export needs little of it: text, numbers and dates, one bold header row, no formulas, no
shared strings. This writer builds each row's XML in one go and streams it into the zip entry, so
memory stays flat whatever the row count.

What a cell becomes:

* ``str`` → an inline string cell (``t="inlineStr"``). Never a formula, whatever it begins with
  (``=``, ``+``, ``@``): there is no code path that writes ``<f>``. Control characters and literal
  ``_xHHHH_`` sequences are escaped as Excel does; text longer than Excel's cell limit is cut there.
* ``int`` / ``float`` → a number cell (``bool`` is refused: say what a yes/no means in words).
* ``datetime.datetime`` (naive, local) → a date-time cell formatted ``yyyy-mm-dd hh:mm``;
  ``datetime.date`` → a date cell formatted ``yyyy-mm-dd``.
* ``None`` or ``""`` → no cell.

One sheet is open at a time: ``sheet()`` finishes the previous one.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from xml.sax.saxutils import escape, quoteattr

MAX_ROWS = 1_048_576  # Excel's sheet limit; rows past it are dropped, as xlsxwriter did
MAX_CELL_UNITS = 32_767  # Excel's limit on a cell's text, in UTF-16 code units
FLUSH_BYTES = 1 << 20
EXCEL_EPOCH = dt.date(1899, 12, 30).toordinal()

# Any of these in a text means it needs more than plain copying into the XML.
_NEEDS_CARE = re.compile(r"[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]|_x[0-9a-fA-F]{4}_|^\s|\s$")
_ESCAPED_ESCAPE = re.compile(r"(_x[0-9a-fA-F]{4}_)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")

STYLE_DATE, STYLE_TIME, STYLE_HEAD = 1, 2, 3

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    "{sheets}</Types>"
)
_SHEET_TYPE = (
    '<Override PartName="/xl/worksheets/sheet{n}.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    "<sheets>{sheets}</sheets></workbook>"
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    "{sheets}"
    '<Relationship Id="rId{styles}" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
    'Target="styles.xml"/></Relationships>'
)
_SHEET_REL = (
    '<Relationship Id="rId{n}" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet{n}.xml"/>'
)
# cellXfs: 0 plain, 1 date, 2 date-time, 3 bold header (STYLE_* above).
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy\\-mm\\-dd"/>'
    '<numFmt numFmtId="165" formatCode="yyyy\\-mm\\-dd\\ hh:mm"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
_SHEET_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    "<sheetData>"
)
_SHEET_TAIL = "</sheetData></worksheet>"


def column_letters(col: int) -> str:
    """0 → "A", 25 → "Z", 26 → "AA"."""
    letters = ""
    col += 1
    while col:
        col, rest = divmod(col - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def text_xml(text: str) -> str:
    """The inner XML of an inline string cell holding ``text`` (``<t>…</t>``), escaped as Excel does."""
    if len(text) > MAX_CELL_UNITS // 2:
        encoded = text.encode("utf-16-le")
        if len(encoded) > 2 * MAX_CELL_UNITS:
            text = encoded[: 2 * MAX_CELL_UNITS].decode("utf-16-le", "ignore")
    if not _NEEDS_CARE.search(text):
        return f"<t>{text}</t>"
    preserve = text[:1].isspace() or text[-1:].isspace()
    text = _ESCAPED_ESCAPE.sub(r"_x005F\1", text)
    text = _CONTROL.sub(lambda match: f"_x{ord(match.group()):04X}_", text)
    text = escape(text.replace("\ufffe", "_xFFFE_").replace("\uffff", "_xFFFF_"))
    return f'<t xml:space="preserve">{text}</t>' if preserve else f"<t>{text}</t>"


def excel_serial(value: dt.date) -> float | int:
    """Excel's serial number of a date (days since 1899-12-30) or a naive date-time."""
    days = value.toordinal() - EXCEL_EPOCH
    if not isinstance(value, dt.datetime):
        return days
    seconds = value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
    return days + seconds / 86400 if seconds else days


class SheetStream:
    """Rows of one sheet, streamed into the workbook's zip entry."""

    def __init__(self, handle: IO[bytes], headers: Sequence[str]) -> None:
        self._handle = handle
        self._pending: list[str] = [_SHEET_HEAD]
        self._size = 0
        self._columns: list[str] = []
        self.rows = 0  # rows written, the header included
        self.row(headers, style=STYLE_HEAD)

    def _letters(self, count: int) -> list[str]:
        while len(self._columns) < count:
            self._columns.append(column_letters(len(self._columns)))
        return self._columns

    def row(self, values: Sequence[Any], *, style: int = 0) -> None:
        """Write the next row; ``values[i]`` goes to column i (see the module doc for types)."""
        if self.rows >= MAX_ROWS:
            return
        self.rows += 1
        r = str(self.rows)
        letters = self._letters(len(values))
        styled = f' s="{style}"' if style else ""
        cells = [f'<row r="{r}">']
        needs_care = _NEEDS_CARE.search
        for col, value in enumerate(values):
            kind = type(value)
            if kind is str:
                if not value:
                    continue
                if len(value) > MAX_CELL_UNITS // 2 or needs_care(value):
                    cells.append(f'<c r="{letters[col]}{r}"{styled} t="inlineStr"><is>{text_xml(value)}</is></c>')
                else:  # the common case, inlined: plain text goes in as it is
                    cells.append(f'<c r="{letters[col]}{r}"{styled} t="inlineStr"><is><t>{value}</t></is></c>')
            elif value is None:
                continue
            elif kind is int:
                cells.append(f'<c r="{letters[col]}{r}"{styled}><v>{value}</v></c>')
            else:
                cells.append(self._other(f"{letters[col]}{r}", value, styled))
        cells.append("</row>")
        text = "".join(cells)
        self._pending.append(text)
        self._size += len(text)
        if self._size >= FLUSH_BYTES // 3:  # a CJK character is three bytes in UTF-8
            self._flush()

    def _other(self, ref: str, value: Any, styled: str) -> str:
        if isinstance(value, bool):
            raise TypeError("a yes/no cell must be written as words")
        if isinstance(value, int | float):
            if isinstance(value, float) and not math.isfinite(value):
                return f'<c r="{ref}"{styled} t="inlineStr"><is>{text_xml(str(value))}</is></c>'
            return f'<c r="{ref}"{styled}><v>{value!r}</v></c>'
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                raise ValueError("date-times are written in local time, without a zone")
            return f'<c r="{ref}" s="{STYLE_TIME}"><v>{excel_serial(value)!r}</v></c>'
        if isinstance(value, dt.date):
            return f'<c r="{ref}" s="{STYLE_DATE}"><v>{excel_serial(value)}</v></c>'
        if isinstance(value, str):  # a str subclass
            return f'<c r="{ref}"{styled} t="inlineStr"><is>{text_xml(str(value))}</is></c>' if value else ""
        raise TypeError(f"cannot write a {type(value).__name__} to a cell")

    def rows_from(self, rows: Iterable[Sequence[Any]]) -> None:
        for values in rows:
            self.row(values)

    def _flush(self) -> None:
        self._handle.write("".join(self._pending).encode("utf-8"))
        self._pending.clear()
        self._size = 0

    def close(self) -> None:
        self._pending.append(_SHEET_TAIL)
        self._flush()
        self._handle.close()


class XlsxStream:
    """An .xlsx workbook written sheet by sheet; use as a context manager or call ``close()``."""

    def __init__(self, path: str | Path, *, compresslevel: int = 6) -> None:
        # zlib's default level: the same file size as before; level 1 saves ~0.5 s per 100,000 rows, 30 % larger.
        self._zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel)
        self._names: list[str] = []
        self._open: SheetStream | None = None

    def sheet(self, name: str, headers: Sequence[str]) -> SheetStream:
        if not name or len(name) > 31 or any(ch in name for ch in "[]:*?/\\") or name in self._names:
            raise ValueError(f"not a usable sheet name: {name!r}")
        self._finish_sheet()
        self._names.append(name)
        handle = self._zip.open(f"xl/worksheets/sheet{len(self._names)}.xml", "w")
        self._open = SheetStream(handle, headers)
        return self._open

    def _finish_sheet(self) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None

    def close(self) -> None:
        try:
            self._finish_sheet()
            if not self._names:
                self.sheet("Sheet1", [])
                self._finish_sheet()
            n = len(self._names)
            self._zip.writestr("[Content_Types].xml",
                               _CONTENT_TYPES.format(sheets="".join(_SHEET_TYPE.format(n=i) for i in range(1, n + 1))))
            self._zip.writestr("_rels/.rels", _ROOT_RELS)
            self._zip.writestr("xl/workbook.xml", _WORKBOOK.format(sheets="".join(
                f"<sheet name={quoteattr(name)} sheetId=\"{i}\" r:id=\"rId{i}\"/>"
                for i, name in enumerate(self._names, start=1))))
            self._zip.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS.format(
                sheets="".join(_SHEET_REL.format(n=i) for i in range(1, n + 1)), styles=n + 1))
            self._zip.writestr("xl/styles.xml", _STYLES)
        finally:
            self._zip.close()

    def __enter__(self) -> XlsxStream:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
