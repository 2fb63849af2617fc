"""Rule-based reading of a rep's Chinese touch messages: dates, customers, channel, next action.

Everything here is pure: no I/O and no clock; callers pass today's date explicitly.
"""

from domain.parsing.customers import CustomerIndex, CustomerMatch, CustomerName, match_customer
from domain.parsing.dates import DueDate, find_all_due_dates, find_due_date
from domain.parsing.touch import Channel, ParsedTouch, parse_next_action, parse_touch

__all__ = [
    "Channel",
    "CustomerIndex",
    "CustomerMatch",
    "CustomerName",
    "DueDate",
    "ParsedTouch",
    "find_all_due_dates",
    "find_due_date",
    "match_customer",
    "parse_next_action",
    "parse_touch",
]
