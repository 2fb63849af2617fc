"""Backups: SQLite through its online backup API; PostgreSQL through ``pg_dump`` (a command to run).

The SQLite backup copies a consistent snapshot page by page while the service keeps running and
writing (WAL mode); the result is a self-contained database file that ``pacebot serve`` can start
on directly (restore = put it where ``storage.url`` points, with the service stopped).
"""

from __future__ import annotations

import shlex
import sqlite3
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from storage.db import is_sqlite


class BackupError(Exception):
    """The backup cannot be made (the message says why, in one line)."""


def backup_sqlite(url: str, out: Path) -> int:
    """Copy the SQLite database at ``url`` to ``out`` (which must not exist); return its size."""
    if not is_sqlite(url):
        raise BackupError("not a SQLite database")
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory database cannot be backed up")
    source_path = Path(database)
    if not source_path.is_file():
        raise BackupError(f"no database file at {source_path}")
    if out.exists():
        raise BackupError(f"{out} already exists; choose a new file name")
    if not out.parent.is_dir():
        raise BackupError(f"directory {out.parent} does not exist")
    partial = out.with_name(out.name + ".partial")
    source = sqlite3.connect(source_path)
    try:
        target = sqlite3.connect(partial)
        try:
            source.backup(target, pages=1024)
            check = target.execute("PRAGMA integrity_check").fetchone()
            if not check or check[0] != "ok":
                raise BackupError(f"the copy failed its integrity check: {check}")
            # A standalone file: no WAL next to it is needed to read it.
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            target.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"SQLite backup failed: {exc}") from None
    except BackupError:
        partial.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    partial.replace(out)
    return out.stat().st_size


def pg_dump_command(url: str, out: Path) -> str:
    """The ``pg_dump`` command that backs up the PostgreSQL database at ``url`` (password left out)."""
    parsed = make_url(url)
    target = URL.create(
        "postgresql", username=parsed.username, host=parsed.host, port=parsed.port, database=parsed.database,
        query=parsed.query,
    ).render_as_string(hide_password=False)
    password = "PGPASSWORD=<password> " if parsed.password else ""
    return f"{password}pg_dump --format=custom --no-owner --file {shlex.quote(str(out))} {shlex.quote(target)}"
