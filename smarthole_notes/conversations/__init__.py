"""Conversation history: the SQLite store, the context prompt part, and the summary micro-agent.

- `store`: conversations, messages, branches, waiting states and their full-text index in
  `<vault>/.smarthole/conversations.db` (`ConversationStore`, `default_path`).
- `context`: `build_context`, the part of the system prompt that remembers conversations.
- `summary`: `summarise` / `summarise_conversation`, the title and summary micro-agent.
- `tool_format`: the `get_conversation` tool's texts; `formatting`: the transcript pieces.

How the pipeline is meant to use it (store calls are blocking: `asyncio.to_thread`):

    conversation, ended = store.begin_message(now, idle_timeout)
    if ended: in the background, summarise_conversation(store, micro_provider, ended.id),
              then store.enforce_retention(max_conversations_retained) (and retrospection)
    context = build_context(store, conversation, tz, zone_name)   # for SystemPrompt
    state = store.load_state(conversation.id) or ConversationState()
    ... the agent call ...
    store.add_exchange(conversation.id, text, answer, ..., message_id=inbox_id)  # commit point
    store.save_state(conversation.id, agent.state, at)
    if the agent called end_conversation: store.end_conversation(conversation.id, "explicit", at)
    then the inbox file may go; on (re)delivery, `store.is_processed(inbox_id)` says it is done.
"""

from smarthole_notes.conversations.context import build_context
from smarthole_notes.conversations.store import (
    Conversation,
    ConversationEndedError,
    ConversationNotFoundError,
    ConversationStore,
    ConversationStoreError,
    DuplicateMessageError,
    MessageNotFoundError,
    SchemaError,
    SearchHit,
    StoredMessage,
    ToolUse,
    default_path,
    tool_uses_from_calls,
)
from smarthole_notes.conversations.summary import SummaryError, summarise, summarise_conversation
from smarthole_notes.conversations.tool_format import (
    format_conversation_for_tool,
    format_recent_for_tool,
    format_search_for_tool,
    get_conversation_text,
)

__all__ = [
    "Conversation",
    "ConversationEndedError",
    "ConversationNotFoundError",
    "ConversationStore",
    "ConversationStoreError",
    "DuplicateMessageError",
    "MessageNotFoundError",
    "SchemaError",
    "SearchHit",
    "StoredMessage",
    "SummaryError",
    "ToolUse",
    "build_context",
    "default_path",
    "format_conversation_for_tool",
    "format_recent_for_tool",
    "format_search_for_tool",
    "get_conversation_text",
    "summarise",
    "summarise_conversation",
    "tool_uses_from_calls",
]
