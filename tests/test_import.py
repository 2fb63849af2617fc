"""Excel import: real spreadsheets written in the test, read, validated and written all or nothing."""

from __future__ import annotations

import datetime as dt
import io
import os
import zipfile

from sqlalchemy import func, select

from domain.rules.thresholds import RuleThresholds
from domain.rules.workdays import WorkCalendar
from storage import alerts as alert_store
from storage.models import AuditEntry, Customer, Obstacle, Stage, StageChange, StageHistory
from tests import import_support
from tests.conftest import SHANGHAI, START
from tests.import_support import customers, member_id, run_import, xlsx_bytes
from tests.pg import requires_postgres, scratch_database

runtime = import_support.runtime  # the fixture

TODAY = START.date()  # 2026-11-25, a Wednesday
HEADER = ["客户名称", "所属行业", "联系人", "最近跟进日期", "当前阶段", "关键障碍", "预计签约时间", "负责人", "别名"]


async def test_a_spreadsheet_with_header_synonyms_in_any_order_creates_customers_with_custom_fields(runtime):
    data = xlsx_bytes([
        ["跟进人", "公司名称", "行业", "联系人", "上次跟进时间", "阶段", "简称", "区域", "年采购额"],
        ["rep.li", "华东建材", "建材经销", "张总、李工, 王经理", dt.date(2026, 11, 20), "方案报价", "华东", "上海", 1200000],
        ["赵磊", "金陵置业", "房地产开发", "", "", "", "", "南京", ""],
    ])
    outcome = await run_import(runtime, data)

    assert outcome.errors == [] and outcome.result is not None
    assert (outcome.result.created, outcome.result.updated) == (2, 0)
    east, jinling = await customers(runtime)
    assert east.name == "华东建材" and east.owner_id == await member_id(runtime, "rep.li")
    assert east.contacts == ["张总", "李工", "王经理"] and east.aliases == ["华东"]
    assert east.industry == "建材经销"
    assert east.custom_fields == {"区域": "上海", "年采购额": "1200000"}
    assert east.last_touch_at == dt.datetime(2026, 11, 20, tzinfo=SHANGHAI)
    assert jinling.owner_id == await member_id(runtime, "rep.zhao") and jinling.last_touch_at is None
    async with runtime.sessions() as session:
        stage = await session.get(Stage, east.stage_id)
        [history] = list(await session.scalars(select(StageHistory).where(StageHistory.customer_id == east.id)))
        moves = await session.scalar(select(func.count()).select_from(StageChange))
        obstacles = await session.scalar(select(func.count()).select_from(Obstacle))
        [audit] = list(await session.scalars(select(AuditEntry)))
    assert stage.name == "方案报价" and east.stage_entered_at == START
    assert history.note == "导入" and history.stage_id == east.stage_id and history.left_at is None
    assert moves == 0 and obstacles == 0  # an import is not a move: no obstacle card
    assert audit.action == "import" and audit.after == {"created": 2, "updated": 0, "unchanged": 0}


async def test_the_header_row_is_found_below_a_title_and_rows_are_numbered_as_excel_shows_them(runtime):
    data = xlsx_bytes(
        [["2026 年客户清单"], [], HEADER, ["华东建材", "", "", "", "", "", "", "rep.li", ""], ["", "", "", "", "", "", "", "rep.li", ""]],
    )
    outcome = await run_import(runtime, data)
    assert outcome.result is None
    assert [(e.row, e.code) for e in outcome.errors] == [(5, "no_name")]
    assert await customers(runtime) == []


async def test_dates_are_read_as_excel_dates_serial_numbers_and_chinese_text(runtime):
    rows = [
        ["客户名称", "负责人", "最近跟进日期", "预计签约时间"],
        ["甲", "rep.li", dt.date(2026, 11, 3), "2027/01/15"],
        ["乙", "rep.li", 46329, "2027-01-15"],  # serial 46329 = 2026-11-03
        ["丙", "rep.li", "2026年11月3日", "1月15日"],  # no year: a sign date lies ahead
        ["丁", "rep.li", "11月3日", ""],  # no year: a past follow-up
        ["戊", "rep.li", "2026-11-03", ""],
    ]
    outcome = await run_import(runtime, xlsx_bytes(rows))
    assert outcome.errors == []
    found = {c.name: c for c in await customers(runtime)}
    for name in "甲乙丙丁戊":
        assert found[name].last_touch_at.astimezone(SHANGHAI).date() == dt.date(2026, 11, 3), name
    assert {found[n].expected_sign_date for n in "甲乙丙"} == {dt.date(2027, 1, 15)}


async def test_reimporting_updates_instead_of_duplicating(runtime):
    first = xlsx_bytes([HEADER, ["华东建材", "建材经销", "张总", "", "新线索", "", "", "rep.li", ""]])
    await run_import(runtime, first)
    second = xlsx_bytes([HEADER, ["华东建材", "装饰工程", "张总、李工", "2026-11-24", "需求确认", "预算", "", "rep.li", "华东"]])
    outcome = await run_import(runtime, second)

    assert (outcome.result.created, outcome.result.updated) == (0, 1)
    [customer] = await customers(runtime)
    assert customer.industry == "装饰工程" and customer.contacts == ["张总", "李工"] and customer.key_obstacle == "预算"
    async with runtime.sessions() as session:
        stays = list(await session.scalars(select(StageHistory).order_by(StageHistory.id)))
        stage = await session.get(Stage, customer.stage_id)
    assert stage.name == "需求确认"
    assert [s.note for s in stays] == ["导入", "导入"] and stays[0].left_at == START and stays[1].left_at is None
    again = await run_import(runtime, second)
    assert (again.result.created, again.result.updated, again.result.unchanged) == (0, 0, 1)


async def test_the_same_name_without_an_owner_column_updates_the_one_existing_customer(runtime):
    await run_import(runtime, xlsx_bytes([["客户名称", "负责人"], ["华东建材", "rep.li"]]))
    outcome = await run_import(runtime, xlsx_bytes([["客户名称", "行业"], ["华东建材", "市政工程"]]))
    assert (outcome.result.created, outcome.result.updated) == (0, 1)
    [customer] = await customers(runtime)
    assert customer.industry == "市政工程"


async def test_new_customers_without_an_owner_column_need_a_default_owner(runtime):
    outcome = await run_import(runtime, xlsx_bytes([["客户名称"], ["华东建材"]]))
    assert [(e.row, e.code) for e in outcome.errors] == [(2, "no_owner")]
    outcome = await run_import(runtime, xlsx_bytes([["客户名称"], ["华东建材"]]),
                               default_owner_id=await member_id(runtime, "rep.zhao"))
    assert outcome.result.created == 1


async def test_every_bad_row_is_reported_and_nothing_is_written(runtime):
    rows = [
        HEADER,
        ["华东建材", "", "", "", "", "", "", "rep.li", ""],  # fine on its own
        ["", "", "", "", "", "", "", "rep.li", ""],  # no name
        ["金陵置业", "", "", "", "", "", "", "nobody", ""],  # unknown owner
        ["钱塘装饰", "", "", "", "立项审批", "", "", "rep.li", ""],  # not a stage of the owner's pipeline
        ["姑苏幕墙", "", "", "上周", "", "", "", "rep.li", ""],  # unparseable date
        ["华东建材", "", "", "", "", "", "", "rep.li", ""],  # the same customer twice
        ["滨江钢构", "", "", "", "", "", "2026-02-30", "rep.li", ""],  # no such day
    ]
    outcome = await run_import(runtime, xlsx_bytes(rows))
    assert outcome.result is None
    assert [(e.row, e.code) for e in outcome.errors] == [
        (3, "no_name"), (4, "unknown_owner"), (5, "unknown_stage"), (6, "bad_date_last_touch"),
        (7, "duplicate"), (8, "bad_date_expected_sign"),
    ]
    assert outcome.errors[4].detail == "2"
    assert await customers(runtime) == []
    async with runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == 0


async def test_a_spreadsheet_without_a_name_column_is_refused(runtime):
    from domain.importing import ImportRejected

    try:
        await run_import(runtime, xlsx_bytes([["公司", "行业"], ["华东建材", "建材"]]))
    except ImportRejected as exc:
        assert exc.code == "no_name_column"
    else:
        raise AssertionError("accepted a sheet without 客户名称")
    assert await customers(runtime) == []


async def rejected(runtime, data: bytes, filename: str) -> str:
    from domain.importing import ImportRejected

    try:
        await run_import(runtime, data, filename)
    except ImportRejected as exc:
        assert await customers(runtime) == []
        return exc.code
    raise AssertionError(f"{filename} was accepted")


async def test_a_50_mb_file_is_refused_as_too_large(runtime):
    assert await rejected(runtime, os.urandom(50 * 1024 * 1024), "big.xlsx") == "too_large"


async def test_random_bytes_named_xlsx_are_refused_as_unreadable(runtime):
    assert await rejected(runtime, os.urandom(4096), "客户.xlsx") == "unreadable"


async def test_a_macro_enabled_workbook_is_refused(runtime):
    assert await rejected(runtime, xlsx_bytes([["客户名称"], ["甲"]]), "客户.xlsm") == "macro"
    # A macro project inside a file named .xlsx is refused too.
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx_bytes([["客户名称"], ["甲"]]))) as source, zipfile.ZipFile(buffer, "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item))
        target.writestr("xl/vbaProject.bin", b"\xd0\xcf\x11\xe0macro")
    assert await rejected(runtime, buffer.getvalue(), "客户.xlsx") == "macro"


async def test_an_unsupported_file_type_is_refused(runtime):
    assert await rejected(runtime, b"%PDF-1.4 not a sheet", "客户.pdf") == "unsupported_type"


async def test_a_csv_file_is_imported_in_utf8_or_gbk(runtime):
    text = "客户名称,负责人,最近跟进日期\n华东建材,rep.li,2026/11/20\n"
    outcome = await run_import(runtime, text.encode("utf-8-sig"), "客户.csv")
    assert outcome.result.created == 1
    outcome = await run_import(runtime, "客户名称,负责人\n金陵置业,rep.li\n".encode("gbk"), "客户.csv")
    assert outcome.result.created == 1
    assert [c.name for c in await customers(runtime)] == ["华东建材", "金陵置业"]


async def test_merged_cells_give_their_value_to_every_row_they_cover(runtime):
    rows = [["负责人", "客户名称", "所属行业"], [None, "华东建材", "建材"], [None, "金陵置业", "地产"], ["rep.zhao", "钱塘装饰", "装饰"]]
    data = xlsx_bytes(rows, merges=[(1, 0, 2, 0, "rep.li")])
    outcome = await run_import(runtime, data)
    assert outcome.errors == []
    li, zhao = await member_id(runtime, "rep.li"), await member_id(runtime, "rep.zhao")
    assert [(c.name, c.owner_id) for c in await customers(runtime)] == [("华东建材", li), ("金陵置业", li), ("钱塘装饰", zhao)]


async def test_an_imported_last_follow_up_ten_days_ago_is_cold_at_the_next_sweep(runtime):
    rows = [["客户名称", "负责人", "最近跟进日期"], ["华东建材", "rep.li", TODAY - dt.timedelta(days=10)],
            ["金陵置业", "rep.li", TODAY]]
    await run_import(runtime, xlsx_bytes(rows))
    async with runtime.sessions() as session, session.begin():
        result = await alert_store.sweep(
            session, now=runtime.clock.now(), tz=SHANGHAI, rules=RuleThresholds(), calendar=WorkCalendar()
        )
        cold = list(await session.scalars(select(Customer.name).join(alert_store.Alert, alert_store.Alert.customer_id == Customer.id)))
    assert result.raised["cold"] == 1 and cold == ["华东建材"]


async def test_one_hundred_thousand_rows_import_in_one_transaction(runtime):
    rows = [["客户名称", "负责人", "最近跟进日期", "区域"]]
    rows += [[f"客户{i:06d}", "rep.li" if i % 2 else "rep.zhao", TODAY - dt.timedelta(days=i % 30), "华东"]
             for i in range(100_000)]
    outcome = await run_import(runtime, xlsx_bytes(rows))
    assert outcome.result.created == 100_000
    async with runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Customer)) == 100_000
        assert await session.scalar(select(func.count()).select_from(StageHistory).where(StageHistory.note == "导入")) == 100_000


@requires_postgres
async def test_import_reimport_and_a_stage_change_on_postgresql(tmp_path, clock):
    from bot.bootstrap import build_runtime
    from tests.conftest import make_config

    async with scratch_database() as url:
        rt = await build_runtime(make_config(tmp_path, storage={"url": url}), clock=clock)
        try:
            rows = [HEADER, ["华东建材", "建材经销", "张总", "2026-11-20", "新线索", "", "2027-01-15", "rep.li", "华东"],
                    ["金陵置业", "", "", "", "需求确认", "", "", "rep.zhao", ""]]
            first = await run_import(rt, xlsx_bytes(rows))
            assert first.result.created == 2
            rows[1][4] = "方案报价"
            second = await run_import(rt, xlsx_bytes(rows))
            assert (second.result.created, second.result.updated, second.result.unchanged) == (0, 1, 1)
            async with rt.sessions() as session:
                notes = list(await session.scalars(select(StageHistory.note).order_by(StageHistory.id)))
                east = await session.scalar(select(Customer).where(Customer.name == "华东建材"))
            assert notes == ["导入", "导入", "导入"]
            assert east.last_touch_at == dt.datetime(2026, 11, 20, tzinfo=SHANGHAI)
        finally:
            await rt.stop()
