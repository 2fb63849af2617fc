"""Hostile load: memory of image decoding, and genuine WeCom callbacks during an unsigned flood.

    .venv/bin/python bench/bench_security.py            # both parts
    .venv/bin/python bench/bench_security.py images     # RSS before / peak / after per image scenario
    PACEBOT_TEST_POSTGRES_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test \
      .venv/bin/python bench/bench_security.py flood    # the flood matrix alone, about 90 s
      [--rate 100] [--seconds 8] [--connections 4,320]

Images: each scenario runs in a fresh process (so peaks do not mask each other) and prints the RSS
before, the peak (ru_maxrss) and the RSS after storing.

Flood: `pacebot serve` processes with WeCom enabled, 1 on SQLite, and 1 and 2 on one PostgreSQL
database (a scratch database next to PACEBOT_TEST_POSTGRES_URL; skipped when it is unset). For
each, signed text callbacks are offered at --rate per second for --seconds (an open loop, round
robin over the replicas, latency counted from when each was due) with no flood, then beside an
unsigned flood of each --connections size against replica 1. The flood runs in a process of its
own over raw sockets, each connection sending four kinds of unsigned request in turn (1 MB of
nested XML, a real envelope with a wrong signature, a stale timestamp, no query parameters) as
fast as the answers come. One row per store × replicas × flood: offered/s, acked/s, p50/p99/max
acknowledgement latency, callbacks over 1 s or not acknowledged, flood refusals answered per
second, CPU seconds per second of the server processes, server log lines, and the load average.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


IMAGE_DIR = Path(tempfile.gettempdir()) / "pacebot-bench-images"
SCENARIOS = {
    # just under the default pixel cap (40 M), RGBA: 160 MB decoded → refused by the decoded cap
    "rgba_png_under_pixel_cap": [("png", "RGBA", (6320, 6320))],
    "four_rgba_png_at_once": [("png", "RGBA", (6320, 6320 - i)) for i in range(4)],
    # within the decoded cap: 24 M pixels RGB (4 bytes each in Pillow) = 96 MB
    "rgb_png_within_decoded_cap": [("png", "RGB", (4900, 4900))],
    "four_rgb_png_within_cap_at_once": [("png", "RGB", (4900, 4900 - i)) for i in range(4)],
    # a 40-megapixel JPEG photo, decoded at 1/8 scale by draft()
    "jpeg_40mp": [("jpeg", "RGB", (7300, 5470))],
}


def image_path(kind: str, mode: str, size: tuple[int, int]) -> Path:
    return IMAGE_DIR / f"{mode}-{size[0]}x{size[1]}.{kind}"


def make_images() -> None:
    """Written once by a process of its own, so that making them is not counted in any scenario."""
    from PIL import Image

    IMAGE_DIR.mkdir(exist_ok=True)
    for specs in SCENARIOS.values():
        for kind, mode, size in specs:
            path = image_path(kind, mode, size)
            if not path.exists():
                colour = (200, 100, 50) if mode == "RGB" else (10, 20, 30, 128)
                with Image.new(mode, size, colour) as img:
                    img.save(path, "JPEG" if kind == "jpeg" else "PNG", quality=80)


def image_scenario(name: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from storage.media import MediaRejected, MediaStore

    images = [image_path(*spec).read_bytes() for spec in SCENARIOS[name]]
    with tempfile.TemporaryDirectory() as tmp:
        store = MediaStore(Path(tmp))
        before = rss_mb()

        def one(data: bytes) -> str:
            try:
                stored = store.store(data, kind_hint="photo")
                return f"stored {stored.width}x{stored.height}"
            except MediaRejected as exc:
                return f"refused: {exc.detail}"

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=4) as pool:
            outcomes = list(pool.map(one, images))
        elapsed = time.perf_counter() - started
        after = rss_mb()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1000
        size = f"{len(images)} × {len(images[0]) // 1024} KB"
        print(f"{name:32s} {size:13s} RSS before {before:5.0f} MB  peak {peak:5.0f} MB  "
              f"after {after:5.0f} MB  {elapsed:5.2f} s  {outcomes[0]}")


def images() -> None:
    print("image memory (default limits: 40 M pixels, 100 MB decoded, 2 decodes at once)")
    subprocess.run([sys.executable, __file__, "_make_images"], check=True)
    for name in SCENARIOS:
        subprocess.run([sys.executable, __file__, "_image", name], check=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------- flood: the unsigned load

FLOOD_KINDS = ("deep_1mb", "bad_signature", "stale_timestamp", "no_params")


def flood_requests(port: int) -> list[bytes]:
    """Raw HTTP requests, one of each kind, none of them signed by WeCom:

    deep_1mb         1 MB of nested ``<a>`` with a fresh timestamp and a well-formed wrong signature
    bad_signature    a real envelope (about 1 KB) with a fresh timestamp and a wrong signature
    stale_timestamp  the same envelope with a 90-day-old timestamp
    no_params        the same envelope without query parameters
    """
    from tests.fakes import wecom as fakes

    now = int(time.time())
    depth = 1_000_000 // 7
    deep = b"<a>" * depth + b"x" + b"</a>" * depth
    _, envelope = fakes.encrypted_callback(fakes.default_crypto(), fakes.text_xml("LiMing", "你好", "flood"))
    wrong = "0" * 40

    def request(query: str, body: bytes) -> bytes:
        head = (f"POST /wecom/callback{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n")
        return head.encode() + body

    return [
        request(f"?msg_signature={wrong}&timestamp={now}&nonce=1", deep),
        request(f"?msg_signature={wrong}&timestamp={now}&nonce=1", envelope),
        request(f"?msg_signature={wrong}&timestamp={now - 90 * 86400}&nonce=1", envelope),
        request("", envelope),
    ]


async def _flood_connection(port: int, requests: list[bytes], first: int, stop_at: float,
                            counts: dict[str, int]) -> None:
    """Send the requests in turn, as fast as answers come, over keep-alive; reconnect when closed."""
    i = first
    while time.monotonic() < stop_at:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            counts["connect_error"] = counts.get("connect_error", 0) + 1
            await asyncio.sleep(0.05)
            continue
        try:
            while time.monotonic() < stop_at:
                writer.write(requests[i % len(requests)])
                i += 1
                status_line = await reader.readline()
                if not status_line:
                    counts["closed"] = counts.get("closed", 0) + 1
                    break
                length, close = 0, False
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"connection" and value.strip().lower() == b"close":
                        close = True
                if length:
                    await reader.readexactly(length)
                status = status_line.split()[1].decode()
                counts[status] = counts.get(status, 0) + 1
                if close:
                    break
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            counts["reset"] = counts.get("reset", 0) + 1
        finally:
            writer.transport.abort()  # drop whatever of a 1 MB body the server did not read


def flood_process(port: int, connections: int, seconds: float) -> None:
    """Run in a process of its own, so the flood does not share the genuine sender's event loop."""
    requests = flood_requests(port)
    counts: dict[str, int] = {}

    async def main() -> float:
        started = time.monotonic()
        stop_at = started + seconds
        await asyncio.gather(*(_flood_connection(port, requests, i, stop_at, counts) for i in range(connections)))
        return time.monotonic() - started

    elapsed = asyncio.run(main())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"counts": counts, "elapsed": elapsed, "cpu": usage.ru_utime + usage.ru_stime}))


# ---------------------------------------------------------------------- genuine callbacks, open loop


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(config: Path, cwd: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([str(Path(sys.executable).with_name("pacebot")), "--config", str(config), "serve"],
                                stdout=out, stderr=out, cwd=cwd)


def line_count(paths: list[Path]) -> int:
    return sum(path.read_bytes().count(b"\n") for path in paths if path.exists())


async def offer(http: Any, targets: list[str], callbacks: list[tuple[dict[str, str], bytes]],
                rate: float) -> tuple[list[float], int, float]:
    """Send the callbacks at ``rate`` per second whatever the answers (an open loop, like WeCom's
    servers), round robin over ``targets``. Latency is counted from the moment each was due, so a
    sender held up does not hide a slow server. (latencies of the 200s, failures, elapsed)."""
    import aiohttp

    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    failures = 0
    timeout = aiohttp.ClientTimeout(total=10)

    async def one(url: str, params: dict[str, str], body: bytes, due: float) -> None:
        nonlocal failures
        try:
            async with http.post(url, params=params, data=body, timeout=timeout) as resp:
                await resp.read()
                ok = resp.status == 200
        except (TimeoutError, aiohttp.ClientError):
            ok = False
        if ok:
            latencies.append(loop.time() - due)
        else:
            failures += 1

    started = loop.time()
    tasks = []
    for i, (params, body) in enumerate(callbacks):
        due = started + i / rate
        if (wait := due - loop.time()) > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(targets[i % len(targets)], params, body, due)))
    await asyncio.gather(*tasks)
    return latencies, failures, loop.time() - started


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, max(0, int(len(values) * fraction + 0.5) - 1))]


async def flood_matrix_cell(store: str, url: str, replicas: int, *, rate: float, seconds: float,
                            connections: list[int], tmp: str) -> None:
    """Start ``replicas`` servers on one database; measure without and then with the flood."""
    import aiohttp

    from tests.fakes import wecom as fakes

    crypto = fakes.default_crypto()
    fake = fakes.FakeWeCom()
    await fake.start()
    wecom = fakes.wecom_config(fake.base_url)
    lines = "\n".join(f"{k} = {v!r}".replace("'", '"') if isinstance(v, str) else f"{k} = {str(v).lower()}"
                      for k, v in wecom.items())
    ports = [free_port() for _ in range(replicas)]
    logs = [Path(tmp) / f"server-{port}.log" for port in ports]
    servers: list[subprocess.Popen[bytes]] = []
    tag = f"{store}-{replicas}-{int(time.time())}"
    try:
        connector = aiohttp.TCPConnector(limit=256)
        async with aiohttp.ClientSession(connector=connector) as http:
            for port, log in zip(ports, logs, strict=True):  # one after the other, as the compose file starts them
                config = Path(tmp) / f"pacebot-{port}.toml"
                config.write_text(
                    f'[storage]\nurl = "{url}"\ndata_dir = "{tmp}/data"\n'
                    f"[server]\nport = {port}\n[scheduler]\nenabled = false\n[wecom]\n{lines}\n", encoding="utf-8")
                servers.append(start_server(config, tmp, log))
                for _ in range(300):
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                            if resp.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.2)
                else:
                    raise SystemExit(f"server on port {port} did not start; see {log}")
            targets = [f"http://127.0.0.1:{port}/wecom/callback" for port in ports]
            n = int(rate * seconds)

            def batch(phase: str, count: int) -> list[tuple[dict[str, str], bytes]]:
                return [fakes.encrypted_callback(crypto, fakes.text_xml(f"user{i % 20}", "华东建材 张总 电话沟通报价",
                                                                        f"{tag}-{phase}-{i}"))
                        for i in range(count)]

            await offer(http, targets, batch("warm", 2 * len(targets) * 10), rate)
            for size in (0, *connections):
                callbacks = batch(f"flood{size}", n)
                flooder = None
                if size:
                    flooder = await asyncio.create_subprocess_exec(
                        sys.executable, __file__, "_flood", str(ports[0]), str(size), str(seconds + 1.5),
                        stdout=subprocess.PIPE)
                    await asyncio.sleep(0.75)  # the flood is under way before the first genuine callback
                log_lines = line_count(logs)
                cpu = sum(cpu_seconds(server.pid) for server in servers)
                latencies, failures, elapsed = await offer(http, targets, callbacks, rate)
                cpu = sum(cpu_seconds(server.pid) for server in servers) - cpu
                log_lines = line_count(logs) - log_lines
                refused = "-"
                if flooder is not None:
                    out, _ = await flooder.communicate()
                    report = json.loads(out)
                    counts = report["counts"]
                    refusals = sum(v for k, v in counts.items() if k.isdigit() and k != "200")
                    refused = f"{refusals / report['elapsed']:7.0f}"
                    if counts.get("200"):
                        raise SystemExit(f"the flood was accepted: {counts}")
                latencies.sort()
                late = sum(1 for v in latencies if v > 1.0)
                print(f"{store:10s} {replicas:>3d} {size or '-':>5} "
                      f"{n / elapsed:9.1f} {len(latencies) / elapsed:7.1f} "
                      f"{percentile(latencies, 0.5) * 1000:7.1f} {percentile(latencies, 0.99) * 1000:7.1f} "
                      f"{latencies[-1] * 1000:7.1f} {late + failures:>6d} {refused:>8s} "
                      f"{cpu / elapsed:8.2f} {log_lines:>5d} {os.getloadavg()[0]:5.1f}", flush=True)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(30)
        await fake.close()


def flood(rate: float, seconds: float, connections: list[int]) -> None:
    sizes = " or ".join(str(c) for c in connections)
    print(f"signed WeCom callbacks offered at {rate:.0f}/s for {seconds:.0f} s per row (open loop, round robin over "
          f"the replicas), alone and beside an unsigned flood of {sizes} connections to replica 1\n"
          f"(flood kinds in turn: {', '.join(FLOOD_KINDS)}); latency = due → 200; 'late' = over 1 s or not "
          f"acknowledged; CPU = all server processes' CPU seconds per second; log = server log lines in the row; "
          f"load = 1-min load average after the row")
    print(f"{'store':10s} {'rep':>3s} {'flood':>5s} {'offered/s':>9s} {'acked/s':>7s} {'p50 ms':>7s} {'p99 ms':>7s} "
          f"{'max ms':>7s} {'late':>6s} {'refused/s':>8s} {'CPU s/s':>8s} {'log':>5s} {'load':>5s}", flush=True)
    kwargs = {"rate": rate, "seconds": seconds, "connections": connections}

    async def on_sqlite() -> None:
        with tempfile.TemporaryDirectory(prefix="pacebot-flood-") as tmp:
            await flood_matrix_cell("SQLite", f"sqlite+aiosqlite:///{tmp}/b.db", 1, tmp=tmp, **kwargs)

    asyncio.run(on_sqlite())
    if not os.environ.get("PACEBOT_TEST_POSTGRES_URL"):
        print("PostgreSQL rows skipped: set PACEBOT_TEST_POSTGRES_URL")
        return

    async def on_postgres(replicas: int) -> None:
        from tests.pg import scratch_database

        with tempfile.TemporaryDirectory(prefix="pacebot-flood-") as tmp:
            async with scratch_database() as url:
                await flood_matrix_cell("PostgreSQL", url, replicas, tmp=tmp, **kwargs)

    for replicas in (1, 2):
        asyncio.run(on_postgres(replicas))


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", default="all", choices=("all", "images", "flood"))
    parser.add_argument("--rate", type=float, default=100, help="genuine callbacks offered per second (default 100)")
    parser.add_argument("--seconds", type=float, default=8, help="length of each row (default 8)")
    parser.add_argument("--connections", default="4,320",
                        help="flood sizes in connections, comma-separated (default 4,320)")
    args = parser.parse_args()
    try:
        connections = [int(c) for c in args.connections.split(",")]
    except ValueError:
        raise SystemExit("--connections: comma-separated numbers") from None
    if not (1 <= args.rate <= 2000 and 1 <= args.seconds <= 120 and all(1 <= c <= 512 for c in connections)):
        raise SystemExit("--rate must be 1..2000, --seconds 1..120, --connections 1..512 each")
    if args.what in ("all", "images"):
        images()
    if args.what in ("all", "flood"):
        flood(args.rate, args.seconds, connections)


if __name__ == "__main__":
    if sys.argv[1:2] == ["_image"]:
        image_scenario(sys.argv[2])
    elif sys.argv[1:2] == ["_make_images"]:
        make_images()
    elif sys.argv[1:2] == ["_flood"]:
        flood_process(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    else:
        main()
