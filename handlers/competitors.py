"""竞品动态: a rep reports a competitor sighting; the bot answers with the counter-script (SPEC §7).

Three ways in: ``/竞品 鼎固 降价20% 华东建材``, free text starting with ``竞品``, and a photo whose
caption mentions 竞品 or a known competitor name. The competitor is matched by name or alias
(a small typo in the leading name is tolerated for text); a customer is attached when the text
names one of the rep's own customers. A photo is stored as evidence of that customer (or of the
customer of the rep's open touch). A competitor missing from the base is still recorded, and the
admins are told so they can add it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz

from bot.context import Ctx
from bot.errors import UserError
from bot.events import EventKind
from bot.replies import Markdown, Reply, Text, ToMember
from bot.router import Router
from domain.enums import EvidenceKind
from domain.parsing.dates import normalize
from handlers import texts_library as texts
from handlers.attachments import store_staged
from handlers.customers import find_customer_named
from storage import customers as customer_store
from storage import intel as intel_store
from storage import libraries
from storage import members as member_store
from storage import touches as touch_store
from storage.models import Competitor, Customer

router = Router("competitors")

# "竞品 …", "竞品动态:…", "竞品情况,…" — but not "竞品库" (the admins' library command word).
_PREFIX_RE = re.compile(r"^竞品(?!库)(?:动态|情况|信息|消息)?[\s::,,、。.-]*")
_NAME_END_RE = re.compile(r"[\s,,。.;;::!!??、()()【】\[\]\d%%]|降价|涨价|促销|报价|推出|打折|返点|返利|让利|低价|免费|送|在|给|也|又")
FUZZY_CUTOFF = 75.0  # one wrong character in a four-character name scores 75
MAX_NAME_CHARS = 20


@dataclass(frozen=True)
class CompetitorHit:
    competitor_id: int
    name: str
    span: tuple[int, int] | None  # where the name or alias is in the text (None for a fuzzy hit)


def find_competitor(
    text: str, competitors: Sequence[Competitor], *, fuzzy: bool = True
) -> CompetitorHit | None:
    """The competitor named in ``text``: longest name/alias occurring in it, else (if ``fuzzy``)
    the one whose name resembles the leading word."""
    folded = normalize(text)
    best: tuple[int, int, CompetitorHit] | None = None  # (-length, start, hit)
    for competitor in competitors:
        for key in (competitor.name, *(competitor.aliases or ())):
            key_folded = normalize(str(key).strip())
            if len(key_folded) < 2:
                continue
            start = folded.find(key_folded)
            if start < 0:
                continue
            hit = CompetitorHit(competitor.id, competitor.name, (start, start + len(key_folded)))
            candidate = (-len(key_folded), start, hit)
            if best is None or candidate[:2] < best[:2]:
                best = candidate
    if best is not None:
        return best[2]
    if not fuzzy:
        return None
    token = leading_name(text)
    if len(token) < 2:
        return None
    scored: list[tuple[float, CompetitorHit]] = []
    for competitor in competitors:
        keys = [normalize(str(k)) for k in (competitor.name, *(competitor.aliases or ())) if len(str(k)) >= 3]
        score = max((fuzz.ratio(normalize(token), key) for key in keys), default=0.0)
        if score >= FUZZY_CUTOFF:
            scored.append((score, CompetitorHit(competitor.id, competitor.name, None)))
    scored.sort(key=lambda item: -item[0])
    if len(scored) == 1 or (len(scored) > 1 and scored[0][0] > scored[1][0]):
        return scored[0][1]
    return None


def leading_name(text: str) -> str:
    """The name-like word a report starts with: ``新锐建材降价20%`` → ``新锐建材``."""
    stripped = text.strip()
    end = _NAME_END_RE.search(stripped)
    return stripped[: end.start() if end else len(stripped)][:MAX_NAME_CHARS]


def strip_prefix(text: str) -> str | None:
    """The report after a leading ``竞品`` word, or None when the text does not start with it."""
    match = _PREFIX_RE.match(text.strip())
    return text.strip()[match.end() :] if match else None


# --- entry points --------------------------------------------------------------------------------


@router.command("/竞品", "/competitor", summary=texts.CMD_COMPETITOR, usage=texts.CMD_COMPETITOR_USAGE)
async def report_command(ctx: Ctx) -> list[Reply]:
    parts = ctx.event.text.strip().split(maxsplit=1)
    body = parts[1].strip() if len(parts) > 1 else ""
    if not body:
        return [Text(texts.COMPETITOR_USAGE)]
    return await _report(ctx, body, with_photo=False)


@router.claim_text
async def report_text(ctx: Ctx) -> list[Reply] | None:
    body = strip_prefix(ctx.event.text)
    if body is None:
        return None
    if not body.strip():
        return [Text(texts.COMPETITOR_USAGE)]
    return await _report(ctx, body.strip(), with_photo=False)


@router.claim_media
async def report_photo(ctx: Ctx) -> list[Reply] | None:
    caption = ctx.event.text.strip()
    if ctx.event.kind is not EventKind.IMAGE or not caption:
        return None
    body = strip_prefix(caption)
    if body is None:
        if "竞品" not in caption:
            competitors = await libraries.all_competitors(ctx.session)
            if find_competitor(caption, competitors, fuzzy=False) is None:
                return None  # an ordinary evidence photo
        body = caption
    return await _report(ctx, body.strip(), with_photo=True)


# --- the report ------------------------------------------------------------------------------------


async def _report(ctx: Ctx, body: str, *, with_photo: bool) -> list[Reply]:
    limit = ctx.config.touch.max_message_chars
    if len(body) > limit:
        return [Text(texts.COMPETITOR_TOO_LONG.format(length=len(body), limit=limit))]
    competitors = await libraries.all_competitors(ctx.session)
    hit = find_competitor(body, competitors)
    guessed = "" if hit else leading_name(body)
    if hit and hit.span:
        rest = body[: hit.span[0]] + " " + body[hit.span[1] :]
    elif hit or guessed:
        # The leading word names the competitor; it must not be mistaken for a customer.
        rest = body.strip()[len(leading_name(body)) :]
    else:
        rest = body
    customer = await _named_customer(ctx, rest)
    evidence_id, photo_note = None, ""
    photo_path = None
    if with_photo:
        evidence_id, photo_path, photo_note, customer = await _keep_photo(ctx, body, customer)
    competitor = next((c for c in competitors if hit and c.id == hit.competitor_id), None)
    await intel_store.record_intel(
        ctx.session,
        competitor_id=competitor.id if competitor else None,
        member_id=ctx.acting.id,
        customer_id=customer.id if customer else None,
        text=body,
        evidence_id=evidence_id,
        photo_path=photo_path,
        now=ctx.now(),
        source_event_id=ctx.inbox_id,
    )
    for_customer = texts.COMPETITOR_FOR_CUSTOMER.format(customer=customer.name) if customer else ""
    if competitor is None:
        reply = (
            texts.COMPETITOR_UNKNOWN.format(name=guessed, customer=for_customer)
            if guessed
            else texts.COMPETITOR_UNKNOWN_UNNAMED.format(customer=for_customer)
        )
        return [Text(reply + photo_note), *await _tell_admins(ctx, guessed, body)]
    lines = [
        f"### {texts.COMPETITOR_TITLE.format(name=competitor.name)}",
        texts.COMPETITOR_RECORDED.format(name=competitor.name, customer=for_customer) + photo_note,
        "",
        texts.COMPETITOR_SCRIPT_HEADER,
        competitor.counter_script.strip() or texts.COMPETITOR_NO_SCRIPT,
    ]
    return [Markdown(texts.COMPETITOR_TITLE.format(name=competitor.name), "\n".join(lines))]


async def _named_customer(ctx: Ctx, text: str) -> Customer | None:
    """One of the rep's own customers, when the text clearly names it."""
    if not text.strip():
        return None
    return (await find_customer_named(ctx, text, own_only=True)).customer


async def _keep_photo(
    ctx: Ctx, caption: str, customer: Customer | None
) -> tuple[int | None, str | None, str, Customer | None]:
    """Store the photo: as evidence of the named customer (else of the rep's open touch's customer),
    or, with no customer to file it under, with the intel itself.

    Returns (evidence id, photo path when kept with the intel, note for the rep, customer).
    """
    ref = ctx.event.media
    if ref is None or not ref.staged_sha256:
        raise UserError(texts.COMPETITOR_PHOTO_BAD, detail="competitor photo was rejected at staging")
    if customer is None:
        window = dt.timedelta(minutes=ctx.config.touch.evidence_window_minutes)
        touch = await touch_store.open_touch(ctx.session, ctx.acting.id, ctx.now() - window)
        if touch is not None:
            customer = await customer_store.get_customer(ctx.session, touch.customer_id)
    stored = await store_staged(
        ctx, sha256=ref.staged_sha256, kind=EvidenceKind.PHOTO, filename=ref.filename, mime=ref.mime
    )
    if customer is None:
        return None, stored.path, texts.COMPETITOR_PHOTO_KEPT, None
    evidence = await touch_store.add_media_evidence(
        ctx.session,
        stored=stored,
        kind=EvidenceKind.PHOTO,
        customer_id=customer.id,
        member_id=ctx.acting.id,
        touch_id=None,  # a competitor photo is not proof of a customer contact
        note=caption,
        now=ctx.now(),
        source_event_id=ctx.inbox_id,
        purpose={"purpose": "competitor_intel"},
    )
    return evidence.id, None, texts.COMPETITOR_PHOTO_SAVED.format(customer=customer.name), customer


async def _tell_admins(ctx: Ctx, name: str, body: str) -> list[Reply]:
    note = texts.COMPETITOR_ADMIN_NOTE.format(
        member=ctx.acting.name, name=f"「{name}」" if name else "", text=body[:200]
    )
    return [Text(note, to=ToMember(admin.id)) for admin in await member_store.admins(ctx.session)]
