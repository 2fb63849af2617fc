"""The domain's enumerations: roles, channels and the states things move through.

Plain ``StrEnum``s, stored by value; the ORM models and the pure rules share them.
"""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    REP = "rep"
    MANAGER = "manager"
    SUPPORTER = "supporter"
    ADMIN = "admin"


class CustomerStatus(enum.StrEnum):
    ACTIVE = "active"
    REVIEWING = "reviewing"  # 复盘中
    CLOSED = "closed"


class Channel(enum.StrEnum):
    PHONE = "电话"
    WECHAT = "微信"
    VISIT = "面访"
    EMAIL = "邮件"
    OTHER = "其他"


class EvidenceStatus(enum.StrEnum):
    PENDING = "pending"  # 待补凭证
    PROVIDED = "provided"
    MISSING = "missing"  # deadline passed without evidence


class EvidenceKind(enum.StrEnum):
    PHOTO = "photo"
    VOICE = "voice"
    VIDEO = "video"
    FILE = "file"
    TEXT = "text"


class InboxStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"  # dead letter: gave up; visible to admins


class StageChangeStatus(enum.StrEnum):
    AWAITING_OBSTACLE = "awaiting_obstacle"  # committed only once the obstacle card is answered
    COMMITTED = "committed"
    CANCELLED = "cancelled"


class ObstacleStatus(enum.StrEnum):
    AWAITING_EVIDENCE = "awaiting_evidence"  # ② and ④ wait for their evidence
    OPEN = "open"  # answered, being worked on
    RESOLVED = "resolved"


class EscalationStatus(enum.StrEnum):
    OPEN = "open"  # 复盘中, waiting for the manager
    REVIEWED = "reviewed"
    TRANSFERRED = "transferred"
    SNOOZED = "snoozed"
    WITHDRAWN = "withdrawn"  # a touch it rested on was undone before the manager acted


class ResourceRequestStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class AlertStatus(enum.StrEnum):
    RAISED = "raised"
    NOTIFIED = "notified"
    CLEARED = "cleared"  # the condition ended (e.g. a touch arrived)
    IGNORED = "ignored"  # not acted on within its window
