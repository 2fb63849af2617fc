"""Failures of platform API calls, classified once: can trying again later help, and when?

Both adapters raise subclasses of ``RemoteError``; their ``deliver`` turns one into the outbox's
``DeliveryError`` with the same ``retryable`` and ``retry_after``. Messages never carry a request
URL: queries hold access tokens, app secrets and robot keys.
"""

from __future__ import annotations

import aiohttp


class RemoteError(Exception):
    retryable: bool = False
    retry_after: float | None = None


def status_is_retryable(status: int) -> bool:
    """An HTTP failure status without a platform error body: servers (5xx) and 429 are worth
    waiting for; other client errors mean a wrong URL, proxy or request."""
    return status >= 500 or status == 429


def client_error_text(exc: aiohttp.ClientError) -> str:
    """What went wrong, without the request URL (response errors, such as too many redirects,
    print the URL with its query)."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"{type(exc).__name__}: HTTP {exc.status}"
    return f"{type(exc).__name__}: {exc}"
