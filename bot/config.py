"""Configuration: one TOML file, validated at start-up.

Every key has a default (documented in ``config.example.toml``). A string value written as
``"${NAME}"`` is read from the environment variable NAME, which is how secrets stay out of the
file. Any problem stops start-up with a ``ConfigError`` naming the key and the reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.rules.thresholds import RuleThresholds
from domain.rules.workdays import parse_date_list

_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class ConfigError(ValueError):
    """Invalid configuration: the message names the key and the reason."""


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1_048_576


@dataclass(frozen=True)
class StorageConfig:
    url: str = "sqlite+aiosqlite:///data/pacebot.db"
    data_dir: str = "data"
    # SQLite only: NORMAL survives a crash of the process; FULL also a power cut, at a cost.
    sqlite_synchronous: str = "NORMAL"
    echo_sql: bool = False


@dataclass(frozen=True)
class OrgConfig:
    timezone: str = "Asia/Shanghai"
    # Org directory (teams, members, roles) loaded at start-up when set; see README.
    directory: str = ""


@dataclass(frozen=True)
class TouchConfig:
    max_message_chars: int = 1000
    evidence_window_minutes: int = 10
    evidence_deadline_hours: int = 24
    dialogue_idle_minutes: int = 30
    phone_effective_minutes: int = 2
    visit_effective_minutes: int = 15


@dataclass(frozen=True)
class MediaConfig:
    max_image_pixels: int = 40_000_000
    max_bytes: int = 20 * 1024 * 1024
    thumb_size: int = 320
    # Production: decoded size (width × height × bands, after JPEG draft reduction) and how many
    # images are decoded at once; together they bound the memory images can take.
    max_decoded_bytes: int = 100_000_000
    decode_concurrency: int = 2


@dataclass(frozen=True)
class ConsoleConfig:
    enabled: bool = True
    # Moving the clock from the console is for demos and tests; never on in production.
    clock_control: bool = False
    # The console has no login: anyone who reaches it can act as any member. By default it answers
    # only requests from this machine (127.0.0.1 / ::1).
    allow_remote: bool = False


@dataclass(frozen=True)
class InboxConfig:
    workers: int = 4
    lease_seconds: int = 120
    max_attempts: int = 3
    poll_seconds: float = 1.0
    # --- throughput: events claimed per batch (one per conversation) and committed together;
    # the console answers 503 with Retry-After while the oldest waiting event is older than this.
    batch_size: int = 32
    busy_after_seconds: float = 20.0
    # A woken batch loop waits this long before claiming, so that work arriving together is claimed
    # and committed together (0: claim at once).
    gather_ms: float = 10.0
    # --- dead letters: a platform outage (an attachment that cannot be fetched yet) is retried with
    # back-off for this long after the event arrived, without using up max_attempts.
    retry_period_minutes: float = 360.0


@dataclass(frozen=True)
class OutboxConfig:
    workers: int = 2
    max_attempts: int = 100
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 600.0
    poll_seconds: float = 1.0
    # --- throughput: messages claimed per batch (one per recipient) and sent concurrently
    batch_size: int = 64
    gather_ms: float = 10.0  # as [inbox] gather_ms
    # --- dead letters: retryable platform faults are retried with back-off for this long after the
    # message was queued (max_attempts is only a safety cap), then it becomes a dead letter.
    retry_period_hours: float = 6.0
    # A sender that dies mid-send holds its messages this long; then another sender resends them
    # (WeCom's duplicate check absorbs a message that had already gone out).
    lease_seconds: int = 120


# The [rules] section is the domain's threshold value type, so storage can take it as an argument.
RulesConfig = RuleThresholds


@dataclass(frozen=True)
class ResourcesConfig:
    """资源申请: per request type, what must exist in the customer's current stage first."""

    # {"市场费用": {"min_effective_touches": 1, "requires_amount": true}, ...}
    types: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "市场费用": {"min_effective_touches": 1, "requires_amount": True},
            "技术支持": {"min_effective_touches": 1, "requires_amount": False},
        }
    )


@dataclass(frozen=True)
class FeedbackConfig:
    """客户声音: the webhook's shared secret and what each checked option triggers."""

    secret: str = ""  # required for POST /feedback; the webhook is refused while it is empty
    # [[feedback.rules]] option = "操作太复杂", push = "3步简化演示脚本", flag = "下次拜访必演示"
    rules: tuple[dict[str, Any], ...] = (
        {"option": "操作太复杂", "push": "3步简化演示脚本", "flag": "下次拜访必演示"},
        {"option": "孩子兴趣不高", "push": "游戏化教学方案包", "flag": ""},
    )


@dataclass(frozen=True)
class SchedulerConfig:
    enabled: bool = True
    alert_sweep_minutes: int = 15  # how often alert rules are evaluated
    weekly_activity: str = "fri 10:00"  # low weekly activity check (day and local time)
    misfire_grace_seconds: int = 3600
    # Alert reminders reach people only within these local hours; the first sweep after the start
    # of the window delivers what was raised overnight.
    notify_hours: str = "08:00-21:00"
    # Manager views: the morning digest at this local time in each team's own time zone, and the
    # calibration report (day and time in the org's zone); its reminder follows 24 h later.
    digest_time: str = "09:00"
    calibration_time: str = "fri 15:00"


# --- WeCom (企业微信) self-built app: see docs/wecom.md --------------------------------------------
@dataclass(frozen=True)
class WeComConfig:
    enabled: bool = False
    corp_id: str = ""
    agent_id: int = 0
    secret: str = ""
    token: str = ""
    encoding_aes_key: str = ""
    api_base: str = "https://qyapi.weixin.qq.com"
    callback_path: str = "/wecom/callback"
    max_body_bytes: int = 1_048_576
    member_per_minute: int = 30
    member_per_hour: int = 1000
    robot_per_minute: int = 20
    request_timeout_seconds: float = 10.0
    # WeCom drops an identical app message sent again within this window (0 turns the check off).
    duplicate_check_seconds: int = 1800
    # Production: a callback whose query timestamp is further than this from now is refused (403).
    timestamp_window_seconds: int = 86400


# --- end WeCom ------------------------------------------------------------------------------------

# --- DingTalk (钉钉) enterprise internal app robot: see docs/dingtalk.md ----------------------------
@dataclass(frozen=True)
class DingTalkConfig:
    enabled: bool = False
    app_key: str = ""  # the app's AppKey (Client ID)
    app_secret: str = ""  # the app's AppSecret (Client Secret)
    robot_code: str = ""  # the robot's code; empty: the AppKey (what DingTalk uses for app robots)
    mode: str = "http"  # "http": DingTalk posts to callback_path; "stream": Pacebot connects out
    api_base: str = "https://api.dingtalk.com"
    oapi_base: str = "https://oapi.dingtalk.com"
    card_template_id: str = ""  # interactive card template; empty: cards go out as markdown
    monthly_api_quota: int = 10_000  # metered API calls a month (free plan); admins warned at 80%
    callback_path: str = "/dingtalk/callback"
    max_body_bytes: int = 1_048_576
    member_per_minute: int = 20
    group_per_minute: int = 20  # custom group robots are throttled for 10 minutes beyond 20/min
    request_timeout_seconds: float = 10.0
    ca_file: str = ""  # extra CA bundle (PEM) to trust, e.g. a TLS-inspecting egress proxy
    stream_max_inflight: int = 64  # Stream frames being stored at once; more wait unread

    @property
    def robot(self) -> str:
        return self.robot_code or self.app_key


# --- end DingTalk ---------------------------------------------------------------------------------
# --- production: logs, metrics, retention ---------------------------------------------------------
@dataclass(frozen=True)
class LogConfig:
    format: str = "text"  # "text" or "json" (one JSON object per line)
    level: str = "INFO"
    refusal_log_seconds: float = 60.0  # at most one line per refusal reason per this many seconds
    extra_secrets: tuple[str, ...] = ()  # more values to blank out of every log line


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool = True
    # GET /metrics answers this machine; list the scrapers' networks to let them in.
    allow: tuple[str, ...] = ()


@dataclass(frozen=True)
class RetentionConfig:
    enabled: bool = True
    run_at: str = "03:30"  # local time of the daily purge
    inbox_days: int = 30  # processed inbox items
    outbox_days: int = 30  # sent messages (dead letters stay until redriven or removed)
    dialogue_days: int = 7  # expired dialogues
    card_days: int = 180  # answered cards, and unanswered ones this old
    media_grace_hours: int = 24  # unreferenced media files older than this are removed


# --- end production -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    org: OrgConfig = field(default_factory=OrgConfig)
    touch: TouchConfig = field(default_factory=TouchConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    inbox: InboxConfig = field(default_factory=InboxConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    wecom: WeComConfig = field(default_factory=WeComConfig)  # WeCom
    dingtalk: DingTalkConfig = field(default_factory=DingTalkConfig)  # DingTalk
    rules: RulesConfig = field(default_factory=RulesConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    log: LogConfig = field(default_factory=LogConfig)  # production
    metrics: MetricsConfig = field(default_factory=MetricsConfig)  # production
    retention: RetentionConfig = field(default_factory=RetentionConfig)  # production

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.org.timezone)

    @property
    def data_path(self) -> Path:
        return Path(self.storage.data_dir)


def load_config(path: str | Path | None, environ: typing.Mapping[str, str] | None = None) -> Config:
    """Read and validate a TOML file; ``None`` gives the defaults."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return config_from_dict(raw, os.environ if environ is None else environ)


def config_from_dict(raw: dict[str, Any], environ: typing.Mapping[str, str] | None = None) -> Config:
    config = _build(Config, raw, "", os.environ if environ is None else environ)
    _validate(config)
    return config


if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_T = TypeVar("_T", bound="DataclassInstance")


def _build(cls: type[_T], raw: Any, prefix: str, environ: typing.Mapping[str, str]) -> _T:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{prefix.rstrip('.')}]: expected a table")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{prefix}{key}: unknown key")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        hint = hints[name]
        key = f"{prefix}{name}"
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, f"{key}.", environ)
        else:
            values[name] = _coerce(key, hint, value, environ)
    return cls(**values)


def _coerce(key: str, hint: Any, value: Any, environ: typing.Mapping[str, str]) -> Any:
    if isinstance(value, str) and (ref := _ENV_REF.match(value)):
        name = ref.group(1)
        if name not in environ:
            raise ConfigError(f"{key}: environment variable {name} is not set")
        value = environ[name]
        if hint is not str:
            value = _from_env_text(key, hint, value)
    origin = typing.get_origin(hint)
    if origin in (tuple, list):
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list")
        return tuple(_coerce(f"{key}[{i}]", item, v, environ) for i, v in enumerate(value))
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table")
        return dict(value)
    if isinstance(hint, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if not isinstance(value, hint):
        raise ConfigError(f"{key}: expected {hint.__name__}, got {value!r}")
    return value


def _from_env_text(key: str, hint: Any, text: str) -> Any:
    try:
        if hint is int:
            return int(text)
        if hint is float:
            return float(text)
        if hint is bool:
            return {"true": True, "1": True, "false": False, "0": False}[text.lower()]
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{key}: cannot read {text!r} from the environment as {hint.__name__}") from exc
    return text


def _validate(config: Config) -> None:
    def positive(key: str, value: float) -> None:
        if value <= 0:
            raise ConfigError(f"{key}: must be greater than 0, got {value}")

    try:
        ZoneInfo(config.org.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"org.timezone: unknown time zone {config.org.timezone!r}") from exc
    if not config.storage.url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ConfigError(
            "storage.url: must start with sqlite+aiosqlite:// or postgresql+asyncpg://, "
            f"got {config.storage.url.split('://')[0]}://"
        )
    if config.storage.sqlite_synchronous.upper() not in ("NORMAL", "FULL"):
        raise ConfigError("storage.sqlite_synchronous: must be NORMAL or FULL")
    if not 1 <= config.server.port <= 65535:
        raise ConfigError(f"server.port: must be 1-65535, got {config.server.port}")
    for key, value in (
        ("server.max_body_bytes", config.server.max_body_bytes),
        ("touch.max_message_chars", config.touch.max_message_chars),
        ("touch.evidence_window_minutes", config.touch.evidence_window_minutes),
        ("touch.evidence_deadline_hours", config.touch.evidence_deadline_hours),
        ("touch.dialogue_idle_minutes", config.touch.dialogue_idle_minutes),
        ("media.max_image_pixels", config.media.max_image_pixels),
        ("media.max_bytes", config.media.max_bytes),
        ("media.thumb_size", config.media.thumb_size),
        ("inbox.workers", config.inbox.workers),
        ("inbox.lease_seconds", config.inbox.lease_seconds),
        ("inbox.max_attempts", config.inbox.max_attempts),
        ("inbox.poll_seconds", config.inbox.poll_seconds),
        ("outbox.workers", config.outbox.workers),
        ("outbox.max_attempts", config.outbox.max_attempts),
        ("outbox.backoff_base_seconds", config.outbox.backoff_base_seconds),
        ("outbox.backoff_max_seconds", config.outbox.backoff_max_seconds),
        ("outbox.poll_seconds", config.outbox.poll_seconds),
        ("inbox.batch_size", config.inbox.batch_size),
        ("inbox.busy_after_seconds", config.inbox.busy_after_seconds),
        ("outbox.batch_size", config.outbox.batch_size),
        ("inbox.retry_period_minutes", config.inbox.retry_period_minutes),
        ("outbox.retry_period_hours", config.outbox.retry_period_hours),
        ("outbox.lease_seconds", config.outbox.lease_seconds),
        # APScheduler refuses anything else when the first job is added, long after start-up checks.
        ("scheduler.misfire_grace_seconds", config.scheduler.misfire_grace_seconds),
    ):
        positive(key, value)
    for key, value in (("inbox.gather_ms", config.inbox.gather_ms), ("outbox.gather_ms", config.outbox.gather_ms)):
        if not 0 <= value <= 1000:
            raise ConfigError(f"{key}: must be between 0 and 1000 (milliseconds), got {value}")
    if config.touch.phone_effective_minutes < 0 or config.touch.visit_effective_minutes < 0:
        raise ConfigError("touch.*_effective_minutes: must not be negative")
    _validate_production(config)
    _validate_wecom(config.wecom)
    _validate_dingtalk(config.dingtalk)
    _validate_rules(config)
    _validate_manager_views(config.scheduler)


# --- WeCom validation -----------------------------------------------------------------------------
_WECOM_AES_KEY = re.compile(r"^[A-Za-z0-9]{43}$")
_WECOM_TOKEN = re.compile(r"^[A-Za-z0-9]{1,32}$")


def _validate_wecom(wecom: WeComConfig) -> None:
    """Shape is checked whenever a value is given; presence only when WeCom is enabled."""
    if wecom.encoding_aes_key and not _WECOM_AES_KEY.match(wecom.encoding_aes_key):
        raise ConfigError(
            f"wecom.encoding_aes_key: must be exactly 43 letters and digits (as shown in the WeCom admin "
            f"console), got {len(wecom.encoding_aes_key)} characters"
        )
    if wecom.token and not _WECOM_TOKEN.match(wecom.token):
        raise ConfigError("wecom.token: must be 1-32 letters and digits (as set in the WeCom admin console)")
    if not wecom.api_base.startswith(("https://", "http://")):
        raise ConfigError(f"wecom.api_base: must start with https:// or http://, got {wecom.api_base!r}")
    if not wecom.callback_path.startswith("/") or wecom.callback_path.startswith("/console"):
        raise ConfigError(f"wecom.callback_path: must start with / and not be under /console, got {wecom.callback_path!r}")
    if wecom.agent_id < 0:
        raise ConfigError(f"wecom.agent_id: must not be negative, got {wecom.agent_id}")
    if wecom.duplicate_check_seconds < 0 or wecom.duplicate_check_seconds > 4 * 3600:
        raise ConfigError("wecom.duplicate_check_seconds: must be between 0 and 14400 (WeCom allows at most 4 hours)")
    for key in ("max_body_bytes", "member_per_minute", "member_per_hour", "robot_per_minute", "request_timeout_seconds"):
        if getattr(wecom, key) <= 0:
            raise ConfigError(f"wecom.{key}: must be greater than 0, got {getattr(wecom, key)}")
    if not wecom.enabled:
        return
    for key in ("corp_id", "secret", "token", "encoding_aes_key"):
        if not getattr(wecom, key):
            raise ConfigError(f"wecom.{key}: required when wecom.enabled is true")
    if wecom.agent_id <= 0:
        raise ConfigError("wecom.agent_id: required when wecom.enabled is true (the app's AgentId, an integer)")


# --- end WeCom validation -------------------------------------------------------------------------

# --- DingTalk validation --------------------------------------------------------------------------


def _validate_dingtalk(dingtalk: DingTalkConfig) -> None:
    """Shape is checked whenever a value is given; presence only when DingTalk is enabled."""
    if dingtalk.mode not in ("http", "stream"):
        raise ConfigError(f"dingtalk.mode: must be \"http\" or \"stream\", got {dingtalk.mode!r}")
    for key in ("api_base", "oapi_base"):
        # The app secret travels in the token request: never over plain HTTP.
        if not getattr(dingtalk, key).startswith("https://"):
            raise ConfigError(f"dingtalk.{key}: must start with https://, got {getattr(dingtalk, key)!r}")
    if not dingtalk.callback_path.startswith("/") or dingtalk.callback_path.startswith("/console"):
        raise ConfigError(
            f"dingtalk.callback_path: must start with / and not be under /console, got {dingtalk.callback_path!r}"
        )
    for key in ("monthly_api_quota", "max_body_bytes", "member_per_minute", "group_per_minute",
                "request_timeout_seconds", "stream_max_inflight"):
        if getattr(dingtalk, key) <= 0:
            raise ConfigError(f"dingtalk.{key}: must be greater than 0, got {getattr(dingtalk, key)}")
    if dingtalk.group_per_minute > 20:
        raise ConfigError("dingtalk.group_per_minute: at most 20 (DingTalk throttles a robot for 10 minutes beyond)")
    if dingtalk.ca_file and not Path(dingtalk.ca_file).is_file():
        raise ConfigError(f"dingtalk.ca_file: no such file: {dingtalk.ca_file}")
    if not dingtalk.enabled:
        return
    for key in ("app_key", "app_secret"):
        if not getattr(dingtalk, key):
            raise ConfigError(f"dingtalk.{key}: required when dingtalk.enabled is true")


# --- end DingTalk validation ----------------------------------------------------------------------


# --- production validation ------------------------------------------------------------------------
def _validate_production(config: Config) -> None:
    import ipaddress

    if config.log.format not in ("text", "json"):
        raise ConfigError(f"log.format: must be \"text\" or \"json\", got {config.log.format!r}")
    if config.log.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"log.level: must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {config.log.level!r}")
    if config.log.refusal_log_seconds < 0:
        raise ConfigError("log.refusal_log_seconds: must not be negative")
    for i, network in enumerate(config.metrics.allow):
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError as exc:
            raise ConfigError(f"metrics.allow[{i}]: not a network (CIDR) like 10.0.0.0/8: {network!r}") from exc
    for key in ("max_decoded_bytes", "decode_concurrency"):
        if getattr(config.media, key) <= 0:
            raise ConfigError(f"media.{key}: must be greater than 0, got {getattr(config.media, key)}")
    if config.wecom.timestamp_window_seconds <= 0:
        raise ConfigError("wecom.timestamp_window_seconds: must be greater than 0")
    retention = config.retention
    for key in ("inbox_days", "outbox_days", "dialogue_days", "card_days", "media_grace_hours"):
        if getattr(retention, key) <= 0:
            raise ConfigError(f"retention.{key}: must be greater than 0, got {getattr(retention, key)}")
    if not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", retention.run_at):
        raise ConfigError(f"retention.run_at: expected a local time like '03:30', got {retention.run_at!r}")
    # A purged inbox item no longer de-duplicates a replay: keep items well past the replay window.
    if retention.inbox_days * 86400 <= config.wecom.timestamp_window_seconds:
        raise ConfigError("retention.inbox_days: must be longer than wecom.timestamp_window_seconds, "
                          "or a replayed callback could be processed twice")


# --- end production validation --------------------------------------------------------------------


def _validate_rules(config: Config) -> None:
    rules = config.rules
    for key in ("cold_hours", "quote_working_days", "obstacle_slow_hours", "obstacle_reminder_hours",
                "alert_ignore_hours", "reward_every"):
        if getattr(rules, key) <= 0:
            raise ConfigError(f"rules.{key}: must be greater than 0, got {getattr(rules, key)}")
    if not 0 < rules.low_activity_ratio <= 1:
        raise ConfigError(f"rules.low_activity_ratio: must be in (0, 1], got {rules.low_activity_ratio}")
    if any(not phrase.strip() for phrase in rules.stall_phrases):
        raise ConfigError("rules.stall_phrases: phrases must not be empty")
    for key in ("holidays", "workdays"):
        try:
            parse_date_list(getattr(rules, key))
        except ValueError as exc:
            raise ConfigError(f"rules.{key}: {exc}") from exc
    for name, spec in config.resources.types.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("min_effective_touches", 0), int):
            raise ConfigError(f"resources.types.{name}: expected a table with an integer min_effective_touches")
        if spec.get("min_effective_touches", 0) < 0:
            raise ConfigError(f"resources.types.{name}.min_effective_touches: must not be negative")
        if not isinstance(spec.get("requires_amount", False), bool):
            raise ConfigError(f"resources.types.{name}.requires_amount: expected true or false")
    for i, rule in enumerate(config.feedback.rules):
        if not isinstance(rule, dict) or not isinstance(rule.get("option"), str) or not rule["option"]:
            raise ConfigError(f"feedback.rules[{i}]: each rule needs an option (the checked text)")
    if config.scheduler.alert_sweep_minutes <= 0:
        raise ConfigError("scheduler.alert_sweep_minutes: must be greater than 0")
    if not re.match(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$", config.scheduler.notify_hours) or (
        config.scheduler.notify_hours.split("-")[0] >= config.scheduler.notify_hours.split("-")[1]
    ):
        raise ConfigError(
            f"scheduler.notify_hours: expected a daytime window like '08:00-21:00', got {config.scheduler.notify_hours!r}"
        )
    parts = config.scheduler.weekly_activity.split()
    if len(parts) != 2 or parts[0] not in ("mon", "tue", "wed", "thu", "fri", "sat", "sun") or not re.match(
        r"^([01]\d|2[0-3]):[0-5]\d$", parts[1]
    ):
        raise ConfigError(
            f"scheduler.weekly_activity: expected like 'fri 10:00', got {config.scheduler.weekly_activity!r}"
        )


# --- manager views validation ---------------------------------------------------------------------
def _validate_manager_views(scheduler: SchedulerConfig) -> None:
    if not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", scheduler.digest_time):
        raise ConfigError(f"scheduler.digest_time: expected a local time like '09:00', got {scheduler.digest_time!r}")
    parts = scheduler.calibration_time.split()
    if len(parts) != 2 or parts[0] not in ("mon", "tue", "wed", "thu", "fri", "sat", "sun") or not re.match(
        r"^([01]\d|2[0-3]):[0-5]\d$", parts[1]
    ):
        raise ConfigError(
            f"scheduler.calibration_time: expected like 'fri 15:00', got {scheduler.calibration_time!r}"
        )


# --- end manager views validation -----------------------------------------------------------------


def notify_window(config: SchedulerConfig) -> tuple[dt.time, dt.time]:
    """The local hours in which reminders may be sent, as (from, until)."""
    start, end = config.notify_hours.split("-")
    until = dt.time.max if end == "24:00" else dt.time.fromisoformat(end)
    return dt.time.fromisoformat(start), until
