"""/导入 and /导出 (SPEC §9): bring a team's customer list in from Excel, and take everything out.

An admin sends ``/导入`` and then the file (or the file with the caption ``/导入``). The file is
read and every row validated before anything is written; one bad row and nothing changes, and the
admin gets every bad row with its spreadsheet row number and reason (as a file too when the list
is long). The server CLI (``pacebot import`` / ``pacebot export``) uses the same functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import os
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import xlsxwriter
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts as bot_texts
from bot.context import Ctx
from bot.errors import UserError
from bot.replies import File, Reply, Text
from bot.router import DialogueState, Router
from domain.enums import Role
from domain.importing import ImportRejected, RowError, plan_import
from handlers import texts_import as texts
from handlers.dialogue import CANCEL_WORDS, dialogue_data, end_dialogue, save_state
from storage import members as member_store
from storage.exporter import ExportCounts, export_workbook
from storage.importer import MAX_IMPORT_BYTES, ImportResult, apply_plan, load_directory, read_sheet
from storage.media import MediaRejected
from storage.models import Member

router = Router("importing")



class ImportState(DialogueState):
    """/导入 waits for the admin's file."""

    FILE = "import.file"
SHOWN_ERRORS = 20


def describe_rejection(exc: ImportRejected) -> str:
    template = texts.REJECTIONS.get(exc.code, texts.REJECTIONS["unreadable"])
    return template.format(detail=exc.detail)


def describe_row_error(error: RowError) -> str:
    reason = texts.ROW_REASONS.get(error.code, error.code).format(detail=error.detail)
    return texts.IMPORT_ERROR_LINE.format(row=error.row, reason=reason)


@dataclass(frozen=True)
class ImportOutcome:
    result: ImportResult | None
    errors: list[RowError]


async def import_file(
    session: AsyncSession,
    data: bytes,
    filename: str,
    *,
    now: dt.datetime,
    tz: ZoneInfo,
    actor_id: int | None,
    default_owner_id: int | None = None,
    dry_run: bool = False,
) -> ImportOutcome:
    """Read, validate and (unless any row is bad, or ``dry_run``) write; raises ``ImportRejected``."""
    rows = await asyncio.to_thread(read_sheet, data, filename)
    directory = await load_directory(session, default_owner=default_owner_id)
    today = now.astimezone(tz).date()
    plan = await asyncio.to_thread(plan_import, rows, directory, today)
    del rows
    if not plan.ok:
        return ImportOutcome(None, plan.errors)
    result = await apply_plan(
        session, plan, now=now, tz=tz, actor_id=actor_id, source=filename, dry_run=dry_run
    )
    return ImportOutcome(result, [])


def errors_workbook(errors: list[RowError]) -> bytes:
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False})
    sheet = workbook.add_worksheet("问题")
    sheet.write_string(0, 0, "行号")
    sheet.write_string(0, 1, "原因")
    for r, error in enumerate(errors, start=1):
        sheet.write_number(r, 0, error.row)
        sheet.write_string(r, 1, describe_row_error(error).split(":", 1)[-1])
    workbook.close()
    return buffer.getvalue()


# -- chat: /导入 ---------------------------------------------------------------------------------


@router.command("/导入", "/import", roles=[Role.ADMIN], summary="导入客户表(随后发送 Excel 文件)")
async def import_command(ctx: Ctx) -> list[Reply]:
    owner_code = _argument(ctx.event.text)
    default_owner = await _default_owner(ctx, owner_code)
    await save_state(ctx, ImportState.FILE, {"owner": default_owner})
    return [Text(texts.IMPORT_SEND_FILE.format(mb=MAX_IMPORT_BYTES // (1024 * 1024)))]


@router.dialogue(ImportState.FILE, media=True)
async def receive_file(ctx: Ctx) -> list[Reply] | None:
    if ctx.event.media is None:
        if ctx.event.text.strip() in CANCEL_WORDS:
            await end_dialogue(ctx)
            return [Text(texts.IMPORT_CANCELLED)]
        return None  # something else: handled as usual, the import still waits for its file
    data = dialogue_data(ctx, ImportState.FILE) or {}
    owner = data.get("owner")
    await end_dialogue(ctx)
    return await _import_attachment(ctx, owner if isinstance(owner, int) else None)


@router.claim_media
async def file_captioned_import(ctx: Ctx) -> list[Reply] | None:
    caption = ctx.event.text.strip().replace("/", "/", 1)
    if not caption.startswith(("/导入", "/import")):
        return None
    if ctx.acting.role is not Role.ADMIN:
        raise UserError(texts_not_permitted("/导入"))
    default_owner = await _default_owner(ctx, _argument(caption))
    return await _import_attachment(ctx, default_owner)


def texts_not_permitted(name: str) -> str:
    return bot_texts.COMMAND_NOT_PERMITTED.format(name=name)


def _argument(text: str) -> str:
    parts = text.strip().split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


async def _default_owner(ctx: Ctx, code: str) -> int | None:
    if not code:
        return None
    member = await member_store.member_by_code(ctx.session, code)
    if member is None or member.role not in (Role.REP, Role.MANAGER):
        raise UserError(texts.ROW_REASONS["unknown_owner"].format(detail=code) + "。")
    return member.id


async def _import_attachment(ctx: Ctx, default_owner: int | None) -> list[Reply]:
    ref = ctx.event.media
    if ref is None or ref.unavailable:
        return [Text(texts.IMPORT_NO_FILE)]
    if not ref.staged_sha256:  # refused at staging: larger than the media limit
        return [Text(texts.REJECTIONS["too_large"])]
    try:
        data = await asyncio.to_thread(ctx.media.read_staged, ref.staged_sha256)
    except MediaRejected:
        return [Text(texts.IMPORT_NO_FILE)]
    # Some clients percent-encode non-ASCII file names in multipart headers.
    filename = urllib.parse.unquote(ref.filename or "") or "upload.xlsx"
    try:
        outcome = await import_file(
            ctx.session, data, filename, now=ctx.now(), tz=ctx.tz, actor_id=ctx.acting.id,
            default_owner_id=default_owner,
        )
    except ImportRejected as exc:
        raise UserError(describe_rejection(exc), detail=f"import refused: {exc}") from exc
    if outcome.result is not None:
        r = outcome.result
        return [Text(texts.IMPORT_DONE.format(source=filename, created=r.created, updated=r.updated, unchanged=r.unchanged))]
    errors = outcome.errors
    lines = [texts.IMPORT_FAILED.format(count=len({e.row for e in errors}))]
    lines += [describe_row_error(e) for e in errors[:SHOWN_ERRORS]]
    replies: list[Reply] = []
    if len(errors) > SHOWN_ERRORS:
        lines.append(texts.IMPORT_FAILED_MORE.format(more=len(errors) - SHOWN_ERRORS))
        report = await asyncio.to_thread(errors_workbook, errors)
        stored = await asyncio.to_thread(ctx.media.store, report, kind_hint="file", filename=texts.IMPORT_ERRORS_FILE)
        replies.append(File(stored.sha256, texts.IMPORT_ERRORS_FILE))
    return [Text("\n".join(lines)), *replies]


# -- chat: /导出 ---------------------------------------------------------------------------------


async def write_export(
    session: AsyncSession, path: Path, member: Member | None, *, now: dt.datetime, tz: ZoneInfo
) -> ExportCounts:
    """Admins (and the CLI, ``member=None``) export everything; a manager their team, without the audit."""
    team_id = member.team_id if member is not None and member.role is Role.MANAGER else None
    return await export_workbook(
        session, path, now=now, tz=tz, team_id=team_id,
        include_audit=member is None or member.role is Role.ADMIN,
    )


@router.command("/导出", "/export", roles=[Role.ADMIN, Role.MANAGER], summary="导出客户、跟进、预警等为 Excel")
async def export_command(ctx: Ctx) -> list[Reply]:
    member = ctx.acting
    if member.role is Role.MANAGER and member.team_id is None:
        return [Text(texts.EXPORT_NO_TEAM)]
    handle, name = tempfile.mkstemp(suffix=".xlsx")
    os.close(handle)
    path = Path(name)
    try:
        counts = await write_export(ctx.session, path, member, now=ctx.now(), tz=ctx.tz)
        data = await asyncio.to_thread(path.read_bytes)
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
    filename = texts.EXPORT_FILENAME.format(date=ctx.today().strftime("%Y%m%d"))
    try:
        stored = await asyncio.to_thread(ctx.media.store, data, kind_hint="file", filename=filename)
    except MediaRejected:
        return [Text(texts.EXPORT_TOO_LARGE)]
    sheets = counts.sheets
    summary = texts.EXPORT_DONE.format(
        customers=sheets.get("客户", 0), touches=sheets.get("跟进记录", 0), alerts=sheets.get("预警", 0),
        requests=sheets.get("资源申请", 0),
    )
    if member.role is Role.MANAGER and member.team_id is not None:
        team = await member_store.get_team(ctx.session, member.team_id)
        summary += texts.EXPORT_TEAM_NOTE.format(team=team.name if team else "")
    return [Text(summary), File(stored.sha256, filename)]
