"""Benchmark: a burst of messages to many recipients — the morning push to every rep — delivered
by the outbox to the fake WeCom server (tests/fakes/wecom.py).

``--messages`` messages (default 2,000), one to each of as many reps, are queued in the database
in one transaction while the server runs, as a scheduled job queues them. The server's outbox
workers notice them (within ``[outbox] poll_seconds`` when another process queued them), claim
the oldest due message of up to ``[outbox] batch_size`` recipients at a time and send each batch
concurrently on one client session. Printed per run:

  first after   seconds from the commit of the burst to the first delivery (the poll included)
  drain         seconds from the first delivery to the last
  delivered/s   messages delivered per second over the drain
  cpu ms/msg    the server processes' CPU (user + system) per message, commit to last delivery

    .venv/bin/python bench/bench_outbox.py [--messages 2000] [--repeat 3]
        [--store sqlite | --store postgresql+asyncpg://postgres@127.0.0.1:5432/test [--replicas 2]]

Each run starts from a fresh copy of a seeded database. Everything listens on 127.0.0.1 only; every
wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_pipeline import (  # noqa: E402
    fake_wecom_and_work_dir,
    fresh_copy,
    make_org,
    seed_template,
    start_servers,
    stop_servers,
)

DRAIN_TIMEOUT_SECONDS = 300


async def queue_burst(url: str, userids: list[str]) -> None:
    """One message to each of ``userids`` (WeCom user ids of seeded reps), in one transaction."""
    from sqlalchemy import select

    from bot.clock import SystemClock
    from storage import outbox as outbox_store
    from storage.db import create_engine, session_factory, transaction
    from storage.models import Member

    engine = create_engine(url)
    try:
        async with transaction(session_factory(engine)) as session:
            found = await session.execute(select(Member.wecom_userid, Member.id).where(Member.wecom_userid.in_(userids)))
            ids = {userid: member_id for userid, member_id in found}
            rows = [dict(platform="wecom", target_kind="member", target_id=ids[userid], target=userid, kind="text",
                         payload={"text": f"早上好!今天要跟进的客户和话术包已更新({n})"}, source_event_id=None)
                    for n, userid in enumerate(userids)]
            await outbox_store.enqueue_many(session, rows, now=SystemClock().now())
    finally:
        await engine.dispose()


def delivered(fake_conn) -> int:  # type: ignore[no-untyped-def]
    fake_conn.send("count")
    return int(fake_conn.recv())


def run_once(args: argparse.Namespace, userids: list[str], fake_base: str, fake_conn, template_url: str,  # type: ignore[no-untyped-def]
             work_dir: str, run: int) -> dict[str, float]:
    url = fresh_copy(args, template_url, work_dir, run)
    servers, conns, _ = start_servers(url, f"{work_dir}/run{run}", fake_base, None, args.replicas, args.settings)
    try:
        processes = [psutil.Process(server.pid) for server in servers]

        def cpu() -> float:
            return sum(p.cpu_times().user + p.cpu_times().system for p in processes)

        before = delivered(fake_conn)
        asyncio.run(queue_burst(url, userids))
        committed, cpu_at_commit = time.perf_counter(), cpu()
        first = last = 0.0
        deadline = committed + DRAIN_TIMEOUT_SECONDS
        count = 0
        while count < len(userids) and time.perf_counter() < deadline:
            time.sleep(0.01)
            count = delivered(fake_conn) - before
            if count and not first:
                first = time.perf_counter()
        last = time.perf_counter()
        spent = cpu() - cpu_at_commit
    finally:
        stop_servers(servers, conns)
    drain = last - first if first else float("nan")
    return {
        "delivered": count,
        "first_after": (first - committed) if first else float("nan"),
        "drain": drain,
        "per_second": count / drain if first and drain > 0 else float("nan"),
        "cpu_ms_per_message": spent * 1000 / count if count else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000, help="messages, one per rep (default 2000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs, each on a fresh database (default 3)")
    parser.add_argument("--store", default="sqlite", help="sqlite, or a postgresql+asyncpg:// URL (databases "
                        "named bench_pipeline_* are created next to it)")
    parser.add_argument("--replicas", type=int, default=1, help="server processes (PostgreSQL only)")
    args = parser.parse_args()
    if not 1 <= args.messages <= 20000 or not 1 <= args.repeat <= 20 or not 1 <= args.replicas <= 4:
        raise SystemExit("--messages 1..20000, --repeat 1..20, --replicas 1..4")
    if args.replicas != 1 and args.store == "sqlite":
        raise SystemExit("--replicas needs PostgreSQL")
    # What bench_pipeline's helpers read: no server settings changed; the members' per-person
    # quotas are raised by its server configuration (the bench measures throughput).
    args.settings = {}
    org = make_org(args.messages, 1)
    store = "SQLite" if args.store == "sqlite" else f"PostgreSQL, {args.replicas} replica(s)"
    print(f"outbox burst on {store}: {args.messages:,} messages to as many reps, {args.repeat} run(s)")
    print(f"  {'run':>3} {'delivered':>9} {'first after':>12} {'drain':>8} {'delivered/s':>12} {'cpu ms/msg':>11}")
    with fake_wecom_and_work_dir("pacebot-outbox-") as (fake, work_dir):
        template_url = seed_template(args, org, fake.base_url, work_dir)
        for run in range(1, args.repeat + 1):
            f = run_once(args, org.reps, fake.base_url, fake.conn, template_url, work_dir, run)
            print(f"  {run:>3} {f['delivered']:>9,} {f['first_after']:>11.2f}s {f['drain']:>7.2f}s "
                  f"{f['per_second']:>12.0f} {f['cpu_ms_per_message']:>11.2f}", flush=True)


if __name__ == "__main__":
    main()
