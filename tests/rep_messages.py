"""Touch messages as reps type them on a phone, one table per class of everyday wording.

Shared by ``tests/test_rep_messages.py`` and ``bench/parser_questions.py`` (which counts the
follow-up questions the whole table would cause). Data only: no assertions here.

Today is Thursday 2026-12-03 unless a case says otherwise.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from domain.enums import Channel

D = datetime.date
THU = D(2026, 12, 3)  # Thursday
P, W, V, E, OT = Channel.PHONE, Channel.WECHAT, Channel.VISIT, Channel.EMAIL, Channel.OTHER

# The rep's customers: (id, name, contacts)
CUSTOMERS = (
    (1, "华东建材", ("王建国",)),
    (2, "金地置业", ("李娜",)),
    (3, "恒通物流", ("张伟",)),
    (4, "鑫达贸易", ("陈静",)),
    (5, "宏远建设", ("刘强",)),
    (6, "蓝天环保", ("赵敏",)),
)


@dataclass(frozen=True)
class Stall:
    text: str
    kinds: frozenset[str]  # expected stall classes; empty: no stall (progress, or negated)


def stall(text: str, *kinds: str) -> Stall:
    return Stall(text, frozenset(kinds))


# 1. Stall variants -----------------------------------------------------------------------------
STALLS = [
    stall("华东建材 打了两次没人理", "no_answer"),
    stall("恒通物流 call了3次 无人接听", "no_answer"),
    stall("金地置业 电话没人接 晚点再打", "no_answer"),
    stall("鑫达 打过去关机了", "no_answer"),
    stall("宏远建设 王总电话一直占线", "no_answer"),
    stall("蓝天环保 拨了好几个都没接通", "no_answer"),
    stall("华东建材 客户正开会让晚点打", "busy"),
    stall("金地置业 李总出差了 不在公司", "busy"),
    stall("恒通物流 张总在外地 说不方便聊", "busy"),
    stall("鑫达贸易 客户说还要想想", "thinking"),
    stall("宏远建设 电话10min 他们说考虑考虑", "thinking"),
    stall("蓝天环保 对方要再斟酌一下", "thinking"),
    stall("华东建材 过阵子再聊吧", "postponed"),
    stall("金地置业 客户说年后再说", "postponed"),
    stall("恒通物流 项目暂缓了 先放放", "postponed"),
    stall("鑫达贸易 wx 等老板拍板", "waiting"),
    stall("宏远建设 还在走流程 等领导批", "waiting"),
    stall("蓝天环保 等他们财务确认", "waiting"),
    stall("华东建材 wx发了方案 已读没回", "ignored"),
    stall("金地置业 微信消息一直没回", "ignored"),
    stall("恒通物流 发了报价 石沉大海", "ignored"),
    stall("鑫达 vx不回 电话也不接", "ignored", "no_answer"),
    stall("宏远建设 再约时间", "postponed"),  # a configured phrase is also a class member
    # negatives: looks like a stall, made progress or says the opposite
    stall("华东建材 本来说再考虑 后来直接签了合同"),
    stall("金地置业 客户说不用再等领导了 下周一签约"),
    stall("恒通物流 电话20分钟 张总不忙 聊得挺好 定了下周三签合同"),
    stall("鑫达贸易 之前没人接 今天打通了 聊了30min"),
    stall("宏远建设 老板拍板了 下周付款"),
    stall("蓝天环保 客户已经回复了 同意报价"),
    stall("华东建材 不用考虑了 直接下单"),
    stall("金地置业 拜访1h 客户很爽快 当场定了"),
    stall("恒通物流 wx 聊了方案细节 明天发报价"),
    stall("鑫达贸易 我出差去苏州 顺路拜访了陈总 1h"),
    stall("宏远建设 试用效果不理想 下周调参数"),
    stall("蓝天环保 电话 对方还没回款 下周催"),
    stall("华东建材 王总说我再说明一下方案 就签"),
]


@dataclass(frozen=True)
class Due:
    text: str
    due: datetime.date | None  # expected next due date (vague: the range's first day)
    action: str | None = None  # a word the next action must contain
    today: datetime.date = THU
    vague: bool = False
    part: str | None = None  # expected part of day


# 2. Same-day and part-of-day actions ------------------------------------------------------------
SAME_DAY = [
    Due("华东建材 电话10分钟 傍晚再联系", THU, "联系", part="傍晚"),
    Due("金地置业 今儿下午过去一趟", THU, "过去", part="下午"),
    Due("恒通物流 wx聊了 晚上发报价", THU, "发报价", part="晚上"),
    Due("鑫达贸易 周四拜访", THU, "拜访"),
    Due("宏远建设 电话 下午再打一次", THU, "打", part="下午"),
    Due("蓝天环保 中午约了吃饭", THU, "吃饭", part="中午"),
    Due("华东建材 call 5min 等会再call", THU, "call"),
    Due("金地置业 今晚把合同发过去", THU, "合同"),
    Due("恒通物流 wx 下班前发方案", THU, "方案"),
    Due("鑫达贸易 电话 待会再确认一下", THU, "确认"),
    Due("宏远建设 上午电话聊了 下午去现场", THU, "现场", part="下午"),
    Due("蓝天环保 微信 今天下午4点再打", THU, "打", part="下午"),
    Due("鑫达贸易 周四下午送样品", THU, "样品", part="下午"),
    Due("宏远建设 电话 晚上8点前回复客户", THU, "回复", part="晚上"),
    Due("蓝天环保 wx 礼拜四晚上过去", THU, "过去", part="晚上"),
    # negatives
    Due("华东建材 明天下午过去", D(2026, 12, 4), "过去", part="下午"),
    Due("金地置业 上午拜访了王总 1h", None),
    Due("恒通物流 下午拜访了 聊了报价", None),
]

# 3. Which date belongs to the action ------------------------------------------------------------
OWNERSHIP = [
    Due("华东建材 周日客户不在 下周二拜访", D(2026, 12, 8), "拜访"),
    Due("金地置业 客户周五出差 下周一电话", D(2026, 12, 7), "电话"),
    Due("恒通物流 他们明天开会 后天再打", D(2026, 12, 5), "打"),
    Due("宏远建设 老板下周出差 这周五前发方案", D(2026, 12, 4), "方案"),
    Due("恒通物流 wx 下周三 去现场", D(2026, 12, 9), "现场"),
    Due("鑫达贸易 客户说下周开会 周五再跟进", D(2026, 12, 4), "跟进"),
    Due("宏远建设 昨天王总不在 周一再去", D(2026, 12, 7), "去"),
    Due("蓝天环保 上周发的方案 下周二回访", D(2026, 12, 8), "回访"),
    Due("华东建材 客户15号才回来 16号上门", D(2026, 12, 16), "上门"),
    Due("金地置业 周六他们休息 下周一再约", D(2026, 12, 7), "约"),
    Due("恒通物流 下下周一签合同", D(2026, 12, 14), "合同"),
    Due("宏远建设 周三没见着人 礼拜五再去", D(2026, 12, 4), "去"),
    Due("蓝天环保 客户月底放假 下周四送样", D(2026, 12, 10), "送样"),
    # vague: the week, never one day
    Due("华东建材 下周再联系", D(2026, 12, 7), "联系", vague=True),
    Due("金地置业 下周找时间拜访", D(2026, 12, 7), "拜访", vague=True),
    Due("鑫达贸易 下礼拜再说", D(2026, 12, 7), vague=True),
    Due("恒通物流 电话 过几天再跟进", D(2026, 12, 5), "跟进", vague=True),
]

# 5. Working days on the holiday calendar ----------------------------------------------------------
# chinese_calendar 2026: National Day off 10-01..10-07, make-up working Saturday 10-10 and Sunday
# 09-20, Mid-Autumn off Friday 09-25.
WORKDAYS = [
    Due("华东建材 电话 3个工作日后再联系", D(2026, 10, 9), "联系", today=D(2026, 9, 29)),
    Due("金地置业 wx 2个工作日内回复", D(2026, 10, 8), "回复", today=D(2026, 9, 29)),
    Due("恒通物流 五个工作日后送样", D(2026, 10, 12), "送样", today=D(2026, 9, 29)),
    Due("鑫达贸易 1个工作日后回访", D(2026, 10, 10), "回访", today=D(2026, 10, 9)),
    Due("宏远建设 两个工作日后再打", D(2026, 10, 12), "打", today=D(2026, 10, 9)),
    Due("蓝天环保 拜访1h 一个工作日后发方案", D(2026, 10, 8), "方案", today=D(2026, 9, 30)),
    Due("华东建材 call 三个工作日后出报价", D(2026, 10, 10), "报价", today=D(2026, 9, 30)),
    Due("金地置业 3个工作日内给答复", D(2026, 10, 12), "答复", today=D(2026, 10, 8)),
    Due("恒通物流 微信 1个工作日后再问", D(2026, 9, 20), "问", today=D(2026, 9, 18)),
    Due("鑫达贸易 电话 2个工作日后上门", D(2026, 9, 29), "上门", today=D(2026, 9, 24)),
    Due("宏远建设 十个工作日后签合同", D(2026, 10, 19), "合同", today=D(2026, 9, 29)),
    Due("蓝天环保 wx 4个工作日后跟进", D(2026, 10, 12), "跟进", today=D(2026, 9, 30)),
    Due("华东建材 电话 1个工作日后回电", D(2026, 10, 8), "回电", today=D(2026, 10, 1)),
    Due("金地置业 5个工作日内出方案", D(2026, 10, 14), "方案", today=D(2026, 10, 8)),
    Due("恒通物流 拜访 3个工作日后再约", D(2026, 9, 30), "约", today=D(2026, 9, 24)),
    # negative: calendar days stay calendar days
    Due("鑫达贸易 电话 3天后再打", D(2026, 10, 2), "打", today=D(2026, 9, 29)),
]


@dataclass(frozen=True)
class Act:
    text: str
    channel: Channel | None
    action: str | None = None  # a word the next action must contain (None: no next action)
    due: datetime.date | None = None
    today: datetime.date = THU


# 4. Unparsed actions and channels ----------------------------------------------------------------
ACTIONS = [
    Act("华东建材 礼拜五再聊", None, "聊", D(2026, 12, 4)),
    Act("金地置业 拨了3次 下周二再拨", P, "拨", D(2026, 12, 8)),
    Act("恒通物流 回电 10min", P),
    Act("鑫达贸易 电联 聊了价格", P),
    Act("宏远建设 call王总 20min", P),
    Act("蓝天环保 wx 发了资料", W),
    Act("华东建材 vx语音 半小时", W),
    Act("金地置业 发了个vx 明天再问", W, "问", D(2026, 12, 4)),
    Act("恒通物流 weixin 聊了几句", W),
    Act("鑫达贸易 企微 发了报价", W),
    Act("宏远建设 打了个电话 周五再去现场", P, "现场", D(2026, 12, 4)),
    Act("蓝天环保 打过去聊了15分钟", P),
    Act("华东建材 给王总去了个电话", P),
    Act("金地置业 钉钉上聊了下", OT),
    Act("恒通物流 微信上聊 周一再约", W, "约", D(2026, 12, 7)),
    Act("鑫达贸易 周一再谈价格", None, "价格", D(2026, 12, 7)),
    Act("宏远建设 礼拜一再催款", None, "催款", D(2026, 12, 7)),
    Act("蓝天环保 拨过去 没说两句就挂了", P),
    Act("华东建材 打了wx电话 聊了一会", W),
]


@dataclass(frozen=True)
class Summary:
    text: str
    keeps: tuple[str, ...]  # words the summary keeps
    drops: tuple[str, ...]  # words the summary must not contain


# 6. Summaries -----------------------------------------------------------------------------------
SUMMARIES = [
    Summary("华东建材 王经理 电话 5分钟", ("王经理", "电话", "5分钟"), ("华东建材",)),
    Summary("金地置业 李总 wx 聊了付款方式 明天发合同", ("李总", "wx", "付款方式"), ("金地置业", "明天", "发合同")),
    Summary("恒通物流 张伟 拜访1h 看了仓库 下周三报价", ("张伟", "拜访", "1h", "仓库"), ("恒通物流", "下周三")),
    Summary("鑫达贸易 陈姐 电话 20min 催了回款", ("陈姐", "电话", "催了回款"), ("鑫达贸易",)),
    Summary("宏远建设 刘工 现场 量了尺寸 周五出图", ("刘工", "现场", "量了尺寸"), ("宏远建设", "周五", "出图")),
    Summary("蓝天环保 赵总 微信语音 十分钟", ("赵总", "微信语音", "十分钟"), ("蓝天环保",)),
    Summary("华东建材 和王总吃了个饭 聊了明年的量", ("王总", "吃了个饭", "明年的量"), ("华东建材",)),
    Summary("金地置业 call 李娜 确认了样品", ("call", "李娜", "确认了样品"), ("金地置业",)),
    Summary("恒通物流 张总电话 30min 后天再约", ("张总电话", "30min"), ("恒通物流", "后天", "再约")),
    Summary("鑫达贸易 email 发了报价单给陈静", ("email", "报价单", "陈静"), ("鑫达贸易",)),
    Summary("宏远建设 王经理 电话 5分钟 下周二上门", ("王经理", "电话", "5分钟"), ("宏远建设", "下周二", "上门")),
    Summary("蓝天环保 视频会议 1.5h 技术交流", ("视频会议", "1.5h", "技术交流"), ("蓝天环保",)),
    Summary("华东建材 见了采购刘经理 聊了账期", ("采购刘经理", "账期"), ("华东建材",)),
    Summary("金地置业 老李 wx 发了资料 周一跟进", ("老李", "wx", "发了资料"), ("金地置业", "周一", "跟进")),
    Summary("恒通物流 电话 张伟 10分钟 月底前签", ("电话", "张伟", "10分钟"), ("恒通物流", "月底")),
    Summary("华东建材王经理电话5分钟", ("王经理", "电话", "5分钟"), ("华东建材",)),
    Summary("金地置业李总wx聊了首付 周五去售楼处", ("李总", "wx", "首付"), ("金地置业", "周五", "售楼处")),
]

# 7. Chit-chat: answered briefly, never a customer --------------------------------------------------
CHIT_CHAT = [
    "你好", "在吗", "谢谢", "好的", "hello", "hi", "早上好", "ok", "嗯嗯", "收到", "谢谢啦", "辛苦了",
    "在不在", "你好呀", "哈喽", "好的谢谢", "thx", "晚安", "?", "👍",
]
NOT_CHIT_CHAT = [
    "好的 明天去华东建材",
    "谢谢王总 华东建材 电话10分钟",
    "在吗 华东建材电话没人接",
    "收到 金地置业 周五签合同",
    "ok 恒通物流 wx 聊了方案",
    "远大重工 电话 20分钟",
]


@dataclass(frozen=True)
class Slip:
    text: str
    customer_id: int | None
    channel: Channel | None
    duration: int | None
    due: datetime.date | None = None


# 8. Traditional characters, homophone slips and colloquial numbers ------------------------------
SLIPS = [
    Slip("華東建材 電話二十分鐘 下週三再拜訪", 1, P, 20, D(2026, 12, 9)),
    Slip("金地置業 微信聊了半個鐘頭", 2, W, 30),
    Slip("恆通物流 見面 一個半小時", 3, V, 90),
    Slip("鑫達貿易 發郵件 報價單", 4, E, None),
    Slip("宏遠建設 張總 電話 三十分鐘 下週一再聯繫", 5, P, 30, D(2026, 12, 7)),
    Slip("华东建材 店话10分钟", 1, P, 10),
    Slip("金地置业 点话 20分钟", 2, P, 20),
    Slip("恒通物流 威信聊了 俩小时", 3, W, 120),
    Slip("鑫达贸易 微心 聊了二十来分钟", 4, W, 20),
    Slip("宏远建设 拜方王总 个把小时", 5, V, 60),
    Slip("蓝天环保 败访 一个钟头", 6, V, 60),
    Slip("华东建材 油件发了资料", 1, E, None),
    Slip("金地置业 电话 两小是", 2, P, 120),
    Slip("金地置业 电话 两个钟头", 2, P, 120),
    Slip("恒通物流 电话 十来分种", 3, P, 10),
    Slip("鑫达贸易 电话 俩钟头", 4, P, 120),
    Slip("宏远建设 微信 30分中", 5, W, 30),
    Slip("蓝天环保 电化 半小时", 6, P, 30),
    Slip("華東建才 拜訪 一刻鐘", 1, V, 15),
]
