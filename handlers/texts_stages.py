"""Everything the bot says about stages, obstacles and cross-department support (Simplified Chinese)."""

# --- finding the customer and the stage ---------------------------------------------------------
STAGE_USAGE = (
    "用法:\n"
    "/阶段 客户名 — 查看客户的流程、当前阶段和停留时间\n"
    "/阶段 客户名 目标阶段 — 调整阶段,例如:/阶段 华东建材 方案报价\n"
    "/阶段 客户名 撤回 — 撤回待确认的阶段变更\n"
    "也可以直接发:华东建材 进入方案报价;退回需写原因:华东建材 退回需求确认 原因:客户换了对接人"
)
CUSTOMER_UNKNOWN = "没有找到客户「{name}」。请检查客户名称(可用 /客户 查询)。"
CUSTOMER_NOT_YOURS = "「{name}」不是您负责的客户。销售只能调整自己客户的阶段,主管可调整本团队客户的阶段。"
CUSTOMER_AMBIGUOUS = "「{name}」匹配到多个客户:{names}。请写完整的客户名称。"
STAGE_UNKNOWN = "「{customer}」所在的流程「{pipeline}」中没有「{stage}」这个阶段。\n可选阶段:{stages}"
STAGE_AMBIGUOUS = "「{stage}」可能是:{names}。请写完整的阶段名称。"
STAGE_SAME = "「{customer}」已经在「{stage}」阶段了。"
NO_NEXT_STAGE = "「{customer}」已在最后一个阶段「{stage}」,没有下一阶段。"
NO_PREVIOUS_STAGE = "「{customer}」已在第一个阶段「{stage}」,没有上一阶段。"
BACKWARD_NEEDS_REASON = (
    "「{target}」在当前阶段「{current}」之前,退回需要说明原因,例如:\n{customer} 退回{target} 原因:客户换了对接人"
)
PENDING_EXISTS = (
    "「{customer}」已有一个待确认的阶段变更:{from_stage} → {to_stage}({when}提出),"
    "回答那张「当前最大障碍是?」卡片后才生效。\n如要改为其他阶段,请先发送“/阶段 {customer} 撤回”。"
)
NO_PENDING = "「{customer}」没有待确认的阶段变更。"
WITHDRAWN = "已撤回「{customer}」的阶段变更({from_stage} → {to_stage}),客户仍在「{from_stage}」。"
WITHDRAWN_NOTE = "已撤回"
DIRECTION_FORWARD = "推进到"
DIRECTION_BACKWARD = "退回到"

# --- the obstacle card (障碍穿透提问) ----------------------------------------------------------------
OBSTACLE_TITLE = "当前最大障碍是?"
OBSTACLE_BODY = "「{customer}」申请从「{from_stage}」{direction}「{to_stage}」。选择当前最大障碍后,阶段变更才生效。"
OPTION_MARKS = "①②③④⑤⑥⑦⑧⑨"
OPTION_LABEL = "{mark} {option}"
WITHDRAW_BUTTON = "撤回变更"
FIELD_CUSTOMER = "客户"
FIELD_CHANGE = "阶段"
FIELD_REASON = "原因"
FIELD_NOTE = "备注"
CHANGE_LINE = "{from_stage} → {to_stage}"

ANSWERED_NOTE = "已选择:{option}"
MOVED_TITLE = "已{direction}「{stage}」 · {customer}"
FIELD_OBSTACLE = "最大障碍"
FIELD_EVIDENCE_NEEDED = "待补凭证"
FIELD_GUIDANCE = "应对建议"
MOVED_BODY = "需要技术、法务或财务同事协助时,点[需跨部门支持]。"
SUPPORT_BUTTON = "需跨部门支持"
ASK_EVIDENCE = (
    "「{option}」需要凭证:请现在发送「{customer}」的{evidence}(拍照或文件)。\n"
    "稍后补发也可以:图片说明里写上客户名或“{evidence}”即可;补齐前每{hours}小时提醒一次。"
)
OWNER_NOTIFIED = "{actor}将您的客户「{customer}」{direction}「{stage}」(最大障碍:{option})。"
CHANGE_GONE = "这个阶段变更已经处理过或已撤回,无需重复操作。"
CHANGE_STALE = "「{customer}」的阶段已经变为「{stage}」,这个变更已作废。如仍需调整,请重新发起。"
CHANGE_STALE_NOTE = "已作废"
CHANGE_NOT_YOURS = "「{customer}」已不在您的负责范围内(可能已转交他人),这个阶段变更已作废。"
OPTION_GONE = "这个选项已失效,请重新发起阶段变更。"

# --- obstacle evidence -------------------------------------------------------------------------
EVIDENCE_LINKED = "已将{kind}作为「{customer}」的{evidence}保存,障碍「{option}」的凭证已补齐。"
EVIDENCE_LATER = "好的,稍后补发「{customer}」的{evidence}即可(图片说明里写上客户名或“{evidence}”)。"
EVIDENCE_WHICH = "您有多个障碍在等凭证:{items}。请在图片说明里写上客户名后重新发送。"
EVIDENCE_ITEM = "{customer}({evidence})"
EVIDENCE_MISSING_FILE = "文件太大或为空,无法保存。请压缩后重新发送。"
REMINDER = "⏰ 以下障碍的凭证还没补齐:\n{lines}\n直接发送照片或文件即可,图片说明里写上客户名。"
REMINDER_LINE = "- {customer}:{option} → 待补{evidence}(已{age})"

# --- deliverables (节点交付物) -----------------------------------------------------------------
DELIVERABLE_SAVED = "已将{kind}存为「{customer}」「{stage}」节点的交付物:{deliverable}。"
DELIVERABLE_NOTE = "交付物:{deliverable}"

# --- cross-department support (需跨部门支持) ----------------------------------------------------
SUPPORT_NO_SUPPORTER = "系统中还没有支持同事,暂时无法发起跨部门支持。请联系管理员在成员中设置支持角色。"
SUPPORT_ALREADY = "这个障碍已经请{name}支持过了,无需重复发起。"
SUPPORT_OBSTACLE_GONE = "找不到这个障碍记录,无法发起跨部门支持。"
SUPPORT_SENT = "已请支持同事{name}协助「{customer}」({option})。TA的答复会转给您。"
SUPPORT_SENT_NOTE = "已请{name}支持"
SUPPORT_CARD_TITLE = "需跨部门支持 · {customer}"
SUPPORT_CARD_BODY = "请直接回复文字给出意见,答复会转给{rep}。"
FIELD_REP = "销售"
FIELD_STAGE = "阶段"
FIELD_SUPPORT_NOTE = "销售说明"
NO_NOTE = "(无)"
SUPPORT_ACK_NOT_COUNTED = "已收到。给出具体意见时直接回复即可,我会转给销售同事(“收到/好的”这类回复不计为答复)。"
SUPPORT_WHICH = "您有多个待答复的支持请求:{names}。请在回复开头写上客户名。"
SUPPORT_RELAYED = "已转给{rep}(从发起到答复用时{elapsed})。"
SUPPORT_RELAY = "💬 支持同事{supporter}答复了「{customer}」的障碍「{option}」:\n{text}"

# --- /阶段 <customer>: the pipeline, history and time in stage ----------------------------------------
VIEW_TITLE = "阶段 · {customer}"
VIEW_HEADER = "### 阶段 · {customer}\n流程:{pipeline} · 负责人:{owner}"
VIEW_STAGE_CURRENT = "{n}. **{name}** ← 当前,已停留{duration}"
VIEW_STAGE_VISITED = "{n}. {name}(累计{duration})"
VIEW_STAGE_AHEAD = "{n}. {name}"
VIEW_DELIVERABLES = " · 交付物:{items}"
VIEW_DELIVERED = "{name}✅"
VIEW_HISTORY_HEADER = "**阶段历史**"
VIEW_HISTORY_LEFT = "- {date} 进入「{stage}」,停留{duration}"
VIEW_HISTORY_OPEN = "- {date} 进入「{stage}」,至今{duration}"
VIEW_PENDING = "**待确认变更**:{from_stage} → {to_stage}(等待回答障碍卡片)"
VIEW_OBSTACLES_HEADER = "**障碍**"
VIEW_OBSTACLE_LINE = "- {date} {stage}:{option}{state}"
VIEW_OBSTACLE_AWAITING = "(待补{evidence})"
VIEW_OBSTACLE_EVIDENCED = "(已补凭证)"
VIEW_OBSTACLE_RESOLVED = "(已解决)"
VIEW_SUPPORT_WAITING = " · 跨部门支持:{name}未答复"
VIEW_SUPPORT_ANSWERED = " · 跨部门支持:{name}已答复"

# --- durations ---------------------------------------------------------------------------------
DURATION_DAYS_HOURS = "{days}天{hours}小时"
DURATION_DAYS = "{days}天"
DURATION_HOURS = "{hours}小时"
DURATION_HOURS_MINUTES = "{hours}小时{minutes}分钟"
DURATION_MINUTES = "{minutes}分钟"
DURATION_MOMENT = "不到1分钟"

# --- /帮助: what the command list says -------------------------------------------------------
CMD_STAGE = "查看流程进度或申请推进"
CMD_STAGE_USAGE = "客户 [目标阶段]"
