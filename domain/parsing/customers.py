"""Which of the rep's customers a touch message is about.

Three passes, strongest first:

1. Exact substring of a customer name or alias (also of the name without its legal-form suffix
   such as ``有限公司`` or a leading city such as ``上海``). The longest hit wins; two different
   customers tied on the longest hit is ambiguous, unless exactly one of them also has a contact
   person named in the text.
2. Contact person names (``张伟``, ``张总``; and, weaker, the surname with a title such as ``张总``
   derived from ``张伟``). One customer → matched, several → ambiguous unless the leading token
   resembles exactly one of their names.
3. Fuzzy comparison (rapidfuzz) of the leading name-like token with names and aliases, tolerating
   a one-character typo (``华东建才`` → ``华东建材``). One clearly best → matched, several close →
   ambiguous, otherwise ``none`` with the token as ``guessed_name`` for a "create lead" offer.

Generic words (公司, 客户, 电话 ...) are never used as keys and never produce a match.

``match_customer`` builds an index of the customer list and keeps the last few indexes, so calling
it repeatedly with the same list is cheap; a prebuilt :class:`CustomerIndex` can be passed as well.
"""

from __future__ import annotations

import datetime
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, overload

from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein

from domain.parsing.dates import find_all_due_dates, normalize
from domain.parsing.simplify import to_simplified

__all__ = ["CustomerIndex", "CustomerMatch", "CustomerName", "match_customer", "leading_token"]


@dataclass(frozen=True)
class CustomerName:
    customer_id: int
    name: str
    aliases: tuple[str, ...] = ()
    contacts: tuple[str, ...] = ()  # contact person names, e.g. "张伟", "张总"


@dataclass(frozen=True)
class CustomerMatch:
    status: Literal["matched", "ambiguous", "none"]
    customer_id: int | None = None
    candidates: tuple[int, ...] = ()  # ambiguous: up to 5 customer ids, best first
    span: tuple[int, int] | None = (
        None  # matched: where the customer's name is in the text (None if only a contact was)
    )
    guessed_name: str | None = None  # none: the leading name-like token, to offer "create lead"
    # matched: how sure, 0..1 — 1 for the name as written, less through a contact or a typo
    confidence: float = 0.0


MAX_CANDIDATES = 5
CONTACT_CONFIDENCE = 0.9  # a customer found through a contact person named in the text
FUZZY_CUTOFF = 65.0  # a one-character typo in a 3-character name scores 66.7
FUZZY_MARGIN = 10.0  # the best fuzzy score must beat the runner-up by this much to be "clear"
GUESS_MAX_CHARS = 20

GENERIC_WORDS = frozenset(
    """
    公司 有限公司 有限责任公司 股份有限公司 集团 总公司 分公司 客户 老客户 新客户 大客户 意向客户 潜在客户
    电话 微信 邮件 邮箱 拜访 上门 见面 面谈 现场 短信 视频 语音 今天 明天 后天 下周 月底
    老板 老总 总经理 经理 采购 采购部 财务 领导 负责人 联系人 对接人 对方 他们 我们 这家 那家 那边 这边
    老师 先生 女士 小姐 同事 朋友 项目 工程 工厂 工地 厂家 厂 店 门店 商家 经销商 代理商 供应商 甲方 乙方
    科技 贸易 实业 商贸 建材 材料 装饰 装修 设备 工贸 物流 发展 建设 置业 地产 医院 学校 酒店 超市
    报价 方案 合同 样品 资料 产品 价格 订单
    """.split()
)

_ORG_SUFFIXES = (
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "分公司",
    "总公司",
    "公司",
    "集团",
    "股份",
    "门市部",
    "经营部",
    "商行",
    "厂",
)
_ORG_SUFFIX_RE = re.compile("(?:" + "|".join(_ORG_SUFFIXES) + ")+$")
_PAREN_RE = re.compile("[(\uff08][^()\uff08\uff09]*[)\uff09]")

_PLACES = sorted(
    """
    北京 上海 天津 重庆 广州 深圳 杭州 南京 苏州 无锡 宁波 武汉 成都 西安 长沙 郑州 济南 青岛 合肥
    福州 厦门 南昌 昆明 贵阳 南宁 沈阳 大连 长春 哈尔滨 石家庄 太原 呼和浩特 兰州 西宁 银川 乌鲁木齐
    拉萨 海口 三亚 东莞 佛山 珠海 中山 惠州 温州 嘉兴 绍兴 金华 台州 湖州 常州 南通 徐州 扬州 镇江
    烟台 潍坊 临沂 淄博 唐山 保定 廊坊 洛阳 泉州 漳州 昆山 江阴 义乌
    江苏 浙江 广东 山东 河北 河南 湖北 湖南 四川 福建 安徽 江西 云南 贵州 广西 辽宁 吉林 黑龙江
    陕西 山西 甘肃 青海 宁夏 新疆 西藏 海南 内蒙古
    """.split(),
    key=len,
    reverse=True,
)
_PLACE_RE = re.compile("^(?:" + "|".join(_PLACES) + ")(?:省|市|区|县)?")

_COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 诸葛 上官 东方 夏侯 皇甫 慕容 令狐 尉迟 长孙 宇文 司徒 公孙 端木 独孤".split()
)
_TITLES = (
    "总",
    "经理",
    "工",
    "主任",
    "老师",
    "老板",
    "董",
    "总监",
    "姐",
    "哥",
    "局",
    "处",
    "科长",
    "部长",
    "秘书",
)
_HAS_TITLE_RE = re.compile("(?:" + "|".join(sorted(_TITLES, key=len, reverse=True)) + ")$")

# Where the leading name-like token ends.
_TOKEN_END_RE = re.compile(
    r"[\s,.;:!?、。~()()\[\]【】<>《》\"'“”‘’]"
    r"|电话|打电话|通话|致电|电联|来电|回电|微信|语音|视频|拜访|上门|见面|面谈|面访|面聊|到店|现场|来访|吃饭|邮件|邮箱"
    r"|(?<![a-z])(?:call|wx|vx|email|mail|wechat)(?![a-z])"
    r"|[0-9]+\s*(?:分钟|min|小时|h)"
)
_TOKEN_LEAD_RE = re.compile(
    r"(?:(?:你好|您好|在吗|谢谢|好的|收到|嗯嗯|嗯|ok|hello|hi|哈喽|今天|今日|今早|今晚|昨天|刚刚|刚才|刚|上午|下午|中午|晚上|早上|傍晚|我们|我|又|去了|去|跟|和|给|与|到"
    r"|联系了|联系|新客户|老客户|意向客户|客户)[\s,.;:!?、。~]*)+"
)
_NOT_A_NAME_START_RE = re.compile(
    r"^(?:说|讲|问|要|想|觉得|表示|反馈|回复|在|是|的|了|把|被|让|对|没|不|也|都|还|就)"
)
_ANY_DAY = datetime.date(2000, 1, 1)  # dates only end the token; their value does not matter
_NAME_STRIP = " \t\r\n\u3000,.;:!?、。~-_\"'“”‘’的\uff0c\uff1b\uff1a\uff01\uff1f\uff0e\uff5e"


@dataclass(frozen=True)
class _Key:
    text: str
    customer_id: int
    weight: float  # exact keys score their length; derived keys slightly less
    word_start: bool = False  # begins / ends with an ASCII letter or digit: needs a word boundary
    word_end: bool = False


def _name_variants(name: str) -> list[tuple[str, float]]:
    """Normalised name keys: (key, penalty). The full name has no penalty."""
    base = normalize(to_simplified(name)).strip()
    variants: list[tuple[str, float]] = [(base, 0.0)]
    compact = re.sub(r"\s+", "", base)
    if compact != base:
        variants.append((compact, 0.0))
    core = _PAREN_RE.sub("", compact)
    core = _ORG_SUFFIX_RE.sub("", core)
    if core and core != compact:
        variants.append((core, 0.5))
    place = _PLACE_RE.match(core)
    if place is not None:
        rest = _ORG_SUFFIX_RE.sub("", core[place.end() :])
        if len(rest) >= 3:
            variants.append((rest, 0.5))
    return variants


def _usable(key: str, minimum: int = 2) -> bool:
    return len(key) >= minimum and key not in GENERIC_WORDS


def _derived_contact_keys(contact: str) -> list[str]:
    """``张伟`` → ``张总``, ``张经理``, ``老张`` ...; nothing for a name that already has a title."""
    if not re.fullmatch(r"[\u4e00-\u9fff]{2,4}", contact) or _HAS_TITLE_RE.search(contact):
        return []
    surname = contact[:2] if contact[:2] in _COMPOUND_SURNAMES else contact[:1]
    if len(contact) - len(surname) < 1:
        return []
    return [surname + title for title in _TITLES] + ["老" + surname, "小" + surname]


class CustomerIndex(Sequence[CustomerName]):
    """Lookup structures over one rep's customers. Immutable; build once, match many times."""

    def __init__(self, customers: Sequence[CustomerName]):
        self._customers: tuple[CustomerName, ...] = tuple(customers)
        self._by_id = {c.customer_id: c for c in self._customers}
        self.name_keys: dict[str, list[_Key]] = {}
        self.contact_keys: dict[str, list[_Key]] = {}
        self.derived_contact_keys: dict[str, list[_Key]] = {}
        fuzzy: dict[str, set[int]] = {}
        for customer in self._customers:
            seen: set[str] = set()
            for raw in (customer.name, *customer.aliases):
                for key, penalty in _name_variants(raw):
                    if key in seen or not _usable(key):
                        continue
                    seen.add(key)
                    self._add(self.name_keys, key, customer.customer_id, len(key) - penalty)
                    if len(key) >= 3:
                        fuzzy.setdefault(key, set()).add(customer.customer_id)
            for raw in customer.contacts:
                key = normalize(to_simplified(raw)).strip()
                if not _usable(key):
                    continue
                self._add(self.contact_keys, key, customer.customer_id, float(len(key)))
                for derived in _derived_contact_keys(key):
                    if derived != key and _usable(derived):
                        self._add(
                            self.derived_contact_keys, derived, customer.customer_id, float(len(derived))
                        )
        self.fuzzy_keys: list[str] = list(fuzzy)
        self.fuzzy_owners: list[tuple[int, ...]] = [tuple(sorted(fuzzy[k])) for k in self.fuzzy_keys]
        # query → ranking: reps type the same short forms of a name day after day ("华东东建")
        self.fuzzy_cache: dict[str, list[tuple[float, int, str]]] = {}

    @staticmethod
    def _add(table: dict[str, list[_Key]], key: str, customer_id: int, weight: float) -> None:
        bucket = table.setdefault(key[:2], [])  # keys have at least two characters
        if not any(k.text == key and k.customer_id == customer_id for k in bucket):
            bucket.append(
                _Key(key, customer_id, weight, _is_ascii_word_char(key[0]), _is_ascii_word_char(key[-1]))
            )

    # Sequence protocol -------------------------------------------------------------------------
    @overload
    def __getitem__(self, index: int) -> CustomerName: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[CustomerName]: ...
    def __getitem__(self, index: int | slice) -> CustomerName | Sequence[CustomerName]:
        return self._customers[index]

    def __len__(self) -> int:
        return len(self._customers)

    def __iter__(self) -> Iterator[CustomerName]:
        return iter(self._customers)

    @property
    def customers(self) -> tuple[CustomerName, ...]:
        return self._customers


# Indexes by their customers (names, aliases, contacts): a rep's unchanged list finds its index,
# and a changed one builds a new index. Large enough for every rep of a big team.
_INDEX_CACHE: OrderedDict[tuple[CustomerName, ...], CustomerIndex] = OrderedDict()
_INDEX_CACHE_SIZE = 2048
_INDEX_CACHE_LOCK = threading.Lock()


def _index_for(customers: Sequence[CustomerName]) -> CustomerIndex:
    if isinstance(customers, CustomerIndex):
        return customers
    snapshot = tuple(customers)
    with _INDEX_CACHE_LOCK:
        index = _INDEX_CACHE.get(snapshot)
        if index is not None:
            _INDEX_CACHE.move_to_end(snapshot)
            return index
    index = CustomerIndex(snapshot)
    with _INDEX_CACHE_LOCK:
        _INDEX_CACHE[snapshot] = index
        while len(_INDEX_CACHE) > _INDEX_CACHE_SIZE:
            _INDEX_CACHE.popitem(last=False)
    return index


def _is_ascii_word_char(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _scan(norm: str, table: dict[str, list[_Key]]) -> dict[int, tuple[float, int, int]]:
    """Best (weight, start, end) per customer for keys of ``table`` occurring in ``norm``."""
    best: dict[int, tuple[float, int, int]] = {}
    length = len(norm)
    for i in range(length - 1):
        bucket = table.get(norm[i : i + 2])
        if not bucket:
            continue
        for key in bucket:
            if not norm.startswith(key.text, i):
                continue
            end = i + len(key.text)
            if key.word_start and i > 0 and _is_ascii_word_char(norm[i - 1]):
                continue
            if key.word_end and end < length and _is_ascii_word_char(norm[end]):
                continue
            current = best.get(key.customer_id)
            if current is None or key.weight > current[0]:
                best[key.customer_id] = (key.weight, i, end)
    return best


def leading_token(text: str) -> tuple[str, int]:
    """The leading name-like token of ``text`` and its start offset (``""`` if none).

    The token runs to the first space, punctuation, channel keyword or duration, after dropping
    leading words such as ``今天`` or ``刚才和``; at most 20 characters.
    """
    norm = normalize(text)
    start = len(norm) - len(norm.lstrip(_NAME_STRIP))
    lead = _TOKEN_LEAD_RE.match(norm, start)
    if lead is not None and lead.end() < len(norm):
        start = lead.end()
    end_match = _TOKEN_END_RE.search(norm, start)
    end = end_match.start() if end_match is not None else len(norm)
    for due in find_all_due_dates(text[start:end], _ANY_DAY):
        end = start + due.span[0]
        break
    token = text[start:end].strip(_NAME_STRIP)
    offset = text.find(token, start) if token else start
    return token[:GUESS_MAX_CHARS], offset


def _plausible_name(token: str) -> bool:
    norm = normalize(token)
    return _usable(norm) and not _TOKEN_LEAD_RE.fullmatch(norm) and not _NOT_A_NAME_START_RE.match(norm)


_FUZZY_CACHE_SIZE = 4096


def _fuzzy(index: CustomerIndex, query: str) -> list[tuple[float, int, str]]:
    """(score, customer id, key) for customers whose names resemble ``query``, best first.

    The index is immutable, so a query's ranking is kept on it (callers never change the list).
    """
    cached = index.fuzzy_cache.get(query)
    if cached is None:
        if len(index.fuzzy_cache) >= _FUZZY_CACHE_SIZE:
            index.fuzzy_cache.clear()
        cached = index.fuzzy_cache[query] = _rank_fuzzy(index, query)
    return cached


def _rank_fuzzy(index: CustomerIndex, query: str) -> list[tuple[float, int, str]]:
    if not index.fuzzy_keys:
        return []
    scores: dict[int, tuple[float, str]] = {}

    def consider(score: float, position: int) -> None:
        key = index.fuzzy_keys[position]
        for customer_id in index.fuzzy_owners[position]:
            current = scores.get(customer_id)
            if current is None or score > current[0]:
                scores[customer_id] = (score, key)

    for _key, score, position in process.extract(
        query, index.fuzzy_keys, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF, limit=50
    ):
        consider(score, position)
    if len(query) > 3:
        # The token may run on past the name ("华东建才张总"): align the name inside it.
        for key, score, position in process.extract(
            query, index.fuzzy_keys, scorer=fuzz.partial_ratio, score_cutoff=FUZZY_CUTOFF / 0.95, limit=50
        ):
            if len(key) < len(query):
                consider(score * 0.95, position)
    ranked = sorted(((s, cid, k) for cid, (s, k) in scores.items()), key=lambda x: (-x[0], x[1]))
    return ranked


def match_customer(text: str, customers: Sequence[CustomerName]) -> CustomerMatch:
    text = to_simplified(text)  # same length: spans still index the caller's text
    index = _index_for(customers)
    norm = normalize(text)

    # 1. names and aliases, exact substrings
    name_hits = _scan(norm, index.name_keys)
    contact_hits = _scan(norm, index.contact_keys)
    if name_hits:
        top = max(weight for weight, _s, _e in name_hits.values())
        tied = sorted(
            (cid for cid, (weight, _s, _e) in name_hits.items() if weight == top),
            key=lambda cid: (name_hits[cid][1], cid),
        )
        if len(tied) > 1:
            with_contact = [cid for cid in tied if cid in contact_hits]
            if len(with_contact) == 1:
                tied = with_contact
        if len(tied) == 1:
            _w, start, end = name_hits[tied[0]]
            span = _widen_span(index, text, norm, tied[0], (start, end))
            weight = name_hits[tied[0]][0]
            exact = weight == end - start and span == (start, end)
            return CustomerMatch(
                status="matched", customer_id=tied[0], span=span, confidence=1.0 if exact else 0.9
            )
        return CustomerMatch(status="ambiguous", candidates=tuple(tied[:MAX_CANDIDATES]))

    # 2. contact people; a contact shared by several customers is settled by a name-like token
    token, offset = leading_token(text)
    guess = token if _plausible_name(token) else None
    query = _ORG_SUFFIX_RE.sub("", _PAREN_RE.sub("", normalize(token).replace(" ", "")))
    ranked_cache: list[list[tuple[float, int, str]]] = []

    def ranked_names() -> list[tuple[float, int, str]]:
        if not ranked_cache:
            ranked_cache.append(_fuzzy(index, query) if _usable(query, 2) else [])
        return ranked_cache[0]

    for hits, sure in ((contact_hits, CONTACT_CONFIDENCE), (_scan(norm, index.derived_contact_keys), 0.75)):
        if not hits:
            continue
        top = max(weight for weight, _s, _e in hits.values())
        best = sorted(
            (cid for cid, (weight, _s, _e) in hits.items() if weight == top),
            key=lambda cid: (hits[cid][1], cid),
        )
        if len(best) == 1:
            named_span = _named_span(norm, offset, token, ranked_names, best[0])
            return CustomerMatch(
                status="matched",
                customer_id=best[0],
                span=named_span,
                confidence=max(sure, CONTACT_CONFIDENCE) if named_span else sure,
            )
        named = [(score, cid, key) for score, cid, key in ranked_names() if cid in best]
        if named:
            close = [item for item in named if named[0][0] - item[0] < FUZZY_MARGIN]
            if len(close) == 1:
                score, cid, key = close[0]
                return CustomerMatch(
                    status="matched",
                    customer_id=cid,
                    span=_fuzzy_span(norm, offset, len(token), key),
                    confidence=min(sure, score / 100),
                )
            first = [cid for _s, cid, _k in close]
            best = first + [cid for cid in best if cid not in first]
        return CustomerMatch(status="ambiguous", candidates=tuple(best[:MAX_CANDIDATES]))

    # 3. fuzzy on the leading token
    ranked = ranked_names()
    if not ranked:
        return CustomerMatch(status="none", guessed_name=guess)
    best_score = ranked[0][0]
    close_ids = [cid for score, cid, _k in ranked if best_score - score < FUZZY_MARGIN]
    if len(close_ids) == 1:
        span = _fuzzy_span(norm, offset, len(token), ranked[0][2])
        return CustomerMatch(status="matched", customer_id=close_ids[0], span=span, confidence=best_score / 100)
    return CustomerMatch(status="ambiguous", candidates=tuple(close_ids[:MAX_CANDIDATES]))


def _similarity(query: str, key: str) -> float:
    score = fuzz.ratio(query, key)
    if len(query) > len(key):
        score = max(score, 0.95 * fuzz.partial_ratio(query, key))
    return score


def _named_span(
    norm: str,
    offset: int,
    token: str,
    ranked_names: Callable[[], list[tuple[float, int, str]]],
    customer_id: int,
) -> tuple[int, int] | None:
    """For a customer found through a contact: where its (possibly misspelt) name leads the text."""
    if len(token) < 3:
        return None
    ranked = ranked_names()
    if not ranked or ranked[0][1] != customer_id:
        return None
    return _fuzzy_span(norm, offset, len(token), ranked[0][2])


def _widen_span(
    index: CustomerIndex, text: str, norm: str, customer_id: int, span: tuple[int, int]
) -> tuple[int, int]:
    """Grow an exact hit to the whole leading token when the token is a variant of that name.

    ``华东建材公司`` hit through ``华东建材`` and ``华东建才`` hit through the alias ``华东`` both
    name the customer with the whole token.
    """
    token, offset = leading_token(text)
    start, end = span
    if not token or not (offset <= start and end <= offset + len(token)) or len(token) <= end - start:
        return span
    query = _ORG_SUFFIX_RE.sub("", normalize(token))
    best_key, best = "", 0.0
    for key, owners in zip(index.fuzzy_keys, index.fuzzy_owners, strict=True):
        if customer_id in owners:
            score = _similarity(query, key)
            if score > best:
                best_key, best = key, score
    if best < FUZZY_CUTOFF:
        return span
    wide = _fuzzy_span(norm, offset, len(token), best_key)
    return min(wide[0], start), max(wide[1], end)


def _fuzzy_span(norm: str, offset: int, length: int, key: str) -> tuple[int, int]:
    """Where in the text the fuzzily matched name sits (inside the leading token)."""
    token = norm[offset : offset + length]
    stripped = _ORG_SUFFIX_RE.sub("", token)
    if len(stripped) <= len(key) + 1:
        return offset, offset + length
    alignment = fuzz.partial_ratio_alignment(key, stripped)
    anchor = alignment.dest_start if alignment is not None else 0
    best: tuple[int, int, int, int] | None = None  # (edit distance, length difference, start, end)
    for start in range(max(0, anchor - 1), min(len(stripped), anchor + 2)):
        for size in (len(key) - 1, len(key), len(key) + 1):
            end = start + size
            if size < 1 or end > len(stripped):
                continue
            candidate = (Levenshtein.distance(stripped[start:end], key), abs(size - len(key)), start, end)
            if best is None or candidate < best:
                best = candidate
    if best is None:
        return offset, offset + length
    _distance, _diff, start, end = best
    return offset + start, offset + end


def company_key(name: str) -> str:
    """A company name without spaces, brackets and legal suffixes: 华东建材有限公司 → 华东建材.

    Two customers with the same key are the same company (used to spot 撞单, two reps on one
    customer)."""
    return _ORG_SUFFIX_RE.sub("", _PAREN_RE.sub("", normalize(name).replace(" ", ""))) or normalize(name)
