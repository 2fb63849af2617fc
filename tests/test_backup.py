"""Operations from the command line: backup and restore, clean start-up errors, quiet logs."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from sqlalchemy import func, select

from bot.bootstrap import build_runtime
from bot.cli import main
from bot.config import config_from_dict
from storage.backup import pg_dump_command
from storage.models import Customer, Member, Touch
from tests.seed import add_customer


def write_config(tmp_path: Path, db: Path, port: int = 8080) -> str:
    path = tmp_path / "pacebot.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite+aiosqlite:///{db}"\ndata_dir = "{tmp_path / "data"}"\n'
        f'[server]\nport = {port}\n[scheduler]\nenabled = false\n',
        encoding="utf-8",
    )
    return str(path)


async def counts(url: str, tmp_path: Path) -> tuple[int, int, int]:
    config = config_from_dict({"storage": {"url": url, "data_dir": str(tmp_path / "restored-data")},
                               "scheduler": {"enabled": False}})
    runtime = await build_runtime(config)
    try:
        async with runtime.sessions() as session:
            return tuple([  # type: ignore[return-value]
                int(await session.scalar(select(func.count()).select_from(model)) or 0)
                for model in (Member, Customer, Touch)
            ])
    finally:
        await runtime.stop()


def test_a_backup_restores_into_a_working_database_with_the_data(tmp_path, capsys):
    db = tmp_path / "live.db"
    config = write_config(tmp_path, db)
    assert main(["--config", config, "demo"]) == 0
    backup = tmp_path / "backups" / "pacebot-1.db"
    backup.parent.mkdir()
    assert main(["--config", config, "backup", "--out", str(backup)]) == 0
    assert f"database backed up to {backup}" in capsys.readouterr().out
    # Restore: the backup file is copied where a new installation's storage.url points, and it starts.
    restored = tmp_path / "restored" / "pacebot.db"
    restored.parent.mkdir()
    shutil.copyfile(backup, restored)
    import asyncio

    live = asyncio.run(counts(f"sqlite+aiosqlite:///{db}", tmp_path))
    again = asyncio.run(counts(f"sqlite+aiosqlite:///{restored}", tmp_path))
    assert again == live and again[1] == 300


async def test_a_backup_taken_while_the_service_writes_is_consistent(tmp_path):
    from storage.backup import backup_sqlite

    url = f"sqlite+aiosqlite:///{tmp_path}/live.db"
    config = config_from_dict({
        "storage": {"url": url, "data_dir": str(tmp_path / "data")},
        "org": {"directory": str(Path(__file__).parent / "fixtures/org_small.toml")},
        "scheduler": {"enabled": False},
    })
    runtime = await build_runtime(config)
    try:
        await add_customer(runtime, "rep.li", "华东建材")  # committed, partly still in the WAL
        out = tmp_path / "copy.db"
        backup_sqlite(url, out)
    finally:
        await runtime.stop()
    assert (await counts(f"sqlite+aiosqlite:///{out}", tmp_path))[1] == 1


def test_backup_refuses_to_overwrite_a_file(tmp_path, capsys):
    db = tmp_path / "live.db"
    config = write_config(tmp_path, db)
    assert main(["--config", config, "db", "upgrade"]) == 0
    existing = tmp_path / "taken.db"
    existing.write_bytes(b"keep me")
    assert main(["--config", config, "backup", "--out", str(existing)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err
    assert existing.read_bytes() == b"keep me"


def test_for_postgresql_backup_prints_the_pg_dump_command_without_the_password(tmp_path, capsys):
    path = tmp_path / "pg.toml"
    path.write_text('[storage]\nurl = "postgresql+asyncpg://pacebot:hunter2secret@db:5432/pacebot"\n', encoding="utf-8")
    assert main(["--config", str(path), "backup", "--out", "/backups/p.dump"]) == 2
    err = capsys.readouterr().err
    assert "pg_dump --format=custom" in err and "postgresql://pacebot@db:5432/pacebot" in err
    assert "hunter2secret" not in err
    assert pg_dump_command("postgresql+asyncpg://u@h/d", Path("x.dump")).startswith("pg_dump ")


def test_a_port_in_use_is_one_line_and_nothing_starts(tmp_path, capfd):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        config = write_config(tmp_path, tmp_path / "p.db", port=port)
        assert main(["--config", config, "serve"]) == 1
    err = capfd.readouterr().err.strip()
    assert err == f"pacebot: cannot listen on 127.0.0.1:{port}: Address already in use" or (
        err.startswith(f"pacebot: cannot listen on 127.0.0.1:{port}:") and "\n" not in err
    )
    assert not (tmp_path / "p.db").exists()  # bound before anything was built


def test_demo_on_a_seeded_database_is_one_line(tmp_path, capfd):
    config = write_config(tmp_path, tmp_path / "d.db")
    assert main(["--config", config, "demo"]) == 0
    capfd.readouterr()
    assert main(["--config", config, "demo"]) == 2
    captured = capfd.readouterr()
    assert captured.err.count("\n") == 1 and "demo not seeded: the database already has" in captured.err
    assert "Traceback" not in captured.err + captured.out


def test_commands_are_quiet_by_default_no_migration_chatter(tmp_path, capfd):
    config = write_config(tmp_path, tmp_path / "q.db")
    assert main(["--config", config, "db", "upgrade"]) == 0
    captured = capfd.readouterr()
    assert captured.out.strip() == "database schema is up to date"
    assert "alembic" not in captured.err and "Running upgrade" not in captured.err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_database_at_start_is_one_line_not_a_traceback(tmp_path, capfd):
    path = tmp_path / "down.toml"
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    closed = port.getsockname()[1]
    port.close()  # nothing listens there: connections are refused at once
    path.write_text(
        f'[storage]\nurl = "postgresql+asyncpg://pacebot@127.0.0.1:{closed}/pacebot"\n'
        f"[server]\nport = {free_port()}\n[scheduler]\nenabled = false\n",
        encoding="utf-8",
    )
    assert main(["--config", str(path), "serve"]) == 1
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("pacebot: ")] == [
        next(line for line in err.splitlines() if line.startswith("pacebot: could not start:"))
    ]
