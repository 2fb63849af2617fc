"""A demo organisation: a building-materials distributor with three regional teams.

Seeded so that a newcomer sees real data at once: ~20 reps, ~300 customers spread over the
default pipeline, and 30 days of touch history with realistic gaps (some customers gone cold,
some next actions overdue, some touches still waiting for evidence).
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import Channel, EvidenceStatus
from storage.models import Customer, Member, StageHistory, Touch
from storage.org import load_directory
from storage.pipelines import default_pipeline, stages_of

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
_GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "艳", "杰", "涛", "明", "超", "霞", "平", "刚", "桂英", "建华", "晓东", "海燕", "志强", "丽娟", "俊杰", "子涵"]
_PLACES = ["华东", "申城", "金陵", "钱塘", "姑苏", "滨江", "东湖", "岭南", "鹏城", "羊城", "珠江", "巴蜀", "天府", "锦江", "渝州", "春城", "黔中", "湘江", "徽州", "闽江"]
_CORES = ["建材", "装饰", "置业", "工程", "家居", "地产", "市政", "幕墙", "钢构", "管业", "门窗", "防水"]
_SUFFIX = ["", "集团", "有限公司", "实业", "建设"]
_INDUSTRIES = ["房地产开发", "装饰工程", "市政工程", "家装公司", "建材经销", "酒店连锁"]
_TITLES = ["总", "经理", "工", "主任"]
_TEAMS = [("east", "华东大区"), ("south", "华南大区"), ("west", "西南大区")]
_SUMMARIES = {
    Channel.PHONE: ["聊了报价细节", "确认了样品寄送地址", "沟通了付款方式", "跟进了招标进度", "了解了项目工期"],
    Channel.WECHAT: ["发了定制方案", "发了产品目录", "回复了技术参数问题", "发了报价单", "发了案例视频"],
    Channel.VISIT: ["上门拜访看了工地", "带样品见了采购", "请客户参观了展厅", "和设计院开了技术交流会"],
    Channel.EMAIL: ["发了正式报价邮件", "发了合同草稿", "发了检测报告"],
}
_STALLS = ["客户在忙,再约时间", "等领导回复", "没接电话", "已读不回"]
_NEXT = ["上门拜访", "发报价单", "寄样品", "约技术交流", "催合同回签", "确认付款计划", "电话回访"]


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


async def seed_demo(session: AsyncSession, *, now: dt.datetime, seed: int = 7, if_empty: bool = False) -> str:
    existing = await session.scalar(select(func.count()).select_from(Member))
    if if_empty and existing:
        return f"demo not seeded: the database already has {existing} members"
    rng = random.Random(seed)
    await load_directory(session, demo_directory(rng), now=now)
    pipeline = await default_pipeline(session)
    stages = await stages_of(session, pipeline.id)
    reps = list(await session.scalars(select(Member).where(Member.code.like("rep.%")).order_by(Member.id)))
    # Early stages hold most customers, as in any real funnel.
    weights = [30, 22, 16, 12, 9, 6, 5][: len(stages)]
    customers: list[Customer] = []
    names: set[str] = set()
    while len(customers) < 300:
        name = rng.choice(_PLACES) + rng.choice(_CORES) + rng.choice(_SUFFIX)
        if name in names:
            continue
        names.add(name)
        owner = reps[len(customers) % len(reps)]
        stage = rng.choices(stages, weights)[0]
        created = now - dt.timedelta(days=rng.randint(5, 120), hours=rng.randint(0, 23))
        entered = max(created, now - dt.timedelta(days=rng.randint(1, 40)))
        contact = rng.choice(_SURNAMES) + rng.choice(_TITLES)
        customers.append(
            Customer(
                name=name,
                owner_id=owner.id,
                pipeline_id=pipeline.id,
                stage_id=stage.id,
                stage_entered_at=entered,
                industry=rng.choice(_INDUSTRIES),
                aliases=[name[:4]] if len(name) > 4 else [],
                contacts=[contact],
                custom_fields={},
                value=rng.choice([5, 8, 12, 20, 35, 50, 80, 120]) * 10_000,
                created_at=created,
            )
        )
    session.add_all(customers)
    await session.flush()
    touches = 0
    # Some reps log diligently, some barely: the gaps are the point of the demo.
    diligence = {rep.id: rng.choice([0.25, 0.5, 0.8, 1.0]) for rep in reps}
    for customer in customers:
        session.add(
            StageHistory(customer_id=customer.id, stage_id=customer.stage_id, entered_at=customer.stage_entered_at)
        )
        count = int(rng.randint(0, 8) * diligence[customer.owner_id])
        moments = sorted(now - dt.timedelta(days=rng.uniform(0.2, 30)) for _ in range(count))
        for moment in moments:
            moment = max(moment, customer.created_at)
            channel = rng.choices(list(_SUMMARIES), [40, 35, 18, 7])[0]
            stalled = rng.random() < 0.15
            summary = rng.choice(_STALLS) if stalled else rng.choice(_SUMMARIES[channel])
            duration = rng.choice([1, 3, 5, 10, 20, 30, 45, 60]) if channel in (Channel.PHONE, Channel.VISIT) else None
            has_evidence = rng.random() < 0.6
            proposal = channel in (Channel.WECHAT, Channel.EMAIL) and "方案" in summary or "报价" in summary
            meets = (
                (channel is Channel.PHONE and (duration or 0) >= 2)
                or (channel is Channel.VISIT and (duration or 0) >= 15)
                or proposal
            )
            age = now - moment
            status = (
                EvidenceStatus.PROVIDED if has_evidence
                else EvidenceStatus.PENDING if age < dt.timedelta(hours=24)
                else EvidenceStatus.MISSING
            )
            session.add(
                Touch(
                    customer_id=customer.id,
                    member_id=customer.owner_id,
                    channel=channel,
                    duration_minutes=duration,
                    summary=summary,
                    raw_text=f"{customer.name} {summary}",
                    next_action=rng.choice(_NEXT),
                    next_due=(moment + dt.timedelta(days=rng.randint(1, 7))).date(),
                    proposal=proposal,
                    effective=has_evidence and meets,
                    evidence_status=status,
                    occurred_at=moment,
                )
            )
            customer.last_touch_at = moment
            touches += 1
    await session.flush()
    return f"demo organisation seeded: 3 teams, {len(reps)} reps, {len(customers)} customers, {touches} touches"
