"""What the morning digest (晨会速览), /看板 and /团队 say. Simplified Chinese, one place."""

from __future__ import annotations

DIGEST_TITLE = "{team} 晨会速览"
DIGEST_HEADER = "## {team} 晨会速览 {date}"
CHART_TITLE = "{team} 晨会速览 {date}"

STAGES_HEADER = "**各阶段客户分布**(共 {total} 位)"
STAGE_ITEM = "{stage} {count}"
STAGE_PIPELINE = "{pipeline}:"
NO_CUSTOMERS = "暂无客户"

OVERDUE_HEADER = "**超时未处理 TOP5**"
OVERDUE_LINE = "{rank}. {customer}({owner})超期 {days} 天"
NO_OVERDUE = "无超时未处理的客户 👍"

TREND_HEADER = "**销售动作完成率趋势(近14天)**"
TREND_ITEM = "{date} {rate}"
TREND_NONE = "—"
TREND_SUMMARY = "14天合计:到期 {due} 项,按时完成 {done} 项({rate})"

HEALTH_HEADER = "**动作健康度**"
DEPTH_LINE = "- 触达深度指数 {value}(≥3 良好,<2 需辅导;{customers} 位客户){mark} 较上周 {change}"
CROSSING_LINE = "- 阶段穿越率 {value}(>45% 健康,<30% 需求挖掘存在系统性缺口;{crossed}/{cohort}){mark} 较上周 {change}"
RESOLUTION_LINE = "- 障碍解决时效 {value}(基准 ≤18 小时,>48 小时需流程复盘;{resolved} 个已答复){mark} 较上周 {change}"
HOURS = "{hours} 小时"
NO_FIGURE = "—"
MARK = {"good": " ✅", "watch": " ⚠️", "poor": " ❌", "none": ""}
COACHING = "建议辅导(触达渠道少于2种):{names}"
OPEN_REQUESTS = "超48小时未获答复:{items}"
OPEN_REQUEST_ITEM = "{customer}({owner},已等 {hours} 小时)"
MORE = "等共 {count} 位"
MORE_ITEMS = "等共 {count} 个"
CHANGE_PP = "{sign}{value} 个百分点"
TRUNCATED = "……(内容过长,已截断)"

# /看板 and /团队
BOARD_NEED_TEAM = "请指定团队,例如:/看板 {example}\n可选团队:{teams}"
BOARD_NO_TEAM = "你还没有所属团队,无法查看看板。"
BOARD_UNKNOWN_TEAM = "没有找到团队「{name}」。可选团队:{teams}"
BOARD_OTHER_TEAM = "你只能查看本团队({team})的看板。"
BOARD_NOTHING = "{team} 目前没有客户和到期动作,暂无可汇报的内容。"

TEAM_TITLE = "{team} 本周成员"
TEAM_HEADER = "## {team} 本周成员(自 {since} 起)"
TEAM_LINE = "{rank}. {name}:跟进客户 {customers} 位 · 有效触达 {effective} 次 · 未关闭预警 {alerts} 个 · 触达深度 {depth}"
TEAM_NONE = "团队里还没有销售成员。"
TEAM_ORDER_NOTE = "按跟进客户数从少到多排列(最需要关注的在前)。"
