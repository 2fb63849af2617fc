"""Customer matching over a rep's customers: exact, alias, contact, typo, ambiguous, none."""

from __future__ import annotations

import random
import time

import pytest

from domain.parsing.customers import (
    CustomerIndex,
    CustomerMatch,
    CustomerName,
    leading_token,
    match_customer,
)

CUSTOMERS = (
    CustomerName(1, "华东建材有限公司", aliases=("华东",), contacts=("张伟",)),
    CustomerName(2, "华西建材", contacts=("李强", "李总")),
    CustomerName(3, "上海明远科技有限公司", aliases=("明远科技",), contacts=("王芳", "张总")),
    CustomerName(4, "东方装饰工程有限公司", contacts=("张总",)),
    CustomerName(5, "鑫达贸易", aliases=("鑫达",), contacts=("赵敏",)),
    CustomerName(6, "鑫达贸易", contacts=("钱进",)),
    CustomerName(7, "ABC Trading", aliases=("abc",)),
    CustomerName(8, "恒通物流", contacts=("孙丽",)),
    CustomerName(9, "金地置业", contacts=("周总",)),
    CustomerName(10, "宏远建设集团"),
    CustomerName(11, "公司"),  # a name that is only a generic word can never be matched by it
)


MATCHED = [
    # exact name / alias / name without legal suffix or city
    ("华东建材 张总 电话20分钟", 1, (0, 4)),
    ("华东建材有限公司 电话", 1, (0, 8)),
    ("华东建材公司 电话", 1, (0, 6)),
    ("华东 电话", 1, (0, 2)),
    ("今天去华东建材拜访了张总", 1, (3, 7)),
    ("明远科技 微信", 3, (0, 4)),
    ("上海明远科技有限公司 微信", 3, (0, 10)),
    ("宏远建设 电话", 10, (0, 4)),
    ("宏远建设集团 电话", 10, (0, 6)),
    ("华西建材,电话", 2, (0, 4)),
    ("金地置业 周总 电话", 9, (0, 4)),
    ("恒通物流", 8, (0, 4)),
    ("abc 电话", 7, (0, 3)),
    ("ABC Trading 电话", 7, (0, 11)),
    ("ＡＢＣ 电话", 7, (0, 3)),
    # the longer name wins over a shorter alias contained in it
    ("鑫达贸易 赵敏 电话", 5, (0, 4)),  # two 鑫达贸易: the one whose contact is named
    ("鑫达贸易 钱进 微信", 6, (0, 4)),
    # one-character typos and small variations
    ("华西建才 电话", 2, (0, 4)),
    ("华西建才公司 电话", 2, (0, 6)),
    ("恒通物留 电话", 8, (0, 4)),
    ("今天 恒通物留 电话", 8, (3, 7)),
    ("恒通物留孙丽电话", 8, (0, 4)),
    ("金地至业 上门", 9, (0, 4)),
    ("宏远建没 微信", 10, (0, 4)),
    ("上海明远 微信", 3, (0, 4)),
]


@pytest.mark.parametrize(("text", "customer_id", "span"), MATCHED, ids=[c[0] for c in MATCHED])
def test_matched(text: str, customer_id: int, span: tuple[int, int]) -> None:
    result = match_customer(text, CUSTOMERS)
    assert result.status == "matched"
    assert result.customer_id == customer_id
    assert result.span == span


CONTACT_ONLY = [
    ("张伟 电话", 1),
    ("李总 微信 聊了十分钟", 2),
    ("李强打来电话", 2),
    ("王芳 上门拜访", 3),
    ("赵敏 电话", 5),
    ("老张 电话", 1),  # derived from 张伟
    ("孙经理 微信", 8),  # derived from 孙丽
    ("王总 电话", 3),  # derived from 王芳
]


@pytest.mark.parametrize(("text", "customer_id"), CONTACT_ONLY, ids=[c[0] for c in CONTACT_ONLY])
def test_contact_only(text: str, customer_id: int) -> None:
    result = match_customer(text, CUSTOMERS)
    assert result.status == "matched"
    assert result.customer_id == customer_id
    assert result.span is None  # the customer itself was not named


AMBIGUOUS = [
    ("鑫达贸易 电话", (5, 6)),  # two customers with the same name
    ("张总 电话", (3, 4)),  # a contact shared by two customers
    ("华北建材 电话", (1, 2)),  # one character away from two names
]


@pytest.mark.parametrize(("text", "candidates"), AMBIGUOUS, ids=[c[0] for c in AMBIGUOUS])
def test_ambiguous(text: str, candidates: tuple[int, ...]) -> None:
    result = match_customer(text, CUSTOMERS)
    assert result.status == "ambiguous"
    assert result.customer_id is None
    assert sorted(result.candidates) == sorted(candidates)


def test_ambiguous_is_capped_at_five_best_first() -> None:
    many = [CustomerName(i, "长江建材") for i in range(1, 9)]
    result = match_customer("长江建材 电话", many)
    assert result.status == "ambiguous"
    assert result.candidates == (1, 2, 3, 4, 5)


NONE = [
    ("远大重工 电话 聊了合作", "远大重工"),
    ("新客户 李四 电话20分钟", "李四"),
    ("新客户李四 电话", "李四"),
    ("今天去了星河湾物业 拜访", "星河湾物业"),
    ("蓝天环保,微信", "蓝天环保"),
    ("绿源农业电话20分钟", "绿源农业"),
    ("一二三四五六七八九十一二三四五六七八九十一二三 电话", "一二三四五六七八九十一二三四五六七八九十"),
]


@pytest.mark.parametrize(("text", "guess"), NONE, ids=[c[0] for c in NONE])
def test_none_with_guessed_name(text: str, guess: str) -> None:
    result = match_customer(text, CUSTOMERS)
    assert result == CustomerMatch(status="none", guessed_name=guess)


GENERIC = [
    "公司 电话",
    "客户 电话20分钟",
    "客户说下周再聊",
    "电话 聊了一下",
    "今天 拜访",
    "",
    "   ",
]


@pytest.mark.parametrize("text", GENERIC)
def test_generic_words_never_match(text: str) -> None:
    result = match_customer(text, CUSTOMERS)
    assert result.status == "none"
    assert result.customer_id is None
    assert result.guessed_name is None


def test_no_customers_at_all() -> None:
    result = match_customer("华东建材 电话", [])
    assert result == CustomerMatch(status="none", guessed_name="华东建材")


def test_prebuilt_index_behaves_like_the_list() -> None:
    index = CustomerIndex(CUSTOMERS)
    assert len(index) == len(CUSTOMERS)
    assert index[0] == CUSTOMERS[0]
    for text in ("华东建材 电话", "张总 电话", "华西建才 电话", "远大重工 电话"):
        assert match_customer(text, index) == match_customer(text, CUSTOMERS)


def test_changed_list_is_not_served_from_a_stale_index() -> None:
    customers = [CustomerName(1, "蓝天环保")]
    assert match_customer("蓝天环保 电话", customers).customer_id == 1
    customers.append(CustomerName(2, "绿源农业"))
    assert match_customer("绿源农业 电话", customers).customer_id == 2


@pytest.mark.parametrize(
    ("text", "token", "offset"),
    [
        ("华东建材 张总", "华东建材", 0),
        ("今天和华东建材张总电话", "华东建材张总", 3),
        ("刚刚 鑫达 微信", "鑫达", 3),
        ("电话", "", 0),
    ],
)
def test_leading_token(text: str, token: str, offset: int) -> None:
    assert leading_token(text) == (token, offset)


def _synthetic_customers(n: int) -> list[CustomerName]:
    rng = random.Random(7)
    heads = "华东 华西 华南 鑫达 恒通 金地 宏远 明远 东方 长江 黄河 蓝天 绿源 永兴 昌盛 万通 天成 瑞丰 汇金 广源".split()
    mids = "建材 装饰 贸易 物流 置业 科技 机械 五金 电气 管业 石材 涂料 门窗 钢构 陶瓷".split()
    surnames = "张王李赵刘陈杨黄周吴徐孙马朱胡郭何高林罗"
    customers = []
    for i in range(n):
        name = f"{rng.choice(heads)}{rng.choice(heads)[1]}{rng.choice(mids)}{rng.choice(['有限公司', '', '集团'])}"
        contacts = (rng.choice(surnames) + rng.choice("伟芳强敏静丽军磊洋勇"), rng.choice(surnames) + "总")
        customers.append(CustomerName(i + 1, name, contacts=contacts))
    return customers


def test_fast_enough_for_five_hundred_customers() -> None:
    customers = _synthetic_customers(500)
    texts = [f"{c.name[:4]} {c.contacts[0]} 电话20分钟 聊了报价" for c in customers[:200]]
    texts += ["新客户 李四 电话", "华东建才 微信", "公司 电话", "张总 电话"] * 50
    match_customer(texts[0], customers)  # build the index once
    # CPU time of this process: the suite runs in parallel with other work on a shared machine,
    # and wall time would measure the neighbours too.
    started = time.process_time()
    for text in texts:
        match_customer(text, customers)
    elapsed = time.process_time() - started
    assert len(texts) / elapsed > 500, f"{len(texts) / elapsed:.0f} calls/s"
