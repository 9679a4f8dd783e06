"""The chat page tells the truth about every message, also after a reload (issue 13).

Real Chromium against the real service (pipeline, inbox, SQLite history, web app) and the
Anthropic stand-in over sockets. Each test reloads the page: what the user saw live must
still be there, with the message's real time and its state.
"""

from __future__ import annotations

import asyncio
import re
import tomllib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, expect

from smarthole_notes.settings import load_settings, save_settings, settings_path
from tests.standins.anthropic_api import (
    AnthropicStandIn,
    refusal_reply,
    status_reply,
    text_reply,
    tool_reply,
)
from tests.test_web_page import CHROMIUM, button, chat_page, message_box, send
from tests.test_web_page import browser as browser  # the fixture, for this module too
from tests.web_harness import WebService, isolated_credentials

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium (apt install chromium)"
    ),
]

ZONE = "America/New_York"
"""The browser's zone: times on the page are the user's local times, not the server's."""
PAGE_OPTIONS: dict[str, Any] = {"timezone_id": ZONE, "locale": "en-GB"}


@pytest_asyncio.fixture(loop_scope="module")
async def keyless(
    anthropic_api: AnthropicStandIn, vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[WebService]:
    """The service with no API key anywhere."""
    isolated_credentials(monkeypatch, tmp_path / "config", key=None)
    async with WebService(vault, anthropic_api) as svc:
        yield svc


@pytest_asyncio.fixture(loop_scope="module")
async def keyed(
    anthropic_api: AnthropicStandIn, vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[WebService]:
    """The service with the test key (from an isolated configuration folder)."""
    isolated_credentials(monkeypatch, tmp_path / "config")
    async with WebService(vault, anthropic_api) as svc:
        yield svc


async def reload(page: Page) -> None:
    await page.reload()
    await page.wait_for_selector("body[data-ready='true'][data-live='true']")


async def assert_idle(page: Page) -> None:
    """Not busy: Send (not Stop), no "Working…"."""
    await expect(button(page, "Send")).to_be_visible()
    await expect(button(page, "Stop")).to_have_count(0)
    await expect(page.locator("#typing")).to_be_hidden()


def user(page: Page, text: str) -> Any:
    return page.locator(".msg.user", has_text=text)


def local_hhmm(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(ZoneInfo(ZONE)).strftime("%H:%M")


async def test_process_again_without_a_key_never_leaves_the_page_working(
    browser: Browser, keyless: WebService, anthropic_api: AnthropicStandIn
) -> None:
    service = keyless
    async with chat_page(browser, service, **PAGE_OPTIONS) as page:
        sent_at = datetime.now(UTC)
        await send(page, "remember the milk")
        mine = user(page, "remember the milk")
        badge = mine.locator(".badge.state")
        await expect(badge).to_have_text("waiting for an API key")
        note = page.locator(".msg.error-note")
        await expect(note).to_contain_text("API key")
        await assert_idle(page)

        # "Process again" from the inbox, then from the message itself: still no key.
        await page.get_by_role("button", name="Inbox, 1 waiting").click()
        inbox = page.get_by_role("dialog", name="Inbox")
        item = inbox.locator(".inbox-item")
        await expect(item.locator(".badge")).to_have_text("waiting for an API key")
        await item.get_by_role("button", name="Process again").click()
        await expect(page.locator("#notice")).to_contain_text("Waiting for an API key")
        await inbox.get_by_role("button", name="Close").click()
        await assert_idle(page)
        await note.get_by_role("button", name="Process again").click()
        await expect(page.locator("#notice")).to_contain_text("Waiting for an API key")
        await assert_idle(page)
        await expect(badge).to_have_text("waiting for an API key")
        await asyncio.sleep(0.5)  # anything late that could make it look busy
        await assert_idle(page)

        # After a reload: the message is still there, with its real time and its state.
        await reload(page)
        await assert_idle(page)
        await expect(mine).to_have_count(1)
        await expect(mine.locator(".badge.state")).to_have_text("waiting for an API key")
        await expect(page.locator(".msg.error-note")).to_contain_text("API key")
        shown = await mine.locator("time").get_attribute("datetime")
        assert shown is not None
        assert abs(datetime.fromisoformat(shown.replace("Z", "+00:00")) - sent_at) < timedelta(
            seconds=5
        )
        await expect(message_box(page)).to_be_enabled()

        # A key set in Settings: the waiting message is processed at once.
        anthropic_api.script(text_reply("Milk noted."))
        async with service.http() as http:
            saved = await http.put("/api/settings", json={"api_key": "fake-key-for-the-page"})
        assert saved.status_code == 200
        await expect(page.locator(".msg.assistant", has_text="Milk noted.")).to_be_visible(
            timeout=15_000
        )
        await expect(mine.locator(".badge.state")).to_have_count(0)
        await expect(page.locator(".msg.error-note")).to_have_count(0)
        await assert_idle(page)
    assert len(anthropic_api.requests) == 1


async def test_failed_retrying_and_refused_messages_keep_their_state_after_reload(
    browser: Browser,
    anthropic_api: AnthropicStandIn,
    vault: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    isolated_credentials(monkeypatch, tmp_path / "config")
    save_settings(vault, {"retry_failed_messages_minutes": [90]})  # no retry during the test
    anthropic_api.script(
        *[status_reply(529, retry_after=0)] * 3,  # transient: a retry is scheduled
        status_reply(400, message="messages: bad shape"),  # a retry cannot fix it
        refusal_reply(),  # Claude declines
    )
    async with (
        WebService(vault, anthropic_api) as service,
        chat_page(browser, service, **PAGE_OPTIONS) as page,
    ):
        await send(page, "first: overloaded")
        await expect(user(page, "first").locator(".badge.state")).to_contain_text(
            "failed, next try at", timeout=15_000
        )
        await send(page, "second: invalid")
        await expect(user(page, "second").locator(".badge.state")).to_have_text(
            "failed", timeout=15_000
        )
        await send(page, "third: declined")
        await expect(user(page, "third").locator(".badge.state")).to_have_text(
            "refused", timeout=15_000
        )
        await service.idle()
        states = service.pipeline.message_states()
        retry = next(s for s in states.values() if s.state == "retry_scheduled")
        assert retry.next_attempt_at is not None
        expected_time = local_hhmm(retry.next_attempt_at.isoformat())

        for _ in range(2):  # live, then after a reload: the same truth
            await assert_idle(page)
            first, second, third = (user(page, w) for w in ("first", "second", "third"))
            await expect(first.locator(".badge.state")).to_have_text(
                f"failed, next try at {expected_time}"
            )
            await expect(second.locator(".badge.state")).to_have_text("failed")
            await expect(third.locator(".badge.state")).to_have_text("refused")
            notes = page.locator(".msg.error-note")
            await expect(notes).to_have_count(2)
            await expect(notes.nth(0)).to_contain_text("overloaded")
            await expect(notes.nth(0)).to_contain_text("next try at")
            await expect(notes.nth(1)).to_contain_text("process it again")
            refusal = page.locator(".msg.refusal")
            await expect(refusal).to_have_count(1)
            await expect(refusal.locator(".badge.refused")).to_have_text("refused")
            await expect(page.locator(".msg.assistant")).to_have_count(0)  # nothing "answered"
            texts = await page.locator(".msg.user .msg-body").all_inner_texts()
            assert texts == ["first: overloaded", "second: invalid", "third: declined"]
            await expect(page.locator("#inbox-count")).to_have_text("3")
            await reload(page)

        await page.get_by_role("button", name="Inbox, 3 waiting").click()
        inbox = page.get_by_role("dialog", name="Inbox")
        badges = inbox.locator(".inbox-item .badge")
        await expect(badges).to_have_text(
            [f"failed, next try at {expected_time}", "failed", "refused"]
        )


async def test_mid_task_messages_and_retrospections_survive_reload(
    browser: Browser,
    anthropic_api: AnthropicStandIn,
    vault: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    isolated_credentials(monkeypatch, tmp_path / "config")
    save_settings(vault, {"enable_conversation_retrospection": True})
    anthropic_api.script(
        tool_reply("send_message", {"message": "Looking through your lists…"}),
        tool_reply(
            "send_message", {"message": "Which list: shopping or to-do?", "is_question": True}
        ),
        tool_reply("end_conversation", {}),
        text_reply("I asked which list; ask me again any time."),
        text_reply('{"title": "Choosing a list for bread", "summary": "The user asked. Done."}'),
        text_reply("- The vault lacks a **Lists** index."),
    )
    async with (
        WebService(vault, anthropic_api) as service,
        chat_page(browser, service, **PAGE_OPTIONS) as page,
    ):
        await send(page, "add bread")
        answer = page.locator(".msg.assistant", has_text="I asked which list")
        await expect(answer).to_be_visible(timeout=15_000)
        retrospection = page.locator(".msg.system.retrospection")
        await expect(retrospection).to_have_count(1, timeout=15_000)

        for _ in range(2):  # live, then after a reload
            updates = page.locator(".msg.agent-message")
            await expect(updates).to_have_count(2)
            await expect(updates.nth(0)).to_contain_text("Looking through your lists…")
            await expect(updates.nth(0).locator(".badge.question")).to_have_count(0)
            await expect(updates.nth(1)).to_contain_text("Which list")
            await expect(updates.nth(1).locator(".badge.question")).to_have_text("Question")
            order = await page.locator(".msg").evaluate_all(
                "nodes => nodes.map(n => n.classList.contains('user') ? 'user'"
                " : n.classList.contains('agent-message') ? 'update'"
                " : n.classList.contains('retrospection') ? 'retrospection'"
                " : n.classList.contains('assistant') ? 'answer' : 'other')"
            )
            assert order == ["user", "update", "update", "answer", "retrospection"]
            await expect(retrospection.locator(".who")).to_have_text(
                "Retrospection: Choosing a list for bread"
            )
            await expect(retrospection.locator("strong")).to_have_text("Lists")
            await assert_idle(page)
            await reload(page)


async def test_smarthole_not_running_is_quiet_and_points_to_settings(
    browser: Browser,
    anthropic_api: AnthropicStandIn,
    vault: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    isolated_credentials(monkeypatch, tmp_path / "config")
    nothing_listens = "ws://127.0.0.1:9"  # discard port: connection refused
    async with (
        WebService(vault, anthropic_api, smarthole_url=nothing_listens) as service,
        chat_page(browser, service) as page,
    ):
        pill = page.locator("#smarthole-status")
        await expect(pill).to_contain_text("SmartHole: not running (retrying)", timeout=10_000)
        await expect(pill).to_have_attribute("data-status", "absent")
        await asyncio.sleep(1.5)  # a retry or two later: still quiet, no "connecting" flashes
        await expect(pill).to_have_attribute("data-status", "absent")
        dot = await pill.locator(".dot").evaluate("d => getComputedStyle(d).backgroundColor")
        assert dot in ("rgba(0, 0, 0, 0)", "transparent"), dot  # not the red alarm
        assert "Connect to SmartHole" in (await pill.get_attribute("title") or "")
        await page.get_by_role(
            "button", name="Not using SmartHole? Turn the connection off in Settings"
        ).click()
        dialog = page.get_by_role("dialog", name="Settings")
        await expect(dialog).to_be_visible()
        checkbox = dialog.get_by_role("checkbox", name="Connect to SmartHole")
        await expect(checkbox).to_be_focused()
        await checkbox.uncheck()
        await dialog.get_by_role("button", name="Save settings").click()
        await expect(pill).to_contain_text("SmartHole: disabled")
        await reload(page)
        await expect(pill).to_contain_text("SmartHole: disabled")
    assert re.search(r"cannot reach SmartHole", str(service.of_type("status")))


async def test_saving_settings_writes_what_the_form_shows(
    browser: Browser,
    anthropic_api: AnthropicStandIn,
    vault: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    isolated_credentials(monkeypatch, tmp_path / "config")
    path = settings_path(vault)
    path.parent.mkdir()
    path.write_text(
        "# mine\nconversation_idle_timeout_minutes = -5\nretry_failed_messages_minutes = [5, 1]\n"
    )
    async with (
        WebService(vault, anthropic_api) as service,
        chat_page(browser, service) as page,
    ):
        await button(page, "Settings").click()
        dialog = page.get_by_role("dialog", name="Settings")
        idle = dialog.get_by_label("Idle timeout (minutes)")
        retries = dialog.get_by_label("Automatic retries (minutes)")
        await expect(idle).to_have_value("30")  # the default in effect, marked
        await expect(idle).to_have_attribute("aria-invalid", "true")
        await expect(
            dialog.locator("#setting-conversation_idle_timeout_minutes-error")
        ).to_contain_text("Saving writes the value shown")
        await expect(retries).to_have_value("1, 5, 15, 60, 240")
        await expect(retries).to_have_attribute("aria-invalid", "true")

        # Unreadable list: said at the field, nothing sent.
        await retries.fill("1, soon")
        await dialog.get_by_role("button", name="Save settings").click()
        await expect(dialog.locator("#settings-status")).to_contain_text("numbers separated by")
        assert "[5, 1]" in path.read_text()

        await retries.fill("2, 10 30")
        await dialog.get_by_role("button", name="Save settings").click()
        await expect(dialog.locator("#settings-status")).to_have_text("Saved.")
        await expect(idle).not_to_have_attribute("aria-invalid", "true")
        await expect(dialog.locator("#settings-problems")).to_be_hidden()

        # Out of order: the service's reason, at the field.
        await retries.fill("10, 2")
        await dialog.get_by_role("button", name="Save settings").click()
        await expect(
            dialog.locator("#setting-retry_failed_messages_minutes-error")
        ).to_contain_text("ascending order")
    saved = tomllib.loads(path.read_text())
    assert saved["conversation_idle_timeout_minutes"] == 30
    assert saved["retry_failed_messages_minutes"] == [2, 10, 30]
    assert path.read_text().startswith("# mine\n")
    assert load_settings(vault).problems == []


async def test_each_answer_shows_its_cost_and_the_conversation_its_total(
    browser: Browser, anthropic_api: AnthropicStandIn, keyed: WebService
) -> None:
    anthropic_api.script(text_reply("First answer."), text_reply("Second answer."))
    async with chat_page(browser, keyed, **PAGE_OPTIONS) as page:
        await send(page, "hello")
        await expect(page.locator(".msg.assistant", has_text="First answer.")).to_be_visible()
        await send(page, "and again")
        await expect(page.locator(".msg.assistant", has_text="Second answer.")).to_be_visible()
        for _ in range(2):  # live, then after a reload
            lines = page.locator(".msg.assistant .usage")
            await expect(lines).to_have_count(2)
            await expect(lines.first).to_have_text(
                re.compile(r"^[\d,]+ in · [\d,]+ out · \$0\.\d+$")
            )
            total = page.locator("section.conversation .boundary .usage-total")
            await expect(total).to_have_text(re.compile(r"^2 answers: [\d,]+ in · [\d,]+ out · \$"))
            await reload(page)
        await page.locator("#settings-button").click()
        await expect(page.locator("#index-status")).to_have_text(re.compile(r"[Ii]ndex"))
        # This month's spending: the two answers, with tokens and an estimated price.
        await expect(page.locator("#spending")).to_have_text(
            re.compile(r"^About \$\d+\.\d+ since \d+ \w+: [\d,]+ in · [\d,]+ out\. Estimated")
        )


async def test_a_request_that_failed_after_a_round_shows_what_it_cost(
    browser: Browser, anthropic_api: AnthropicStandIn, keyed: WebService
) -> None:
    anthropic_api.script(
        tool_reply("list_files", {"path": ""}, usage={"input_tokens": 1200, "output_tokens": 30}),
        *[status_reply(500)] * 3,
    )
    async with chat_page(browser, keyed, **PAGE_OPTIONS) as page:
        await send(page, "tidy my notes")
        for _ in range(2):  # live, then after a reload
            line = page.locator(".msg.user .usage")
            await expect(line).to_have_text(
                re.compile(r"^unanswered attempts: 1,200 in · 30 out · \$0\.\d+$")
            )
            total = page.locator("section.conversation .boundary .usage-total")
            await expect(total).to_have_text(
                re.compile(r"^0 answers \+ unanswered attempts: 1,200 in · 30 out · \$")
            )
            await expect(page.locator(".msg.assistant .usage")).to_have_count(0)
            await reload(page)


async def test_a_conversations_total_counts_its_summary(
    browser: Browser, anthropic_api: AnthropicStandIn, keyed: WebService
) -> None:
    anthropic_api.script(
        tool_reply("end_conversation", {}, usage={"input_tokens": 1000, "output_tokens": 10}),
        text_reply("Bye!", usage={"input_tokens": 1000, "output_tokens": 10}),
        text_reply(
            '{"title": "Saying goodbye", "summary": "The user left."}',
            usage={"input_tokens": 500, "output_tokens": 25},
        ),
    )
    async with chat_page(browser, keyed, **PAGE_OPTIONS) as page:
        await send(page, "thanks, bye")
        await expect(page.locator(".msg.assistant", has_text="Bye!")).to_be_visible()
        total = page.locator("section.conversation .boundary .usage-total").first
        for _ in range(2):  # live, then after a reload
            await expect(total).to_have_text(
                re.compile(r"^1 answer \+ side jobs: 2,500 in · 45 out · \$")
            )
            await reload(page)
