"""The console page in a real Chromium, against a real server on a free local port.

Skipped when no Chromium binary is available (``/usr/bin/chromium`` or ``PACEBOT_CHROMIUM``) or
the playwright package cannot be imported. Set ``PACEBOT_SCREENSHOT_DIR`` to keep the screenshots.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import pytest_asyncio
from aiohttp import web

from bot.app import create_app
from bot.config import config_from_dict

# One Chromium for the module (launching it, and playwright's driver, is most of a test's cost):
# its tests run on one worker and one event loop; each page still gets a browser context of its own.
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"), pytest.mark.asyncio(loop_scope="module")]

CHROMIUM = os.environ.get("PACEBOT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ORG_FIXTURE = Path(__file__).parent / "fixtures/org_small.toml"
WAIT_MS = 15_000
# A customer rep.li does not have yet: the bot offers to create it as a new lead (a card).
TOUCH_TEXT = "蓝海科技 电话10分钟 聊了需求,明天发方案"

if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
    pytest.skip(
        f"no Chromium binary at {CHROMIUM} (set PACEBOT_CHROMIUM to a chromium executable)",
        allow_module_level=True,
    )
try:
    from playwright.async_api import Browser, Page, Response, Route, async_playwright, expect
except ImportError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(f"playwright cannot be imported: {exc}", allow_module_level=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


# --------------------------------------------------------------------------------------- helpers


@contextlib.asynccontextmanager
async def running_server(tmp_path: Path, *, clock_control: bool = False) -> AsyncIterator[str]:
    """The real application on 127.0.0.1 with a free port; yields its base URL."""
    config = config_from_dict(
        {
            "storage": {"url": f"sqlite+aiosqlite:///{tmp_path}/t.db", "data_dir": str(tmp_path / "data")},
            "org": {"directory": str(ORG_FIXTURE)},
            "console": {"clock_control": clock_control},
        }
    )
    runner = web.AppRunner(create_app(config))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def console_page(
    browser: Browser, tmp_path: Path, *, clock_control: bool = False
) -> AsyncIterator[tuple[Page, list[str]]]:
    """A page (in a browser context of its own) on ``/console`` of a fresh server, and the list of
    page errors seen."""
    async with running_server(tmp_path, clock_control=clock_control) as base:
        page = await browser.new_page(viewport={"width": 1360, "height": 900})
        try:
            page.set_default_timeout(30_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
            page.on(
                "console",
                lambda msg: (
                    errors.append(f"console: {msg.text}")
                    if msg.type == "error" and "Failed to load resource" not in msg.text
                    else None
                ),
            )
            await page.goto(f"{base}/console")
            await expect(page.locator("#member-select option[value='rep.li']")).to_have_count(
                1, timeout=WAIT_MS
            )
            yield page, errors
        finally:
            await page.context.close()  # the context browser.new_page made for this page alone


def _is_post(path: str):
    def match(response: Response) -> bool:
        return response.request.method == "POST" and urlparse(response.url).path == path

    return match


async def _json_of(response: Response) -> dict[str, Any]:
    assert response.ok, (
        f"{response.request.method} {response.url} -> {response.status}: {await response.text()}"
    )
    return await response.json()


def _to(items: list[dict[str, Any]], member: str) -> list[dict[str, Any]]:
    return [item for item in items if item.get("to", {}).get("member") == member]


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


async def assert_shown(page: Page, item: dict[str, Any]) -> None:
    """A feed item from the API is visible in the chat: as its own message or as an updated card."""
    feed = page.locator("#feed")
    card = item["payload"].get("card")
    if item["kind"] == "card_update":
        shown = feed.locator(f'.card[data-task-id="{card["task_id"]}"]')
        await expect(shown).to_have_count(1, timeout=WAIT_MS)
        await expect(shown).to_contain_text(card["title"], timeout=WAIT_MS)
        if card.get("closed_note"):
            await expect(shown.locator(".card-closed")).to_contain_text(
                _first_line(card["closed_note"]), timeout=WAIT_MS
            )
            await expect(shown.locator(".card-button")).to_have_count(0)
        return
    message = feed.locator(f'.msg.bot[data-id="{item["id"]}"]')
    await expect(message).to_have_count(1, timeout=WAIT_MS)
    await expect(message).to_have_attribute("data-kind", item["kind"])
    if item["kind"] == "text" and _first_line(item["payload"]["text"]):
        await expect(message).to_contain_text(_first_line(item["payload"]["text"]))
    elif item["kind"] == "card":
        await expect(message.locator(f'.card[data-task-id="{card["task_id"]}"]')).to_have_count(1)
    elif item["kind"] == "markdown" and item["payload"].get("title"):
        await expect(message).to_contain_text(item["payload"]["title"])


def _tiny_png(path: Path) -> Path:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (96, 64), (245, 245, 240))
    draw = ImageDraw.Draw(image)
    draw.rectangle((8, 8, 88, 56), outline=(30, 90, 200), width=3)
    draw.line((8, 56, 88, 8), fill=(200, 40, 40), width=3)
    image.save(path, "PNG")
    return path


async def _screenshot(page: Page, path: Path) -> None:
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
    keep = os.environ.get("PACEBOT_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)


# ----------------------------------------------------------------------------------------- tests


async def test_chat_card_and_upload_as_a_rep(browser: Browser, tmp_path: Path) -> None:
    async with console_page(browser, tmp_path) as (page, errors):
        # The picker is grouped by team and shows roles in Chinese.
        await expect(
            page.locator("#member-select optgroup[label='华东一组'] option[value='rep.li']")
        ).to_have_count(1)
        await expect(page.locator("#member-list")).to_contain_text("销售")
        await expect(page.locator("#member-list")).to_contain_text("主管")
        await expect(page.locator("#team-list .team-item")).to_have_count(2)

        await page.select_option("#member-select", "rep.li")
        await expect(page.locator("#chat-name")).to_have_text("李明")

        # 1. A touch about an unknown customer: the bot answers with a card offering a new lead.
        async with page.expect_response(_is_post("/console/api/messages")) as sent:
            await page.fill("#message-input", TOUCH_TEXT)
            await page.press("#message-input", "Enter")
        body = await _json_of(await sent.value)
        assert body["status"] == "accepted"
        await expect(page.locator("#message-input")).to_have_value("")
        await expect(page.locator("#feed .msg.mine[data-kind='text']").last).to_contain_text(TOUCH_TEXT)
        replies = _to(body["replies"], "rep.li")
        assert any(r["kind"] == "card" for r in replies), f"expected a card in the replies: {body['replies']}"
        for item in replies:
            await assert_shown(page, item)

        card = page.locator("#feed .card").first
        await expect(card).to_be_visible(timeout=WAIT_MS)
        task_id = await card.get_attribute("data-task-id")
        assert task_id
        button = card.locator(".card-button").first
        await expect(button).to_be_enabled(timeout=WAIT_MS)
        label = (await button.text_content() or "").strip()
        assert label

        # 2. Clicking the card's first button posts the action and shows what came back.
        async with page.expect_response(_is_post("/console/api/actions")) as acted:
            await button.click()
        request_body = json.loads((await acted.value).request.post_data or "{}")
        assert request_body["member"] == "rep.li"
        assert request_body["task_id"] == task_id
        action_result = await _json_of(await acted.value)
        assert action_result["status"] == "accepted"
        follow_up = _to(action_result["replies"], "rep.li")
        assert follow_up, f"clicking {label!r} produced no reply to rep.li: {action_result['replies']}"
        for item in follow_up:
            await assert_shown(page, item)
        await expect(page.locator("#feed .msg.mine[data-kind='action']").last).to_contain_text(label)

        # 3. A photo upload through the file input gets a reply.
        picture = _tiny_png(tmp_path / "visit.png")
        async with page.expect_response(_is_post("/console/api/messages")) as uploaded:
            await page.set_input_files("#file-input", str(picture))
        upload_result = await _json_of(await uploaded.value)
        assert upload_result["status"] == "accepted"
        await expect(page.locator("#feed .msg.mine[data-kind='photo']").last).to_contain_text("visit.png")
        upload_replies = _to(upload_result["replies"], "rep.li")
        assert upload_replies, f"the photo produced no reply to rep.li: {upload_result['replies']}"
        for item in upload_replies:
            await assert_shown(page, item)

        await expect(page.locator("#feed .msg.mine[data-status='failed']")).to_have_count(0)
        await expect(page.locator("#error-banner")).to_be_hidden()
        await _screenshot(page, tmp_path / "console.png")
        assert errors == []


async def test_api_errors_are_shown_and_can_be_retried(browser: Browser, tmp_path: Path) -> None:
    async with console_page(browser, tmp_path) as (page, errors):
        await page.select_option("#member-select", "rep.zhao")

        async def refuse(route: Route) -> None:
            await route.fulfill(
                status=400,
                content_type="application/json",
                body=json.dumps({"error": "测试用的错误说明"}, ensure_ascii=False),
            )

        await page.route("**/console/api/messages", refuse)
        await page.fill("#message-input", "今天的任务")
        await page.click("#send-button")
        await expect(page.locator("#error-banner")).to_be_visible(timeout=WAIT_MS)
        await expect(page.locator("#error-banner")).to_contain_text("测试用的错误说明")
        failed = page.locator("#feed .msg.mine[data-status='failed']")
        await expect(failed).to_have_count(1, timeout=WAIT_MS)
        await expect(failed.locator(".msg-error")).to_contain_text("测试用的错误说明")

        # Retrying (same msg_id) once the server accepts it again.
        await page.unroute("**/console/api/messages", refuse)
        async with page.expect_response(_is_post("/console/api/messages")) as sent:
            await failed.get_by_role("button", name="重试").click()
        body = await _json_of(await sent.value)
        assert body["status"] == "accepted"
        await expect(page.locator("#feed .msg.mine[data-kind='text']").last).to_have_attribute(
            "data-status", "done", timeout=WAIT_MS
        )
        await page.click("#error-close")
        await expect(page.locator("#error-banner")).to_be_hidden()
        assert errors == []


async def test_feed_rendering_cards_and_markdown(browser: Browser, tmp_path: Path) -> None:
    """Feed items rendered from a scripted feed: escaping, markdown, choice cards, card updates."""
    card = {
        "task_id": "stage-abc123",
        "title": "选择客户阶段",
        "body": "客户:<b>新客户甲</b>",
        "fields": [{"label": "负责人", "value": "李明"}],
        "buttons": [],
        "choice_mode": "multiple",
        "options": [
            {"label": "初步接触", "action": "s1", "style": "default"},
            {"label": "方案沟通", "action": "s2", "style": "default"},
            {"label": "商务谈判", "action": "s3", "style": "default"},
        ],
        "submit": {"label": "确定", "action": "stage:set", "style": "primary"},
        "closed_note": "",
    }
    closed = {
        **card,
        "options": [],
        "submit": None,
        "choice_mode": "buttons",
        "closed_note": "已更新为:方案沟通",
    }

    def item(item_id: int, kind: str, payload: dict[str, Any], to: dict[str, str]) -> dict[str, Any]:
        return {
            "id": item_id,
            "platform": "console",
            "kind": kind,
            "to": to,
            "payload": payload,
            "status": "sent",
            "created_at": "2026-03-02T01:30:00",
        }

    member_items = [
        item(
            9001,
            "markdown",
            {
                "title": "今日任务",
                "text": "## 待办\n- **拜访** 客户A\n- 电话 客户B <img src=x onerror=alert(1)>\n第二行",
            },
            {"member": "rep.li"},
        ),
        item(9002, "card", {"card": card}, {"member": "rep.li"}),
    ]
    team_items = [item(9100, "text", {"text": "华东一组 日报:触达 3 次"}, {"team": "east"})]
    acted: list[dict[str, Any]] = []

    async def scripted_feed(route: Route) -> None:
        query = parse_qs(urlparse(route.request.url).query)
        after = int(query.get("after", ["0"])[0])
        if "member" in query:
            pool = member_items if query["member"][0] == "rep.li" else []
        else:
            pool = team_items if query["team"][0] == "east" else []
        items = [i for i in pool if i["id"] > after]
        await route.fulfill(
            status=200,
            content_type="application/json",
            body=json.dumps({"items": items, "now": "2026-03-02T02:00:00+00:00"}, ensure_ascii=False),
        )

    async def scripted_action(route: Route) -> None:
        acted.append(json.loads(route.request.post_data or "{}"))
        update = item(9003, "card_update", {"card": closed}, {"member": "rep.li"})
        thanks = item(9004, "text", {"text": "阶段已更新。"}, {"member": "rep.li"})
        member_items.extend([update, thanks])
        await route.fulfill(
            status=200,
            content_type="application/json",
            body=json.dumps(
                {"status": "accepted", "event_id": 1, "replies": [update, thanks]}, ensure_ascii=False
            ),
        )

    async with console_page(browser, tmp_path) as (page, errors):
        await page.route(re.compile(r"/console/api/feed\?"), scripted_feed)
        await page.route("**/console/api/actions", scripted_action)
        await page.select_option("#member-select", "rep.li")

        markdown = page.locator("#feed .msg[data-kind='markdown']")
        await expect(markdown).to_have_count(1, timeout=WAIT_MS)
        await expect(markdown.locator("strong")).to_have_text("拜访")
        await expect(markdown.locator("li")).to_have_count(2)
        await expect(markdown).to_contain_text("<img src=x onerror=alert(1)>")
        await expect(markdown.locator("img")).to_have_count(0)

        shown = page.locator('#feed .card[data-task-id="stage-abc123"]')
        await expect(shown).to_have_count(1, timeout=WAIT_MS)
        await expect(shown).to_contain_text("客户:<b>新客户甲</b>")
        await expect(shown.locator("input[type=checkbox]")).to_have_count(3)
        await shown.get_by_text("方案沟通").click()
        await shown.get_by_text("商务谈判").click()
        await shown.locator(".card-button", has_text="确定").click()

        await expect(shown.locator(".card-closed")).to_contain_text("已更新为:方案沟通", timeout=WAIT_MS)
        await expect(shown.locator(".card-button")).to_have_count(0)
        await expect(page.locator('#feed .card[data-task-id="stage-abc123"]')).to_have_count(1)
        await expect(page.locator("#feed .msg.bot[data-kind='text']")).to_contain_text("阶段已更新。")
        assert acted == [
            {"member": "rep.li", "task_id": "stage-abc123", "action": "stage:set", "values": ["s2", "s3"]}
        ]

        # The team group panel shows what was pushed to the group.
        await page.click("#team-list .team-item[data-team='east']")
        await expect(page.locator("#team-panel")).to_be_visible()
        await expect(page.locator("#team-feed .msg[data-kind='text']")).to_contain_text(
            "华东一组 日报", timeout=WAIT_MS
        )
        await _screenshot(page, tmp_path / "console-rendering.png")
        assert errors == []


async def test_clock_controls_follow_the_setting(browser: Browser, tmp_path: Path) -> None:
    async with console_page(browser, tmp_path) as (page, errors):
        await expect(page.locator("#clock")).to_contain_text("周", timeout=WAIT_MS)
        await expect(page.locator("#clock-controls")).to_be_hidden()
        assert errors == []

    async with console_page(browser, tmp_path / "movable", clock_control=True) as (page, errors):
        await expect(page.locator("#clock-controls")).to_be_visible(timeout=WAIT_MS)
        await expect(page.locator("#clock-shifted")).to_be_hidden()
        await page.fill("#clock-advance-hours", "48")
        async with page.expect_response(_is_post("/console/api/clock")) as moved:
            await page.click("#clock-advance-button")
        advanced = await _json_of(await moved.value)
        assert advanced["control_enabled"] is True
        await expect(page.locator("#clock-shifted")).to_be_visible(timeout=WAIT_MS)

        await page.fill("#clock-set-input", "2026-03-02T09:30")
        async with page.expect_response(_is_post("/console/api/clock")) as moved:
            await page.click("#clock-set-button")
        request_body = json.loads((await moved.value).request.post_data or "{}")
        assert re.fullmatch(r"2026-03-02T09:30:00[+-]\d{2}:\d{2}", request_body["now"])
        await _json_of(await moved.value)
        await expect(page.locator("#clock")).to_contain_text("2026-03-02", timeout=WAIT_MS)
        assert errors == []
