"""The console's web page and JSON API (documented in the README).

The page (``/console``) and end-to-end tests use the same API: send as any member, click card
buttons, read what was pushed to members and groups, and — only when ``[console] clock_control``
is on — move the clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from bot.appkeys import RUNTIME
from bot.clock import ShiftableClock
from bot.events import Event, EventKind, MediaRef
from bot.runtime import Runtime
from cards.model import Card
from cards.text import card_as_text
from storage import members as member_store
from storage import outbox as outbox_store
from storage import settings as settings_store
from storage.db import string_length
from storage.media import MediaRejected
from storage.models import InboxItem, OutboxItem

STATIC = Path(__file__).parent / "static"
PLATFORM = "console"
CLOCK_SETTING = "console_clock_offset"
MSG_ID_CHARS = string_length(InboxItem.__table__.c.platform_msg_id)
_UPLOAD_HEADERS = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}
_KIND_BY_FORM = {"photo": EventKind.IMAGE, "image": EventKind.IMAGE, "voice": EventKind.VOICE,
                 "video": EventKind.VIDEO, "file": EventKind.FILE}


LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})


@web.middleware
async def local_only(request: web.Request, handler):  # type: ignore[no-untyped-def]
    """Refuse console requests from other machines unless ``[console] allow_remote`` is set."""
    if request.path.startswith("/console") and request.remote not in LOOPBACK:
        if not request.app[RUNTIME].config.console.allow_remote:
            raise _error(403, "the console only answers this machine; set [console] allow_remote = true to open it")
    return await handler(request)


def add_routes(app: web.Application) -> None:
    app.middlewares.append(local_only)
    app.router.add_get("/console", page)
    app.router.add_get("/console/", page)
    app.router.add_static("/console/static", STATIC)
    app.router.add_get("/console/api/org", org)
    app.router.add_post("/console/api/messages", send_message)
    app.router.add_post("/console/api/actions", act_on_card)
    app.router.add_get("/console/api/feed", feed)
    app.router.add_get("/console/api/clock", get_clock)
    app.router.add_post("/console/api/clock", set_clock)
    app.router.add_get(r"/console/media/{path:.+}", media_file)


def _error(status: int, message: str) -> web.HTTPException:
    classes: dict[int, type[web.HTTPException]] = {
        400: web.HTTPBadRequest, 403: web.HTTPForbidden, 404: web.HTTPNotFound, 413: web.HTTPRequestEntityTooLarge
    }
    cls = classes[status]
    return cls(text=_json_text({"error": message}), content_type="application/json")


def _json_text(data: Any) -> str:
    import json

    return json.dumps(data, ensure_ascii=False)


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def org(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    async with runtime.sessions() as session:
        members = await member_store.all_members(session)
        teams = await member_store.all_teams(session)
    team_by_id = {t.id: t for t in teams}
    return web.json_response(
        {
            "members": [
                {
                    "id": m.id,
                    "code": m.code,
                    "name": m.name,
                    "role": m.role.value,
                    "team": team_by_id[m.team_id].key if m.team_id in team_by_id else None,
                }
                for m in members
            ],
            "teams": [
                {"id": t.id, "key": t.key, "name": t.name, "manager_id": t.manager_id} for t in teams
            ],
            "clock_control": runtime.config.console.clock_control,
            "timezone": runtime.config.org.timezone,
        },
        dumps=_json_text,
    )


async def _read_json(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except Exception as exc:
        raise _error(400, "body must be a JSON object") from exc
    if not isinstance(data, dict):
        raise _error(400, "body must be a JSON object")
    return data


def _str_field(data: dict[str, Any], key: str, *, required: bool = True, limit: int = 200) -> str:
    value = data.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise _error(400, f"{key} must be a string")
    if required and not value:
        raise _error(400, f"{key} is required")
    if len(value) > limit:
        raise _error(400, f"{key} is longer than {limit} characters")
    return value


async def send_message(request: web.Request) -> web.Response:
    """Send a text (JSON) or an attachment (multipart: member, file, kind?, msg_id?) as a member."""
    runtime = request.app[RUNTIME]
    if request.content_type.startswith("multipart/"):
        event = await _event_from_upload(request, runtime)
    else:
        data = await _read_json(request)
        member = _str_field(data, "member")
        # Long texts are passed through: the bot itself answers them with a clear refusal.
        text = _str_field(data, "text", required=False, limit=100_000)
        event = _new_event(member, _msg_id(data), EventKind.TEXT, text=text)
    return await _submit(runtime, event)


async def _event_from_upload(request: web.Request, runtime: Runtime) -> Event:
    reader = await request.multipart()
    fields: dict[str, str] = {}
    payload: bytes | None = None
    filename, mime = "", ""
    async for part in reader:
        if not isinstance(part, BodyPartReader):
            raise _error(400, "nested multipart bodies are not accepted")
        if part.name == "file":
            filename = part.filename or "upload"
            mime = part.headers.get("Content-Type", "")
            payload = await part.read(decode=False)
        elif part.name:
            fields[part.name] = (await part.text())[:2000]
    if payload is None:
        raise _error(400, "file is required")
    member, msg_id = _str_field(fields, "member"), _msg_id(fields)
    kind_name = fields.get("kind") or ("photo" if mime.startswith("image/") else "voice" if mime.startswith("audio/") else "file")
    kind = _KIND_BY_FORM.get(kind_name)
    if kind is None:
        raise _error(400, f"kind must be one of {sorted(_KIND_BY_FORM)}")
    try:
        sha = await asyncio.to_thread(runtime.media.stage, payload)
    except MediaRejected as exc:
        raise _error(413 if payload else 400, exc.detail) from exc
    media = MediaRef(filename=filename[:200], mime=mime[:100], size=len(payload), staged_sha256=sha)
    return _new_event(member, msg_id, kind, text=fields.get("text", ""), media=media)


def _msg_id(data: dict[str, Any]) -> str:
    """The caller's de-duplication id (optional): as long as the inbox column allows, no longer."""
    return _str_field(data, "msg_id", required=False, limit=MSG_ID_CHARS)


def _new_event(member: str, msg_id: str, kind: EventKind, **extra: Any) -> Event:
    return Event(
        platform=PLATFORM,
        platform_msg_id=msg_id or uuid.uuid4().hex,
        kind=kind,
        sender=member,
        conversation=member,
        **extra,
    )


async def act_on_card(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    data = await _read_json(request)
    values = data.get("values") or []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise _error(400, "values must be a list of strings")
    event = _new_event(
        _str_field(data, "member"),
        _msg_id(data),
        EventKind.ACTION,
        task_id=_str_field(data, "task_id", limit=128),
        action=_str_field(data, "action", limit=256),
        action_values=tuple(values[:50]),
    )
    return await _submit(runtime, event)


async def _submit(runtime: Runtime, event: Event) -> web.Response:
    # Behind a backlog older than [inbox] busy_after_seconds the answer could not come in time:
    # say so at once, storing nothing, rather than holding the request until it times out.
    retry_after = await runtime.inbox.busy_for()
    if retry_after is not None:
        raise web.HTTPServiceUnavailable(
            text=_json_text({"error": "busy: messages are waiting to be processed; try again later",
                             "retry_after_seconds": retry_after}),
            content_type="application/json", headers={"Retry-After": str(retry_after)},
        )
    accepted = await runtime.inbox.accept(event)
    await runtime.inbox.wait_processed(accepted.inbox_id)
    async with runtime.sessions() as session:
        replies = await outbox_store.replies_to_event(session, accepted.inbox_id)
        items = await _feed_json(session, replies)
    body: dict[str, Any] = {
        "status": "accepted" if accepted.is_new else "duplicate",
        "event_id": accepted.inbox_id,
        "replies": items,
    }
    if not accepted.is_new:
        body["notice"] = "重复的消息(相同 msg_id),已忽略,未重复记录。"
    return web.json_response(body, dumps=_json_text)


async def _feed_json(session: Any, items: list[OutboxItem]) -> list[dict[str, Any]]:
    members = {m.id: m for m in await member_store.all_members(session)}
    teams = {t.id: t for t in await member_store.all_teams(session)}
    result = []
    for item in items:
        if item.target_kind == "group":
            team = teams.get(item.target_id)
            to = {"team": team.key if team else item.target}
        else:
            member = members.get(item.target_id)
            to = {"member": member.code if member else item.target}
        entry: dict[str, Any] = {
            "id": item.id,
            "platform": item.platform,
            "kind": item.kind,
            "to": to,
            "payload": item.payload,
            "status": item.status.value,
            "created_at": item.created_at.isoformat(),
        }
        if "card" in item.payload:
            entry["fallback"] = card_as_text(Card.from_json(item.payload["card"]))
        result.append(entry)
    return result


async def feed(request: web.Request) -> web.Response:
    """What was pushed to ``member`` (code) or ``team`` (key), after item id ``after``."""
    runtime = request.app[RUNTIME]
    query = request.query
    try:
        after = int(query.get("after", "0"))
        limit = int(query.get("limit", "200"))
    except ValueError as exc:
        raise _error(400, "after and limit must be integers") from exc
    if not 1 <= limit <= 500:
        raise _error(400, "limit must be between 1 and 500")
    async with runtime.sessions() as session:
        if "member" in query:
            member = await member_store.member_by_code(session, query["member"])
            if member is None:
                raise _error(404, f"unknown member {query['member']!r}")
            target_kind, target_id = "member", member.id
        elif "team" in query:
            teams = {t.key: t for t in await member_store.all_teams(session)}
            if query["team"] not in teams:
                raise _error(404, f"unknown team {query['team']!r}")
            target_kind, target_id = "group", teams[query["team"]].id
        else:
            raise _error(400, "member or team is required")
        items = await outbox_store.feed(
            session, target_kind=target_kind, target_id=target_id, after_id=after, limit=limit
        )
        body = {"items": await _feed_json(session, items), "now": runtime.clock.now().isoformat()}
    return web.json_response(body, dumps=_json_text)


async def get_clock(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    return web.json_response(
        {"now": runtime.clock.now().isoformat(), "control_enabled": runtime.config.console.clock_control}
    )


async def set_clock(request: web.Request) -> web.Response:
    """Set the clock (``{"now": ISO}`` or ``{"advance_minutes": N}``); refused unless enabled."""
    runtime = request.app[RUNTIME]
    if not runtime.config.console.clock_control:
        raise _error(403, "clock control is disabled; set [console] clock_control = true to allow it")
    clock = runtime.clock
    if not isinstance(clock, ShiftableClock):
        raise _error(400, "this clock cannot be moved")
    data = await _read_json(request)
    if "now" in data:
        try:
            instant = dt.datetime.fromisoformat(str(data["now"]))
        except ValueError as exc:
            raise _error(400, "now must be an ISO 8601 date-time with a time zone") from exc
        if instant.tzinfo is None:
            raise _error(400, "now must include a time zone offset, e.g. 2026-12-01T09:00:00+08:00")
        clock.set_now(instant)
    elif "advance_minutes" in data:
        minutes = data["advance_minutes"]
        if not isinstance(minutes, int | float) or isinstance(minutes, bool) or not -1e6 <= minutes <= 1e6:
            raise _error(400, "advance_minutes must be a number between -1000000 and 1000000")
        clock.offset += dt.timedelta(minutes=minutes)
    else:
        raise _error(400, "give now or advance_minutes")
    async with runtime.sessions() as session, session.begin():
        await settings_store.put(session, CLOCK_SETTING, {"seconds": clock.offset.total_seconds()})
    runtime.inbox.poller.wake()
    runtime.outbox.wake()
    return web.json_response({"now": clock.now().isoformat(), "control_enabled": True})


async def restore_clock(runtime: Runtime) -> None:
    """Re-apply a clock offset set from the console before a restart (only when allowed)."""
    if not runtime.config.console.clock_control or not isinstance(runtime.clock, ShiftableClock):
        return
    async with runtime.sessions() as session:
        stored = await settings_store.get(session, CLOCK_SETTING)
    if stored:
        runtime.clock.offset = dt.timedelta(seconds=float(stored["seconds"]))


async def media_file(request: web.Request) -> web.FileResponse:
    runtime = request.app[RUNTIME]
    relative = request.match_info["path"]
    if relative.startswith("incoming/"):  # raw uploads are not served until they are validated
        raise _error(404, "no such file")
    try:
        path = runtime.media.path_of(relative)
    except MediaRejected as exc:
        raise _error(404, "no such file") from exc
    if not path.is_file():
        raise _error(404, "no such file")
    # Evidence files are whatever members uploaded (an .html or .svg one too): never let the
    # browser run them as a page of the console's origin, which can act as anyone.
    return web.FileResponse(path, headers=_UPLOAD_HEADERS)
