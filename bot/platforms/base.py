"""What every platform adapter offers the runtime: outbound delivery and media download.

Inbound, adapters own their HTTP routes (or stream connections) and hand neutral ``Event``s to
the inbox; the runtime never sees a platform payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from bot.events import MediaRef


class DeliveryError(Exception):
    """Sending failed. ``retryable`` errors are tried again with back-off; others dead-letter."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class MediaUnavailable(Exception):
    """The platform could not hand over an attachment (expired, deleted, too large)."""


@dataclass(frozen=True)
class Outgoing:
    """One outbox item as an adapter sees it."""

    id: int
    kind: str  # text | markdown | image | file | card | card_update
    target_kind: str  # member | group
    target: str  # the platform address
    payload: dict[str, Any]
    attempts: int
    card_state: dict[str, Any] | None = None  # card_update: what the platform stored when the card was clicked


@dataclass(frozen=True)
class RateLimit:
    count: int
    per_seconds: int


class Platform(Protocol):
    name: str

    def member_address(self, member: Any) -> str | None:
        """The member's id on this platform, or None if they have none."""
        ...

    def group_address(self, team: Any) -> str | None:
        """Where this team's group messages go on this platform, or None."""
        ...

    def rate_limits(self, target_kind: str) -> tuple[RateLimit, ...]: ...

    async def deliver(self, item: Outgoing) -> str | None:
        """Send; returns the platform's receipt (message id) or raises DeliveryError."""
        ...

    async def fetch_media(self, ref: MediaRef) -> bytes: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...
