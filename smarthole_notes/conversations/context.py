"""The conversation part of the system prompt: what the agent remembers of earlier messages.

The agent service is fresh for every message, so this text is its whole memory of the
conversation: the last two ended conversations (title and summary, or their last exchange
while the summary is still being written) and the whole active conversation.
"""

from __future__ import annotations

from datetime import tzinfo

from smarthole_notes.conversations.formatting import full_time, one_line, title_text, transcript
from smarthole_notes.conversations.store import Conversation, ConversationStore, StoredMessage

RECENT_ENDED = 2
LAST_EXCHANGE_LIMIT = 300


def build_context(
    store: ConversationStore,
    active: Conversation | None,
    tz: tzinfo,
    zone_name: str,
    *,
    before_row: int | None = None,
) -> str:
    """The context prompt part, in the user's local time. Blocking: use `asyncio.to_thread`.

    Format (sections separated by a blank line; the first is left out when no conversation
    has ended yet):

        Recent conversations (the last two that ended, oldest first):
        - Ended Thursday, Feb 5, 2026 9:12 AM (America/New_York, UTC-5), id 0c1f...: "Weekend shopping list"
          The user asked for a weekend shopping list. It was created in Lists/Shopping.md.
        - Ended Thursday, Feb 5, 2026 11:40 AM (America/New_York, UTC-5), id 9a2b...: untitled (no summary yet)
          Last request: add milk too
          Last answer: Added milk to Lists/Shopping.md.

        Current conversation (started Thursday, Feb 5, 2026 2:30 PM (America/New_York, UTC-5)):
        [2:30 PM] User (voice): Add eggs to my shopping list.
        [2:31 PM] Assistant: Added eggs to Lists/Shopping.md.
          Tools used: read_file(path="Lists/Shopping.md"); edit_file(path="Lists/Shopping.md") [failed: Error: ...]

    Transcript lines are described in `formatting`. With no earlier message in the active
    conversation, the second section is the line
    `Current conversation: this message is the first of a new conversation.`
    The message being processed is not part of it: it is the request itself. With
    `before_row` (the row of the message being processed), that message and every message
    recorded after it (queued behind it) are left out.
    """
    sections: list[str] = []
    ended = list(reversed(store.recent_ended(RECENT_ENDED)))
    if ended:
        lines = ["Recent conversations (the last two that ended, oldest first):"]
        for conversation in ended:
            lines.extend(_ended_entry(store, conversation, tz, zone_name))
        sections.append("\n".join(lines))
    messages = store.messages(active.id) if active is not None else []
    if before_row is not None:
        messages = [m for m in messages if m.row_id < before_row]
    if active is None or not messages:
        sections.append("Current conversation: this message is the first of a new conversation.")
    else:
        start = active.started_at.astimezone(tz)
        sections.append(
            f"Current conversation (started {full_time(active.started_at, tz, zone_name)}):\n"
            + transcript(messages, tz, since=start.date())
        )
    return "\n\n".join(sections)


def _ended_entry(
    store: ConversationStore, conversation: Conversation, tz: tzinfo, zone_name: str
) -> list[str]:
    assert conversation.ended_at is not None
    head = f"- Ended {full_time(conversation.ended_at, tz, zone_name)}, id {conversation.id}: "
    if conversation.summary:
        return [head + title_text(conversation), f"  {one_line(conversation.summary)}"]
    # Summaries are written in the background: the conversation that just ended is often
    # still untitled when the next message arrives, and it is the one most likely referred to.
    lines = [head + f"{title_text(conversation)} (no summary yet)"]
    request, answer = _last_exchange(store.messages(conversation.id))
    if request is not None:
        lines.append(f"  Last request: {one_line(request.content, LAST_EXCHANGE_LIMIT)}")
    if answer is not None:
        lines.append(f"  Last answer: {one_line(answer.content, LAST_EXCHANGE_LIMIT)}")
    return lines


def _last_exchange(
    messages: list[StoredMessage],
) -> tuple[StoredMessage | None, StoredMessage | None]:
    request = next((m for m in reversed(messages) if m.role == "user"), None)
    answer = next((m for m in reversed(messages) if m.role == "assistant"), None)
    return request, answer
