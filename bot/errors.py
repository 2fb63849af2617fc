"""Domain errors that users can cause. Each carries the Chinese text the user is shown."""

from __future__ import annotations


class UserError(Exception):
    """A request the bot refuses; nothing is changed and the user gets ``message``."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(detail or message)
        self.message = message
        self.detail = detail or message


class NotPermitted(UserError):
    """The acting member may not do this (least privilege)."""
