"""The full alert sweep (every rule, the whole organisation) on SQLite at 10k and 100k customers.

For each size a fresh database is migrated and filled directly with bulk inserts (executemany):
reps in teams of ten, customers over the three shipped pipelines with realistic recency (about a
third gone cold), 10 touches per customer (1M at 100k), node deliverables, cross-department
requests, snoozed and closed customers, and two closed alert episodes per customer as history.

Each sweep then runs in a fresh process, so its peak RSS is the sweep's own, not the generator's:

* ``first``  — the very first sweep: every current condition is raised (tens of thousands of rows);
* ``steady`` — the next sweep a quarter of an hour later: the usual case, little changes;
* ``notify`` — reading the raised episodes with everything a message needs and claiming them;
* ``weekly`` — the low weekly activity check.

    .venv/bin/python bench/bench_sweep.py [--sizes 10000 100000] [--history 2]

The schema comes from the migrations. Prints figures; not a pass/fail test.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI)  # a Wednesday morning
TOUCHES_PER_CUSTOMER = 10
CUSTOMERS_PER_REP = 200
REPS_PER_TEAM = 10

def ts(instant: dt.datetime) -> str:
    """How the Timestamp column stores an instant on SQLite: naive UTC text."""
    return instant.astimezone(dt.UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


# -- generating ------------------------------------------------------------------------------------


async def _migrate(url: str) -> None:
    from storage.db import create_engine, session_factory
    from storage.migrate import upgrade
    from storage.pipelines import ensure_templates

    engine = create_engine(url)
    await upgrade(engine)
    async with session_factory(engine)() as session, session.begin():
        await ensure_templates(session)
    await engine.dispose()


def generate(path: Path, customers: int, history: int = 2, seed: int = 7) -> dict[str, int]:
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    rng = random.Random(seed)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    now = NOW.astimezone(dt.UTC)
    created = ts(now - dt.timedelta(days=400))

    stages: dict[str, list[tuple[int, list[str]]]] = {}
    for stage_id, key, deliverables in db.execute(
        "SELECT s.id, p.key, s.deliverables FROM stages s JOIN pipelines p ON p.id = s.pipeline_id ORDER BY s.position"
    ):
        stages.setdefault(key, []).append((stage_id, json.loads(deliverables)))
    pipeline_ids = dict(db.execute("SELECT key, id FROM pipelines"))

    reps = max(REPS_PER_TEAM, customers // CUSTOMERS_PER_REP)
    teams = math.ceil(reps / REPS_PER_TEAM)
    db.executemany(
        "INSERT INTO teams (id, key, name, manager_id, timezone, group_chat, pipeline_id) VALUES (?, ?, ?, NULL, ?, '{}', NULL)",
        [(t + 1, f"team{t}", f"第{t}组", "Asia/Shanghai") for t in range(teams)],
    )
    member_rows = []
    for t in range(teams):
        member_rows.append((len(member_rows) + 1, f"mgr{t}", f"主管{t}", "manager", t + 1, created))
    rep_ids = []
    lazy = set(rng.sample(range(reps), max(1, reps // 10)))  # a tenth of the reps follow up far less
    for r in range(reps):
        rep_ids.append(len(member_rows) + 1)
        member_rows.append((len(member_rows) + 1, f"rep{r}", f"销售{r}", "rep", r // REPS_PER_TEAM + 1, created))
    for s in range(5):
        member_rows.append((len(member_rows) + 1, f"sup{s}", f"支持{s}", "supporter", None, created))
    supporters = [row[0] for row in member_rows if row[3] == "supporter"]
    db.executemany(
        "INSERT INTO members (id, code, name, role, team_id, active, role_locked, created_at) VALUES (?, ?, ?, ?, ?, 1, 0, ?)",
        member_rows,
    )
    db.executemany("UPDATE teams SET manager_id = ? WHERE id = ?", [(t + 1, t + 1) for t in range(teams)])

    customer_rows, touch_rows, evidence_rows, obstacle_rows, request_rows, alert_rows = [], [], [], [], [], []
    today = NOW.date()
    for c in range(1, customers + 1):
        owner = rep_ids[(c - 1) % reps]
        key = rng.choices(("b2b", "hospital", "store"), weights=(85, 10, 5))[0]
        stage_id, deliverables = rng.choice(stages[key])
        entered = now - dt.timedelta(days=rng.uniform(0, 30))
        mean_days = 12 if (c - 1) % reps in lazy else 2  # about a third of all customers beyond 72 hours
        recency = dt.timedelta(days=rng.expovariate(1 / mean_days))
        last = now - recency if rng.random() > 0.03 else None
        status = "closed" if rng.random() < 0.03 else "active"
        snoozed = (today + dt.timedelta(days=5)).isoformat() if rng.random() < 0.02 else None
        customer_rows.append((
            c, f"客户{c:06d}", owner, pipeline_ids[key], stage_id, ts(entered), ts(now - dt.timedelta(days=rng.uniform(30, 400))),
            ts(last) if last else None, status, int(rng.lognormvariate(11, 1)), snoozed,
        ))
        if last is not None:
            at = last
            for _ in range(TOUCHES_PER_CUSTOMER):
                touch_rows.append((c, owner, "电话", 10, "电话沟通", ts(at), (at.date() + dt.timedelta(days=3)).isoformat()))
                at -= dt.timedelta(hours=rng.uniform(6, 96))
        if deliverables and rng.random() < 0.5:
            evidence_rows.append((c, owner, json.dumps({"deliverable": deliverables[0], "stage_id": stage_id}),
                                  ts(entered + dt.timedelta(hours=5))))
        if rng.random() < 0.01:
            obstacle_rows.append((len(obstacle_rows) + 1, c, stage_id, owner, ts(entered)))
            asked = now - dt.timedelta(hours=rng.uniform(0, 120))
            replied = ts(asked + dt.timedelta(hours=rng.uniform(1, 30))) if rng.random() < 0.6 else None
            request_rows.append((len(obstacle_rows), c, owner, rng.choice(supporters), ts(asked), replied))
        for _ in range(history):
            raised = now - dt.timedelta(days=rng.uniform(5, 300))
            alert_rows.append(("cold", c, owner, "yellow", rng.choice(("cleared", "ignored")), ts(raised),
                               ts(raised + dt.timedelta(hours=1)), ts(raised + dt.timedelta(days=2))))
    db.executemany(
        "INSERT INTO customers (id, name, owner_id, pipeline_id, stage_id, stage_entered_at, created_at, last_touch_at, status,"
        " value, snoozed_until, industry, aliases, contacts, custom_fields, key_obstacle, snooze_reason, flags)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', '[]', '[]', '{}', '', '', '[]')",
        customer_rows,
    )
    db.executemany(
        "INSERT INTO touches (customer_id, member_id, channel, duration_minutes, summary, occurred_at, next_due, raw_text,"
        " next_action, proposal, effective, evidence_status, no_progress, stall_phrases)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, '', '回访', 0, 1, 'provided', 0, '[]')",
        touch_rows,
    )
    db.executemany(
        "INSERT INTO evidence (customer_id, member_id, attributes, created_at, kind, mime, size, filename, note)"
        " VALUES (?, ?, ?, ?, 'photo', 'image/jpeg', 0, '', '')",
        evidence_rows,
    )
    db.executemany(
        "INSERT INTO obstacles (id, customer_id, stage_id, member_id, answered_at, option, status)"
        " VALUES (?, ?, ?, ?, ?, '技术适配存疑', 'open')",
        obstacle_rows,
    )
    db.executemany(
        "INSERT INTO support_requests (obstacle_id, customer_id, requester_id, supporter_id, requested_at, first_reply_at,"
        " reply_text) VALUES (?, ?, ?, ?, ?, ?, '')",
        request_rows,
    )
    db.executemany(
        "INSERT INTO alerts (rule, customer_id, member_id, severity, status, raised_at, notified_at, closed_at, details,"
        " open_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}', NULL)",
        alert_rows,
    )
    db.commit()
    db.close()
    return {"customers": customers, "reps": reps, "touches": len(touch_rows), "evidence": len(evidence_rows),
            "support_requests": len(request_rows), "alert_history": len(alert_rows)}


# -- measuring (in a fresh process) --------------------------------------------------------------------


def peak_rss_mb() -> float:
    """This process image's peak RSS. Linux's VmHWM starts afresh at exec; ru_maxrss would carry
    the parent's high-water mark over a fork+exec, so it is only the fallback."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _measure(path: str) -> dict[str, float]:
    import psutil
    from sqlalchemy import text

    from bot.config import RulesConfig
    from domain.rules.workdays import WorkCalendar
    from storage import alerts as alert_store
    from storage.db import create_engine, session_factory, transaction

    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    sessions = session_factory(engine)
    rules, calendar = RulesConfig(), WorkCalendar()
    now = NOW.astimezone(dt.UTC)
    figures: dict[str, float] = {}
    async with sessions() as session:  # open the connection first, as in a running bot
        await session.execute(text("SELECT 1"))
    for label, at in (("first", now), ("steady", now + dt.timedelta(minutes=15))):
        started = time.perf_counter()
        async with transaction(sessions) as session:
            result = await alert_store.sweep(session, now=at, tz=SHANGHAI, rules=rules, calendar=calendar)
        figures[f"{label}_s"] = time.perf_counter() - started
        figures[f"{label}_raised"] = sum(result.raised.values())
        figures[f"{label}_peak_mb"] = peak_rss_mb()
    started = time.perf_counter()
    async with transaction(sessions) as session:
        pending = await alert_store.pending_notifications(session, today=NOW.date())
        await alert_store.mark_notified(session, (p.id for p in pending), now)
    figures["notify_s"] = time.perf_counter() - started
    figures["notified"] = len(pending)
    figures["notify_peak_mb"] = peak_rss_mb()
    started = time.perf_counter()
    async with transaction(sessions) as session:
        low = await alert_store.raise_low_activity(session, as_of=now, now=now, tz=SHANGHAI, ratio=rules.low_activity_ratio)
    figures["weekly_s"] = time.perf_counter() - started
    figures["low_activity"] = len(low)
    await engine.dispose()
    figures["peak_rss_mb"] = peak_rss_mb()
    figures["rss_mb"] = psutil.Process().memory_info().rss / 2**20
    return figures


async def _measure_job(path: str) -> dict[str, float]:
    """The whole ``alert_sweep`` job as the worker runs it (rules, then every message), twice."""
    from bot.clock import FrozenClock
    from bot.config import config_from_dict
    from bot.context import Ctx
    from bot.events import Event, EventKind
    from handlers import alerts
    from storage.db import create_engine, session_factory, transaction

    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    sessions = session_factory(engine)
    try:  # the shipped script packs, so overdue nodes push theirs
        from storage.library_seed import ensure_library

        async with transaction(sessions) as session:
            await ensure_library(session, NOW)
    except ImportError:
        pass
    config = config_from_dict({"storage": {"url": f"sqlite+aiosqlite:///{path}"}})
    figures: dict[str, float] = {}
    for label, minutes in (("job_first", 0), ("job_steady", 15)):
        event = Event(platform="schedule", platform_msg_id=label, kind=EventKind.SCHEDULE, job="alert_sweep")
        started = time.perf_counter()
        async with transaction(sessions) as session:
            ctx = Ctx(session=session, clock=FrozenClock(NOW + dt.timedelta(minutes=minutes)), config=config,
                      event=event, member=None, media=None)  # type: ignore[arg-type]
            replies = await alerts.alert_sweep(ctx)
        figures[f"{label}_s"] = time.perf_counter() - started
        figures[f"{label}_messages"] = len(replies)
    await engine.dispose()
    figures["job_peak_rss_mb"] = peak_rss_mb()
    return figures


def generate_in_child(path: Path, customers: int, history: int) -> dict[str, int]:
    output = subprocess.run(
        [sys.executable, __file__, "--generate", str(customers), str(history), str(path)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def measure(path: Path, mode: str) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, f"--measure-{mode}", str(path)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def _copy(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--measure-sweep", help=argparse.SUPPRESS)
    parser.add_argument("--measure-job", help=argparse.SUPPRESS)
    parser.add_argument("--history", type=int, default=2, help="closed alert episodes per customer (default 2)")
    parser.add_argument("--generate", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_sweep:
        print(json.dumps(asyncio.run(_measure(args.measure_sweep))))
        return
    if args.measure_job:
        print(json.dumps(asyncio.run(_measure_job(args.measure_job))))
        return
    if args.generate:
        print(json.dumps(generate(Path(args.generate[2]), int(args.generate[0]), int(args.generate[1]))))
        return
    print("sweep: storage.alerts.sweep, all rules (first ever / steady 15 min later); notify: read + claim the raised")
    print("job: the whole alert_sweep job with every message built (first ever / steady); RSS: peak of that process\n")
    print(f"{'customers':<15} {'touches':>9} {'sweep 1st':>10} {'steady':>8} {'notify':>8} {'weekly':>8} {'RSS':>6}"
          f" {'job 1st':>8} {'steady':>8} {'RSS':>6}  raised / messages / low-activity")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            path = Path(tmp) / f"sweep-{size}.db"
            started = time.perf_counter()
            counts = generate_in_child(path, size, args.history)
            generated = time.perf_counter() - started
            variants = [("", path)]
            for label, db_path in variants:
                job_path = db_path.with_suffix(".job.db")
                _copy(db_path, job_path)
                f = measure(db_path, "sweep")
                j = measure(job_path, "job")
                print(
                    f"{f'{size:,}{label}':<15} {counts['touches']:>9,} {f['first_s']:>9.3f}s {f['steady_s']:>7.3f}s "
                    f"{f['notify_s']:>7.3f}s {f['weekly_s']:>7.3f}s {f['peak_rss_mb']:>4.0f}MB"
                    f" {j['job_first_s']:>7.3f}s {j['job_steady_s']:>7.3f}s {j['job_peak_rss_mb']:>4.0f}MB  "
                    f"{int(f['first_raised']):,} / {int(j['job_first_messages']):,} / {int(f['low_activity'])}"
                )
            print(f"{'':>15} (generated in {generated:.1f}s: {counts})")


if __name__ == "__main__":
    main()
