"""Conversation history: the SQLite store, the context prompt part, and the summary micro-agent.

- `store`: conversations, messages (requests, answers, refusals, the agent's mid-task
  updates and questions, retrospections), branches, waiting states and their full-text
  index in `<vault>/.smarthole/conversations.db` (`ConversationStore`, `default_path`).
- `context`: `build_context`, the part of the system prompt that remembers conversations.
- `summary`: `summarise`, the title and summary micro-agent.
- `formatting`: the transcript pieces the context and the `get_conversation` tool share.

The pipeline (`smarthole_notes.pipeline.turn`) records a request when it arrives, its
answer as the commit point of the message (`add_message(..., kind="answer")`; only an
answer makes `is_processed` true), and ends conversations; store calls are blocking, so
async callers use `asyncio.to_thread`.
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
    "summarise",
    "summarise_conversation",
    "tool_uses_from_calls",
]
