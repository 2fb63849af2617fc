"""把填系统变成领资源: every N effective touches unlock one material for the rep (SPEC §6).

When a touch becomes effective, the rep's effective (not undone) touches are counted; at every
multiple of ``rules.reward_every`` one script pack chosen for the rep's customers is pushed. The
delivery cause is ``reward:<count>``, so a count reached again (after an undo) never rewards twice.
"""

from __future__ import annotations

import logging

from bot.context import Ctx
from bot.replies import Reply
from bot.router import Router
from handlers import texts_library as texts
from handlers.playbooks import deliver_pack, rank_packs, rep_situations, situation_of
from storage import libraries
from storage import pipelines as pipeline_store
from storage import touches as touch_store
from storage.models import Customer, Touch

log = logging.getLogger(__name__)

router = Router("rewards")


@router.after_effective
async def unlock_material(ctx: Ctx, touch: Touch, customer: Customer) -> list[Reply]:
    every = ctx.config.rules.reward_every
    count = await touch_store.effective_touch_count(ctx.session, touch.member_id)
    if count == 0 or count % every:
        return []
    packs = await libraries.all_packs(ctx.session)
    stage_names = await pipeline_store.stage_names(ctx.session)
    ranked = rank_packs(
        packs,
        await rep_situations(ctx, touch.member_id),
        focus=situation_of(customer, stage_names),
        delivered=await libraries.delivered_pack_ids(ctx.session, touch.member_id),
    )
    if not ranked:
        log.warning("member %s reached %s effective touches but the pack library is empty", touch.member_id, count)
        return []
    pack = ranked[0]
    note = texts.REWARD_NOTE.format(count=count, title=pack.title)
    replies = await deliver_pack(
        ctx, pack, member_id=touch.member_id, cause=f"reward:{count}", customer_id=customer.id, note=note
    )
    if replies:
        log.info("member %s unlocked pack %s at %s effective touches", touch.member_id, pack.id, count)
    return replies
