"""The LLM layer: provider-neutral types, the Anthropic provider, and the agent service.

- `types`, `errors`, `events`: what the rest of the program sees of any LLM API.
- `anthropic_provider`: streaming and non-streaming calls with retries, cancellation,
  a stall watchdog and linear-time stream assembly (`assembly`).
- `service`: the agent loop (tools, history, abort, conversation state); `prompt` builds
  its system prompt.
"""

from smarthole_notes.llm.anthropic_provider import AnthropicProvider, make_client
from smarthole_notes.llm.errors import ConfigurationError, ErrorCode, LLMError
from smarthole_notes.llm.events import AgentEvent, TextDelta, ToolFinished, ToolStarted
from smarthole_notes.llm.prompt import SystemPrompt
from smarthole_notes.llm.service import AgentResult, AgentService
from smarthole_notes.llm.types import LLMRequest, LLMResponse, Message, StopReason

__all__ = [
    "AgentEvent",
    "AgentResult",
    "AgentService",
    "AnthropicProvider",
    "ConfigurationError",
    "ErrorCode",
    "LLMError",
    "LLMRequest",
    "LLMResponse",
    "Message",
    "StopReason",
    "SystemPrompt",
    "TextDelta",
    "ToolFinished",
    "ToolStarted",
    "make_client",
]
