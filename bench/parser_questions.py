"""How many follow-up questions the table of reps' messages (tests/rep_messages.py) would cost.

Run from the project root:  python bench/parser_questions.py [--root DIR] [--verbose]

Each message is read as the touch handler reads it (customer match, then the parser); the
questions it would still need are counted: a customer card, what was done, the next action, its
date, which day of a vague range. With ``--root`` the parser of another checkout is measured
(for a before/after figure): a checkout without ``domain.parsing.questions`` is counted with the
rules the touch handler had before it (no chit-chat, no vague dates).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections import Counter
from pathlib import Path

_HERE = Path(__file__).resolve().parent.parent
_ROOT = _HERE
if "--root" in sys.argv:
    _ROOT = Path(sys.argv[sys.argv.index("--root") + 1]).resolve()
sys.path.insert(0, str(_ROOT))

from domain.parsing.customers import CustomerName, match_customer  # noqa: E402
from domain.parsing.touch import parse_touch  # noqa: E402

# The table is this checkout's, whichever parser reads it.
_SPEC = importlib.util.spec_from_file_location("rep_messages", _HERE / "tests" / "rep_messages.py")
assert _SPEC is not None and _SPEC.loader is not None
table = importlib.util.module_from_spec(_SPEC)
sys.modules["rep_messages"] = table
_SPEC.loader.exec_module(table)

try:
    from domain.parsing.chitchat import is_chit_chat
    from domain.parsing.questions import questions_for
except ImportError:  # a checkout from before questions were planned in the domain
    is_chit_chat = None
    questions_for = None


def legacy_questions(match, parsed, today) -> list[str]:  # type: ignore[no-untyped-def]
    """The questions the touch handler asked before: its _continue, field by field."""
    asks = []
    if match.status != "matched":
        asks.append("customer")
    if not parsed.summary:
        asks.append("summary")
    due = parsed.next_due
    if due is not None and due < today:
        asks.append("past_date")
    elif not parsed.next_action and due is None:
        asks.append("next")
    elif due is None:
        asks.append("next_date")
    elif not parsed.next_action:
        asks.append("next_action")
    return asks


def messages() -> list[tuple[str, str, object]]:
    rows: list[tuple[str, str, object]] = []
    rows += [("stall", c.text, table.THU) for c in table.STALLS]
    rows += [("same_day", c.text, c.today) for c in table.SAME_DAY]
    rows += [("ownership", c.text, c.today) for c in table.OWNERSHIP]
    rows += [("workdays", c.text, c.today) for c in table.WORKDAYS]
    rows += [("actions", c.text, c.today) for c in table.ACTIONS]
    rows += [("summary", c.text, table.THU) for c in table.SUMMARIES]
    rows += [("chit_chat", t, table.THU) for t in table.CHIT_CHAT + table.NOT_CHIT_CHAT]
    rows += [("slips", c.text, table.THU) for c in table.SLIPS]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", default=str(_ROOT), help="checkout whose parser is measured")
    parser.add_argument("--verbose", action="store_true", help="list each message's questions")
    args = parser.parse_args()
    names = [CustomerName(cid, name, contacts=contacts) for cid, name, contacts in table.CUSTOMERS]
    per_class: Counter[str] = Counter()
    per_field: Counter[str] = Counter()
    total = 0
    rows = messages()
    for kind, text, today in rows:
        match = match_customer(text, names)
        parsed = parse_touch(text, today, match.span if match.status == "matched" else None)
        if questions_for is not None:
            asks = [str(a) for a in questions_for(match, parsed, today, chit_chat=is_chit_chat(text))]
        else:
            asks = legacy_questions(match, parsed, today)
        per_class[kind] += len(asks)
        per_field.update(asks)
        total += len(asks)
        if args.verbose and asks:
            print(f"  {text}  →  {', '.join(asks)}")
    print(f"{len(rows)} messages, parser from {_ROOT}")
    print(f"follow-up questions: {total}")
    print("by class: " + ", ".join(f"{k} {per_class[k]}" for k in dict.fromkeys(k for k, _t, _d in rows)))
    print("by field: " + ", ".join(f"{k} {v}" for k, v in per_field.most_common()))


if __name__ == "__main__":
    main()
