"""(being built)"""

from __future__ import annotations

from bot.dispatcher import Router

router = Router("alerts")
