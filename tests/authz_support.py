"""What the authorization matrix runs on: one migrated database per module, a cell per transaction.

``World`` is built once per test module (migrations, library seed, the org below, one customer per
owner) and committed. Each cell then runs inside a transaction that is rolled back afterwards, so
cells never see each other's changes and the database is migrated only once.

The org: two teams (east: mgr.wang with rep.li and rep.zhao; south: mgr.chen with rep.sun and rep.zhou), two
supporters without a team, and two admins (so that an admin's own request still has an approver).
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from PIL import Image
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.bootstrap import build_runtime
from bot.clock import FrozenClock
from bot.config import config_from_dict
from bot.context import Ctx
from bot.events import Event, EventKind, MediaRef
from bot.replies import Reply
from bot.runtime import Runtime
from cards.model import Button, Card, CardAction, ChoiceMode, new_task_id
from storage import cards as card_store
from storage import customers as customer_store
from storage import dialogues
from storage import members as member_store
from storage.models import Base, Customer, Member

SHANGHAI = ZoneInfo("Asia/Shanghai")
# A Wednesday morning in Shanghai.
NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI)

ORG = """
[[teams]]
key = "east"
name = "华东一组"
manager = "mgr.wang"

[[teams]]
key = "south"
name = "华南组"
manager = "mgr.chen"

[[members]]
code = "mgr.wang"
name = "王静"
role = "manager"
team = "east"

[[members]]
code = "mgr.chen"
name = "陈涛"
role = "manager"
team = "south"

[[members]]
code = "rep.li"
name = "李明"
role = "rep"
team = "east"

[[members]]
code = "rep.zhao"
name = "赵磊"
role = "rep"
team = "east"

[[members]]
code = "rep.sun"
name = "孙悦"
role = "rep"
team = "south"

[[members]]
code = "rep.zhou"
name = "周宁"
role = "rep"
team = "south"

[[members]]
code = "sup.liu"
name = "刘工"
role = "supporter"

[[members]]
code = "sup.ma"
name = "马工"
role = "supporter"

[[members]]
code = "admin.he"
name = "何敏"
role = "admin"

[[members]]
code = "admin.qian"
name = "钱进"
role = "admin"
"""

# One customer per owner; the names share no part with each other, a stage or a competitor.
CUSTOMER_OF = {
    "rep.li": "华东建材",
    "rep.zhao": "北辰科技",
    "rep.sun": "南粤制药",
    "mgr.wang": "王氏商贸",
    "mgr.chen": "陈氏物流",
    "admin.he": "何记集团",
}


@dataclass
class World:
    runtime: Runtime

    @asynccontextmanager
    async def cell(self) -> AsyncIterator[Scene]:
        """A scene whose every change is rolled back when the cell ends."""
        async with self.runtime.sessions() as session:
            transaction = await session.begin()
            try:
                yield Scene(self.runtime, session)
            finally:
                await transaction.rollback()


async def build_world(tmp: Path) -> World:
    (tmp / "org.toml").write_text(ORG, encoding="utf-8")
    config = config_from_dict({
        "storage": {"url": f"sqlite+aiosqlite:///{tmp}/pacebot.db", "data_dir": str(tmp / "data")},
        "org": {"directory": str(tmp / "org.toml")},
        "scheduler": {"enabled": False},
    })
    runtime = await build_runtime(config, clock=FrozenClock(NOW))
    async with runtime.sessions() as session, session.begin():
        for owner, name in CUSTOMER_OF.items():
            member = await member_store.member_by_code(session, owner)
            assert member is not None, owner
            customer = await customer_store.create_lead(session, owner_id=member.id, name=name, now=NOW - dt.timedelta(days=2))
            customer.last_touch_at = NOW - dt.timedelta(days=1)
    return World(runtime)


@dataclass
class Scene:
    """One cell: a session inside a transaction that will be rolled back, and helpers to act in it."""

    runtime: Runtime
    session: AsyncSession

    async def member(self, code: str) -> Member:
        found = await member_store.member_by_code(self.session, code)
        assert found is not None, code
        return found

    async def customer_of(self, owner: str) -> Customer:
        found = await self.session.scalar(select(Customer).where(Customer.name == CUSTOMER_OF[owner]))
        assert found is not None, owner
        return found

    def dialogue_key(self, member: Member) -> dialogues.DialogueKey:
        return dialogues.DialogueKey("console", member.code, member.id)

    async def start_dialogue(self, member: Member, state: str, data: dict[str, Any]) -> None:
        await dialogues.save_dialogue(self.session, self.dialogue_key(member), state, data, NOW, dt.timedelta(minutes=30))

    async def send_card(
        self, holder: Member, *actions: CardAction, options: Sequence[tuple[str, str]] = (), task_id: str | None = None
    ) -> Card:
        """A card addressed to ``holder`` offering ``actions`` (a choice card of ``options``, given as
        (label, key), submitted by the one action)."""
        if options:
            [submit] = actions
            card = Card(
                task_id=task_id or new_task_id("authz"), title="卡片", choice_mode=ChoiceMode.MULTIPLE,
                options=tuple(Button(label, key) for label, key in options), submit=Button("提交", submit.pack()),
            )
        else:
            card = Card(
                task_id=task_id or new_task_id("authz"), title="卡片",
                buttons=tuple(Button(f"按钮{n}", a.pack()) for n, a in enumerate(actions)),
            )
        card_store.record_card(
            self.session, task_id=card.task_id, kind=card.task_id.split("-", 1)[0], member_id=holder.id,
            payload=card.to_json(), now=NOW,
        )
        await self.session.flush()
        return card

    async def dispatch(self, member: Member, event: Event) -> list[Reply]:
        ctx = Ctx(
            session=self.session, clock=FrozenClock(NOW), config=self.runtime.config, event=event, member=member,
            media=self.runtime.media,
        )
        return await self.runtime.dispatcher.dispatch(ctx)

    async def say(self, member: Member, text: str) -> list[Reply]:
        return await self.dispatch(member, _event(member, EventKind.TEXT, text=text))

    async def click(
        self, member: Member, card: Card, action: CardAction | str, values: Sequence[str] = ()
    ) -> list[Reply]:
        packed = action if isinstance(action, str) else action.pack()
        event = _event(member, EventKind.ACTION, action=packed, task_id=card.task_id, action_values=tuple(values))
        return await self.dispatch(member, event)

    async def photo(self, member: Member, caption: str) -> list[Reply]:
        data = jpeg_bytes()
        sha = self.runtime.media.stage(data)
        media = MediaRef(filename="photo.jpg", mime="image/jpeg", size=len(data), staged_sha256=sha)
        return await self.dispatch(member, _event(member, EventKind.IMAGE, text=caption, media=media))

    async def snapshot(self) -> dict[str, str]:
        """Every row of every table, each table as one string, read in a single statement."""
        await self.session.flush()
        return {name: rows or "" for name, rows in (await self.session.execute(text(_snapshot_sql()))).all()}


@functools.cache
def _snapshot_sql() -> str:
    """One SQLite statement: per table, its rows (every column quoted) joined in a stable order."""
    parts = []
    for table in Base.metadata.sorted_tables:
        row = " || ',' || ".join(f'quote("{column.name}")' for column in table.columns)
        parts.append(
            f"SELECT '{table.name}', (SELECT group_concat(r, '|') FROM "
            f'(SELECT {row} AS r FROM "{table.name}" ORDER BY 1))'
        )
    return " UNION ALL ".join(parts)


def changed_tables(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {name for name in before if before[name] != after[name]}


def _event(member: Member, kind: EventKind, **fields: Any) -> Event:
    return Event(
        platform="console", platform_msg_id=uuid.uuid4().hex, kind=kind, sender=member.code,
        conversation=member.code, occurred_at=NOW, **fields,
    )


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(buffer, "JPEG")
    return buffer.getvalue()
