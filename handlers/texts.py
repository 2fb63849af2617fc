"""Everything the bot says about touches, evidence and the rep commands (Simplified Chinese)."""

# --- touch logging (接触记录) -------------------------------------------------------------
EMPTY_MESSAGE = "消息是空的。请直接描述今天的客户跟进,例如:\n华东建材 张总 电话20分钟 聊了报价细节,下周三上门拜访"
TOO_LONG = "消息太长了({length}字),请控制在{limit}字以内,分几条发送。"
NO_CUSTOMER_NAME = "没看出是哪个客户。请在消息开头写上客户名称,例如:华东建材 电话20分钟 …"
CHOOSE_CUSTOMER_TITLE = "是哪个客户?"
CHOOSE_CUSTOMER_BODY = "「{text}」匹配到多个客户,请选择:"
NEW_LEAD_TITLE = "未找到客户"
NEW_LEAD_BODY = "您名下没有「{name}」。要新建为线索并记录这次跟进吗?"
NEW_LEAD_BUTTON = "新建线索「{name}」"
CANCEL_BUTTON = "取消"
CANCELLED = "已取消,本次跟进未记录。"
ASK_SUMMARY = "今天和「{customer}」做了什么?(例如:电话20分钟 聊了报价细节)"
ASK_NEXT = "下次动作是什么?什么时候?(例如:周五前发报价单)"
ASK_NEXT_DATE = "「{action}」打算什么时候做?(例如:明天、下周三、12月5日)"
ASK_NEXT_ACTION = "{date}要做什么?(例如:上门拜访、发报价单)"
PAST_DATE = "下次动作的日期{date}已经过去了,请给一个今天或之后的日期。"
DIALOGUE_HINT = "(回复“取消”可放弃本次记录)"
CHOICE_GONE = "这个选择已经失效(可能已超时),请重新发送跟进内容。"
SUPPORTER_NO_TOUCHES = "客户跟进由负责的销售记录,支持同事无需记录。收到跨部门支持请求时,直接回复文字即可,答复会转给提出请求的同事。"

CONFIRM_TITLE = "已记录跟进 · {customer}"
FIELD_CHANNEL = "渠道"
FIELD_TODAY = "今日动作"
FIELD_NEXT = "下次动作"
FIELD_EVIDENCE = "凭证"
FIELD_EFFECTIVE = "有效触达"
EVIDENCE_PENDING = "待补充:{minutes}分钟内发照片/录音/文件即可关联"
EFFECTIVE_WAITING = "待凭证"
EFFECTIVE_NO = "否({reason})"
UNDO_BUTTON = "撤销"
NEW_LEAD_CREATED = "已新建线索「{name}」(阶段:{stage})。"

UNDONE_NOTE = "已撤销"
UNDONE = "已撤销「{customer}」的这条跟进记录。"
UNDO_NOT_YOURS = "只能撤销自己记录的跟进。"
UNDO_ALREADY = "这条跟进已经撤销过了。"
UNDO_MISSING = "找不到这条跟进记录。"

# --- evidence (凭证) -----------------------------------------------------------------------
# What each kind of evidence is called, everywhere (by ``EvidenceKind`` value).
EVIDENCE_KIND_NAMES = {"photo": "照片", "voice": "录音", "video": "视频", "file": "文件", "text": "文字"}
EVIDENCE_ATTACHED = "已将{kind}作为凭证关联到「{customer}」{when}的跟进。{effective}"
EVIDENCE_EFFECTIVE = "✅ 已计为有效触达。"
EVIDENCE_NOT_EFFECTIVE = "未计为有效触达:{reason}。"
EVIDENCE_LATE = "已超过补凭证期限,本次跟进不计为有效触达。"
EVIDENCE_WHICH_CUSTOMER_TITLE = "这份凭证属于哪个客户?"
EVIDENCE_WHICH_CUSTOMER_BODY = "最近{minutes}分钟内没有跟进记录,请选择客户:"
EVIDENCE_NO_CUSTOMERS = "收到{kind},但最近没有跟进记录可以关联。请先发送跟进内容(客户+今日动作+下次动作),再在{minutes}分钟内补发凭证。"
EVIDENCE_SAVED_TO_CUSTOMER = "已将{kind}存为「{customer}」的凭证。"
EVIDENCE_CANCELLED = "已取消,这份凭证未保存。"
EVIDENCE_TOO_LARGE = "文件太大或为空,无法保存。请压缩后重新发送。"
EVIDENCE_UNAVAILABLE = "没能取到这份文件(可能已过期),请重新发送。"

# --- /今日 ---------------------------------------------------------------------------------
TODAY_TITLE = "今日待办 · {date}"
TODAY_DUE_HEADER = "**到期的下次动作**"
TODAY_DUE_LINE = "- {customer}:{action}({due}{overdue})"
TODAY_OVERDUE = ",已逾期{days}天"
TODAY_NONE_DUE = "- 今天没有到期的下次动作 👍"
TODAY_PENDING_HEADER = "**待补凭证**"
TODAY_PENDING_LINE = "- {customer}:{summary}({when})"
TODAY_COLD_HEADER = "**超过{hours}小时未跟进**"
TODAY_COLD_LINE = "- {customer}({stage},{since})"
TODAY_NEVER = "录入后从未跟进"

# --- /客户 ---------------------------------------------------------------------------------
CUSTOMER_USAGE = "用法:/客户 客户名称"
CUSTOMER_NOT_FOUND = "在您可查看的客户中没有找到「{name}」。"
CUSTOMER_AMBIGUOUS = "「{name}」匹配到多个客户:{names}。请写得更完整一些。"
CUSTOMER_TITLE = "客户 · {name}"
CUSTOMER_LINES = (
    "- 负责人:{owner}\n- 阶段:{stage}(已{days}天)\n- 行业:{industry}\n- 联系人:{contacts}\n"
    "- 最近跟进:{last}\n- 下次动作:{next}"
)
CUSTOMER_TOUCH_LINE = "- {date} {channel}:{summary}"
CUSTOMER_TOUCHES_HEADER = "**最近跟进**"
CUSTOMER_NO_TOUCH = "暂无"

# --- /帮助 ---------------------------------------------------------------------------------
HELP_TITLE = "Pacebot 使用帮助"
HELP_INTRO = """**记录跟进**:直接发一句话,包含客户、今天做了什么、下次动作和时间,例如
华东建材 张总 电话20分钟 聊了报价细节,下周三上门拜访
记录后10分钟内发送照片/录音/文件,会自动作为凭证关联。

**推进阶段**:发送“华东建材 进入方案报价”,回答障碍卡片后才会生效;发送带节点名称的交付物照片也可以推进。

**命令**"""
# One line per command the member may use, generated from the registered commands.
HELP_COMMAND_LINE = "- {name}{usage} — {summary}"
# What else a role can do beyond the commands (Role value → note).
HELP_ROLE_NOTES = {
    "manager": "**主管**\n- /客户 可查看本团队所有客户\n- 复盘卡片、资源审批卡片、撞单卡片直接点按钮处理",
    "admin": "**管理员**\n- /客户 可查看全部客户\n- /导入 之后发送 Excel 客户表(或发送文件时附言 /导入)",
}
CMD_HELP = "显示本帮助"
CMD_TODAY = "今天到期的下次动作、待补凭证、久未跟进的客户"
CMD_CUSTOMER = "查看客户的阶段和最近跟进"
CMD_CUSTOMER_USAGE = "名称 [别名 简称 | 联系人 张总 电话]"
