"""Export: every sheet, values never formulas, the round trip (export → import → no change),
and the CLI's exit status for import and export."""

from __future__ import annotations

import asyncio
import datetime as dt
import zipfile
from pathlib import Path

from python_calamine import CalamineWorkbook
from sqlalchemy import func, select

from bot.cli import main
from storage.exporter import export_workbook
from storage.models import Customer, StageHistory
from tests import import_support
from tests.conftest import SHANGHAI
from tests.import_support import customers, run_import, xlsx_bytes

runtime = import_support.runtime  # the fixture

HEADER = ["客户名称", "所属行业", "联系人", "最近跟进日期", "当前阶段", "关键障碍", "预计签约时间", "负责人", "别名", "区域"]


async def export(runtime, path: Path, **kwargs) -> dict[str, list[list]]:
    async with runtime.sessions() as session:
        await export_workbook(session, path, now=runtime.clock.now(), tz=SHANGHAI, **kwargs)
    workbook = CalamineWorkbook.from_path(str(path))
    return {name: workbook.get_sheet_by_name(name).to_python() for name in workbook.sheet_names}


async def test_the_export_has_every_sheet_and_the_import_columns(runtime, tmp_path):
    rows = [HEADER, ["华东建材", "建材经销", "张总、李工", dt.date(2026, 11, 20), "方案报价", "预算", dt.date(2027, 1, 15),
                     "rep.li", "华东", "上海"]]
    await run_import(runtime, xlsx_bytes(rows))
    sheets = await export(runtime, tmp_path / "out.xlsx")

    assert list(sheets) == ["客户", "跟进记录", "预警", "资源申请", "审计"]
    header, row = sheets["客户"]
    assert header == [*HEADER, "在当前阶段天数", "未关闭预警"]
    assert row[:3] == ["华东建材", "建材经销", "张总、李工"]
    assert row[3] == dt.date(2026, 11, 20) or row[3] == dt.datetime(2026, 11, 20)
    assert row[4:6] == ["方案报价", "预算"] and row[7:10] == ["rep.li", "华东", "上海"]
    assert sheets["审计"][1][2] == "import" and sheets["审计"][1][1] == "(命令行)"


async def test_cells_are_values_never_formulas(runtime, tmp_path):
    hostile = '=HYPERLINK("http://evil.example","点我")'
    await run_import(runtime, xlsx_bytes([["客户名称", "负责人", "备注"], ["=1+1", "rep.li", hostile], ["+SUM(A1)", "rep.li", "@x"]]))
    path = tmp_path / "out.xlsx"
    sheets = await export(runtime, path)
    assert [r[0] for r in sheets["客户"][1:]] == ["=1+1", "+SUM(A1)"]
    assert sheets["客户"][1][9] == hostile
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in archive.read(name), name


async def test_an_export_reimported_changes_nothing(runtime, tmp_path):
    rows = [HEADER,
            ["华东建材", "建材经销", "张总、李工", dt.date(2026, 11, 20), "方案报价", "预算", dt.date(2027, 1, 15), "rep.li", "华东", "上海"],
            ["金陵置业", "", "", "", "", "", "", "rep.zhao", "", ""],
            ["岭南装饰", "装饰工程", "陈总", "2026年11月3日", "新线索", "", "", "rep.sun", "", "广州"]]
    await run_import(runtime, xlsx_bytes(rows))
    before = [(c.id, c.name, c.owner_id, c.stage_id, c.stage_entered_at, c.industry, c.contacts, c.aliases,
               c.custom_fields, c.key_obstacle, c.expected_sign_date, c.last_touch_at) for c in await customers(runtime)]
    path = tmp_path / "out.xlsx"
    await export(runtime, path)

    outcome = await run_import(runtime, path.read_bytes(), "out.xlsx")
    assert (outcome.result.created, outcome.result.updated, outcome.result.unchanged) == (0, 0, 3)
    after = [(c.id, c.name, c.owner_id, c.stage_id, c.stage_entered_at, c.industry, c.contacts, c.aliases,
              c.custom_fields, c.key_obstacle, c.expected_sign_date, c.last_touch_at) for c in await customers(runtime)]
    assert after == before
    async with runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(StageHistory)) == 3


async def test_a_manager_scope_exports_only_the_team(runtime, tmp_path):
    await run_import(runtime, xlsx_bytes([["客户名称", "负责人"], ["华东建材", "rep.li"], ["岭南装饰", "rep.sun"]]))
    async with runtime.sessions() as session:
        from storage.models import Member

        wang = await session.scalar(select(Member).where(Member.code == "mgr.wang"))
    sheets = await export(runtime, tmp_path / "team.xlsx", team_id=wang.team_id, include_audit=False)
    assert [r[0] for r in sheets["客户"][1:]] == ["华东建材"] and "审计" not in sheets


def write_config(tmp_path: Path) -> str:
    path = tmp_path / "pacebot.toml"
    org = Path(__file__).parent / "fixtures" / "org_small.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path}/cli.db"\ndata_dir = "{tmp_path}/data"\n'
        f'[org]\ndirectory = "{org}"\n[scheduler]\nenabled = false\n',
        encoding="utf-8",
    )
    return str(path)


def count_customers(tmp_path: Path) -> int:
    from storage.db import create_engine, session_factory

    async def run() -> int:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/cli.db")
        async with session_factory(engine)() as session:
            n = await session.scalar(select(func.count()).select_from(Customer))
        await engine.dispose()
        return int(n or 0)

    return asyncio.run(run())


def test_cli_import_dry_run_import_and_export(tmp_path, capsys):
    config = write_config(tmp_path)
    good = tmp_path / "客户.xlsx"
    good.write_bytes(xlsx_bytes([["客户名称", "负责人"], ["华东建材", "rep.li"], ["金陵置业", "rep.zhao"]]))
    assert main(["--config", config, "import", str(good), "--dry-run"]) == 0
    assert "预检通过(客户.xlsx):将新建 2 位客户" in capsys.readouterr().out
    assert count_customers(tmp_path) == 0
    assert main(["--config", config, "import", str(good)]) == 0
    assert "新建 2 位客户" in capsys.readouterr().out
    out = tmp_path / "导出.xlsx"
    assert main(["--config", config, "export", "--out", str(out)]) == 0
    assert "客户 2" in capsys.readouterr().out
    assert CalamineWorkbook.from_path(str(out)).sheet_names[0] == "客户"


def test_cli_import_with_bad_rows_exits_non_zero_and_lists_every_row(tmp_path, capsys):
    config = write_config(tmp_path)
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(xlsx_bytes([["客户名称", "负责人"], ["华东建材", "rep.li"], ["", "rep.li"], ["金陵置业", "nobody"]]))
    assert main(["--config", config, "import", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "第 3 行:缺少客户名称" in err and "第 4 行:负责人「nobody」不存在" in err
    assert count_customers(tmp_path) == 0


def test_cli_refuses_unreadable_and_oversized_files(tmp_path, capsys):
    config = write_config(tmp_path)
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(b"not a spreadsheet at all" * 100)
    assert main(["--config", config, "import", str(junk)]) == 1
    assert "不是有效的 Excel 表格" in capsys.readouterr().err
    big = tmp_path / "big.xlsx"
    with big.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    assert main(["--config", config, "import", str(big)]) == 1
    assert "文件太大" in capsys.readouterr().err
    assert main(["--config", config, "export", "--out", str(tmp_path / "x.csv")]) == 2
    assert count_customers(tmp_path) == 0

