"""预警 transcripts: each rule through the console with a movable clock, boundaries included.

The sweep runs the way production runs it: a ``schedule`` event accepted into the inbox for the
clock's current period and processed by the normal worker; what people were told is read from
the console feed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, update

from bot import scheduler
from bot.clock import ShiftableClock
from domain.enums import AlertStatus, Channel, EvidenceKind, ObstacleStatus
from domain.rules.workdays import WorkCalendar
from storage import alerts as alert_store
from storage import customers as customer_store
from storage import members as member_store
from storage import settings as settings_store
from storage import touches as touch_store
from storage.alerts import working_cutoff
from storage.db import create_engine, session_factory, transaction
from storage.migrate import upgrade
from storage.models import (
    Alert,
    Customer,
    Evidence,
    InboxItem,
    Obstacle,
    Pipeline,
    ScriptPack,
    Stage,
    SupportRequest,
)
from storage.org import load_directory_file
from tests.conftest import ORG_SMALL, SHANGHAI, START, Console
from tests.pg import POSTGRES_URL, SKIP_REASON, scratch_database
from tests.seed import add_customer

HOSPITAL_PACK = "三甲医院招标应答话术包"


# -- helpers ---------------------------------------------------------------------------------------


async def run_job(console: Console, job: str = "alert_sweep") -> int:
    """Accept the job's event for the clock's current period and wait until it is processed."""
    runtime = console.runtime
    accepted, _ = await scheduler.accept_job(runtime, job)
    await runtime.inbox.wait_processed(accepted.inbox_id)
    async with runtime.sessions() as session:
        item = await session.get(InboxItem, accepted.inbox_id)
        assert item is not None and item.status == "done", item.error if item else "missing"
    return accepted.inbox_id


async def told(console: Console, member: str, after: int = 0) -> list[str]:
    """Texts (and markdown bodies) pushed to a member after an outbox id."""
    items = await console.feed(member=member, after=str(after))
    return [item["payload"].get("text", "") for item in items]


async def last_item(console: Console, member: str) -> int:
    items = await console.feed(member=member, limit="500")
    return items[-1]["id"] if items else 0


def advance(clock: ShiftableClock, **delta: float) -> None:
    clock.offset += dt.timedelta(**delta)


def set_now(clock: ShiftableClock, instant: dt.datetime) -> None:
    clock.set_now(instant)


async def episodes(console: Console, rule: str | None = None) -> list[Alert]:
    async with console.runtime.sessions() as session:
        query = select(Alert).order_by(Alert.id)
        if rule:
            query = query.where(Alert.rule == rule)
        return list(await session.scalars(query))


async def edit_customer(console: Console, customer_id: int, **values: Any) -> None:
    async with console.runtime.sessions() as session, session.begin():
        await session.execute(update(Customer).where(Customer.id == customer_id).values(**values))


async def stage_named(console: Console, name: str, pipeline_key: str = "b2b") -> Stage:
    async with console.runtime.sessions() as session:
        stage = await session.scalar(
            select(Stage).join(Pipeline, Pipeline.id == Stage.pipeline_id).where(Stage.name == name, Pipeline.key == pipeline_key)
        )
    assert stage is not None, name
    return stage


async def log_touch(console: Console, customer: Customer, rep: str, at: dt.datetime) -> None:
    async with console.runtime.sessions() as session, session.begin():
        member = await member_store.member_by_code(session, rep)
        row = await session.get(Customer, customer.id)
        assert member is not None and row is not None
        await touch_store.record_touch(
            session, customer=row, member_id=member.id, channel=Channel.PHONE, duration_minutes=10, summary="电话沟通",
            raw_text="电话沟通", next_action="回访", next_due=at.date() + dt.timedelta(days=3), proposal=False,
            occurred_at=at, source_event_id=None,
        )


# -- pure: the working-day cutoff -------------------------------------------------------------------


def test_working_cutoff_agrees_with_counting_working_days() -> None:
    calendar = WorkCalendar()
    for today in (dt.date(2026, 10, 13), dt.date(2026, 10, 14), dt.date(2026, 2, 24), dt.date(2026, 5, 6)):
        for limit in (0, 1, 5, 10):
            cutoff = working_cutoff(calendar, today, limit)
            for back in range(0, 40):
                entered = today - dt.timedelta(days=back)
                over = calendar.workdays_between(entered, today) > limit
                assert over == (entered < cutoff), (today, limit, entered)


# -- cold customers (标黄) ---------------------------------------------------------------------------


async def test_cold_at_72h01_not_at_71h59_reminded_once_and_cleared_by_a_touch(console, clock) -> None:
    customer = await add_customer(console.runtime, "rep.li", "华东建材")  # last touch: now
    advance(clock, hours=71, minutes=59)
    await run_job(console)
    assert await told(console, "rep.li") == []
    assert await episodes(console, "cold") == []

    advance(clock, minutes=2)  # 72 h 01 min
    await run_job(console)
    messages = await told(console, "rep.li")
    assert len(messages) == 1
    assert "客户冷却提醒" in messages[0] and "华东建材" in messages[0] and "72 小时" in messages[0]
    [episode] = await episodes(console, "cold")
    assert episode.status == AlertStatus.NOTIFIED and episode.open_key == f"cold:{customer.id}"

    advance(clock, minutes=15)
    await run_job(console)
    assert len(await told(console, "rep.li")) == 1  # the episode notifies once

    mark = await last_item(console, "rep.li")
    await console.send("rep.li", "华东建材 张总 电话20分钟 聊了报价细节,下周三上门拜访")
    advance(clock, minutes=15)
    await run_job(console)
    [episode] = await episodes(console, "cold")
    assert episode.status == AlertStatus.CLEARED and episode.open_key is None and episode.closed_at is not None
    assert not any("冷却" in text for text in await told(console, "rep.li", after=mark))


async def test_a_new_lead_goes_cold_72_hours_after_creation(console, clock) -> None:
    async with console.runtime.sessions() as session, session.begin():
        rep = await member_store.member_by_code(session, "rep.zhao")
        assert rep is not None
        lead = await customer_store.create_lead(session, owner_id=rep.id, name="南山装饰", now=clock.now())
    assert lead.last_touch_at is None
    advance(clock, hours=71, minutes=59)
    await run_job(console)
    assert await told(console, "rep.zhao") == []
    advance(clock, minutes=2)
    await run_job(console)
    [message] = await told(console, "rep.zhao")
    assert "南山装饰" in message and "尚未跟进" in message


async def test_three_cold_customers_make_one_reminder_and_later_ones_wait_for_tomorrow(console, clock) -> None:
    for name in ("华东建材", "江南幕墙", "申城地产"):
        await add_customer(console.runtime, "rep.li", name)
    advance(clock, hours=72, minutes=1)
    await run_job(console)
    [message] = await told(console, "rep.li")
    assert "3 位客户" in message
    assert all(name in message for name in ("华东建材", "江南幕墙", "申城地产"))

    # A fourth customer goes cold later the same day: no second cold reminder today …
    fourth = await add_customer(console.runtime, "rep.li", "浦江石材")
    await edit_customer(console, fourth.id, last_touch_at=clock.now() - dt.timedelta(hours=73))
    advance(clock, minutes=30)
    await run_job(console)
    assert len(await told(console, "rep.li")) == 1
    [waiting] = [e for e in await episodes(console, "cold") if e.customer_id == fourth.id]
    assert waiting.status == AlertStatus.RAISED
    # … it is in tomorrow's batch.
    advance(clock, days=1)
    await run_job(console)
    messages = await told(console, "rep.li")
    assert len(messages) == 2 and "浦江石材" in messages[1] and "1 位客户" in messages[1]


async def test_nothing_is_sent_at_night_and_the_morning_sweep_tells(console, clock) -> None:
    await add_customer(console.runtime, "rep.li", "华东建材")
    set_now(clock, START.replace(hour=23) + dt.timedelta(days=3))  # Saturday 23:00, cold since 10:00
    await run_job(console)
    assert await told(console, "rep.li") == []
    [episode] = await episodes(console, "cold")
    assert episode.status == AlertStatus.RAISED
    set_now(clock, START.replace(hour=8) + dt.timedelta(days=4))
    await run_job(console)
    assert len(await told(console, "rep.li")) == 1


async def test_a_notified_alert_not_acted_on_is_ignored_after_the_window_and_not_repeated(console, clock) -> None:
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    advance(clock, hours=72, minutes=1)
    await run_job(console)
    advance(clock, hours=47, minutes=58)  # 47 h 58 min after the reminder: still within the window
    await run_job(console)
    [episode] = await episodes(console, "cold")
    assert episode.status == AlertStatus.NOTIFIED
    advance(clock, minutes=15)
    await run_job(console)
    [episode] = await episodes(console, "cold")
    assert episode.status == AlertStatus.IGNORED
    assert episode.open_key == f"cold:{customer.id}"  # still the customer's episode: no fresh reminder
    advance(clock, days=1)
    await run_job(console)
    assert len(await told(console, "rep.li")) == 1
    assert len(await episodes(console, "cold")) == 1

    await log_touch(console, customer, "rep.li", clock.now())
    advance(clock, minutes=15)
    await run_job(console)
    [episode] = await episodes(console, "cold")
    assert episode.status == AlertStatus.IGNORED and episode.open_key is None  # released, still counted ignored


# -- snoozed customers (暂缓) -----------------------------------------------------------------------


async def test_a_snoozed_customer_raises_nothing_until_its_resume_date(console, clock) -> None:
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    resume = dt.date(2026, 11, 30)  # Monday
    await edit_customer(console, customer.id, snoozed_until=resume, snooze_reason="客户出差")
    advance(clock, hours=72, minutes=1)  # Saturday: cold, but snoozed
    await run_job(console)
    set_now(clock, dt.datetime(2026, 11, 29, 20, 45, tzinfo=SHANGHAI))  # Sunday evening
    await run_job(console)
    assert await told(console, "rep.li") == []
    assert await episodes(console) == []

    set_now(clock, dt.datetime(2026, 11, 30, 9, 0, tzinfo=SHANGHAI))  # the resume date
    await run_job(console)
    [message] = await told(console, "rep.li")
    assert "华东建材" in message


async def test_a_snooze_pauses_an_open_episode_instead_of_clearing_or_ignoring_it(console, clock) -> None:
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    advance(clock, hours=72, minutes=1)  # Saturday 10:01: reminded
    await run_job(console)
    await edit_customer(console, customer.id, snoozed_until=dt.date(2026, 12, 7))
    set_now(clock, dt.datetime(2026, 12, 4, 10, 0, tzinfo=SHANGHAI))  # far past the ignore window
    await run_job(console)
    [episode] = await episodes(console, "cold")
    assert episode.status == AlertStatus.NOTIFIED and episode.open_key is not None
    set_now(clock, dt.datetime(2026, 12, 7, 10, 0, tzinfo=SHANGHAI))  # resumed today: window starts again
    await run_job(console)
    [episode] = await episodes(console, "cold")
    assert episode.status == AlertStatus.NOTIFIED
    set_now(clock, dt.datetime(2026, 12, 9, 0, 1, tzinfo=SHANGHAI))
    await run_job(console)
    [episode] = await episodes(console, "cold")
    assert episode.status == AlertStatus.IGNORED


# -- quoted too long (标红): working days --------------------------------------------------------------


async def _quoting_customer(console: Console, clock: ShiftableClock, entered: dt.datetime, name: str = "华东建材") -> Customer:
    customer = await add_customer(console.runtime, "rep.li", name)
    quote = await stage_named(console, "方案报价")
    await edit_customer(console, customer.id, stage_id=quote.id, stage_entered_at=entered)
    return customer


async def test_quote_red_on_the_6th_working_day_across_national_day_and_a_makeup_saturday(console, clock) -> None:
    # Entered 2026-09-30; 10-01..10-07 are off, Saturday 10-10 is a make-up working day:
    # 10-13 is working day 5 (within the limit), 10-14 is working day 6.
    set_now(clock, dt.datetime(2026, 9, 30, 15, 0, tzinfo=SHANGHAI))
    customer = await _quoting_customer(console, clock, clock.now())
    set_now(clock, dt.datetime(2026, 10, 13, 20, 30, tzinfo=SHANGHAI))
    await edit_customer(console, customer.id, last_touch_at=clock.now())
    await run_job(console)
    assert await episodes(console, "quote_overdue") == []
    assert await told(console, "rep.li") == [] and await told(console, "mgr.wang") == []

    set_now(clock, dt.datetime(2026, 10, 14, 8, 0, tzinfo=SHANGHAI))
    await run_job(console)
    [episode] = await episodes(console, "quote_overdue")
    assert episode.severity == "red" and episode.status == AlertStatus.NOTIFIED
    [to_rep] = await told(console, "rep.li")
    [to_manager] = await told(console, "mgr.wang")
    assert "标红" in to_rep and "华东建材" in to_rep and "6 个工作日" in to_rep
    assert "标红" in to_manager and "李明" in to_manager and "华东建材" in to_manager
    assert await told(console, "mgr.chen") == []  # another team's manager


async def test_a_rep_without_a_manager_is_not_told_the_manager_knows(console, clock) -> None:
    from storage.models import Team

    async with console.runtime.sessions() as session, session.begin():
        await session.execute(update(Team).where(Team.key == "east").values(manager_id=None))
    set_now(clock, dt.datetime(2026, 10, 14, 9, 0, tzinfo=SHANGHAI))
    await _quoting_customer(console, clock, dt.datetime(2026, 9, 30, 9, 0, tzinfo=SHANGHAI))
    await run_job(console)
    [to_rep] = await told(console, "rep.li")
    assert "标红" in to_rep and "华东建材" in to_rep
    assert "主管已同步收到" not in to_rep and to_rep.endswith("请尽快推进到下一阶段,或记录阻碍原因。")
    assert await told(console, "mgr.wang") == []


async def test_leaving_the_quote_stage_clears_the_red_alert(console, clock) -> None:
    set_now(clock, dt.datetime(2026, 10, 14, 9, 0, tzinfo=SHANGHAI))
    customer = await _quoting_customer(console, clock, dt.datetime(2026, 9, 30, 9, 0, tzinfo=SHANGHAI))
    await run_job(console)
    assert (await episodes(console, "quote_overdue"))[0].status == AlertStatus.NOTIFIED
    negotiation = await stage_named(console, "商务谈判")
    await edit_customer(console, customer.id, stage_id=negotiation.id, stage_entered_at=clock.now())
    advance(clock, minutes=15)
    await run_job(console)
    [episode] = await episodes(console, "quote_overdue")
    assert episode.status == AlertStatus.CLEARED and episode.open_key is None


async def _warnings(console: Console) -> list[str]:
    return [text for text in await told(console, "admin.he") if "节假日数据缺失" in text]


async def test_beyond_the_holiday_data_2027_counts_monday_to_friday_and_warns_admins_once(console, clock) -> None:
    assert 2027 not in WorkCalendar().data_years
    # Entered Wednesday 2026-12-30. Beyond the data 2027-01-01 (a Friday) counts as a working day:
    # 12-31, 01-01, 01-04, 01-05, 01-06 → day 5 on 01-06, day 6 on 01-07.
    set_now(clock, dt.datetime(2027, 1, 6, 10, 0, tzinfo=SHANGHAI))
    await _quoting_customer(console, clock, dt.datetime(2026, 12, 30, 10, 0, tzinfo=SHANGHAI))
    await run_job(console)
    assert await episodes(console, "quote_overdue") == []
    warnings = await _warnings(console)
    assert len(warnings) == 1 and "2027" in warnings[0]

    set_now(clock, dt.datetime(2027, 1, 7, 10, 0, tzinfo=SHANGHAI))
    await run_job(console)
    assert len(await episodes(console, "quote_overdue")) == 1  # the rules keep working
    advance(clock, minutes=15)
    await run_job(console)
    assert len(await _warnings(console)) == 1  # warned exactly once
    async with console.runtime.sessions() as session:
        assert await settings_store.get(session, "calendar_beyond_data_warned:2027") is not None


async def test_an_admin_declared_2027_holiday_changes_the_count(console, clock) -> None:
    set_now(clock, dt.datetime(2027, 1, 5, 10, 0, tzinfo=SHANGHAI))
    reply = await console.send("admin.he", "/规则 假期 2027-01-01..2027-01-03 元旦")
    assert "已设定 3 天为放假" in reply["replies"][0]["payload"]["text"]
    await _quoting_customer(console, clock, dt.datetime(2026, 12, 30, 10, 0, tzinfo=SHANGHAI))
    set_now(clock, dt.datetime(2027, 1, 7, 10, 0, tzinfo=SHANGHAI))  # with 01-01 off: day 5
    await run_job(console)
    assert await episodes(console, "quote_overdue") == []
    set_now(clock, dt.datetime(2027, 1, 8, 10, 0, tzinfo=SHANGHAI))  # day 6
    await run_job(console)
    assert len(await episodes(console, "quote_overdue")) == 1
    assert len(await _warnings(console)) == 1  # the rest of 2027 is still beyond the library


# -- milestone overdue (节点超期) -------------------------------------------------------------------------


async def _ensure_pack(console: Console, title: str) -> None:
    async with console.runtime.sessions() as session, session.begin():
        if await session.scalar(select(ScriptPack).where(ScriptPack.title == title)) is None:
            session.add(ScriptPack(title=title, body="**应答要点**", tags={}, updated_at=START))


async def test_hospital_tender_node_overdue_pushes_the_pack_once_and_tells_the_manager(console, clock) -> None:
    await _ensure_pack(console, HOSPITAL_PACK)
    node = await stage_named(console, "招标文件获取", pipeline_key="hospital")
    customer = await add_customer(console.runtime, "rep.li", "瑞金医院")
    await edit_customer(console, customer.id, pipeline_id=node.pipeline_id, stage_id=node.id, stage_entered_at=clock.now())
    advance(clock, days=2, hours=23, minutes=59)  # limit: 3 calendar days
    await edit_customer(console, customer.id, last_touch_at=clock.now())
    await run_job(console)
    assert await told(console, "rep.li") == []

    advance(clock, minutes=2)
    await run_job(console)
    pushed = await console.feed(member="rep.li")
    assert len(pushed) == 1 and pushed[0]["kind"] == "markdown"
    assert HOSPITAL_PACK in pushed[0]["payload"]["title"] and "招标文件" in pushed[0]["payload"]["text"]
    [to_manager] = await told(console, "mgr.wang")
    assert "瑞金医院" in to_manager and "招标文件获取" in to_manager and HOSPITAL_PACK in to_manager

    advance(clock, hours=1)
    await run_job(console)
    assert len(await console.feed(member="rep.li")) == 1  # pushed once

    # The deliverable arrives: the episode ends.
    async with console.runtime.sessions() as session, session.begin():
        rep = await member_store.member_by_code(session, "rep.li")
        assert rep is not None
        session.add(Evidence(customer_id=customer.id, member_id=rep.id, kind=EvidenceKind.PHOTO, mime="image/jpeg",
                             attributes={"deliverable": "招标文件", "stage_id": node.id}, created_at=clock.now()))
    advance(clock, minutes=15)
    await run_job(console)
    [episode] = await episodes(console, "milestone_overdue")
    assert episode.status == AlertStatus.CLEARED


async def test_a_working_day_node_limit_counts_across_national_day_and_reminds_the_rep(console, clock) -> None:
    # 完成产品备案资料提交: 10 working days, no overdue actions configured → the rep is reminded.
    node = await stage_named(console, "完成产品备案资料提交", pipeline_key="hospital")
    set_now(clock, dt.datetime(2026, 9, 25, 16, 0, tzinfo=SHANGHAI))
    customer = await add_customer(console.runtime, "rep.li", "华山医院")
    await edit_customer(console, customer.id, pipeline_id=node.pipeline_id, stage_id=node.id, stage_entered_at=clock.now())
    set_now(clock, dt.datetime(2026, 10, 15, 20, 0, tzinfo=SHANGHAI))  # working day 10
    await edit_customer(console, customer.id, last_touch_at=clock.now())
    await run_job(console)
    assert await episodes(console, "milestone_overdue") == []
    set_now(clock, dt.datetime(2026, 10, 16, 9, 0, tzinfo=SHANGHAI))  # working day 11
    await run_job(console)
    [message] = await told(console, "rep.li")
    assert "节点超期" in message and "华山医院" in message and "备案回执扫描件" in message and "11 个工作日" in message
    assert await told(console, "mgr.wang") == []


# -- obstacle slow (跨部门支持超时) -------------------------------------------------------------------------


async def test_an_unanswered_cross_department_request_is_reported_to_the_manager(console, clock) -> None:
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    async with console.runtime.sessions() as session, session.begin():
        rep = await member_store.member_by_code(session, "rep.li")
        supporter = await member_store.member_by_code(session, "sup.liu")
        assert rep is not None and supporter is not None
        obstacle = Obstacle(customer_id=customer.id, stage_id=customer.stage_id, member_id=rep.id, option="技术适配存疑",
                            status=ObstacleStatus.OPEN, answered_at=clock.now())
        session.add(obstacle)
        await session.flush()
        request = SupportRequest(obstacle_id=obstacle.id, customer_id=customer.id, requester_id=rep.id,
                                 supporter_id=supporter.id, requested_at=clock.now())
        session.add(request)
    advance(clock, hours=47, minutes=59)
    await edit_customer(console, customer.id, last_touch_at=clock.now())
    await run_job(console)
    assert await told(console, "mgr.wang") == []

    advance(clock, minutes=2)
    await run_job(console)
    [message] = await told(console, "mgr.wang")
    assert "跨部门支持超时" in message and "流程复盘" in message and "华东建材" in message and "刘工" in message
    assert await told(console, "rep.li") == []

    async with console.runtime.sessions() as session, session.begin():
        await session.execute(
            update(SupportRequest).where(SupportRequest.id == request.id).values(first_reply_at=clock.now(), reply_text="已支持")
        )
    advance(clock, minutes=15)
    await run_job(console)
    [episode] = await episodes(console, "obstacle_slow")
    assert episode.status == AlertStatus.CLEARED


# -- low weekly activity ------------------------------------------------------------------------------------


async def test_low_weekly_activity_pushes_high_value_suggestions_to_the_low_rep_only(console, clock) -> None:
    # Team 华东一组 this week: 李明 followed 4 customers, 赵磊 1 → mean 2.5; 70% of it is 1.75.
    li = [await add_customer(console.runtime, "rep.li", f"李客户{i}") for i in range(4)]
    zhao = [await add_customer(console.runtime, "rep.zhao", name) for name in ("赵甲", "赵乙", "赵丙", "赵丁", "赵戊", "赵己", "赵庚")]
    long_ago = clock.now() - dt.timedelta(days=12)
    for value, customer in zip((900_000, 50_000, 120_000, 300_000, 8_000, 2_000_000, 70_000), zhao, strict=True):
        await edit_customer(console, customer.id, value=value, last_touch_at=long_ago)
    for customer in li:
        await log_touch(console, customer, "rep.li", clock.now())
    await log_touch(console, zhao[0], "rep.zhao", clock.now())  # touched: not suggested

    set_now(clock, dt.datetime(2026, 11, 27, 10, 0, tzinfo=SHANGHAI))  # Friday 10:00
    await run_job(console, "weekly_activity")
    assert [t for t in await told(console, "rep.li") if "补漏" in t] == []
    suggestion = [item for item in await console.feed(member="rep.zhao") if item["kind"] == "markdown"][0]
    body = suggestion["payload"]["text"]
    assert suggestion["payload"]["title"] == "本周高价值客户补漏建议"
    assert "你跟进了 **1** 位客户" in body and "团队人均 **2.5** 位" in body
    listed = [line for line in body.splitlines() if line[:2] in {f"{n}." for n in range(1, 6)}]
    assert [line.split("**")[1] for line in listed] == ["赵己", "赵丁", "赵丙", "赵庚", "赵乙"]
    assert "赵甲" not in body  # touched this week
    [episode] = await episodes(console, "low_activity")
    assert episode.status == AlertStatus.NOTIFIED and episode.details["week"] == "2026-W48"

    # The same week again (a replay): one alert per rep per ISO week.
    await scheduler.accept_job(console.runtime, "weekly_activity", replay=True)
    await run_job(console, "alert_sweep")
    assert len(await episodes(console, "low_activity")) == 1


# -- the sweep on each database -----------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request, tmp_path) -> Any:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/alerts.db"
        return
    if not POSTGRES_URL:
        pytest.skip(SKIP_REASON)
    async with scratch_database() as url:
        yield url


async def test_every_rule_raises_once_even_when_sweeps_race_and_closes_on_this_database(database_url) -> None:
    from bot.config import RulesConfig

    engine = create_engine(database_url)
    await upgrade(engine)
    sessions = session_factory(engine)
    now = START.astimezone(dt.UTC)
    rules, calendar = RulesConfig(), WorkCalendar()
    try:
        async with transaction(sessions) as session:
            await load_directory_file(session, ORG_SMALL, now=now)
            li = await member_store.member_by_code(session, "rep.li")
            zhao = await member_store.member_by_code(session, "rep.zhao")
            assert li is not None and zhao is not None

            async def customer(name: str, owner: int, **values: Any) -> Customer:
                row = await customer_store.create_lead(session, owner_id=owner, name=name, now=now - dt.timedelta(days=30))
                for key, value in {"last_touch_at": now, **values}.items():
                    setattr(row, key, value)
                await session.flush()
                return row

            quote = await session.scalar(select(Stage).where(Stage.name == "方案报价"))
            node = await session.scalar(select(Stage).where(Stage.name == "招标文件获取"))
            assert quote is not None and node is not None
            cold = await customer("冷客户", li.id, last_touch_at=None)
            await customer("暂缓客户", li.id, last_touch_at=None, snoozed_until=dt.date(2026, 12, 1))
            await customer("已关闭", li.id, last_touch_at=None, status="closed")
            red = await customer("报价客户", li.id, stage_id=quote.id, stage_entered_at=now - dt.timedelta(days=20))
            late = await customer("瑞金医院", li.id, pipeline_id=node.pipeline_id, stage_id=node.id,
                                  stage_entered_at=now - dt.timedelta(days=4))
            for name, attributes, at in (
                ("华山医院", {"deliverable": "招标文件", "stage_id": node.id}, now - dt.timedelta(days=5)),  # before the move
                ("中山医院", {"deliverable": "招标文件"}, now - dt.timedelta(days=1)),  # named, since entering
            ):
                done = await customer(name, li.id, pipeline_id=node.pipeline_id, stage_id=node.id,
                                      stage_entered_at=now - dt.timedelta(days=4))
                session.add(Evidence(customer_id=done.id, member_id=li.id, kind=EvidenceKind.FILE, attributes=attributes,
                                     created_at=at))
            obstacle = Obstacle(customer_id=red.id, stage_id=quote.id, member_id=li.id, option="技术适配存疑",
                                status=ObstacleStatus.OPEN, answered_at=now)
            session.add(obstacle)
            await session.flush()
            request = SupportRequest(obstacle_id=obstacle.id, customer_id=red.id, requester_id=li.id,
                                     requested_at=now - dt.timedelta(hours=49))
            session.add(request)
            for i in range(3):  # this week 李明 followed 3 customers, 赵磊 none
                await log_touch_in(session, await customer(f"李{i}", li.id), li.id, now)
            big = await customer("赵的大客户", zhao.id, value=800_000, last_touch_at=now - dt.timedelta(days=9))
            await session.flush()
            request_id = request.id

        async def sweep_once() -> alert_store.SweepResult:
            async with transaction(sessions) as session:
                return await alert_store.sweep(session, now=now, tz=SHANGHAI, rules=rules, calendar=calendar)

        results = await asyncio.gather(sweep_once(), sweep_once())  # two replicas at once
        assert sum(r.raised["cold"] for r in results) == 2 and sum(r.raised["quote_overdue"] for r in results) == 1
        async with sessions() as session:
            keys = {a.open_key for a in await alert_store.open_episodes(session)}
        assert keys == {
            f"cold:{cold.id}", f"cold:{big.id}", f"quote_overdue:{red.id}", f"milestone_overdue:{late.id}:{node.id}",
            f"obstacle_slow:{request_id}",
        }
        assert sum((await sweep_once()).raised.values()) == 0

        async def weekly() -> list[alert_store.LowActivity]:
            async with transaction(sessions) as session:
                return await alert_store.raise_low_activity(session, as_of=now, now=now, tz=SHANGHAI, ratio=0.7)

        [flagged] = await weekly()
        assert flagged.member_id == zhao.id and flagged.count == 0 and flagged.team_mean == 1.5
        assert await weekly() == []  # once per rep and ISO week

        async with sessions() as session:
            pending = await alert_store.pending_notifications(session, today=START.date())
            suggestions = await alert_store.valuable_untouched(session, [zhao.id], since=now - dt.timedelta(days=7),
                                                               today=START.date())
        assert {p.rule for p in pending} == set(alert_store.RULES)
        assert [s.name for s in suggestions[zhao.id]] == ["赵的大客户"]

        async def claim() -> set[int]:
            async with transaction(sessions) as session:
                return await alert_store.mark_notified(session, [p.id for p in pending], now)

        first, second = await asyncio.gather(claim(), claim())
        assert first | second == {p.id for p in pending} and not first & second  # told once

        later = now + dt.timedelta(hours=49)
        async with transaction(sessions) as session:
            await session.execute(update(Customer).where(Customer.id == cold.id).values(last_touch_at=later))
            result = await alert_store.sweep(session, now=later, tz=SHANGHAI, rules=rules, calendar=calendar)
        assert result.closed["cold"] == 1 and result.ignored == 5  # the other cold one, quote, node, obstacle, low activity
    finally:
        await engine.dispose()


async def log_touch_in(session: Any, customer: Customer, member_id: int, at: dt.datetime) -> None:
    await touch_store.record_touch(
        session, customer=customer, member_id=member_id, channel=Channel.PHONE, duration_minutes=10, summary="电话沟通",
        raw_text="电话沟通", next_action="回访", next_due=at.date(), proposal=False, occurred_at=at, source_event_id=None,
    )
