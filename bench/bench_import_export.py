"""Excel import and export of 10,000 and 100,000 customers on SQLite: time and peak RSS.

For each size a fresh database is migrated and given a small organisation (2 teams, 20 reps);
a customer spreadsheet is written with xlsxwriter (all the import columns, two custom columns,
real Excel dates). Then, each in a fresh process so that its peak RSS is its own:

* ``import``   — ``pacebot import FILE``: read, validate, create every customer and its first stay;
* ``reimport`` — the same file again: every row matched, nothing changes;
* ``export``   — ``pacebot export --out FILE``: every sheet, constant-memory writer.

    .venv/bin/python bench/bench_import_export.py [--sizes 10000 100000]

Targets (issue 8): 100,000 rows imported in ≤ 10 s and ≤ 400 MB; export in ≤ 10 s.
Prints figures; not a pass/fail test.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

STAGES = ["新线索", "初步沟通", "需求确认", "方案报价", "商务谈判"]


def write_org(directory: Path) -> Path:
    lines = []
    for team in ("east", "south"):
        lines += ["[[teams]]", f'key = "{team}"', f'name = "{team}"', f'manager = "mgr.{team}"', ""]
        lines += ["[[members]]", f'code = "mgr.{team}"', f'name = "主管{team}"', 'role = "manager"', f'team = "{team}"', ""]
        for i in range(10):
            lines += ["[[members]]", f'code = "rep.{team}{i}"', f'name = "销售{team}{i}"', 'role = "rep"',
                      f'team = "{team}"', ""]
    path = directory / "org.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_config(directory: Path) -> Path:
    org = write_org(directory)
    path = directory / "pacebot.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite+aiosqlite:///{directory}/bench.db"\ndata_dir = "{directory}/data"\n'
        f'[org]\ndirectory = "{org}"\n[scheduler]\nenabled = false\n',
        encoding="utf-8",
    )
    return path


def write_sheet(path: Path, size: int) -> None:
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = workbook.add_worksheet("客户")
    date = workbook.add_format({"num_format": "yyyy-mm-dd"})
    header = ["客户名称", "所属行业", "联系人", "最近跟进日期", "当前阶段", "关键障碍", "预计签约时间", "负责人", "别名",
              "区域", "年采购额"]
    for col, title in enumerate(header):
        sheet.write_string(0, col, title)
    base = dt.datetime(2026, 11, 24)
    for i in range(size):
        r = i + 1
        team = "east" if i % 2 else "south"
        sheet.write_string(r, 0, f"客户{i:07d}建材有限公司")
        sheet.write_string(r, 1, "建材经销")
        sheet.write_string(r, 2, "张总、李工")
        sheet.write_datetime(r, 3, base - dt.timedelta(days=i % 40), date)
        sheet.write_string(r, 4, STAGES[i % len(STAGES)])
        sheet.write_string(r, 5, "预算" if i % 3 == 0 else "")
        sheet.write_datetime(r, 6, base + dt.timedelta(days=30 + i % 90), date)
        sheet.write_string(r, 7, f"rep.{team}{i % 10}")
        sheet.write_string(r, 8, f"客户{i:07d}")
        sheet.write_string(r, 9, "华东" if team == "east" else "华南")
        sheet.write_number(r, 10, 10_000 * (i % 50))
    workbook.close()


def phase(args: argparse.Namespace) -> None:
    from bot.config import load_config
    from bot.import_cli import run_export, run_import

    config = load_config(args.config)
    started, cpu_started = time.perf_counter(), time.process_time()
    if args.phase == "export":
        code = asyncio.run(run_export(config, args.file))
    else:
        code = asyncio.run(run_import(config, args.file))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"code": code, "seconds": round(elapsed, 2), "cpu": round(cpu, 2), "peak_mb": round(peak_mb)}))


def run_phase(config: Path, name: str, file: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--config", str(config), "--file", str(file)],
        check=True, capture_output=True, text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    if result["code"] != 0:
        raise SystemExit(f"{name} failed: {out.stdout}\n{out.stderr}")
    return result


def prepare(config: Path) -> None:
    from bot.bootstrap import build_runtime
    from bot.config import load_config

    async def start() -> None:
        runtime = await build_runtime(load_config(str(config)))  # migrates and loads the org
        await runtime.stop()

    asyncio.run(start())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--phase", choices=["import", "export"])
    parser.add_argument("--config")
    parser.add_argument("--file")
    args = parser.parse_args()
    if args.phase:
        phase(args)
        return
    # CPU seconds are printed beside wall time: on a shared, loaded machine they are the steadier figure.
    print(f"{'customers':>10} {'phase':>9} {'seconds':>8} {'CPU s':>7} {'peak RSS MB':>12} {'file MB':>8}")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            config = write_config(directory)
            prepare(config)
            sheet = directory / "customers.xlsx"
            write_sheet(sheet, size)
            out = directory / "export.xlsx"
            for name, file in (("import", sheet), ("reimport", sheet), ("export", out)):
                result = run_phase(config, "export" if name == "export" else "import", file)
                size_mb = file.stat().st_size / 1024 / 1024
                print(f"{size:>10} {name:>9} {result['seconds']:>8.2f} {result['cpu']:>7.2f} {result['peak_mb']:>12.0f} {size_mb:>8.1f}",
                      flush=True)


if __name__ == "__main__":
    main()
