"""config.example.toml documents every key with its default."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

from bot.config import Config, config_from_dict

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def test_the_example_parses_and_equals_the_defaults():
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert config_from_dict(raw, {}) == Config()


def test_every_key_is_in_the_example():
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    missing = [
        f"{section.name}.{key.name}"
        for section in dataclasses.fields(Config)
        for key in dataclasses.fields(section.type if isinstance(section.type, type) else getattr(Config(), section.name))
        if key.name not in raw.get(section.name, {})
    ]
    assert missing == []
