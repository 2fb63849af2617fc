"""What an operator sees: /metrics, /healthz, /readyz, JSON logs, bounded refusal logs, no secrets."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot.app import RUNTIME, create_app, metrics_networks, remote_allowed
from bot.clock import FrozenClock, ShiftableClock
from bot.config import ConfigError, config_from_dict
from bot.observability import METRICS, RefusalLog, configure_logging, log_fields
from bot.platforms.shared.tokens import TokenCache
from tests.conftest import START
from tests.fakes import wecom as fakes

PATH = "/wecom/callback"
FEEDBACK_SECRET = "feedback-secret-7f3a9c"
crypto = fakes.default_crypto()


def app_config(tmp_path: Path, **extra: dict[str, Any]) -> Any:
    raw: dict[str, Any] = {
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path}/t.db", "data_dir": str(tmp_path / "data")},
        "org": {"directory": str(Path(__file__).parent / "fixtures/org_small.toml")},
        "scheduler": {"enabled": False},
        "inbox": {"poll_seconds": 0.2},
        "outbox": {"poll_seconds": 0.2},
        "wecom": fakes.wecom_config("http://127.0.0.1:9"),
        "feedback": {"secret": FEEDBACK_SECRET},
    }
    raw.update(extra)
    return config_from_dict(raw)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


# --- /metrics --------------------------------------------------------------------------------------------


async def test_metrics_are_prometheus_text_with_the_database_figures(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(app_config(tmp_path), clock=ShiftableClock(base=FrozenClock(START)),
                                             workers=False))
    params, body = fakes.encrypted_callback(crypto, fakes.text_xml("LiMing", "你好", "m-metrics"))
    assert (await client.post(PATH, params=params, data=body)).status == 200
    bad = {"msg_signature": "0" * 40, "timestamp": str(int(time.time())), "nonce": "1"}
    assert (await client.post(PATH, params=bad, data=b"<a>" * 10)).status == 400
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    page = await resp.text()
    for name in (
        "pacebot_callbacks_received_total", "pacebot_callbacks_refused_total", "pacebot_ack_latency_seconds_bucket",
        "pacebot_inbox_oldest_pending_age_seconds", "pacebot_outbox_depth", "pacebot_dead_letters",
        "pacebot_token_refreshes", "pacebot_job_runs", "pacebot_alerts",
    ):
        assert name in page, name
    # Workers are off: the accepted callback waits in the inbox, which the scrape reads from the database.
    assert "pacebot_inbox_backlog 1.0" in page
    assert 'pacebot_callbacks_refused_total{platform="wecom",reason="hostile_envelope"}' in page
    assert "pacebot_database_up 1.0" in page


@pytest.mark.parametrize(
    ("remote", "allow", "allowed"),
    [
        ("127.0.0.1", (), True),
        ("::1", (), True),
        ("::ffff:127.0.0.1", (), True),
        ("10.1.2.3", (), False),
        ("10.1.2.3", ("10.0.0.0/8",), True),
        ("192.168.1.5", ("10.0.0.0/8",), False),
        ("fd00::5", ("fd00::/8",), True),
        ("", (), False),
        ("not-an-ip", (), False),
    ],
)
def test_metrics_answer_loopback_and_the_allowed_networks_only(remote, allow, allowed):
    assert remote_allowed(remote, metrics_networks(allow)) is allowed


def test_metrics_allow_must_list_networks():
    assert config_from_dict({"metrics": {"allow": ["10.0.0.0/8"]}}).metrics.allow == ("10.0.0.0/8",)
    with pytest.raises(ConfigError, match=r"metrics\.allow\[0\]"):
        config_from_dict({"metrics": {"allow": ["everyone"]}})


async def test_metrics_can_be_switched_off(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(app_config(tmp_path, metrics={"enabled": False}), workers=False))
    assert (await client.get("/metrics")).status == 404


# --- /healthz and /readyz ---------------------------------------------------------------------------------


async def test_healthz_reports_database_workers_and_scheduler(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(app_config(tmp_path), clock=ShiftableClock(base=FrozenClock(START))))
    resp = await client.get("/healthz")
    body = await resp.json()
    assert resp.status == 200, body
    assert body["database"] == "ok"
    assert body["workers"] == {"inbox": "running", "outbox": "running"}
    assert body["scheduler"] == "disabled"
    assert (await client.get("/readyz")).status == 200


async def test_healthz_is_unhealthy_when_a_started_worker_has_stopped(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(app_config(tmp_path), clock=ShiftableClock(base=FrozenClock(START))))
    await client.server.app[RUNTIME].outbox.poller.stop()
    resp = await client.get("/healthz")
    body = await resp.json()
    assert resp.status == 503 and body["status"] == "unhealthy" and body["workers"]["outbox"] == "stopped"


async def test_readyz_and_healthz_refuse_when_the_database_is_gone(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(app_config(tmp_path), workers=False))
    runtime = client.server.app[RUNTIME]
    await runtime.engine.dispose()
    (tmp_path / "t.db").unlink()
    (tmp_path / "t.db").mkdir()  # a directory where the database was: every connection fails
    assert (await client.get("/readyz")).status == 503
    resp = await client.get("/healthz")
    assert resp.status == 503 and (await resp.json())["database"] == "unavailable"
    metrics = await (await client.get("/metrics")).text()
    assert "pacebot_database_up 0.0" in metrics
    (tmp_path / "t.db").rmdir()


# --- logs -----------------------------------------------------------------------------------------------------


async def test_json_logs_parse_line_by_line_and_never_carry_secrets_or_sql_parameters(
    aiohttp_client, tmp_path, restore_logging
):
    config = app_config(tmp_path, log={"format": "json", "level": "DEBUG", "refusal_log_seconds": 0.0})
    stream = io.StringIO()
    configure_logging(config, stream=stream)
    client = await aiohttp_client(create_app(config, clock=ShiftableClock(base=FrozenClock(START))))
    runtime = client.server.app[RUNTIME]
    # Signed and unsigned callbacks, a hostile body, a stale replay, feedback with right and wrong secrets.
    params, body = fakes.encrypted_callback(crypto, fakes.text_xml("LiMing", "华东建材 电话20分钟", "m-json"))
    assert (await client.post(PATH, params=params, data=body)).status == 200
    assert (await client.post(PATH, params=params, data=body)).status == 200  # redelivered
    assert (await client.post(PATH, params={**params, "msg_signature": "1" * 40}, data=body)).status == 403
    assert (await client.post(PATH, params=params, data=b"<a>" * 100)).status == 400
    stale, stale_body = fakes.encrypted_callback(crypto, fakes.text_xml("LiMing", "x", "m-old"), timestamp="1000")
    assert (await client.post(PATH, params=stale, data=stale_body)).status == 403
    for secret in (FEEDBACK_SECRET, "wrong-secret"):
        await client.post("/feedback", data=b'{"id": "1", "customer": "x", "options": ["a"]}',
                          headers={"X-Pacebot-Secret": secret})
    # An error whose query was bound to user text: the traceback must not carry the text.
    user_text = "客户私密备注-不应出现在日志"
    try:
        async with runtime.sessions() as session:
            await session.execute(text("INSERT INTO no_such_table VALUES (:v)"), {"v": user_text})
    except Exception:
        logging.getLogger("pacebot.test").exception("a query failed")
    # A careless line that names a secret is redacted.
    logging.getLogger("pacebot.test").warning("configured token %s", config.wecom.token)
    with log_fields(event_id=42, member="rep.li", platform="wecom"):
        logging.getLogger("pacebot.test").info("inside an event")
    await client.close()

    lines = [line for line in stream.getvalue().splitlines() if line.strip()]
    assert len(lines) > 5
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"ts", "level", "logger", "message"} <= set(r) for r in records)
    assert any(r.get("event_id") == 42 and r.get("member") == "rep.li" and r.get("platform") == "wecom"
               for r in records)
    assert any("exc" in r and "no_such_table" in r["exc"] for r in records)
    everything = stream.getvalue()
    for secret in (config.wecom.secret, config.wecom.token, config.wecom.encoding_aes_key, FEEDBACK_SECRET):
        assert secret not in everything, secret
    assert user_text not in everything and json.dumps(user_text) not in everything
    assert "***" in everything


async def test_lines_logged_while_an_event_is_handled_name_the_event_member_and_platform(
    aiohttp_client, tmp_path, restore_logging
):
    config = app_config(tmp_path, log={"format": "json", "level": "INFO"})
    stream = io.StringIO()
    configure_logging(config, stream=stream)
    client = await aiohttp_client(create_app(config, clock=ShiftableClock(base=FrozenClock(START))))
    # An unknown sender is logged by the dispatcher while the inbox handles the event.
    response = await client.post("/console/api/messages", json={"member": "nobody.here", "text": "你好"})
    assert response.status == 200
    event_id = (await response.json())["event_id"]
    await client.close()
    records = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    [line] = [r for r in records if "unknown" in r["message"] and "nobody.here" in r["message"]]
    assert line["event_id"] == event_id and line["platform"] == "console"


def test_plain_text_logs_stay_the_default(restore_logging):
    config = config_from_dict({})
    assert config.log.format == "text"
    stream = io.StringIO()
    configure_logging(config, stream=stream)
    logging.getLogger("pacebot.test").info("hello")
    line = stream.getvalue().strip()
    assert line.endswith("INFO pacebot.test: hello")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_log_format_is_validated():
    with pytest.raises(ConfigError, match="log.format"):
        config_from_dict({"log": {"format": "xml"}})


def test_refusals_are_logged_at_most_once_per_reason_per_interval_with_a_suppressed_count():
    stream = io.StringIO()
    logger = logging.getLogger("pacebot.test.refusals")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        refusals = RefusalLog(logger, interval=3600)
        written = [refusals.warning("wecom", "bad_signature", "refused %s", i) for i in range(200)]
        written.append(refusals.warning("wecom", "too_large", "refused big"))
        assert written.count(True) == 2
        assert stream.getvalue().count("\n") == 2
        refusals.interval = 0  # the interval has passed: the next line reports what was held back
        refusals.warning("wecom", "bad_signature", "refused again")
        assert "199 similar refusals suppressed" in stream.getvalue()
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def test_the_metrics_registry_counts_refusals_by_platform_and_reason():
    before = METRICS.sample("pacebot_callbacks_refused_total", {"platform": "test", "reason": "x"})
    METRICS.callbacks_refused.labels(platform="test", reason="x").inc()
    assert METRICS.sample("pacebot_callbacks_refused_total", {"platform": "test", "reason": "x"}) == before + 1


async def test_each_platform_token_fetch_is_counted_once_however_many_callers_share_it() -> None:
    async def fetch() -> tuple[str, float]:
        return "t-1", 7200.0

    counter = METRICS.token_refreshes.labels(platform="probe")
    before = counter._value.get()
    cache = TokenCache(fetch, platform="probe")
    assert [await cache.get() for _ in range(3)] == ["t-1"] * 3
    assert counter._value.get() == before + 1
    cache.invalidate("t-1")
    await cache.get()
    assert counter._value.get() == before + 2
