"""Faults survived by real ``pacebot serve`` replicas on PostgreSQL, and by one on SQLite (SPEC §11).

Each test runs real processes (``tests/replicas.py``) against a scratch PostgreSQL database (skipped
without PACEBOT_TEST_POSTGRES_URL) or a SQLite file, and the fake WeCom server, kills them with SIGKILL where it says so, and then counts, in the database and at
the fake platform, that nothing acknowledged was lost and nothing was done or delivered twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import re
import statistics
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import func, select

from domain.enums import InboxStatus, OutboxStatus
from storage.models import InboxItem, JobRun, OutboxItem, Touch
from tests.fakes import wecom as fakes
from tests.pg import POSTGRES_URL, SKIP_REASON, scratch_database
from tests.replicas import REPS, ROBOT_KEY, Cluster, callback, touch_text, until

# Real processes that mostly wait: one xdist worker runs them one after another while the
# others run the rest (scripts/test.sh starts one worker more than there are CPUs).
pytestmark = pytest.mark.xdist_group("processes")

SENDERS = [(uid, customer) for uid, customer in REPS.values()]


def load(prefix: str, n: int) -> list[tuple[str, dict[str, str], bytes]]:
    """``n`` touch messages from the reps, in turn: (msg id, query, body) as WeCom posts them."""
    out = []
    for i in range(n):
        uid, customer = SENDERS[i % len(SENDERS)]
        msg_id = f"{prefix}-{i}"
        out.append((msg_id, *callback(uid, touch_text(customer, i), msg_id)))
    return out


async def scalar(cluster: Cluster, statement: Any) -> Any:
    async with cluster.sessions() as session:
        return await session.scalar(statement)


async def settled(cluster: Cluster) -> bool:
    """Every inbox item finished and every outbox item sent or dead."""
    open_in = await scalar(cluster, select(func.count()).select_from(InboxItem)
                           .where(InboxItem.status == InboxStatus.PENDING))
    open_out = await scalar(cluster, select(func.count()).select_from(OutboxItem)
                            .where(OutboxItem.status.not_in([OutboxStatus.SENT, OutboxStatus.DEAD])))
    return open_in == 0 and open_out == 0


async def assert_one_touch_and_one_reply_each(cluster: Cluster, msg_ids: list[str]) -> None:
    """Each message: one inbox row (done), one touch, one card reply sent, delivered exactly once."""
    fake = cluster.fake
    async with cluster.sessions() as session:
        inbox = {row.platform_msg_id: row for row in await session.scalars(
            select(InboxItem).where(InboxItem.platform == "wecom"))}
        touches = Counter(await session.scalars(select(Touch.source_event_id)))
        outbox = list(await session.scalars(select(OutboxItem)))
    assert sorted(inbox) == sorted(msg_ids)
    assert {row.status for row in inbox.values()} == {InboxStatus.DONE}
    assert touches == Counter({row.id: 1 for row in inbox.values()})
    replies = Counter(item.source_event_id for item in outbox if item.kind == "card")
    assert replies == Counter({row.id: 1 for row in inbox.values()})
    assert {item.status for item in outbox} == {OutboxStatus.SENT}
    # At the platform: each queued message arrived once (a resend after a kill is absorbed by the
    # duplicate check, as WeCom does), and nothing arrived that was not queued.
    delivered = Counter(m["template_card"]["task_id"] for m in fake.messages if m["msgtype"] == "template_card")
    queued = Counter(item.payload["card"]["task_id"] for item in outbox if item.kind == "card")
    assert delivered == queued
    assert len(fake.messages) == len(outbox)


async def send_with_a_kill(cluster: Cluster, http: aiohttp.ClientSession, callbacks: list[tuple[str, dict[str, str], bytes]],
                           names: tuple[str, ...], *, kill_at: int, restart_at: int) -> list[str]:
    """Post ``callbacks`` from 8 concurrent senders, round robin over ``names``; SIGKILL replica
    ``names[0]`` after ``kill_at`` acknowledgements and start it again after ``restart_at``. Like
    WeCom, a sender posts a callback again (to the next replica, as a load balancer would) until it
    is acknowledged. Returns the message ids of the posts that were not acknowledged."""
    acknowledged: list[str] = []
    refused: list[str] = []
    queue = iter(enumerate(callbacks))

    async def sender() -> None:
        for i, (msg_id, params, body) in queue:
            for attempt in itertools.count():
                if await cluster.post(http, names[(i + attempt) % len(names)], params, body) == 200:
                    acknowledged.append(msg_id)
                    break
                refused.append(msg_id)
                assert attempt < 100, f"{msg_id} never acknowledged"
                await asyncio.sleep(0.05 * min(attempt + 1, 10))

    async def killer() -> None:
        await until(lambda: _at_least(acknowledged, kill_at), f"{kill_at} acknowledgements", step=0.02)
        # Replies are being sent meanwhile: some sent and not yet recorded, some claimed.
        cluster.kill(names[0])
        await until(lambda: _at_least(acknowledged, restart_at), f"{restart_at} acknowledgements", step=0.05)
        cluster.start(names[0])
        await cluster.healthy(http, names[0])

    await asyncio.gather(killer(), *(sender() for _ in range(8)))
    assert sorted(acknowledged) == sorted(msg_id for msg_id, _, _ in callbacks)
    return refused


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_REASON)
async def test_one_callback_to_two_replicas_at_once_and_a_replica_killed_mid_load_each_is_one_touch_and_one_reply(
    tmp_path,
):
    fake = fakes.FakeWeCom()
    await fake.start()
    async with scratch_database() as url:
        cluster = Cluster(tmp_path, url, fake)
        try:
            await cluster.seed(dt.datetime.now(dt.UTC))
            async with aiohttp.ClientSession() as http:
                for name in ("a", "b"):
                    cluster.start(name)
                for name in ("a", "b"):
                    await cluster.healthy(http, name)

                # The same callback delivered to both replicas at once is one touch (and one reply).
                both = load("both", 16)
                statuses = await asyncio.gather(*(
                    cluster.post(http, name, params, body) for _, params, body in both for name in ("a", "b")))
                assert statuses == [200] * 32

                # A load spread over both replicas; "a" is killed with SIGKILL part-way and restarted.
                callbacks = load("kill", 100)
                refused = await send_with_a_kill(cluster, http, callbacks, ("a", "b"), kill_at=40, restart_at=70)
                assert refused  # the kill did cut callbacks off
                await until(lambda: settled(cluster), "inbox and outbox to settle", timeout=90, step=0.2)
            await assert_one_touch_and_one_reply_each(
                cluster, [m for m, _, _ in both] + [m for m, _, _ in callbacks])
        finally:
            await cluster.stop()
            await fake.close()


async def test_the_only_replica_on_sqlite_killed_mid_load_each_acknowledged_callback_is_one_touch_and_one_reply(
    tmp_path,
):
    fake = fakes.FakeWeCom()
    await fake.start()
    cluster = Cluster(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/pacebot.db", fake)
    try:
        await cluster.seed(dt.datetime.now(dt.UTC))
        async with aiohttp.ClientSession() as http:
            cluster.start("a")
            await cluster.healthy(http, "a")
            callbacks = load("sqlite", 48)
            refused = await send_with_a_kill(cluster, http, callbacks, ("a",), kill_at=16, restart_at=16)
            assert refused
            await until(lambda: settled(cluster), "inbox and outbox to settle", timeout=90, step=0.2)
        await assert_one_touch_and_one_reply_each(cluster, [m for m, _, _ in callbacks])
    finally:
        await cluster.stop()
        await fake.close()


async def _at_least(items: list[str], n: int) -> bool:
    return len(items) >= n


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_REASON)
async def test_a_flaky_platform_gets_everything_once_with_back_off_and_permanent_failures_dead_lettered(tmp_path):
    # 30% of message/send calls fail: -1, 45009, HTTP 502, a time-out (answered late, after the
    # client gave up, and then delivered), 40014. RepD has left the company: WeCom answers 81013.
    fake = fakes.FakeWeCom(known_users={uid for uid, _ in REPS.values()} - {"RepD"} | {"WangJing", "AdminHe"})
    # Every message to RepC also fails its first two tries (-1), to time the sender's back-off.
    fake.chaos("message/send", rate=0.3, seed=12, fail_first={"RepC": 2})
    await fake.start()
    async with scratch_database() as url:
        cluster = Cluster(tmp_path, url, fake, overrides={
            "wecom": {"request_timeout_seconds": 0.5},
            "outbox": {"poll_seconds": 0.2},  # retries go out on time, to measure the back-off
        })
        try:
            await cluster.seed(dt.datetime.now(dt.UTC))
            callbacks = load("flaky", 48)
            async with aiohttp.ClientSession() as http:
                cluster.start("a")
                await cluster.healthy(http, "a")
                statuses = await asyncio.gather(*(cluster.post(http, "a", p, b) for _, p, b in callbacks))
                assert statuses == [200] * len(callbacks)
                await until(lambda: settled(cluster), "inbox and outbox to settle", timeout=90, step=0.2)
                # The admin's notice about the dead letters is queued after they died: let it go out.
                await until(lambda: settled(cluster), "the dead-letter notice", timeout=30, step=0.2)
            async with cluster.sessions() as session:
                outbox = list(await session.scalars(select(OutboxItem)))
                touches = await session.scalar(select(func.count()).select_from(Touch))
            assert touches == len(callbacks)
            dead = [item for item in outbox if item.status is OutboxStatus.DEAD]
            sent = [item for item in outbox if item.status is OutboxStatus.SENT]
            assert len(dead) + len(sent) == len(outbox)
            # Permanent: every message to RepD, and only those, dead-lettered at the first 81013 (after
            # any faults worth retrying that came before it).
            assert sorted(item.target for item in dead) == ["RepD"] * (len(callbacks) // len(REPS)), [
                (i.target, i.last_error) for i in dead]
            for item in dead:
                assert "81013" in (item.last_error or ""), item.last_error
            assert not [m for m in fake.messages if m["touser"] == "RepD"]
            # Everything else delivered, none twice.
            delivered = list(fake.messages)
            fingerprints = Counter(fakes._fingerprint(m) for m in delivered)
            assert max(fingerprints.values()) == 1
            assert Counter(m["touser"] for m in delivered) == Counter(item.target for item in sent)
            cards = Counter(m["template_card"]["task_id"] for m in delivered if m["msgtype"] == "template_card")
            assert cards == Counter(i.payload["card"]["task_id"] for i in sent if i.kind == "card")
            # The admin was told about each dead letter once (in notices that WeCom did not merge).
            notices = [m["text"]["content"] for m in delivered if m["touser"] == "AdminHe"]
            told = [int(re.search(r"新增 (\d+) 条", n).group(1)) for n in notices]  # type: ignore[union-attr]
            assert sum(told) == len(dead), notices
            # Faults really happened, of every kind, and were retried.
            labels = Counter(a.fault for attempts in fake.attempts.values() for a in attempts)
            assert {"-1", "45009", "502", "timeout", "40014"} <= set(labels)
            assert sum(labels.values()) - labels[""] >= 0.2 * len(sent)
            # Back-off (base 0.5 s, doubling, ±20% jitter): the pause before a message's third try is
            # longer than the pause before its second.
            firsts, seconds = backoff_gaps(fake, [m for m in delivered if m["touser"] == "RepC"])
            assert len(seconds) == len(callbacks) // len(REPS), (firsts, seconds)
            assert min(firsts) >= 0.35 and min(seconds) >= 0.7, (firsts, seconds)
            # Compared by difference: what else delays a retry (the batch's slowest send, polling, a
            # loaded machine) adds to both pauses alike; the back-off itself adds 0.5 s more to the second.
            assert statistics.median(seconds) - statistics.median(firsts) >= 0.25, (firsts, seconds)
        finally:
            await cluster.stop()
            await fake.close()


def backoff_gaps(fake: fakes.FakeWeCom, delivered: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """Pauses between a message's 1st and 2nd, and 2nd and 3rd, outbox tries, where those tries
    failed quickly (-1, 502; a time-out's wait and 45009's retry-after hint would blur the sender's
    own back-off). A 40014 is retried at once by the client with a new token: the same try."""
    firsts, seconds = [], []
    for message in delivered:
        tries: list[list[fakes.Attempt]] = []
        for attempt in fake.attempts_of(message):
            if tries and len(tries[-1]) == 1 and tries[-1][0].fault == "40014":
                tries[-1].append(attempt)
            else:
                tries.append([attempt])
        quick = [t[-1].fault in ("-1", "502") for t in tries]
        if len(tries) >= 2 and quick[0]:
            firsts.append(tries[1][0].at - tries[0][-1].at)
        if len(tries) >= 3 and quick[0] and quick[1]:
            seconds.append(tries[2][0].at - tries[1][-1].at)
    return firsts, seconds


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_REASON)
async def test_the_scheduling_replica_killed_at_0859_and_the_0900_digest_still_goes_out_once(tmp_path):
    # Both replicas run on one test clock (Asia/Shanghai) that reaches 09:00 some seconds after they
    # are ready; "a" is killed before 09:00, and "b" sends the digest, once.
    tz = ZoneInfo("Asia/Shanghai")
    nine = dt.datetime(2027, 3, 2, 9, 0, tzinfo=tz)  # a Tuesday
    fake = fakes.FakeWeCom(robot_keys={ROBOT_KEY})
    await fake.start()
    async with scratch_database() as url:
        cluster = Cluster(tmp_path, url, fake,
                          overrides={"scheduler": {"enabled": True, "digest_time": "09:00"}})
        try:
            await cluster.seed(nine - dt.timedelta(days=1))
            # Both replicas' clocks read 08:59:46 at launch: time enough to start (about 3 s each, at
            # once, on a quiet machine), not much more.
            offset = cluster.clock_offset = (nine - dt.timedelta(seconds=14)) - dt.datetime.now(dt.UTC)

            def clock() -> dt.datetime:
                return dt.datetime.now(dt.UTC) + offset

            async with aiohttp.ClientSession() as http:
                for name in ("a", "b"):
                    cluster.start(name)
                for name in ("a", "b"):
                    await cluster.healthy(http, name)
                assert clock() < nine - dt.timedelta(seconds=2), "replicas started too slowly for the test clock"
                cluster.kill("a")
                assert clock() < nine

                async def digest_sent() -> bool:
                    return any(m["msgtype"] == "markdown" for m in fake.robot_messages[ROBOT_KEY])

                await until(digest_sent, "the 09:00 digest", timeout=60, step=0.2)
                await until(lambda: settled(cluster), "outbox to settle", timeout=30, step=0.2)
            async with cluster.sessions() as session:
                runs = list(await session.scalars(select(JobRun).where(JobRun.job == "digest")))
                periods = list(await session.scalars(select(InboxItem.platform_msg_id)
                                                     .where(InboxItem.platform == "schedule",
                                                            InboxItem.platform_msg_id.like("digest:%"))))
                groups = list(await session.scalars(select(OutboxItem).where(OutboxItem.target_kind == "group")))
            assert periods == ["digest:2027-03-02T09:00"]
            assert [(r.period, r.status) for r in runs] == [("2027-03-02T09:00", "done")]
            kinds = Counter(m["msgtype"] for m in fake.robot_messages[ROBOT_KEY])
            assert kinds["markdown"] == 1
            assert len(fake.robot_messages[ROBOT_KEY]) == len(groups)
            assert {g.status for g in groups} == {OutboxStatus.SENT}
        finally:
            await cluster.stop()
            await fake.close()
