"""The streaming .xlsx writer behind the export: what each value becomes, read back by two readers;
and the streamed export on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path
from typing import Any

import pytest
from python_calamine import CalamineWorkbook

from storage.exporter import export_workbook
from storage.xlsxstream import MAX_CELL_UNITS, XlsxStream, column_letters, excel_serial
from tests.conftest import SHANGHAI
from tests.import_support import run_import, xlsx_bytes
from tests.pg import requires_postgres, scratch_database


def load_workbook(path: Path) -> Any:
    """openpyxl's reading of the file (imported here: only these tests pay for importing it)."""
    import openpyxl

    return openpyxl.load_workbook(path)


def write(path: Path, rows: list[list], headers: list[str] | None = None) -> Path:
    with XlsxStream(path) as workbook:
        sheet = workbook.sheet("表", headers or ["甲", "乙", "丙"])
        for row in rows:
            sheet.row(row)
    return path


def test_column_letters_follow_excel():
    assert [column_letters(i) for i in (0, 25, 26, 51, 52, 701, 702)] == ["A", "Z", "AA", "AZ", "BA", "ZZ", "AAA"]


def test_excel_serial_of_dates_and_times():
    assert excel_serial(dt.date(1900, 3, 1)) == 61
    assert excel_serial(dt.date(2026, 11, 30)) == 46356
    assert excel_serial(dt.datetime(2026, 11, 30, 18, 0)) == 46356.75


def test_texts_that_look_like_formulas_stay_text(tmp_path):
    hostile = ['=1+1', '=HYPERLINK("http://evil.example","点我")', "+SUM(A1)", "@x", "-2+3"]
    path = write(tmp_path / "f.xlsx", [hostile[:3], hostile[3:]], headers=["a", "b", "c"])
    with zipfile.ZipFile(path) as archive:
        assert b"<f>" not in archive.read("xl/worksheets/sheet1.xml")
    sheet = load_workbook(path)["表"]
    cells = [cell for row in sheet.iter_rows(min_row=2) for cell in row if cell.value is not None]
    assert [cell.value for cell in cells] == hostile
    assert {cell.data_type for cell in cells} == {"s"}


def test_markup_and_whitespace_round_trip(tmp_path):
    texts = ["a<b>&c\"d'", "  前后空格  ", "行一\n行二\t制表"]
    path = write(tmp_path / "t.xlsx", [[text] for text in texts], headers=["x"])
    assert [row[0].value for row in load_workbook(path)["表"].iter_rows(min_row=2)] == texts
    assert [row[0] for row in CalamineWorkbook.from_path(str(path)).get_sheet_by_name("表").to_python()[1:]] == texts


def test_control_characters_are_written_as_excel_escapes(tmp_path):
    path = write(tmp_path / "c.xlsx", [["控制\x01\x1f字符"], ["字面 _x0041_ 不变"]], headers=["x"])
    with zipfile.ZipFile(path) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode("utf-8")
    assert "<t>控制_x0001__x001F_字符</t>" in xml and "<t>字面 _x005F_x0041_ 不变</t>" in xml
    assert "\x01" not in xml


def test_numbers_dates_and_empty_cells(tmp_path):
    row = [7, 2.5, dt.date(2026, 11, 20), dt.datetime(2026, 11, 20, 9, 30), None, "", "尾"]
    path = write(tmp_path / "n.xlsx", [row], headers=list("abcdefg"))
    sheet = load_workbook(path)["表"]
    cells = list(sheet.iter_rows(min_row=2, values_only=True))[0]
    assert cells == (7, 2.5, dt.datetime(2026, 11, 20), dt.datetime(2026, 11, 20, 9, 30), None, None, "尾")
    assert sheet["C2"].number_format == "yyyy\\-mm\\-dd" and sheet["D2"].number_format == "yyyy\\-mm\\-dd\\ hh:mm"
    assert sheet["A1"].font.b and not sheet["A2"].font.b
    calamine = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("表").to_python()[1]
    assert calamine[2] == dt.date(2026, 11, 20) and calamine[3] == dt.datetime(2026, 11, 20, 9, 30)


def test_text_past_the_cell_limit_is_cut_at_the_limit(tmp_path):
    path = write(tmp_path / "l.xlsx", [["字" * (MAX_CELL_UNITS + 10)], ["😀" * MAX_CELL_UNITS]], headers=["x"])
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("表").to_python()
    assert rows[1][0] == "字" * MAX_CELL_UNITS
    assert rows[2][0] == "😀" * (MAX_CELL_UNITS // 2)  # two UTF-16 units each


def test_sheets_keep_their_order_and_names(tmp_path):
    path = tmp_path / "s.xlsx"
    with XlsxStream(path) as workbook:
        for name in ("客户", "跟进记录", "审计"):
            workbook.sheet(name, ["列"]).row([name])
    workbook_read = CalamineWorkbook.from_path(str(path))
    assert workbook_read.sheet_names == ["客户", "跟进记录", "审计"]
    assert workbook_read.get_sheet_by_name("审计").to_python() == [["列"], ["审计"]]


@pytest.mark.parametrize("value", [True, object(), dt.datetime(2026, 11, 20, tzinfo=dt.UTC)])
def test_values_without_a_cell_form_are_refused(tmp_path, value):
    with XlsxStream(tmp_path / "bad.xlsx") as workbook:
        sheet = workbook.sheet("表", ["x"])
        with pytest.raises((TypeError, ValueError)):
            sheet.row([value])


@pytest.mark.parametrize("name", ["", "a" * 32, "a/b", "重复"])
def test_unusable_sheet_names_are_refused(tmp_path, name):
    with XlsxStream(tmp_path / "bad.xlsx") as workbook:
        workbook.sheet("重复", ["x"])
        with pytest.raises(ValueError):
            workbook.sheet(name, ["x"])


@requires_postgres
async def test_an_export_streamed_from_postgresql_reimports_unchanged(tmp_path, clock):
    from bot.bootstrap import build_runtime
    from tests.conftest import make_config

    async with scratch_database() as url:
        rt = await build_runtime(make_config(tmp_path, storage={"url": url}), clock=clock)
        try:
            rows = [["客户名称", "所属行业", "联系人", "最近跟进日期", "当前阶段", "负责人", "区域"],
                    ["华东建材", "建材经销", "张总、李工", "2026-11-20", "方案报价", "rep.li", "=1+1"],
                    ["金陵置业", "", "", "", "", "rep.zhao", ""]]
            assert (await run_import(rt, xlsx_bytes(rows))).result.created == 2
            path = tmp_path / "pg.xlsx"
            async with rt.sessions() as session:
                counts = await export_workbook(session, path, now=rt.clock.now(), tz=SHANGHAI)
            assert counts.sheets["客户"] == 2
            sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("客户").to_python()
            assert sheet[1][:3] == ["华东建材", "建材经销", "张总、李工"] and sheet[0][9] == "区域"
            assert sheet[1][9] == "=1+1"
            outcome = await run_import(rt, path.read_bytes(), "pg.xlsx")
            assert (outcome.result.created, outcome.result.updated, outcome.result.unchanged) == (0, 0, 2)
        finally:
            await rt.stop()
