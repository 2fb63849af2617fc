"""动作健康度: every metric on a small organisation whose figures are worked out by hand below.

As of Wednesday 2026-11-25 10:00 Shanghai (the test clock's START). Windows:
  touch depth      (10-26 10:00, 11-25 10:00]
  crossing cohort  first entry into 初步沟通 in (10-19 10:00, 11-18 10:00]; crossed within 7×24 h
  resolution       first substantive reply in (10-26 10:00, 11-25 10:00]; open over 48 h: marked before 11-23 10:00
  completion       local days 11-11 … 11-24 (the as-of day is not over)

Team east (华东一组): rep.li owns 客户1, 客户2; rep.zhao owns 客户3, 客户4, 客户6, 客户7, 客户8, 客户9 (closed).
Team south (华南组): rep.sun owns 客户5, moved over from rep.li — its touches were all made by rep.li.

客户1 touches: visit 10-26 10:01 (in: 30 days minus a minute), e-mail 10-26 09:59 (out: 30 days plus a
  minute), phone 11-20 (next action due 11-22), phone 11-22 23:59, WeChat 11-23, phone 11-24
  → channels {面访, 电话, 微信} = 3.
客户2: phone 11-10, 11-12, 其他 11-14, phone 11-20 (due 11-22), phone 11-23 00:00 (due 11-30) → {电话} = 1.
客户3: WeChat 11-15, WeChat 11-18 (due 11-21), WeChat 11-19 (due 11-24), e-mail 11-20 undone at 12:00 → {微信} = 1.
客户4: one phone touch at 11-25 10:01, after the as-of moment: not there yet.
客户5 (south): phone 11-20, visit 11-21, both by rep.li → 2, counted for rep.sun and south.
  east touch depth = (3 + 1 + 1) / 3 = 1.666… → 1.67; rep.li (3 + 1) / 2 = 2.00; rep.zhao 1 / 1 = 1.00
  below 2: 客户2, 客户3.  south = 2 / 1 = 2.00.  organisation = 7 / 4 = 1.75.

Crossing (b2b: 新线索 → 初步沟通 → 需求确认 → 方案报价 → 商务谈判 …):
  客户1 初步沟通 11-05, 方案报价 11-11 (+6 d) → cohort, crossed.
  客户2 初步沟通 10-26, 需求确认 10-28, 方案报价 11-02 10:00 (exactly +7×24 h) → cohort, crossed.
  客户3 初步沟通 11-19 (six days ago) → not in the cohort.
  客户4 初步沟通 10-19 10:00 (exactly 37 days: the window's open end) → not in the cohort.
  客户6 初步沟通 11-15, 商务谈判 11-22 10:01 (7 days and a minute later) → cohort, not crossed.
  客户7 first 初步沟通 10-16 (40 days), again 11-10 → the first entry counts: not in the cohort.
  客户8 is in an admin pipeline (洽谈 → 报价) that names no crossing → in no cohort.
  客户11 (rep.li) is in the store pipeline, whose crossing is 到店/咨询 → 报价: entered 11-10, 报价 11-12 → crossed.
  east = 3 / 4 = 0.75; rep.li 3 / 3 = 1.0; rep.zhao 0 / 1 = 0.0; south: empty cohort → none.

Support requests (需跨部门支持):
  客户1 marked 11-24 04:00, replied 11-25 00:00 → 20 h.       客户3 11-22 10:00 → 11-23 10:00 → 24 h.
  客户2 replied 10-26 09:59 → outside the window.             客户1 marked 11-22 22:00, replied after as-of → open, 60.0 h.
  客户6 marked 11-23 08:00, no reply → open, 50.0 h.           客户6 marked 11-23 11:00 → open only 47 h: not listed.
  east = (20 + 24) / 2 = 22.0 h; rep.li 20.0; rep.zhao 24.0; south: none.

Action completion (east; due = next actions due that day, done = a later touch before the day's local midnight):
  11-20: 客户7 and 客户8 due, never touched since → 2 due, 0 done.
  11-21: 客户3's 11-18 action; its next touch came 11-19 → 1 due, 1 done (it was replaced, and still counts).
  11-22: 客户1 (touched 11-22 23:59 → done) and 客户2 (touched 11-23 00:00 → late) → 2 due, 1 done.
  11-24: 客户3's 11-19 action; the only later touch was undone → 1 due, 0 done.

Overdue TOP5 (latest next action past due, as-of date 11-25):
  客户6 due 10-25 → 31 days; 客户7 and 客户8 due 11-20 → 5 days each (tie: by name); 客户3 due 11-24 → 1 day;
  客户9 is closed, 客户4's only touch is after as-of → not listed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from bot.app import create_app
from bot.cli import main as cli_main
from bot.clock import FrozenClock, ShiftableClock
from domain import metrics as m
from domain.enums import Channel, CustomerStatus
from storage.metrics import compute_figures
from storage.pipelines import upsert_pipeline
from tests.conftest import START, Console, make_config
from tests.metrics_support import SHANGHAI, OrgBuilder, local
from tests.pg import POSTGRES_URL, SKIP_REASON, scratch_database

AS_OF = START


async def build_org(console: Console) -> None:
    runtime = console.runtime
    async with runtime.sessions() as session, session.begin():
        await upsert_pipeline(session, {"key": "plain", "name": "简单流程", "stages": [{"name": "洽谈"}, {"name": "报价"}]})
        org = OrgBuilder(session, AS_OF)
        c1 = await org.customer("rep.li", "客户1")
        c2 = await org.customer("rep.li", "客户2")
        c3 = await org.customer("rep.zhao", "客户3")
        c4 = await org.customer("rep.zhao", "客户4")
        c5 = await org.customer("rep.li", "客户5")
        c6 = await org.customer("rep.zhao", "客户6")
        c7 = await org.customer("rep.zhao", "客户7")
        c8 = await org.customer("rep.zhao", "客户8", pipeline="plain")
        c9 = await org.customer("rep.zhao", "客户9")
        c11 = await org.customer("rep.li", "客户11", pipeline="store")
        c5.owner_id = await org.member_id("rep.sun")  # moved to the south team
        c9.status = CustomerStatus.CLOSED
        # touch depth
        await org.touch(c1, local("2026-10-26", "10:01"), Channel.VISIT)
        await org.touch(c1, local("2026-10-26", "09:59"), Channel.EMAIL)
        await org.touch(c1, local("2026-11-20"), Channel.PHONE, due=dt.date(2026, 11, 22))
        await org.touch(c1, local("2026-11-22", "23:59"), Channel.PHONE)
        await org.touch(c1, local("2026-11-23"), Channel.WECHAT)
        await org.touch(c1, local("2026-11-24"), Channel.PHONE)
        await org.touch(c2, local("2026-11-10"), Channel.PHONE)
        await org.touch(c2, local("2026-11-12"), Channel.PHONE)
        await org.touch(c2, local("2026-11-14"), Channel.OTHER)
        await org.touch(c2, local("2026-11-20"), Channel.PHONE, due=dt.date(2026, 11, 22))
        await org.touch(c2, local("2026-11-23", "00:00"), Channel.PHONE, due=dt.date(2026, 11, 30))
        await org.touch(c3, local("2026-11-15"), Channel.WECHAT)
        await org.touch(c3, local("2026-11-18"), Channel.WECHAT, due=dt.date(2026, 11, 21))
        await org.touch(c3, local("2026-11-19"), Channel.WECHAT, due=dt.date(2026, 11, 24))
        await org.touch(c3, local("2026-11-20"), Channel.EMAIL, undone_at=local("2026-11-20", "12:00"))
        await org.touch(c4, local("2026-11-25", "10:01"), Channel.PHONE, due=dt.date(2026, 11, 1))
        await org.touch(c5, local("2026-11-20"), Channel.PHONE, by="rep.li")
        await org.touch(c5, local("2026-11-21"), Channel.VISIT, by="rep.li")
        await org.touch(c6, local("2026-10-20"), Channel.PHONE, due=dt.date(2026, 10, 25))
        await org.touch(c7, local("2026-10-01"), Channel.PHONE, due=dt.date(2026, 11, 20))
        await org.touch(c8, local("2026-10-02"), Channel.PHONE, due=dt.date(2026, 11, 20))
        await org.touch(c9, local("2026-10-03"), Channel.PHONE, due=dt.date(2026, 10, 4))
        # crossing
        await org.enter(c1, "初步沟通", local("2026-11-05"))
        await org.enter(c1, "方案报价", local("2026-11-11"))
        await org.enter(c2, "初步沟通", local("2026-10-26"))
        await org.enter(c2, "需求确认", local("2026-10-28"))
        await org.enter(c2, "方案报价", local("2026-11-02"))
        await org.enter(c3, "初步沟通", local("2026-11-19"))
        await org.enter(c4, "初步沟通", local("2026-10-19"))
        await org.enter(c6, "初步沟通", local("2026-11-15"))
        await org.enter(c6, "商务谈判", local("2026-11-22", "10:01"))
        await org.enter(c7, "初步沟通", local("2026-10-16"))
        await org.enter(c7, "初步沟通", local("2026-11-10"))
        await org.enter(c8, "洽谈", local("2026-11-10"))
        await org.enter(c11, "到店/咨询", local("2026-11-10"))
        await org.enter(c11, "报价", local("2026-11-12"))
        # obstacle resolution
        await org.support_request(c1, local("2026-11-24", "04:00"), local("2026-11-25", "00:00"))
        await org.support_request(c3, local("2026-11-22"), local("2026-11-23"))
        await org.support_request(c2, local("2026-10-25", "09:00"), local("2026-10-26", "09:59"))
        await org.support_request(c1, local("2026-11-22", "22:00"), local("2026-11-25", "11:00"))
        await org.support_request(c6, local("2026-11-23", "08:00"))
        await org.support_request(c6, local("2026-11-23", "11:00"))


async def figures_as_of(console: Console, as_of: dt.datetime = AS_OF) -> m.Figures:
    async with console.runtime.sessions() as session:
        return await compute_figures(session, as_of=as_of, tz=SHANGHAI)


async def test_touch_depth_counts_distinct_channels_in_the_30_day_window(console: Console) -> None:
    await build_org(console)
    figures = await figures_as_of(console)
    east, south = figures.team("east"), figures.team("south")
    assert east is not None and south is not None
    assert (east.touch_depth.value, east.touch_depth.customers) == (Decimal("1.67"), 3)
    assert east.touch_depth.below_2 == ("客户2", "客户3")
    assert east.touch_depth.health is m.Health.POOR
    reps = {rep.code: rep for rep in east.reps}
    assert reps["rep.li"].touch_depth.value == Decimal("2.00")
    assert reps["rep.zhao"].touch_depth.value == Decimal("1.00")
    assert (south.touch_depth.value, south.touch_depth.customers) == (Decimal("2.00"), 1)
    assert (figures.org.touch_depth.value, figures.org.touch_depth.customers) == (Decimal("1.75"), 4)


async def test_a_customer_moved_between_teams_counts_for_its_new_owner_and_team(console: Console) -> None:
    await build_org(console)
    figures = await figures_as_of(console)
    south = figures.team("south")
    assert south is not None
    assert {rep.code: rep.touch_depth.customers for rep in south.reps} == {"rep.sun": 1}
    east = figures.team("east")
    assert east is not None and "客户5" not in east.touch_depth.below_2 and east.touch_depth.customers == 3


async def test_stage_crossing_cohort_edges_and_the_7_day_limit(console: Console) -> None:
    await build_org(console)
    figures = await figures_as_of(console)
    east, south = figures.team("east"), figures.team("south")
    assert east is not None and south is not None
    assert (east.stage_crossing.cohort, east.stage_crossing.crossed) == (4, 3)
    assert east.stage_crossing.value == Decimal("0.7500")
    reps = {rep.code: rep.stage_crossing for rep in east.reps}
    assert (reps["rep.li"].value, reps["rep.zhao"].value) == (Decimal("1.0000"), Decimal("0.0000"))
    # Empty cohort: no figure, no division by zero.
    assert (south.stage_crossing.cohort, south.stage_crossing.value, south.stage_crossing.health) == (0, None, m.Health.NONE)


async def test_obstacle_resolution_mean_hours_and_requests_open_over_48_hours(console: Console) -> None:
    await build_org(console)
    figures = await figures_as_of(console)
    east, south = figures.team("east"), figures.team("south")
    assert east is not None and south is not None
    resolution = east.obstacle_resolution
    assert (resolution.value, resolution.resolved) == (Decimal("22.0"), 2)
    assert [(r.customer, r.hours) for r in resolution.open_over_48h] == [("客户1", Decimal("60.0")), ("客户6", Decimal("50.0"))]
    reps = {rep.code: rep.obstacle_resolution.value for rep in east.reps}
    assert reps == {"rep.li": Decimal("20.0"), "rep.zhao": Decimal("24.0")}
    assert (south.obstacle_resolution.value, south.obstacle_resolution.resolved) == (None, 0)


async def test_action_completion_per_local_day_with_midnight_edges(console: Console) -> None:
    await build_org(console)
    figures = await figures_as_of(console)
    east = figures.team("east")
    assert east is not None
    days = {d.day.isoformat(): (d.due, d.done_on_time) for d in east.action_completion}
    assert list(days) == [(dt.date(2026, 11, 11) + dt.timedelta(days=n)).isoformat() for n in range(14)]
    expected = {"2026-11-20": (2, 0), "2026-11-21": (1, 1), "2026-11-22": (2, 1), "2026-11-24": (1, 0)}
    assert days == {day: expected.get(day, (0, 0)) for day in days}
    assert [d.rate for d in east.action_completion if d.due == 0][0] is None


async def test_overdue_top5_orders_by_days_then_due_date_then_name(console: Console) -> None:
    await build_org(console)
    figures = await figures_as_of(console)
    east = figures.team("east")
    assert east is not None
    assert [(o.customer, o.owner, o.days) for o in east.overdue_top5] == [
        ("客户6", "赵磊", 31), ("客户7", "赵磊", 5), ("客户8", "赵磊", 5), ("客户3", "赵磊", 1),
    ]


async def test_a_team_without_customers_has_no_figures_and_nothing_to_report(console: Console) -> None:
    figures = await figures_as_of(console)
    south = figures.team("south")
    assert south is not None
    assert south.touch_depth.value is None and south.stage_crossing.value is None
    assert south.obstacle_resolution.value is None and south.overdue_top5 == ()
    assert not south.has_anything


async def test_a_touch_undone_after_as_of_still_counted_then(console: Console) -> None:
    await build_org(console)
    async with console.runtime.sessions() as session, session.begin():
        org = OrgBuilder(session, AS_OF)
        c = await org.customer("rep.sun", "客户10")
        await org.touch(c, local("2026-11-24"), Channel.EMAIL, undone_at=local("2026-11-26"))
    south = (await figures_as_of(console)).team("south")
    assert south is not None and south.touch_depth.customers == 2
    later = (await figures_as_of(console, local("2026-11-26", "12:00"))).team("south")
    assert later is not None and later.touch_depth.customers == 1


async def test_metrics_json_has_exactly_the_documented_shape(console: Console, tmp_path: Path, capsys) -> None:
    await build_org(console)
    config_file = tmp_path / "cli.toml"
    config_file.write_text(
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path}/pacebot.db"\ndata_dir = "{tmp_path}/data"\n', encoding="utf-8"
    )
    code = await asyncio.to_thread(cli_main, ["--config", str(config_file), "--log-level", "WARNING", "metrics", "--team", "east",
                     "--as-of", AS_OF.isoformat(), "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"as_of", "teams"} and dt.datetime.fromisoformat(data["as_of"]) == AS_OF
    (team,) = data["teams"]
    assert set(team) == {"key", "touch_depth", "stage_crossing", "obstacle_resolution_hours", "action_completion",
                         "overdue_top5", "reps"}
    assert team["touch_depth"] == {"value": 1.67, "customers": 3, "below_2": ["客户2", "客户3"]}
    assert team["stage_crossing"] == {"value": 0.75, "cohort": 4, "crossed": 3}
    assert team["obstacle_resolution_hours"]["value"] == 22.0 and team["obstacle_resolution_hours"]["resolved"] == 2
    assert team["action_completion"][9] == {"date": "2026-11-20", "due": 2, "done_on_time": 0}
    assert team["overdue_top5"][0] == {"customer": "客户6", "owner": "赵磊", "days": 31}
    assert {rep["code"] for rep in team["reps"]} == {"rep.li", "rep.zhao"}
    assert set(team["reps"][0]) == {"code", "touch_depth", "stage_crossing", "obstacle_resolution_hours"}


async def test_metrics_cli_refuses_an_unknown_team_and_a_naive_as_of(tmp_path: Path, capsys) -> None:
    config_file = tmp_path / "cli.toml"
    config_file.write_text(
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path}/p.db"\ndata_dir = "{tmp_path}/data"\n', encoding="utf-8"
    )
    assert await asyncio.to_thread(cli_main, ["--config", str(config_file), "metrics", "--team", "nope"]) == 2
    assert "no team 'nope'" in capsys.readouterr().err
    assert await asyncio.to_thread(cli_main, ["--config", str(config_file), "metrics", "--as-of", "2026-11-25T10:00"]) == 2
    assert "time zone offset" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("channels", "customers", "health"),
    [(6, 2, m.Health.GOOD), (5, 2, m.Health.WATCH), (4, 2, m.Health.WATCH), (3, 2, m.Health.POOR), (0, 0, m.Health.NONE)],
)
def test_touch_depth_thresholds(channels: int, customers: int, health: m.Health) -> None:
    assert m.TouchDepth(channels, customers).health is health


def test_means_round_half_up_not_to_even() -> None:
    assert m.TouchDepth(1, 8).value == Decimal("0.13")  # 0.125
    assert m.ObstacleResolution(seconds=3600 * 5 + 180, resolved=2).value == Decimal("2.5")  # 2.525 h → 2.5
    assert m.ObstacleResolution(seconds=3 * 3600 + 900, resolved=1).value == Decimal("3.3")  # 3.25 h
    assert m.StageCrossing(0, 0).value is None



@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_REASON)
async def test_the_same_figures_on_postgresql(aiohttp_client, tmp_path: Path) -> None:
    async with scratch_database() as url:
        config = make_config(tmp_path, storage={"url": url, "data_dir": str(tmp_path / "data")})
        console = Console(await aiohttp_client(create_app(config, clock=ShiftableClock(base=FrozenClock(START)))))
        await build_org(console)
        figures = await figures_as_of(console)
        east = figures.team("east")
        assert east is not None
        assert (east.touch_depth.value, east.touch_depth.below_2) == (Decimal("1.67"), ("客户2", "客户3"))
        assert (east.stage_crossing.cohort, east.stage_crossing.crossed) == (4, 3)
        assert (east.obstacle_resolution.value, len(east.obstacle_resolution.open_over_48h)) == (Decimal("22.0"), 2)
        days = {d.day.isoformat(): (d.due, d.done_on_time) for d in east.action_completion if d.due}
        assert days == {"2026-11-20": (2, 0), "2026-11-21": (1, 1), "2026-11-22": (2, 1), "2026-11-24": (1, 0)}
        assert [(o.customer, o.days) for o in east.overdue_top5] == [("客户6", 31), ("客户7", 5), ("客户8", 5), ("客户3", 1)]
        await console.client.close()


async def test_the_previous_week_shares_the_scan_and_equals_its_own_computation(console: Console) -> None:
    await build_org(console)
    week_before = AS_OF - dt.timedelta(days=7)
    async with console.runtime.sessions() as session:
        both = await compute_figures(session, as_of=AS_OF, tz=SHANGHAI, compare_with=week_before)
        alone = await compute_figures(session, as_of=week_before, tz=SHANGHAI, details=False)
    assert both.previous is not None
    for key in ("east", "south"):
        shared, own = both.previous.team(key), alone.team(key)
        assert shared is not None and own is not None
        assert (shared.touch_depth.channels, shared.touch_depth.customers) == (own.touch_depth.channels, own.touch_depth.customers)
        assert shared.stage_crossing == own.stage_crossing and shared.obstacle_resolution == own.obstacle_resolution
    east_now, east_then = both.team("east"), both.previous.team("east")
    assert east_now is not None and east_then is not None
    # A week earlier (window (10-19 10:00, 11-18 10:00]): 客户1 visit + e-mail → 2; 客户2 phone → 1;
    # 客户3 WeChat (11-18 10:00 included) → 1; 客户6 phone 10-20 → 1.
    assert (east_then.touch_depth.channels, east_then.touch_depth.customers) == (5, 4)
    assert east_now.touch_depth == (await figures_as_of(console)).team("east").touch_depth  # type: ignore[union-attr]
