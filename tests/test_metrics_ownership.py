"""The owner at the as-of instant (SPEC §8.2): a customer reassigned between two as-of instants counts
for its old owner (and team) at the earlier one and for its new owner at the later one.

客户A, created 10-01 for rep.li (east); touches by rep.li: phone 11-10 10:00 (next action due 11-12),
visit 11-11 10:00 (due 12-31). Entered 初步沟通 11-01 10:00 and 方案报价 11-04 10:00 (3 days later:
crossed). Support request marked 11-12 10:00, replied 11-13 22:00 → 36 h. 转交 to rep.sun (south)
on 11-18 10:00 by admin.he.

As of 11-16 10:00 (before the move), for rep.li / east:
  touch depth: window (10-17 10:00, 11-16 10:00] holds both touches → {电话, 面访} = 2 over 1 customer.
  crossing: cohort window (10-10 10:00, 11-09 10:00] holds 11-01 → cohort 1, crossed 1.
  resolution: reply 11-13 22:00 in (10-17 10:00, 11-16 10:00] → 36.0 h over 1.
  completion: 11-12 (in the 14 days 11-02…11-15): 1 due, done (the 11-11 touch came before).
  south: nothing (depth none over 0 customers, empty cohort, no resolution, nothing due).
As of 11-25 10:00 (after the move) the same customer, touches, entries and request are rep.sun's /
south's: depth 2 over 1 (window from 10-26 10:00), cohort (10-19 10:00, 11-18 10:00] → 1 of 1,
resolution 36.0 h, 11-12 in the days 11-11…11-24: 1 due, 1 done; east has none of it.
The digest's comparison (``compare_with``) puts the previous week's figures with the old owner.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from bot.app import create_app
from bot.clock import FrozenClock, ShiftableClock
from domain import metrics as m
from domain.enums import Channel
from storage import admin as admin_store
from storage import members as member_store
from storage.metrics import compute_figures
from tests.conftest import START, Console, make_config
from tests.metrics_support import SHANGHAI, OrgBuilder, local
from tests.pg import POSTGRES_URL, SKIP_REASON, scratch_database

BEFORE = local("2026-11-16")
AFTER = local("2026-11-25")


async def build(console: Console) -> None:
    async with console.runtime.sessions() as session, session.begin():
        org = OrgBuilder(session, local("2026-10-01"))
        customer = await org.customer("rep.li", "客户A")
        await org.touch(customer, local("2026-11-10"), Channel.PHONE, due=dt.date(2026, 11, 12))
        await org.touch(customer, local("2026-11-11"), Channel.VISIT, due=dt.date(2026, 12, 31))
        await org.enter(customer, "初步沟通", local("2026-11-01"))
        await org.enter(customer, "方案报价", local("2026-11-04"))
        await org.support_request(customer, local("2026-11-12"), local("2026-11-13", "22:00"))
        sun = await member_store.member_by_code(session, "rep.sun")
        admin = await member_store.member_by_code(session, "admin.he")
        assert sun is not None and admin is not None
        await admin_store.transfer_customer(session, customer, sun, actor_id=admin.id, now=local("2026-11-18"),
                                            reason="customer.transfer")


def owned(team: m.TeamFigures) -> tuple[object, ...]:
    completion = {d.day.isoformat(): (d.due, d.done_on_time) for d in team.action_completion if d.due}
    return (team.touch_depth.value, team.touch_depth.customers, team.stage_crossing.cohort,
            team.stage_crossing.crossed, team.obstacle_resolution.value, team.obstacle_resolution.resolved, completion)


HAS_IT = (Decimal("2.00"), 1, 1, 1, Decimal("36.0"), 1, {"2026-11-12": (1, 1)})
NONE = (None, 0, 0, 0, None, 0, {})


async def test_a_reassigned_customer_counts_for_its_owner_at_each_as_of(console: Console) -> None:
    await build(console)
    async with console.runtime.sessions() as session:
        before = await compute_figures(session, as_of=BEFORE, tz=SHANGHAI)
        after = await compute_figures(session, as_of=AFTER, tz=SHANGHAI)
    east, south = before.team("east"), before.team("south")
    assert east is not None and south is not None
    assert owned(east) == HAS_IT and owned(south) == NONE
    li = next(rep for rep in east.reps if rep.code == "rep.li")
    assert (li.touch_depth.value, li.stage_crossing.cohort, li.obstacle_resolution.resolved) == (Decimal("2.00"), 1, 1)
    east, south = after.team("east"), after.team("south")
    assert east is not None and south is not None
    assert owned(east) == NONE and owned(south) == HAS_IT
    sun = next(rep for rep in south.reps if rep.code == "rep.sun")
    assert (sun.touch_depth.value, sun.stage_crossing.cohort, sun.obstacle_resolution.resolved) == (Decimal("2.00"), 1, 1)
    # The stage distribution (today's stages) and overdue list go with the owner at as-of too.
    assert [s.customers for s in after.team("south").stages if s.customers] == [1]  # type: ignore[union-attr]
    assert not [s for s in before.team("south").stages if s.customers]  # type: ignore[union-attr]


async def test_the_digest_comparison_uses_the_owner_of_the_previous_week(console: Console) -> None:
    await build(console)
    for parallel in (False, True):
        async with console.runtime.sessions() as session:
            figures = await compute_figures(session, as_of=AFTER, tz=SHANGHAI, compare_with=BEFORE, parallel=parallel)
        assert figures.previous is not None
        south, previous_east = figures.team("south"), figures.previous.team("east")
        assert south is not None and previous_east is not None
        assert (south.touch_depth.customers, south.stage_crossing.cohort, south.obstacle_resolution.resolved) == (1, 1, 1)
        assert (previous_east.touch_depth.value, previous_east.touch_depth.customers) == (Decimal("2.00"), 1)
        assert (previous_east.stage_crossing.cohort, previous_east.obstacle_resolution.value) == (1, Decimal("36.0"))
        previous_south = figures.previous.team("south")
        assert previous_south is not None and previous_south.touch_depth.customers == 0


async def test_one_teams_figures_follow_the_owner_at_as_of(console: Console) -> None:
    await build(console)
    async with console.runtime.sessions() as session:
        teams = {team.key: team.id for team in await member_store.all_teams(session)}
        east_before = await compute_figures(session, as_of=BEFORE, tz=SHANGHAI, team_ids=[teams["east"]])
        east_after = await compute_figures(session, as_of=AFTER, tz=SHANGHAI, team_ids=[teams["east"]])
    assert owned(east_before.teams[0]) == HAS_IT
    assert owned(east_after.teams[0]) == NONE


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_REASON)
async def test_the_owner_at_as_of_on_postgresql(aiohttp_client, tmp_path: Path) -> None:
    async with scratch_database() as url:
        config = make_config(tmp_path, storage={"url": url, "data_dir": str(tmp_path / "data")})
        console = Console(await aiohttp_client(create_app(config, clock=ShiftableClock(base=FrozenClock(START)))))
        await build(console)
        for parallel in (False, True):
            async with console.runtime.sessions() as session:
                figures = await compute_figures(session, as_of=AFTER, tz=SHANGHAI, compare_with=BEFORE,
                                                parallel=parallel)
            assert figures.previous is not None
            east, south = figures.previous.team("east"), figures.team("south")
            assert east is not None and south is not None
            assert owned(south) == HAS_IT
            assert (east.touch_depth.value, east.stage_crossing.cohort, east.obstacle_resolution.resolved) == (
                Decimal("2.00"), 1, 1)
        await console.client.close()


async def test_moving_every_customer_of_a_rep_keeps_the_earlier_figures_with_that_rep(console: Console) -> None:
    # 转交 of all of rep.li's customers (one INSERT … SELECT for all of them) on 11-18, as in build().
    async with console.runtime.sessions() as session, session.begin():
        org = OrgBuilder(session, local("2026-10-01"))
        for name in ("客户B", "客户C"):
            customer = await org.customer("rep.li", name)
            await org.touch(customer, local("2026-11-10"), Channel.PHONE)
            await org.touch(customer, local("2026-11-11"), Channel.WECHAT)
        li = await member_store.member_by_code(session, "rep.li")
        sun = await member_store.member_by_code(session, "rep.sun")
        admin = await member_store.member_by_code(session, "admin.he")
        assert li is not None and sun is not None and admin is not None
        assert await admin_store.transfer_customers(session, li, sun, actor_id=admin.id, now=local("2026-11-18")) == 2
    async with console.runtime.sessions() as session:
        figures = await compute_figures(session, as_of=AFTER, tz=SHANGHAI, compare_with=BEFORE)
    assert figures.previous is not None
    east_then, south_then = figures.previous.team("east"), figures.previous.team("south")
    east_now, south_now = figures.team("east"), figures.team("south")
    assert east_then is not None and south_then is not None and east_now is not None and south_now is not None
    # Each customer: {电话, 微信} = 2 channels.
    assert (east_then.touch_depth.value, east_then.touch_depth.customers, south_then.touch_depth.customers) == (
        Decimal("2.00"), 2, 0)
    assert (south_now.touch_depth.value, south_now.touch_depth.customers, east_now.touch_depth.customers) == (
        Decimal("2.00"), 2, 0)


async def test_a_rep_moved_to_another_team_counts_for_the_team_of_each_as_of(console: Console) -> None:
    # rep.sun (south) owns 客户D: phone 11-10 (due 11-12), WeChat 11-11 (due 11-14); moved to east on 11-18.
    # As of 11-16: south has depth 2.00 over 1, 11-12: 1 due 1 done, 11-14: 1 due 0 done, 客户D overdue
    # (due 11-14, 2 days), one stage count; east none of it. As of 11-25 (days 11-11…11-24) it is all east's
    # (客户D then 11 days overdue).
    async with console.runtime.sessions() as session, session.begin():
        org = OrgBuilder(session, local("2026-10-01"))
        customer = await org.customer("rep.sun", "客户D")
        await org.touch(customer, local("2026-11-10"), Channel.PHONE, due=dt.date(2026, 11, 12))
        await org.touch(customer, local("2026-11-11"), Channel.WECHAT, due=dt.date(2026, 11, 14))
        sun = await member_store.member_by_code(session, "rep.sun")
        admin = await member_store.member_by_code(session, "admin.he")
        east = await admin_store.team_by_key_or_name(session, "east")
        assert sun is not None and admin is not None and east is not None
        assert await admin_store.move_team(session, sun, east, actor_id=admin.id, now=local("2026-11-18")) == "south"
    expected = (Decimal("2.00"), 1, 0, 0, None, 0, {"2026-11-12": (1, 1), "2026-11-14": (1, 0)})
    async with console.runtime.sessions() as session:
        teams = {team.key: team.id for team in await member_store.all_teams(session)}
        before = await compute_figures(session, as_of=BEFORE, tz=SHANGHAI, compare_with=BEFORE - dt.timedelta(days=1))
        after = await compute_figures(session, as_of=AFTER, tz=SHANGHAI, compare_with=BEFORE, parallel=True)
        east_only_before = await compute_figures(session, as_of=BEFORE, tz=SHANGHAI, team_ids=[teams["east"]])
        south_only_before = await compute_figures(session, as_of=BEFORE, tz=SHANGHAI, team_ids=[teams["south"]])
    south_then, east_then = before.team("south"), before.team("east")
    assert south_then is not None and east_then is not None
    assert owned(south_then) == expected and owned(east_then) == NONE
    assert [(o.customer, o.days) for o in south_then.overdue_top5] == [("客户D", 2)] and east_then.overdue_top5 == ()
    assert sum(s.customers for s in south_then.stages) == 1 and "rep.sun" in [r.code for r in south_then.reps]
    assert "rep.sun" not in [r.code for r in east_then.reps]
    east_now, south_now = after.team("east"), after.team("south")
    assert east_now is not None and south_now is not None
    assert owned(east_now) == (*expected[:6], {"2026-11-12": (1, 1), "2026-11-14": (1, 0)})
    assert owned(south_now) == NONE and [(o.customer, o.days) for o in east_now.overdue_top5] == [("客户D", 11)]
    assert "rep.sun" in [r.code for r in east_now.reps] and "rep.sun" not in [r.code for r in south_now.reps]
    assert after.previous is not None
    previous_south = after.previous.team("south")
    assert previous_south is not None and previous_south.touch_depth.customers == 1
    assert owned(south_only_before.teams[0]) == expected and owned(east_only_before.teams[0]) == NONE
