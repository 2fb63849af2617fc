"""Schema upgrades through Alembic — the only way the schema changes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:  # Alembic itself is imported only when a database is behind (see ``upgrade``)
    from alembic.config import Config as AlembicConfig

_HERE = Path(__file__).parent
# The newest revision under migrations/versions (a test keeps it equal to Alembic's head). A database
# already there needs no upgrade, and Alembic need not read its migration scripts to say so: that
# reading was a quarter of a second of every start of the service and of every ``pacebot jobs run``.
HEAD_REVISION = "0008"


def alembic_config(url: str) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig(str(_HERE / "alembic.ini"))
    cfg.set_main_option("script_location", str(_HERE / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None: not under Alembic, or not one revision)."""
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT version_num FROM alembic_version"))).all()
    except DBAPIError:  # no such table: a new database
        return None
    return str(rows[0][0]) if len(rows) == 1 else None


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database behind ``engine`` up to ``revision``."""
    if revision in ("head", HEAD_REVISION) and await current_revision(engine) == HEAD_REVISION:
        return
    url = engine.url.render_as_string(hide_password=False)

    def _upgrade(connection) -> None:  # type: ignore[no-untyped-def]
        # Imported here: importing Alembic was a tenth of a second of every start of the service
        # and every ``pacebot`` command, nearly always for nothing.
        from alembic import command

        cfg = alembic_config(url)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)
