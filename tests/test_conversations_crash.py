"""A process killed mid-write (kill -9) leaves an intact history with every committed exchange."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from smarthole_notes.conversations.store import ConversationStore, default_path

ROOT = Path(__file__).resolve().parent.parent

WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    from smarthole_notes.conversations.store import ConversationStore

    store = ConversationStore(Path(sys.argv[1]))
    t0 = datetime(2026, 2, 5, 19, 30, tzinfo=UTC)
    for n in range(100_000):
        when = t0 + timedelta(minutes=7 * n)  # every fifth message starts a conversation
        conversation, ended = store.begin_message(when, timedelta(minutes=30))
        if ended is not None:
            store.set_summary(ended.id, f"Title {n}", f"Summary {n}.")
            store.enforce_retention(50)
        store.add_exchange(
            conversation.id, f"request {n} " + "words " * 50, f"answer {n}",
            source="chat", message_id=f"m-{n}", asked_at=when, answered_at=when,
        )
        print(n, flush=True)  # committed (synchronous=FULL): it must survive the kill
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_kill_9_mid_write_leaves_intact_history_with_every_committed_exchange(
    tmp_path: Path,
) -> None:
    path = default_path(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    last = -1
    for line in process.stdout:
        last = int(line)
        if last >= 120:
            break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert last >= 120, "the writer stopped early"

    with ConversationStore(path) as store:
        assert store.integrity_check() == "ok"
        for n in range(last - 20, last + 1):  # retention keeps the recent ones
            assert store.is_processed(f"m-{n}"), n
        active = store.active_conversation()
        assert active is not None
        assert all(
            m.reply_to is not None for m in store.messages(active.id) if m.role == "assistant"
        )
        assert len(store.list_conversations(limit=1000)) <= 51
