"""A demo organisation: a building-materials distributor with three regional teams.

Seeded so that a newcomer sees real, consistent data at once: 20 reps, 300 customers whose names
fit their team's region, spread over the default pipeline with each customer's earlier stages in
its history, and 30 days of touches whose channels, summaries and next actions fit the stage —
with realistic gaps (customers gone cold, next actions overdue, touches still waiting for
evidence). Effective touches carry evidence: small real images generated here and stored through
the media store like any upload.

The README's first example works as written: ``rep.east1`` owns 华东建材 (contact 张总), in 方案报价,
and no other customer of theirs answers to that name or contact.
"""

from __future__ import annotations

import datetime as dt
import io
import random
from typing import Any

from PIL import Image, ImageDraw
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import Channel, EvidenceKind, EvidenceStatus
from domain.parsing.customers import company_key
from storage.media import MediaStore, StoredMedia
from storage.models import Customer, Evidence, Member, Stage, StageHistory, Team, Touch
from storage.org import load_directory
from storage.pipelines import default_pipeline, stages_of

FEATURED_REP = "rep.east1"
FEATURED_CUSTOMER = "华东建材"
FEATURED_CONTACT = "张总"
FEATURED_STAGE = "方案报价"

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
_GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "艳", "杰", "涛", "明", "超", "霞", "平", "刚", "桂英", "建华", "晓东", "海燕", "志强", "丽娟", "俊杰", "子涵"]
# Place words that fit each region: a 华南 rep does not sell to 巴蜀 companies.
_PLACES = {
    "east": ["华东", "申城", "金陵", "钱塘", "姑苏", "滨江", "甬江", "太湖", "徽州", "淮海", "浦江", "锡山"],
    "south": ["岭南", "鹏城", "羊城", "珠江", "闽江", "南粤", "榕城", "鹭岛", "桂林", "海峡", "莞城", "佛山"],
    "west": ["巴蜀", "天府", "锦江", "渝州", "春城", "黔中", "蓉城", "嘉陵", "滇池", "雪域", "涪江", "三峡"],
}
_CORES = ["建材", "装饰", "置业", "工程", "家居", "地产", "市政", "幕墙", "钢构", "管业", "门窗", "防水"]
_SUFFIX = ["", "集团", "有限公司", "实业", "建设"]
_INDUSTRIES = ["房地产开发", "装饰工程", "市政工程", "家装公司", "建材经销", "酒店连锁"]
_TITLES = ["总", "经理", "工", "主任"]
_TEAMS = [("east", "华东大区"), ("south", "华南大区"), ("west", "西南大区")]

# What a touch looks like in each stage: (channel, minutes or None, summary, next action).
_STAGE_TOUCHES: dict[str, list[tuple[Channel, int | None, str, str]]] = {
    "新线索": [
        (Channel.PHONE, 5, "首次电话介绍公司和产品线", "约初次拜访"),
        (Channel.WECHAT, None, "加了微信,发了公司介绍和产品目录", "电话了解项目情况"),
        (Channel.PHONE, 3, "确认了对接人和采购负责人", "约初次拜访"),
    ],
    "初步沟通": [
        (Channel.VISIT, 40, "上门拜访,了解了在建项目和采购周期", "整理需求清单"),
        (Channel.PHONE, 15, "聊了项目工期和用量", "约技术交流"),
        (Channel.WECHAT, None, "发了同类项目案例", "电话确认需求"),
    ],
    "需求确认": [
        (Channel.VISIT, 60, "现场勘查了工地,确认了规格和用量", "出技术方案"),
        (Channel.PHONE, 20, "确认了技术参数和交期要求", "出技术方案"),
        (Channel.EMAIL, None, "发了需求确认单请客户签字", "电话确认回签"),
    ],
    "方案报价": [
        (Channel.WECHAT, None, "发了定制方案和报价单", "电话跟进报价反馈"),
        (Channel.PHONE, 20, "聊了报价细节", "上门讲解方案"),
        (Channel.VISIT, 45, "上门讲解了方案,客户关注付款方式", "调整报价"),
    ],
    "商务谈判": [
        (Channel.VISIT, 90, "谈了付款条件和供货节奏", "发合同草稿"),
        (Channel.EMAIL, None, "发了合同草稿", "催合同回签"),
        (Channel.PHONE, 25, "沟通了合同条款修改意见", "约签约时间"),
    ],
    "签约": [
        (Channel.VISIT, 60, "签了供货合同", "安排首批发货"),
        (Channel.PHONE, 10, "确认了首批发货时间和收货人", "发货后回访"),
        (Channel.WECHAT, None, "发了发货单和物流信息", "确认到货验收"),
    ],
    "回款": [
        (Channel.PHONE, 10, "确认了首期回款到账", "催第二期款"),
        (Channel.EMAIL, None, "发了对账单和发票", "确认对账"),
        (Channel.VISIT, 30, "回访使用情况,客户满意", "催尾款并问新项目"),
    ],
}
_STALLS = [
    (Channel.PHONE, 1, "没接电话"),
    (Channel.WECHAT, None, "已读不回"),
    (Channel.PHONE, 3, "客户在忙,再约时间"),
    (Channel.PHONE, 5, "等领导回复"),
]


def demo_directory(rng: random.Random) -> dict[str, Any]:
    used: set[str] = set()

    def person() -> str:
        while True:
            name = rng.choice(_SURNAMES) + rng.choice(_GIVEN)
            if name not in used:
                used.add(name)
                return name

    teams, members = [], []
    members.append({"code": "admin", "name": person(), "role": "admin"})
    members.append({"code": "sup.tech", "name": person(), "role": "supporter"})
    members.append({"code": "sup.legal", "name": person(), "role": "supporter"})
    rep_counts = (7, 7, 6)
    for (key, team_name), count in zip(_TEAMS, rep_counts, strict=True):
        manager = f"mgr.{key}"
        teams.append({"key": key, "name": team_name, "manager": manager})
        members.append({"code": manager, "name": person(), "role": "manager", "team": key})
        for i in range(1, count + 1):
            members.append({"code": f"rep.{key}{i}", "name": person(), "role": "rep", "team": key})
    return {"teams": teams, "members": members}


def _evidence_images(rng: random.Random, count: int = 6) -> list[bytes]:
    """Small real JPEGs (a site, a whiteboard, a document): decodable images, a few KB each."""
    images = []
    for i in range(count):
        image = Image.new("RGB", (320, 240), (rng.randint(150, 235), rng.randint(150, 235), rng.randint(150, 235)))
        draw = ImageDraw.Draw(image)
        for _ in range(6 + i):
            x, y = rng.randint(0, 280), rng.randint(0, 200)
            colour = (rng.randint(20, 120), rng.randint(20, 120), rng.randint(20, 120))
            draw.rectangle((x, y, x + rng.randint(20, 80), y + rng.randint(10, 40)), outline=colour, width=3)
        for row in range(5):
            draw.line((20, 40 + row * 30, 300, 40 + row * 30), fill=(60, 60, 60), width=2)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=70)
        images.append(buffer.getvalue())
    return images


def _meets_threshold(channel: Channel, minutes: int | None, proposal: bool) -> bool:
    return (
        (channel is Channel.PHONE and (minutes or 0) >= 2)
        or (channel is Channel.VISIT and (minutes or 0) >= 15)
        or (channel in (Channel.WECHAT, Channel.EMAIL) and proposal)
    )


async def seed_demo(
    session: AsyncSession, *, now: dt.datetime, seed: int = 7, if_empty: bool = False, media: MediaStore | None = None
) -> str:
    existing = await session.scalar(select(func.count()).select_from(Member))
    if if_empty and existing:
        return f"demo not seeded: the database already has {existing} members"
    rng = random.Random(seed)
    await load_directory(session, demo_directory(rng), now=now)
    pipeline = await default_pipeline(session)
    stages = await stages_of(session, pipeline.id)
    reps = list(await session.scalars(select(Member).where(Member.code.like("rep.%")).order_by(Member.id)))
    team_keys = {team_id: key for key, team_id in await _team_keys(session)}
    # Early stages hold most customers, as in any real funnel.
    weights = [30, 22, 16, 12, 9, 6, 5][: len(stages)]
    by_name = {stage.name: stage for stage in stages}
    featured_rep = next(rep for rep in reps if rep.code == FEATURED_REP)

    customers: list[Customer] = []
    keys: set[str] = {company_key(FEATURED_CUSTOMER)}
    featured = Customer(
        name=FEATURED_CUSTOMER, owner_id=featured_rep.id, pipeline_id=pipeline.id,
        stage_id=by_name[FEATURED_STAGE].id, stage_entered_at=now - dt.timedelta(days=3),
        industry="建材经销", aliases=[], contacts=[FEATURED_CONTACT, "李工"], custom_fields={"区域": "上海"},
        value=500_000, created_at=now - dt.timedelta(days=40),
    )
    customers.append(featured)
    while len(customers) < 300:
        owner = reps[len(customers) % len(reps)]
        region = team_keys.get(owner.team_id or -1, "east")
        name = rng.choice(_PLACES[region]) + rng.choice(_CORES) + rng.choice(_SUFFIX)
        key = company_key(name)
        if key in keys:  # one company, one customer: never two reps on the same name
            continue
        keys.add(key)
        stage = rng.choices(stages, weights)[0]
        created = now - dt.timedelta(days=rng.randint(5, 120), hours=rng.randint(0, 23))
        entered = max(created, now - dt.timedelta(days=rng.randint(1, 40)))
        if stage.id == stages[0].id:
            entered = created  # a lead has been in the first stage since it was created
        # Every earlier stage took a few days: a signed customer was found well before it signed.
        created = min(created, entered - dt.timedelta(days=4 * stages.index(stage)))
        contact = rng.choice(_SURNAMES) + rng.choice(_TITLES)
        if owner.id == featured_rep.id and contact == FEATURED_CONTACT:
            contact = "刘经理"  # the README's 张总 is 华东建材's alone among this rep's customers
        customers.append(
            Customer(
                name=name, owner_id=owner.id, pipeline_id=pipeline.id, stage_id=stage.id, stage_entered_at=entered,
                industry=rng.choice(_INDUSTRIES), aliases=[key] if key != name and len(key) >= 4 else [],
                contacts=[contact], custom_fields={},
                value=rng.choice([5, 8, 12, 20, 35, 50, 80, 120]) * 10_000, created_at=created,
            )
        )
    session.add_all(customers)
    await session.flush()
    stage_of = {c.id: next(s for s in stages if s.id == c.stage_id) for c in customers}

    for customer in customers:
        _add_history(session, customer, stages, stage_of[customer.id])

    images = [media.store(data, kind_hint="photo", filename=f"现场{i + 1}.jpg") for i, data in
              enumerate(_evidence_images(rng))] if media is not None else []
    touches = evidence = 0
    # Some reps log diligently, some barely: the gaps are the point of the demo.
    diligence = {rep.id: rng.choice([0.25, 0.5, 0.8, 1.0]) for rep in reps}
    diligence[featured_rep.id] = 1.0
    for customer in customers:
        count = int(rng.randint(0, 8) * diligence[customer.owner_id])
        if customer is featured:
            count = 3
        earliest = max(customer.created_at, now - dt.timedelta(days=30))
        span = max((now - earliest).total_seconds(), 3600.0)
        moments = sorted(earliest + dt.timedelta(seconds=rng.uniform(0, span * 0.97)) for _ in range(count))
        for moment in moments:
            stage = stage_of[customer.id] if moment >= customer.stage_entered_at else _stage_at(customer, stages, moment)
            touch, has_evidence = _touch(rng, customer, stage, moment, now)
            session.add(touch)
            touches += 1
            customer.last_touch_at = moment
            if has_evidence:
                await session.flush()
                session.add(_evidence(rng, touch, customer, images, moment))
                evidence += 1
    await session.flush()
    return (
        f"demo organisation seeded: 3 teams, {len(reps)} reps, {len(customers)} customers, {touches} touches, "
        f"{evidence} evidence items; try {FEATURED_REP}: "
        f"{FEATURED_CUSTOMER} {FEATURED_CONTACT} 电话20分钟 聊了报价细节,下周三上门拜访"
    )


async def _team_keys(session: AsyncSession) -> list[tuple[str, int]]:
    return [(key, team_id) for key, team_id in (await session.execute(select(Team.key, Team.id))).all()]


def _history_times(customer: Customer, count: int) -> list[dt.datetime]:
    """Entry instants of the stages before the current one, spread from creation to the current entry."""
    start, end = customer.created_at, customer.stage_entered_at
    if count <= 0:
        return []
    step = (end - start) / count if end > start else dt.timedelta(0)
    return [start + step * i for i in range(count)]


def _add_history(session: AsyncSession, customer: Customer, stages: list[Stage], current: Stage) -> None:
    """Every stay up to the current stage: a customer in 签约 went through the stages before it."""
    earlier = [s for s in stages if s.position < current.position]
    times = _history_times(customer, len(earlier))
    lefts = [*times[1:], customer.stage_entered_at] if times else []
    for stage, entered, left in zip(earlier, times, lefts, strict=True):
        session.add(StageHistory(customer_id=customer.id, stage_id=stage.id, entered_at=entered, left_at=left,
                                 member_id=customer.owner_id))
    session.add(StageHistory(customer_id=customer.id, stage_id=current.id, entered_at=customer.stage_entered_at,
                             member_id=customer.owner_id))


def _stage_at(customer: Customer, stages: list[Stage], moment: dt.datetime) -> Stage:
    current = next(s for s in stages if s.id == customer.stage_id)
    earlier = [s for s in stages if s.position < current.position]
    times = _history_times(customer, len(earlier))
    found = earlier[0] if earlier else current
    for stage, entered in zip(earlier, times, strict=True):
        if entered <= moment:
            found = stage
    return found


def _touch(rng: random.Random, customer: Customer, stage: Stage, moment: dt.datetime, now: dt.datetime) -> tuple[Touch, bool]:
    options = _STAGE_TOUCHES.get(stage.name) or _STAGE_TOUCHES["初步沟通"]
    stalled = customer.name != FEATURED_CUSTOMER and rng.random() < 0.12
    if stalled:
        channel, minutes, summary = rng.choice(_STALLS)
        next_action = options[0][3]
    else:
        channel, minutes, summary, next_action = rng.choice(options)
        if minutes is not None:
            minutes = max(2, minutes + rng.randint(-minutes // 3, minutes // 3))
    proposal = channel in (Channel.WECHAT, Channel.EMAIL) and any(w in summary for w in ("方案", "报价", "合同"))
    has_evidence = not stalled and rng.random() < 0.65
    age = now - moment
    status = (
        EvidenceStatus.PROVIDED if has_evidence
        else EvidenceStatus.PENDING if age < dt.timedelta(hours=24)
        else EvidenceStatus.MISSING
    )
    touch = Touch(
        customer_id=customer.id, member_id=customer.owner_id, channel=channel, duration_minutes=minutes,
        summary=summary, raw_text=f"{customer.name} {summary},{next_action}", next_action=next_action,
        next_due=(moment + dt.timedelta(days=rng.randint(1, 7))).date(), proposal=proposal,
        effective=has_evidence and _meets_threshold(channel, minutes, proposal), evidence_status=status,
        occurred_at=moment, no_progress=stalled, stall_phrases=[summary] if stalled else [],
    )
    return touch, has_evidence


def _evidence(rng: random.Random, touch: Touch, customer: Customer, images: list[StoredMedia], moment: dt.datetime) -> Evidence:
    created = moment + dt.timedelta(minutes=rng.randint(1, 9))
    if not images:
        return Evidence(touch_id=touch.id, customer_id=customer.id, member_id=customer.owner_id, kind=EvidenceKind.TEXT,
                        note=touch.summary, created_at=created, attributes={})
    stored = rng.choice(images)
    return Evidence(
        touch_id=touch.id, customer_id=customer.id, member_id=customer.owner_id, kind=EvidenceKind.PHOTO,
        sha256=stored.sha256, path=stored.path, thumb_path=stored.thumb_path, mime=stored.mime, size=stored.size,
        filename=stored.filename, note=touch.summary, attributes=stored.found_attributes(), created_at=created,
    )
