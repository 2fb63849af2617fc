"""Configuration: defaults, environment secrets, and precise errors."""

from __future__ import annotations

import pytest

from bot.cli import main
from bot.config import ConfigError, config_from_dict, load_config


def test_defaults_are_the_embedded_setup():
    config = config_from_dict({})
    assert config.storage.url.startswith("sqlite+aiosqlite://")
    assert config.console.enabled and not config.console.clock_control
    assert config.touch.evidence_window_minutes == 10 and config.rules.cold_hours == 72


def test_secrets_come_from_the_environment():
    config = config_from_dict(
        {"storage": {"url": "${DB_URL}"}, "rules": {"cold_hours": "${COLD}"}},
        {"DB_URL": "postgresql+asyncpg://u:p@h/db", "COLD": "48"},
    )
    assert config.storage.url == "postgresql+asyncpg://u:p@h/db" and config.rules.cold_hours == 48


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"touch": {"evidence_window": 5}}, "touch.evidence_window: unknown key"),
        ({"server": {"port": "80"}}, "server.port: expected an integer"),
        ({"server": {"port": 70000}}, "server.port: must be 1-65535"),
        ({"org": {"timezone": "Asia/Shanghia"}}, "org.timezone: unknown time zone"),
        ({"storage": {"url": "mysql://x"}}, "storage.url: must start with"),
        ({"storage": {"url": "${NOPE_NOT_SET}"}}, "storage.url: environment variable NOPE_NOT_SET is not set"),
        ({"console": {"clock_control": "yes"}}, "console.clock_control: expected true or false"),
        ({"touch": {"dialogue_idle_minutes": 0}}, "touch.dialogue_idle_minutes: must be greater than 0"),
        ({"bogus": {}}, "bogus: unknown key"),
        ({"outbox": {"backoff_max_seconds": -1}}, "outbox.backoff_max_seconds: must be greater than 0"),
        ({"scheduler": {"misfire_grace_seconds": 0}}, "scheduler.misfire_grace_seconds: must be greater than 0"),
        ({"inbox": {"gather_ms": -1}}, "inbox.gather_ms: must be between 0 and 1000 (milliseconds), got -1"),
        ({"outbox": {"gather_ms": 5000}}, "outbox.gather_ms: must be between 0 and 1000 (milliseconds), got 5000"),
        ({"scheduler": {"notify_hours": "21:00-08:00"}}, "scheduler.notify_hours: expected a daytime window"),
        ({"scheduler": {"weekly_activity": "friday"}}, "scheduler.weekly_activity: expected like 'fri 10:00'"),
        ({"rules": {"holidays": ["2027-13-01"]}}, "rules.holidays:"),
        ({"rules": {"low_activity_ratio": 1.5}}, "rules.low_activity_ratio: must be in (0, 1]"),
        ({"resources": {"types": {"市场费用": {"requires_amount": "yes"}}}}, "requires_amount: expected true or false"),
    ],
)
def test_invalid_configuration_names_the_key_and_reason(raw, message):
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw, {})
    assert message in str(info.value)


def test_a_bad_file_stops_the_cli_with_the_key(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('[touch]\nmax_message_chars = "many"\n', encoding="utf-8")
    assert main(["--config", str(path), "db", "upgrade"]) == 2
    assert "touch.max_message_chars: expected an integer" in capsys.readouterr().err


def test_invalid_toml_is_reported(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[touch\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
