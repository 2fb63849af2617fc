"""Benchmark: the whole pipeline under sustained load — callback → touch → reply delivered.

Signed, encrypted WeCom text callbacks are offered at fixed rates (open loop: sent on schedule,
whether or not earlier ones were answered) to the real app running in its own process, with
inbox and outbox workers on; replies go to the fake WeCom server (tests/fakes/wecom.py), itself
in a third process. Each message names one of its rep's customers and a next action, so each
one is a complete touch answered by a confirmation card.

Per rate it prints, over the measured window (after a short warm-up):

  touches/s    touches stored per second
  replies/s    replies the fake WeCom server received per second
  acked/s      callbacks acknowledged per second over the whole offer (what the load generator
               managed to offer; below the target rate when the machine is saturated)
  backlog/s    slope of the inbox backlog (pending items) per second — near 0 means keeping pace
  cpu ms/touch the server process's CPU time (user + system, from psutil) per touch stored
  server cpu   the server processes' CPU, in % of one core
  latency ms   mean time from a callback's arrival to the commit of its touch (the servers' own
               histogram, /metrics), and the histogram bound its 95th percentile is under

then where the rest of the machine's CPU went (% of one core): this load generator, the fake WeCom
server, PostgreSQL's processes, and what was left idle — on a small machine they share the
servers' cores, and that bounds what another replica can add. Also, measured in the same run, the parser's own messages/s (customer match + parse_touch on the
same messages and customer lists), the ceiling no pipeline can pass.

Each rate starts from a fresh database (SQLite file, or a PostgreSQL database created for it),
so a backlog left by one rate does not weigh on the next.

    .venv/bin/python bench/bench_pipeline.py [--rates 50,100,200,400,800] [--seconds 10]
        [--store sqlite | --store postgresql+asyncpg://postgres@127.0.0.1:5432/test]
        [--replicas 1] [--replica-cpu SHARE] [--set SECTION.KEY=VALUE] [--reps 200] [--customers-per-rep 10]

With PostgreSQL, ``--replicas 2`` runs two server processes on one database and spreads the
callbacks over both. ``--py-spy PREFIX`` samples the server over each measured window; with
``PACEBOT_BENCH_CPROFILE=PREFIX`` in the environment each server writes a cProfile file instead.
``--replica-cpu 0.5`` caps each server process at half a core (a cgroup of its own; root only), so
that one replica and two can be compared with the same CPU each while the database and the load
generator keep the rest. ``--set inbox.workers=2`` (repeatable) changes a server setting.
``PACEBOT_BENCH_SPLIT=PREFIX`` writes the event loop's CPU by pipeline stage (accept, inbox claim,
handle, outbox claim, send, record) and ``PACEBOT_BENCH_STATEMENTS=PREFIX`` the SQL statements run,
by verb and table, with the time until each was answered, to PREFIX.<pid>.txt per server.
Everything listens on 127.0.0.1 only; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import cProfile
import datetime as dt
import json
import logging
import multiprocessing as mp
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes import wecom as fakes  # noqa: E402

PATH = "/wecom/callback"
HEADS = "华东 华西 华南 鑫达 恒通 金地 宏远 明远 东方 长江 黄河 蓝天 绿源 永兴 昌盛 万通 天成 瑞丰 汇金 广源".split()
TRADES = "建材 装饰 贸易 物流 置业 科技 机械 五金 电气 管业 石材 涂料 门窗 钢构 陶瓷".split()
SURNAMES = "张王李赵刘陈杨黄周吴徐孙马朱胡郭何高林罗"
CHANNELS = ["电话20分钟", "微信", "上门拜访一个小时", "电话半小时", "视频通话十分钟"]
DONE = ["聊了报价细节", "介绍了新品", "发了定制方案", "确认需求", "演示产品"]
NEXT = ["下周三上门拜访", "三天后发报价单", "下月初签合同", "两周后送样品", "明天电话回访"]


@dataclass(frozen=True)
class Org:
    reps: list[str]  # WeCom user ids
    customers: dict[str, list[tuple[str, str]]]  # user id → [(customer name, contact)]


def make_org(reps: int, per_rep: int, seed: int = 13) -> Org:
    rng = random.Random(seed)
    userids = [f"rep{i:04d}" for i in range(reps)]
    customers: dict[str, list[tuple[str, str]]] = {}
    for userid in userids:
        names: set[str] = set()
        while len(names) < per_rep:
            names.add(f"{rng.choice(HEADS)}{rng.choice(HEADS)[1]}{rng.choice(TRADES)}")
        customers[userid] = [(name, rng.choice(SURNAMES) + "总") for name in sorted(names)]
    return Org(userids, customers)


def make_messages(org: Org, n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        userid = rng.choice(org.reps)
        name, contact = rng.choice(org.customers[userid])
        out.append((userid, f"{name} {contact} {rng.choice(CHANNELS)} {rng.choice(DONE)},{rng.choice(NEXT)}"))
    return out


# ---------------------------------------------------------------------- the parser's ceiling


def parser_rate(org: Org, messages: list[tuple[str, str]]) -> float:
    from domain.parsing.customers import CustomerIndex, CustomerName, match_customer
    from domain.parsing.touch import parse_touch

    ids = iter(range(1, 10**9))
    indexes = {
        userid: CustomerIndex([CustomerName(next(ids), name, (), (contact,)) for name, contact in names])
        for userid, names in org.customers.items()
    }
    today = dt.date(2026, 11, 30)
    started = time.perf_counter()
    for userid, text in messages:
        match = match_customer(text, indexes[userid])
        parse_touch(text, today, match.span if match.status == "matched" else None)
    return len(messages) / (time.perf_counter() - started)


# ---------------------------------------------------------------------- fake WeCom process


def serve_fake(conn) -> None:  # type: ignore[no-untyped-def]
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve_fake(conn))


async def _serve_fake(conn) -> None:  # type: ignore[no-untyped-def]
    fake = fakes.FakeWeCom()
    base_url = await fake.start()
    conn.send(base_url)
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "count":
            conn.send(len(fake.messages) + len(fake.duplicates) + len(fake.card_updates))
        else:
            break
    await fake.close()


@dataclass
class FakeProcess:
    """The fake WeCom server in its own process: its base URL, the pipe its counts are read on
    (send "count", receive the number of messages it got), its pid."""

    base_url: str
    conn: Any
    pid: int


@contextlib.contextmanager
def fake_wecom_and_work_dir(prefix: str) -> Iterator[tuple[FakeProcess, str]]:
    """Start the fake WeCom process and make a scratch folder; stop and remove both afterwards."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    fake = ctx.Process(target=serve_fake, args=(child,), daemon=True)
    fake.start()
    work_dir = ""
    try:
        if not parent.poll(60):
            raise SystemExit("fake WeCom did not start")
        base_url = parent.recv()
        work_dir = tempfile.mkdtemp(prefix=prefix)
        yield FakeProcess(base_url, parent, fake.pid or 0), work_dir
    finally:
        parent.send("stop")
        shutil.rmtree(work_dir, ignore_errors=True)
        fake.join(30)
        if fake.is_alive():
            fake.terminate()


# ---------------------------------------------------------------------- server process


def serve_app(url: str, data_dir: str, wecom_base: str, org: Org | None, settings: dict[str, dict[str, Any]],  # type: ignore[no-untyped-def]
              conn) -> None:
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve_app(url, data_dir, wecom_base, org, settings, conn))


async def _serve_app(url: str, data_dir: str, wecom_base: str, org: Org | None,  # type: ignore[no-untyped-def]
                     settings: dict[str, dict[str, Any]], conn) -> None:
    from aiohttp import web

    from bot.app import create_app
    from bot.appkeys import RUNTIME
    from bot.config import config_from_dict

    raw: dict[str, dict[str, Any]] = {
        "storage": {"url": url, "data_dir": data_dir},
        "console": {"enabled": False},
        "scheduler": {"enabled": False},
        # The bench measures throughput, not WeCom's per-person quotas: those are raised so that
        # a few hundred reps can receive a few hundred replies a second.
        "wecom": fakes.wecom_config(wecom_base, member_per_minute=10**6, member_per_hour=10**7,
                                    duplicate_check_seconds=0),
    }
    for section, values in settings.items():
        raw[section] = {**raw.get(section, {}), **values}
    config = config_from_dict(raw)
    split = _split_cpu() if os.environ.get("PACEBOT_BENCH_SPLIT") and org is None else None
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    if org is not None:
        await _seed(app[RUNTIME], org)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    statements = _count_statements(app[RUNTIME].engine) if os.environ.get("PACEBOT_BENCH_STATEMENTS") else None
    profile_to = os.environ.get("PACEBOT_BENCH_CPROFILE")
    profiler = cProfile.Profile() if profile_to and org is None else None
    if profiler is not None:
        profiler.enable()
    conn.send(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told to stop
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(f"{profile_to}.{os.getpid()}.prof")
    if split is not None:
        Path(f"{os.environ['PACEBOT_BENCH_SPLIT']}.{os.getpid()}.txt").write_text("".join(
            f"{name:40s} {calls:8d} calls {seconds * 1000:10.1f} ms CPU\n" for name, (calls, seconds) in sorted(split.items())
        ), encoding="utf-8")
    if statements is not None:
        Path(f"{os.environ['PACEBOT_BENCH_STATEMENTS']}.{os.getpid()}.txt").write_text("".join(
            f"{n:8.0f} {seconds * 1000:10.1f} ms {kind} {table}\n"
            for (kind, table), (n, seconds) in sorted(statements.items(), key=lambda item: -item[1][1])
        ), encoding="utf-8")
    await runner.cleanup()


def _split_cpu() -> dict[str, list[float]]:
    """The event loop thread's CPU by task and stage (``PACEBOT_BENCH_SPLIT=PREFIX``).

    Every callback the loop runs is timed and charged to the task it steps (the worker loops by
    name, other tasks by coroutine; callbacks outside any task — socket reads, futures set from
    threads — to "loop") and to the pipeline stage that task was in when the step ended (set by
    wrappers around the stages' functions).
    """
    import contextvars

    from bot import addressing, dispatcher, inbox, outbox
    from storage import inbox as inbox_store
    from storage import outbox as outbox_store

    stage: contextvars.ContextVar[str] = contextvars.ContextVar("bench_stage", default="-")
    loop = asyncio.get_running_loop()
    # Python tasks, whose step callbacks name their task.
    loop.set_task_factory(lambda lp, coro, **kw: asyncio.tasks._PyTask(coro, loop=lp, **kw))  # type: ignore[attr-defined]
    split: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    original = asyncio.events.Handle._run

    def label(handle: asyncio.Handle) -> str:
        task = getattr(getattr(handle, "_callback", None), "__self__", None)
        if not isinstance(task, asyncio.Task):
            name = "loop"
        elif not task.get_name().startswith("Task-"):
            name = task.get_name().rstrip("0123456789-")
        else:
            name = getattr(task.get_coro(), "__qualname__", "?")
        return f"{name} / {handle._context.get(stage)}"  # type: ignore[attr-defined]

    def timed(handle: asyncio.Handle) -> None:
        started = time.thread_time()
        try:
            original(handle)
        finally:
            entry = split[label(handle)]
            entry[0] += 1
            entry[1] += time.thread_time() - started

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]

    def wrap(owner: Any, name: str, label: str) -> None:
        function = getattr(owner, name)

        async def staged(*args: Any, **kwargs: Any) -> Any:
            token = stage.set(label)
            started = time.thread_time()
            try:
                return await function(*args, **kwargs)
            finally:
                stage.reset(token)
                # Inclusive, and counting other tasks' steps too if this one yielded meanwhile
                # (the database calls of a write transaction do not yield).
                entry = split[f"(inclusive) {label}"]
                entry[0] += 1
                entry[1] += time.thread_time() - started

        setattr(owner, name, staged)

    wrap(inbox.Inbox, "process_due", "inbox: claim txn")
    wrap(inbox.Inbox, "_commit_batch", "inbox: handle txn (rest)")
    wrap(dispatcher.Dispatcher, "dispatch", "inbox: handler")
    wrap(addressing.ReplyRouter, "enqueue", "inbox: queue replies")
    wrap(inbox_store, "finish_many", "inbox: finish")
    wrap(inbox_store, "any_pending", "inbox: successor check")
    wrap(inbox.Inbox, "_commit", "accept: group commit")
    wrap(inbox.Inbox, "accept", "accept: wait")
    wrap(outbox.OutboxWorker, "deliver_due", "outbox: claim txn")
    wrap(outbox_store, "claim_heads", "outbox: claim statement")
    wrap(outbox_store, "sent_counts_within", "outbox: rate-limit counts")
    wrap(inbox_store, "claim_heads", "inbox: claim statement")
    wrap(outbox.OutboxWorker, "_send", "outbox: send")
    wrap(outbox_store, "mark_sent_many", "outbox: record")
    wrap(outbox_store, "any_unsent", "outbox: successor check")
    return split


def _count_statements(engine: Any) -> collections.defaultdict[tuple[str, str], list[float]]:
    """Statements the server runs, by verb and first table: [count, seconds until answered]
    (``PACEBOT_BENCH_STATEMENTS=PREFIX``; the seconds include the database's work and the wait)."""
    from sqlalchemy import event

    counts: collections.defaultdict[tuple[str, str], list[float]] = collections.defaultdict(lambda: [0, 0.0])

    def key(statement: str) -> tuple[str, str]:
        words = statement.split()
        verb = words[0].upper() if words else ""
        table = next((w for i, w in enumerate(words[1:]) if words[i].upper() in ("FROM", "INTO", "UPDATE")), "")
        return verb, table.strip('"')

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _start(conn, _cursor, _statement, _params, _context, _many) -> None:  # type: ignore[no-untyped-def]
        conn.info["bench_started"] = time.perf_counter()

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def _count(conn, _cursor, statement, _params, _context, _many) -> None:  # type: ignore[no-untyped-def]
        entry = counts[key(statement)]
        entry[0] += 1
        entry[1] += time.perf_counter() - conn.info.pop("bench_started", time.perf_counter())

    @event.listens_for(engine.sync_engine, "commit")
    def _commit(_conn) -> None:  # type: ignore[no-untyped-def]
        counts[("COMMIT", "")][0] += 1

    return counts


async def _seed(runtime: Any, org: Org) -> None:
    from storage import customers as customer_store
    from storage import members as member_store
    from storage.org import load_directory

    directory = {
        "teams": [{"key": f"t{t}", "name": f"第{t}组", "manager": f"mgr.{t}"} for t in range(len(org.reps) // 20 + 1)],
        "members": [
            *({"code": f"mgr.{t}", "name": f"经理{t}", "role": "manager", "team": f"t{t}"}
              for t in range(len(org.reps) // 20 + 1)),
            *({"code": f"rep.{u}", "name": f"销售{u}", "role": "rep", "team": f"t{i // 20}", "wecom_userid": u}
              for i, u in enumerate(org.reps)),
        ],
    }
    now = runtime.clock.now()
    async with runtime.sessions() as session, session.begin():
        await load_directory(session, directory, now=now)
    async with runtime.sessions() as session, session.begin():
        for userid in org.reps:
            member = await member_store.member_by_code(session, f"rep.{userid}")
            for name, contact in org.customers[userid]:
                customer = await customer_store.create_lead(session, owner_id=member.id, name=name, now=now)
                customer.contacts = [contact]
                customer.last_touch_at = now


# ---------------------------------------------------------------------- probes


class Probe:
    """Counts read straight from the database, the fake platform and the server processes."""

    def __init__(self, url: str, fake_conn, pids: list[int], fake_pid: int,  # type: ignore[no-untyped-def]
                 ports: list[int]) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        self.engine = create_async_engine(url)
        self.ports = ports
        self.http = aiohttp.ClientSession()
        self.fake_conn = fake_conn
        self.processes = [psutil.Process(pid) for pid in pids]
        self.load_generator = psutil.Process()
        self.fake = psutil.Process(fake_pid)

    async def sample(self) -> dict[str, float]:
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            touches = (await conn.execute(text("SELECT count(*) FROM touches"))).scalar_one()
            pending = (await conn.execute(text("SELECT count(*) FROM inbox WHERE status = 'pending'"))).scalar_one()
        self.fake_conn.send("count")
        replies = self.fake_conn.recv()
        machine = psutil.cpu_times()
        latency = await self.processing_latency()
        return {"t": time.perf_counter(), "touches": touches, "pending": pending, "replies": replies, **latency,
                "cpu": sum(_cpu(p) for p in self.processes), "load_generator": _cpu(self.load_generator),
                "fake": _cpu(self.fake), "database": _postgres_cpu(), "idle": machine.idle + machine.iowait}

    async def processing_latency(self) -> dict[str, float]:
        """The servers' own histogram of arrival → processing commit (``/metrics``), summed over
        the replicas: ``latency_count``, ``latency_sum`` and ``latency_le_<bound>`` per bucket."""
        totals: dict[str, float] = collections.defaultdict(float)
        for port in self.ports:
            async with self.http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                text = await resp.text()
            for line in text.splitlines():
                if not line.startswith(LATENCY_METRIC):
                    continue
                name, value = line.rsplit(" ", 1)
                if name.startswith(LATENCY_METRIC + "_count"):
                    totals["latency_count"] += float(value)
                elif name.startswith(LATENCY_METRIC + "_sum"):
                    totals["latency_sum"] += float(value)
                elif name.startswith(LATENCY_METRIC + "_bucket"):
                    bound = name.split('le="', 1)[1].split('"', 1)[0]
                    totals[f"latency_le_{bound}"] += float(value)
        return totals

    async def close(self) -> None:
        await self.http.close()
        await self.engine.dispose()


LATENCY_METRIC = "pacebot_inbox_processing_latency_seconds"


def latency_figures(first: dict[str, float], last: dict[str, float]) -> tuple[float, float]:
    """Mean and 95th percentile (the upper bound of its histogram bucket) of the processing
    latency of the items finished between two samples, in ms."""
    count = last.get("latency_count", 0.0) - first.get("latency_count", 0.0)
    if count <= 0:
        return float("nan"), float("nan")
    mean = (last["latency_sum"] - first.get("latency_sum", 0.0)) / count
    bounds = sorted((float(key.removeprefix("latency_le_")), key) for key in last if key.startswith("latency_le_"))
    p95 = float("inf")
    for bound, key in bounds:
        if last[key] - first.get(key, 0.0) >= 0.95 * count:
            p95 = bound
            break
    return mean * 1000, p95 * 1000


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _postgres_cpu() -> float:
    """CPU of every PostgreSQL process on the machine (its backends serve the servers' connections)."""
    total = 0.0
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "postgres":
            try:
                total += _cpu(process)
            except psutil.Error:
                pass
    return total


async def offer(ports: list[int], callbacks: list[tuple[dict[str, str], bytes]], rate: float,
                in_flight: int) -> tuple[int, int]:
    """Send ``callbacks`` at ``rate``/s, round robin over ``ports``; (acknowledged, refused)."""
    ok = refused = 0
    slots = asyncio.Semaphore(in_flight)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight)) as session:

        async def one(port: int, params: dict[str, str], body: bytes) -> None:
            nonlocal ok, refused
            try:
                async with session.post(f"http://127.0.0.1:{port}{PATH}", params=params, data=body) as resp:
                    await resp.read()
                    ok += resp.status == 200
                    refused += resp.status != 200
            except aiohttp.ClientError:
                refused += 1
            finally:
                slots.release()

        loop = asyncio.get_running_loop()
        began = loop.time()
        tasks = []
        for i, (params, body) in enumerate(callbacks):
            delay = began + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            tasks.append(asyncio.create_task(one(ports[i % len(ports)], params, body)))
        await asyncio.gather(*tasks)
    return ok, refused


# ---------------------------------------------------------------------- one rate


async def _create_database(admin_url: str, name: str, template: str | None = None) -> str:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    await engine.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name


def start_servers(url: str, data_dir: str, fake_base: str, org: Org | None, replicas: int,  # type: ignore[type-arg]
                  settings: dict[str, dict[str, Any]]) -> tuple[list, list, list]:
    ctx = mp.get_context("spawn")
    servers, conns, ports = [], [], []
    for replica in range(replicas):
        parent, child = ctx.Pipe()
        server = ctx.Process(target=serve_app, args=(url, f"{data_dir}/r{replica}", fake_base, org, settings, child), daemon=True)
        server.start()
        servers.append(server)
        conns.append(parent)
        if not parent.poll(600):
            raise SystemExit("server did not start")
        ports.append(parent.recv())
    return servers, conns, ports


class CpuCap:
    """Each server process in a cgroup of its own, allowed ``share`` of one core (root only).

    On a machine whose cores the database, the load generator and the fake platform share with
    the servers, adding a replica also takes CPU from them, and the replicas' scaling cannot be
    told from the machine running out. With a cap, one replica and two get the same CPU each and
    the rest of the machine keeps what is left: the figures then say whether replicas slow each
    other down (through the database, their claims, their wake-ups), as on separate machines.
    """

    # The kernel's default period, which container runtimes use for a CPU limit too.
    PERIOD_US = 100_000
    V1 = Path("/sys/fs/cgroup/cpu")  # cgroup v1: the cpu controller's own hierarchy
    V2 = Path("/sys/fs/cgroup")  # cgroup v2: one unified hierarchy

    def __init__(self, share: float) -> None:
        self.share = share
        self.groups: list[Path] = []
        controllers = self.V2 / "cgroup.controllers"
        if (self.V1 / "cpu.cfs_quota_us").exists():
            self.root, self.v2 = self.V1, False
        elif controllers.exists() and "cpu" in controllers.read_text(encoding="ascii").split():
            self.root, self.v2 = self.V2, True
        else:
            raise SystemExit("--replica-cpu needs the cgroup cpu controller (v1 or v2)")

    def confine(self, pid: int) -> None:
        group = self.root / f"pacebot-bench-{pid}"
        try:
            group.mkdir()
            self.groups.append(group)  # removed by release() even if the rest fails
            period = self.PERIOD_US
            if self.v2:
                (group / "cpu.max").write_text(f"{int(self.share * period)} {period}", encoding="ascii")
            else:
                (group / "cpu.cfs_period_us").write_text(str(period), encoding="ascii")
                (group / "cpu.cfs_quota_us").write_text(str(int(self.share * period)), encoding="ascii")
            (group / "cgroup.procs").write_text(str(pid), encoding="ascii")
        except OSError as exc:
            raise SystemExit(f"--replica-cpu: cannot set up the cgroup {group}: {exc} (root is needed)") from exc

    def release(self) -> None:
        for group in self.groups:
            # A group is removed once its processes have exited (or been moved back to the root).
            for pid in (group / "cgroup.procs").read_text(encoding="ascii").split():
                (self.root / "cgroup.procs").write_text(pid, encoding="ascii")
            group.rmdir()
        self.groups.clear()


def stop_servers(servers: list, conns: list) -> None:  # type: ignore[type-arg]
    for conn in conns:
        conn.send("stop")
    for server in servers:
        server.join(60)
        if server.is_alive():
            server.terminate()


def seed_template(args: argparse.Namespace, org: Org, fake_base: str, work_dir: str) -> str:
    """Migrate and seed once; each rate then starts from a copy."""
    if args.store == "sqlite":
        url = f"sqlite+aiosqlite:///{work_dir}/template.db"
    else:
        url = asyncio.run(_create_database(args.store, "bench_pipeline_template"))
    servers, conns, _ = start_servers(url, f"{work_dir}/seed", fake_base, org, 1, args.settings)
    stop_servers(servers, conns)
    return url


def fresh_copy(args: argparse.Namespace, template_url: str, work_dir: str, rate: int) -> str:
    if args.store != "sqlite":
        return asyncio.run(_create_database(args.store, f"bench_pipeline_{rate}", "bench_pipeline_template"))
    target = Path(work_dir) / f"rate{rate}.db"
    source = sqlite3.connect(template_url.split(":///", 1)[1])
    with sqlite3.connect(target) as copy:
        source.backup(copy)
    source.close()
    return f"sqlite+aiosqlite:///{target}"


def run_rate(args: argparse.Namespace, org: Org, rate: int, fake_base: str, fake_conn, fake_pid: int,  # type: ignore[no-untyped-def]
             template_url: str, work_dir: str) -> dict[str, float]:
    url = fresh_copy(args, template_url, work_dir, rate)
    cap = CpuCap(args.replica_cpu) if args.replica_cpu else None
    servers, conns, ports = start_servers(url, f"{work_dir}/rate{rate}", fake_base, None, args.replicas, args.settings)
    try:
        for server in servers if cap else []:
            cap.confine(server.pid)  # type: ignore[union-attr]
        crypto = fakes.default_crypto()
        total = int(rate * args.seconds)
        messages = make_messages(org, total, seed=rate)
        callbacks = [
            fakes.encrypted_callback(crypto, fakes.text_xml(userid, text, f"p{rate}-{i}"))
            for i, (userid, text) in enumerate(messages)
        ]
        return asyncio.run(_measure(args, url, ports, [s.pid for s in servers], callbacks, rate, fake_conn,
                                   fake_pid))
    finally:
        stop_servers(servers, conns)
        if cap is not None:
            cap.release()


async def _measure(args: argparse.Namespace, url: str, ports: list[int], pids: list[int],
                   callbacks: list[tuple[dict[str, str], bytes]], rate: int, fake_conn,  # type: ignore[no-untyped-def]
                   fake_pid: int) -> dict[str, float]:
    probe = Probe(url, fake_conn, pids, fake_pid, ports)
    try:
        began = time.perf_counter()
        sending = asyncio.create_task(offer(ports, callbacks, rate, args.in_flight))
        await asyncio.sleep(args.warmup)
        first = await probe.sample()
        spy = None
        if args.py_spy:
            # Where the server's time goes, sampled over the measured window (raw collapsed stacks).
            spy = await asyncio.create_subprocess_exec(
                args.py_spy_bin, "record", "--pid", str(pids[0]), "--duration", str(int(args.seconds - args.warmup)),
                "--format", "raw", "--rate", "250", "--nonblocking", "-o", f"{args.py_spy}.{rate}.txt",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
        ok, refused = await sending
        offered_for = time.perf_counter() - began
        last = await probe.sample()
        if spy is not None:
            await spy.wait()
        # After the offer: how long until everything offered is stored and answered (bounded).
        deadline = time.perf_counter() + args.drain_seconds
        drained = last
        while drained["pending"] and time.perf_counter() < deadline:
            await asyncio.sleep(0.5)
            drained = await probe.sample()
    finally:
        await probe.close()
    span = last["t"] - first["t"]
    touches = last["touches"] - first["touches"]
    return {
        "offered": len(callbacks),
        "acked": ok,
        "acked_per_s": ok / offered_for,
        "refused": refused,
        "touches_per_s": touches / span,
        "replies_per_s": (last["replies"] - first["replies"]) / span,
        "backlog_slope": (last["pending"] - first["pending"]) / span,
        "backlog_end": last["pending"],
        "cpu_ms_per_touch": (last["cpu"] - first["cpu"]) * 1000 / touches if touches else float("nan"),
        "cpu_share": (last["cpu"] - first["cpu"]) / span,
        **{f"{part}_share": (last[part] - first[part]) / span for part in ("load_generator", "fake", "database", "idle")},
        "left_pending": drained["pending"],
        **dict(zip(("latency_mean_ms", "latency_p95_ms"), latency_figures(first, last), strict=True)),
    }


def settings_from(overrides: list[str]) -> dict[str, dict[str, Any]]:
    settings: dict[str, dict[str, Any]] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        section, dot, name = key.partition(".")
        if not (sep and dot and section and name):
            raise SystemExit(f"--set {item!r}: expected SECTION.KEY=VALUE, e.g. inbox.workers=2")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        settings.setdefault(section, {})[name] = value
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="50,100,200,400,800", help="offered callbacks/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds each rate is offered (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before the measured window (default 2)")
    parser.add_argument("--drain-seconds", type=float, default=0.0,
                        help="after the offer, wait up to this long for the backlog to empty (default 0)")
    parser.add_argument("--store", default="sqlite", help="sqlite, or a postgresql+asyncpg:// URL (a database "
                        "named bench_pipeline_<rate> is created next to it)")
    parser.add_argument("--replicas", type=int, default=1, help="server processes (PostgreSQL only)")
    parser.add_argument("--replica-cpu", type=float, default=0.0, metavar="SHARE",
                        help="cap each server process at SHARE of one core (cgroup; root only), e.g. 0.5")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                        help="a server setting, e.g. inbox.workers=2 (a JSON value, else text); repeatable")
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--customers-per-rep", type=int, default=10)
    parser.add_argument("--in-flight", type=int, default=256, help="most callbacks awaiting an answer at once")
    parser.add_argument("--py-spy", default="", metavar="PREFIX",
                        help="sample the server with py-spy over each measured window into PREFIX.<rate>.txt")
    parser.add_argument("--py-spy-bin", default=str(Path(sys.executable).parent / "py-spy"))
    args = parser.parse_args()
    args.settings = settings_from(args.overrides)
    rates = [int(r) for r in args.rates.split(",")]
    if not all(1 <= r <= 5000 for r in rates) or not 1 <= args.seconds <= 600 or args.warmup >= args.seconds:
        raise SystemExit("rates must be 1..5000/s, --seconds 1..600 and longer than --warmup")
    if args.replicas != 1 and args.store == "sqlite":
        raise SystemExit("--replicas needs PostgreSQL")
    if args.replica_cpu and not 0.05 <= args.replica_cpu <= 4:
        raise SystemExit("--replica-cpu is a share of one core, 0.05..4 (0 = no cap)")
    if not 1 <= args.replicas <= 4 or not 1 <= args.reps <= 5000 or not 1 <= args.customers_per_rep <= 200:
        raise SystemExit("--replicas 1..4, --reps 1..5000, --customers-per-rep 1..200")

    if args.replica_cpu:
        CpuCap(args.replica_cpu)  # refused here, before anything starts, where it cannot work
    org = make_org(args.reps, args.customers_per_rep)
    ceiling = parser_rate(org, make_messages(org, 5000, seed=1))
    store = "SQLite" if args.store == "sqlite" else f"PostgreSQL, {args.replicas} replica(s)"
    print(f"pipeline on {store}: {args.reps} reps x {args.customers_per_rep} customers, "
          f"{args.seconds:.0f} s per rate, measured after {args.warmup:.0f} s")
    print(f"  parser ceiling (customer match + parse_touch, this run): {ceiling:,.0f} messages/s")
    print(f"  {'offered/s':>9} {'acked/s':>8} {'touches/s':>10} {'replies/s':>10} {'backlog/s':>10} {'cpu ms/touch':>13} "
          f"{'server cpu':>10} {'refused':>8} {'latency ms':>10} {'p95 ≤':>7}   rest of the machine: "
          f"{'load gen':>8} {'fake':>5} {'database':>8} {'idle':>5}")
    with fake_wecom_and_work_dir("pacebot-pipeline-") as (fake, work_dir):
        template_url = seed_template(args, org, fake.base_url, work_dir)
        for rate in rates:
            f = run_rate(args, org, rate, fake.base_url, fake.conn, fake.pid, template_url, work_dir)
            print(f"  {rate:>9} {f['acked_per_s']:>8.1f} {f['touches_per_s']:>10.1f} {f['replies_per_s']:>10.1f} {f['backlog_slope']:>+10.1f} "
                  f"{f['cpu_ms_per_touch']:>13.2f} {f['cpu_share'] * 100:>9.0f}% {f['refused']:>8.0f}"
                  f" {f['latency_mean_ms']:>10.0f} {f['latency_p95_ms']:>7.0f}{'':>22}{f['load_generator_share'] * 100:>7.0f}% {f['fake_share'] * 100:>4.0f}%"
                  f" {f['database_share'] * 100:>7.0f}% {f['idle_share'] * 100:>4.0f}%"
                  + (f"   (still pending after drain: {f['left_pending']:.0f})" if args.drain_seconds else ""),
                  flush=True)


if __name__ == "__main__":
    main()
