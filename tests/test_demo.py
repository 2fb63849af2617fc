"""The demo tells the truth: the README's first command and example message work as written,
names fit their region, touches fit their stage, and effective touches carry real evidence."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from PIL import Image
from sqlalchemy import func, select

from bot.app import create_app
from bot.bootstrap import build_runtime
from bot.cli import main
from bot.clock import FrozenClock
from bot.config import config_from_dict
from bot.demo_cli import run_demo
from domain.enums import EvidenceKind
from domain.parsing.customers import company_key
from storage.demo import _PLACES, _STAGE_TOUCHES, _STALLS
from storage.models import Customer, Evidence, Member, OutboxItem, Stage, StageHistory, Team, Touch
from tests.conftest import SHANGHAI, Console, cards_of

README = Path(__file__).resolve().parent.parent / "README.md"
# One xdist worker takes the module, so the demo shared below is seeded once.
pytestmark = pytest.mark.xdist_group("demo")


def readme_first_example() -> tuple[str, str]:
    """The rep and the message the README's quick start tells a newcomer to send."""
    text = README.read_text(encoding="utf-8")
    quick_start = text.split("## Quick start", 1)[1]
    rep = re.search(r"pick a\s+rep \(for example `([^`]+)`\)", quick_start)
    message = re.search(r"\n\n    (\S[^\n]+)\n", quick_start)
    assert rep and message, "the README's quick start names a rep and an example message"
    return rep.group(1), message.group(1).strip()


def demo_config(tmp_path: Path) -> Any:
    return config_from_dict({
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path}/demo.db", "data_dir": str(tmp_path / "data")},
        "scheduler": {"enabled": False},
        "inbox": {"poll_seconds": 0.2},
        "outbox": {"poll_seconds": 0.2},
    })


def write_config(tmp_path: Path) -> str:
    path = tmp_path / "pacebot.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path}/demo.db"\ndata_dir = "{tmp_path}/data"\n'
        '[scheduler]\nenabled = false\n',
        encoding="utf-8",
    )
    return str(path)


async def test_the_readme_first_command_and_example_message_save_a_touch_for_the_named_rep(tmp_path, aiohttp_client):
    rep, message = readme_first_example()
    assert rep == "rep.east1" and message.startswith("华东建材 张总")
    # scripts/start.sh: db upgrade, demo --if-empty, serve.
    script = (README.parent / "scripts" / "start.sh").read_text(encoding="utf-8")
    assert "pacebot db upgrade" in script and "pacebot demo --if-empty" in script
    config_file = write_config(tmp_path)
    # The CLI runs its own event loop, so it runs in a thread here, as it would in its own process.
    assert await asyncio.to_thread(main, ["--config", config_file, "db", "upgrade"]) == 0
    assert await asyncio.to_thread(main, ["--config", config_file, "demo", "--if-empty"]) == 0

    client = await aiohttp_client(create_app(demo_config(tmp_path)))
    console = Console(client)
    reply = await console.send(rep, message)

    [card] = cards_of(reply)
    assert card["title"] == "已记录跟进 · 华东建材"
    async with console.runtime.sessions() as session:
        member = await session.scalar(select(Member).where(Member.code == rep))
        customer = await session.scalar(select(Customer).where(Customer.name == "华东建材"))
        touch = await session.scalar(select(Touch).order_by(Touch.id.desc()).limit(1))
    assert customer.owner_id == member.id and "张总" in customer.contacts
    assert touch.customer_id == customer.id and touch.member_id == member.id
    assert touch.channel.value == "电话" and touch.duration_minutes == 20 and "报价细节" in touch.summary


async def seeded(tmp_path: Path, instant: dt.datetime) -> Any:
    runtime = await build_runtime(demo_config(tmp_path), clock=FrozenClock(instant))
    summary = await run_demo(runtime, seed=7, if_empty=True)
    assert summary.startswith("demo organisation seeded: 3 teams, 20 reps, 300 customers")
    return runtime


# The tests below only read the demo seeded on a Wednesday at 10:00, so they share one seeding.
IN_MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def seeded_at_ten(tmp_path_factory: pytest.TempPathFactory) -> Any:
    runtime = await seeded(tmp_path_factory.mktemp("demo"), dt.datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI))
    yield runtime
    await runtime.stop()


@IN_MODULE_LOOP
async def test_demo_customers_fit_their_region_and_no_company_has_two_reps(seeded_at_ten):
    async with seeded_at_ten.sessions() as session:
        rows = (await session.execute(
            select(Customer.name, Team.key).join(Member, Member.id == Customer.owner_id).join(Team, Team.id == Member.team_id)
        )).all()
    assert len(rows) == 300
    for name, team in rows:
        assert any(name.startswith(place) for place in _PLACES[team]), (name, team)
    keys = [company_key(name) for name, _ in rows]
    assert len(set(keys)) == len(keys)


@IN_MODULE_LOOP
async def test_demo_touches_fit_the_stage_and_signed_customers_have_history(seeded_at_ten):
    async with seeded_at_ten.sessions() as session:
        stage_names = dict((await session.execute(select(Stage.id, Stage.name))).all())
        stays = (await session.execute(select(StageHistory.customer_id, StageHistory.stage_id, StageHistory.entered_at,
                                              StageHistory.left_at))).all()
        touches = list(await session.scalars(select(Touch)))
        customers = list(await session.scalars(select(Customer)))
    history: dict[int, list[Any]] = {}
    for stay in stays:
        history.setdefault(stay.customer_id, []).append(stay)
    signed = [c for c in customers if stage_names[c.stage_id] in ("签约", "回款")]
    assert signed
    for customer in signed:
        names = [stage_names[s.stage_id] for s in sorted(history[customer.id], key=lambda s: s.entered_at)]
        assert names[:5] == ["新线索", "初步沟通", "需求确认", "方案报价", "商务谈判"], names
    stall_summaries = {summary for _c, _m, summary in _STALLS}
    by_id = {c.id: c for c in customers}
    for touch in touches:
        if touch.summary in stall_summaries:
            continue
        stays_then = [s for s in history[touch.customer_id] if s.entered_at <= touch.occurred_at]
        stage = stage_names[max(stays_then, key=lambda s: s.entered_at).stage_id] if stays_then else None
        fitting = {summary for _c, _m, summary, _n in _STAGE_TOUCHES.get(stage or "", [])}
        assert touch.summary in fitting, (by_id[touch.customer_id].name, stage, touch.summary)


@IN_MODULE_LOOP
async def test_demo_effective_touches_have_evidence_with_real_images(seeded_at_ten):
    runtime = seeded_at_ten
    async with runtime.sessions() as session:
        effective = list(await session.scalars(select(Touch).where(Touch.effective.is_(True))))
        evidence = {e.touch_id: e for e in await session.scalars(select(Evidence))}
    assert len(effective) > 100
    for touch in effective:
        item = evidence[touch.id]
        assert item.kind is EvidenceKind.PHOTO
    paths = {evidence[t.id].path for t in effective}
    for path in paths:
        with Image.open(runtime.media.path_of(path)) as image:
            image.verify()
    assert 1 < len(paths) <= 10  # a few small generated images, reused


async def test_a_first_start_outside_notification_hours_tells_each_group_when_reminders_go_out(tmp_path):
    runtime = await seeded(tmp_path, dt.datetime(2026, 11, 25, 22, 30, tzinfo=SHANGHAI))
    try:
        async with runtime.sessions() as session:
            notes = list(await session.scalars(select(OutboxItem).where(OutboxItem.target_kind == "group")))
            teams = await session.scalar(select(func.count()).select_from(Team))
    finally:
        await runtime.stop()
    assert len(notes) == teams == 3
    assert all("明天 08:00" in note.payload["text"] and "rep.east1" in note.payload["text"] for note in notes)


@IN_MODULE_LOOP
async def test_a_first_start_within_notification_hours_adds_no_note(seeded_at_ten):
    async with seeded_at_ten.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxItem)) == 0
