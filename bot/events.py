"""Neutral events: what any platform (or the scheduler) hands to the dispatcher.

Adapters turn raw payloads into these; handlers never see anything platform-specific.
An event is JSON-serialisable so that the inbox can store it before it is acknowledged.
"""

from __future__ import annotations

import copy
import datetime as dt
import enum
from dataclasses import dataclass, field, fields
from typing import Any


class EventKind(enum.StrEnum):
    TEXT = "text"
    IMAGE = "image"
    VOICE = "voice"
    VIDEO = "video"
    FILE = "file"
    LOCATION = "location"
    ACTION = "action"  # a card button / option was chosen
    ENTER = "enter"  # the member opened the chat with the bot
    SCHEDULE = "schedule"  # a scheduled job fired
    SYSTEM = "system"  # a machine input such as a feedback webhook; routed like a job


MEDIA_KINDS = frozenset({EventKind.IMAGE, EventKind.VOICE, EventKind.VIDEO, EventKind.FILE})


@dataclass(frozen=True)
class MediaRef:
    """Where an attachment's bytes are.

    ``staged_sha256`` is set when the adapter already stored the bytes (the console uploads them in
    the request); ``platform_media_id`` when they must be fetched from the platform after the ack.
    """

    filename: str = ""
    mime: str = ""
    size: int = 0
    staged_sha256: str | None = None
    platform_media_id: str | None = None
    unavailable: bool = False  # the platform could not hand the bytes over (expired, deleted)


_MEDIA_FIELDS = tuple(f.name for f in fields(MediaRef))  # all flat: copied as they are


@dataclass(frozen=True)
class Event:
    platform: str  # "console" | "wecom" | "dingtalk" | "schedule"
    platform_msg_id: str  # the platform's id for de-duplication
    kind: EventKind
    sender: str = ""  # platform user id of the acting person ("" for schedule events)
    conversation: str = ""  # 1:1 chats: the sender; group chats: the chat id
    occurred_at: dt.datetime | None = None
    text: str = ""
    media: MediaRef | None = None
    action: str | None = None  # card action payload, e.g. "undo:42"
    task_id: str | None = None  # card the action came from
    action_values: tuple[str, ...] = ()  # chosen options of vote/multiple cards
    response_code: str | None = None  # WeCom single-use code for updating the clicked card
    location: tuple[float, float] | None = None
    job: str | None = None  # schedule events: the job name
    job_args: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        # Field by field: every accepted callback is stored this way, and ``asdict``'s recursive
        # deep copy cost more than the rest of turning it into JSON (a test keeps the two equal).
        media = self.media
        return {
            "platform": self.platform,
            "platform_msg_id": self.platform_msg_id,
            "kind": self.kind.value,
            "sender": self.sender,
            "conversation": self.conversation,
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
            "text": self.text,
            "media": None if media is None else {name: getattr(media, name) for name in _MEDIA_FIELDS},
            "action": self.action,
            "task_id": self.task_id,
            "action_values": list(self.action_values),
            "response_code": self.response_code,
            "location": list(self.location) if self.location else None,
            "job": self.job,
            "job_args": copy.deepcopy(self.job_args) if self.job_args else {},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Event:
        data = dict(data)
        data["kind"] = EventKind(data["kind"])
        if data.get("occurred_at"):
            data["occurred_at"] = dt.datetime.fromisoformat(data["occurred_at"])
        if data.get("media"):
            data["media"] = MediaRef(**data["media"])
        data["action_values"] = tuple(data.get("action_values") or ())
        if data.get("location"):
            data["location"] = tuple(data["location"])
        return cls(**data)
