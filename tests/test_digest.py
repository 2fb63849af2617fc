"""晨会速览 transcripts through the console: the 09:00 digest to each team's group feed, once per team
and day (across a restart), in each team's own time zone, with its PNG chart; /看板 and /团队."""

from __future__ import annotations

import datetime as dt
import io
import logging
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import select

from bot import scheduler
from bot.app import create_app
from bot.clock import FrozenClock, ShiftableClock
from domain import charts
from domain.enums import Channel
from handlers import charts as chart_fonts
from handlers import digest as digest_handlers
from storage.models import InboxItem, Member, Team
from tests.conftest import START, Console, make_config, texts_of
from tests.metrics_support import SHANGHAI, OrgBuilder, local
from tests.pg import POSTGRES_URL, SKIP_REASON, scratch_database
from tests.test_metrics import build_org

NINE = local("2026-11-26", "09:00")


async def run_digest(console: Console, at: dt.datetime) -> None:
    console.runtime.clock.set_now(at)
    accepted, _ = await scheduler.accept_job(console.runtime, "digest")
    await console.runtime.inbox.wait_processed(accepted.inbox_id)
    async with console.runtime.sessions() as session:
        item = await session.get(InboxItem, accepted.inbox_id)
        assert item is not None and item.status == "done", item.error if item else "missing"


async def group_items(console: Console, team: str) -> list[dict[str, Any]]:
    return await console.feed(team=team, limit="500")


async def png_of(console: Console, item: dict[str, Any]) -> bytes:
    assert item["kind"] == "image"
    path = item["payload"]["path"]
    response = await console.client.get(f"/console/media/{path}")
    assert response.status == 200
    return await response.read()


async def test_the_digest_reaches_each_team_group_at_nine_with_markdown_and_a_chart(console: Console) -> None:
    await build_org(console)
    await run_digest(console, NINE)
    east = await group_items(console, "east")
    assert [item["kind"] for item in east] == ["markdown", "image"]
    text = east[0]["payload"]["text"]
    for part in ("华东一组 晨会速览 11月26日", "各阶段客户分布", "超时未处理 TOP5", "1. 客户6(赵磊)超期 32 天",
                 "销售动作完成率趋势(近14天)", "触达深度指数", "阶段穿越率", "障碍解决时效", "较上周",
                 "建议辅导(触达渠道少于2种):客户2、客户3", "超48小时未获答复:客户6(赵磊,已等 73.0 小时)"):
        assert part in text, part
    png = await png_of(console, east[1])
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size == (charts.WIDTH, charts.HEIGHT)
    # south has one customer (moved there): it gets its own digest.
    assert [item["kind"] for item in await group_items(console, "south")] == ["markdown", "image"]


async def test_before_the_digest_time_nothing_is_sent(console: Console) -> None:
    await build_org(console)
    await run_digest(console, local("2026-11-26", "08:45"))
    assert await group_items(console, "east") == []


async def test_a_team_with_nothing_to_report_gets_no_empty_digest(console: Console) -> None:
    async with console.runtime.sessions() as session, session.begin():
        org = OrgBuilder(session, START)
        customer = await org.customer("rep.li", "华东建材")
        await org.touch(customer, local("2026-11-24"), Channel.PHONE)
    await run_digest(console, NINE)
    assert [item["kind"] for item in await group_items(console, "east")] == ["markdown", "image"]
    assert await group_items(console, "south") == []


async def test_the_digest_goes_out_once_per_team_per_day_across_a_restart(aiohttp_client, tmp_path: Path) -> None:
    config = make_config(tmp_path)
    clock = ShiftableClock(base=FrozenClock(START))
    first = Console(await aiohttp_client(create_app(config, clock=clock)))
    await build_org(first)
    await run_digest(first, NINE)
    await run_digest(first, local("2026-11-26", "09:15"))  # the next tick: already sent today
    assert len(await group_items(first, "east")) == 2
    await first.client.close()

    # Restart with the timers on: start-up catches up the latest tick (09:30), which finds today's
    # digest sent and sends nothing.
    clock.set_now(local("2026-11-26", "09:40"))
    restarted = make_config(tmp_path, scheduler={"enabled": True})
    second = Console(await aiohttp_client(create_app(restarted, clock=clock)))
    async with second.runtime.sessions() as session:
        caught_up = await session.scalar(
            select(InboxItem.id).where(InboxItem.platform == "schedule", InboxItem.platform_msg_id == "digest:2026-11-26T09:30")
        )
    assert caught_up is not None
    await second.runtime.inbox.wait_processed(caught_up)
    assert len(await group_items(second, "east")) == 2
    # A replay of today's 09:00 (pacebot jobs run digest --now …) does not send it twice either.
    second.runtime.clock.set_now(NINE)
    accepted, _ = await scheduler.accept_job(second.runtime, "digest", replay=True)
    await second.runtime.inbox.wait_processed(accepted.inbox_id)
    assert len(await group_items(second, "east")) == 2
    # The next day's digest goes out.
    await run_digest(second, local("2026-11-27", "09:00"))
    east = await group_items(second, "east")
    assert [item["kind"] for item in east] == ["markdown", "image", "markdown", "image"]
    assert "11月27日" in east[2]["payload"]["text"]


async def test_a_missed_nine_oclock_is_caught_up_later_that_day_with_figures_as_of_nine(console: Console) -> None:
    await build_org(console)
    await run_digest(console, local("2026-11-26", "11:45"))
    east = await group_items(console, "east")
    assert [item["kind"] for item in east] == ["markdown", "image"]
    assert "11月26日" in east[0]["payload"]["text"]


async def test_a_team_in_another_time_zone_gets_its_digest_at_its_own_nine(console: Console) -> None:
    await build_org(console)
    async with console.runtime.sessions() as session, session.begin():
        team = await session.scalar(select(Team).where(Team.key == "south"))
        assert team is not None
        team.timezone = "America/New_York"
    await run_digest(console, local("2026-11-26", "15:00"))  # 02:00 in New York
    assert len(await group_items(console, "east")) == 2
    assert await group_items(console, "south") == []
    new_york_nine = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    await run_digest(console, new_york_nine - dt.timedelta(minutes=15))
    assert await group_items(console, "south") == []
    await run_digest(console, new_york_nine)  # 22:00 in Shanghai
    south = await group_items(console, "south")
    assert [item["kind"] for item in south] == ["markdown", "image"]
    assert "11月26日" in south[0]["payload"]["text"]
    assert len(await group_items(console, "east")) == 2


async def test_the_chart_is_not_blank_and_its_chinese_title_matches_a_reference_rendering(console: Console) -> None:
    await build_org(console)
    await run_digest(console, NINE)
    png = await png_of(console, (await group_items(console, "east"))[1])
    with Image.open(io.BytesIO(png)) as image:
        chart = image.convert("RGB")
    colours = chart.getcolors(maxcolors=100_000) or []
    white = sum(n for n, colour in colours if colour == charts.BACKGROUND)
    assert 0.3 < white / (charts.WIDTH * charts.HEIGHT) < 0.99  # drawn on, not blank
    assert any(colour == charts.BAR for _, colour in colours) and any(colour == charts.LINE for _, colour in colours)
    font = chart_fonts.chart_font()
    assert font is not None
    # The title drawn alone with the same font, pixel for pixel.
    reference = Image.new("RGB", (charts.WIDTH, 50), charts.BACKGROUND)
    charts.draw_text(ImageDraw.Draw(reference), (24, 14), "华东一组 晨会速览 2026-11-26", font.title, charts.INK)
    assert chart.crop((0, 0, charts.WIDTH, 50)).tobytes() == reference.tobytes()
    # …and its Chinese glyphs are real glyphs, not the font's "missing" box.
    missing = font.title.cjk.getmask("\ue000")
    for char in "华东晨会速览":
        glyph = font.title.cjk.getmask(char)
        assert glyph.getbbox() is not None and bytes(glyph) != bytes(missing), char


async def test_without_any_cjk_font_the_digest_goes_out_as_text_and_the_log_says_why(
    console: Console, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    await build_org(console)
    monkeypatch.setattr(chart_fonts, "FONT_CANDIDATES", (tmp_path / "no-such-font.ttf",))
    chart_fonts.chart_font.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="handlers.charts"):
            await run_digest(console, NINE)
    finally:
        chart_fonts.chart_font.cache_clear()
    east = await group_items(console, "east")
    assert [item["kind"] for item in east] == ["markdown"]
    assert "超时未处理 TOP5" in east[0]["payload"]["text"]
    assert any("no CJK font" in record.getMessage() for record in caplog.records)


async def test_the_digest_of_a_40_rep_team_fits_the_platform_limits(console: Console) -> None:
    async with console.runtime.sessions() as session, session.begin():
        team = await session.scalar(select(Team).where(Team.key == "east"))
        assert team is not None
        for i in range(40):
            session.add(Member(code=f"rep.big{i:02d}", name=f"销售代表{i:02d}号", team_id=team.id, created_at=START))
        await session.flush()
        org = OrgBuilder(session, START)
        for i in range(40):
            for j in range(6):
                customer = await org.customer(f"rep.big{i:02d}", f"超长名称的建筑材料有限责任公司第{i:02d}{j}号客户")
                await org.touch(customer, local("2026-11-10"), Channel.PHONE, due=dt.date(2026, 11, 12 + j))
    await run_digest(console, NINE)
    east = await group_items(console, "east")
    assert [item["kind"] for item in east] == ["markdown", "image"]
    text = east[0]["payload"]["text"]
    assert len(text.encode()) <= digest_handlers.MAX_MARKDOWN_BYTES < 4096
    assert "等共 240 位" in text  # coaching list capped, the count kept
    assert text.count("超期") == 5


async def test_board_sends_a_manager_their_own_team_digest_now(console: Console) -> None:
    await build_org(console)
    reply = await console.send("mgr.wang", "/看板")
    assert [item["kind"] for item in reply["replies"]] == ["markdown", "image"]
    assert "华东一组 晨会速览 11月25日" in reply["replies"][0]["payload"]["text"]
    assert await group_items(console, "east") == []  # on demand: to the 1:1 chat only


async def test_board_refuses_a_manager_asking_for_another_team(console: Console) -> None:
    await build_org(console)
    reply = await console.send("mgr.wang", "/看板 华南组")
    assert texts_of(reply) == ["你只能查看本团队(华东一组)的看板。"]


async def test_board_lets_an_admin_pick_any_team_and_asks_which_without_one(console: Console) -> None:
    await build_org(console)
    reply = await console.send("admin.he", "/看板 华南组")
    assert "华南组 晨会速览" in reply["replies"][0]["payload"]["text"]
    asked = await console.send("admin.he", "/看板")
    assert "请指定团队" in texts_of(asked)[0]
    unknown = await console.send("admin.he", "/看板 火星组")
    assert "没有找到团队「火星组」" in texts_of(unknown)[0]


async def test_board_is_refused_to_a_rep(console: Console) -> None:
    reply = await console.send("rep.li", "/看板")
    assert "/看板" in texts_of(reply)[0] and "晨会速览" not in texts_of(reply)[0]


async def test_team_lists_reps_worst_first_with_this_weeks_figures(console: Console) -> None:
    await build_org(console)
    reply = await console.send("mgr.wang", "/团队")
    text = reply["replies"][0]["payload"]["text"]
    lines = [line for line in text.splitlines() if line[:2] in ("1.", "2.")]
    # This week (from Monday 11-23): rep.zhao touched nobody; rep.li touched 客户1 and 客户2.
    assert lines[0].startswith("1. 赵磊:跟进客户 0 位") and "触达深度 1.00" in lines[0]
    assert lines[1].startswith("2. 李明:跟进客户 2 位") and "触达深度 2.00" in lines[1]


def test_digest_time_is_a_local_time_and_invalid_values_are_refused(tmp_path: Path) -> None:
    from bot.config import ConfigError

    with pytest.raises(ConfigError, match="scheduler.digest_time"):
        make_config(tmp_path, scheduler={"digest_time": "9am"})
    with pytest.raises(ConfigError, match="scheduler.calibration_time"):
        make_config(tmp_path, scheduler={"calibration_time": "friday 15:00"})
    config = make_config(tmp_path, scheduler={"digest_time": "08:20", "calibration_time": "thu 16:00"})
    spec = scheduler.JOBS_BY_NAME["digest"].schedule(config)
    assert spec.describe() == "daily 08:20 team time" and spec.tick.minutes == 5
    calibration = scheduler.JOBS_BY_NAME["calibration"].schedule(config)
    assert calibration.describe() == "weekly thu 16:00"
    assert scheduler.JOBS_BY_NAME["calibration_reminder"].schedule(config).describe() == "weekly fri 16:00"
    assert SHANGHAI.key == "Asia/Shanghai"


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_REASON)
async def test_the_digest_goes_out_once_per_team_per_day_on_postgresql(aiohttp_client, tmp_path: Path) -> None:
    async with scratch_database() as url:
        config = make_config(tmp_path, storage={"url": url, "data_dir": str(tmp_path / "data")})
        console = Console(await aiohttp_client(create_app(config, clock=ShiftableClock(base=FrozenClock(START)))))
        await build_org(console)
        await run_digest(console, NINE)
        await run_digest(console, local("2026-11-26", "09:15"))
        east = await group_items(console, "east")
        assert [item["kind"] for item in east] == ["markdown", "image"]
        assert "1. 客户6(赵磊)超期 32 天" in east[0]["payload"]["text"]
        await console.client.close()
