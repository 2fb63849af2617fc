"""End-to-end touches logged per second through the console API into SQLite.

Each request is a full round trip: HTTP → inbox (durable) → parse → touch + confirmation card in
one transaction → response with the reply. Prints the figure; not a pass/fail test.

    .venv/bin/python bench/bench_console_touches.py [--touches 2000] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import RUNTIME, create_app  # noqa: E402
from bot.config import config_from_dict  # noqa: E402
from storage import customers as customer_store  # noqa: E402
from storage.org import load_directory  # noqa: E402

MESSAGES = [
    "{c} 张总 电话20分钟 聊了报价细节,下周三上门拜访",
    "{c} 微信发了定制方案,明天电话确认",
    "{c} 上门拜访一个半小时 看了工地,3天后送样品",
    "{c} 电话十分钟 催合同回签,周五前再跟进",
]


async def main(total: int, concurrency: int, reps: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = config_from_dict(
            {"storage": {"url": f"sqlite+aiosqlite:///{tmp}/bench.db", "data_dir": f"{tmp}/data"},
             "inbox": {"workers": 4, "poll_seconds": 0.05}}
        )
        client = TestClient(TestServer(create_app(config)))
        await client.start_server()
        runtime = client.server.app[RUNTIME]
        directory = {
            "teams": [{"key": "t", "name": "T"}],
            "members": [{"code": f"rep{i}", "name": f"销售{i}", "team": "t"} for i in range(reps)],
        }
        async with runtime.sessions() as session, session.begin():
            await load_directory(session, directory, now=runtime.clock.now())
            members = {m.code: m.id for m in await _members(session)}
            for i in range(reps):
                for j in range(30):
                    await customer_store.create_lead(
                        session, owner_id=members[f"rep{i}"], name=f"客户{i:02d}{j:02d}号", now=runtime.clock.now()
                    )
        latencies: list[float] = []
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(total):
            queue.put_nowait(n)

        async def worker(rep: int) -> None:
            while not queue.empty():
                n = queue.get_nowait()
                text = MESSAGES[n % len(MESSAGES)].format(c=f"客户{rep:02d}{n % 30:02d}号")
                began = time.perf_counter()
                response = await client.post("/console/api/messages", json={"member": f"rep{rep}", "text": text})
                body = await response.json()
                latencies.append(time.perf_counter() - began)
                assert body["replies"][0]["kind"] == "card", body

        began = time.perf_counter()
        await asyncio.gather(*(worker(i % reps) for i in range(concurrency)))
        elapsed = time.perf_counter() - began
        await client.close()
        latencies.sort()
        print(f"touches logged: {total} in {elapsed:.2f}s with {concurrency} concurrent reps")
        print(f"throughput: {total / elapsed:.0f} touches/s")
        print(f"latency p50 {statistics.median(latencies) * 1000:.1f} ms, "
              f"p99 {latencies[int(len(latencies) * 0.99) - 1] * 1000:.1f} ms")


async def _members(session):
    from sqlalchemy import select

    from storage.models import Member

    return list(await session.scalars(select(Member)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--touches", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.touches, args.concurrency, args.reps))
