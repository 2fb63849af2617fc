"""Benchmark: DingTalk robot messages into the real app, by HTTP callback and by Stream, on SQLite.

Prints events/s and p50/p99 acknowledgement latency for

  HTTP    1. a bare aiohttp handler that reads the body and answers 200 (the ceiling), and
          2. Pacebot's ``/dingtalk/callback`` (signature check, JSON parse, durable inbox insert, 200);
  Stream  3. a bare WebSocket client that ACKs each frame as it arrives (the ceiling), and
          4. Pacebot's Stream client (frame parse, durable inbox insert, then the ACK);

all in the same run. The app runs in its own process; the driver (HTTP client, or the fake
DingTalk Stream gateway from tests/fakes/dingtalk.py over TLS) keeps ``--concurrency`` messages
un-acknowledged at a time. Inbox workers are off: what is measured is "stored durably, then
acknowledged". Afterwards the SQLite file is read to check every message was stored exactly once.

    .venv/bin/python bench/bench_dingtalk_callbacks.py [-n 3000] [--concurrency 32]

Everything listens on 127.0.0.1 only; all loops are bounded by -n.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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

from tests.fakes import dingtalk as fakes  # noqa: E402

PATH = "/dingtalk/callback"
TEXT = "华东建材 张总 电话{n}分钟 聊了报价细节,下周三上门拜访"


# ---------------------------------------------------------------------- server process


def serve(kind: str, data_dir: str, gateway: str, ca_file: str, conn) -> None:  # type: ignore[no-untyped-def]
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve(kind, data_dir, gateway, ca_file, conn))


async def _serve(kind: str, data_dir: str, gateway: str, ca_file: str, conn) -> None:  # type: ignore[no-untyped-def]
    from aiohttp import web

    bare_stream: asyncio.Task[None] | None = None
    if kind in ("app-http", "app-stream"):
        from bot.app import create_app
        from bot.config import config_from_dict

        mode = kind.removeprefix("app-")
        config = config_from_dict({
            "storage": {"url": f"sqlite+aiosqlite:///{data_dir}/bench.db", "data_dir": data_dir},
            "console": {"enabled": False},
            # HTTP mode never contacts it (workers are off); Stream mode connects to the fake gateway.
            "dingtalk": fakes.dingtalk_config(gateway or "https://127.0.0.1:9", mode=mode, ca_file=ca_file),
        })
        app = create_app(config, workers=False)
    else:
        app = web.Application()
        if kind == "bare-http":
            async def bare(request: web.Request) -> web.Response:
                await request.read()
                return web.Response(status=200)

            app.router.add_post(PATH, bare)
        else:
            bare_stream = asyncio.create_task(_bare_stream(gateway, ca_file))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    conn.send(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told to stop
    if bare_stream is not None:
        bare_stream.cancel()
    await runner.cleanup()


async def _bare_stream(gateway: str, ca_file: str) -> None:
    """The least a Stream client can do: connect, and ACK every frame at once."""
    import ssl

    connector = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=ca_file))
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.post(f"{gateway}/v1.0/gateway/connections/open", json={
            "clientId": fakes.APP_KEY, "clientSecret": fakes.APP_SECRET,
            "subscriptions": [{"type": "CALLBACK", "topic": "/v1.0/im/bot/messages/get"}]}) as resp:
            ticket = await resp.json()
        async with session.ws_connect(f"{ticket['endpoint']}?ticket={ticket['ticket']}") as ws:
            async for msg in ws:
                frame = json.loads(msg.data)
                await ws.send_str(json.dumps({"code": 200, "message": "OK", "data": "{}", "headers": {
                    "messageId": frame["headers"]["messageId"], "contentType": "application/json"}}))


# ---------------------------------------------------------------------- drivers


def message(i: int, prefix: str) -> dict:
    return fakes.bot_message(f"user{i % 50}", f"{prefix}-{i}", text=TEXT.format(n=i % 60))


async def drive_http(port: int, bodies: list[bytes], concurrency: int) -> tuple[float, list[float]]:
    url = f"http://127.0.0.1:{port}{PATH}"
    latencies: list[float] = []
    queue = iter(bodies)
    failures = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            nonlocal failures
            for body in queue:
                start = time.perf_counter()
                async with session.post(url, data=body, headers=fakes.signed_headers()) as resp:
                    await resp.read()
                    failures += resp.status != 200
                latencies.append(time.perf_counter() - start)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    if failures:
        raise SystemExit(f"{failures} callbacks were not acknowledged with 200")
    return elapsed, latencies


async def drive_stream(fake: fakes.FakeDingTalk, bodies: list[dict], concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    queue = iter(bodies)
    loop = asyncio.get_running_loop()

    async def worker() -> None:
        for body in queue:
            message_id = f"frame-{body['msgId']}"
            waiter: asyncio.Future[None] = loop.create_future()
            fake.ack_waiters[message_id] = waiter
            start = time.perf_counter()
            await fake.push("/v1.0/im/bot/messages/get", body, message_id=message_id)
            await asyncio.wait_for(waiter, 60)
            latencies.append(time.perf_counter() - start)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - began, latencies


# ---------------------------------------------------------------------- runs


def figures(n: int, elapsed: float, latencies: list[float]) -> dict[str, float]:
    latencies.sort()
    return {
        "rate": n / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "max": latencies[-1] * 1000,
    }


def check_stored(data_dir: str, prefix: str, n: int) -> None:
    with sqlite3.connect(Path(data_dir) / "bench.db") as db:
        stored = db.execute("SELECT count(DISTINCT platform_msg_id), count(*) FROM inbox WHERE platform_msg_id LIKE ?",
                            (f"{prefix}-%",)).fetchone()
    if stored != (n, n):
        raise SystemExit(f"expected {n} stored messages, found {stored}")


def run_http(kind: str, n: int, concurrency: int) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="pacebot-bench-") as data_dir:
        parent, child = ctx.Pipe()
        server = ctx.Process(target=serve, args=(kind, data_dir, "", fakes.tls().ca_file, child), daemon=True)
        server.start()
        try:
            if not parent.poll(60):
                raise SystemExit(f"{kind} server did not start")
            port = parent.recv()
            asyncio.run(drive_http(port, [json.dumps(message(i, "warm")).encode() for i in range(200)], concurrency))
            elapsed, latencies = asyncio.run(
                drive_http(port, [json.dumps(message(i, "bench")).encode() for i in range(n)], concurrency))
        finally:
            parent.send("stop")
            server.join(30)
            if server.is_alive():
                server.terminate()
        if kind.startswith("app"):
            check_stored(data_dir, "bench", n)
    return figures(n, elapsed, latencies)


def run_stream(kind: str, n: int, concurrency: int) -> dict[str, float]:
    async def main(data_dir: str) -> tuple[float, list[float]]:
        fake = fakes.FakeDingTalk(ack_timeout=3600)
        await fake.start()
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        # The gateway's certificate was made in this process: the app process is told which CA to trust.
        server = ctx.Process(target=serve, args=(kind, data_dir, fake.base_url, fakes.tls().ca_file, child), daemon=True)
        server.start()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while not fake.sockets:
                if loop.time() > deadline:
                    raise SystemExit(f"{kind} did not connect to the Stream gateway")
                await asyncio.sleep(0.05)
            await drive_stream(fake, [message(i, "warm") for i in range(200)], concurrency)
            return await drive_stream(fake, [message(i, "bench") for i in range(n)], concurrency)
        finally:
            parent.send("stop")
            await loop.run_in_executor(None, server.join, 30)
            if server.is_alive():
                server.terminate()
            await fake.close()

    with tempfile.TemporaryDirectory(prefix="pacebot-bench-") as data_dir:
        elapsed, latencies = asyncio.run(main(data_dir))
        if kind.startswith("app"):
            check_stored(data_dir, "bench", n)
    return figures(n, elapsed, latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=3000, help="messages per run (default 3000)")
    parser.add_argument("--concurrency", type=int, default=32, help="messages un-acknowledged at once (default 32)")
    args = parser.parse_args()
    if not 1 <= args.n <= 100_000 or not 1 <= args.concurrency <= 512:
        raise SystemExit("-n must be 1..100000 and --concurrency 1..512")

    print(f"{args.n} DingTalk text messages, {args.concurrency} un-acknowledged at once, SQLite")
    for run, kind, label in (
        (run_http, "bare-http", "HTTP: bare aiohttp handler"),
        (run_http, "app-http", "HTTP: Pacebot /dingtalk/callback"),
        (run_stream, "bare-stream", "Stream: bare ACK-only client"),
        (run_stream, "app-stream", "Stream: Pacebot (stored, then ACK)"),
    ):
        result = run(kind, args.n, args.concurrency)
        print(f"  {label:36s} {result['rate']:8.0f} events/s   ack p50 {result['p50']:6.1f} ms   "
              f"p99 {result['p99']:6.1f} ms   max {result['max']:6.1f} ms")
    print("  all Pacebot messages stored exactly once (checked in the SQLite file)")


if __name__ == "__main__":
    main()
