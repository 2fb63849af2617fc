"""The ``pacebot`` command line: serve, db upgrade, demo, org load, jobs."""

from __future__ import annotations

import gc

# Every command imports about a thousand modules first; the cyclic garbage collector would run
# dozens of times meanwhile and find nothing to free (a fifth of the start-up). It is off while
# they load and on again below.
_gc_was_enabled = gc.isenabled()
gc.disable()

import argparse  # noqa: E402
import asyncio  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from bot.app import create_app  # noqa: E402
from bot.bootstrap import build_runtime  # noqa: E402
from bot.config import Config, ConfigError, load_config  # noqa: E402
from bot.demo_cli import run_demo  # noqa: E402
from bot.import_cli import run_export, run_import  # noqa: E402
from bot.jobs_cli import DEFAULT_TIMEOUT_SECONDS, run_cli  # noqa: E402
from bot.observability import configure_logging  # noqa: E402
from bot.platforms.dingtalk.directory import run_sync as run_dingtalk_sync  # noqa: E402
from bot.platforms.wecom.directory import run_sync  # noqa: E402
from storage import audit  # noqa: E402
from storage import deadletters as dead_store  # noqa: E402
from storage import members as member_store  # noqa: E402
from storage.backup import BackupError, backup_sqlite, pg_dump_command  # noqa: E402
from storage.db import is_sqlite, transaction  # noqa: E402
from storage.metrics import compute_figures  # noqa: E402
from storage.org import DirectoryError, load_directory_file  # noqa: E402

if _gc_was_enabled:
    gc.enable()

log = logging.getLogger("pacebot")

DEFAULT_CONFIG = "pacebot.toml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pacebot", description="Pacebot: sales process control in chat.")
    parser.add_argument(
        "--config",
        default=os.environ.get("PACEBOT_CONFIG"),
        help=f"TOML configuration file (default: $PACEBOT_CONFIG, else ./{DEFAULT_CONFIG} if present, else built-in defaults)",
    )
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING … (default: [log] level)")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the bot (HTTP callbacks, console, workers)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)

    db = commands.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade"])

    demo = commands.add_parser("demo", help="seed a demo organisation (teams, reps, customers, touch history)")
    demo.add_argument("--if-empty", action="store_true", help="do nothing when members already exist")
    demo.add_argument("--seed", type=int, default=7)

    org = commands.add_parser("org", help="org directory")
    org.add_argument("action", choices=["load"])
    org.add_argument("file")

    sync = commands.add_parser("sync", help="import the org directory from a chat platform")
    sync.add_argument("platform", choices=["wecom", "dingtalk"])

    # --- backup (storage/backup.py) ---
    backup = commands.add_parser("backup", help="copy the database to a file while the service runs (SQLite)")
    backup.add_argument("--out", required=True, help="the backup file to write (must not exist)")
    # --- end backup ---

    # --- jobs (bot/scheduler.py) ---
    jobs = commands.add_parser("jobs", help="scheduled jobs: list them, or run one as of a time")
    job_actions = jobs.add_subparsers(dest="jobs_action", required=True)
    job_actions.add_parser("list", help="the scheduled jobs, their schedules and last runs")
    job_run = job_actions.add_parser("run", help="run a job now or as of a time (e.g. a missed digest) and deliver")
    job_run.add_argument("name")
    job_run.add_argument("--now", help="ISO 8601 instant with offset, e.g. 2026-12-01T09:00:00+08:00")
    job_run.add_argument("--force", action="store_true", help="run the period again although it already ran")
    job_run.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS,
                         help="seconds to wait for the outcome (default %(default)g); then exit 3: still queued, not failed")
    # --- end jobs ---

    # --- metrics (storage/metrics.py, SPEC §8.2) ---
    metrics = commands.add_parser("metrics", help="process metrics per team and rep (动作健康度)")
    metrics.add_argument("--team", help="a team key (default: every team)")
    metrics.add_argument("--as-of", dest="as_of", help="ISO 8601 instant with offset (default: now)")
    metrics.add_argument("--json", action="store_true", help="print JSON instead of text")
    # --- end metrics ---

    # --- import / export (bot/import_cli.py) ---
    imp = commands.add_parser("import", help="import customers from an Excel file (.xlsx/.xls/.csv); all or nothing")
    imp.add_argument("file")
    imp.add_argument("--dry-run", action="store_true", help="validate and count, change nothing")
    imp.add_argument("--owner", help="member code owning new customers when the file has no 负责人 column")
    exp = commands.add_parser("export", help="export customers, touches, alerts, requests and the audit log")
    exp.add_argument("--out", required=True, help="the .xlsx file to write")
    # --- end import / export ---
    # --- outbox: dead letters sent again ---
    outbox = commands.add_parser("outbox", help="outgoing messages: send dead letters again")
    outbox_actions = outbox.add_subparsers(dest="outbox_action", required=True)
    redrive = outbox_actions.add_parser("redrive", help="put dead letters back in the queue, attempts reset (/死信 lists them)")
    which = redrive.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", type=int, help="the outbox item id of one dead letter")
    which.add_argument("--all", action="store_true", help="every dead outbox message")
    # --- end outbox ---

    args = parser.parse_args(argv)
    try:
        config = _load(args.config)
    except ConfigError as exc:
        print(f"pacebot: invalid configuration: {exc}", file=sys.stderr)
        return 2
    configure_logging(config, level=args.log_level)
    try:
        if args.command == "backup":
            return _backup(config, Path(args.out))
        if args.command == "serve":
            return _serve(config, args.host, args.port)
        if args.command == "metrics":
            return asyncio.run(_metrics(config, args.team, args.as_of, args.json))
        if args.command == "jobs":
            return asyncio.run(run_cli(config, args.jobs_action, getattr(args, "name", None), getattr(args, "now", None),
                                       force=getattr(args, "force", False),
                                       timeout=getattr(args, "timeout", DEFAULT_TIMEOUT_SECONDS)))
        if args.command == "import":
            return asyncio.run(run_import(config, args.file, dry_run=args.dry_run, owner=args.owner))
        if args.command == "export":
            return asyncio.run(run_export(config, args.out))
        if args.command == "outbox":
            return asyncio.run(_outbox_redrive(config, args.id, args.all))
        return asyncio.run(_run(args, config))
    except ConfigError as exc:
        print(f"pacebot: invalid configuration: {exc}", file=sys.stderr)
        return 2


def _load(path: str | None) -> Config:
    if path is None and Path(DEFAULT_CONFIG).is_file():
        path = DEFAULT_CONFIG
    return load_config(path)


def _serve(config: Config, host: str | None, port: int | None) -> int:
    from aiohttp import web

    host = host or config.server.host
    port = port or config.server.port
    # Bind first: a port in use is one line on stderr, before any worker or timer has started.
    try:
        sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except OSError as exc:
        print(f"pacebot: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    app = create_app(config)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    if config.console.enabled:
        if config.log.format == "json":  # every line of output is JSON then
            log.info("console at http://%s:%s/console", shown, port)
        else:
            print(f"Pacebot console: http://{shown}:{port}/console", flush=True)
    log.info("listening on %s:%s", host, port)
    try:
        web.run_app(app, sock=sock, print=None, access_log=None)
    except ConfigError:
        raise
    except Exception as exc:  # start-up failures (database unreachable …): one line, not a traceback
        log.debug("start-up failed", exc_info=True)
        print(f"pacebot: could not start: {type(exc).__name__}: {_first_line(exc)}", file=sys.stderr)
        return 1
    return 0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""


def _backup(config: Config, out: Path) -> int:
    """``pacebot backup --out FILE``: SQLite online backup; for PostgreSQL, the pg_dump command."""
    if not is_sqlite(config.storage.url):
        print("pacebot: PostgreSQL is backed up with pg_dump (see docs/deploy.md), e.g.:\n  "
              + pg_dump_command(config.storage.url, out), file=sys.stderr)
        return 2
    try:
        size = backup_sqlite(config.storage.url, out)
    except BackupError as exc:
        print(f"pacebot: backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"database backed up to {out} ({size} bytes); media files are under {config.data_path / 'media'}")
    return 0


async def _run(args: argparse.Namespace, config: Config) -> int:
    runtime = await build_runtime(config)
    try:
        if args.command == "db":
            print("database schema is up to date")
        elif args.command == "demo":
            # Seeding on top of an organisation would clash with it: only an empty database is seeded.
            summary = await run_demo(runtime, seed=args.seed, if_empty=True)
            if summary.startswith("demo not seeded") and not args.if_empty:
                print(f"pacebot: {summary} (the demo seeds an empty database; --if-empty makes this a no-op)",
                      file=sys.stderr)
                return 2
            print(summary)
        elif args.command == "org":
            try:
                async with runtime.sessions() as session, session.begin():
                    await load_directory_file(session, args.file, now=runtime.clock.now())
            except DirectoryError as exc:
                print(f"pacebot: {exc}", file=sys.stderr)
                return 2
            print(f"org directory loaded from {args.file}")
        elif args.command == "sync" and args.platform == "dingtalk":
            print(await run_dingtalk_sync(runtime))
        elif args.command == "sync":
            print(await run_sync(runtime))
    finally:
        await runtime.stop()
    return 0


# --- metrics ----------------------------------------------------------------------------------------


async def _metrics(config: Config, team_key: str | None, as_of_text: str | None, as_json: bool) -> int:
    as_of = None
    if as_of_text:
        try:
            as_of = dt.datetime.fromisoformat(as_of_text)
        except ValueError:
            print(f"pacebot: --as-of {as_of_text!r} is not an ISO 8601 date-time", file=sys.stderr)
            return 2
        if as_of.tzinfo is None:
            print("pacebot: --as-of needs a time zone offset, e.g. 2026-12-01T09:00:00+08:00", file=sys.stderr)
            return 2
    runtime = await build_runtime(config)
    try:
        async with runtime.sessions() as session:
            teams = await member_store.teams_by_key(session)
            if team_key is not None and team_key not in teams:
                print(f"pacebot: no team {team_key!r}; teams: {', '.join(sorted(teams)) or '-'}", file=sys.stderr)
                return 2
            figures = await compute_figures(
                session, as_of=as_of or runtime.clock.now(), tz=config.tz,
                team_ids=None if team_key is None else [teams[team_key].id],
            )
    finally:
        await runtime.stop()
    if as_json:
        print(json.dumps(figures.to_json(), ensure_ascii=False, indent=2))
        return 0
    print(f"as of {figures.as_of.astimezone(config.tz).isoformat()}")
    shown = [*figures.teams, *([figures.org] if team_key is None else [])]
    for team in shown:
        depth, crossing, resolution = team.touch_depth, team.stage_crossing, team.obstacle_resolution
        due = sum(d.due for d in team.action_completion)
        done = sum(d.done_on_time for d in team.action_completion)
        print(f"\n{team.key} {team.name}")
        print(f"  touch depth {depth.value if depth.value is not None else '-'} over {depth.customers} customers"
              f" ({len(depth.below_2)} below 2)")
        print(f"  stage crossing {crossing.value if crossing.value is not None else '-'}"
              f" ({crossing.crossed}/{crossing.cohort})")
        print(f"  obstacle resolution {resolution.value if resolution.value is not None else '-'} h"
              f" over {resolution.resolved} requests; {len(resolution.open_over_48h)} open over 48 h")
        print(f"  action completion, 14 days: {done}/{due} on time")
        for item in team.overdue_top5:
            print(f"  overdue {item.days} d: {item.customer} ({item.owner})")
        for rep in team.reps:
            print(f"    {rep.code:<16} depth {rep.touch_depth.value if rep.touch_depth.value is not None else '-'}"
                  f"  crossing {rep.stage_crossing.crossed}/{rep.stage_crossing.cohort}"
                  f"  resolution {rep.obstacle_resolution.value if rep.obstacle_resolution.value is not None else '-'} h")
    return 0


# --- end metrics ------------------------------------------------------------------------------------


if __name__ == "__main__":
    sys.exit(main())


# --- outbox redrive -----------------------------------------------------------------------------------


async def _outbox_redrive(config: Config, item_id: int | None, every: bool) -> int:
    """``pacebot outbox redrive --id N | --all``: dead outbox messages back to pending, attempts reset,
    each recorded in the audit log; a running service sends them at its next poll."""

    runtime = await build_runtime(config)
    try:
        async with transaction(runtime.sessions) as session:
            now = runtime.clock.now()
            ids = await dead_store.dead_outbox_ids(session) if every else [item_id or 0]
            letters = [await dead_store.dead_outbox(session, i) for i in ids]
            if not every and letters[0] is None:
                print(f"pacebot: outbox item {item_id} is not a dead letter (nothing changed)", file=sys.stderr)
                return 2
            for letter in letters:
                if letter is not None and await dead_store.redrive(session, letter, now):
                    await audit.record(
                        session, member_id=None, action="dead_letter.redrive", subject=f"outbox:{letter.id}",
                        before={"reason": letter.reason[:500]}, after={"status": "pending", "by": "cli"}, now=now,
                    )
        print(f"{len(letters)} dead letter(s) queued again")
    finally:
        await runtime.stop()
    return 0
