"""Real ``pacebot serve`` processes for fault tests: start, kill -9, restart, on one database.

A ``Cluster`` writes one configuration file (short leases and back-off, the fake WeCom server as the
platform, an org directory of its own), seeds the database in this process (migrated from the
session's template, see ``tests/migrated.py``), and runs replicas on loopback ports. Helpers poll
with deadlines; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import TEST_CLOCK_OFFSET_ENV
from storage import customers as customer_store
from storage import members as member_store
from storage.db import create_engine
from storage.migrate import upgrade
from storage.models import Customer
from storage.org import load_directory_file
from tests.fakes import wecom as fakes

PACEBOT = Path(sys.executable).with_name("pacebot")
CALLBACK = "/wecom/callback"

# Eight reps with WeCom accounts, each owning one customer; a manager and an admin. (At most one
# message per recipient is in flight, so more recipients make a shorter test of the same load.)
REPS = {"rep.a": ("RepA", "华东建材"), "rep.b": ("RepB", "南方电气"), "rep.c": ("RepC", "北辰科技"),
        "rep.d": ("RepD", "西部医疗"), "rep.e": ("RepE", "东海物流"), "rep.f": ("RepF", "中原粮油"),
        "rep.g": ("RepG", "江城教育"), "rep.h": ("RepH", "海天食品")}
ROBOT_KEY = "east-robot-faults"
DIRECTORY = f"""
[[teams]]
key = "east"
name = "华东一组"
manager = "mgr.wang"
group_chat = {{ wecom_webhook = "{ROBOT_KEY}" }}

[[members]]
code = "mgr.wang"
name = "王静"
role = "manager"
team = "east"
wecom_userid = "WangJing"

[[members]]
code = "admin.he"
name = "何敏"
role = "admin"
wecom_userid = "AdminHe"
""" + "".join(
    f'\n[[members]]\ncode = "{code}"\nname = "销售{code[-1].upper()}"\nrole = "rep"\nteam = "east"\nwecom_userid = "{uid}"\n'
    for code, (uid, _) in REPS.items()
)


def touch_text(customer: str, i: int) -> str:
    return f"{customer} 张总 电话{20 + i % 30}分钟 聊了报价细节,下周三上门拜访"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> None:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def until(predicate: Callable[[], Awaitable[bool]], what: str, timeout: float = 60.0,
                step: float = 0.1) -> None:
    """Poll ``predicate`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(step)


@dataclass
class Cluster:
    tmp: Path
    url: str
    fake: fakes.FakeWeCom
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    clock_offset: dt.timedelta | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    starts: int = 0

    def __post_init__(self) -> None:
        (self.tmp / "org.toml").write_text(DIRECTORY, encoding="utf-8")
        sections: dict[str, dict[str, Any]] = {
            "storage": {"url": self.url, "data_dir": str(self.tmp / "data")},
            "org": {"directory": str(self.tmp / "org.toml"), "timezone": "Asia/Shanghai"},
            "console": {"enabled": False},
            "log": {"level": "WARNING"},
            # Short leases, so a killed replica's work is taken over within seconds; polling only as
            # often as the tests need (a replica wakes its own workers when it stores something).
            "inbox": {"workers": 1, "lease_seconds": 5, "poll_seconds": 1.0},
            "outbox": {"workers": 1, "lease_seconds": 5, "poll_seconds": 1.0, "backoff_base_seconds": 0.5,
                       "backoff_max_seconds": 2.0},
            "scheduler": {"enabled": False},
            "wecom": {**fakes.wecom_config(self.fake.base_url), "member_per_minute": 10_000,
                      "member_per_hour": 100_000, "request_timeout_seconds": 2.0},
        }
        for section, values in self.overrides.items():
            sections.setdefault(section, {}).update(values)
        self.config = self.tmp / "pacebot.toml"
        write_config(self.config, sections)
        self.engine = create_engine(self.url)
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)

    async def seed(self, now: dt.datetime) -> None:
        """The schema (from the template), the directory, and one customer per rep."""
        await upgrade(self.engine)
        async with self.sessions() as session, session.begin():
            await load_directory_file(session, self.tmp / "org.toml", now=now)
        async with self.sessions() as session, session.begin():
            for code, (_, name) in REPS.items():
                member = await member_store.member_by_code(session, code)
                assert member is not None
                customer = await customer_store.create_lead(session, owner_id=member.id, name=name, now=now)
                customer.contacts = ["张总"]
                customer.last_touch_at = now
            assert len(list(await session.scalars(select(Customer)))) == len(REPS)

    def start(self, name: str) -> subprocess.Popen[bytes]:
        port = self.ports.setdefault(name, free_port())
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
        env["PACEBOT_CONFIG"] = str(self.config)
        if self.clock_offset is not None:
            env[TEST_CLOCK_OFFSET_ENV] = str(self.clock_offset.total_seconds())
        self.starts += 1
        log = open(self.tmp / f"{name}.{self.starts}.log", "wb")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen([str(PACEBOT), "serve", "--host", "127.0.0.1", "--port", str(port)],
                                   env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp)
        log.close()
        self.processes[name] = process
        return process

    def logs(self) -> str:
        return "".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.tmp.glob("*.log")))

    async def healthy(self, http: aiohttp.ClientSession, name: str, timeout: float = 60.0) -> None:
        process = self.processes[name]

        async def up() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n{self.logs()}")
            try:
                async with http.get(f"http://127.0.0.1:{self.ports[name]}/readyz") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await until(up, f"{name} to be ready\n{self.logs()}", timeout=timeout, step=0.2)

    def kill(self, name: str) -> None:
        """kill -9: no shutdown hook runs, leases stay taken, sends stay unrecorded."""
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    async def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        await self.engine.dispose()

    async def post(self, http: aiohttp.ClientSession, name: str, params: dict[str, str], body: bytes) -> int:
        """One delivery attempt of a callback to one replica: its status, or 0 when it did not answer."""
        try:
            async with http.post(f"http://127.0.0.1:{self.ports[name]}{CALLBACK}", params=params, data=body,
                                 timeout=aiohttp.ClientTimeout(total=5)) as resp:
                await resp.read()
                return resp.status
        except (TimeoutError, aiohttp.ClientError):
            return 0


def callback(sender: str, text: str, msg_id: str) -> tuple[dict[str, str], bytes]:
    return fakes.encrypted_callback(fakes.default_crypto(), fakes.text_xml(sender, text, msg_id))

