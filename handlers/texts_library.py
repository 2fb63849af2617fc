"""Everything the bot says about libraries: rewards, /话术, competitor intel and customer feedback."""

# --- rewards (有效触达解锁物料) ---------------------------------------------------------------------
REWARD_NOTE = "🎉 已完成第{count}次有效触达,解锁物料:《{title}》"

# --- /话术 -----------------------------------------------------------------------------------------
PACK_USAGE = "用法:/话术 关键词(例如 /话术 价格异议),列出匹配的话术包;/话术 完整标题 直接发送。"
PACK_SUGGESTED_HEADER = "**适合您客户的话术包**"
PACK_LIST_TITLE = "话术包 · {query}"
PACK_LIST_HEADER = "找到{count}个与「{query}」相关的话术包{more}:"
PACK_LIST_MORE = "(只列出前{shown}个,可换个更具体的关键词)"
PACK_LIST_LINE = "{n}. 《{title}》{tags}"
PACK_LIST_FOOTER = "发送 /话术 完整标题 即可获取,例如:/话术 {example}"
PACK_NOT_FOUND = "没有找到与「{query}」相关的话术包。可以换个关键词,或发送 /话术 查看推荐。"
PACK_EMPTY_LIBRARY = "话术库还是空的,请联系管理员添加。"
QUERY_TOO_LONG = "关键词太长了,请控制在{limit}字以内。"

# --- competitor intel (竞品动态) ------------------------------------------------------------------
COMPETITOR_USAGE = (
    "用法:/竞品 竞品名称 情况 [客户],例如:\n/竞品 鼎固 降价20% 华东建材\n"
    "也可以直接发“竞品 …”,或发一张竞品照片并在说明里写上“竞品”或竞品名称。"
)
COMPETITOR_TITLE = "竞品应对 · {name}"
COMPETITOR_RECORDED = "已记录竞品动态:**{name}**{customer}。"
COMPETITOR_FOR_CUSTOMER = "(客户:{customer})"
COMPETITOR_PHOTO_SAVED = "照片已存为「{customer}」的凭证。"
COMPETITOR_PHOTO_KEPT = "照片已随竞品动态存档(未关联客户)。"
COMPETITOR_SCRIPT_HEADER = "**应对话术**"
COMPETITOR_NO_SCRIPT = "竞品库里还没有这家的应对话术,请联系管理员补充。"
COMPETITOR_UNKNOWN = "已记录竞品动态「{name}」{customer}。竞品库里还没有这家竞品,已通知管理员补充应对话术。"
COMPETITOR_UNKNOWN_UNNAMED = "已记录这条竞品动态{customer}。没认出是哪家竞品,已通知管理员补充到竞品库。"
COMPETITOR_ADMIN_NOTE = "📌 {member} 上报了竞品库中没有的竞品{name}:{text}\n请用 /竞品库 补充名称、别名和应对话术。"
COMPETITOR_TOO_LONG = "内容太长了({length}字),请控制在{limit}字以内。"
COMPETITOR_PHOTO_BAD = "照片无法读取或太大,请重新拍照发送。"

# --- customer feedback (客户声音) -----------------------------------------------------------------
FEEDBACK_USAGE = "用法:/反馈 客户名称,然后在卡片上勾选客户的反馈。"
FEEDBACK_NO_OPTIONS = "还没有配置客户反馈选项,请联系管理员在配置的 feedback.rules 中添加。"
FEEDBACK_CUSTOMER_NOT_FOUND = "在您的客户中没有找到「{name}」。"
FEEDBACK_CUSTOMER_AMBIGUOUS = "「{name}」匹配到多个客户:{names}。请写得更完整一些。"
FEEDBACK_CARD_TITLE = "客户反馈 · {customer}"
FEEDBACK_CARD_BODY = "客户提到了哪些问题?可多选,提交后系统会推送对应物料并标记客户。"
FEEDBACK_SUBMIT = "提交反馈"
FEEDBACK_NOTHING_CHOSEN = "请至少勾选一项再提交。"
FEEDBACK_CARD_GONE = "这张反馈卡片已经失效,请重新发送 /反馈 客户名称。"
FEEDBACK_SUBMITTED = "已提交:{options}"
FEEDBACK_ALREADY = "这份反馈已经提交过了。"

FEEDBACK_NOTICE_TITLE = "客户声音 · {customer}"
FEEDBACK_NOTICE_SOURCE = {"webhook": "客户填写的反馈表", "card": "{member}填写的反馈卡片"}
FEEDBACK_NOTICE_HEAD = "### 客户声音 · {customer}\n来源:{source}\n\n**客户勾选**:{options}"
FEEDBACK_NOTICE_COMMENT = "**客户留言**:{comment}"
FEEDBACK_NOTICE_ACTIONS = "**已为您安排**"
FEEDBACK_ACTION_PUSH = "- 推送《{title}》(见下文)"
FEEDBACK_ACTION_PUSH_MISSING = "- 物料《{title}》不在话术库中,已跳过(请联系管理员)"
FEEDBACK_ACTION_FLAG = "- 客户已标记:**{flag}**"
FEEDBACK_NO_ACTIONS = "这些反馈暂无对应的自动动作,请结合客户情况安排跟进。"
FEEDBACK_PACK_NOTE = "客户反馈“{option}”"

# --- feedback webhook (machine-facing, shown to whoever integrates the form tool) -----------------
WEBHOOK_DISABLED = "客户反馈接口未启用:请先在配置中设置 feedback.secret。"
WEBHOOK_NO_SECRET = "缺少认证:请在请求头 X-Pacebot-Secret 中提供共享密钥,或在 X-Pacebot-Signature 中提供 HMAC 签名。"
WEBHOOK_BAD_SECRET = "认证失败:共享密钥或签名不正确。"
WEBHOOK_TOO_LARGE = "请求体过大(上限 {limit} 字节)。"
WEBHOOK_BAD_JSON = "请求体不是合法的 JSON 对象。"
WEBHOOK_BAD_FIELD = "字段 {field} 无效:{reason}"
WEBHOOK_UNKNOWN_CUSTOMER_ID = "找不到客户 id={id},未记录本次反馈。"
WEBHOOK_UNKNOWN_CUSTOMER_NAME = "找不到名为「{name}」的客户,未记录本次反馈。请核对客户名称,或改用 {{\"id\": 客户编号}}。"
WEBHOOK_AMBIGUOUS_CUSTOMER = "有{count}个客户都叫「{name}」(编号 {ids}),未记录本次反馈。请改用 {{\"id\": 客户编号}} 指明。"
WEBHOOK_ACCEPTED = "已接收,稍后处理。"
WEBHOOK_DUPLICATE = "这条反馈(相同 id)已经接收过,已忽略。"

# --- /帮助: what the command list says -------------------------------------------------------
CMD_COMPETITOR = "上报竞品动态,获取应对话术"
CMD_COMPETITOR_USAGE = "竞品名 动态 [客户]"
CMD_SCRIPT = "查找话术包/物料"
CMD_SCRIPT_USAGE = "关键词"
CMD_FEEDBACK = "填写客户反馈卡片"
CMD_FEEDBACK_USAGE = "客户"
