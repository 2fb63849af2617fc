"""What the bot says when a touch message needs a word more: chit-chat, choices, confirmations."""

CHIT_CHAT_GREETING = "您好,我在。直接发跟进内容就能记录,例如:\n华东建材 张总 电话20分钟 聊了报价细节,下周三上门拜访"
CHIT_CHAT_ACK = "好的 👌"

CHOICES_TITLE = "可直接点选"
ASK_WHICH_DAY = "「{text}」里的“{expression}”是哪天?"
ASK_WHEN_BODY = "「{action}」哪天做?"
PAST_DATE_BODY = "「{text}」里的日期已经过去,换成哪天?"
UNSURE_BUTTON = "不确定"
UNSURE_LABEL = "{first}–{latest}之间"  # the range kept when the rep is not sure
CHOICE_LABEL = "{relative}({date})"
CHOICE_ACTION_LABEL = "{relative}{action}"
DEFAULT_NEXT_ACTION = "再联系"
USUAL_ACTIONS = ("电话跟进", "上门拜访", "发资料")
ASK_ACTION_BODY = "{date}要做什么?"
RELATIVE_DAYS = {0: "今天", 1: "明天", 2: "后天"}
NEXT_WEEK_DAY = "下{weekday}"
THIS_WEEK_DAY = "{weekday}"

FIELD_CONFIRM = "请确认"
CONFIRM_CUSTOMER = "是指「{customer}」吗?"
CONFIRM_DATE = "下次动作是{date}吗?"
CONFIRM_YES_BUTTON = "对的"
CONFIRM_NO_BUTTON = "不对,撤销"
CONFIRMED_NOTE = "已确认"
