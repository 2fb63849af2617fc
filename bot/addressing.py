"""Turning handler replies into outbox items: who, on which platform, at which address.

A reply without an addressee goes back where the event came from. A reply to a member goes to
the platform the member is talking on when possible, else to the first configured platform they
have an identity on, else to the console. Group replies go to the team's first configured group
channel, else to the console's group feed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.events import Event
from bot.platforms.base import Platform
from bot.replies import CardReply, Reply, ToGroup, ToMember, reply_kind, reply_payload
from storage import cards as card_store
from storage import members as member_store
from storage import outbox
from storage.models import Member

CONSOLE = "console"


class QueuedReplies:
    """Outbox and card rows routed during a batch transaction, written together before it commits.

    The inbox's batch handles several members' messages in one transaction; their replies are
    written with one statement per table for the whole batch instead of two per message. Nothing
    in that transaction reads them back (they are sent only after it commits), and a rolled-back
    transaction drops the object with it.
    """

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.cards: list[dict[str, Any]] = []

    async def write(self, session: AsyncSession, now: dt.datetime) -> None:
        """Queue what was collected (in the order it was routed), then forget it."""
        messages, cards = self.messages, self.cards
        self.messages, self.cards = [], []
        if messages or cards:
            await session.flush()
            await card_store.record_cards(session, cards, now=now)
            await outbox.enqueue_many(session, messages, now=now)


class ReplyRouter:
    def __init__(self, platforms: Mapping[str, Platform], preference: Sequence[str]) -> None:
        self.platforms = platforms
        # Chat platforms in the order pushes prefer them; the console is always last.
        self.preference = [p for p in preference if p in platforms and p != CONSOLE] + [CONSOLE]

    async def enqueue(
        self,
        session: AsyncSession,
        replies: Sequence[Reply],
        *,
        event: Event | None,
        sender: Member | None,
        inbox_id: int | None,
        now: dt.datetime,
        into: QueuedReplies | None = None,
    ) -> None:
        """Route ``replies`` and queue them now, or — ``into`` — collect them for that batch's write."""
        # Core inserts, one statement per table: the ORM's unit of work is not needed for rows
        # nothing in this transaction reads back as objects.
        queued = into if into is not None else QueuedReplies()
        messages, cards = queued.messages, queued.cards
        for reply in replies:
            platform, target_kind, target_id, address = await self._route(session, reply, event, sender)
            payload = reply_payload(reply)
            messages.append({
                "platform": platform, "target_kind": target_kind, "target_id": target_id, "target": address,
                "kind": reply_kind(reply), "payload": payload, "source_event_id": inbox_id,
            })
            if isinstance(reply, CardReply):
                cards.append({
                    "task_id": reply.card.task_id,
                    "kind": reply.card.task_id.split("-", 1)[0],
                    "member_id": target_id if target_kind == "member" else None,
                    "payload": payload["card"],
                })
        if into is None:
            await queued.write(session, now)

    async def _route(
        self, session: AsyncSession, reply: Reply, event: Event | None, sender: Member | None
    ) -> tuple[str, str, int, str]:
        to = reply.to
        if to is None:
            if event is None or event.platform not in self.platforms:
                raise ValueError(f"reply {reply!r} has no addressee")
            # An unknown sender still gets the refusal, at their raw platform address (member id 0).
            return event.platform, "member", sender.id if sender else 0, event.conversation or event.sender
        if isinstance(to, ToMember):
            member = await member_store.get_member(session, to.member_id)
            if member is None:
                raise ValueError(f"no member {to.member_id}")
            candidates = list(self.preference)
            if event is not None and event.platform in self.platforms:
                candidates.insert(0, event.platform)
            for name in candidates:
                address = self.platforms[name].member_address(member)
                if address:
                    return name, "member", member.id, address
            raise ValueError(f"member {member.id} has no address")
        if isinstance(to, ToGroup):
            team = await member_store.get_team(session, to.team_id)
            if team is None:
                raise ValueError(f"no team {to.team_id}")
            for name in self.preference:
                address = self.platforms[name].group_address(team)
                if address:
                    return name, "group", team.id, address
            raise ValueError(f"team {team.id} has no group address")
        raise TypeError(f"unknown addressee {to!r}")
