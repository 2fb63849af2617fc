"""Transcripts through the console: /导入 with the file as an attachment, /导出, /成员 转交,
/规则 设置, 撞单, the customer directory, and the refusals that change nothing."""

from __future__ import annotations

import datetime as dt
import io

from python_calamine import CalamineWorkbook
from sqlalchemy import func, select

from storage.models import AuditEntry, Customer, Member, Setting, StageHistory, Touch
from tests.conftest import cards_of, texts_of
from tests.import_support import xlsx_bytes
from tests.seed import add_customer

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def count(console, model) -> int:
    async with console.runtime.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def customer_named(console, name: str) -> Customer:
    async with console.runtime.sessions() as session:
        customer = await session.scalar(select(Customer).where(Customer.name == name))
    assert customer is not None, name
    return customer


async def member(console, code: str) -> Member:
    async with console.runtime.sessions() as session:
        found = await session.scalar(select(Member).where(Member.code == code))
    assert found is not None
    return found


def sheet() -> bytes:
    return xlsx_bytes([
        ["客户名称", "负责人", "联系人", "最近跟进日期", "当前阶段", "区域"],
        ["华东建材", "rep.li", "张总", dt.date(2026, 11, 20), "方案报价", "上海"],
        ["金陵置业", "rep.zhao", "李工", "2026年11月1日", "", "南京"],
    ])


async def test_an_admin_imports_with_slash_import_then_the_file_as_an_attachment(console):
    reply = await console.send("admin.he", "/导入")
    assert "请发送要导入的客户表" in texts_of(reply)[0]
    reply = await console.upload("admin.he", sheet(), "客户.xlsx", kind="file", content_type=XLSX)
    assert texts_of(reply) == ["导入完成(客户.xlsx):新建 2 位客户,更新 0 位,0 位无变化。"]
    east = await customer_named(console, "华东建材")
    assert east.contacts == ["张总"] and east.custom_fields == {"区域": "上海"}

    reply = await console.send("rep.li", "/客户 华东建材")
    shown = texts_of(reply)[0]
    assert "方案报价" in shown and "区域:上海" in shown


async def test_a_file_captioned_slash_import_is_imported_and_a_second_import_updates(console):
    import aiohttp

    async def upload_with_caption(data: bytes) -> dict:
        form = aiohttp.FormData()
        form.add_field("member", "admin.he")
        form.add_field("kind", "file")
        form.add_field("text", "/导入")
        form.add_field("file", data, filename="客户.xlsx", content_type=XLSX)
        response = await console.client.post("/console/api/messages", data=form)
        assert response.status == 200
        return await response.json()

    assert "新建 2 位客户" in texts_of(await upload_with_caption(sheet()))[0]
    assert "新建 0 位客户,更新 0 位,2 位无变化" in texts_of(await upload_with_caption(sheet()))[0]
    assert await count(console, Customer) == 2


async def test_bad_rows_in_chat_are_listed_by_row_number_and_nothing_is_imported(console):
    data = xlsx_bytes([["客户名称", "负责人"], ["华东建材", "rep.li"], ["", "rep.li"], ["金陵置业", "nobody"]])
    await console.send("admin.he", "/导入")
    reply = await console.upload("admin.he", data, "客户.xlsx", kind="file", content_type=XLSX)
    [text] = texts_of(reply)
    assert text.splitlines() == [
        "导入失败,没有做任何修改:共 2 行有问题。",
        "第 3 行:缺少客户名称",
        "第 4 行:负责人「nobody」不存在(请填成员编码或姓名)",
    ]
    assert await count(console, Customer) == 0


async def test_a_long_list_of_bad_rows_also_arrives_as_a_file(console):
    rows = [["客户名称", "负责人"]] + [[f"客户{i}", "nobody"] for i in range(30)]
    await console.send("admin.he", "/导入")
    reply = await console.upload("admin.he", xlsx_bytes(rows), "客户.xlsx", kind="file", content_type=XLSX)
    assert "另有 10 条" in texts_of(reply)[0]
    [file] = [r for r in reply["replies"] if r["kind"] == "file"]
    assert file["payload"]["filename"] == "导入问题清单.xlsx"
    assert await count(console, Customer) == 0


async def test_unreadable_macro_and_headerless_files_are_refused_in_chat(console):
    for data, name, expected in (
        (b"\x00garbage" * 500, "客户.xlsx", "不是有效的 Excel 表格"),
        (xlsx_bytes([["客户名称", "负责人"], ["甲", "rep.li"]]), "客户.xlsm", "不接受含宏的文件"),
        (xlsx_bytes([["公司", "负责人"], ["甲", "rep.li"]]), "客户.xlsx", "找不到「客户名称」列"),
    ):
        await console.send("admin.he", "/导入")
        reply = await console.upload("admin.he", data, name, kind="file", content_type=XLSX)
        assert expected in texts_of(reply)[0], texts_of(reply)
    assert await count(console, Customer) == 0


async def test_a_non_admin_sending_slash_import_is_refused(console):
    assert texts_of(await console.send("rep.li", "/导入")) == ["您没有权限使用 /导入。"]
    assert texts_of(await console.send("mgr.wang", "/成员")) == ["您没有权限使用 /成员。"]
    assert texts_of(await console.send("rep.li", "/规则 设置 冷却小时 1")) == ["您没有权限使用 /规则。"]
    assert await count(console, AuditEntry) == 0


async def test_a_rep_sending_a_file_captioned_slash_import_is_refused_and_nothing_changes(console):
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("member", "rep.li")
    form.add_field("kind", "file")
    form.add_field("text", "/导入")
    form.add_field("file", sheet(), filename="客户.xlsx", content_type=XLSX)
    response = await console.client.post("/console/api/messages", data=form)
    assert texts_of(await response.json()) == ["您没有权限使用 /导入。"]
    assert await count(console, Customer) == 0


async def test_export_then_reimport_of_the_customers_sheet_changes_nothing(console):
    await console.send("admin.he", "/导入")
    await console.upload("admin.he", sheet(), "客户.xlsx", kind="file", content_type=XLSX)
    await console.send("rep.li", "华东建材 张总 电话20分钟 聊了报价细节,下周三上门拜访")
    reply = await console.send("admin.he", "/导出")
    assert texts_of(reply)[0].startswith("导出完成:客户 2 位,跟进记录 1 条")
    [file] = [r for r in reply["replies"] if r["kind"] == "file"]
    path = next(console.runtime.media.root.glob(f"evidence/*/{file['payload']['sha256']}.*"))
    exported = path.read_bytes()
    workbook = CalamineWorkbook.from_filelike(io.BytesIO(exported))
    assert workbook.sheet_names == ["客户", "跟进记录", "预警", "资源申请", "审计"]

    before = await count(console, StageHistory)
    await console.send("admin.he", "/导入")
    reply = await console.upload("admin.he", exported, "导出.xlsx", kind="file", content_type=XLSX)
    assert texts_of(reply) == ["导入完成(导出.xlsx):新建 0 位客户,更新 0 位,2 位无变化。"]
    assert await count(console, StageHistory) == before


async def test_a_manager_exports_only_the_team_and_without_the_audit(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await add_customer(console.runtime, "rep.sun", "岭南装饰")
    reply = await console.send("mgr.wang", "/导出")
    assert texts_of(reply)[0].startswith("导出完成:客户 1 位") and "华东一组" in texts_of(reply)[0]
    [file] = [r for r in reply["replies"] if r["kind"] == "file"]
    path = next(console.runtime.media.root.glob(f"evidence/*/{file['payload']['sha256']}.*"))
    workbook = CalamineWorkbook.from_filelike(io.BytesIO(path.read_bytes()))
    assert "审计" not in workbook.sheet_names
    rows = workbook.get_sheet_by_name("客户").to_python()
    assert [row[0] for row in rows[1:]] == ["华东建材"]
    assert texts_of(await console.send("rep.li", "/导出")) == ["您没有权限使用 /导出。"]


async def test_transfer_moves_every_customer_with_stage_and_history_and_tells_everyone(console):
    east = await add_customer(console.runtime, "rep.li", "华东建材")
    await console.send("rep.li", "华东建材 电话20分钟 聊了报价细节,明天发报价单")
    await add_customer(console.runtime, "rep.li", "金陵置业")
    zhao = await member(console, "rep.zhao")

    reply = await console.send("admin.he", "/成员 转交 rep.li rep.zhao")
    assert texts_of(reply)[0] == "已将 李明 的 2 位客户转交给 赵磊,阶段与全部历史保留。"
    for code, expected in (("rep.li", "转交给 赵磊"), ("rep.zhao", "转交给您"), ("mgr.wang", "已转交给 赵磊")):
        told = [item["payload"].get("text", "") for item in await console.feed(member=code)]
        assert any(expected in text for text in told), (code, told)
    moved = await customer_named(console, "华东建材")
    assert moved.owner_id == zhao.id and moved.stage_id == east.stage_id
    async with console.runtime.sessions() as session:
        [touch] = list(await session.scalars(select(Touch)))
        [audit] = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "member.transfer")))
    assert touch.customer_id == moved.id  # the history stays with the customer
    assert audit.before == {"owner": "rep.li", "customers": 2} and audit.after == {"owner": "rep.zhao"}
    reply = await console.send("rep.zhao", "/客户 华东建材")
    assert "聊了报价细节" in texts_of(reply)[0]


async def test_transfer_to_a_member_of_another_role_is_refused_and_nothing_moves(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    reply = await console.send("admin.he", "/成员 转交 rep.li mgr.wang")
    assert texts_of(reply) == ["不能转交:李明是销售,王静是主管。客户只能转给同一角色的成员。"]
    li = await member(console, "rep.li")
    assert (await customer_named(console, "华东建材")).owner_id == li.id
    assert await count(console, AuditEntry) == 0


async def test_members_are_listed_and_roles_and_teams_change_with_an_audit_row(console):
    reply = await console.send("admin.he", "/成员")
    assert "rep.li 李明(销售)" in texts_of(reply)[0]
    reply = await console.send("admin.he", "/成员 角色 rep.zhao 主管")
    assert texts_of(reply) == ["已将 赵磊(rep.zhao)的角色从销售改为主管。"]
    reply = await console.send("admin.he", "/成员 调组 rep.li south")
    assert texts_of(reply) == ["已将 李明(rep.li)从「华东一组」调到「华南组」。"]
    reply = await console.send("admin.he", "/成员 角色 rep.li 老板")
    assert texts_of(reply) == ["不认识的角色「老板」,可选:销售、主管、支持、管理员。"]
    zhao = await member(console, "rep.zhao")
    assert zhao.role.value == "manager" and zhao.role_locked
    async with console.runtime.sessions() as session:
        actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions == ["member.role", "member.team"]


async def test_rules_set_validates_records_who_and_when_and_applies(console):
    reply = await console.send("admin.he", "/规则 设置 冷却小时 48")
    assert texts_of(reply) == ["已将「冷却小时」从 72 改为 48小时。已记录修改人和时间。"]
    shown = texts_of(await console.send("admin.he", "/规则"))[0]
    assert "48" in shown
    listing = texts_of(await console.send("admin.he", "/规则 设置"))[0]
    assert "冷却小时:48小时(何敏 于" in listing
    async with console.runtime.sessions() as session:
        [audit] = list(await session.scalars(select(AuditEntry)))
    assert (audit.action, audit.subject, audit.before, audit.after) == ("rules.set", "cold_hours", {"cold_hours": 72},
                                                                        {"cold_hours": 48})
    he = await member(console, "admin.he")
    assert audit.member_id == he.id


async def test_a_negative_or_absurd_rule_value_is_refused_and_nothing_changes(console):
    for text, expected in (
        ("/规则 设置 冷却小时 -5", "「冷却小时」只能在 1–2160小时 之间,「-5」不合理。没有做任何修改。"),
        ("/规则 设置 冷却小时 999999", "「冷却小时」只能在 1–2160小时 之间,「999999」不合理。没有做任何修改。"),
        ("/规则 设置 冷却小时 很久", "「冷却小时」需要一个整数,「很久」不是。没有做任何修改。"),
        ("/规则 设置 低活跃比例 250%", "「低活跃比例」只能在 1%–100% 之间,「250%」不合理。没有做任何修改。"),
        ("/规则 设置 报价阶段 喝茶", "「喝茶」不是任何销售流程里的阶段。没有做任何修改。"),
        ("/规则 设置 心情 好", "没有名为「心情」的规则。"),
    ):
        assert texts_of(await console.send("admin.he", text)) == [expected]
    assert await count(console, AuditEntry) == 0
    async with console.runtime.sessions() as session:
        assert await session.get(Setting, "rules.overrides") is None


async def test_a_new_lead_named_like_another_reps_customer_is_a_clash_the_manager_decides(console):
    await add_customer(console.runtime, "rep.zhao", "华东建材有限公司")
    reply = await console.send("rep.li", "华东建材 张总 电话20分钟 聊了报价细节,下周三上门拜访")
    assert texts_of(reply)[0] == "⚠️「华东建材有限公司」已是 赵磊 的客户(撞单)。没有新建客户,已请主管 王静 决定归属。"
    [card] = cards_of(reply)
    assert card["title"] == "撞单待决定:华东建材有限公司"
    assert await count(console, Customer) == 1 and await count(console, Touch) == 0

    refused = await console.click("rep.li", card, "转给李明")
    assert (await customer_named(console, "华东建材有限公司")).owner_id != (await member(console, "rep.li")).id, refused
    reply = await console.click("mgr.wang", card, "转给李明")
    li = await member(console, "rep.li")
    assert (await customer_named(console, "华东建材有限公司")).owner_id == li.id
    assert any("转给您跟进" in t for t in texts_of(reply))


async def test_greetings_are_answered_briefly_not_offered_as_customers(console):
    for text in ("你好", "在吗", "hello", "谢谢"):
        reply = await console.send("rep.li", text)
        assert cards_of(reply) == [], text
        assert len(texts_of(reply)) == 1
    assert await count(console, Customer) == 0


async def test_a_rep_adds_aliases_and_contacts_to_their_own_customer(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await add_customer(console.runtime, "rep.zhao", "金陵置业")
    reply = await console.send("rep.li", "/客户 华东建材 别名 华东")
    assert texts_of(reply) == ["已为「华东建材」添加别名:华东。现有别名:华东"]
    reply = await console.send("rep.li", "/客户 华东建材 联系人 张总 13800000000")
    assert texts_of(reply) == ["已为「华东建材」添加联系人 张总(13800000000)。现有联系人:张总"]
    customer = await customer_named(console, "华东建材")
    assert customer.aliases == ["华东"] and customer.contacts == ["张总"]
    assert customer.custom_fields == {"联系电话": "张总 13800000000"}
    reply = await console.send("rep.li", "/客户 金陵置业 别名 金陵")  # another rep's customer: not visible
    assert "金陵置业" in texts_of(reply)[0] and "已为" not in texts_of(reply)[0]
    assert (await customer_named(console, "金陵置业")).aliases == []
    # The alias now finds the customer when logging a touch.
    reply = await console.send("rep.li", "华东 电话10分钟 聊了交期,明天发报价单")
    assert cards_of(reply)[0]["title"] == "已记录跟进 · 华东建材"
