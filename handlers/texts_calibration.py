"""What the Friday calibration report (动作校准会) and /校准 say. Simplified Chinese, one place."""

from __future__ import annotations

REPORT_TITLE = "{team} 动作校准会"
REPORT_HEADER = "## {team} 动作校准会 {start}—{end}"
ORG_NAME = "全公司"

IGNORED_HEADER = "**本周被忽略的预警**({count} 条)"
IGNORED_LINE = "- {member}:{customer} {rule},已搁置 {hours} 小时"
RULE_NAMES = {
    "cold": "标黄(超72小时未跟进)",
    "quote_overdue": "标红(报价停留过久)",
    "milestone_overdue": "节点交付超期",
    "obstacle_slow": "跨部门支持超时",
    "low_activity": "本周跟进客户偏少",
}

WAITING_HEADER = "**等待其他部门支持的障碍**({count} 个)"
WAITING_LINE = "- {customer}({owner}):{obstacle},已等 {hours} 小时{supporter}"
WAITING_SUPPORTER = ",支持人 {name}"

OVERRUN_HEADER = "**超时最多的阶段/节点**(SOP 简化候选)"
OVERRUN_LINE = "- {pipeline} · {stage}:{count} 位客户超出时限"

INTEL_HEADER = "**本周竞品动态**({count} 条)"
INTEL_LINE = "- {competitor}:{text}({member}{customer})"
INTEL_UNKNOWN = "未收录竞品"
INTEL_CUSTOMER = " · {name}"

FAILED_HEADER = "**应答失效最多的障碍类型**"
FAILED_LINE = "- {obstacle}:{count} 位客户答后仍停滞(进入复盘)"

NONE = "无"
MORE = "……等共 {count} 条"
TRUNCATED = "……(内容过长,已截断)"

ADMIN_CARD_TITLE = "动作校准会:请更新常见障碍应答库"
ADMIN_CARD_BODY = "本周应答失效最多的障碍类型:{items}。请据校准会结论更新应答库。"
ADMIN_CARD_NO_FAILURES = "本周没有应答失效的障碍类型;如校准会有新结论,请更新应答库。"
ADMIN_CARD_BUTTON = "更新应答库"
ADMIN_CARD_CLOSED = "已打开应答库"
OPEN_LIBRARY = (
    "常见障碍应答库 · 请发送 /应答库 查看和修改。\n本周需优先更新:\n{items}"
)
OPEN_LIBRARY_ITEM = "- {obstacle}(失效 {count} 次):{guidance}"
OPEN_LIBRARY_NO_GUIDANCE = "尚无应答"
OPEN_LIBRARY_NOTHING = "- 本周无应答失效的障碍类型"

REMINDER = "提醒:周五的动作校准会之后,常见障碍应答库还没有更新。请发送 /应答库 更新应答,让一线拿到最新打法。"
NO_TEAM = "你还没有所属团队,无法查看校准报告。"
