"""The chat page in a real browser (Debian's Chromium, headless) against the stand-ins.

One browser per module; each test gets a fresh service, vault and browser context. Every
page is watched: a console error (a CSP violation shows as one), an uncaught exception or
a request to anything but the service fails the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
import tomllib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, ConsoleMessage, Page, Request, async_playwright, expect

from smarthole_notes.settings import settings_path, settings_schema
from tests.standins.anthropic_api import AnthropicStandIn, status_reply, text_reply, tool_reply
from tests.standins.smarthole_server import SmartHoleStandIn
from tests.web_harness import CLIENT_NAME, WebService, isolated_credentials

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = os.environ.get("SMARTHOLE_SCREENSHOTS")
"""Set to a folder (e.g. `docs`) to keep the screenshots for the README."""

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium (apt install chromium)"
    ),
]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


@pytest_asyncio.fixture(loop_scope="module")
async def service(
    anthropic_api: AnthropicStandIn, vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[WebService]:
    isolated_credentials(monkeypatch, tmp_path / "config")
    async with WebService(vault, anthropic_api) as svc:
        yield svc


class Watch:
    """What a page did that it should not: console errors, exceptions, foreign requests."""

    def __init__(self, page: Page, origin: str) -> None:
        self.problems: list[str] = []
        self.origin = origin
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("request", self._request)

    def _console(self, message: ConsoleMessage) -> None:
        text = message.text
        # A refused request (4xx) is the page's business: it shows the reason to the user.
        refused = re.search(r"status of 4\d\d", text) and "Failed to load resource" in text
        if message.type == "error" and not refused:
            self.problems.append(f"console: {text}")

    def _request(self, request: Request) -> None:
        url = request.url
        if not (url.startswith(self.origin) or url.startswith(("data:", "ws://127.0.0.1"))):
            self.problems.append(f"foreign request: {url}")


@contextlib.asynccontextmanager
async def chat_page(
    browser: Browser,
    service: WebService,
    *,
    width: int = 900,
    height: int = 760,
    dark: bool = False,
    **options: Any,
) -> AsyncIterator[Page]:
    """The chat page, opened as the user does: with the start-up URL."""
    context = await browser.new_context(
        viewport={"width": width, "height": height},
        color_scheme="dark" if dark else "light",
        **options,
    )
    page = await context.new_page()
    watch = Watch(page, service.url)
    try:
        await page.goto(service.page_url)
        assert page.url == f"{service.url}/", "the token is removed from the address"
        await page.wait_for_selector("body[data-ready='true'][data-live='true']")
        yield page
    finally:
        await context.close()
    assert watch.problems == []


def message_box(page: Page) -> Any:
    return page.get_by_role("textbox", name="Message", exact=True)


def button(page: Page, name: str) -> Any:
    return page.get_by_role("button", name=name, exact=True)


async def send(page: Page, text: str) -> None:
    await message_box(page).fill(text)
    await message_box(page).press("Enter")


async def test_answer_streams_in_as_it_is_written(
    browser: Browser, service: WebService, anthropic_api: AnthropicStandIn
) -> None:
    answer = "Here is **your list**:\n\n- eggs\n- milk\n\n" + "More words as they come. " * 6
    anthropic_api.script(text_reply(answer, chunk_size=4, delay=0.03))
    async with chat_page(browser, service) as page:
        await send(page, "show my list")
        user = page.locator(".msg.user").last
        await expect(user).to_contain_text("show my list")
        await expect(user.locator(".source")).to_have_text("typed")
        await expect(user.locator("time")).not_to_have_text("")
        await expect(message_box(page)).to_have_value("")
        streaming = page.locator(".msg.assistant.streaming")
        await expect(streaming).to_contain_text("Here is")
        partial = await streaming.locator(".msg-body").inner_text()
        await expect(button(page, "Stop")).to_be_visible()
        await expect(page.locator("#typing")).to_be_visible()
        final = page.locator(".msg.assistant:not(.streaming)")
        await expect(final).to_contain_text("More words as they come.", timeout=10_000)
        assert len(partial) < len(answer)
        await expect(final.locator("strong")).to_have_text("your list")
        await expect(final.locator("li")).to_have_count(2)
        await expect(button(page, "Send")).to_be_visible()
        await expect(page.locator("#typing")).to_be_hidden()


async def test_model_output_and_notes_cannot_run_script_or_inject_html(
    browser: Browser, service: WebService, anthropic_api: AnthropicStandIn
) -> None:
    hostile = (
        "<script>window.pwned = 1</script>\n\n"
        '<img src=x onerror="window.pwned = 2">\n\n'
        "[click](javascript:window.pwned=3) and [web](https://example.com)\n\n"
        "![tracker](https://example.com/pixel.png)\n\n"
        '<a href="#" onclick="window.pwned=4">raw link</a>'
    )
    anthropic_api.script(text_reply(hostile))
    async with chat_page(browser, service) as page:
        await send(page, "<b>bold?</b> <img src=x onerror=window.pwned=5>")
        body = page.locator(".msg.assistant:not(.streaming) .msg-body")
        await expect(body).to_contain_text("<script>window.pwned = 1</script>")
        assert await page.evaluate("window.pwned") is None
        assert await body.locator("script, img, [onerror], [onclick]").count() == 0
        hrefs = await body.locator("a").evaluate_all(
            "links => links.map(a => a.getAttribute('href'))"
        )
        assert hrefs == ["https://example.com"]
        assert await body.locator("a").get_attribute("rel") == "noopener noreferrer"
        await expect(body).to_contain_text("[image: tracker]")
        user = page.locator(".msg.user .msg-body")
        await expect(user).to_have_text("<b>bold?</b> <img src=x onerror=window.pwned=5>")
        assert await page.evaluate("window.pwned") is None


async def test_tool_list_expands_with_each_input_and_outcome(
    browser: Browser, service: WebService, anthropic_api: AnthropicStandIn
) -> None:
    anthropic_api.script(
        tool_reply("write_file", {"path": "Lists/Shopping.md", "content": "- eggs\n"}),
        tool_reply("read_file", {"path": "Missing.md"}),
        text_reply("Added eggs to Lists/Shopping.md."),
    )
    async with chat_page(browser, service) as page:
        await send(page, "add eggs")
        answer = page.locator(".msg.assistant:not(.streaming)")
        await expect(answer).to_contain_text("Added eggs")
        tools = answer.locator("details.tools")
        await expect(tools.locator("summary")).to_have_text("2 tools used (1 failed)")
        await expect(tools.locator("li").first).to_be_hidden()
        await tools.locator("summary").click()
        items = tools.locator("li")
        await expect(items).to_have_count(2)
        await expect(items.nth(0).locator(".tool-name")).to_have_text("write_file")
        await expect(items.nth(0).locator(".tool-input")).to_contain_text(
            'path="Lists/Shopping.md"'
        )
        await expect(items.nth(0).locator(".tool-outcome")).to_have_text("succeeded")
        await expect(items.nth(1).locator(".tool-outcome")).to_have_text("failed")
        await page.reload()
        await page.wait_for_selector("body[data-ready='true']")
        await expect(page.locator(".msg.assistant details.tools summary")).to_have_text(
            "2 tools used (1 failed)"
        )


async def test_smarthole_messages_appear_live_with_their_source(
    browser: Browser,
    anthropic_api: AnthropicStandIn,
    vault: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    isolated_credentials(monkeypatch, tmp_path / "config")
    anthropic_api.script(text_reply("Milk is on the list."))
    async with (
        SmartHoleStandIn() as hole,
        WebService(vault, anthropic_api, smarthole_url=hole.url) as service,
        chat_page(browser, service) as page,
    ):
        await expect(page.locator("#smarthole-status")).to_contain_text("SmartHole: connected")
        await hole.route(CLIENT_NAME, "put milk on the list", input_method="voice")
        user = page.locator(".msg.user")
        await expect(user).to_contain_text("put milk on the list")
        await expect(user.locator(".source")).to_have_text("voice")
        await expect(page.locator(".msg.assistant:not(.streaming)")).to_contain_text(
            "Milk is on the list."
        )
        await hole.route(CLIENT_NAME, "typed on the phone", input_method="text")
        await expect(user.nth(1).locator(".source")).to_have_text("text")
        await hole.stop()
        await expect(page.locator("#smarthole-status")).to_contain_text(
            re.compile(r"SmartHole: (disconnected|not running \(retrying\))")
        )


async def test_stop_brings_send_back_within_a_second_keeping_the_message(
    browser: Browser, service: WebService, anthropic_api: AnthropicStandIn
) -> None:
    anthropic_api.script(text_reply("slowly " * 100, chunk_size=3, delay=0.2))
    async with chat_page(browser, service) as page:
        await send(page, "write slowly")
        await expect(page.locator(".msg.assistant.streaming")).to_contain_text("slo")
        stop = button(page, "Stop")
        await expect(stop).to_be_visible()
        started = time.monotonic()
        await stop.click()
        await expect(button(page, "Send")).to_be_visible(timeout=1000)
        elapsed = time.monotonic() - started
        await expect(page.locator("#typing")).to_be_hidden()
        await expect(page.locator(".msg.user")).to_contain_text("write slowly")
        assert (
            await page.locator(".msg.assistant, .error-note, [role='alert']:visible").count() == 0
        )
        await service.idle()
    assert elapsed < 1.0
    assert service.of_type("error") == []
    anthropic_api.wait_for_disconnect(0)


async def test_messages_sent_while_the_agent_works_are_shown_as_queued(
    browser: Browser, service: WebService, anthropic_api: AnthropicStandIn
) -> None:
    anthropic_api.script(
        text_reply("first answer " * 20, chunk_size=10, delay=0.05), text_reply("Second done.")
    )
    async with chat_page(browser, service) as page:
        await send(page, "first")
        await expect(page.locator(".msg.assistant.streaming")).to_be_visible()
        await send(page, "second")
        second = page.locator(".msg.user", has_text="second")
        await expect(second.locator(".badge.queued")).to_have_text("queued")
        await expect(page.locator(".msg.assistant", has_text="Second done.")).to_be_visible(
            timeout=10_000
        )
        await expect(second.locator(".badge.queued")).to_have_count(0)


async def test_agent_messages_and_questions_appear_at_once(
    browser: Browser, service: WebService, anthropic_api: AnthropicStandIn
) -> None:
    anthropic_api.script(
        tool_reply("send_message", {"message": "Working on it…"}),
        tool_reply(
            "send_message", {"message": "Which list: shopping or to-do?", "is_question": True}
        ),
        text_reply("I asked which list."),
    )
    async with chat_page(browser, service) as page:
        await send(page, "add bread")
        updates = page.locator(".msg.agent-message")
        await expect(updates).to_have_count(2)
        await expect(updates.nth(0)).to_contain_text("Working on it…")
        await expect(updates.nth(1).locator(".badge.question")).to_have_text("Question")
        await expect(updates.nth(1)).to_contain_text("Which list")
        await expect(page.locator(".msg.assistant:not(.streaming)")).to_contain_text("I asked")


async def test_model_choice_persists_to_settings(
    browser: Browser, service: WebService, anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    async with chat_page(browser, service) as page:
        picker = page.get_by_role("combobox", name="Model", exact=True)
        await expect(picker).to_have_value("claude-haiku-4-5")
        await expect(picker.locator("option")).to_have_count(4)
        await picker.select_option("claude-opus-4-7")
        await expect(page.locator("#notice")).to_contain_text("claude-opus-4-7")
        await page.reload()
        await page.wait_for_selector("body[data-ready='true']")
        await expect(page.get_by_role("combobox", name="Model", exact=True)).to_have_value(
            "claude-opus-4-7"
        )
        await send(page, "hello")
        await expect(page.locator(".msg.assistant:not(.streaming)")).to_be_visible()
    assert tomllib.loads(settings_path(vault).read_text())["model"] == "claude-opus-4-7"
    assert anthropic_api.requests[-1].body["model"] == "claude-opus-4-7"


async def test_editing_a_message_forks_the_conversation(
    browser: Browser, service: WebService, anthropic_api: AnthropicStandIn
) -> None:
    anthropic_api.script(
        text_reply("Answer one."), text_reply("Answer two."), text_reply("Answer to the edit.")
    )
    async with chat_page(browser, service) as page:
        await send(page, "first request")
        await expect(page.locator(".msg.assistant", has_text="Answer one.")).to_be_visible()
        await send(page, "second request")
        await expect(page.locator(".msg.assistant", has_text="Answer two.")).to_be_visible()
        first = page.locator(".msg.user", has_text="first request")
        await first.hover()
        await first.get_by_role("button", name="Edit message").click()
        editor = page.get_by_role("textbox", name="Edit message")
        await expect(editor).to_be_focused()
        await editor.fill("changed my mind")
        await editor.press("Escape")
        await expect(editor).to_have_count(0)
        await expect(first.locator(".msg-body")).to_have_text("first request")
        await first.get_by_role("button", name="Edit message").click()
        await page.get_by_role("textbox", name="Edit message").fill("first request, edited")
        await page.get_by_role("textbox", name="Edit message").press("Enter")
        await expect(page.locator(".msg.assistant", has_text="Answer to the edit.")).to_be_visible()
        await expect(page.locator(".msg")).to_have_count(2)
        # The two replaced answers were paid for: still in the conversation's total.
        total = page.locator("section.conversation .boundary .usage-total")
        branches = re.compile(r"^1 answer \+ earlier branches: ")
        await expect(total).to_have_text(branches)
        live = await total.inner_text()
        await page.reload()
        await page.wait_for_selector("body[data-ready='true']")
        texts = await page.locator(".msg .msg-body").all_inner_texts()
        await expect(total).to_have_text(live)  # the same figures after a reload
    assert texts == ["first request, edited", "Answer to the edit."]


async def test_copy_puts_the_message_text_on_the_clipboard(
    browser: Browser, service: WebService, anthropic_api: AnthropicStandIn
) -> None:
    anthropic_api.script(text_reply("Copy **this** answer."))
    async with chat_page(
        browser, service, permissions=["clipboard-read", "clipboard-write"]
    ) as page:
        await send(page, "something to copy")
        answer = page.locator(".msg.assistant:not(.streaming)")
        await expect(answer).to_contain_text("Copy this answer.")
        await answer.hover()
        await answer.get_by_role("button", name="Copy message").click()
        await expect(page.locator("#notice")).to_have_text("Copied")
        assert await page.evaluate("navigator.clipboard.readText()") == "Copy **this** answer."
        user = page.locator(".msg.user")
        await user.get_by_role("button", name="Copy message").focus()
        await page.keyboard.press("Enter")
        assert await page.evaluate("navigator.clipboard.readText()") == "something to copy"


async def test_settings_round_trip_with_the_key_only_ever_shown_as_set(
    browser: Browser,
    anthropic_api: AnthropicStandIn,
    vault: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    isolated_credentials(monkeypatch, tmp_path / "config", key=None)
    secret = "fake-key-api03-page-secret-0123456789"
    async with WebService(vault, anthropic_api) as service, chat_page(browser, service) as page:
        await expect(page.locator("#banner")).to_contain_text("No Anthropic API key")
        await button(page, "Settings").click()
        dialog = page.get_by_role("dialog", name="Settings")
        await expect(dialog).to_be_visible()
        await expect(dialog.locator("#api-key-status")).to_have_text("Not set")
        for label in (
            "Model ID",
            "Information architecture",
            "Stream idle timeout (seconds)",
            "Verbose logging",
            "Connect to SmartHole",
            "SmartHole address",
            "Client name",
            "Routing description",
            "Idle timeout (minutes)",
            "Conversations kept",
            "Pending question timeout (minutes)",
            "Retrospection prompt",
            "Version the vault with git",
            "Commit after each processed message",
            "Reflect on each ended conversation (retrospection)",
            "Anthropic API key",
        ):
            await expect(dialog.get_by_label(label, exact=True)).to_have_count(1)
        await dialog.get_by_label("Idle timeout (minutes)", exact=True).fill("45")
        await dialog.get_by_label("Version the vault with git", exact=True).check()
        await dialog.get_by_label("Anthropic API key", exact=True).fill(secret)
        await button(page, "Save settings").click()
        await expect(dialog.locator("#settings-status")).to_have_text("Saved.")
        await expect(dialog.get_by_label("Anthropic API key", exact=True)).to_have_value("")
        await expect(dialog.locator("#api-key-status")).to_have_text("Set (saved)")
        await dialog.get_by_label("Client name", exact=True).fill("not valid!")
        await button(page, "Save settings").click()
        await expect(dialog.locator("#setting-client_name-error")).to_contain_text("client_name")
        await expect(dialog.get_by_label("Client name", exact=True)).to_have_attribute(
            "aria-invalid", "true"
        )
        await page.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()
        await expect(page.locator("#banner")).to_be_hidden()
        await page.reload()
        await page.wait_for_selector("body[data-ready='true']")
        await button(page, "Settings").click()
        await expect(dialog.get_by_label("Idle timeout (minutes)", exact=True)).to_have_value("45")
        await expect(dialog.get_by_label("Version the vault with git", exact=True)).to_be_checked()
        await expect(dialog.locator("#api-key-status")).to_have_text("Set (saved)")
        assert secret not in await page.content()
    saved = tomllib.loads(settings_path(vault).read_text())
    assert saved == {"conversation_idle_timeout_minutes": 45, "enable_git_version_control": True}


async def test_routing_description_is_generated_from_the_information_architecture(
    browser: Browser, service: WebService, anthropic_api: AnthropicStandIn
) -> None:
    anthropic_api.script(text_reply("Personal notes assistant for recipes and menus."))
    async with chat_page(browser, service) as page:
        await button(page, "Settings").click()
        dialog = page.get_by_role("dialog", name="Settings")
        await dialog.get_by_label("Information architecture", exact=True).fill("Recipes/ only.")
        await button(page, "Generate from information architecture").click()
        routing = dialog.get_by_label("Routing description", exact=True)
        await expect(routing).to_have_value("Personal notes assistant for recipes and menus.")
    assert "Recipes/ only." in str(anthropic_api.requests[-1].body["messages"])


async def test_undo_is_offered_on_answers_that_changed_notes_when_git_is_on(
    browser: Browser,
    anthropic_api: AnthropicStandIn,
    vault: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    isolated_credentials(monkeypatch, tmp_path / "config")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    settings_path(vault).parent.mkdir(parents=True)
    settings_path(vault).write_text("enable_git_version_control = true\n")
    anthropic_api.script(
        tool_reply("write_file", {"path": "Lists/Shopping.md", "content": "- eggs\n"}),
        text_reply("Added eggs."),
        text_reply("vault(lists): add eggs\n\nAdded eggs."),
        text_reply("Nothing to change."),
    )
    async with (
        WebService(vault, anthropic_api, undo=True) as service,
        chat_page(browser, service) as page,
    ):
        await send(page, "add eggs")
        changed = page.locator(".msg.assistant", has_text="Added eggs.")
        await expect(changed).to_be_visible()
        await send(page, "just chat")
        unchanged = page.locator(".msg.assistant", has_text="Nothing to change.")
        await expect(unchanged).to_be_visible()
        await expect(
            unchanged.get_by_role("button", name="Undo the changes of this answer")
        ).to_have_count(0)
        await changed.hover()
        await changed.get_by_role("button", name="Undo the changes of this answer").click()
        await expect(page.locator("#notice")).to_contain_text("Undone")
    assert not (vault / "Lists" / "Shopping.md").exists()


async def test_retrospection_shows_as_a_distinct_system_message(
    browser: Browser, service: WebService
) -> None:
    async with chat_page(browser, service) as page:
        service.bus.publish(
            "retrospection",
            title="Weekly shopping list",
            text="- The vault lacks a **Lists** index.",
        )
        message = page.locator(".msg.system.retrospection")
        await expect(message.locator(".who")).to_have_text("Retrospection: Weekly shopping list")
        await expect(message.locator("strong")).to_have_text("Lists")


async def test_failed_message_waits_in_the_inbox_and_can_be_processed_again(
    browser: Browser, service: WebService, anthropic_api: AnthropicStandIn
) -> None:
    anthropic_api.script(status_reply(400, message="bad"), text_reply("Worked the second time."))
    async with chat_page(browser, service) as page:
        await send(page, "please work")
        await expect(page.locator(".error-note")).to_be_visible()
        await expect(page.locator("#inbox-count")).to_have_text("1")
        await page.get_by_role("button", name="Inbox, 1 waiting").click()
        inbox = page.get_by_role("dialog", name="Inbox")
        item = inbox.locator(".inbox-item")
        await expect(item).to_contain_text("please work")
        await expect(item).to_contain_text("failed")
        await item.get_by_role("button", name="Process again").click()
        await expect(
            page.locator(".msg.assistant", has_text="Worked the second time.")
        ).to_be_visible()
        await expect(inbox.locator("#inbox-empty")).to_be_visible()
        await expect(page.locator("#inbox-count")).to_be_hidden()


async def test_clearing_history_asks_for_confirmation(
    browser: Browser, service: WebService, anthropic_api: AnthropicStandIn
) -> None:
    async with chat_page(browser, service) as page:
        await send(page, "remember this")
        await expect(page.locator(".msg.assistant:not(.streaming)")).to_be_visible()
        await button(page, "Settings").click()
        await button(page, "Clear conversation history…").click()
        confirm = page.get_by_role("dialog", name="Clear conversation history?")
        await expect(confirm).to_be_visible()
        await confirm.get_by_role("button", name="Cancel").click()
        await expect(page.locator(".msg")).to_have_count(2)
        await button(page, "Clear conversation history…").click()
        await confirm.get_by_role("button", name="Clear history").click()
        await expect(page.locator(".msg")).to_have_count(0)
    assert service.store.list_conversations() == []


async def test_history_shows_titles_and_loads_older_conversations(
    browser: Browser, service: WebService
) -> None:
    start = datetime.now(UTC) - timedelta(days=20)
    for number in range(8):
        at = start + timedelta(days=number)
        active, _ = service.store.begin_message(at, timedelta(minutes=30))
        service.store.add_message(active.id, "user", f"request {number}", source="chat", at=at)
        service.store.add_message(active.id, "assistant", f"answer {number}", source="chat", at=at)
        service.store.end_conversation(active.id, "explicit", at)
        service.store.set_summary(active.id, f"Conversation number {number}", "A summary.")
    async with chat_page(browser, service, height=500) as page:
        titles = page.locator(".boundary h2")
        await expect(titles).to_have_count(5)
        await expect(titles.last).to_have_text("Conversation number 7")
        await expect(titles.first).to_have_text("Conversation number 3")
        await page.locator("#log").evaluate("log => log.scrollTo(0, 0)")
        await expect(titles).to_have_count(8)
        await expect(titles.first).to_have_text("Conversation number 0")
        await expect(page.locator("#history-start")).to_be_visible()


async def test_dropped_obsidian_links_and_paths_become_vault_paths(
    browser: Browser, service: WebService, vault: Path
) -> None:
    async with chat_page(browser, service) as page:
        box = message_box(page)
        await box.fill("summarise")
        dropped = "\n".join(
            [
                "obsidian://open?vault=Notes&file=Lists%2FShopping",
                f"{vault}/Projects/Garden.md",
                "obsidian://open?vault=Notes&file=Photos%2Fcat.png",
            ]
        )
        await box.evaluate(
            """(box, text) => {
                const data = new DataTransfer();
                data.setData('text/plain', text);
                box.dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true}));
            }""",
            dropped,
        )
        await expect(box).to_have_value(
            "summarise Lists/Shopping.md Projects/Garden.md Photos/cat.png"
        )


async def test_keyboard_alone_sends_adds_lines_and_opens_settings(
    browser: Browser, service: WebService, anthropic_api: AnthropicStandIn
) -> None:
    anthropic_api.script(text_reply("Two lines received."))
    async with chat_page(browser, service) as page:
        box = message_box(page)
        await expect(box).to_be_focused()
        await page.keyboard.type("line one")
        await page.keyboard.press("Shift+Enter")
        await page.keyboard.type("line two")
        await expect(box).to_have_value("line one\nline two")
        await page.keyboard.press("Enter")
        await expect(page.locator(".msg.user .msg-body")).to_have_text("line one\nline two")
        await expect(page.locator(".msg.assistant:not(.streaming)")).to_be_visible()
        await button(page, "Settings").focus()
        await page.keyboard.press("Enter")
        dialog = page.get_by_role("dialog", name="Settings")
        await expect(dialog).to_be_visible()
        await page.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()
        unnamed = await page.evaluate(
            """() => Array.from(document.querySelectorAll('button, select, input, textarea'))
                .filter(el => !el.closest('[hidden]') && el.type !== 'hidden')
                .filter(el => !(el.getAttribute('aria-label') || el.textContent.trim()
                    || (el.labels && el.labels.length)))
                .map(el => el.outerHTML.slice(0, 80))"""
        )
        assert unnamed == []


async def test_page_without_access_says_how_to_get_it_back(
    browser: Browser, service: WebService
) -> None:
    async with chat_page(browser, service) as page:
        await page.context.clear_cookies()
        await button(page, "Settings").click()
        await expect(page.locator("#banner")).to_contain_text("lost its access")


async def test_screenshots_narrow_wide_light_and_dark(
    browser: Browser,
    anthropic_api: AnthropicStandIn,
    vault: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    isolated_credentials(monkeypatch, tmp_path / "config")
    anthropic_api.script(
        tool_reply("write_file", {"path": "Lists/Shopping.md", "content": "- eggs\n- milk\n"}),
        text_reply(
            "Added **eggs** and **milk** to `Lists/Shopping.md`.\n\nThe list now has:\n\n"
            "- eggs\n- milk"
        ),
        tool_reply("search_files", {"pattern": "dentist"}),
        text_reply(
            "Your next dentist appointment is on **Tuesday at 10:00** "
            "(noted in `Journal/2026-02-03.md`)."
        ),
    )
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    async with (
        SmartHoleStandIn() as hole,
        WebService(vault, anthropic_api, smarthole_url=hole.url) as service,
    ):
        async with chat_page(browser, service) as page:
            await hole.route(CLIENT_NAME, "add eggs and milk to my shopping list")
            await expect(page.locator(".msg.assistant:not(.streaming)")).to_be_visible()
            await send(page, "when is my next dentist appointment?")
            await expect(page.locator(".msg.assistant:not(.streaming)")).to_have_count(2)
        shots: list[Path] = []
        for width, height, dark, name in (
            (400, 760, False, "chat-400-light.png"),
            (400, 760, True, "chat-400-dark.png"),
            (1280, 800, False, "chat-wide-light.png"),
            (1280, 800, True, "chat-wide-dark.png"),
        ):
            async with chat_page(browser, service, width=width, height=height, dark=dark) as page:
                service.bus.publish(
                    "retrospection",
                    title="Groceries and appointments",
                    text="A `Lists/` index note would have saved a search.",
                )
                await expect(page.locator(".retrospection")).to_be_visible()
                await page.locator(".msg.assistant details.tools").first.locator("summary").click()
                await page.locator("#log").evaluate("log => log.scrollTo(0, log.scrollHeight)")
                await page.mouse.move(0, 0)
                await asyncio.sleep(0.1)
                path = folder / name
                await page.screenshot(path=str(path))
                shots.append(path)
                fits = await page.evaluate("document.documentElement.scrollWidth <= innerWidth")
                assert fits, f"no horizontal scrolling at {width} px"
        async with chat_page(browser, service, width=400, dark=True) as page:
            await button(page, "Settings").click()
            await page.get_by_role("dialog", name="Settings").wait_for()
            path = folder / "settings-400-dark.png"
            await page.screenshot(path=str(path))
            shots.append(path)
    assert all(p.stat().st_size > 10_000 for p in shots)


async def test_the_settings_form_is_built_from_the_served_schema(
    browser: Browser, service: WebService
) -> None:
    declared = settings_schema()["properties"]
    async with chat_page(browser, service) as page:
        await button(page, "Settings").click()
        dialog = page.get_by_role("dialog", name="Settings")
        idle = dialog.get_by_label(declared["conversation_idle_timeout_minutes"]["title"])
        await expect(idle).to_have_attribute("min", "1")
        await expect(idle).to_have_attribute("max", "10080")
        timeout = dialog.get_by_label(declared["stream_idle_timeout_seconds"]["title"])
        await expect(timeout).to_have_attribute("min", "5")
        await expect(timeout).to_have_attribute("max", "3600")
        await expect(dialog.locator("#setting-client_name")).to_have_attribute("maxlength", "64")
        for key, schema in declared.items():
            await expect(dialog.get_by_label(schema["title"], exact=True)).to_have_count(1)
            await expect(dialog.locator(f"#setting-{key}-hint")).to_contain_text(
                schema["description"]
            )
