"""Throughput of the touch-message parser: customer match + parse_touch on generated messages.

Run from the project root:  python bench/bench_parser.py [--messages 5000] [--customers 500]

Throughput is reported in CPU time of this process (``time.process_time``) as well as wall time,
so figures taken on a busy shared machine stay comparable. ``--root DIR`` measures the parser of
another checkout (for before/after figures) with the same generated messages.
"""

from __future__ import annotations

import argparse
import datetime
import random
import sys
import time
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if "--root" in sys.argv:
    _ROOT = Path(sys.argv[sys.argv.index("--root") + 1]).resolve()
sys.path.insert(0, str(_ROOT))

from domain.parsing.customers import CustomerName, match_customer  # noqa: E402
from domain.parsing.touch import parse_touch  # noqa: E402

HEADS = "华东 华西 华南 鑫达 恒通 金地 宏远 明远 东方 长江 黄河 蓝天 绿源 永兴 昌盛 万通 天成 瑞丰 汇金 广源".split()
TRADES = "建材 装饰 贸易 物流 置业 科技 机械 五金 电气 管业 石材 涂料 门窗 钢构 陶瓷".split()
SUFFIXES = ["有限公司", "", "集团", "股份有限公司", ""]
SURNAMES = "张王李赵刘陈杨黄周吴徐孙马朱胡郭何高林罗"
GIVEN = "伟芳强敏静丽军磊洋勇"

CHANNELS = [
    "电话",
    "打电话",
    "微信",
    "wx",
    "微信语音",
    "上门拜访",
    "拜访",
    "见面",
    "到店",
    "邮件",
    "email",
    "视频通话",
    "致电",
    "吃饭",
]
DURATIONS = [
    "20分钟",
    "二十分钟",
    "半小时",
    "一个半小时",
    "1.5小时",
    "40来分钟",
    "四十多分钟",
    "一刻钟",
    "10min",
    "两个小时",
    "",
]
TODAY_ACTIONS = [
    "聊了报价细节",
    "介绍了新品",
    "发了定制方案",
    "催款",
    "确认需求",
    "没接通",
    "发了报价单",
    "演示产品",
    "讨论合同条款",
    "",
]
DUES = [
    "明天",
    "后天",
    "大后天",
    "三天后",
    "两周后",
    "下周三",
    "下星期五",
    "周五前",
    "月底",
    "下月初",
    "12月5日",
    "十二月十日",
    "下个月5号",
    "2026-12-20",
    "1月8日",
    "下下周一",
    "15号前",
    "",
]
NEXT_ACTIONS = ["上门拜访", "发报价单", "再跟进", "签合同", "送样品", "电话回访", "再约", "提交标书"]
SEPARATORS = [" ", ",", "，", "。", "  ", ";"]


def make_customers(rng: random.Random, n: int) -> list[CustomerName]:
    customers = []
    for i in range(n):
        name = f"{rng.choice(HEADS)}{rng.choice(HEADS)[1]}{rng.choice(TRADES)}{rng.choice(SUFFIXES)}"
        contacts = (rng.choice(SURNAMES) + rng.choice(GIVEN), rng.choice(SURNAMES) + "总")
        customers.append(CustomerName(i + 1, name, contacts=contacts))
    return customers


def make_message(rng: random.Random, customers: list[CustomerName]) -> str:
    customer = rng.choice(customers)
    name = customer.name if rng.random() < 0.5 else customer.name[:4]
    if rng.random() < 0.1:  # a typo
        position = rng.randrange(len(name))
        name = name[:position] + rng.choice("才财材建达通") + name[position + 1 :]
    if rng.random() < 0.05:  # someone not in the list
        name = rng.choice(["远大重工", "星河湾物业", "新客户李四"])
    parts = [name]
    if rng.random() < 0.6:
        parts.append(rng.choice(customer.contacts))
    parts += [rng.choice(CHANNELS) + rng.choice(DURATIONS), rng.choice(TODAY_ACTIONS)]
    head = " ".join(p for p in parts if p)
    due = rng.choice(DUES)
    tail = f"{due}{rng.choice(NEXT_ACTIONS)}" if due or rng.random() < 0.5 else ""
    return head + (rng.choice(SEPARATORS) + tail if tail else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--root", default=str(_ROOT), help="checkout whose parser is measured")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    customers = make_customers(rng, args.customers)
    messages = [make_message(rng, customers) for _ in range(args.messages)]
    today = datetime.date(2026, 11, 28)

    match_customer(messages[0], customers)  # index build, not part of the steady state

    started = time.perf_counter()
    cpu_started = time.process_time()
    statuses: dict[str, int] = {}
    with_due = 0
    for text in messages:
        match = match_customer(text, customers)
        statuses[match.status] = statuses.get(match.status, 0) + 1
        parsed = parse_touch(text, today, customer_span=match.span)
        with_due += parsed.next_due is not None
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started

    started = time.perf_counter()
    cpu_started = time.process_time()
    for text in messages:
        parse_touch(text, today)
    parse_only = time.perf_counter() - started
    parse_only_cpu = time.process_time() - cpu_started

    print(f"{len(messages)} messages, {len(customers)} customers, parser from {_ROOT}")
    print(
        f"match_customer + parse_touch: {len(messages) / cpu:,.0f} messages/s of CPU time"
        f" ({len(messages) / elapsed:,.0f}/s wall, {elapsed * 1000:.0f} ms)"
    )
    print(
        f"parse_touch alone:            {len(messages) / parse_only_cpu:,.0f} messages/s of CPU time"
        f" ({len(messages) / parse_only:,.0f}/s wall)"
    )
    print(f"customer match: {statuses}; next due found: {with_due}")


if __name__ == "__main__":
    main()
