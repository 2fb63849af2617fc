"""Hostile load: memory of image decoding, and genuine WeCom callbacks during an unsigned flood.

    .venv/bin/python bench/bench_security.py            # both parts
    .venv/bin/python bench/bench_security.py images     # RSS before / peak / after per image scenario
    .venv/bin/python bench/bench_security.py flood      # ack latency of signed callbacks beside a flood

Images: each scenario runs in a fresh process (so peaks do not mask each other) and prints the RSS
before, the peak (ru_maxrss) and the RSS after storing. Flood: `pacebot serve` processes with WeCom
enabled (1 on SQLite; 1 and 2 on PostgreSQL when PACEBOT_TEST_POSTGRES_URL is set); N connections send
1 MB deeply nested unsigned bodies to the first as fast as they can while signed callbacks are sent
one at a time, round robin; prints callbacks/s and their acknowledgement latency.
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import statistics
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


def start_server(config: Path, cwd: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(Path(sys.executable).with_name("pacebot")), "--config", str(config), "serve"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)


async def flood_run(flooders: int, *, replicas: int = 1, postgres: str = "", genuine: int = 200) -> None:
    """Signed callbacks, round robin over the replicas, while ``flooders`` connections flood replica 1."""
    import aiohttp

    from tests.fakes import wecom as fakes

    crypto = fakes.default_crypto()
    fake = fakes.FakeWeCom()
    await fake.start()
    ports = [free_port() for _ in range(replicas)]
    servers: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        wecom = fakes.wecom_config(fake.base_url)
        lines = "\n".join(f"{k} = {v!r}".replace("'", '"') if isinstance(v, str) else f"{k} = {str(v).lower()}"
                          for k, v in wecom.items())
        url = postgres or f"sqlite+aiosqlite:///{tmp}/b.db"
        try:
            async with aiohttp.ClientSession() as http:
                for port in ports:  # one after the other, as the compose file starts them
                    config = Path(tmp) / f"pacebot-{port}.toml"
                    config.write_text(
                        f'[storage]\nurl = "{url}"\ndata_dir = "{tmp}/data"\n'
                        f"[server]\nport = {port}\n[scheduler]\nenabled = false\n[wecom]\n{lines}\n", encoding="utf-8")
                    servers.append(start_server(config, tmp))
                    for _ in range(300):
                        try:
                            if (await http.get(f"http://127.0.0.1:{port}/healthz")).status == 200:
                                break
                        except aiohttp.ClientError:
                            pass
                        await asyncio.sleep(0.2)
                targets = [f"http://127.0.0.1:{port}/wecom/callback" for port in ports]
                depth = 1_000_000 // 7
                body = b"<a>" * depth + b"x" + b"</a>" * depth
                stop = asyncio.Event()
                sent = [0]

                async def flood() -> None:
                    params = {"msg_signature": "0" * 40, "timestamp": str(int(time.time())), "nonce": "1"}
                    while not stop.is_set():
                        async with http.post(targets[0], params=params, data=body) as resp:
                            await resp.read()
                        sent[0] += 1

                tasks = [asyncio.create_task(flood()) for _ in range(flooders)]
                await asyncio.sleep(1.0 if flooders else 0)
                latencies = []
                started = time.perf_counter()
                tag = f"{replicas}-{flooders}-{int(started)}"
                for i in range(genuine):
                    params, signed = fakes.encrypted_callback(crypto, fakes.text_xml("LiMing", "你好", f"g-{tag}-{i}"))
                    t0 = time.perf_counter()
                    async with http.post(targets[i % replicas], params=params, data=signed) as resp:
                        assert resp.status == 200, resp.status
                    latencies.append(time.perf_counter() - t0)
                elapsed = time.perf_counter() - started
                stop.set()
                await asyncio.gather(*tasks)
            latencies.sort()
            p99 = latencies[int(len(latencies) * 0.99) - 1]
            store = "PostgreSQL" if postgres else "SQLite"
            print(f"{store:10s} replicas {replicas} flood connections {flooders}: {genuine / elapsed:6.1f} callbacks/s, "
                  f"ack p50 {statistics.median(latencies) * 1000:6.1f} ms  p99 {p99 * 1000:6.1f} ms  "
                  f"max {latencies[-1] * 1000:6.1f} ms; unsigned 1 MB bodies refused: {sent[0]}")
        finally:
            for server in servers:
                server.terminate()
                server.wait(30)
            await fake.close()


async def scratch_postgres() -> Any:
    from tests.pg import scratch_database

    return scratch_database()


def flood() -> None:
    print("signed WeCom callbacks (one at a time) beside an unsigned flood of 1 MB deeply nested bodies")
    for flooders in (0, 1, 4):
        asyncio.run(flood_run(flooders))
    if not os.environ.get("PACEBOT_TEST_POSTGRES_URL"):
        print("PostgreSQL runs skipped: set PACEBOT_TEST_POSTGRES_URL")
        return

    async def on_postgres(replicas: int, flooders: int) -> None:
        async with await scratch_postgres() as url:
            await flood_run(flooders, replicas=replicas, postgres=url)

    for replicas in (1, 2):
        for flooders in (0, 4):
            asyncio.run(on_postgres(replicas, flooders))


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if what == "_image":
        image_scenario(sys.argv[2])
    elif what == "_make_images":
        make_images()
    else:
        if what in ("all", "images"):
            images()
        if what in ("all", "flood"):
            flood()
