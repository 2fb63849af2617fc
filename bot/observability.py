"""What an operator sees: Prometheus metrics, log format, rate-limited refusal logs, secret redaction.

Metrics live in one registry of this process (``METRICS``); platform code counts what it receives and
refuses, and ``/metrics`` adds what the database knows at scrape time (backlog, outbox depth, dead
letters, alerts, job runs: see ``storage.monitoring``), so those figures agree across replicas.

Logs are plain text by default; ``[log] format = "json"`` writes one JSON object per line with the
event id, member and platform when the code logging knows them (``log_fields``). Every line, in
either format, has the configured secrets replaced by ``***``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.config import Config
from storage.monitoring import Snapshot

__all__ = [
    "CONTENT_TYPE",
    "METRICS",
    "JsonFormatter",
    "Metrics",
    "RefusalLog",
    "configure_logging",
    "log_fields",
    "refusals",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Acknowledgement targets are tens of milliseconds; WeCom gives up after 5 s.
_ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# From an event's arrival to the commit of its processing: tens of milliseconds when the inbox keeps
# pace, seconds to minutes behind a backlog or while an attachment is retried.
_PROCESSING_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        r = self.registry
        self.callbacks_received = Counter(
            "pacebot_callbacks_received", "Callbacks and webhook requests received", ["platform"], registry=r
        )
        self.callbacks_refused = Counter(
            "pacebot_callbacks_refused", "Callbacks refused, by reason", ["platform", "reason"], registry=r
        )
        self.ack_latency = Histogram(
            "pacebot_ack_latency_seconds", "Time from request to acknowledgement of an accepted callback",
            ["platform"], buckets=_ACK_BUCKETS, registry=r,
        )
        self.processing_latency = Histogram(
            "pacebot_inbox_processing_latency_seconds",
            "Time from an inbox item's arrival (stored, or redriven) to the commit that finished it",
            ["platform"], buckets=_PROCESSING_BUCKETS, registry=r,
        )
        self.token_refreshes = Counter(
            "pacebot_token_refreshes", "Platform access tokens fetched", ["platform"], registry=r
        )
        # Platform API calls made (DingTalk counts them against a monthly quota).
        self.api_calls = Counter("pacebot_platform_api_calls", "Platform API calls made", ["platform"], registry=r)
        self.inbox_backlog = Gauge("pacebot_inbox_backlog", "Inbox items waiting to be processed", registry=r)
        self.inbox_oldest_age = Gauge(
            "pacebot_inbox_oldest_pending_age_seconds", "Age of the oldest pending inbox item", registry=r
        )
        self.inbox_failed = Gauge("pacebot_inbox_failed", "Inbox items that failed for good", registry=r)
        self.outbox_depth = Gauge("pacebot_outbox_depth", "Outgoing messages not yet sent (pending or sending)",
                                  registry=r)
        self.outbox_messages = Gauge(
            "pacebot_outbox_messages", "Outgoing messages by result (sent, dead, pending, sending)", ["status"],
            registry=r,
        )
        self.dead_letters = Gauge("pacebot_dead_letters", "Outgoing messages given up on (dead letters)", registry=r)
        self.alerts = Gauge("pacebot_alerts", "Alerts by status (raised, notified, cleared …)", ["status"], registry=r)
        self.job_runs = Gauge("pacebot_job_runs", "Scheduled job runs recorded, by job and status",
                              ["job", "status"], registry=r)
        self.up = Gauge("pacebot_database_up", "1 when the database answered the scrape's queries", registry=r)

    def update(self, snapshot: Snapshot | None) -> None:
        """Set the database-backed gauges from a scrape-time snapshot (None: the database is down)."""
        if snapshot is None:
            self.up.set(0)
            return
        self.up.set(1)
        self.inbox_backlog.set(snapshot.inbox_pending)
        self.inbox_failed.set(snapshot.inbox_failed)
        self.inbox_oldest_age.set(snapshot.oldest_pending_age_seconds)
        by_status = snapshot.outbox_by_status
        self.outbox_depth.set(by_status.get("pending", 0) + by_status.get("sending", 0))
        self.dead_letters.set(by_status.get("dead", 0))
        for status in ("pending", "sending", "sent", "dead", *by_status):
            self.outbox_messages.labels(status=status).set(by_status.get(status, 0))
        for status, n in snapshot.alerts_by_status.items():
            self.alerts.labels(status=status).set(n)
        for (job, status), n in snapshot.job_runs.items():
            self.job_runs.labels(job=job, status=status).set(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        """The current value of one sample (0 when absent): for tests and the benchmark."""
        value = self.registry.get_sample_value(name, labels or {})
        return float(value or 0.0)


METRICS = Metrics()


# ------------------------------------------------------------------------------ refusal logging


class RefusalLog:
    """At most one log line per (scope, reason) per ``interval`` seconds; the rest are counted.

    A flood of refused callbacks must not become a flood of log lines: the next line after a quiet
    interval says how many were suppressed. Metrics still count every refusal.
    """

    def __init__(self, logger: logging.Logger, interval: float = 60.0) -> None:
        self.logger = logger
        self.interval = interval
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], float] = {}
        self._suppressed: dict[tuple[str, str], int] = {}

    def warning(self, scope: str, reason: str, message: str, *args: Any) -> bool:
        """Log (True) or count silently (False)."""
        key = (scope, reason)
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            message += " (%d similar refusals suppressed in the last %.0f s)"
            args = (*args, suppressed, self.interval)
        self.logger.warning(message, *args)
        return True


refusals = RefusalLog(logging.getLogger("pacebot.refused"))


# ------------------------------------------------------------------------------ log fields and format

_FIELDS: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("pacebot_log_fields", default={})  # noqa: B039
LOG_FIELDS = ("event_id", "member", "platform")


@contextlib.contextmanager
def log_fields(**values: Any) -> Iterator[None]:
    """Attach ``event_id``, ``member``, ``platform`` … to every log line written inside the block."""
    merged = {**_FIELDS.get(), **{k: v for k, v in values.items() if v is not None}}
    token = _FIELDS.set(merged)
    try:
        yield
    finally:
        _FIELDS.reset(token)


class _Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is replaced whole; very short values would
        # blank out ordinary words and are not secrets worth the name.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, known fields, exception text."""

    def __init__(self, redact: _Redactor | None = None) -> None:
        super().__init__()
        self.redact = redact or _Redactor(())

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": self.redact(record.getMessage()),
        }
        for key, value in _FIELDS.get().items():
            out[key] = value
        for key in LOG_FIELDS:
            if key in record.__dict__:
                out[key] = record.__dict__[key]
        if record.exc_info:
            out["exc"] = self.redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


JsonFormatter.converter = time.gmtime


class _PlainFormatter(logging.Formatter):
    def __init__(self, redact: _Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = {**_FIELDS.get(), **{k: record.__dict__[k] for k in LOG_FIELDS if k in record.__dict__}}
        if fields:
            text += " [" + " ".join(f"{k}={v}" for k, v in fields.items()) + "]"
        return self.redact(text)


def secrets_of(config: Config) -> list[str]:
    """Every configured value that must never be written to a log."""
    from sqlalchemy.engine import make_url

    found = [config.wecom.secret, config.wecom.token, config.wecom.encoding_aes_key, config.feedback.secret]
    found.extend(config.log.extra_secrets)
    with contextlib.suppress(Exception):
        password = make_url(config.storage.url).password
        if password:
            found.append(str(password))
    return found


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each line (it may be replaced)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(config: Config, *, level: str | None = None, stream: Any = None) -> logging.Handler:
    """Install the root handler: the configured format, redaction, and quiet third-party loggers."""
    redact = _Redactor(secrets_of(config))
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(JsonFormatter(redact) if config.log.format == "json" else _PlainFormatter(redact))
    handler.set_name("pacebot")
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == "pacebot":
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel((level or config.log.level).upper())
    refusals.interval = config.log.refusal_log_seconds
    # Per-command migration chatter and per-request access lines are noise at INFO; aiosqlite's
    # debug lines carry every query's parameters (user text), so it never logs below WARNING.
    for name in ("alembic", "aiohttp.access", "apscheduler", "aiosqlite"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
