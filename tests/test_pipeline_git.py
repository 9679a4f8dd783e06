"""Git versioning and retrospection wired into the pipeline: commits, tools, undo, reflection."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from smarthole_notes.settings import Settings
from tests.pipeline_harness import Clock, Service
from tests.standins.anthropic_api import (
    AnthropicStandIn,
    refusal_reply,
    status_reply,
    text_reply,
    tool_reply,
)
from tests.test_git_support import fsck_clean, git_cli


@pytest.fixture
def vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    folder = tmp_path / "vault"
    folder.mkdir()
    return folder


def tool_names(api: AnthropicStandIn) -> set[str]:
    streamed = [r for r in api.requests if r.body.get("stream")]
    return {t["name"] for t in streamed[-1].body["tools"]}


async def wait_for_commits(vault: Path, count: int) -> list[str]:
    for _ in range(200):
        subjects = git_cli(vault, "log", "--format=%s").splitlines()
        if len(subjects) >= count:
            return subjects
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} commits, have {subjects}")


async def test_an_answered_request_is_committed_with_a_haiku_message_and_trailers(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    anthropic_api.script(
        tool_reply("write_file", {"path": "Lists/Shopping.md", "content": "- eggs\n"}),
        text_reply("Added eggs."),
        text_reply("vault(lists): add eggs to the shopping list\n\nAdded eggs as asked."),
    )
    service = Service(vault, anthropic_api, settings=Settings(enable_git_version_control=True))
    await service.start()
    await service.chat("add eggs to my shopping list", "chat-g1")
    await service.idle()
    subjects = await wait_for_commits(vault, 2)  # the initial commit, then the request's
    await service.stop()

    assert subjects[0] == "vault(lists): add eggs to the shopping list"
    body = git_cli(vault, "log", "-1", "--format=%B")
    assert "Smarthole-Message-Id: chat-g1" in body and "Smarthole-Source: agent" in body
    assert git_cli(vault, "log", "-1", "--format=%an").strip() == "smarthole-notes"
    commit_call = anthropic_api.requests[-1].body
    assert commit_call["model"] == "claude-haiku-4-5" and not commit_call.get("stream")
    assert not any(p.startswith(".smarthole") for p in git_cli(vault, "ls-files").split())
    assert {"search_git_history", "view_file_history", "view_commit"} <= tool_names(anthropic_api)
    fsck_clean(vault)


async def test_git_tools_are_absent_and_nothing_is_committed_when_git_is_off(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    service = Service(vault, anthropic_api)
    await service.start()
    await service.chat("hello", "chat-g2")
    await service.idle()
    await service.stop()
    assert not {"search_git_history", "view_file_history", "view_commit"} & tool_names(
        anthropic_api
    )
    assert not (vault / ".git").exists()


async def test_undo_reverts_the_last_request_through_the_pipeline(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    anthropic_api.script(
        tool_reply("write_file", {"path": "Idea.md", "content": "a good idea\n"}),
        text_reply("Saved."),
        status_reply(500),  # the commit-message call fails: the fallback message is used
    )
    service = Service(vault, anthropic_api, settings=Settings(enable_git_version_control=True))
    await service.start()
    await service.chat("save my idea", "chat-g3")
    await service.idle()
    await wait_for_commits(vault, 2)
    result = await service.pipeline.undo("last")
    await service.stop()
    assert result.ok, result.message
    assert not (vault / "Idea.md").exists()
    assert git_cli(vault, "log", "-1", "--format=%s").startswith("Revert")
    fsck_clean(vault)


async def test_retrospection_runs_when_a_conversation_ends_and_only_when_on(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    for enabled in (False, True):
        clock = Clock()
        settings = Settings(enable_conversation_retrospection=enabled)
        service = Service(vault, anthropic_api, settings=settings, clock=clock)
        await service.start()
        anthropic_api.reset()
        anthropic_api.script(
            tool_reply("end_conversation", {}),
            text_reply("Bye!"),
            text_reply(
                '{"title": "Saying goodbye politely", "summary": "The user left. Nothing to do."}'
            ),
            text_reply("1. Instructions: nothing missing."),
        )
        await service.chat("thanks, bye", f"chat-r{enabled}")
        await service.idle()
        for _ in range(100):
            if not service.pipeline.side_jobs.running:
                break
            await asyncio.sleep(0.05)
        await service.stop()
        clock.now += timedelta(minutes=1)
        notes = vault / ".smarthole" / "retrospection.md"
        if not enabled:
            assert not notes.exists()
            assert len(anthropic_api.requests) == 3  # answer (2) + summary, no reflection
        else:
            assert "Saying goodbye politely" in notes.read_text()
            assert "nothing missing" in notes.read_text()
            (event,) = service.of_type("retrospection")
            assert event["title"] == "Saying goodbye politely"


async def test_edits_made_before_a_failure_are_committed_as_that_request(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    anthropic_api.script(
        tool_reply("write_file", {"path": "Draft.md", "content": "- first part\n"}),
        refusal_reply(),
        text_reply("vault(draft): start the draft\n\nWrote the first part."),
    )
    service = Service(vault, anthropic_api, settings=Settings(enable_git_version_control=True))
    await service.start()
    await service.chat("write the draft", "chat-g-fail")
    await service.idle()
    subjects = await wait_for_commits(vault, 2)
    await service.stop()
    assert subjects[0] == "vault(draft): start the draft"
    body = git_cli(vault, "log", "-1", "--format=%B")
    assert "Smarthole-Message-Id: chat-g-fail" in body and "Draft.md" in body
    assert service.pipeline.outcomes[-1].status == "refused"
