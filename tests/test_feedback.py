"""客户声音 → 销售动作: the feedback webhook and the rep-filled card (SPEC §7, bad input §11)."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import create_app
from bot.config import Config
from storage.models import Customer, CustomerFeedback, InboxItem, PackDelivery
from tests.conftest import Console, cards_of, make_config, texts_of
from tests.seed import add_customer

SECRET = "s3cret-for-tests"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path, feedback={"secret": SECRET})


async def post_feedback(
    console: Console, body: Any, *, secret: str | None = SECRET, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    sent = {"Content-Type": "application/json", **(headers or {})}
    if secret is not None:
        sent["X-Pacebot-Secret"] = secret
    response = await console.client.post("/feedback", data=raw, headers=sent)
    return response.status, await response.json()


async def accepted(console: Console, body: Any, **kwargs: Any) -> dict[str, Any]:
    status, answer = await post_feedback(console, body, **kwargs)
    assert status == 202, answer
    await console.runtime.inbox.wait_processed(answer["event_id"])
    return answer


async def count(console: Console, model: Any, *where: Any) -> int:
    async with console.runtime.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def nothing_stored(console: Console) -> bool:
    return (
        await count(console, InboxItem, InboxItem.platform == "feedback") == 0
        and await count(console, CustomerFeedback) == 0
    )


async def customer_flags(console: Console, customer_id: int) -> list[str]:
    async with console.runtime.sessions() as session:
        customer = await session.get(Customer, customer_id)
    assert customer is not None
    return list(customer.flags)


async def owner_notices(console: Console, member: str = "rep.li") -> list[dict[str, Any]]:
    return [i for i in await console.feed(member=member) if i["payload"].get("title", "").startswith("客户声音")]


# --- the webhook ----------------------------------------------------------------------------------


async def test_webhook_feedback_pushes_the_pack_to_the_owner_and_flags_the_customer(console):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    answer = await accepted(
        console, {"id": "form-1", "customer": "华东建材", "options": ["操作太复杂", "价格偏高"], "comment": "希望能上门培训"}
    )
    assert answer["status"] == "accepted"

    [notice] = await owner_notices(console)
    text = notice["payload"]["text"]
    assert "**客户勾选**:操作太复杂、价格偏高" in text
    assert "**客户留言**:希望能上门培训" in text
    assert "推送《3步简化演示脚本》" in text and "客户已标记:**下次拜访必演示**" in text
    assert "### 📘《3步简化演示脚本》" in text and "第1步" in text  # the pack itself, in the same message
    assert await customer_flags(console, customer.id) == ["下次拜访必演示"]
    async with console.runtime.sessions() as session:
        [feedback] = list(await session.scalars(select(CustomerFeedback)))
        [delivery] = list(await session.scalars(select(PackDelivery)))
    assert (feedback.source, feedback.external_id, feedback.customer_id) == ("webhook", "form-1", customer.id)
    assert feedback.options == ["操作太复杂", "价格偏高"] and feedback.comment == "希望能上门培训"
    assert feedback.actions == [{"option": "操作太复杂", "push": "3步简化演示脚本", "flag": "下次拜访必演示"}]
    assert delivery.cause == f"feedback:{feedback.id}:操作太复杂" and delivery.customer_id == customer.id


async def test_webhook_accepts_a_customer_id_and_an_hmac_signature(console):
    customer = await add_customer(console.runtime, "rep.zhao", "金陵置业")
    body = json.dumps({"id": 77, "customer": {"id": customer.id}, "options": ["孩子兴趣不高"]}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    await accepted(console, body, secret=None, headers={"X-Pacebot-Signature": signature})

    [notice] = await owner_notices(console, "rep.zhao")
    assert "推送《游戏化教学方案包》" in notice["payload"]["text"]
    assert await customer_flags(console, customer.id) == []  # this rule sets no flag


async def test_a_duplicate_feedback_id_is_processed_once(console):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    body = {"id": "form-2", "customer": "华东建材", "options": ["操作太复杂"]}
    await accepted(console, body)
    status, answer = await post_feedback(console, body)

    assert status == 200 and answer["status"] == "duplicate"
    await console.runtime.inbox.wait_processed(answer["event_id"])
    assert len(await owner_notices(console)) == 1
    assert await count(console, CustomerFeedback) == 1
    assert await count(console, PackDelivery) == 1
    assert await customer_flags(console, customer.id) == ["下次拜访必演示"]


async def test_feedback_without_a_matching_rule_still_reaches_the_owner(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await accepted(console, {"id": "form-3", "customer": "华东建材", "options": ["交货太慢"]})
    [notice] = await owner_notices(console)
    assert "暂无对应的自动动作" in notice["payload"]["text"]
    assert await count(console, PackDelivery) == 0


@pytest.mark.parametrize(
    ("secret", "headers", "status", "error"),
    [
        (None, {}, 401, "unauthenticated"),
        ("wrong", {}, 403, "bad_secret"),
        (None, {"X-Pacebot-Signature": "sha256=" + "0" * 64}, 403, "bad_signature"),
    ],
)
async def test_webhook_refuses_bad_credentials_and_stores_nothing(console, secret, headers, status, error):
    await add_customer(console.runtime, "rep.li", "华东建材")
    got, answer = await post_feedback(
        console, {"id": "x", "customer": "华东建材", "options": ["操作太复杂"]}, secret=secret, headers=headers
    )
    assert (got, answer["error"]) == (status, error)
    assert answer["message"]
    assert await nothing_stored(console)


async def test_webhook_is_refused_while_no_secret_is_configured(aiohttp_client, tmp_path, clock):
    console = Console(await aiohttp_client(create_app(make_config(tmp_path), clock=clock)))
    status, answer = await post_feedback(console, {"id": "x", "customer": "华东建材", "options": ["操作太复杂"]}, secret="")
    assert status == 403 and answer["error"] == "disabled" and "feedback.secret" in answer["message"]
    assert await nothing_stored(console)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b'{"id": NaN, "customer": "x", "options": []}', None),
        (b"[" * 5000 + b"]" * 5000, None),
        ({"customer": "华东建材", "options": ["操作太复杂"]}, "id"),
        ({"id": True, "customer": "华东建材", "options": ["操作太复杂"]}, "id"),
        ({"id": "x", "customer": 5, "options": ["操作太复杂"]}, "customer"),
        ({"id": "x", "customer": {"id": "5"}, "options": ["操作太复杂"]}, "customer.id"),
        ({"id": "x", "customer": "华东建材", "options": "操作太复杂"}, "options"),
        ({"id": "x", "customer": "华东建材", "options": []}, "options"),
        ({"id": "x", "customer": "华东建材", "options": ["a"], "comment": ["no"]}, "comment"),
    ],
)
async def test_webhook_refuses_malformed_bodies_with_400(console, body, field):
    await add_customer(console.runtime, "rep.li", "华东建材")
    status, answer = await post_feedback(console, body)
    assert status == 400, answer
    if field:
        assert answer["error"] == "bad_field" and f"字段 {field} 无效" in answer["message"]
    else:
        assert answer["error"] == "bad_json"
    assert await nothing_stored(console)


async def test_webhook_refuses_an_oversized_body_with_413(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    body = {"id": "big", "customer": "华东建材", "options": ["操作太复杂"], "comment": "很" * 40_000}
    status, answer = await post_feedback(console, body)
    assert status == 413 and answer["error"] == "too_large"
    assert await nothing_stored(console)


async def test_webhook_refuses_an_unknown_customer_with_404_and_a_precise_message(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    status, answer = await post_feedback(console, {"id": "u1", "customer": "华西建材", "options": ["操作太复杂"]})
    assert status == 404 and answer["error"] == "unknown_customer"
    assert "找不到名为「华西建材」的客户" in answer["message"]
    status, answer = await post_feedback(console, {"id": "u2", "customer": {"id": 9999}, "options": ["操作太复杂"]})
    assert status == 404 and "id=9999" in answer["message"]
    assert await nothing_stored(console)


async def test_webhook_asks_for_an_id_when_a_name_is_shared(console):
    first = await add_customer(console.runtime, "rep.li", "华东建材")
    second = await add_customer(console.runtime, "rep.sun", "华东建材")
    status, answer = await post_feedback(console, {"id": "a1", "customer": "华东建材", "options": ["操作太复杂"]})
    assert status == 409 and answer["error"] == "ambiguous_customer"
    assert f"{first.id}、{second.id}" in answer["message"]
    assert await nothing_stored(console)


# --- the rep-filled card ------------------------------------------------------------------------


async def test_the_feedback_card_creates_the_same_feedback(console):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    reply = await console.send("rep.li", "/反馈 华东建材")
    [card] = cards_of(reply)
    assert card["title"] == "客户反馈 · 华东建材" and card["choice_mode"] == "multiple"
    options = {o["label"]: o["action"] for o in card["options"]}
    assert list(options) == ["操作太复杂", "孩子兴趣不高"]

    response = await console.client.post(
        "/console/api/actions",
        json={"member": "rep.li", "task_id": card["task_id"], "action": card["submit"]["action"],
              "values": [options["操作太复杂"], options["孩子兴趣不高"]]},
    )
    submitted = await response.json()

    update = next(i for i in submitted["replies"] if i["kind"] == "card_update")
    assert update["payload"]["card"]["closed_note"] == "已提交:操作太复杂、孩子兴趣不高"
    [notice] = [i for i in submitted["replies"] if i["kind"] == "markdown"]  # one message to the owner
    text = notice["payload"]["text"]
    assert "来源:李明填写的反馈卡片" in text
    assert "《3步简化演示脚本》" in text and "《游戏化教学方案包》" in text
    assert await customer_flags(console, customer.id) == ["下次拜访必演示"]
    async with console.runtime.sessions() as session:
        [feedback] = list(await session.scalars(select(CustomerFeedback)))
    assert (feedback.source, feedback.external_id) == ("card", card["task_id"])
    assert await count(console, PackDelivery) == 2

    again = await console.client.post(
        "/console/api/actions",
        json={"member": "rep.li", "task_id": card["task_id"], "action": card["submit"]["action"],
              "values": [options["操作太复杂"]]},
    )
    assert "已经" in texts_of(await again.json())[0]
    assert await count(console, CustomerFeedback) == 1


async def test_submitting_the_card_with_nothing_chosen_changes_nothing(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    [card] = cards_of(await console.send("rep.li", "/反馈 华东建材"))
    response = await console.client.post(
        "/console/api/actions",
        json={"member": "rep.li", "task_id": card["task_id"], "action": card["submit"]["action"], "values": []},
    )
    assert texts_of(await response.json()) == ["请至少勾选一项再提交。"]
    assert await count(console, CustomerFeedback) == 0


@pytest.mark.parametrize(
    ("text", "answer"),
    [("/反馈", "用法:/反馈 客户名称"), ("/反馈 金陵置业", "在您的客户中没有找到「金陵置业」。")],
)
async def test_the_card_command_needs_one_of_the_reps_customers(console, text, answer):
    await add_customer(console.runtime, "rep.sun", "金陵置业")  # someone else's customer
    reply = await console.send("rep.li", text)
    assert texts_of(reply)[0].startswith(answer)


async def test_the_feedback_card_can_be_answered_with_numbers_as_its_text_version_says(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    reply = await console.send("rep.li", "/反馈 华东建材")
    assert "可多选,回复序号(如 1 3)" in reply["replies"][0]["fallback"]
    await console.send("rep.li", "1 2")
    async with console.runtime.sessions() as session:
        [feedback] = list(await session.scalars(select(CustomerFeedback)))
    assert feedback.source == "card" and feedback.options == ["操作太复杂", "孩子兴趣不高"]
