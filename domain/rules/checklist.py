"""障碍分析清单 (ObstacleChecklist): the review sheet a manager gets with an escalation.

A pure function from plain data: the caller gathers the customer, its last touches, obstacles
with their evidence, open alerts and the obstacle response library entries; ``build_checklist``
decides what goes on the sheet and in which order. Rendering it as text is the handler's job.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "AlertItem",
    "ChecklistInput",
    "EvidenceItem",
    "LibraryEntry",
    "ObstacleChecklist",
    "ObstacleItem",
    "TouchItem",
    "build_checklist",
    "obstacle_key",
]

MAX_TOUCHES = 3
MAX_QUESTIONS = 6
MAX_OBSTACLES = 5


@dataclass(frozen=True)
class TouchItem:
    occurred_on: dt.date
    channel: str
    summary: str
    stall_phrases: tuple[str, ...] = ()
    no_progress: bool = False


@dataclass(frozen=True)
class EvidenceItem:
    kind: str  # EvidenceKind value: photo, voice, video, file, text
    created_on: dt.date
    filename: str = ""


@dataclass(frozen=True)
class ObstacleItem:
    option: str  # e.g. 技术适配存疑
    status: str  # ObstacleStatus value
    answered_on: dt.date
    required_evidence: str | None = None  # e.g. 技术对接会议纪要
    evidence: tuple[EvidenceItem, ...] = ()
    needs_support: bool = False  # marked 需跨部门支持
    support_answered: bool = False


@dataclass(frozen=True)
class AlertItem:
    rule: str
    severity: str
    raised_on: dt.date
    text: str = ""  # a human description the alert carries, if any


@dataclass(frozen=True)
class LibraryEntry:
    """One entry of the obstacle response library (常见障碍应答库)."""

    obstacle: str
    guidance: str = ""
    review_questions: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChecklistInput:
    customer: str
    owner: str
    stage: str
    stage_entered_on: dt.date
    today: dt.date
    touches: Sequence[TouchItem]  # newest first
    obstacles: Sequence[ObstacleItem] = ()  # newest first
    alerts: Sequence[AlertItem] = ()
    library: Mapping[str, LibraryEntry] = field(default_factory=dict)  # by obstacle_key()
    default_questions: Sequence[str] = ()
    key_obstacle: str = ""  # 关键障碍 recorded on the customer (e.g. from an Excel import)


@dataclass(frozen=True)
class ObstacleChecklist:
    customer: str
    owner: str
    stage: str
    days_in_stage: int
    touches: tuple[TouchItem, ...]
    stall_phrases: tuple[str, ...]
    obstacles: tuple[ObstacleItem, ...]
    alerts: tuple[AlertItem, ...]
    guidance: tuple[LibraryEntry, ...]  # library guidance for the customer's obstacles
    questions: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (dates as ISO strings), as stored on the escalation."""
        return {key: _jsonable(value) for key, value in asdict(self).items()}


_KEY_NOISE = re.compile(r"[\s①②③④⑤⑥⑦⑧⑨⑩0-9.、::()()]+")


def obstacle_key(option: str) -> str:
    """The library key of an obstacle option: "② 技术适配存疑" and "技术适配存疑" are one."""
    return _KEY_NOISE.sub("", option)


def build_checklist(data: ChecklistInput) -> ObstacleChecklist:
    touches = tuple(data.touches[:MAX_TOUCHES])
    # Stall phrases of the stalled touches shown, oldest first, each once.
    phrases = tuple(
        dict.fromkeys(p for touch in reversed(touches) if touch.no_progress for p in touch.stall_phrases)
    )
    # Unresolved obstacles first (they are what the review is about), then the newest.
    obstacles = tuple(
        sorted(data.obstacles, key=lambda o: (o.status == "resolved", -o.answered_on.toordinal()))[:MAX_OBSTACLES]
    )
    guidance: list[LibraryEntry] = []
    questions: list[str] = []
    keys = [obstacle_key(o.option) for o in obstacles if o.status != "resolved"]
    if data.key_obstacle.strip():
        keys.append(obstacle_key(data.key_obstacle))
    for key in dict.fromkeys(keys):
        entry = data.library.get(key)
        if entry is None:
            continue
        guidance.append(entry)
        questions.extend(q.strip() for q in entry.review_questions if q.strip())
    if not questions:
        questions = [q for q in data.default_questions if q.strip()]
    return ObstacleChecklist(
        customer=data.customer,
        owner=data.owner,
        stage=data.stage,
        days_in_stage=max(0, (data.today - data.stage_entered_on).days),
        touches=touches,
        stall_phrases=phrases,
        obstacles=obstacles,
        alerts=tuple(sorted(data.alerts, key=lambda a: (a.severity != "red", a.raised_on))),
        guidance=tuple(guidance),
        questions=tuple(dict.fromkeys(questions))[:MAX_QUESTIONS],
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
