"""The deployment files: the compose file's processes run (without Docker), the Dockerfile's steps hold.

No Docker engine here, so the compose file is exercised by running the very commands its Pacebot
services declare, with their environment, on the local PostgreSQL: the migration once, then two
replicas on distinct ports. The Dockerfile is checked by building what its steps build: the files
it copies exist and make an installable package, the final stage is unprivileged, and its
HEALTHCHECK command succeeds against a running replica.
"""

from __future__ import annotations

import asyncio
import configparser
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from bot.config import load_config
from storage.models import InboxItem
from tests.fakes import wecom as fakes
from tests.pg import POSTGRES_URL, SKIP_REASON, scratch_database

# The compose test runs real processes that mostly wait: it goes with the ``pacebot jobs run``
# tests (tests/test_jobs_cli_live.py) on one xdist worker; the file checks run anywhere.
RUNS_PROCESSES = pytest.mark.xdist_group("processes-jobs")

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PACEBOT = Path(sys.executable).with_name("pacebot")


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def pacebot_services() -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in compose()["services"].items() if spec.get("command", [""])[0] == "pacebot"}


def resolve(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:?msg} and ${VAR:-default} interpolation."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2) or "", match.group(3) or ""
        if name in env and env[name]:
            return env[name]
        if op == ":-":
            return arg
        raise KeyError(f"compose needs {name}")

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:[?-])?([^}]*)\}", one, str(value))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


# --- the compose file, run without Docker -------------------------------------------------------------


def test_the_compose_file_runs_postgresql_two_replicas_and_a_proxy_in_order():
    services = compose()["services"]
    assert {"db", "migrate", "pacebot-1", "pacebot-2", "proxy"} <= set(services)
    replicas = [n for n, s in pacebot_services().items() if s["command"][1] == "serve"]
    assert replicas == ["pacebot-1", "pacebot-2"]
    assert services["migrate"]["command"] == ["pacebot", "db", "upgrade"]
    assert services["pacebot-1"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["pacebot-2"]["depends_on"]["pacebot-1"]["condition"] == "service_healthy"
    # Every replica shares one media volume and one configuration.
    assert all("media:/var/lib/pacebot/data" in services[r]["volumes"] for r in replicas)
    caddy = (DEPLOY / "Caddyfile").read_text(encoding="utf-8")
    assert all(f"{r}:8080" in caddy for r in replicas) and "/wecom/callback" in caddy


def test_the_deploy_configuration_is_valid_with_the_compose_environment():
    env = {"PACEBOT_DB_PASSWORD": "pw", "WECOM_CORP_ID": fakes.CORP_ID, "WECOM_AGENT_ID": str(fakes.AGENT_ID),
           "WECOM_SECRET": fakes.SECRET, "WECOM_TOKEN": fakes.TOKEN, "WECOM_AES_KEY": fakes.AES_KEY,
           "PACEBOT_FEEDBACK_SECRET": "f" * 16, "PACEBOT_DOMAIN": "pacebot.example.com"}
    service_env = {k: resolve(v, env) for k, v in pacebot_services()["pacebot-1"]["environment"].items()}
    config = load_config(DEPLOY / "pacebot.toml", environ=service_env)
    assert config.storage.url == "postgresql+asyncpg://pw@db:5432/pacebot".replace("pw@", "pacebot:pw@")
    assert config.wecom.enabled and config.wecom.agent_id == fakes.AGENT_ID
    assert config.log.format == "json"


@RUNS_PROCESSES
@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_REASON)
async def test_the_compose_replicas_serve_together_on_postgresql(tmp_path):
    fake = fakes.FakeWeCom()
    await fake.start()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        async with scratch_database() as url:
            env = {
                **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")},
                "PACEBOT_DB_PASSWORD": "unused", "WECOM_CORP_ID": fakes.CORP_ID, "WECOM_AGENT_ID": str(fakes.AGENT_ID),
                "WECOM_SECRET": fakes.SECRET, "WECOM_TOKEN": fakes.TOKEN, "WECOM_AES_KEY": fakes.AES_KEY,
                "WECOM_API_BASE": fake.base_url, "PACEBOT_FEEDBACK_SECRET": "f" * 16,
            }
            services = pacebot_services()
            ports: dict[str, int] = {}

            def start(name: str) -> subprocess.Popen[bytes]:
                spec = services[name]
                service_env = {k: resolve(v, env) for k, v in spec["environment"].items()}
                # Where the containers have their own network and volume, the processes here get a
                # scratch database, a shared data directory and distinct loopback ports.
                service_env.update(PACEBOT_CONFIG=str(DEPLOY / "pacebot.toml"), PACEBOT_DATABASE_URL=url,
                                   PACEBOT_DATA_DIR=str(tmp_path / "data"))
                command = [str(PACEBOT), *spec["command"][1:]]
                if "--port" in command:
                    ports[name] = free_port()
                    command[command.index("--port") + 1] = str(ports[name])
                    command[command.index("--host") + 1] = "127.0.0.1"
                log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
                return subprocess.Popen(command, env={**env, **service_env}, stdout=log, stderr=subprocess.STDOUT,
                                        cwd=tmp_path)

            migrate = start("migrate")
            assert await asyncio.to_thread(migrate.wait, 120) == 0, (tmp_path / "migrate.log").read_text()
            async with aiohttp.ClientSession() as http:
                for name in ("pacebot-1", "pacebot-2"):  # pacebot-2 waits for pacebot-1 to be healthy
                    processes.append(start(name))
                    await until_healthy(http, ports[name], processes[-1], tmp_path / f"{name}.log")
                for name, port in ports.items():
                    health = await (await http.get(f"http://127.0.0.1:{port}/healthz")).json()
                    assert health["database"] == "ok" and health["workers"]["inbox"] == "running", (name, health)
                    assert (await http.get(f"http://127.0.0.1:{port}/readyz")).status == 200
                    assert (await http.get(f"http://127.0.0.1:{port}/console")).status == 200
                    params, body = fakes.encrypted_callback(
                        fakes.default_crypto(), fakes.text_xml("LiMing", "你好", f"m-{name}"))
                    assert (await http.post(f"http://127.0.0.1:{port}/wecom/callback", params=params,
                                            data=body)).status == 200
                # The same callback delivered to both replicas is stored once.
                params, body = fakes.encrypted_callback(fakes.default_crypto(), fakes.text_xml("LiMing", "x", "m-both"))
                statuses = await asyncio.gather(*(
                    http.post(f"http://127.0.0.1:{port}/wecom/callback", params=params, data=body)
                    for port in ports.values()
                ))
                assert [r.status for r in statuses] == [200, 200]
                metrics = await (await http.get(f"http://127.0.0.1:{ports['pacebot-2']}/metrics")).text()
                assert "pacebot_database_up 1.0" in metrics
                # The image's HEALTHCHECK command, as written, against a replica.
                health_cmd = json.loads(next(rest for kw, rest in dockerfile_instructions() if kw == "HEALTHCHECK")
                                        .split("CMD", 1)[1])
                check = await asyncio.to_thread(
                    subprocess.run, [sys.executable, *health_cmd[1:]], timeout=30,
                    env={**os.environ, "PACEBOT_PORT": str(ports["pacebot-1"])},
                )
                assert check.returncode == 0
            engine = create_async_engine(url)
            try:
                async with engine.connect() as conn:
                    ids = list(await conn.scalars(select(InboxItem.platform_msg_id).where(InboxItem.platform == "wecom")))
                    assert sorted(ids) == ["m-both", "m-pacebot-1", "m-pacebot-2"]
                    assert await conn.scalar(select(func.count()).select_from(InboxItem)) >= 3
            finally:
                await engine.dispose()
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                assert await asyncio.to_thread(process.wait, 60) == 0
            logs = "".join((tmp_path / f"{n}.log").read_text() for n in ("pacebot-1", "pacebot-2"))
            lines = [line for line in logs.splitlines() if line.strip()]
            assert lines and all(json.loads(line) for line in lines)  # [log] format = "json" in deploy/
            assert fakes.SECRET not in logs and fakes.AES_KEY not in logs
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        await fake.close()


async def until_healthy(http: aiohttp.ClientSession, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(240):
        if process.poll() is not None:
            raise AssertionError(f"replica exited with {process.returncode}:\n{log.read_text()}")
        try:
            if (await http.get(f"http://127.0.0.1:{port}/healthz")).status == 200:
                return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.5)
    raise AssertionError(f"replica on {port} never became healthy:\n{log.read_text()}")


# --- the Dockerfile ------------------------------------------------------------------------------------------


def test_the_dockerfile_runs_unprivileged_with_a_healthcheck_on_a_slim_base():
    steps = dockerfile_instructions()
    bases = [rest.split()[0] for kw, rest in steps if kw == "FROM"]
    assert bases and all(b.startswith("python:3.11-slim") for b in bases)
    final = steps[max(i for i, (kw, _) in enumerate(steps) if kw == "FROM"):]
    users = [rest for kw, rest in final if kw == "USER"]
    assert users and users[-1] not in ("root", "0")
    health = [rest for kw, rest in final if kw == "HEALTHCHECK"]
    assert len(health) == 1 and "/healthz" in health[0]
    command = json.loads(next(rest for kw, rest in final if kw == "CMD"))
    assert command[:2] == ["pacebot", "serve"]
    # No compilers or package caches in the final stage: it only copies the built virtualenv.
    assert not any(kw == "RUN" and "pip install" in rest for kw, rest in final)


def test_the_dockerfile_copies_existing_files_that_build_an_installable_package(tmp_path):
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()]
    context = tmp_path / "context"
    for keyword, rest in dockerfile_instructions():
        if keyword != "COPY" or rest.startswith("--from"):
            continue
        *sources, destination = shlex.split(rest)
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file"
            assert source not in ignored, f"COPY {source} is excluded by .dockerignore"
            target = context / source
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, target)
        assert destination
    # The RUN step installs /src: build the same package from exactly the copied files.
    run = [rest for kw, rest in dockerfile_instructions() if kw == "RUN" and "pip install" in rest]
    assert run and run[0].endswith("pip install /src")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
         str(context)],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("pacebot-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("bot/cli.py", "storage/alembic.ini", "storage/migrations/env.py", "bot/observability.py"):
        assert needed in names, needed
    assert any(n.startswith("storage/migrations/versions/0001") for n in names)
    assert any(n.startswith("bot/platforms/console/static/") for n in names)
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "pacebot = bot.cli:main" in entry


def test_the_systemd_unit_runs_migrations_then_serves_as_the_pacebot_user():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "pacebot.service")
    service = unit["Service"]
    assert service["User"] == "pacebot"
    assert service["ExecStartPre"].endswith("pacebot db upgrade")
    assert service["ExecStart"].endswith("pacebot serve")
    assert service["NoNewPrivileges"] == "true"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
