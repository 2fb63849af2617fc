"""话术包 / 物料: pushing script packs to reps (by rules, as rewards, or on request).

``deliver_pack`` is the one way a pack reaches a rep (``push_pack`` finds it by title first). The
pure rules below choose packs for a rep's customers (by the industry / stage / obstacle tags) and
search the library for ``/话术``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from bot.context import Ctx
from bot.replies import File, Markdown, Reply, Text, ToMember
from bot.router import Router
from domain.enums import CustomerStatus
from handlers import library_admin
from handlers import texts_library as library_texts
from storage import customers as customer_store
from storage import libraries
from storage import pipelines as pipeline_store
from storage.models import Customer, ScriptPack

router = Router("playbooks")

PACK_TITLE = "📘《{title}》"
PACK_NOTE = "> {note}\n\n"


async def push_pack(
    ctx: Ctx, *, member_id: int, title: str, cause: str, customer_id: int | None = None, note: str = ""
) -> list[Reply]:
    """Push the pack named ``title`` to a member once per ``cause``; [] if unknown or already sent.

    ``cause`` identifies why (e.g. ``overdue:stage:12:customer:5`` or ``reward:6``): the same
    cause never pushes twice, so sweeps and retries are safe.
    """
    pack = await libraries.pack_by_title(ctx.session, title)
    if pack is None:
        return []
    return await deliver_pack(ctx, pack, member_id=member_id, cause=cause, customer_id=customer_id, note=note)


async def deliver_pack(
    ctx: Ctx, pack: ScriptPack, *, member_id: int, cause: str, customer_id: int | None = None, note: str = ""
) -> list[Reply]:
    """Push ``pack`` to a member once per ``cause`` (see ``push_pack``); [] if already sent."""
    fresh = await libraries.record_delivery(
        ctx.session, pack_id=pack.id, member_id=member_id, customer_id=customer_id, cause=cause, now=ctx.now()
    )
    if not fresh:
        return []
    heading = PACK_TITLE.format(title=pack.title)
    body = f"### {heading}\n" + (PACK_NOTE.format(note=note) if note else "") + pack.body
    replies: list[Reply] = [Markdown(heading, body, to=ToMember(member_id))]
    if pack.file_sha256:
        replies.append(File(pack.file_sha256, pack.file_name or f"{pack.title}", to=ToMember(member_id)))
    return replies


# --- choosing packs: pure rules shared by rewards and /话术 ---------------------------------------


@dataclass(frozen=True)
class Situation:
    """What a pack is matched against for one customer: industry, current stage, key obstacle."""

    industry: str = ""
    stage: str = ""
    obstacle: str = ""


def _tag_list(pack: ScriptPack, kind: str) -> list[str]:
    values = (pack.tags or {}).get(kind) or []
    return [str(v).strip() for v in values if str(v).strip()] if isinstance(values, list) else []


def situation_fit(pack: ScriptPack, situation: Situation) -> int:
    """How many of the customer's industry, stage and obstacle the pack's tags name (0–3)."""
    fit = 0
    if situation.industry and any(t in situation.industry or situation.industry in t for t in _tag_list(pack, "industry")):
        fit += 1
    if situation.stage and situation.stage in _tag_list(pack, "stage"):
        fit += 1
    if situation.obstacle and any(t in situation.obstacle for t in _tag_list(pack, "obstacle")):
        fit += 1
    return fit


def rank_packs(
    packs: Sequence[ScriptPack],
    situations: Sequence[Situation],
    *,
    focus: Situation | None = None,
    delivered: Collection[int] = (),
) -> list[ScriptPack]:
    """Packs for a rep's customers, best first; among comparable packs, those not yet received.

    A pack scores the sum of its fit over the customers; the customer in ``focus`` (the one the
    rep just worked on) counts twice. Tiers: packs that fit a customer; then general material
    (tagged, but for no particular industry); then the rest (untagged packs, which rules push, and
    packs for industries the rep does not serve) — a not-yet-received pack of the first two tiers
    wins over one already received.
    """

    def score(pack: ScriptPack) -> int:
        total = sum(situation_fit(pack, s) for s in situations)
        return total + (2 * situation_fit(pack, focus) if focus else 0)

    def key(item: tuple[int, ScriptPack]) -> tuple[bool, bool, int, int, int]:
        points, pack = item
        tagged = any(_tag_list(pack, kind) for kind in ("industry", "stage", "obstacle", "competitor"))
        tier = 0 if points > 0 else 1 if tagged and not _tag_list(pack, "industry") else 2
        return (tier == 2, pack.id in delivered, tier, -points, pack.id)

    return [pack for _points, pack in sorted(((score(pack), pack) for pack in packs), key=key)]


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().strip("《》<> \t")


def search_packs(packs: Sequence[ScriptPack], query: str) -> tuple[ScriptPack | None, list[ScriptPack]]:
    """(the pack whose title is exactly ``query``, or None; packs matching its keywords, best first).

    Every keyword must occur in the title or a tag; hits in the title rank first. When nothing
    matches literally, titles resembling the query (a typo, a different word order) are offered.
    """
    folded = _fold(query)
    exact = next((p for p in packs if _fold(p.title) == folded), None)
    words = [w for w in re.split(r"[\s,,、;;]+", folded) if w]
    if not words:
        return exact, []
    matches: list[tuple[int, int, ScriptPack]] = []
    for pack in packs:
        title = _fold(pack.title)
        tags = " ".join(_fold(t) for kind in ("industry", "stage", "obstacle", "competitor") for t in _tag_list(pack, kind))
        if all(w in title or w in tags for w in words):
            matches.append((-sum(w in title for w in words), pack.id, pack))
    if not matches:
        titles = [_fold(p.title) for p in packs]
        for _title, score, index in process.extract(folded, titles, scorer=fuzz.partial_ratio, score_cutoff=70, limit=5):
            matches.append((-int(score), packs[index].id, packs[index]))
    matches.sort(key=lambda item: (item[0], item[1]))
    return exact, [pack for *_key, pack in matches]


# --- /话术: reps ask for a pack ----------------------------------------------------------------------

MAX_LISTED = 5
MAX_QUERY_CHARS = 64


@router.command("/话术", "/script", summary=library_texts.CMD_SCRIPT, usage=library_texts.CMD_SCRIPT_USAGE)
async def request_pack(ctx: Ctx) -> list[Reply]:
    parts = ctx.event.text.strip().split(maxsplit=1)
    query = parts[1].strip() if len(parts) > 1 else ""
    if (managed := await library_admin.library_command(ctx, "pack", query)) is not None:
        return managed  # 列表 / 新增 / 修改 / 停用 / 启用: admins keep the library (handlers/library_admin)
    packs = await libraries.all_packs(ctx.session)
    if not packs:
        return [Text(library_texts.PACK_EMPTY_LIBRARY)]
    if not query:
        return [await _suggestions(ctx, packs)]
    if len(query) > MAX_QUERY_CHARS:
        return [Text(library_texts.QUERY_TOO_LONG.format(limit=MAX_QUERY_CHARS))]
    exact, matches = search_packs(packs, query)
    chosen = exact or (matches[0] if len(matches) == 1 else None)
    if chosen is not None:
        # Each request is its own cause: asking again sends the pack again.
        cause = f"request:{ctx.inbox_id}" if ctx.inbox_id is not None else f"request:{ctx.now().isoformat()}"
        return await push_pack(ctx, member_id=ctx.acting.id, title=chosen.title, cause=cause)
    if not matches:
        return [Text(library_texts.PACK_NOT_FOUND.format(query=query))]
    shown = matches[:MAX_LISTED]
    more = library_texts.PACK_LIST_MORE.format(shown=len(shown)) if len(matches) > len(shown) else ""
    lines = [library_texts.PACK_LIST_HEADER.format(count=len(matches), query=query, more=more)]
    lines += [library_texts.PACK_LIST_LINE.format(n=n, title=p.title, tags=_tag_summary(p)) for n, p in enumerate(shown, 1)]
    lines += ["", library_texts.PACK_LIST_FOOTER.format(example=shown[0].title)]
    return [Markdown(library_texts.PACK_LIST_TITLE.format(query=query), "\n".join(lines))]


async def _suggestions(ctx: Ctx, packs: list[ScriptPack]) -> Reply:
    situations = await rep_situations(ctx, ctx.acting.id)
    ranked = rank_packs(packs, situations)[:MAX_LISTED]
    lines = [library_texts.PACK_USAGE, "", library_texts.PACK_SUGGESTED_HEADER]
    lines += [library_texts.PACK_LIST_LINE.format(n=n, title=p.title, tags=_tag_summary(p)) for n, p in enumerate(ranked, 1)]
    return Markdown(library_texts.PACK_LIST_TITLE.format(query="推荐"), "\n".join(lines))


def _tag_summary(pack: ScriptPack) -> str:
    tags = _tag_list(pack, "stage")[:2] + _tag_list(pack, "obstacle")[:1]
    return f" — {'、'.join(tags)}" if tags else ""


async def rep_situations(ctx: Ctx, member_id: int) -> list[Situation]:
    """The situations of a rep's open customers (closed ones no longer need material)."""
    customers = await customer_store.owned_by(ctx.session, member_id)
    stage_names = await pipeline_store.stage_names(ctx.session)
    return [situation_of(c, stage_names) for c in customers if c.status is not CustomerStatus.CLOSED]


def situation_of(customer: Customer, stage_names: dict[int, str]) -> Situation:
    return Situation(customer.industry or "", stage_names.get(customer.stage_id, ""), customer.key_obstacle or "")
