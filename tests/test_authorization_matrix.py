"""Least privilege, cell by cell (SPEC §11): who may use which command, click which card, and act
on whose customer.

Actors, one per role: rep.li (rep, team east), mgr.wang (manager of east), sup.liu (supporter, no
team), admin.he (admin). Each acts on a customer that is

- ``own``: the actor's own customer (a supporter owns none),
- ``peer``: another rep's customer — of the actor's team for rep.li and mgr.wang (so, for the
  manager, a customer of the team they manage); simply another rep's for sup.liu and admin.he,
- ``other_team``: a customer of a rep in the other team.

Every cell runs at handler level (a ``Ctx`` handed to ``Dispatcher.dispatch``) in a transaction
that is rolled back afterwards, on one database migrated once for the module. An allowed cell
asserts the effect; a refused cell asserts the exact Chinese refusal and that no row of any table
changed (a few refusals also tidy up the actor's own question or a stale request: those name the
tables they may touch in ``may_change``).

The matrix is complete by construction:

- ``COMMANDS`` has one line per registered slash command. The cells are generated from the
  dispatcher's registered routes, so a command registered without a line here FAILS
  (``test_every_registered_command_has_a_matrix_entry`` and its cells). Adding a command means
  adding one line, saying who may use it and which customer-scoped case covers its customer
  argument: ``"/名称": Entry(ADMINS, NO_CUSTOMER)``, ``Entry(EVERYONE, "/名称 <客户>")`` (and that
  case in ``CASES``), or any set of roles.
- ``CASES`` lists the customer-scoped actions (a message, a command with a customer, a card click,
  an answer to the question a card asked). Every card action class registered on any router must
  be clicked by at least one case (``action=``), else ``test_every_registered_card_action_has_a_case``
  FAILS; a new card action means one new ``Case``. Each such class also gets the card cells:
  someone else's card (refused whatever it carries) and a payload its card does not offer.

The few behaviours that do not fit the grid (options a choice card does not offer, who answers a
support request, numbered replies to cards) have their own tests at the end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from bot import texts as bot_texts
from bot.config import TouchConfig
from bot.dispatcher import build_dispatcher
from bot.replies import CardReply, CardUpdate, Markdown, Reply, Text, ToMember
from cards.model import CardAction
from domain.enums import (
    Channel,
    EscalationStatus,
    EvidenceKind,
    ResourceRequestStatus,
    Role,
    StageChangeStatus,
)
from handlers import texts as touch_texts
from handlers import texts_admin, texts_escalation, texts_library, texts_resources, texts_stages
from handlers.calibration import OpenLibrary
from handlers.directory import GiveClash, KeepClash
from handlers.escalation import CancelTransfer as CancelTransferAction
from handlers.escalation import ChooseNewOwner, EscalationState, StartReview, StartSnooze, TransferTo
from handlers.evidence import DropAttachment, EvidenceState, FileUnder
from handlers.feedback import FeedbackOption, SubmitFeedback
from handlers.obstacles import AnswerObstacle, AskSupport, WithdrawChange
from handlers.resources import Approve, Reject, ResourceState
from handlers.touches import (
    CancelDraft,
    ChooseAnswer,
    ConfirmReading,
    CreateLead,
    PickCustomer,
    TouchState,
    UndoTouch,
)
from storage import escalations as escalation_store
from storage import obstacles as obstacle_store
from storage import resources as resource_store
from storage import stages as stage_store
from storage import touches as touch_store
from storage.models import (
    CompetitorIntel,
    Customer,
    CustomerFeedback,
    Dialogue,
    Escalation,
    Evidence,
    Member,
    Obstacle,
    ResourceRequest,
    StageChange,
    SupportRequest,
    Touch,
)
from tests.authz_support import NOW, Scene, World, build_world, changed_tables, jpeg_bytes

IN_MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")  # the world lives in the module's loop

ACTORS = {Role.REP: "rep.li", Role.MANAGER: "mgr.wang", Role.SUPPORTER: "sup.liu", Role.ADMIN: "admin.he"}
# Whose customer each relation means, per actor.
OWNERS: dict[str, dict[str, str]] = {
    "rep.li": {"own": "rep.li", "peer": "rep.zhao", "other_team": "rep.sun"},
    "mgr.wang": {"own": "mgr.wang", "peer": "rep.li", "other_team": "rep.sun"},
    "sup.liu": {"peer": "rep.li", "other_team": "rep.sun"},
    "admin.he": {"own": "admin.he", "peer": "rep.li", "other_team": "rep.sun"},
}
# A rep of the same team as each owner (a transfer target); the admin's customer has no team.
TRANSFER_TARGET = {"rep.li": "rep.zhao", "rep.zhao": "rep.li", "rep.sun": "rep.zhou", "mgr.wang": "rep.li",
                   "admin.he": "rep.li"}
NEXT_STAGE = "初步沟通"
COMPETITOR = "蓝盾防水"  # in the shipped competitor library  # the stage after 新线索 in the default pipeline

Policy = Callable[[Role, str], bool]
Refusal = Callable[[Customer | None, list[Reply], Member], None]  # asserts what a refused actor was told


def own_only(role: Role, relation: str) -> bool:
    return relation == "own"


def own_but_no_supporter(role: Role, relation: str) -> bool:
    """Supporters own no customers: they create no leads."""
    return relation == "own" and role is not Role.SUPPORTER


def visible(role: Role, relation: str) -> bool:
    """What ``customers_visible_to`` allows: own, the team a manager manages, everything for admins."""
    return relation == "own" or role is Role.ADMIN or (role is Role.MANAGER and relation == "peer")


def movable_by_text(role: Role, relation: str) -> bool:
    return role is not Role.SUPPORTER and visible(role, relation)


def clash_decider(role: Role, relation: str) -> bool:
    """撞单: the customer's team manager or an admin decides who keeps it."""
    return role is Role.ADMIN or (role is Role.MANAGER and relation in ("own", "peer"))


def reviewer(role: Role, relation: str) -> bool:
    """Escalations and requests: the owner's team manager or an admin — never the owner themselves."""
    return relation != "own" and (role is Role.ADMIN or (role is Role.MANAGER and relation == "peer"))


# ------------------------------------------------------------------------------ commands

EVERYONE: frozenset[Role] = frozenset(Role)
ADMINS: frozenset[Role] = frozenset({Role.ADMIN})
MANAGERS: frozenset[Role] = frozenset({Role.MANAGER, Role.ADMIN})  # a manager's own team; admins any


NO_CUSTOMER = None  # the command names no customer


@dataclass(frozen=True)
class Entry:
    """Who may use a command, and the customer-scoped case covering its customer argument (or
    ``NO_CUSTOMER``): both must be stated."""

    roles: frozenset[Role]
    case: str | None


# One line per registered command (its first name). A command registered without a line fails.
COMMANDS: dict[str, Entry] = {
    "/帮助": Entry(EVERYONE, NO_CUSTOMER),
    "/今日": Entry(EVERYONE, NO_CUSTOMER),
    "/客户": Entry(EVERYONE, "/客户 <客户>"),
    "/阶段": Entry(EVERYONE, "/阶段 <客户> <阶段>"),
    "/申请": Entry(EVERYONE, "/申请 <客户>"),
    "/竞品": Entry(EVERYONE, "/竞品 <竞品> <客户>"),
    "/话术": Entry(EVERYONE, NO_CUSTOMER),
    "/反馈": Entry(EVERYONE, "/反馈 <客户>"),
    "/规则": Entry(ADMINS, NO_CUSTOMER),
    # Team views: a manager reaching another team is refused (tests/test_digest.py covers that scope).
    "/看板": Entry(MANAGERS, NO_CUSTOMER),
    "/团队": Entry(MANAGERS, NO_CUSTOMER),
    "/校准": Entry(MANAGERS, NO_CUSTOMER),
    "/导入": Entry(ADMINS, NO_CUSTOMER),
    "/导出": Entry(MANAGERS, NO_CUSTOMER),  # a manager exports their team only (tests/test_export.py)
    "/成员": Entry(ADMINS, NO_CUSTOMER),
    "/应答库": Entry(ADMINS, NO_CUSTOMER),
    "/竞品库": Entry(ADMINS, NO_CUSTOMER),
    "/死信": Entry(ADMINS, NO_CUSTOMER),
}

DISPATCHER = build_dispatcher()  # pure: the registered routes, no database
COMMAND_CELLS = [
    pytest.param(route.names[0], name, role, id=f"{name}-{role.value}")
    for route in DISPATCHER.command_routes
    for name in route.names
    for role in ACTORS
]
ACTION_CLASSES = {route.payload for router in DISPATCHER.routers for route in router.actions}


# ------------------------------------------------------------------------------ the world


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    built = await build_world(Path(tmp_path_factory.mktemp("authz")))
    yield built
    await built.runtime.engine.dispose()


async def rows(scene: Scene, model: Any, **where: Any) -> list[Any]:
    query = select(model).filter_by(**where)
    if hasattr(model, "id"):
        query = query.order_by(model.id)
    return list(await scene.session.scalars(query))


def texts_of(replies: list[Reply]) -> list[str]:
    return [r.text for r in replies if isinstance(r, Text | Markdown)]


# ------------------------------------------------------------------------------ the cases


Prep = dict[str, Any]


@dataclass(frozen=True)
class Case:
    """One customer-scoped action: set it up for a subject customer, do it, and judge the outcome.

    ``prepare`` builds what the action needs (a touch, a request, a card addressed to ``holder``),
    ``act`` does it as the actor, ``effect`` asserts what an allowed action changed and
    ``refusal`` what a refused one answers. ``scoped=False``: the payload names no customer (the
    actor's own draft or card), so only the actor's own cell exists.
    """

    name: str
    policy: Policy
    prepare: Callable[[Scene, Member, Customer | None], Awaitable[Prep]]
    act: Callable[[Scene, Member, Customer | None, Prep], Awaitable[list[Reply]]]
    effect: Callable[[Scene, Member, Customer | None, Prep, list[Reply]], Awaitable[None]]
    refusal: Refusal
    action: type[CardAction] | None = None
    scoped: bool = True
    may_change: frozenset[str] = frozenset()
    # A role refused another way (its own refusal and the tables it may touch).
    otherwise: dict[Role, tuple[Refusal, frozenset[str]]] | None = None

    def refused(self, role: Role) -> tuple[Refusal, frozenset[str]]:
        return (self.otherwise or {}).get(role, (self.refusal, self.may_change))


async def nothing(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    return {}


def says(template: str, **fields: str) -> Refusal:
    """The refusal is exactly ``template`` ({name} / {customer}: the subject's name)."""

    def check(subject: Customer | None, replies: list[Reply], actor: Member) -> None:
        name = subject.name if subject is not None else ""
        expected = template.format(name=name, customer=name, **fields)
        assert replies == [Text(expected)], replies

    return check


def says_unless_own(template: str, own_template: str) -> Refusal:
    """``own_template`` when the actor is the subject's owner (told so), else ``template``."""

    def check(subject: Customer | None, replies: list[Reply], actor: Member) -> None:
        assert subject is not None
        chosen = own_template if subject.owner_id == actor.id else template
        assert replies == [Text(chosen.format(customer=subject.name))], replies

    return check


def supporters_log_no_touches(subject: Customer | None, replies: list[Reply], actor: Member) -> None:
    assert replies == [Text(touch_texts.SUPPORTER_NO_TOUCHES)], replies


def offers_a_new_lead(subject: Customer | None, replies: list[Reply], actor: Member) -> None:
    """Not the actor's customer: touch logging does not reach it and offers a lead of their own."""
    [reply] = replies
    assert isinstance(reply, CardReply) and reply.card.title == touch_texts.NEW_LEAD_TITLE, replies


def reports_a_clash(subject: Customer | None, replies: list[Reply], actor: Member) -> None:
    """撞单: another's customer is not reached and not created again; the actor is told whose it is
    and the owner's manager (or an admin) gets a card to decide."""
    assert subject is not None
    first, *cards = replies
    assert isinstance(first, Text) and f"「{subject.name}」" in first.text and "撞单" in first.text, replies
    assert cards and all(isinstance(card, CardReply) for card in cards), replies


def no_customer_to_file_under(subject: Customer | None, replies: list[Reply], actor: Member) -> None:
    """Not a customer the actor may file under: the photo waits for a touch of the actor's own."""
    minutes = TouchConfig().evidence_window_minutes
    assert replies == [Text(touch_texts.EVIDENCE_NO_CUSTOMERS.format(kind="照片", minutes=minutes))], replies


def say(text: str) -> Callable[[Scene, Member, Customer | None, Prep], Awaitable[list[Reply]]]:
    async def act(scene: Scene, actor: Member, subject: Customer | None, prep: Prep) -> list[Reply]:
        assert subject is not None
        return await scene.say(actor, text.format(name=subject.name))

    return act


def photo(caption: str) -> Callable[[Scene, Member, Customer | None, Prep], Awaitable[list[Reply]]]:
    async def act(scene: Scene, actor: Member, subject: Customer | None, prep: Prep) -> list[Reply]:
        assert subject is not None
        return await scene.photo(actor, caption.format(name=subject.name))

    return act


async def click(scene: Scene, actor: Member, subject: Customer | None, prep: Prep) -> list[Reply]:
    return await scene.click(actor, prep["card"], prep["action"], prep.get("values", ()))


async def owner_of(scene: Scene, customer: Customer) -> Member:
    owner = await scene.session.get(Member, customer.owner_id)
    assert owner is not None
    return owner


# --- set-ups -----------------------------------------------------------------------------------


async def a_touch(scene: Scene, customer: Customer, *, effective: bool = False) -> Touch:
    """A touch the customer's owner logged yesterday (with a photo when ``effective``)."""
    owner = await owner_of(scene, customer)
    touch = await touch_store.record_touch(
        scene.session, customer=customer, member_id=owner.id, channel=Channel.PHONE, duration_minutes=20,
        summary="聊了报价", raw_text=f"{customer.name} 电话20分钟 聊了报价,明天发报价单", next_action="发报价单",
        next_due=(NOW + dt.timedelta(days=1)).date(), proposal=False, occurred_at=NOW - dt.timedelta(days=1),
        source_event_id=None,
    )
    if effective:
        touch.effective = True
        await touch_store.add_evidence(
            scene.session, customer_id=customer.id, member_id=owner.id, touch_id=touch.id, kind=EvidenceKind.PHOTO,
            sha256=None, path=None, thumb_path=None, mime="image/jpeg", size=1, filename="visit.jpg", note="",
            attributes={}, now=NOW - dt.timedelta(days=1), source_event_id=None,
        )
    return touch


async def a_change(scene: Scene, customer: Customer, requester: Member) -> StageChange:
    stages = await stage_store.pipeline_stages(scene.session, customer.pipeline_id)
    target = next(s for s in stages if s.name == NEXT_STAGE)
    return await stage_store.request_change(
        scene.session, customer=customer, to_stage_id=target.id, member_id=requester.id, reason="",
        task_id="obst-authz", now=NOW,
    )


async def an_escalation(scene: Scene, customer: Customer) -> Escalation:
    return await escalation_store.raise_escalation(
        scene.session, customer=customer, manager_id=None, checklist={"touch_ids": []}, task_id=None, now=NOW,
    )


async def a_request(scene: Scene, customer: Customer) -> ResourceRequest:
    owner = await owner_of(scene, customer)
    return await resource_store.create_request(
        scene.session, customer=customer, member_id=owner.id, kind="技术支持", amount=None, purpose="现场测试",
        evidence=[], task_id=None, now=NOW,
    )


def a_draft(**extra: Any) -> dict[str, Any]:
    return {
        "raw_text": "电话20分钟 聊了报价,明天发报价单", "channel": Channel.PHONE.value, "duration": 20,
        "summary": "聊了报价", "next_action": "发报价单", "next_due": (NOW + dt.timedelta(days=1)).date().isoformat(),
        "proposal": False, **extra,
    }


# --- prepare functions: what each action needs, with a card addressed to ``holder`` -------------


async def prep_undo(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    assert subject is not None
    touch = await a_touch(scene, subject)
    action = UndoTouch(touch.id)
    return {"touch": touch, "action": action, "card": await scene.send_card(holder, action)}


async def prep_pick(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    assert subject is not None
    action = PickCustomer(subject.id)
    card = await scene.send_card(holder, action, CancelDraft())
    await scene.start_dialogue(holder, TouchState.CUSTOMER, a_draft(candidates=[subject.id], card=card.task_id))
    return {"action": action, "card": card}


async def prep_new_lead(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    action = CreateLead()
    card = await scene.send_card(holder, action, CancelDraft())
    await scene.start_dialogue(holder, TouchState.NEW_LEAD, a_draft(lead_name="东湖新材", card=card.task_id))
    return {"action": action, "card": card}


async def prep_cancel_draft(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    action = CancelDraft()
    card = await scene.send_card(holder, CreateLead(), action)
    await scene.start_dialogue(holder, TouchState.NEW_LEAD, a_draft(lead_name="东湖新材", card=card.task_id))
    return {"action": action, "card": card}


async def prep_choose_answer(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    """The holder began a touch on the subject and was asked which day, with likely days as buttons
    (the customer may have been transferred away since)."""
    assert subject is not None
    action = ChooseAnswer(0)
    card = await scene.send_card(holder, action, CancelDraft())
    tomorrow = (NOW + dt.timedelta(days=1)).date().isoformat()
    draft = a_draft(customer_id=subject.id, next_due=None, choices=[{"label": "明天", "due": tomorrow}],
                    card=card.task_id)
    await scene.start_dialogue(holder, TouchState.NEXT, draft)
    return {"action": action, "card": card}


async def prep_confirm_reading(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    """A touch saved with a low-confidence reading; its card asks the holder 是指 … 吗? (The answer
    only closes the question on the holder's own card: the touch itself is not read.)"""
    action = ConfirmReading(1)
    return {"action": action, "card": await scene.send_card(holder, action, UndoTouch(1))}


async def prep_open_library(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    """The Friday calibration card sent to the holder (an admin card in production)."""
    action = OpenLibrary(int(NOW.timestamp()))
    return {"action": action, "card": await scene.send_card(holder, action)}


def prep_clash(kind: type[GiveClash] | type[KeepClash]) -> Callable[[Scene, Member, Customer | None], Awaitable[Prep]]:
    """A rep of the owner's team named the subject as a new lead; the 撞单 card went to the holder."""

    async def prepare(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
        assert subject is not None
        owner = await owner_of(scene, subject)
        asking = await scene.member(TRANSFER_TARGET[owner.code])
        action = kind(subject.id, asking.id)
        card = await scene.send_card(holder, GiveClash(subject.id, asking.id), KeepClash(subject.id, asking.id))
        return {"action": action, "card": card, "asking": asking, "owner": owner}

    return prepare


async def given_to_asking_rep(scene: Scene, actor: Member, subject: Customer | None, prep: Prep,
                              replies: list[Reply]) -> None:
    assert subject is not None
    await scene.session.refresh(subject)
    assert subject.owner_id == prep["asking"].id


async def kept_with_owner(scene: Scene, actor: Member, subject: Customer | None, prep: Prep,
                          replies: list[Reply]) -> None:
    assert subject is not None
    await scene.session.refresh(subject)
    assert subject.owner_id == prep["owner"].id
    assert isinstance(replies[0], CardUpdate), replies


async def _waiting_attachment(scene: Scene, holder: Member, *actions: CardAction) -> Prep:
    sha = scene.runtime.media.stage(jpeg_bytes())
    card = await scene.send_card(holder, *actions)
    await scene.start_dialogue(holder, EvidenceState.CUSTOMER, {
        "sha256": sha, "kind": EvidenceKind.PHOTO.value, "filename": "visit.jpg", "mime": "image/jpeg",
        "caption": "", "source_event_id": None, "card": card.task_id,
    })
    return {"card": card}


async def prep_file_under(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    assert subject is not None
    action = FileUnder(subject.id)
    return {"action": action, **await _waiting_attachment(scene, holder, action, DropAttachment())}


async def prep_drop(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    action = DropAttachment()
    return {"action": action, **await _waiting_attachment(scene, holder, action)}


async def prep_answer_owners_change(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    """The subject's owner asked to move it; the obstacle card's answer is clicked."""
    assert subject is not None
    change = await a_change(scene, subject, await owner_of(scene, subject))
    action = AnswerObstacle(change.id, 0)
    return {"change": change, "action": action, "card": await scene.send_card(holder, action, WithdrawChange(change.id))}


async def prep_answer_own_request(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    """The card holder asked to move the subject (e.g. a manager moving a team customer), and the
    subject is answered for later — still in scope, or transferred out of it meanwhile."""
    assert subject is not None
    change = await a_change(scene, subject, holder)
    action = AnswerObstacle(change.id, 0)
    return {"change": change, "action": action, "card": await scene.send_card(holder, action, WithdrawChange(change.id))}


async def prep_withdraw(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    assert subject is not None
    change = await a_change(scene, subject, await owner_of(scene, subject))
    action = WithdrawChange(change.id)
    return {"change": change, "action": action, "card": await scene.send_card(holder, AnswerObstacle(change.id, 0), action)}


async def prep_support(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    assert subject is not None
    owner = await owner_of(scene, subject)
    obstacle = await obstacle_store.record_obstacle(
        scene.session, customer_id=subject.id, stage_id=subject.stage_id, stage_change_id=None, member_id=owner.id,
        option="价格异议", required_evidence=None, now=NOW,
    )
    action = AskSupport(obstacle.id)
    return {"obstacle": obstacle, "action": action, "card": await scene.send_card(holder, action)}


def prep_escalation(make: Callable[[Escalation, Customer], CardAction]) -> Callable[..., Awaitable[Prep]]:
    async def prepare(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
        assert subject is not None
        escalation = await an_escalation(scene, subject)
        action = make(escalation, subject)
        return {"escalation": escalation, "action": action, "card": await scene.send_card(holder, action)}

    return prepare


async def prep_transfer(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    assert subject is not None
    escalation = await an_escalation(scene, subject)
    owner = await owner_of(scene, subject)
    target = await scene.member(TRANSFER_TARGET[owner.code])
    action = TransferTo(escalation.id, target.id)
    card = await scene.send_card(holder, action, CancelTransferAction())
    return {"escalation": escalation, "target": target, "action": action, "card": card}


async def prep_cancel_transfer(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    action = CancelTransferAction()
    return {"action": action, "card": await scene.send_card(holder, action)}


def prep_request(make: Callable[[int], CardAction]) -> Callable[..., Awaitable[Prep]]:
    async def prepare(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
        assert subject is not None
        request = await a_request(scene, subject)
        action = make(request.id)
        return {"request": request, "action": action, "card": await scene.send_card(holder, Approve(request.id), Reject(request.id))}

    return prepare


async def prep_feedback(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    assert subject is not None
    action = SubmitFeedback(subject.id)
    option = str(scene.runtime.config.feedback.rules[0]["option"])
    card = await scene.send_card(holder, action, options=[(option, FeedbackOption(0).pack())])
    return {"action": action, "card": card, "values": (FeedbackOption(0).pack(),), "option": option}


async def prep_dialogue(scene: Scene, holder: Member, state: str, data: dict[str, Any]) -> None:
    await scene.start_dialogue(holder, state, data)


async def prep_advice(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    assert subject is not None
    escalation = await an_escalation(scene, subject)
    await prep_dialogue(scene, holder, EscalationState.ADVICE, {"escalation_id": escalation.id})
    return {"escalation": escalation}


async def prep_snooze(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    assert subject is not None
    escalation = await an_escalation(scene, subject)
    await prep_dialogue(scene, holder, EscalationState.SNOOZE, {"escalation_id": escalation.id})
    return {"escalation": escalation}


async def prep_reject_reason(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    assert subject is not None
    request = await a_request(scene, subject)
    await prep_dialogue(scene, holder, ResourceState.REJECT_REASON, {"request_id": request.id, "task_id": ""})
    return {"request": request}


async def prep_obstacle_awaiting_evidence(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    """The owner answered 技术适配存疑 for the subject, which waits for the meeting minutes."""
    assert subject is not None
    obstacle = await obstacle_store.record_obstacle(
        scene.session, customer_id=subject.id, stage_id=subject.stage_id, stage_change_id=None,
        member_id=subject.owner_id, option="技术适配存疑", required_evidence="技术对接会议纪要", now=NOW,
    )
    return {"obstacle": obstacle}


async def prep_half_logged_touch(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    """The holder began a touch on the subject and was asked what was done (the customer may have
    been transferred away since)."""
    assert subject is not None
    await scene.start_dialogue(holder, TouchState.SUMMARY, a_draft(customer_id=subject.id, summary=""))
    return {}


async def prep_effective_touch(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    assert subject is not None
    return {"touch": await a_touch(scene, subject, effective=True)}


async def prep_pending_change(scene: Scene, holder: Member, subject: Customer | None) -> Prep:
    assert subject is not None
    return {"change": await a_change(scene, subject, await owner_of(scene, subject))}


# --- effects ------------------------------------------------------------------------------------


async def touch_logged(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    assert subject is not None
    [touch] = await rows(scene, Touch, customer_id=subject.id)
    assert touch.member_id == actor.id
    assert any(isinstance(r, CardReply) and r.card.title == touch_texts.CONFIRM_TITLE.format(customer=subject.name)
               for r in replies), replies


async def customer_shown(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    assert subject is not None
    [reply] = replies
    assert isinstance(reply, Markdown) and reply.title == touch_texts.CUSTOMER_TITLE.format(name=subject.name)


async def stage_shown(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    assert subject is not None
    [reply] = replies
    assert isinstance(reply, Markdown) and reply.title == texts_stages.VIEW_TITLE.format(customer=subject.name)


async def move_requested(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    assert subject is not None
    [change] = await rows(scene, StageChange, customer_id=subject.id)
    assert change.member_id == actor.id and change.status is StageChangeStatus.AWAITING_OBSTACLE
    assert any(isinstance(r, CardReply) and r.card.title == texts_stages.OBSTACLE_TITLE for r in replies), replies


async def change_withdrawn(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    await scene.session.refresh(prep["change"])
    assert prep["change"].status is StageChangeStatus.CANCELLED


async def deliverable_filed(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    assert subject is not None
    [evidence] = await rows(scene, Evidence, customer_id=subject.id)
    assert evidence.member_id == actor.id and evidence.attributes["stage_id"]


async def request_submitted(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    assert subject is not None
    [request] = await rows(scene, ResourceRequest, customer_id=subject.id)
    assert request.member_id == actor.id and request.status is ResourceRequestStatus.PENDING
    assert any(isinstance(r, CardReply) and r.card.title == texts_resources.CARD_TITLE.format(customer=subject.name)
               for r in replies), replies


async def feedback_card_sent(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    assert subject is not None
    [reply] = replies
    assert isinstance(reply, CardReply) and reply.card.submit is not None
    assert reply.card.submit.action == SubmitFeedback(subject.id).pack()


async def obstacle_evidenced(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    await scene.session.refresh(prep["obstacle"])
    [evidence] = await rows(scene, Evidence, customer_id=prep["obstacle"].customer_id)
    assert prep["obstacle"].evidence_id == evidence.id and evidence.member_id == actor.id


async def touch_undone(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    await scene.session.refresh(prep["touch"])
    assert prep["touch"].undone_at is not None


async def draft_saved_for_pick(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    assert subject is not None
    [touch] = await rows(scene, Touch, customer_id=subject.id)
    assert touch.member_id == actor.id


async def lead_created(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    [lead] = await rows(scene, Customer, name="东湖新材")
    assert lead.owner_id == actor.id


async def card_closed(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    assert isinstance(replies[0], CardUpdate), replies


def draft_given_up(subject: Customer | None, replies: list[Reply], actor: Member) -> None:
    """The draft's customer is not the actor's: nothing is saved and the question is closed."""
    assert replies[-1] == Text(touch_texts.CHOICE_GONE), replies


async def dialogue_ended(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    assert await rows(scene, Dialogue, member_id=actor.id) == []
    assert isinstance(replies[0], CardUpdate)


async def attachment_filed(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    assert subject is not None
    [evidence] = await rows(scene, Evidence, customer_id=subject.id)
    assert evidence.member_id == actor.id


async def stage_moved(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    assert subject is not None
    await scene.session.refresh(subject)
    assert subject.stage_id == prep["change"].to_stage_id
    [obstacle] = await rows(scene, Obstacle, customer_id=subject.id)
    assert obstacle.member_id == actor.id


async def support_asked(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    [request] = await rows(scene, SupportRequest, obstacle_id=prep["obstacle"].id)
    assert request.requester_id == actor.id


async def review_started(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    [dialogue] = await rows(scene, Dialogue, member_id=actor.id)
    assert dialogue.state == EscalationState.ADVICE and dialogue.data["escalation_id"] == prep["escalation"].id


async def snooze_started(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    [dialogue] = await rows(scene, Dialogue, member_id=actor.id)
    assert dialogue.state == EscalationState.SNOOZE and dialogue.data["escalation_id"] == prep["escalation"].id


async def owners_offered(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    [reply] = replies
    assert isinstance(reply, CardReply)
    assert any(b.action.startswith(TransferTo.prefix) for b in reply.card.buttons), reply.card


async def transferred(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    assert subject is not None
    await scene.session.refresh(subject)
    assert subject.owner_id == prep["target"].id
    await scene.session.refresh(prep["escalation"])
    assert prep["escalation"].status is EscalationStatus.TRANSFERRED


async def transfer_cancelled(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    assert replies == [CardUpdate(prep["card"].closed(texts_escalation.TRANSFER_CANCELLED))]


async def approved(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    await scene.session.refresh(prep["request"])
    assert prep["request"].status is ResourceRequestStatus.APPROVED and prep["request"].decided_by == actor.id


async def reason_asked(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    [dialogue] = await rows(scene, Dialogue, member_id=actor.id)
    assert dialogue.state == ResourceState.REJECT_REASON and dialogue.data["request_id"] == prep["request"].id


async def feedback_stored(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    assert subject is not None
    [feedback] = await rows(scene, CustomerFeedback, customer_id=subject.id)
    assert feedback.options == [prep["option"]]


def escalation_now(status: EscalationStatus) -> Callable[..., Awaitable[None]]:
    async def check(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
        await scene.session.refresh(prep["escalation"])
        assert prep["escalation"].status is status and prep["escalation"].resolved_by == actor.id

    return check


async def rejected(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    await scene.session.refresh(prep["request"])
    assert prep["request"].status is ResourceRequestStatus.REJECTED and prep["request"].decided_by == actor.id


def stale_request_voided(subject: Customer | None, replies: list[Reply], actor: Member) -> None:
    """Moved out of the requester's scope since the request: the request is void, nothing moves."""
    assert subject is not None
    assert isinstance(replies[0], CardUpdate) and replies[0].card.closed_note == texts_stages.CHANGE_STALE_NOTE
    assert replies[1:] == [Text(texts_stages.CHANGE_NOT_YOURS.format(customer=subject.name))]


async def intel_linked(scene: Scene, actor: Member, subject: Customer | None, prep: Prep, replies: list[Reply]) -> None:
    [intel] = await rows(scene, CompetitorIntel, member_id=actor.id)
    assert subject is not None and intel.customer_id == subject.id


def intel_without_customer(subject: Customer | None, replies: list[Reply], actor: Member) -> None:
    """Not the actor's customer: the sighting is kept, but not filed under that customer."""
    assert subject is not None
    [reply] = replies
    assert isinstance(reply, Markdown)
    assert texts_library.COMPETITOR_RECORDED.format(name=COMPETITOR, customer="") in reply.text.splitlines()
    assert subject.name not in reply.text


REVIEW_REFUSED = says_unless_own(texts_escalation.NOT_PERMITTED, texts_escalation.NOT_PERMITTED_OWN)
APPROVAL_REFUSED = says_unless_own(texts_resources.NOT_PERMITTED, texts_resources.NOT_PERMITTED_OWN)
DIALOGUES = frozenset({"dialogues"})

CASES: list[Case] = [
    # --- messages and commands naming a customer
    # Another's customer is not reached nor created again: 撞单 goes to a manager (supporters: not even that).
    Case("log a touch", own_only, nothing, say("{name} 电话20分钟 聊了报价,明天发报价单"), touch_logged,
         reports_a_clash, may_change=DIALOGUES | {"cards"},
         otherwise={Role.SUPPORTER: (supporters_log_no_touches, frozenset())}),
    Case("/客户 <客户>", visible, nothing, say("/客户 {name}"), customer_shown, says(touch_texts.CUSTOMER_NOT_FOUND)),
    Case("/阶段 <客户>", visible, nothing, say("/阶段 {name}"), stage_shown, says(texts_stages.CUSTOMER_NOT_YOURS)),
    Case("/阶段 <客户> <阶段>", visible, nothing, say("/阶段 {name} " + NEXT_STAGE), move_requested,
         says(texts_stages.CUSTOMER_NOT_YOURS)),
    Case("/阶段 <客户> 撤回", visible, prep_pending_change, say("/阶段 {name} 撤回"), change_withdrawn,
         says(texts_stages.CUSTOMER_NOT_YOURS)),
    # Supporters own no customers and move none: their text is never read as a stage move.
    Case("stage move by text", movable_by_text, nothing, say("{name} 推进到" + NEXT_STAGE), move_requested,
         says(texts_stages.CUSTOMER_NOT_YOURS), otherwise={Role.SUPPORTER: (supporters_log_no_touches, frozenset())}),
    Case("complete a half-logged touch", own_only, prep_half_logged_touch, say("电话20分钟 聊了报价细节"),
         draft_saved_for_pick, says(touch_texts.CHOICE_GONE), may_change=DIALOGUES),
    Case("/申请 <客户>", own_only, prep_effective_touch, say("/申请 技术支持 {name} 需要工程师现场测试"),
         request_submitted, says(texts_resources.NOT_YOUR_CUSTOMER)),
    Case("deliverable by caption", visible, nothing, photo(f"{{name}} {NEXT_STAGE} 照片"),
         deliverable_filed, no_customer_to_file_under),
    Case("evidence an obstacle waits for, by caption", own_only, prep_obstacle_awaiting_evidence,
         photo("{name} 技术对接会议纪要"), obstacle_evidenced, no_customer_to_file_under),
    Case("/竞品 <竞品> <客户>", own_only, nothing, say(f"/竞品 {COMPETITOR} {{name}} 报价低两成"), intel_linked,
         intel_without_customer, may_change=frozenset({"competitor_intel"})),
    Case("/反馈 <客户>", visible, nothing, say("/反馈 {name}"), feedback_card_sent,
         says(texts_library.FEEDBACK_CUSTOMER_NOT_FOUND)),
    # --- card actions, the card addressed to the actor
    Case("undo a touch", own_only, prep_undo, click, touch_undone, says(touch_texts.UNDO_NOT_YOURS), action=UndoTouch),
    Case("pick the customer of a draft", own_only, prep_pick, click, draft_saved_for_pick,
         says(touch_texts.CHOICE_GONE), action=PickCustomer),
    Case("create the draft's lead", own_but_no_supporter, prep_new_lead, click, lead_created,
         says(touch_texts.SUPPORTER_NO_TOUCHES), action=CreateLead, scoped=False),
    Case("cancel a draft", own_only, prep_cancel_draft, click, dialogue_ended, says(""), action=CancelDraft,
         scoped=False),
    Case("file an attachment under a customer", own_only, prep_file_under, click, attachment_filed,
         says(touch_texts.CHOICE_GONE), action=FileUnder),
    Case("choose a likely day on a question card", own_only, prep_choose_answer, click, draft_saved_for_pick,
         draft_given_up, action=ChooseAnswer, may_change=DIALOGUES | {"cards"}),
    Case("confirm a low-confidence reading", own_only, prep_confirm_reading, click, card_closed, says(""),
         action=ConfirmReading, scoped=False),
    Case("open the response library from the calibration card", own_only, prep_open_library, click, card_closed,
         says(""), action=OpenLibrary, scoped=False),
    Case("撞单: give the customer to the asking rep", clash_decider, prep_clash(GiveClash), click,
         given_to_asking_rep, says(texts_admin.CLASH_NOT_YOURS), action=GiveClash),
    Case("撞单: keep the customer with its owner", clash_decider, prep_clash(KeepClash), click, kept_with_owner,
         says(texts_admin.CLASH_NOT_YOURS), action=KeepClash),
    Case("drop a waiting attachment", own_only, prep_drop, click, dialogue_ended, says(""), action=DropAttachment,
         scoped=False),
    Case("answer the owner's obstacle card", own_only, prep_answer_owners_change, click, stage_moved,
         says(texts_stages.CHANGE_GONE), action=AnswerObstacle),
    Case("answer one's own obstacle card", visible, prep_answer_own_request, click, stage_moved,
         stale_request_voided, action=AnswerObstacle, may_change=frozenset({"stage_changes", "cards"})),
    Case("withdraw the owner's stage change", own_only, prep_withdraw, click, change_withdrawn,
         says(texts_stages.CHANGE_GONE), action=WithdrawChange),
    Case("ask for support on an obstacle", own_only, prep_support, click, support_asked,
         says(texts_stages.SUPPORT_OBSTACLE_GONE), action=AskSupport),
    Case("escalation: reviewed", reviewer, prep_escalation(lambda e, c: StartReview(e.id)), click, review_started,
         REVIEW_REFUSED, action=StartReview),
    Case("escalation: choose a new owner", reviewer, prep_escalation(lambda e, c: ChooseNewOwner(e.id)), click,
         owners_offered, REVIEW_REFUSED, action=ChooseNewOwner),
    Case("escalation: transfer", reviewer, prep_transfer, click, transferred, REVIEW_REFUSED,
         action=TransferTo),
    Case("escalation: cancel the transfer", own_only, prep_cancel_transfer, click, transfer_cancelled, says(""),
         action=CancelTransferAction, scoped=False),
    Case("escalation: snooze", reviewer, prep_escalation(lambda e, c: StartSnooze(e.id)), click, snooze_started,
         REVIEW_REFUSED, action=StartSnooze),
    Case("resource request: approve", reviewer, prep_request(Approve), click, approved,
         APPROVAL_REFUSED, action=Approve),
    Case("resource request: reject", reviewer, prep_request(Reject), click, reason_asked,
         APPROVAL_REFUSED, action=Reject),
    Case("submit customer feedback", visible, prep_feedback, click, feedback_stored,
         says(texts_library.FEEDBACK_CARD_GONE), action=SubmitFeedback),
    # --- answers to the questions those cards ask (the question was put to the actor)
    Case("escalation: the review's advice", reviewer, prep_advice, say("先约技术负责人当面沟通"),
         escalation_now(EscalationStatus.REVIEWED), REVIEW_REFUSED, may_change=DIALOGUES),
    Case("escalation: the snooze's reason and date", reviewer, prep_snooze, say("客户出国两周,12月10日恢复跟进"),
         escalation_now(EscalationStatus.SNOOZED), REVIEW_REFUSED, may_change=DIALOGUES),
    Case("resource request: the rejection's reason", reviewer, prep_reject_reason, say("预算已用完"), rejected,
         APPROVAL_REFUSED, may_change=DIALOGUES),
]
CASE_NAMES = {case.name for case in CASES}


def case_cells() -> list[Any]:
    cells = []
    for case in CASES:
        for role, actor in ACTORS.items():
            relations = list(OWNERS[actor]) if case.scoped else ["own"]
            for relation in relations:
                cells.append(pytest.param(case, role, relation, id=f"{case.name}-{role.value}-{relation}"))
    return cells


# ------------------------------------------------------------------------------ completeness


def test_every_registered_command_has_a_matrix_entry() -> None:
    registered = {route.names[0] for route in DISPATCHER.command_routes}
    missing = sorted(registered - COMMANDS.keys())
    assert not missing, f"add a line to COMMANDS for {missing}"
    assert not COMMANDS.keys() - registered, "COMMANDS names a command that is not registered"


def test_every_customer_argument_of_a_command_has_its_case() -> None:
    for name, entry in COMMANDS.items():
        assert entry.case is None or entry.case in CASE_NAMES, f"{name}: no case {entry.case!r} in CASES"


def test_every_registered_card_action_has_a_case() -> None:
    clicked = {case.action for case in CASES if case.action is not None}
    missing = sorted(cls.__name__ for cls in ACTION_CLASSES - clicked)
    assert not missing, f"add a case to CASES for the card actions {missing}"


# ------------------------------------------------------------------------------ command cells


@pytest.mark.parametrize(("command", "name", "role"), COMMAND_CELLS)
@IN_MODULE_LOOP
async def test_command_cell(world: World, command: str, name: str, role: Role) -> None:
    entry = COMMANDS.get(command)
    assert entry is not None, f"no matrix entry for {command}: add one line to COMMANDS"
    async with world.cell() as scene:
        actor = await scene.member(ACTORS[role])
        refusal = Text(bot_texts.COMMAND_NOT_PERMITTED.format(name=name))
        if role in entry.roles:
            replies = await scene.say(actor, name)
            assert replies and refusal not in replies, replies
        else:
            before = await scene.snapshot()
            assert await scene.say(actor, name) == [refusal]
            assert changed_tables(before, await scene.snapshot()) == set()


# ------------------------------------------------------------------------------ customer-scoped cells


@pytest.mark.parametrize(("case", "role", "relation"), case_cells())
@IN_MODULE_LOOP
async def test_customer_cell(world: World, case: Case, role: Role, relation: str) -> None:
    async with world.cell() as scene:
        actor = await scene.member(ACTORS[role])
        subject = await scene.customer_of(OWNERS[ACTORS[role]][relation]) if case.scoped else None
        prep = await case.prepare(scene, actor, subject)
        if case.policy(role, relation):
            await case.effect(scene, actor, subject, prep, await case.act(scene, actor, subject, prep))
        else:
            before = await scene.snapshot()
            replies = await case.act(scene, actor, subject, prep)
            refusal, may_change = case.refused(role)
            refusal(subject, replies, actor)
            changed = changed_tables(before, await scene.snapshot())
            assert changed <= may_change, f"a refusal changed {sorted(changed)}"


# ------------------------------------------------------------------------------ card cells


def card_cells() -> list[Any]:
    first = {}
    for case in CASES:
        if case.action is not None and case.action not in first:
            first[case.action] = case
    cells = []
    for action, case in first.items():
        for role in ACTORS:
            for relation in ("peer", "other_team"):
                cells.append(pytest.param(case, role, relation, id=f"{action.__name__}-{role.value}-{relation}s-card"))
    return cells


def forged_cells() -> list[Any]:
    first = {}
    for case in CASES:
        if case.action is not None and case.action not in first:
            first[case.action] = case
    return [
        pytest.param(case, role, id=f"{action.__name__}-{role.value}")
        for action, case in first.items()
        for role in ACTORS
    ]


@pytest.mark.parametrize(("case", "role", "relation"), card_cells())
@IN_MODULE_LOOP
async def test_someone_elses_card_is_refused(world: World, case: Case, role: Role, relation: str) -> None:
    """The card was sent to another member (for one of that member's own customers)."""
    async with world.cell() as scene:
        actor = await scene.member(ACTORS[role])
        holder = await scene.member(OWNERS[ACTORS[role]][relation])
        prep = await case.prepare(scene, holder, await scene.customer_of(holder.code))
        before = await scene.snapshot()
        replies = await scene.click(actor, prep["card"], prep["action"], prep.get("values", ()))
        assert replies == [Text(bot_texts.CARD_NOT_YOURS)]
        assert changed_tables(before, await scene.snapshot()) == set()


@pytest.mark.parametrize(("case", "role"), forged_cells())
@IN_MODULE_LOOP
async def test_a_payload_the_card_does_not_offer_is_refused(world: World, case: Case, role: Role) -> None:
    """The actor's own card, clicked with an action it never offered (a forged or mixed-up payload)."""
    async with world.cell() as scene:
        actor = await scene.member(ACTORS[role])
        subject = await scene.customer_of(OWNERS[actor.code].get("own", "rep.li"))
        prep = await case.prepare(scene, actor, subject if case.scoped else None)
        offered = CancelDraft() if case.action is CancelTransferAction else CancelTransferAction()
        other_card = await scene.send_card(actor, offered)
        before = await scene.snapshot()
        replies = await scene.click(actor, other_card, prep["action"], prep.get("values", ()))
        assert replies == [Text(bot_texts.CARD_ACTION_INVALID)]
        assert changed_tables(before, await scene.snapshot()) == set()


@IN_MODULE_LOOP
@pytest.mark.parametrize("role", [Role.MANAGER, Role.ADMIN])
async def test_an_option_the_card_does_not_offer_is_refused(world: World, role: Role) -> None:
    """A new-owner picker offering rep.zhao, submitted with another team's rep: nothing moves."""
    async with world.cell() as scene:
        actor = await scene.member(ACTORS[role])
        subject = await scene.customer_of("rep.li")
        escalation = await an_escalation(scene, subject)
        offered, foreign = await scene.member("rep.zhao"), await scene.member("rep.sun")
        card = await scene.send_card(actor, TransferTo(escalation.id), options=[(offered.name, str(offered.id))])
        before = await scene.snapshot()
        replies = await scene.click(actor, card, TransferTo(escalation.id), [str(foreign.id)])
        assert replies == [Text(bot_texts.CARD_ACTION_INVALID)]
        assert changed_tables(before, await scene.snapshot()) == set()
        # The option it does offer is taken.
        await scene.click(actor, card, TransferTo(escalation.id), [str(offered.id)])
        await scene.session.refresh(subject)
        assert subject.owner_id == offered.id


@IN_MODULE_LOOP
@pytest.mark.parametrize("code", ["sup.liu", "sup.ma", "rep.li", "mgr.wang", "admin.he"])
async def test_only_the_supporter_asked_answers_a_support_request(world: World, code: str) -> None:
    """rep.li asked for support on 华东建材 and sup.liu was picked: only sup.liu's text answers it."""
    async with world.cell() as scene:
        subject = await scene.customer_of("rep.li")
        rep, asked = await scene.member("rep.li"), await scene.member("sup.liu")
        obstacle = await obstacle_store.record_obstacle(
            scene.session, customer_id=subject.id, stage_id=subject.stage_id, stage_change_id=None, member_id=rep.id,
            option="技术适配存疑", required_evidence=None, now=NOW,
        )
        request = await obstacle_store.create_support_request(
            scene.session, obstacle=obstacle, requester_id=rep.id, supporter_id=asked.id, now=NOW,
        )
        actor = await scene.member(code)
        replies = await scene.say(actor, "华东建材 接口可以兼容,建议先做一次联调测试")
        await scene.session.refresh(request)
        relayed = [r for r in replies if isinstance(r, Text) and r.to == ToMember(rep.id)]
        if actor.id == asked.id:
            assert request.first_reply_at is not None and relayed
        else:
            assert request.first_reply_at is None and relayed == []


@IN_MODULE_LOOP
@pytest.mark.parametrize("code", ["rep.li", "rep.zhao", "mgr.wang", "admin.he"])
async def test_a_numbered_reply_answers_only_the_members_own_card(world: World, code: str) -> None:
    """rep.zhao has a card asking which of two customers was meant; "1" answers it only from rep.zhao."""
    async with world.cell() as scene:
        holder = await scene.member("rep.zhao")
        first, second = await scene.customer_of("rep.zhao"), await scene.customer_of("rep.li")
        second.owner_id = holder.id  # two candidates of rep.zhao's
        card = await scene.send_card(holder, PickCustomer(first.id), PickCustomer(second.id), CancelDraft())
        await scene.start_dialogue(holder, TouchState.CUSTOMER, a_draft(candidates=[first.id, second.id], card=card.task_id))
        actor = await scene.member(code)
        await scene.say(actor, "1")
        picked = await rows(scene, Touch, customer_id=first.id)
        assert [t.member_id for t in picked] == ([holder.id] if actor.id == holder.id else [])
