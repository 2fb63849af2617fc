"""The schema: SQLAlchemy 2 typed models. Alembic migrations (storage/migrations) create it."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identities.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Timestamp(TypeDecorator[dt.datetime]):
    """An instant: stored in UTC, always returned timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored: a timezone is required")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, dt.datetime: Timestamp()}


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=24, values_callable=lambda e: [m.value for m in e])


class Role(enum.StrEnum):
    REP = "rep"
    MANAGER = "manager"
    SUPPORTER = "supporter"
    ADMIN = "admin"


class Team(Base):
    """团队: a manager's group of reps, with its group chat addresses."""

    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", use_alter=True))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    # Per platform: {"wecom_webhook": "...", "wecom_chatid": "...", "dingtalk_webhook": "..."}
    group_chat: Mapped[dict[str, Any]] = mapped_column(default=dict)
    pipeline_id: Mapped[int | None] = mapped_column(ForeignKey("pipelines.id"))


class Member(Base):
    """One person, linked to their platform identities."""

    __tablename__ = "members"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[Role] = mapped_column(_enum(Role), default=Role.REP)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    wecom_userid: Mapped[str | None] = mapped_column(String(64), unique=True)
    dingtalk_staff_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set when an admin changed the role by hand: directory sync must not overwrite it.
    role_locked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime]

    team: Mapped[Team | None] = relationship(foreign_keys=[team_id], lazy="raise")


class Pipeline(Base):
    """销售流程: an ordered list of stages."""

    __tablename__ = "pipelines"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    # Obstacle options asked at each stage change (障碍穿透提问), configurable per pipeline.
    obstacle_options: Mapped[list[Any]] = mapped_column(default=list)


class Stage(Base):
    """阶段 / 节点: one step of a pipeline, with its limit, deliverables and overdue actions."""

    __tablename__ = "stages"
    __table_args__ = (UniqueConstraint("pipeline_id", "position"), UniqueConstraint("pipeline_id", "name"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    limit_days: Mapped[int | None] = mapped_column(Integer)
    limit_working_days: Mapped[bool] = mapped_column(Boolean, default=False)
    deliverables: Mapped[list[Any]] = mapped_column(default=list)
    overdue_actions: Mapped[list[Any]] = mapped_column(default=list)


class CustomerStatus(enum.StrEnum):
    ACTIVE = "active"
    REVIEWING = "reviewing"  # 复盘中
    CLOSED = "closed"


class Customer(Base):
    """客户 / 线索: owned by one rep; a lead is a customer in the pipeline's first stage."""

    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("owner_id", "name"),
        Index("ix_customers_last_touch", "last_touch_at"),
        Index("ix_customers_stage", "stage_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    owner_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"))
    stage_entered_at: Mapped[dt.datetime]
    industry: Mapped[str] = mapped_column(String(64), default="")
    aliases: Mapped[list[Any]] = mapped_column(default=list)
    contacts: Mapped[list[Any]] = mapped_column(default=list)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[CustomerStatus] = mapped_column(_enum(CustomerStatus), default=CustomerStatus.ACTIVE)
    value: Mapped[int] = mapped_column(BigInteger, default=0)  # expected deal value, yuan
    key_obstacle: Mapped[str] = mapped_column(String(256), default="")
    expected_sign_date: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime]
    last_touch_at: Mapped[dt.datetime | None]


class StageHistory(Base):
    """Each stay of a customer in a stage: entered, left."""

    __tablename__ = "stage_history"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"))
    entered_at: Mapped[dt.datetime]
    left_at: Mapped[dt.datetime | None]
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))


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


class Touch(Base):
    """接触记录: one customer contact with its next action (下次动作)."""

    __tablename__ = "touches"
    __table_args__ = (
        Index("ix_touches_customer_time", "customer_id", "occurred_at"),
        Index("ix_touches_member_time", "member_id", "occurred_at"),
        Index("ix_touches_next_due", "next_due"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    summary: Mapped[str] = mapped_column(Text)
    raw_text: Mapped[str] = mapped_column(Text, default="")
    next_action: Mapped[str] = mapped_column(String(256))
    next_due: Mapped[dt.date] = mapped_column(Date)
    proposal: Mapped[bool] = mapped_column(Boolean, default=False)
    effective: Mapped[bool] = mapped_column(Boolean, default=False)
    evidence_status: Mapped[EvidenceStatus] = mapped_column(_enum(EvidenceStatus))
    occurred_at: Mapped[dt.datetime]
    undone_at: Mapped[dt.datetime | None]
    # The inbox event that created it: a replayed event can never create a second touch.
    source_event_id: Mapped[int | None] = mapped_column(ForeignKey("inbox.id"), unique=True)


class EvidenceKind(enum.StrEnum):
    PHOTO = "photo"
    VOICE = "voice"
    VIDEO = "video"
    FILE = "file"
    TEXT = "text"


class Evidence(Base):
    """凭证: photo, voice, file or text attached to a touch (or to a customer)."""

    __tablename__ = "evidence"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    touch_id: Mapped[int | None] = mapped_column(ForeignKey("touches.id", ondelete="SET NULL"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    kind: Mapped[EvidenceKind] = mapped_column(_enum(EvidenceKind))
    sha256: Mapped[str | None] = mapped_column(String(64))
    path: Mapped[str | None] = mapped_column(String(256))
    thumb_path: Mapped[str | None] = mapped_column(String(256))
    mime: Mapped[str] = mapped_column(String(128), default="")
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    filename: Mapped[str] = mapped_column(String(256), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    # Capture time, GPS, width/height … as found in the file.
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime]
    source_event_id: Mapped[int | None] = mapped_column(ForeignKey("inbox.id"), unique=True)


class Dialogue(Base):
    """A multi-step conversation in progress, keyed by (platform, conversation, member)."""

    __tablename__ = "dialogues"
    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    conversation: Mapped[str] = mapped_column(String(128), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]


class CardRecord(Base):
    """A card sent to someone: who may answer it, and whether it was answered (one answer only)."""

    __tablename__ = "cards"
    task_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime]
    answered_at: Mapped[dt.datetime | None]
    answer: Mapped[str | None] = mapped_column(String(256))
    # Platform handle for updating the card in place (e.g. WeCom response_code), per platform.
    platform_state: Mapped[dict[str, Any]] = mapped_column(default=dict)


class InboxStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class InboxItem(Base):
    """An incoming event, stored before it is acknowledged; processed exactly once."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("platform", "platform_msg_id", name="uq_inbox_platform_msg"),
        Index("ix_inbox_pending", "status", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    platform_msg_id: Mapped[str] = mapped_column(String(128))
    conversation_key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]]
    status: Mapped[InboxStatus] = mapped_column(_enum(InboxStatus), default=InboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[dt.datetime]
    lease_until: Mapped[dt.datetime | None]
    processed_at: Mapped[dt.datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"  # dead letter: gave up; visible to admins


class OutboxItem(Base):
    """An outgoing message, written in the same transaction as the state it reports."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_target_sent", "platform", "target", "sent_at"),
        Index("ix_outbox_source", "source_event_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_event_id: Mapped[int | None] = mapped_column(ForeignKey("inbox.id"))
    platform: Mapped[str] = mapped_column(String(16))
    target_kind: Mapped[str] = mapped_column(String(8))  # "member" | "group"
    target_id: Mapped[int] = mapped_column(BigInteger)  # members.id or teams.id
    target: Mapped[str] = mapped_column(String(256))  # the platform address (userid, chat id, webhook key)
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]]
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime]
    lease_until: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    sent_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # What the platform answered (e.g. a msgid), for support and idempotency checks.
    platform_receipt: Mapped[str | None] = mapped_column(String(256))


class Setting(Base):
    """Small persistent key/value settings (e.g. the console clock offset)."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]]
