"""Auto-commit after a processed message: the Haiku micro-agent's message, the fallback,
the user's own edits (`mixed`), `index.lock` contention and commit ordering."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import pytest

from smarthole_notes.llm.anthropic_provider import AnthropicProvider
from smarthole_notes.llm.limits import ModelLimits
from smarthole_notes.llm.retry import RetryPolicy
from smarthole_notes.versioning import GitVault, auto_commit, commit_request, stage_request
from smarthole_notes.versioning.commit_message import (
    COMMIT_MESSAGE_MODEL,
    CommitContext,
    commit_type,
    fallback_subject_and_body,
    parse_reply,
)
from smarthole_notes.versioning.repo import ChangedFile
from tests import test_git_support as support
from tests.llm_helpers import client
from tests.standins.anthropic_api import AnthropicStandIn, status_reply, text_reply
from tests.test_git_support import (
    committed_paths,
    fsck_clean,
    git_cli,
    last_message,
    read,
    request,
    trailers_of,
    write,
)

# The shared fixtures (pytest finds them as module attributes).
git = support.git
no_user_git_config = support.no_user_git_config
vault = support.vault

GOOD_REPLY = "vault(Lists): add eggs to the shopping list\n\nAdded eggs under milk."


def fast_haiku(api: AnthropicStandIn) -> AnthropicProvider:
    """The micro-agent's provider with short retry waits (the real one waits 1 s, then 2 s)."""
    return AnthropicProvider(
        client(api),
        COMMIT_MESSAGE_MODEL,
        streaming=False,
        retry=RetryPolicy(delays=(0.01, 0.02)),
        limits=ModelLimits(),
    )


def add_eggs(vault: Path) -> None:
    write(vault, "Lists/Shopping.md", "# Shopping\n\n- bread\n- milk\n- eggs\n- apples\n")


async def test_commit_message_comes_from_a_non_streaming_haiku_call(
    git: GitVault, vault: Path, anthropic_api: AnthropicStandIn
) -> None:
    anthropic_api.script(text_reply(GOOD_REPLY))

    commit = await request(
        git,
        "msg-1",
        lambda: add_eggs(vault),
        text="add eggs to my shopping list",
        tools=("read_file", "edit_file"),
        llm=client(anthropic_api),
    )

    assert commit is not None
    sent = anthropic_api.requests[0].body
    assert sent["model"] == "claude-haiku-4-5"
    assert not sent.get("stream") and "tools" not in sent
    assert "add eggs to my shopping list" in sent["messages"][0]["content"][0]["text"]
    assert "modified: Lists/Shopping.md" in sent["messages"][0]["content"][0]["text"]
    message = git_cli(vault, "log", "-1", "--format=%s%n%b")
    assert message.startswith("vault(Lists): add eggs to the shopping list\nAdded eggs under milk.")
    assert trailers_of(vault) == [
        ("Smarthole-Conversation-Id", "conv-1"),
        ("Smarthole-Message-Id", "msg-1"),
        ("Smarthole-Tools-Used", "read_file, edit_file"),
        ("Smarthole-File", "Lists/Shopping.md"),
        ("Smarthole-Source", "agent"),
    ]
    assert git_cli(vault, "log", "-1", "--format=%an <%ae>").strip() == (
        "smarthole-notes <smarthole-notes@localhost>"
    )
    assert git_cli(vault, "status", "--porcelain") == ""
    fsck_clean(vault)


async def test_a_failing_micro_agent_gives_the_deterministic_message(
    git: GitVault, vault: Path, anthropic_api: AnthropicStandIn
) -> None:
    anthropic_api.script(status_reply(500), status_reply(500), status_reply(500))

    commit = await request(git, "msg-2", lambda: add_eggs(vault), llm=fast_haiku(anthropic_api))

    assert commit is not None
    assert len(anthropic_api.requests) == 3  # the provider's own retries, nothing more
    message = last_message(vault)
    assert message.startswith("vault(Lists): update Lists/Shopping.md\n\nRequested: ")
    assert ("Smarthole-Message-Id", "msg-2") in trailers_of(vault)
    fsck_clean(vault)


async def test_an_unusable_reply_gives_the_deterministic_message(
    git: GitVault, vault: Path, anthropic_api: AnthropicStandIn
) -> None:
    anthropic_api.script(text_reply("Sure! Here is a commit message for your change."))

    await request(git, "msg-3", lambda: add_eggs(vault), llm=client(anthropic_api))

    assert last_message(vault).startswith("vault(Lists): update Lists/Shopping.md")


async def test_trailers_written_by_the_model_are_dropped(
    git: GitVault, vault: Path, anthropic_api: AnthropicStandIn
) -> None:
    anthropic_api.script(
        text_reply(GOOD_REPLY + "\n\nSmarthole-Message-Id: someone-else\nSmarthole-Source: user")
    )

    await request(git, "msg-4", lambda: add_eggs(vault), llm=client(anthropic_api))

    trailers = trailers_of(vault)
    assert [v for k, v in trailers if k == "Smarthole-Message-Id"] == ["msg-4"]
    assert [v for k, v in trailers if k == "Smarthole-Source"] == ["agent"]


async def test_the_users_uncommitted_edits_are_committed_too_as_mixed(
    git: GitVault, vault: Path
) -> None:
    write(vault, "Journal/2026-02-05.md", "# Thursday\n\nWent for a walk. Typed in Obsidian.\n")
    write(vault, "Drafts/Poem.md", "roses\n")

    commit = await request(git, "msg-5", lambda: add_eggs(vault))

    assert commit is not None
    assert {"Journal/2026-02-05.md", "Drafts/Poem.md", "Lists/Shopping.md"} <= committed_paths(
        vault
    )
    trailers = trailers_of(vault)
    assert ("Smarthole-Source", "mixed") in trailers
    assert sorted(v for k, v in trailers if k == "Smarthole-User-File") == [
        "Drafts/Poem.md",
        "Journal/2026-02-05.md",
    ]
    assert "Also includes your own edits to 2 files" in last_message(vault)
    assert read(vault, "Journal/2026-02-05.md").endswith("Typed in Obsidian.\n")
    assert git_cli(vault, "status", "--porcelain") == ""


async def test_a_note_edited_by_both_the_user_and_the_agent_is_marked_shared(
    git: GitVault, vault: Path
) -> None:
    write(vault, "Lists/Shopping.md", "# Shopping\n\n- bread\n- milk\n- apples\n- pears\n")

    await request(
        git,
        "msg-6",
        lambda: write(vault, "Lists/Shopping.md", read(vault, "Lists/Shopping.md") + "- eggs\n"),
    )

    trailers = trailers_of(vault)
    assert ("Smarthole-Source", "mixed") in trailers
    assert ("Smarthole-Shared-File", "Lists/Shopping.md") in trailers
    assert read(vault, "Lists/Shopping.md").endswith("- pears\n- eggs\n")


async def test_a_request_that_changed_nothing_makes_no_commit(git: GitVault, vault: Path) -> None:
    head = git.head()
    write(vault, "Ideas.md", "# Ideas\n\nthe user's own typing\n")

    commit = await request(git, "msg-7", lambda: None)

    assert commit is None and git.head() == head
    assert [c.path for c in git.changed_files()] == ["Ideas.md"]  # kept for a later commit


async def test_a_held_index_lock_is_retried_then_skipped_without_losing_anything(
    git: GitVault, vault: Path, caplog: pytest.LogCaptureFixture
) -> None:
    head = git.head()
    lock = vault / ".git" / "index.lock"
    lock.write_text("")

    with caplog.at_level(logging.WARNING):
        started = time.monotonic()
        commit = await request(git, "msg-8", lambda: add_eggs(vault))
        elapsed = time.monotonic() - started

    assert commit is None and git.head() == head
    assert elapsed < 2.0
    assert "Auto-commit skipped" in caplog.text and "index.lock" in caplog.text
    assert "- eggs" in read(vault, "Lists/Shopping.md")
    lock.unlink()
    commit = await request(git, "msg-9", lambda: write(vault, "Ideas.md", "# Ideas\n\n- pond\n"))
    assert commit is not None
    assert not git.changed_files()  # the skipped change is in this commit
    fsck_clean(vault)


async def test_a_lock_released_during_the_retries_lets_the_commit_through(vault: Path) -> None:
    service = GitVault(vault, lock_retry_delays=(0.05, 0.1, 0.2, 0.4, 0.8))
    service.ensure_repository()
    lock = vault / ".git" / "index.lock"
    lock.write_text("")
    threading.Timer(0.2, lock.unlink).start()

    commit = await request(service, "msg-10", lambda: add_eggs(vault))

    assert commit is not None
    assert "- eggs" in git_cli(vault, "show", "HEAD:Lists/Shopping.md")


async def test_staged_requests_commit_in_order_without_mixing_their_changes(
    git: GitVault, vault: Path
) -> None:
    add_eggs(vault)
    first = await stage_request(git, git.snapshot())
    before_second = git.snapshot()
    write(vault, "Ideas.md", "# Ideas\n\n- a pond\n")
    second = await stage_request(git, before_second)
    assert first is not None and second is not None
    assert not before_second  # the first request's staged edits are not the user's

    common = {"llm": None, "conversation_id": "c", "tools_used": [{"name": "edit_file"}]}
    late = asyncio.create_task(
        commit_request(git, second, request_text="pond", message_id="m-2", **common)  # type: ignore[arg-type]
    )
    await asyncio.sleep(0.1)
    assert not late.done()  # waits for the first one
    await commit_request(git, first, request_text="eggs", message_id="m-1", **common)  # type: ignore[arg-type]
    await late

    log = git_cli(vault, "log", "-2", "--format=%s").splitlines()
    assert log == ["vault(Ideas): update Ideas.md", "vault(Lists): update Lists/Shopping.md"]
    assert git_cli(vault, "diff", "--name-only", "HEAD~1", "HEAD").split() == ["Ideas.md"]
    assert git_cli(vault, "diff", "--name-only", "HEAD~2", "HEAD~1").split() == [
        "Lists/Shopping.md"
    ]


async def test_a_commit_made_meanwhile_by_the_user_is_never_reverted(
    git: GitVault, vault: Path
) -> None:
    add_eggs(vault)
    staged = await stage_request(git)
    assert staged is not None
    write(vault, "Ideas.md", "# Ideas\n\n- the user's commit\n")
    git_cli(vault, "commit", "-qm", "my own commit", "--", "Ideas.md", user=True)

    commit = await commit_request(
        git, staged, llm=None, request_text="x", conversation_id="c", message_id="m", tools_used=[]
    )

    assert commit is not None
    assert git_cli(vault, "log", "-1", "--format=%s", "HEAD~1").strip() == "my own commit"
    assert "the user's commit" in git_cli(vault, "show", "HEAD:Ideas.md")
    assert "- eggs" in git_cli(vault, "show", "HEAD:Lists/Shopping.md")


async def test_auto_commit_reports_git_failures_as_none(tmp_path: Path) -> None:
    service = GitVault(tmp_path / "not-a-repo-yet")
    (tmp_path / "not-a-repo-yet").mkdir()

    assert (
        await auto_commit(
            service, llm=None, request_text="", conversation_id="", message_id="m", tools_used=[]
        )
        is None
    )


def test_commit_types_follow_what_happened() -> None:
    deleted = ChangedFile("Old.md", "deleted")
    moved = ChangedFile("Archive/A.md", "renamed", "A.md")
    edited = ChangedFile("Index.md", "modified")

    assert commit_type([deleted]) == "cleanup"
    assert commit_type([moved, edited]) == "organize"
    assert commit_type([edited, deleted]) == "vault"
    context = CommitContext("tidy up", "c", "m", ("move_file",), (moved, edited))
    subject, body = fallback_subject_and_body(context)
    assert subject == "organize(notes): update 1 note, move 1 note"
    assert body == 'Requested: "tidy up"'


def test_reply_parsing_accepts_fences_and_rejects_other_shapes() -> None:
    assert parse_reply("```\ncleanup(Lists): remove the old list\n\nGone.\n```") == (
        "cleanup(Lists): remove the old list",
        "Gone.",
    )
    assert parse_reply("feat(Lists): add eggs") is None
    assert parse_reply("vault: no scope") is None
    subject, _ = parse_reply("vault(Lists): " + "word " * 40) or ("", "")
    assert len(subject) <= 72


async def test_no_commit_is_made_while_the_user_is_in_the_middle_of_a_merge(
    git: GitVault, vault: Path, caplog: pytest.LogCaptureFixture
) -> None:
    head = git.head()
    (vault / ".git" / "MERGE_HEAD").write_text(f"{head}\n")

    with caplog.at_level(logging.WARNING):
        commit = await request(git, "msg-11", lambda: add_eggs(vault))

    assert commit is None and git.head() == head
    assert "in the middle of a merge" in caplog.text
    assert git_cli(vault, "diff", "--cached", "--name-only") == ""  # nothing staged either
