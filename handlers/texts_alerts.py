"""Everything the bot says about alerts (预警), the weekly activity check and /规则 (Simplified Chinese)."""

# --- reminders to reps ------------------------------------------------------------------------
COLD_TITLE = "🟡 客户冷却提醒:以下 {count} 位客户已超过 {hours} 小时没有跟进"
COLD_LINE = "· {customer}({stage},{since})"
COLD_SINCE_TOUCH = "上次跟进 {ago}"
COLD_SINCE_CREATED = "建档 {ago},尚未跟进"
COLD_FOOTER = "记录一次跟进即可解除提醒,例如:{customer} 电话10分钟 …,下周三上门拜访"
MORE_LINES = "……等共 {count} 位"

QUOTE_REP_TITLE = "🔴 报价超时(标红):以下客户在「{stage}」阶段已超过 {limit} 个工作日"
QUOTE_REP_LINE = "· {customer}:已 {days} 个工作日(自 {entered} 起)"
QUOTE_REP_FOOTER = "主管已同步收到。请尽快推进到下一阶段,或记录阻碍原因。"
QUOTE_REP_FOOTER_NO_MANAGER = "请尽快推进到下一阶段,或记录阻碍原因。"
QUOTE_MANAGER_TITLE = "🔴 报价超时(标红):团队有 {count} 位客户在「{stage}」阶段超过 {limit} 个工作日"
QUOTE_MANAGER_LINE = "· {rep} / {customer}:已 {days} 个工作日(自 {entered} 起)"

MILESTONE_PACK_NOTE = "「{customer}」在节点「{stage}」已超期({elapsed},时限 {limit}),请尽快上传:{deliverables}。"
MILESTONE_REP_TITLE = "⏰ 节点超期:以下客户的节点交付物未按时上传"
MILESTONE_REP_LINE = "· {customer}:「{stage}」需上传 {deliverables}({elapsed},时限 {limit})"
MILESTONE_MANAGER_TITLE = "⏰ 节点超期:团队有 {count} 个节点交付物未按时上传"
MILESTONE_MANAGER_LINE = "· {rep} / {customer}:「{stage}」缺 {deliverables}({elapsed},时限 {limit}){pushed}"
MILESTONE_PUSHED = ",已推送《{title}》"
LIMIT_DAYS = "{days} 天"
LIMIT_WORKING_DAYS = "{days} 个工作日"
ELAPSED_DAYS = "已进入第 {days} 天"
ELAPSED_WORKING_DAYS = "已 {days} 个工作日"

OBSTACLE_MANAGER_TITLE = "🐢 跨部门支持超时:{count} 个支持请求超过 {hours} 小时无人回复,已列入流程复盘清单"
OBSTACLE_MANAGER_LINE = "· {rep} / {customer}:{waited} 小时未回复(支持人:{supporter})"
OBSTACLE_NO_SUPPORTER = "未指定"

# --- low weekly activity: 《本周高价值客户补漏建议》 --------------------------------------------------
SUGGESTION_TITLE = "本周高价值客户补漏建议"
SUGGESTION_HEADING = "### 📊《本周高价值客户补漏建议》"
SUGGESTION_INTRO = (
    "本周({week_start}起)你跟进了 **{count}** 位客户,团队人均 **{mean}** 位,"
    "低于团队平均的 {ratio}%。"
)
SUGGESTION_LIST_INTRO = "以下是你名下价值最高、近 {days} 天没有跟进的客户,建议本周内补上:"
SUGGESTION_LINE = "{n}. **{customer}** · {stage} · 预计 {value} · {since}"
SUGGESTION_NEVER = "尚未跟进"
SUGGESTION_SINCE = "上次跟进 {ago}"
SUGGESTION_NONE = "你名下的客户近 {days} 天都有跟进,可以考虑开拓新线索。"
SUGGESTION_FOOTER = "> 跟进后直接发:客户名 + 今日动作 + 下次动作,例如「华东建材 电话20分钟 聊了报价,下周三拜访」。"
VALUE_WAN = "{value}万元"
VALUE_YUAN = "{value}元"
VALUE_UNKNOWN = "金额未填"

# --- calendar beyond the holiday library ------------------------------------------------------
BEYOND_DATA_WARNING = (
    "⚠️ 节假日数据缺失:内置节假日库还没有 {year} 年的放假安排,工作日暂按周一至周五计算(规则照常运行)。\n"
    "请在国务院公布安排后补录,例如:\n"
    "/规则 假期 {year}-01-01..{year}-01-03 元旦\n"
    "/规则 调休 {year}-02-07"
)

# --- /规则 -------------------------------------------------------------------------------------
RULES_TITLE = "📏 当前规则"
RULES_BODY = (
    "· 冷客户(标黄):超过 {cold_hours} 小时未跟进(新线索自建档起算)\n"
    "· 报价超时(标红):在「{quote_stage}」阶段超过 {quote_days} 个工作日,同步主管\n"
    "· 周活跃度偏低:本周跟进客户数低于团队平均的 {ratio}%\n"
    "· 跨部门支持超时:超过 {obstacle_hours} 小时无人回复,通知主管\n"
    "· 节点超期:按各流程节点配置的时限和交付物\n"
    "· 预警未处理:通知后 {ignore_hours} 小时内未处理记为“已忽略”\n"
    "· 预警扫描:每 {sweep_minutes} 分钟;周活跃度检查:{weekly}"
)
RULES_CALENDAR_TITLE = "📅 工作日日历"
RULES_LIBRARY = "· 内置节假日数据:{first}–{last} 年(含调休);之后按周一至周五计算"
RULES_DECLARED_HEADER = "· 管理员设定的日期:"
RULES_DECLARED_NONE = "· 管理员设定的日期:无"
RULES_DECLARED_LINE = "  {day} {weekday} {kind}{note}"
RULES_CONFIG_LINE = "· 配置文件设定:{kind} {days}"
RULES_USAGE = (
    "用法:\n"
    "/规则 假期 2027-01-01..2027-01-03 元旦 (设定放假日,可带说明)\n"
    "/规则 调休 2027-02-07 (设定调休上班日)\n"
    "/规则 删除 2027-01-01 (删除设定,可用区间)\n"
    "/规则 设置 冷却小时 48 (修改阈值;只发 /规则 设置 可查看全部可设项)"
)
KIND_HOLIDAY = "放假"
KIND_WORKDAY = "调休上班"
WEEKLY_SCHEDULE = "每{day} {time}"
WEEKDAY_BY_KEY = {"mon": "周一", "tue": "周二", "wed": "周三", "thu": "周四", "fri": "周五", "sat": "周六", "sun": "周日"}

RULES_DECLARED = "已设定 {count} 天为{kind}:{days}{note}"
RULES_REMOVED = "已删除 {count} 天的设定:{days}"
RULES_NOTHING_REMOVED = "{days} 没有管理员设定,无需删除。"
RULES_UNKNOWN_ACTION = "不认识的操作「{action}」。\n" + RULES_USAGE
RULES_MISSING_DATES = "请写上日期,例如:/规则 {action} 2027-01-01 或 2027-01-01..2027-01-03"
RULES_BAD_DATE = "「{text}」不是有效日期,请用 年-月-日 格式,例如 2027-01-01。"
RULES_BAD_RANGE = "日期区间「{text}」的结束日期早于开始日期。"
RULES_RANGE_TOO_LONG = "日期区间「{text}」有 {days} 天,一次最多设定 {limit} 天。"

# --- /帮助: what the command list says -------------------------------------------------------
CMD_RULES = "查看阈值与工作日日历;添加假期、调休日(如 /规则 假期 2027-01-01..2027-01-03 元旦)"
CMD_RULES_USAGE = "[假期|调休|删除 日期 备注]"
