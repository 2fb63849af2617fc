"""The ``pacebot`` command line: serve, db upgrade, demo, org load, jobs."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from bot.app import create_app
from bot.bootstrap import build_runtime
from bot.config import Config, ConfigError, load_config
from bot.demo_cli import run_demo
from bot.import_cli import run_export, run_import
from bot.jobs_cli import run_cli
from bot.platforms.wecom.directory import run_sync
from storage.org import DirectoryError, load_directory_file

log = logging.getLogger("pacebot")

DEFAULT_CONFIG = "pacebot.toml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pacebot", description="Pacebot: sales process control in chat.")
    parser.add_argument(
        "--config",
        default=os.environ.get("PACEBOT_CONFIG"),
        help=f"TOML configuration file (default: $PACEBOT_CONFIG, else ./{DEFAULT_CONFIG} if present, else built-in defaults)",
    )
    parser.add_argument("--log-level", default="INFO")
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
    sync.add_argument("platform", choices=["wecom"])

    # --- jobs (bot/scheduler.py) ---
    jobs = commands.add_parser("jobs", help="scheduled jobs: list them, or run one as of a time")
    job_actions = jobs.add_subparsers(dest="jobs_action", required=True)
    job_actions.add_parser("list", help="the scheduled jobs, their schedules and last runs")
    job_run = job_actions.add_parser("run", help="run a job now or as of a time (e.g. a missed digest) and deliver")
    job_run.add_argument("name")
    job_run.add_argument("--now", help="ISO 8601 instant with offset, e.g. 2026-12-01T09:00:00+08:00")
    # --- end jobs ---

    # --- import / export (bot/import_cli.py) ---
    imp = commands.add_parser("import", help="import customers from an Excel file (.xlsx/.xls/.csv); all or nothing")
    imp.add_argument("file")
    imp.add_argument("--dry-run", action="store_true", help="validate and count, change nothing")
    imp.add_argument("--owner", help="member code owning new customers when the file has no 负责人 column")
    exp = commands.add_parser("export", help="export customers, touches, alerts, requests and the audit log")
    exp.add_argument("--out", required=True, help="the .xlsx file to write")
    # --- end import / export ---

    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = _load(args.config)
    except ConfigError as exc:
        print(f"pacebot: invalid configuration: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "serve":
            return _serve(config, args.host, args.port)
        if args.command == "jobs":
            return asyncio.run(run_cli(config, args.jobs_action, getattr(args, "name", None), getattr(args, "now", None)))
        if args.command == "import":
            return asyncio.run(run_import(config, args.file, dry_run=args.dry_run, owner=args.owner))
        if args.command == "export":
            return asyncio.run(run_export(config, args.out))
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
    app = create_app(config)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    if config.console.enabled:
        print(f"Pacebot console: http://{shown}:{port}/console", flush=True)
    web.run_app(app, host=host, port=port, print=None)
    return 0


async def _run(args: argparse.Namespace, config: Config) -> int:
    runtime = await build_runtime(config)
    try:
        if args.command == "db":
            print("database schema is up to date")
        elif args.command == "demo":
            print(await run_demo(runtime, seed=args.seed, if_empty=args.if_empty))
        elif args.command == "org":
            try:
                async with runtime.sessions() as session, session.begin():
                    await load_directory_file(session, args.file, now=runtime.clock.now())
            except DirectoryError as exc:
                print(f"pacebot: {exc}", file=sys.stderr)
                return 2
            print(f"org directory loaded from {args.file}")
        elif args.command == "sync":
            print(await run_sync(runtime))
    finally:
        await runtime.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
