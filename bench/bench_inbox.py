"""Benchmark: the cost of processing inbox items in-process, without HTTP or a load generator.

Seeds reps with customers on a fresh SQLite database (as ``bench_pipeline.py`` does), queues
touch messages in the inbox (each names one of its rep's customers and a next action, so each is
a complete touch answered by a confirmation card), then times ``inbox.process_due()`` until the
inbox is empty and ``outbox.deliver_due()`` until every reply reached the fake WeCom server.

It prints, per phase, the process CPU time per item (steadier than wall time on a shared machine),
the wall rate, and the SQL statements executed per item (counted with an engine event), e.g.

    inbox 600 items: 1.95 ms cpu/item, 480/s, 9.0 statements/item; outbox 600: 0.54 ms cpu/item ...

    .venv/bin/python bench/bench_inbox.py [--messages 600] [--reps 200] [--customers-per-rep 10]
        [--repeat N] [--by-kind] [--profile FILE] [--sql] [--batch-size 32]

``--profile FILE`` writes a cProfile of the inbox phase (read it with ``python -m pstats FILE``);
``--sql`` prints the statements of the first processed batch, for counting by eye; ``--by-kind``
adds the statements per item by their first words; ``--repeat N`` runs N times from fresh
databases and prints the least and the median CPU per item (the machine's other load inflates
single figures).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pipeline import _seed, make_messages, make_org  # noqa: E402

from bot.app import create_app  # noqa: E402
from bot.appkeys import RUNTIME  # noqa: E402
from bot.config import config_from_dict  # noqa: E402
from bot.events import Event, EventKind  # noqa: E402
from tests.fakes import wecom as fakes  # noqa: E402


class StatementCounter:
    """Counts the SQL statements an engine executes (``before_cursor_execute``)."""

    def __init__(self, engine: Any) -> None:
        self.count = 0
        self.recording: list[str] | None = None
        self.kinds: Counter[str] = Counter()
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.count += 1
        self.kinds[" ".join(statement.split()[:3]).rstrip("0123456789")[:60]] += 1
        if self.recording is not None:
            self.recording.append(" ".join(statement.split())[:160])


async def run(args: argparse.Namespace) -> float:
    """One run from a fresh database; the inbox's CPU ms per item."""
    work = tempfile.mkdtemp(prefix="pacebot-bench-inbox-")
    fake = fakes.FakeWeCom()
    base = await fake.start()
    config = config_from_dict({
        "storage": {"url": f"sqlite+aiosqlite:///{work}/bench.db", "data_dir": work},
        "console": {"enabled": False},
        "scheduler": {"enabled": False},
        "inbox": {"batch_size": args.batch_size},
        "wecom": fakes.wecom_config(base, member_per_minute=10**6, member_per_hour=10**7, duplicate_check_seconds=0),
    })
    app = create_app(config, workers=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        runtime = app[RUNTIME]
        org = make_org(args.reps, args.customers_per_rep)
        await _seed(runtime, org)
        for i, (user, text) in enumerate(make_messages(org, args.messages, 5)):
            await runtime.inbox.accept(Event(platform="wecom", platform_msg_id=f"m{i}", kind=EventKind.TEXT,
                                             sender=user, conversation=user, text=text))
        counter = StatementCounter(runtime.engine)
        if args.sql:
            counter.recording = []
            await runtime.inbox.process_due()
            print("\n".join(counter.recording))
            return 0.0
        profile = cProfile.Profile() if args.profile else None
        cpu0, wall0, statements0 = time.process_time(), time.perf_counter(), counter.count
        if profile:
            profile.enable()
        done = 0
        while count := await runtime.inbox.process_due():
            done += count
        if profile:
            profile.disable()
            profile.dump_stats(args.profile)
        cpu1, wall1, statements1 = time.process_time(), time.perf_counter(), counter.count
        kinds = counter.kinds.copy()
        sent = 0
        while count := await runtime.outbox.deliver_due():
            sent += count
        cpu2, wall2, statements2 = time.process_time(), time.perf_counter(), counter.count
        print(
            f"inbox {done} items: {1000 * (cpu1 - cpu0) / max(done, 1):.2f} ms cpu/item, "
            f"{done / (wall1 - wall0):.0f}/s, {(statements1 - statements0) / max(done, 1):.1f} statements/item; "
            f"outbox {sent}: {1000 * (cpu2 - cpu1) / max(sent, 1):.2f} ms cpu/item, {sent / (wall2 - wall1):.0f}/s, "
            f"{(statements2 - statements1) / max(sent, 1):.1f} statements/item; fake WeCom got {len(fake.messages)}"
        )
        if args.by_kind:
            for kind, n in kinds.most_common():
                print(f"  {n / max(done, 1):6.2f}/item  {kind}")
        return 1000 * (cpu1 - cpu0) / max(done, 1)
    finally:
        await runner.cleanup()
        await fake.close()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--customers-per-rep", type=int, default=10)
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the inbox phase")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="[inbox] batch_size: items claimed and committed together (1 = each alone)")
    parser.add_argument("--sql", action="store_true", help="print the statements of the first batch and stop")
    parser.add_argument("--by-kind", action="store_true", help="statements per item by their first words")
    parser.add_argument("--repeat", type=int, default=1, help="runs, each from a fresh database (the least CPU is "
                        "the figure least disturbed by other load on the machine)")
    args = parser.parse_args()
    figures = [asyncio.run(run(args)) for _ in range(max(1, args.repeat))]
    if len(figures) > 1:
        print(f"inbox ms cpu/item over {len(figures)} runs: least {min(figures):.2f}, "
              f"median {sorted(figures)[len(figures) // 2]:.2f}")


if __name__ == "__main__":
    main()
