"""Benchmark: encrypted WeCom text callbacks over HTTP against the real endpoint, stored on SQLite.

Prints callbacks/s and p50/p99 acknowledgement latency for

  1. the real app (signature check, AES decrypt, defusedxml parse, durable inbox insert, 200), and
  2. a bare aiohttp handler that reads the body and answers 200 — the ceiling on this machine,

in the same run. The server runs in its own process (so client and server do not share one event
loop); the client keeps ``--concurrency`` requests in flight. Inbox workers are off: what is
measured is the acknowledgement path, i.e. "stored durably, then 200". Afterwards the SQLite file
is read to check that every callback was stored exactly once.

    .venv/bin/python bench/bench_wecom_callbacks.py [-n 3000] [--concurrency 32] [--synchronous NORMAL]

Everything listens on 127.0.0.1 only; all loops are bounded by -n. Acknowledgement latency of
`pacebot serve` replicas (SQLite, PostgreSQL ×1 and ×2) beside an unsigned flood is measured by
``bench/bench_security.py flood``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes import wecom as fakes  # noqa: E402

PATH = "/wecom/callback"


# ---------------------------------------------------------------------- server process


def serve(kind: str, data_dir: str, synchronous: str, conn) -> None:  # type: ignore[no-untyped-def]
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve(kind, data_dir, synchronous, conn))


async def _serve(kind: str, data_dir: str, synchronous: str, conn) -> None:  # type: ignore[no-untyped-def]
    from aiohttp import web

    if kind == "app":
        from bot.app import create_app
        from bot.config import config_from_dict

        config = config_from_dict({
            "storage": {"url": f"sqlite+aiosqlite:///{data_dir}/bench.db", "data_dir": data_dir,
                        "sqlite_synchronous": synchronous},
            "console": {"enabled": False},
            # Never contacted: inbox workers are off, so nothing is sent.
            "wecom": fakes.wecom_config("http://127.0.0.1:9"),
        })
        app = create_app(config, workers=False)
    else:
        async def bare(request: web.Request) -> web.Response:
            await request.read()
            return web.Response(status=200)

        app = web.Application()
        app.router.add_post(PATH, bare)

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    conn.send(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told to stop
    await runner.cleanup()


# ---------------------------------------------------------------------- client


def build_callbacks(n: int) -> list[tuple[dict[str, str], bytes]]:
    crypto = fakes.default_crypto()
    return [
        fakes.encrypted_callback(
            crypto, fakes.text_xml(f"user{i % 50}", f"华东建材 张总 电话{i % 60}分钟 聊了报价细节,下周三上门拜访", f"bench-{i}")
        )
        for i in range(n)
    ]


async def drive(port: int, callbacks: list[tuple[dict[str, str], bytes]], concurrency: int) -> tuple[float, list[float]]:
    url = f"http://127.0.0.1:{port}{PATH}"
    latencies: list[float] = []
    queue = iter(callbacks)
    failures = 0

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            nonlocal failures
            for params, body in queue:
                start = time.perf_counter()
                async with session.post(url, params=params, data=body) as resp:
                    await resp.read()
                    if resp.status != 200:
                        failures += 1
                latencies.append(time.perf_counter() - start)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    if failures:
        raise SystemExit(f"{failures} callbacks were not acknowledged with 200")
    return elapsed, latencies


def run(kind: str, n: int, concurrency: int, synchronous: str) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="pacebot-bench-") as data_dir:
        parent, child = ctx.Pipe()
        server = ctx.Process(target=serve, args=(kind, data_dir, synchronous, child), daemon=True)
        server.start()
        try:
            if not parent.poll(60):
                raise SystemExit(f"{kind} server did not start")
            port = parent.recv()
            # Warm up connections and code paths first; not counted, and not in the checked set.
            crypto = fakes.default_crypto()
            warmup = [fakes.encrypted_callback(crypto, fakes.text_xml("warm", "预热", f"warm-{i}")) for i in range(200)]
            callbacks = build_callbacks(n)
            asyncio.run(drive(port, warmup, concurrency))
            elapsed, latencies = asyncio.run(drive(port, callbacks, concurrency))
        finally:
            parent.send("stop")
            server.join(30)
            if server.is_alive():
                server.terminate()
        stored = None
        if kind == "app":
            with sqlite3.connect(Path(data_dir) / "bench.db") as db:
                stored = db.execute(
                    "SELECT count(DISTINCT platform_msg_id), count(*) FROM inbox WHERE platform_msg_id LIKE 'bench-%'"
                ).fetchone()
            if stored != (n, n):
                raise SystemExit(f"expected {n} stored callbacks, found {stored}")
    latencies.sort()
    return {
        "rate": n / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "max": latencies[-1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=3000, help="callbacks per run (default 3000)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument("--synchronous", default="NORMAL", choices=("NORMAL", "FULL"), help="SQLite synchronous")
    args = parser.parse_args()
    if not 1 <= args.n <= 100_000 or not 1 <= args.concurrency <= 512:
        raise SystemExit("-n must be 1..100000 and --concurrency 1..512")

    print(f"{args.n} encrypted text callbacks, {args.concurrency} in flight, SQLite synchronous={args.synchronous}")
    for kind, label in (("bare", "bare aiohttp handler (ceiling)"), ("app", "Pacebot /wecom/callback")):
        figures = run(kind, args.n, args.concurrency, args.synchronous)
        print(f"  {label:32s} {figures['rate']:8.0f} callbacks/s   ack p50 {figures['p50']:6.1f} ms   "
              f"p99 {figures['p99']:6.1f} ms   max {figures['max']:6.1f} ms")
    print("  all Pacebot callbacks stored exactly once (checked in the SQLite file)")


if __name__ == "__main__":
    main()
