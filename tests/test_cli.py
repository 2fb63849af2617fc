"""The command line: db upgrade, demo seeding, org loading."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import func, select

from bot.cli import main
from domain.enums import Role
from storage.db import create_engine, session_factory
from storage.models import Customer, Member, Team, Touch


def write_config(tmp_path) -> str:
    path = tmp_path / "pacebot.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path}/cli.db"\ndata_dir = "{tmp_path}/data"\n', encoding="utf-8"
    )
    return str(path)


def query(tmp_path, statement):
    async def run():
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/cli.db")
        async with session_factory(engine)() as session:
            result = (await session.execute(statement)).all()
        await engine.dispose()
        return result

    return asyncio.run(run())


def test_demo_seeds_a_realistic_organisation_once(tmp_path, capsys):
    config = write_config(tmp_path)
    assert main(["--config", config, "db", "upgrade"]) == 0
    assert main(["--config", config, "demo", "--if-empty"]) == 0
    assert "demo organisation seeded: 3 teams, 20 reps, 300 customers" in capsys.readouterr().out
    assert main(["--config", config, "demo", "--if-empty"]) == 0
    assert "already has" in capsys.readouterr().out

    [(teams,)] = query(tmp_path, select(func.count()).select_from(Team))
    roles = dict(query(tmp_path, select(Member.role, func.count()).group_by(Member.role)))
    [(customers,)] = query(tmp_path, select(func.count()).select_from(Customer))
    stages = query(tmp_path, select(Customer.stage_id, func.count()).group_by(Customer.stage_id))
    [(touches, oldest, newest)] = query(
        tmp_path, select(func.count(), func.min(Touch.occurred_at), func.max(Touch.occurred_at))
    )
    never_or_cold = query(tmp_path, select(func.count()).select_from(Customer).where(
        (Customer.last_touch_at.is_(None)) | (Customer.last_touch_at < dt.datetime.now(dt.UTC) - dt.timedelta(hours=72))
    ))[0][0]
    assert teams == 3 and customers == 300
    assert roles[Role.REP] == 20 and roles[Role.MANAGER] == 3 and roles[Role.ADMIN] == 1
    assert len(stages) == 7  # every stage of the default pipeline has customers
    assert touches > 500
    assert (newest - oldest) > dt.timedelta(days=25)
    assert 20 < never_or_cold < 300  # realistic gaps: some customers gone cold, most not


def test_org_load_reports_a_bad_directory_precisely(tmp_path, capsys):
    config = write_config(tmp_path)
    org = tmp_path / "org.toml"
    org.write_text('[[members]]\ncode = "a"\nname = "甲"\nrole = "boss"\n', encoding="utf-8")
    assert main(["--config", config, "org", "load", str(org)]) == 2
    assert "members #1 (a): unknown role 'boss'" in capsys.readouterr().err
