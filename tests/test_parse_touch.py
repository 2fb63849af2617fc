"""Touch messages as reps write them → channel, duration, next action, due date, proposal flag."""

from __future__ import annotations

import datetime
import random

import pytest

from domain.parsing.touch import (
    Channel,
    ParsedTouch,
    detect_channel,
    parse_duration,
    parse_next_action,
    parse_touch,
)

D = datetime.date
SAT = D(2026, 11, 28)  # Saturday
SUN = D(2026, 11, 29)
LATE_DEC = D(2026, 12, 29)  # Tuesday

P, W, V, E, OT = Channel.PHONE, Channel.WECHAT, Channel.VISIT, Channel.EMAIL, Channel.OTHER


def case(
    text: str,
    customer: str,
    channel: Channel | None,
    duration: int | None,
    due: datetime.date | None,
    action: str | None,
    proposal: bool = False,
    today: datetime.date = SAT,
):
    return pytest.param(text, customer, today, channel, duration, due, action, proposal, id=text)


TOUCHES = [
    # the reference message, and its punctuation / spacing variants
    case(
        "华东建材 张总 电话20分钟 聊了报价细节,下周三上门拜访", "华东建材", P, 20, D(2026, 12, 2), "上门拜访"
    ),
    case(
        "华东建材 张总 电话20分钟 聊了报价细节 下周三上门拜访", "华东建材", P, 20, D(2026, 12, 2), "上门拜访"
    ),
    case(
        "华东建材，张总，电话二十分钟，聊了报价细节，下周三上门拜访",
        "华东建材",
        P,
        20,
        D(2026, 12, 2),
        "上门拜访",
    ),
    case(
        "华东建材　张总　电话２０分钟　聊了报价细节，下周三上门拜访",
        "华东建材",
        P,
        20,
        D(2026, 12, 2),
        "上门拜访",
    ),
    case(
        "恒通物流  电话   20分钟   聊了报价细节  ， 下周三  上门拜访  ",
        "恒通物流",
        P,
        20,
        D(2026, 12, 2),
        "上门拜访",
    ),
    case(
        "宏远建设 电话 20分钟 聊了报价细节。下周三上门拜访。", "宏远建设", P, 20, D(2026, 12, 2), "上门拜访"
    ),
    case("金地置业 电话 20分钟 聊了报价细节;下周三上门拜访", "金地置业", P, 20, D(2026, 12, 2), "上门拜访"),
    case("华西建材 电话 20 分钟 讨论价格 下周三 上门拜访", "华西建材", P, 20, D(2026, 12, 2), "上门拜访"),
    case(
        "华东建材 张总 电话 20分钟 聊了报价细节 下周三上门拜访 带上样品",
        "华东建材",
        P,
        20,
        D(2026, 12, 2),
        "上门拜访",
    ),
    # phone
    case("宏远建设 打电话 5分钟 没接通 明天再打", "宏远建设", P, 5, D(2026, 11, 29), "再打"),
    case("鑫达贸易 打了个电话 三分钟 不在 明天上午再打", "鑫达贸易", P, 3, D(2026, 11, 29), "再打"),
    case("恒通物流 电话一刻钟 催款 月底前回款", "恒通物流", P, 15, D(2026, 11, 30), "回款"),
    case(
        "明远科技 电话 1.5小时 讨论技术参数,12月5日前提交标书", "明远科技", P, 90, D(2026, 12, 5), "提交标书"
    ),
    case("华东建材 电话 二十分钟 周五之前把报价单发过去", "华东建材", P, 20, D(2026, 12, 4), "报价单发过去"),
    case("金地置业 致电 15分钟 确认需求 下周五上门", "金地置业", P, 15, D(2026, 12, 4), "上门"),
    case("华东建材 电联 10分钟 下礼拜二送样品", "华东建材", P, 10, D(2026, 12, 1), "送样品"),
    case("宏远建设 call了20 mins，约好12/5见面", "宏远建设", P, 20, D(2026, 12, 5), "见面"),
    case("华东建材 电话 1h 下周一 发合同", "华东建材", P, 60, D(2026, 11, 30), "发合同"),
    case("明远科技 电话 20分钟，明天下午3点上门拜访", "明远科技", P, 20, D(2026, 11, 29), "上门拜访"),
    case("明远科技 电话 二十分钟 三天以后再联系", "明远科技", P, 20, D(2026, 12, 1), "再联系"),
    case("恒通物流 电话 5分钟 下个星期五上门", "恒通物流", P, 5, D(2026, 12, 4), "上门"),
    case("华西建材 电话 半小时 年底前回款", "华西建材", P, 30, D(2026, 12, 31), "回款"),
    case("宏远建设 电话 十分钟 下周 周三 去现场", "宏远建设", P, 10, D(2026, 12, 2), "去现场"),
    case("鑫达贸易 电话 20分钟 下次动作:周三前发合同", "鑫达贸易", P, 20, D(2026, 12, 2), "发合同"),
    case("华东建材 电话 20分钟 下次：下周三上门拜访", "华东建材", P, 20, D(2026, 12, 2), "上门拜访"),
    case("明远科技 打电话 20分钟 12.5前报价", "明远科技", P, 20, D(2026, 12, 5), "报价"),
    case("华东建材 电话10分钟 约了12月8号拜访", "华东建材", P, 10, D(2026, 12, 8), "拜访"),
    case("华东建材 电话约了下周三见面", "华东建材", P, None, D(2026, 12, 2), "见面"),
    case("华东建材 电话 10分钟 3个工作日内回复", "华东建材", P, 10, D(2026, 12, 2), "回复"),
    case("华东建材 电话 聊了20来分钟 月底", "华东建材", P, 20, D(2026, 11, 30), None),
    case("鑫达贸易 通话10分钟 客户说下周开会 回头再联系", "鑫达贸易", P, 10, None, "再联系"),
    case("华西建材 今天上午电话 10分钟 今晚发资料", "华西建材", P, 10, D(2026, 11, 28), "发资料"),
    case("金地置业 电话 20分钟 还没出方案 下周发", "金地置业", P, 20, D(2026, 11, 30), "发"),
    # phone, messages missing the next action or the duration
    case("华西建材 电话20分钟", "华西建材", P, 20, None, None),
    case("宏远建设 电话沟通，客户暂时没需求", "宏远建设", P, None, None, None),
    case("华东建材 电话 无人接听", "华东建材", P, None, None, None),
    case("鑫达贸易 电话20分钟下周三", "鑫达贸易", P, 20, D(2026, 12, 2), None),
    case("恒通物流 电话 二十分钟, 下周三", "恒通物流", P, 20, D(2026, 12, 2), None),
    case("华东建材 电话,下次带样品过去", "华东建材", P, None, None, "带样品过去"),
    # WeChat
    case("鑫达贸易 微信沟通半小时,发了定制方案,周五前确认", "鑫达贸易", W, 30, D(2026, 12, 4), "确认", True),
    case("华西建材 李总 微信语音 20min 介绍了新品 3天后回访", "华西建材", W, 20, D(2026, 12, 1), "回访"),
    case("宏远建设 微信 发了报价单 等客户反馈", "宏远建设", W, None, None, None, True),
    case("华东建材 微信聊了几句", "华东建材", W, None, None, None),
    case("鑫达贸易 视频通话 半个小时 演示了系统，后天发方案", "鑫达贸易", W, 30, D(2026, 11, 30), "发方案"),
    case("华西建材 wx 聊了10分钟 下周 再约", "华西建材", W, 10, D(2026, 11, 30), "再约"),
    case("恒通物流 微信 发了产品资料 两天后电话回访", "恒通物流", W, None, D(2026, 11, 30), "电话回访"),
    case("金地置业 微信 十几分钟 下月中旬再联系", "金地置业", W, 10, D(2026, 12, 15), "再联系"),
    case("华西建材 微信 视频 45分钟 10天后复盘", "华西建材", W, 45, D(2026, 12, 8), "复盘"),
    case("金地置业 微信 发了方案 下周找时间上门", "金地置业", W, None, D(2026, 11, 30), "上门", True),
    case("宏远建设 微信 发了修改后的方案 下周二前确认", "宏远建设", W, None, D(2026, 12, 1), "确认", True),
    case("华西建材 wechat 30min，月中前给答复", "华西建材", W, 30, D(2026, 12, 15), "给答复"),
    case("恒通物流 微信 5分钟 周六再约", "恒通物流", W, 5, D(2026, 11, 28), "再约"),
    case("金地置业 微信 聊了二十分钟, 准备下个月5号签约", "金地置业", W, 20, D(2026, 12, 5), "签约"),
    case(
        "华东建材 微信发了报价单 客户说明天开会讨论,下周一我再跟进",
        "华东建材",
        W,
        None,
        D(2026, 11, 30),
        "再跟进",
        True,
    ),
    case("华东建材 微信 发了报价 过两天再问", "华东建材", W, None, D(2026, 11, 30), "再问", True),
    case(
        "华东建材 微信 发了报价单和方案 明天电话跟进", "华东建材", W, None, D(2026, 11, 29), "电话跟进", True
    ),
    case("华东建材 微信电话 两三分钟 下周一再打", "华东建材", W, 2, D(2026, 11, 30), "再打"),
    # visits
    case(
        "恒通物流 上门拜访一个半小时 见了采购经理,下周一发报价单",
        "恒通物流",
        V,
        90,
        D(2026, 11, 30),
        "发报价单",
    ),
    case(
        "金地置业 周总 见面聊了两个小时,约了下周二去工地看样板",
        "金地置业",
        V,
        120,
        D(2026, 12, 1),
        "工地看样板",
    ),
    case("华东建材 王工 现场勘察40来分钟, 下下周一再去", "华东建材", V, 40, D(2026, 12, 7), "再去"),
    case("鑫达贸易 吃饭 聊了合作意向 下个月初签合同", "鑫达贸易", V, None, D(2026, 12, 1), "签合同"),
    case("金地置业 上门 拜访 1个小时 下次带样品", "金地置业", V, 60, None, "带样品"),
    case(
        "明远科技 面谈 四十多分钟 客户说预算下月初定，下周四再跟进",
        "明远科技",
        V,
        40,
        D(2026, 12, 3),
        "再跟进",
    ),
    case("金地置业 到店 聊了一个小时 十二月五日再来", "金地置业", V, 60, D(2026, 12, 5), "再来"),
    case("明远科技 上门拜访 2小时，演示产品，月底签约", "明远科技", V, 120, D(2026, 11, 30), "签约"),
    case("宏远建设 见面 半小时 1月5日前出方案", "宏远建设", V, 30, D(2027, 1, 5), "出方案"),
    case("华西建材 来访 聊了一小时，计划下周三报价", "华西建材", V, 60, D(2026, 12, 2), "报价"),
    case("恒通物流 上门拜访 一个半小时 大后天再约", "恒通物流", V, 90, D(2026, 12, 1), "再约"),
    case("华东建材 拜访 3小时 聊了合同条款 2026-12-10 签约", "华东建材", V, 180, D(2026, 12, 10), "签约"),
    case("金地置业 见面 吃饭 两个半小时 下周再约", "金地置业", V, 150, D(2026, 11, 30), "再约"),
    case("鑫达贸易 上门 半小时 下周三见", "鑫达贸易", V, 30, D(2026, 12, 2), "见"),
    case("华东建材 今天上门拜访了张总 一小时 明天发方案", "华东建材", V, 60, D(2026, 11, 29), "发方案"),
    case("鑫达贸易 拜访 40分钟 两个星期后回访", "鑫达贸易", V, 40, D(2026, 12, 12), "回访"),
    case("鑫达贸易 拜访 1个小时 下周日再去", "鑫达贸易", V, 60, D(2026, 12, 6), "再去"),
    case("华东建材 拜访 半小时 下周三", "华东建材", V, 30, D(2026, 12, 2), None),
    case("明远科技 上门 吃了个饭 聊了三个小时 后天再电话", "明远科技", V, 180, D(2026, 11, 30), "再电话"),
    case(
        "华东建材 上门 见了张总和李工 聊了1个半小时 下周三带技术过来交流",
        "华东建材",
        V,
        90,
        D(2026, 12, 2),
        "带技术过来交流",
    ),
    case("华东建材 拜访 三刻钟 下周五下午再去", "华东建材", V, 45, D(2026, 12, 4), "再去"),
    case("华东建材 现场 1小时20分钟 下周一复测", "华东建材", V, 80, D(2026, 11, 30), "复测"),
    # e-mail and other channels
    case("华东建材 邮件发了修改方案,下周三电话确认", "华东建材", E, None, D(2026, 12, 2), "电话确认", True),
    case("恒通物流 email 发了报价 下周跟进", "恒通物流", E, None, D(2026, 11, 30), "跟进", True),
    case(
        "明远科技 邮件 发送投标文件 本周日前确认收到", "明远科技", E, None, D(2026, 11, 29), "确认收到", True
    ),
    case("华东建材 邮箱 发合同 下周一前回签", "华东建材", E, None, D(2026, 11, 30), "回签"),
    case("鑫达贸易 短信 提醒付款 明天电话跟进", "鑫达贸易", OT, None, D(2026, 11, 29), "电话跟进"),
    case(
        "恒通物流 腾讯会议 一个小时 讲解方案 下周三前给反馈",
        "恒通物流",
        OT,
        60,
        D(2026, 12, 2),
        "给反馈",
        True,
    ),
    # today's doings after the next action, reported speech, vague times
    case("华东建材 今天拜访了 明天再去一趟", "华东建材", V, None, D(2026, 11, 29), "再去一趟"),
    case("华东建材 电话 两天后再打 今天聊了十分钟", "华东建材", P, 10, D(2026, 11, 30), "再打"),
    case("华东建材 去了现场，量了尺寸，方案下周给", "华东建材", V, None, D(2026, 11, 30), "方案"),
    case("华东建材 打电话过去没人接 晚点再打", "华东建材", P, None, None, "晚点再打"),
    case("华东建材 张总电话说下周三开会", "华东建材", P, None, None, None),
    case("华东建材 上门 2个多小时 下个礼拜三 送合同过去", "华东建材", V, 120, D(2026, 12, 2), "送合同过去"),
    case(
        "华东建材 电话 20分钟 约了张总下周三下午两点在他们公司面谈", "华东建材", P, 20, D(2026, 12, 2), "面谈"
    ),
    case("华东建材 电话 说好了下周一签合同", "华东建材", P, None, D(2026, 11, 30), "签合同"),
    case(
        "华东建材 拜访张总 40分钟 他们月底要招标 我们下周一前把标书做好",
        "华东建材",
        V,
        40,
        D(2026, 11, 30),
        "标书做好",
    ),
    case("华东建材 电话 准备 下周三上门", "华东建材", P, None, D(2026, 12, 2), "上门"),
    case("华东建材 电话 下一步: 下周三上门", "华东建材", P, None, D(2026, 12, 2), "上门"),
    case("华东建材 上门拜访 张总不在 见了采购 明天电话", "华东建材", V, None, D(2026, 11, 29), "电话"),
    case("华东建材 电话没打通，发了微信，等回复", "华东建材", P, None, None, None),
    # no channel in today's part
    case("华西建材 上门拜访定在12月3日", "华西建材", None, None, D(2026, 12, 3), "上门拜访"),
    case("明远科技 发报价单周五前", "明远科技", None, None, D(2026, 12, 4), "发报价单"),
    case("宏远建设 下周三, 上门拜访", "宏远建设", None, None, D(2026, 12, 2), "上门拜访"),
    # another today: across the year end, and on a Sunday
    case("华东建材 电话 20分钟 下周三上门", "华东建材", P, 20, D(2027, 1, 6), "上门", today=LATE_DEC),
    case("华东建材 电话 1月5日前发合同", "华东建材", P, None, D(2027, 1, 5), "发合同", today=LATE_DEC),
    case("华东建材 电话 下周日再拜访", "华东建材", P, None, D(2026, 12, 6), "再拜访", today=SUN),
    case("华东建材 见面 月底前签约", "华东建材", V, None, D(2026, 12, 31), "签约", today=LATE_DEC),
]


@pytest.mark.parametrize(
    ("text", "customer", "today", "channel", "duration", "due", "action", "proposal"), TOUCHES
)
def test_touch_table(
    text: str,
    customer: str,
    today: datetime.date,
    channel: Channel | None,
    duration: int | None,
    due: datetime.date | None,
    action: str | None,
    proposal: bool,
) -> None:
    start = text.index(customer)
    parsed = parse_touch(text, today, customer_span=(start, start + len(customer)))
    assert parsed.channel == channel
    assert parsed.duration_minutes == duration
    assert parsed.next_due == due
    if action is None:
        assert parsed.next_action is None
    else:
        assert parsed.next_action is not None and action in parsed.next_action
    assert parsed.proposal is proposal
    assert customer not in parsed.summary
    if due is not None:
        assert parsed.next_due_expression is not None
        assert parsed.next_due_expression in text
        assert parsed.next_due_expression not in parsed.summary
    else:
        assert parsed.next_due_expression is None


def test_reference_example_exactly() -> None:
    text = "华东建材 张总 电话20分钟 聊了报价细节,下周三上门拜访"
    assert parse_touch(text, SAT, customer_span=(0, 4)) == ParsedTouch(
        channel=Channel.PHONE,
        duration_minutes=20,
        summary="张总 电话20分钟 聊了报价细节",
        next_action="上门拜访",
        next_due=D(2026, 12, 2),
        next_due_expression="下周三",
        proposal=False,
    )


@pytest.mark.parametrize(
    ("text", "summary"),
    [
        ("华东建材 张总 电话20分钟 聊了报价细节,下周三上门拜访", "张总 电话20分钟 聊了报价细节"),
        ("华东建材 电话沟通，下周三上门，今天先发了资料", "电话沟通，今天先发了资料"),
        ("华东建材 微信 发了方案。", "微信 发了方案"),
        ("华东建材 电话约了下周三见面", "电话"),
        ("华东建材  电话   20分钟  ", "电话 20分钟"),
    ],
)
def test_summary_text(text: str, summary: str) -> None:
    assert parse_touch(text, SAT, customer_span=(0, 4)).summary == summary


def test_without_customer_span_everything_stays_in_summary() -> None:
    parsed = parse_touch("电话20分钟 聊了报价细节,明天发报价单", SAT)
    assert parsed.summary == "电话20分钟 聊了报价细节"
    assert parsed.next_action == "发报价单"
    assert parsed.next_due == D(2026, 11, 29)


def test_date_inside_customer_name_is_not_a_due_date() -> None:
    parsed = parse_touch("明天科技 电话 10分钟 聊了需求", SAT, customer_span=(0, 4))
    assert parsed.next_due is None
    assert parsed.next_action is None
    assert parsed.channel is Channel.PHONE


def test_channel_comes_from_today_not_from_the_next_action() -> None:
    parsed = parse_touch("华东建材 电话20分钟 聊了报价细节,下周三上门拜访", SAT, customer_span=(0, 4))
    assert parsed.channel is Channel.PHONE
    parsed = parse_touch("华东建材 上门拜访 半小时, 明天电话确认", SAT, customer_span=(0, 4))
    assert parsed.channel is Channel.VISIT


def test_today_only_dated_text_is_not_a_next_action() -> None:
    parsed = parse_touch("华东建材 今天下午拜访了张总 一小时", SAT, customer_span=(0, 4))
    assert parsed.next_due is None
    assert parsed.next_action is None
    assert parsed.summary == "今天下午拜访了张总 一小时"


def test_name_typed_without_spaces_is_kept_out_of_the_action() -> None:
    parsed = parse_touch("华东建材下周三上门", SAT, customer_span=(0, 4))
    assert parsed.next_action == "上门"
    assert parsed.next_due == D(2026, 12, 2)
    assert parsed.summary == ""


VOCABULARY = (
    "华东建材 张总 电话 微信 上门 拜访 20分钟 半小时 一个半小时 聊了 报价 方案 下周三 明天 月底 周五前 12月5日 "
    "3天后 下次 再约 准备 了 他说 , ， 。 ; 、 : ： ! ? \n 0 1 12 . / 号 月 日 周 下 上 今 后天 天 前 个 小时 "
    "分钟 ２０ ＡＢＣ 😀 \x00 ( ) 约了 客户 今天 昨天"
).split(" ")


def test_random_messages_never_break_the_parser() -> None:
    rng = random.Random(20261128)
    for _ in range(2000):
        words = [rng.choice(VOCABULARY).replace("\\n", "\n") for _ in range(rng.randint(0, 14))]
        text = rng.choice(["", " "]).join(words)
        span = None
        if text and rng.random() < 0.5:
            start = rng.randrange(len(text))
            span = (start, min(len(text), start + rng.randint(1, 4)))
        parsed = parse_touch(text, SAT, customer_span=span)
        assert "\x00" not in parsed.summary or "\x00" in text
        assert parsed.summary == parsed.summary.strip()
        if parsed.next_due_expression is not None:
            assert parsed.next_due_expression in text
            assert parsed.next_due is not None
        if parsed.duration_minutes is not None:
            assert 0 < parsed.duration_minutes <= 24 * 60
        action, due = parse_next_action(text, SAT)
        assert action is None or action.strip() == action and action


def test_empty_message() -> None:
    assert parse_touch("", SAT) == ParsedTouch(None, None, "", None, None, None, False)


DURATIONS = [
    ("20分钟", 20),
    ("20min", 20),
    ("20 mins", 20),
    ("二十分钟", 20),
    ("半小时", 30),
    ("半个小时", 30),
    ("一小时", 60),
    ("1个小时", 60),
    ("一个半小时", 90),
    ("两个小时", 120),
    ("1.5小时", 90),
    ("2h", 120),
    ("40来分钟", 40),
    ("四十多分钟", 40),
    ("一刻钟", 15),
    ("三刻钟", 45),
    ("1小时20分钟", 80),
    ("两个半小时", 150),
    ("半个钟头", 30),
    ("十几分钟", 10),
    ("聊了5分", 5),
    ("下午3点20分见面", None),
    ("聊了报价", None),
    ("3天后", None),
    ("30小时", None),
]


@pytest.mark.parametrize(("text", "minutes"), DURATIONS, ids=[d[0] for d in DURATIONS])
def test_duration(text: str, minutes: int | None) -> None:
    assert parse_duration(text) == minutes


CHANNELS = [
    ("电话", P),
    ("打电话", P),
    ("通话", P),
    ("致电", P),
    ("电联", P),
    ("CALL了一下", P),
    ("微信", W),
    ("wx聊", W),
    ("WX", W),
    ("语音", W),
    ("视频通话", W),
    ("微信电话", W),
    ("拜访", V),
    ("上门", V),
    ("见面", V),
    ("面谈", V),
    ("面访", V),
    ("到店", V),
    ("现场", V),
    ("来访", V),
    ("吃饭", V),
    ("邮件", E),
    ("email", E),
    ("邮箱", E),
    ("发邮件", E),
    ("短信", OT),
    ("腾讯会议", OT),
    ("聊了报价", None),
]


@pytest.mark.parametrize(("text", "channel"), CHANNELS, ids=[c[0] for c in CHANNELS])
def test_channel_keywords(text: str, channel: Channel | None) -> None:
    assert detect_channel(text) == channel


NEXT_ACTIONS = [
    ("周五前发报价单", "发报价单", D(2026, 12, 4), "周五前"),
    ("明天", None, D(2026, 11, 29), "明天"),
    ("再约", "再约", None, None),
    ("下周三上午10点上门拜访", "上门拜访", D(2026, 12, 2), "下周三"),
    ("好的,12月3号发合同", "发合同", D(2026, 12, 3), "12月3号"),
    ("3天后回访", "回访", D(2026, 12, 1), "3天后"),
    ("月底前签约吧", "签约", D(2026, 11, 30), "月底前"),
    ("准备下周一去现场", "去现场", D(2026, 11, 30), "下周一"),
    ("上门拜访,下周二", "上门拜访", D(2026, 12, 1), "下周二"),
    ("电话回访 十二月五日", "电话回访", D(2026, 12, 5), "十二月五日"),
    ("", None, None, None),
]


@pytest.mark.parametrize(
    ("text", "action", "due", "expression"), NEXT_ACTIONS, ids=[n[0] or "empty" for n in NEXT_ACTIONS]
)
def test_parse_next_action(
    text: str, action: str | None, due: datetime.date | None, expression: str | None
) -> None:
    got_action, got_due = parse_next_action(text, SAT)
    assert got_action == action
    if due is None:
        assert got_due is None
    else:
        assert got_due is not None
        assert (got_due.date, got_due.expression) == (due, expression)


def test_channel_values_are_the_chinese_labels() -> None:
    assert [c.value for c in Channel] == ["电话", "微信", "面访", "邮件", "其他"]
    assert Channel("面访") is Channel.VISIT


def test_a_plan_with_a_date_already_gone_is_kept_so_the_caller_can_ask_again():
    parsed = parse_touch("华东建材 电话20分钟 聊了报价细节,11月20日发报价单", datetime.date(2026, 11, 25), (0, 4))
    assert parsed.next_due == datetime.date(2026, 11, 20)
    assert parsed.next_action == "发报价单"
    past_event = parse_touch("华东建材 11月20日见过张总,明天发报价单", datetime.date(2026, 11, 25), (0, 4))
    assert past_event.next_due == datetime.date(2026, 11, 26)
