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

from domain.enums import (  # noqa: F401  (re-exported: the models' column types)
    AlertStatus,
    Channel,
    CustomerStatus,
    EscalationStatus,
    EvidenceKind,
    EvidenceStatus,
    InboxStatus,
    ObstacleStatus,
    OutboxStatus,
    ResourceRequestStatus,
    Role,
    StageChangeStatus,
)

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

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        # SQLite hands back the stored text. ``fromisoformat`` (C) reads every form SQLAlchemy writes
        # and SQLite's own functions produce, at a fraction of the cost of the generic DateTime
        # type's regular expression — a rep's customer list alone reads some thirty instants per
        # logged touch. Anything it cannot read still goes the generic way.
        generic = super().result_processor(dialect, coltype)

        def instant(value: Any) -> dt.datetime | None:
            if isinstance(value, str):
                try:
                    parsed = dt.datetime.fromisoformat(value)
                except ValueError:
                    return generic(value) if generic is not None else None
                return self.process_result_value(parsed, dialect)
            return generic(value) if generic is not None else self.process_result_value(value, dialect)

        return instant


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, dt.datetime: Timestamp()}


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=24, values_callable=lambda e: [m.value for m in e])


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
    # 阶段穿越率: the two stages (by name) whose crossing the pipeline measures; none when unset.
    crossing_from: Mapped[str | None] = mapped_column(String(64))
    crossing_to: Mapped[str | None] = mapped_column(String(64))


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


class Customer(Base):
    """客户 / 线索: owned by one rep; a lead is a customer in the pipeline's first stage."""

    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("owner_id", "name"),
        Index("ix_customers_last_touch", "last_touch_at"),
        Index("ix_customers_stage", "stage_id"),
        Index("ix_customers_name", "name"),
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
    # 暂缓: alerts for this customer pause until this local date (exclusive), with the reason.
    snoozed_until: Mapped[dt.date | None] = mapped_column(Date)
    snooze_reason: Mapped[str] = mapped_column(String(256), default="")
    # Marks set by rules, e.g. "下次拜访必演示" from customer feedback.
    flags: Mapped[list[Any]] = mapped_column(default=list)


class CustomerOwner(Base):
    """Who owned a customer from when: the process metrics count a customer for its owner at their
    as-of instant (SPEC §8.2). A row is written with every change of ``customers.owner_id`` (the
    first change also records the owner before it, from the customer's creation); a customer with
    no rows has had one owner, the current one."""

    __tablename__ = "customer_owners"
    __table_args__ = (
        Index("ix_customer_owners_customer_since", "customer_id", "since"),
        Index("ix_customer_owners_since", "since"),  # "did any owner change after the as-of?", one probe
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    owner_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    since: Mapped[dt.datetime]


class MemberTeam(Base):
    """Which team a member was in from when: a member's figures go to the team at the as-of instant.
    Written with every change of ``members.team_id`` (the first change also records the team before
    it, from the member's creation); a member with no rows has been in one team, the current one."""

    __tablename__ = "member_teams"
    __table_args__ = (Index("ix_member_teams_member_since", "member_id", "since"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    since: Mapped[dt.datetime]


class StageHistory(Base):
    """Each stay of a customer in a stage: entered, left."""

    __tablename__ = "stage_history"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"))
    entered_at: Mapped[dt.datetime]
    left_at: Mapped[dt.datetime | None]
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    # Why the stay began other than by a move, e.g. "导入" (an import sets the stage, it is not a move).
    note: Mapped[str] = mapped_column(String(64), default="")


class Touch(Base):
    """接触记录: one customer contact with its next action (下次动作)."""

    __tablename__ = "touches"
    __table_args__ = (
        Index("ix_touches_customer_time", "customer_id", "occurred_at"),
        Index("ix_touches_member_time", "member_id", "occurred_at"),
        Index("ix_touches_next_due", "next_due"),
        # Process metrics (storage/metrics.py) read these columns only: index-only scans over 1M touches.
        Index("ix_touches_customer_cover", "customer_id", "occurred_at", "undone_at", "channel", "next_due"),
        Index("ix_touches_due_cover", "next_due", "customer_id", "occurred_at", "undone_at"),
        # Touch depth groups by (customer, channel): read in that order, no sort of the window's touches.
        Index("ix_touches_customer_channel", "customer_id", "channel", "occurred_at", "undone_at"),
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
    # 进度停滞: the touch matched a stall phrase and neither advanced the stage nor a milestone.
    no_progress: Mapped[bool] = mapped_column(Boolean, default=False)
    stall_phrases: Mapped[list[Any]] = mapped_column(default=list)
    # The inbox event that created it: a replayed event can never create a second touch.
    source_event_id: Mapped[int | None] = mapped_column(ForeignKey("inbox.id"), unique=True)


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


class InboxItem(Base):
    """An incoming event, stored before it is acknowledged; processed exactly once."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("platform", "platform_msg_id", name="uq_inbox_platform_msg"),
        Index("ix_inbox_pending", "status", "id"),
        Index("ix_inbox_conversation_head", "status", "conversation_key", "id"),
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


class OutboxItem(Base):
    """An outgoing message, written in the same transaction as the state it reports."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_target_sent", "platform", "target", "sent_at"),
        Index("ix_outbox_source", "source_event_id"),
        Index("ix_outbox_target_head", "status", "platform", "target", "id"),
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


# --- process control (SPEC §3.2, §3.3, §4–§7) ------------------------------------------------


class StageChange(Base):
    """A requested move of a customer to another stage, waiting for its obstacle answer."""

    __tablename__ = "stage_changes"
    __table_args__ = (Index("ix_stage_changes_customer", "customer_id", "status"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    from_stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"))
    to_stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[StageChangeStatus] = mapped_column(_enum(StageChangeStatus))
    requested_at: Mapped[dt.datetime]
    committed_at: Mapped[dt.datetime | None]
    task_id: Mapped[str | None] = mapped_column(String(128))


class Obstacle(Base):
    """障碍: the answered obstacle question of a stage, with its evidence."""

    __tablename__ = "obstacles"
    __table_args__ = (Index("ix_obstacles_customer", "customer_id", "status"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"))
    stage_change_id: Mapped[int | None] = mapped_column(ForeignKey("stage_changes.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    option: Mapped[str] = mapped_column(String(64))
    required_evidence: Mapped[str | None] = mapped_column(String(64))  # e.g. 技术对接会议纪要
    evidence_id: Mapped[int | None] = mapped_column(ForeignKey("evidence.id"))
    status: Mapped[ObstacleStatus] = mapped_column(_enum(ObstacleStatus))
    answered_at: Mapped[dt.datetime]
    resolved_at: Mapped[dt.datetime | None]
    last_reminded_at: Mapped[dt.datetime | None]


class SupportRequest(Base):
    """需跨部门支持: an obstacle handed to a supporter; timed to the first substantive reply."""

    __tablename__ = "support_requests"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    obstacle_id: Mapped[int] = mapped_column(ForeignKey("obstacles.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    requester_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    supporter_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    requested_at: Mapped[dt.datetime]
    first_reply_at: Mapped[dt.datetime | None]
    reply_text: Mapped[str] = mapped_column(Text, default="")


class Escalation(Base):
    """进度停滞 → 复盘: two consecutive no-progress touches put the customer under review."""

    __tablename__ = "escalations"
    __table_args__ = (Index("ix_escalations_customer", "customer_id", "status"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    status: Mapped[EscalationStatus] = mapped_column(_enum(EscalationStatus))
    checklist: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the 障碍分析清单 as sent
    raised_at: Mapped[dt.datetime]
    resolved_at: Mapped[dt.datetime | None]
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    advice: Mapped[str] = mapped_column(Text, default="")
    task_id: Mapped[str | None] = mapped_column(String(128))


class ResourceRequest(Base):
    """资源申请: a budget or support request, gated on stage evidence and approved by the manager."""

    __tablename__ = "resource_requests"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    purpose: Mapped[str] = mapped_column(Text, default="")
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"))
    evidence: Mapped[list[Any]] = mapped_column(default=list)  # the evidence list shown to the approver
    status: Mapped[ResourceRequestStatus] = mapped_column(_enum(ResourceRequestStatus))
    requested_at: Mapped[dt.datetime]
    decided_at: Mapped[dt.datetime | None]
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    task_id: Mapped[str | None] = mapped_column(String(128))


class Alert(Base):
    """预警: one episode of a rule for one subject: raised → notified → cleared / ignored.

    ``open_key`` ("rule:subject") is set while the episode is open and cleared when it ends, so
    a unique constraint guarantees one open episode per rule and subject on any database.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("open_key", name="uq_alerts_open_key"),
        Index("ix_alerts_rule_status", "rule", "status"),
        Index("ix_alerts_customer", "customer_id"),
        # Sweeps skip a rule's closed history; notification picks raised/notified episodes by time.
        Index("ix_alerts_rule_open_key", "rule", "open_key"),
        Index("ix_alerts_status_notified", "status", "notified_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule: Mapped[str] = mapped_column(String(32))
    open_key: Mapped[str | None] = mapped_column(String(96))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    severity: Mapped[str] = mapped_column(String(16), default="yellow")  # yellow | red
    status: Mapped[AlertStatus] = mapped_column(_enum(AlertStatus))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    raised_at: Mapped[dt.datetime]
    notified_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]


class ScriptPack(Base):
    """话术包 / 物料: titled markdown and/or a file, tagged for matching."""

    __tablename__ = "script_packs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    title: Mapped[str] = mapped_column(String(128), unique=True)
    body: Mapped[str] = mapped_column(Text, default="")
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(String(256), default="")
    # {"industry": [...], "stage": [...], "obstacle": [...], "competitor": [...]}
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[dt.datetime]
    # Retired by an admin: kept (the seed never brings it back) but no longer offered.
    retired_at: Mapped[dt.datetime | None]


class PackDelivery(Base):
    """A script pack pushed to a rep (by a rule, as a reward, or on request) — never twice per cause."""

    __tablename__ = "pack_deliveries"
    __table_args__ = (UniqueConstraint("member_id", "cause", name="uq_pack_deliveries_member_cause"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    pack_id: Mapped[int] = mapped_column(ForeignKey("script_packs.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    cause: Mapped[str] = mapped_column(String(128))  # e.g. "reward:3", "overdue:stage:12:customer:5"
    delivered_at: Mapped[dt.datetime]


class ObstacleResponse(Base):
    """常见障碍应答库: guidance per obstacle type."""

    __tablename__ = "obstacle_responses"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    obstacle: Mapped[str] = mapped_column(String(64), unique=True)
    guidance: Mapped[str] = mapped_column(Text)
    review_questions: Mapped[list[Any]] = mapped_column(default=list)
    updated_at: Mapped[dt.datetime]
    # Retired by an admin: kept (the seed never brings it back) but no longer offered.
    retired_at: Mapped[dt.datetime | None]


class Competitor(Base):
    """竞品库: a competitor with aliases and a counter-script."""

    __tablename__ = "competitors"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    aliases: Mapped[list[Any]] = mapped_column(default=list)
    counter_script: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime]
    # Retired by an admin: kept (the seed never brings it back) but no longer offered.
    retired_at: Mapped[dt.datetime | None]


class CompetitorIntel(Base):
    """竞品动态: a sighting reported by a rep."""

    __tablename__ = "competitor_intel"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    competitor_id: Mapped[int | None] = mapped_column(ForeignKey("competitors.id", ondelete="SET NULL"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text, default="")
    evidence_id: Mapped[int | None] = mapped_column(ForeignKey("evidence.id"))
    # A photo sent with no customer to file it under is kept here instead of as evidence.
    photo_path: Mapped[str | None] = mapped_column(String(256))
    reported_at: Mapped[dt.datetime]
    source_event_id: Mapped[int | None] = mapped_column(ForeignKey("inbox.id"), unique=True)


class CustomerFeedback(Base):
    """客户声音: checked options from a form or a card, and the actions they triggered."""

    __tablename__ = "customer_feedback"
    __table_args__ = (UniqueConstraint("source", "external_id", name="uq_customer_feedback_source_external"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(32))  # "webhook" | "card"
    external_id: Mapped[str] = mapped_column(String(128))
    options: Mapped[list[Any]] = mapped_column(default=list)
    comment: Mapped[str] = mapped_column(Text, default="")
    actions: Mapped[list[Any]] = mapped_column(default=list)
    received_at: Mapped[dt.datetime]


class CalendarDay(Base):
    """An admin-declared holiday or make-up working day (beyond what the holiday library knows)."""

    __tablename__ = "calendar_days"
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "holiday" | "workday"
    note: Mapped[str] = mapped_column(String(128), default="")


class JobRun(Base):
    """One run of a scheduled job for one period; the unique key makes it run once per period."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "period", name="uq_job_runs_job_period"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(32))  # e.g. "2026-11-30" or "2026-11-30T10:15"
    as_of: Mapped[dt.datetime]
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | done | failed
    summary: Mapped[str] = mapped_column(Text, default="")


class AuditEntry(Base):
    """审计: one admin change — who, what, before, after, when."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime]
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))  # None: the server CLI
    action: Mapped[str] = mapped_column(String(64))  # e.g. "rules.set", "member.transfer", "import"
    subject: Mapped[str] = mapped_column(String(256), default="")
    before: Mapped[dict[str, Any]] = mapped_column(default=dict)
    after: Mapped[dict[str, Any]] = mapped_column(default=dict)
