"""What people read about stalled customers and their review (进度停滞 → 复盘), in one place."""

from __future__ import annotations

# --- to the rep --------------------------------------------------------------------------------
ESCALATED_REP = (
    "「{customer}」最近两次跟进都没有实质进展(停滞话术:{phrases}),已标记为「复盘中」,"
    "并提交{reviewer}复盘。主管给出处理意见后会通知您,期间请照常跟进。"
)
ESCALATED_REP_NO_REVIEWER = (
    "「{customer}」最近两次跟进都没有实质进展(停滞话术:{phrases}),已标记为「复盘中」。"
    "目前没有可复盘的主管,请联系管理员。"
)
ADVICE_TO_REP = "主管{manager}已复盘「{customer}」,建议:\n{advice}\n\n「{customer}」已恢复正常跟进。"
TRANSFER_TO_OLD = "主管{manager}已将「{customer}」转交给{new}跟进,您无需再跟进这个客户。"
TRANSFER_TO_NEW = (
    "主管{manager}将「{customer}」(当前阶段:{stage})转交给您跟进。"
    "之前的跟进记录和阶段历史都已保留,发送 /客户 {customer} 可查看。"
)
SNOOZE_TO_REP = "主管{manager}已将「{customer}」暂缓至{date},原因:{reason}。暂缓期间不会产生预警,{date}起请恢复跟进。"

# --- the checklist -------------------------------------------------------------------------------
CHECKLIST_TITLE = "障碍分析清单 · {customer}"
CARD_TITLE = "进度停滞 · {customer} 需复盘"
CARD_BODY = "{owner}对「{customer}」连续两次跟进没有实质进展,客户已标记为复盘中。请查看障碍分析清单后处理。"
FIELD_CUSTOMER = "客户"
FIELD_OWNER = "负责人"
FIELD_STAGE = "阶段"
FIELD_STALL = "停滞话术"
FIELD_ALERTS = "未关闭预警"
FIELD_TOUCHES = "最近跟进"
FIELD_OBSTACLES = "障碍与凭证"
FIELD_GUIDANCE = "应答库建议"
FIELD_QUESTIONS = "复盘问题"
STAGE_VALUE = "{stage} · 已停留{days}天"
NONE = "无"
TOUCH_LINE = "{date} {channel}:{summary}"
TOUCH_STALL_MARK = "〔停滞:{phrases}〕"
OBSTACLE_LINE = "{option}({status}),凭证:{evidence}"
OBSTACLE_STATUS = {"awaiting_evidence": "待补{required}", "open": "处理中", "resolved": "已解决"}
OBSTACLE_SUPPORT_WAITING = ",跨部门支持未回复"
OBSTACLE_SUPPORT_ANSWERED = ",跨部门支持已回复"
EVIDENCE_LINE = "{kind} {date}{filename}"
ALERT_LINE = "{name}({severity},{date}起)"
ALERT_SEVERITY = {"yellow": "标黄", "red": "标红"}
ALERT_RULE_NAMES = {
    "cold": "久未跟进",
    "quote_overdue": "报价超时",
    "low_activity": "本周跟进偏少",
    "milestone_overdue": "节点交付逾期",
    "obstacle_slow": "障碍处理超时",
    "escalation": "进度停滞",
}
GUIDANCE_LINE = "{obstacle}:{guidance}"
LIST_SEPARATOR = "、"
DEFAULT_QUESTIONS = (
    "客户推迟的真实原因是什么?是时机、预算、竞品,还是我们没有找到真正的决策人?",
    "我们接触到的人能拍板吗?决策链上还缺谁,谁能引荐?",
    "下一步什么动作能换来客户明确的承诺(什么时间、谁、做什么)?",
    "是否需要主管陪访,或技术、商务同事一起支持?",
)

# --- manager actions ------------------------------------------------------------------------------
BUTTON_REVIEWED = "已复盘"
BUTTON_TRANSFER = "转交"
BUTTON_SNOOZE = "暂缓"
BUTTON_CANCEL = "取消"
ASK_ADVICE = (
    "请回复给{owner}的复盘建议,将原文转告销售。例如:先约技术负责人做一次现场测试,周五前给出测试方案。"
    "(回复“取消”可放弃)"
)
ADVICE_EMPTY = "建议内容不能为空,请回复给销售的复盘建议。(回复“取消”可放弃)"
ADVICE_TOO_LONG = "建议太长了({length}字),请控制在{limit}字以内。"
ADVICE_DONE = "已将复盘建议转给{owner},「{customer}」恢复正常跟进。"
CLOSED_REVIEWED = "已复盘"

TRANSFER_TITLE = "把「{customer}」转交给谁?"
TRANSFER_BODY = "当前负责人:{owner}。转交后客户的阶段和历史记录都会保留,只更换负责人。"
TRANSFER_SUBMIT = "转交"
TRANSFER_NO_ONE = "团队里没有其他销售可以接手「{customer}」。"
TRANSFER_INVALID = "只能转交给本团队在职的其他销售,请重新选择。"
TRANSFER_NAME_TAKEN = "{rep}名下已有同名客户「{customer}」,无法转交。请联系管理员合并或改名后再试。"
TRANSFER_DONE = "已将「{customer}」从{old}转交给{new}。"
TRANSFER_CANCELLED = "已取消转交"
CLOSED_TRANSFERRED = "已转交给{new}"

ASK_SNOOZE = (
    "请回复暂缓原因和恢复日期,例如:客户出国两周,12月10日恢复。暂缓期间该客户不会产生预警。"
    "(回复“取消”可放弃)"
)
SNOOZE_NO_DATE = "没有识别到恢复日期,未做任何更改。请写明原因和哪天恢复,例如:客户出国两周,12月10日恢复。"
SNOOZE_NOT_FUTURE = "恢复日期{date}不晚于今天,未做任何更改。请给一个今天之后的日期,例如:客户出国两周,12月10日恢复。"
SNOOZE_NO_REASON = "请同时写明暂缓原因,未做任何更改。例如:客户出国两周,{date}恢复。"
SNOOZE_DONE = "已暂缓「{customer}」至{date}(原因:{reason})。暂缓期间不会产生预警,已通知{owner}。"
CLOSED_SNOOZED = "已暂缓至{date}"

DIALOGUE_CANCELLED = "已取消,复盘卡片仍可继续操作。"
ESCALATION_GONE = "找不到这条复盘记录。"
ALREADY_HANDLED = "这条复盘已经处理过了({status}),无需重复操作。"
STATUS_NAMES = {
    "open": "复盘中", "reviewed": "已复盘", "transferred": "已转交", "snoozed": "已暂缓", "withdrawn": "已撤回",
}
WITHDRAWN_NOTE = "已撤回:销售撤销了其中一条停滞跟进"
WITHDRAWN_REP = "已撤销该跟进,「{customer}」的复盘申请随之撤回,客户恢复正常跟进。"
NOT_PERMITTED = "只有「{customer}」所在团队的主管或管理员可以处理这条复盘。"
NOT_PERMITTED_OWN = "「{customer}」是您自己负责的客户,这条复盘需由您的主管或其他管理员处理。"
