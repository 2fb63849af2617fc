"""WeCom test apps shared by the callback security and flood tests."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from bot.app import create_app
from bot.clock import FrozenClock, ShiftableClock
from bot.config import config_from_dict
from tests.conftest import START
from tests.fakes import wecom as fakes


def inbox_only_app(tmp_path: Path) -> web.Application:
    """The app with WeCom configured and workers off: callbacks only go into the inbox, and the
    fake server the config names is never contacted."""
    config = config_from_dict({
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path}/t.db", "data_dir": str(tmp_path / "data")},
        "org": {"directory": str(Path(__file__).parent / "fixtures/org_small.toml")},
        "scheduler": {"enabled": False},
        "wecom": fakes.wecom_config("http://127.0.0.1:9"),
    })
    return create_app(config, clock=ShiftableClock(base=FrozenClock(START)), workers=False)
