"""死信: texts of /死信 and of the admins' failure notices."""

from __future__ import annotations

SUMMARY = "死信:未能处理或送达的消息,可重发"
USAGE = "/死信 列出(最新在前)  ·  /死信 重发 序号"

TITLE = "死信({count} 条,最新在前)"
EMPTY = "没有死信:所有消息都已处理、送达。"
LINE_INBOX = "{n}. 收到 {party} 的消息未能处理({platform},{at}){text}\n   原因:{reason}"
LINE_OUTBOX = "{n}. 发给 {party} 的消息未能送达({platform},{at}){text}\n   原因:{reason}"
QUOTE = ":「{text}」"
MORE = "…… 另有 {count} 条未列出。"
FOOTER = "发送「/死信 重发 序号」重新发送或重新处理。"

REDRIVEN_OUTBOX = "已重发第 {n} 条:发给 {party} 的消息已重新排队发送。"
REDRIVEN_INBOX = "已重新处理第 {n} 条:收到 {party} 的消息已重新排队处理。"
NUMBER_UNKNOWN = "没有第 {n} 条死信。发送 /死信 查看当前列表({count} 条)。"
NUMBER_BAD = "请给出死信序号,例如:/死信 重发 1"

# The notice one admin receives per sweep, listing what newly failed (never one per failure).
NOTICE_HEADER = "【死信提醒】"
NOTICE_TITLE = NOTICE_HEADER + "新增 {count} 条未能处理或送达的消息:"
# With the running total, two notices never read the same: WeCom's duplicate check would otherwise
# deliver only the first of two identical notices sent to an admin within its window.
NOTICE_TITLE_TOTAL = NOTICE_HEADER + "新增 {count} 条未能处理或送达的消息(死信共 {total} 条):"
NOTICE_FOOTER = "发送 /死信 查看全部及原因,「/死信 重发 序号」重新发送。"
