"""An access-token cache shared by the platform clients.

The token is fetched on first use and refreshed early — a quarter of its lifetime, at most five
minutes, before it runs out — so a call never starts with a token about to expire. Concurrent
callers share one fetch (a lock, re-checked inside). A client that gets an expiry or invalid-token
answer calls ``invalidate(value)`` and asks again; only that token is dropped, so a newer one
fetched meanwhile by another caller stays.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.observability import METRICS

# (token, lifetime in seconds)
Fetch = Callable[[], Awaitable[tuple[str, float]]]

MAX_MARGIN_SECONDS = 300.0


@dataclass
class _Token:
    value: str
    refresh_at: float  # monotonic instant after which a new token is fetched


class TokenCache:
    def __init__(
        self, fetch: Fetch, *, platform: str, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._fetch = fetch
        self._platform = platform
        self._monotonic = monotonic
        self._token: _Token | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0  # for tests and support: how often a token was fetched

    async def get(self) -> str:
        token = self._token
        if token is not None and self._monotonic() < token.refresh_at:
            return token.value
        async with self._lock:
            token = self._token
            if token is not None and self._monotonic() < token.refresh_at:
                return token.value  # another caller refreshed it while we waited
            value, lifetime = await self._fetch()
            self.fetches += 1
            METRICS.token_refreshes.labels(platform=self._platform).inc()
            margin = min(MAX_MARGIN_SECONDS, lifetime / 4)
            self._token = _Token(value, self._monotonic() + lifetime - margin)
            return value

    def invalidate(self, value: str) -> None:
        """Forget ``value`` (and only it)."""
        if self._token is not None and self._token.value == value:
            self._token = None
