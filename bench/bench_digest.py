"""The morning digest for a large organisation on SQLite: metrics, markdown and charts for every team.

100 teams / 2,000 reps / 100,000 customers / 1,000,000 touches (10 per customer over the last 60
days, every channel, next actions due 1–7 days later), stage history with 初步沟通 and 方案报价
entries, and cross-department requests. The database is migrated, then filled with bulk inserts.

In a fresh process (so the peak RSS is the digest's own) it then measures:

* ``figures``  — ``storage.metrics.compute_figures`` for the whole organisation (every team and rep);
* ``digests``  — the ``digest`` job as the worker runs it at 09:00: both weeks' figures, 100 markdown
  digests, 100 PNG charts rendered and stored, every team's run claimed.

    .venv/bin/python bench/bench_digest.py [--teams 100] [--reps-per-team 20] [--customers-per-rep 50]
        [--reuse FILE] [--profile]

``--reuse FILE`` keeps the generated database in FILE (generated there when missing, reused when
present: generation takes minutes, the measurement seconds); a run copies it so the digest's own
writes never change the data set. ``--profile`` prints where the digest job's CPU time went.

Prints figures; not a pass/fail test. Targets: all digests built in ≤ 3 s and ≤ 300 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_sweep import peak_rss_mb  # noqa: E402

SHANGHAI = ZoneInfo("Asia/Shanghai")
NINE = dt.datetime(2026, 11, 26, 9, 0, tzinfo=SHANGHAI)
TOUCHES_PER_CUSTOMER = 10
CHANNELS = ("电话", "微信", "面访", "邮件", "其他")
CHANNEL_WEIGHTS = (45, 35, 10, 7, 3)


def ts(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


async def _migrate(url: str) -> None:
    from storage.db import create_engine, session_factory
    from storage.migrate import upgrade
    from storage.pipelines import ensure_templates

    engine = create_engine(url)
    await upgrade(engine)
    async with session_factory(engine)() as session, session.begin():
        await ensure_templates(session)
    await engine.dispose()


def generate(path: Path, teams: int, reps_per_team: int, customers_per_rep: int, seed: int = 7) -> dict[str, int]:
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    rng = random.Random(seed)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    now = NINE.astimezone(dt.UTC)
    created = ts(now - dt.timedelta(days=400))
    b2b = db.execute("SELECT id FROM pipelines WHERE key = 'b2b'").fetchone()[0]
    stage = dict(db.execute("SELECT name, id FROM stages WHERE pipeline_id = ?", (b2b,)))
    db.executemany(
        "INSERT INTO teams (id, key, name, manager_id, timezone, group_chat, pipeline_id) VALUES (?, ?, ?, NULL, ?, '{}', NULL)",
        [(t + 1, f"team{t:03d}", f"第{t}组", "Asia/Shanghai") for t in range(teams)],
    )
    members, rep_ids = [], []
    for t in range(teams):
        members.append((len(members) + 1, f"mgr{t}", f"主管{t}", "manager", t + 1, created))
        for r in range(reps_per_team):
            rep_ids.append(len(members) + 1)
            members.append((len(members) + 1, f"rep{t}.{r}", f"销售{t}-{r}", "rep", t + 1, created))
    supporter = len(members) + 1
    members.append((supporter, "sup", "支持", "supporter", None, created))
    db.executemany(
        "INSERT INTO members (id, code, name, role, team_id, active, role_locked, created_at) VALUES (?, ?, ?, ?, ?, 1, 0, ?)",
        members,
    )
    customers, touches, history, obstacles, requests = [], [], [], [], []
    cid = 0
    for owner in rep_ids:
        for _ in range(customers_per_rep):
            cid += 1
            entered_lead = now - dt.timedelta(days=rng.uniform(40, 120))
            current, entered = stage["新线索"], entered_lead
            history.append((cid, stage["新线索"], ts(entered_lead)))
            if rng.random() < 0.6:
                talk = now - dt.timedelta(days=rng.uniform(0, 60))
                history.append((cid, stage["初步沟通"], ts(talk)))
                current, entered = stage["初步沟通"], talk
                if rng.random() < 0.45:
                    quote = talk + dt.timedelta(days=rng.uniform(0, 10))
                    if quote < now:
                        history.append((cid, stage["方案报价"], ts(quote)))
                        current, entered = stage["方案报价"], quote
            at = now - dt.timedelta(hours=rng.uniform(0, 72))
            last = at
            for _ in range(TOUCHES_PER_CUSTOMER):
                channel = rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0]
                due = (at.astimezone(SHANGHAI).date() + dt.timedelta(days=rng.randint(1, 7))).isoformat()
                touches.append((cid, owner, channel, ts(at), due))
                at -= dt.timedelta(hours=rng.uniform(12, 200))
            customers.append((cid, f"客户{cid:06d}", owner, b2b, current, ts(entered), created, ts(last)))
            if rng.random() < 0.02:
                obstacles.append((len(obstacles) + 1, cid, current, owner, ts(entered)))
                asked = now - dt.timedelta(hours=rng.uniform(0, 400))
                replied = ts(asked + dt.timedelta(hours=rng.uniform(1, 60))) if rng.random() < 0.7 else None
                requests.append((len(obstacles), cid, owner, supporter, ts(asked), replied))
    db.executemany(
        "INSERT INTO customers (id, name, owner_id, pipeline_id, stage_id, stage_entered_at, created_at, last_touch_at,"
        " status, value, industry, aliases, contacts, custom_fields, key_obstacle, snooze_reason, flags)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', 0, '', '[]', '[]', '{}', '', '', '[]')",
        customers,
    )
    db.executemany("INSERT INTO stage_history (customer_id, stage_id, entered_at) VALUES (?, ?, ?)", history)
    db.executemany(
        "INSERT INTO touches (customer_id, member_id, channel, duration_minutes, summary, occurred_at, next_due, raw_text,"
        " next_action, proposal, effective, evidence_status, no_progress, stall_phrases)"
        " VALUES (?, ?, ?, 10, '沟通', ?, ?, '', '回访', 0, 1, 'provided', 0, '[]')",
        touches,
    )
    db.executemany(
        "INSERT INTO obstacles (id, customer_id, stage_id, member_id, answered_at, option, status)"
        " VALUES (?, ?, ?, ?, ?, '技术适配存疑', 'open')",
        obstacles,
    )
    db.executemany(
        "INSERT INTO support_requests (obstacle_id, customer_id, requester_id, supporter_id, requested_at, first_reply_at,"
        " reply_text) VALUES (?, ?, ?, ?, ?, ?, '')",
        requests,
    )
    db.commit()
    db.execute("ANALYZE")
    db.close()
    return {"teams": teams, "reps": len(rep_ids), "customers": len(customers), "touches": len(touches),
            "stage_entries": len(history), "support_requests": len(requests)}


async def _measure(path: str, profile: bool = False) -> dict[str, float]:
    from sqlalchemy import text

    from bot.clock import FrozenClock
    from bot.config import config_from_dict
    from bot.context import Ctx, JobContext
    from bot.events import Event, EventKind
    from handlers import digest
    from storage.db import create_engine, session_factory, transaction
    from storage.media import MediaStore
    from storage.metrics import compute_figures

    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    sessions = session_factory(engine)
    async with sessions() as session:  # open the connection first, as in a running bot
        await session.execute(text("SELECT 1"))
    figures: dict[str, float] = {}
    started, cpu = time.perf_counter(), time.process_time()
    async with sessions() as session:
        result = await compute_figures(session, as_of=NINE, tz=SHANGHAI)
    figures["figures_s"] = time.perf_counter() - started
    figures["figures_cpu_s"] = time.process_time() - cpu
    figures["teams_with_figures"] = len(result.teams)
    figures["figures_peak_rss_mb"] = peak_rss_mb()

    data_dir = Path(path).parent / "data"
    config = config_from_dict({"storage": {"url": f"sqlite+aiosqlite:///{path}", "data_dir": str(data_dir)}})
    event = Event(platform="schedule", platform_msg_id="digest:bench", kind=EventKind.SCHEDULE, job="digest")
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started, cpu = time.perf_counter(), time.process_time()
    async with transaction(sessions) as session:
        ctx = Ctx(session=session, clock=FrozenClock(NINE), config=config, event=event, member=None,
                  media=MediaStore(data_dir / "media"))
        ctx.job = JobContext(name="digest", period="bench", as_of=NINE)
        replies = await digest.digest_job(ctx)
    figures["digests_s"] = time.perf_counter() - started
    figures["digests_cpu_s"] = time.process_time() - cpu
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    figures["load_average"] = os.getloadavg()[0]
    figures["messages"] = len(replies)
    figures["charts"] = sum(1 for r in replies if type(r).__name__ == "Image")
    figures["largest_markdown_bytes"] = max(len(r.text.encode()) for r in replies if type(r).__name__ == "Markdown")
    figures["peak_rss_mb"] = peak_rss_mb()
    await engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teams", type=int, default=100)
    parser.add_argument("--reps-per-team", type=int, default=20)
    parser.add_argument("--customers-per-rep", type=int, default=50)
    parser.add_argument("--reuse", type=Path, help="keep the generated database in this file and reuse it")
    parser.add_argument("--profile", action="store_true", help="print the digest job's CPU profile")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(asyncio.run(_measure(args.measure, args.profile))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        started = time.perf_counter()
        if args.reuse is not None and args.reuse.exists():
            print(f"reusing {args.reuse} (after migrating it to the current schema)", flush=True)
        else:
            target = args.reuse if args.reuse is not None else path
            sizes = generate(target, args.teams, args.reps_per_team, args.customers_per_rep)
            print(f"generated {sizes} in {time.perf_counter() - started:.1f} s", flush=True)
        if args.reuse is not None:
            source = sqlite3.connect(args.reuse)
            copy = sqlite3.connect(path)
            source.backup(copy)
            source.close()
            copy.close()
            asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
            sqlite3.connect(path).execute("ANALYZE").connection.close()
        command = [sys.executable, __file__, "--measure", str(path), *(["--profile"] if args.profile else [])]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        if args.profile:
            print(done.stderr)
        output = done.stdout
        figures = json.loads(output.strip().splitlines()[-1])
        print(f"metrics for the whole organisation: {figures['figures_s']:.2f} s wall, "
              f"{figures['figures_cpu_s']:.2f} s CPU (peak RSS {figures['figures_peak_rss_mb']:.0f} MB)")
        print(f"digest job, {figures['charts']:.0f} charts, {figures['messages']:.0f} messages: "
              f"{figures['digests_s']:.2f} s wall, {figures['digests_cpu_s']:.2f} s CPU, "
              f"peak RSS {figures['peak_rss_mb']:.0f} MB; largest markdown {figures['largest_markdown_bytes']:.0f} bytes")
        print(f"(load average during the run: {figures['load_average']:.1f} on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
