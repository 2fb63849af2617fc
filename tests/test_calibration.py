"""动作校准会 transcripts through the console: the Friday report to each team group, the admin card
[更新应答库], the reminder 24 h later unless the library was updated, and /校准 on demand."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from bot import scheduler
from domain.enums import AlertStatus, EscalationStatus
from storage import intel as intel_store
from storage.models import Alert, Customer, Escalation, InboxItem, ObstacleResponse
from tests.conftest import Console, texts_of
from tests.metrics_support import local
from tests.test_metrics import build_org

FRIDAY = local("2026-11-27", "15:00")


async def run_job(console: Console, job: str, at: dt.datetime) -> None:
    console.runtime.clock.set_now(at)
    accepted, _ = await scheduler.accept_job(console.runtime, job)
    await console.runtime.inbox.wait_processed(accepted.inbox_id)
    async with console.runtime.sessions() as session:
        item = await session.get(InboxItem, accepted.inbox_id)
        assert item is not None and item.status == "done", item.error if item else "missing"


async def customer_named(session, name: str) -> Customer:
    customer = await session.scalar(select(Customer).where(Customer.name == name))
    assert customer is not None, name
    return customer


async def build_week(console: Console) -> None:
    """build_org, plus this week's ignored alert, a competitor sighting and an escalation."""
    await build_org(console)
    async with console.runtime.sessions() as session, session.begin():
        c2 = await customer_named(session, "客户2")
        c6 = await customer_named(session, "客户6")
        session.add(Alert(rule="cold", open_key=f"cold:{c2.id}", customer_id=c2.id, member_id=c2.owner_id,
                          severity="yellow", status=AlertStatus.IGNORED, details={}, raised_at=local("2026-11-23"),
                          notified_at=local("2026-11-23", "10:00"), closed_at=local("2026-11-25", "10:00")))
        session.add(Alert(rule="cold", open_key=None, customer_id=c2.id, member_id=c2.owner_id, severity="yellow",
                          status=AlertStatus.IGNORED, details={}, raised_at=local("2026-11-01"),
                          notified_at=local("2026-11-01"), closed_at=local("2026-11-10")))  # an older week
        await intel_store.record_intel(session, competitor_id=None, member_id=c2.owner_id, customer_id=c2.id,
                                       text="对手降价20%", evidence_id=None, now=local("2026-11-26"), source_event_id=None)
        session.add(Escalation(customer_id=c6.id, manager_id=None, status=EscalationStatus.OPEN,
                               raised_at=local("2026-11-24"), checklist={}))


async def test_the_friday_report_reaches_the_team_group_and_admins_get_the_update_card(console: Console) -> None:
    await build_week(console)
    await run_job(console, "calibration", FRIDAY)
    (report,) = await console.feed(team="east")
    text = report["payload"]["text"]
    assert "## 华东一组 动作校准会 11-20 15:00—11-27 15:00" in text
    assert "**本周被忽略的预警**(1 条)" in text and "李明:客户2 标黄(超72小时未跟进),已搁置 101.0 小时" in text
    assert "客户6(赵磊):技术适配存疑,已等 103.0 小时" in text  # marked 11-23 08:00
    assert "B2B项目销售 · 初步沟通" in text  # stays over their 7-day limit
    assert "未收录竞品:对手降价20%(李明 · 客户2)" in text
    assert "- 技术适配存疑:1 位客户答后仍停滞(进入复盘)" in text
    assert await console.feed(team="south") == []  # nothing this week concerns south
    (card,) = [item for item in await console.feed(member="admin.he") if item["kind"] == "card"]
    assert card["payload"]["card"]["title"] == "动作校准会:请更新常见障碍应答库"
    clicked = await console.click("admin.he", card["payload"]["card"], "更新应答库")
    said = "\n".join(texts_of(clicked))
    assert "/应答库" in said and "技术适配存疑(失效 1 次)" in said


async def test_admins_are_reminded_24_hours_later_when_the_library_was_not_updated(console: Console) -> None:
    await build_week(console)
    await run_job(console, "calibration", FRIDAY)
    await run_job(console, "calibration_reminder", FRIDAY + dt.timedelta(days=1))
    reminders = [i for i in await console.feed(member="admin.he") if "还没有更新" in i["payload"].get("text", "")]
    assert len(reminders) == 1


async def test_no_reminder_when_the_library_was_updated_after_the_report(console: Console) -> None:
    await build_week(console)
    await run_job(console, "calibration", FRIDAY)
    async with console.runtime.sessions() as session, session.begin():
        await session.execute(
            update(ObstacleResponse).where(ObstacleResponse.obstacle == "技术适配存疑")
            .values(updated_at=FRIDAY + dt.timedelta(hours=2))
        )
    await run_job(console, "calibration_reminder", FRIDAY + dt.timedelta(days=1))
    assert not [i for i in await console.feed(member="admin.he") if "还没有更新" in i["payload"].get("text", "")]


async def test_no_reminder_without_a_report_the_day_before(console: Console) -> None:
    await build_week(console)
    await run_job(console, "calibration_reminder", FRIDAY + dt.timedelta(days=1))
    assert await console.feed(member="admin.he") == []


async def test_calibration_on_demand_for_a_manager_covers_their_team_only(console: Console) -> None:
    await build_week(console)
    console.runtime.clock.set_now(FRIDAY)
    reply = await console.send("mgr.chen", "/校准")
    text = reply["replies"][0]["payload"]["text"]
    assert "华南组 动作校准会" in text and "客户6" not in text
    reply = await console.send("admin.he", "/校准")
    assert "全公司 动作校准会" in reply["replies"][0]["payload"]["text"]
    assert reply["replies"][1]["kind"] == "card"
    refused = await console.send("rep.li", "/校准")
    assert "动作校准会" not in texts_of(refused)[0]
