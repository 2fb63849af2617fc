"""``pacebot import FILE [--dry-run] [--owner CODE]`` and ``pacebot export --out FILE.xlsx``.

The same reading, validation and writing as ``/导入`` and ``/导出`` in chat. A refused file or any
bad row exits non-zero and changes nothing; each bad row is printed with its spreadsheet row number.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bot.bootstrap import build_runtime
from bot.config import Config
from domain.importing import ImportRejected
from handlers import texts_import as texts
from handlers.importing import describe_rejection, describe_row_error, import_file, write_export
from storage import members as member_store
from storage.importer import MAX_IMPORT_BYTES


async def run_import(config: Config, file: str, *, dry_run: bool = False, owner: str | None = None) -> int:
    path = Path(file)
    try:
        size = path.stat().st_size
    except OSError as exc:
        print(f"pacebot: cannot read {file}: {exc.strerror}", file=sys.stderr)
        return 2
    if size > MAX_IMPORT_BYTES:
        print(describe_rejection(ImportRejected("too_large", str(size))), file=sys.stderr)
        return 1
    data = path.read_bytes()
    runtime = await build_runtime(config)
    try:
        async with runtime.sessions() as session, session.begin():
            owner_id = None
            if owner:
                member = await member_store.member_by_code(session, owner)
                if member is None:
                    print(f"pacebot: --owner {owner!r} is not a member code", file=sys.stderr)
                    return 2
                owner_id = member.id
            try:
                outcome = await import_file(
                    session, data, path.name, now=runtime.clock.now(), tz=config.tz, actor_id=None,
                    default_owner_id=owner_id, dry_run=dry_run,
                )
            except ImportRejected as exc:
                print(describe_rejection(exc), file=sys.stderr)
                return 1
            if outcome.result is None:
                await session.rollback()
                print(texts.IMPORT_FAILED.format(count=len({e.row for e in outcome.errors})), file=sys.stderr)
                for error in outcome.errors:
                    print(describe_row_error(error), file=sys.stderr)
                return 1
            r = outcome.result
            template = texts.IMPORT_DRY_RUN if dry_run else texts.IMPORT_DONE
            print(template.format(source=path.name, created=r.created, updated=r.updated, unchanged=r.unchanged))
    finally:
        await runtime.stop()
    return 0


async def run_export(config: Config, out: str) -> int:
    path = Path(out)
    if path.suffix.lower() != ".xlsx":
        print("pacebot: --out must name an .xlsx file", file=sys.stderr)
        return 2
    runtime = await build_runtime(config)
    try:
        async with runtime.sessions() as session, session.begin():
            counts = await write_export(session, path, None, now=runtime.clock.now(), tz=config.tz)
    finally:
        await runtime.stop()
    print(f"exported to {path}: " + ", ".join(f"{name} {n}" for name, n in counts.sheets.items()))
    return 0
