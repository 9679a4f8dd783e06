"""The agent service: history, tools and the tool loop around one provider.

One instance per conversation turn-taker. `process` runs one user message to its
answer; `abort` stops it from anywhere, at any time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from smarthole_notes.llm.cancel import CancelSignal
from smarthole_notes.llm.errors import ErrorCode, LLMError
from smarthole_notes.llm.events import EventSink, ToolFinished, ToolStarted
from smarthole_notes.llm.provider import Provider
from smarthole_notes.llm.state import ConversationState
from smarthole_notes.llm.types import (
    ContentBlock,
    LLMRequest,
    LLMResponse,
    Message,
    StopReason,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)
from smarthole_notes.tools.base import ToolRegistry

log = logging.getLogger("smarthole_notes.llm")

MAX_TOOL_ITERATIONS = 10
MAX_HISTORY_MESSAGES = 40
NOT_RUN_CANCELLED = "Error: not run: the user stopped the request."
NOT_RUN_LIMIT = "Error: not run: the limit of {limit} tool rounds for one request was reached."


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    name: str
    input: dict[str, Any]
    is_error: bool
    summary: str


@dataclass(slots=True)
class AgentResult:
    text: str
    stop_reason: StopReason
    tools_used: list[ToolCallRecord] = field(default_factory=list)
    iterations: int = 0
    aborted: bool = False
    usage: Usage = field(default_factory=Usage)


def trim_history(messages: list[Message], limit: int) -> list[Message]:
    """The newest messages, at most `limit` where possible, starting at a plain user turn.

    Starting at a user message that carries no tool results guarantees no tool_result is
    kept without the tool_use it answers (the API rejects that).
    """
    if len(messages) <= limit:
        return messages
    for start in range(len(messages) - limit, len(messages)):
        message = messages[start]
        if message.role == "user" and not message.has_tool_results:
            return messages[start:]
    for start in range(len(messages) - limit - 1, -1, -1):
        message = messages[start]
        if message.role == "user" and not message.has_tool_results:
            return messages[start:]
    return messages


def _summary(text: str, limit: int = 200) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


def _add(a: Usage, b: Usage) -> Usage:
    return Usage(a.input_tokens + b.input_tokens, a.output_tokens + b.output_tokens)


class AgentService:
    """Tools, working history and the tool loop for one conversation."""

    def __init__(
        self,
        provider: Provider,
        *,
        system_prompt: Callable[[ConversationState], str],
        tools: ToolRegistry | None = None,
        max_iterations: int = MAX_TOOL_ITERATIONS,
        max_history_messages: int = MAX_HISTORY_MESSAGES,
    ) -> None:
        self.provider = provider
        self.tools = tools if tools is not None else ToolRegistry()
        self.history: list[Message] = []
        self.state = ConversationState()
        self._system_prompt = system_prompt
        self._max_iterations = max_iterations
        self._max_history = max_history_messages
        self._cancel: CancelSignal | None = None
        self._running = False

    @property
    def busy(self) -> bool:
        return self._running

    def abort(self) -> None:
        """Stop the request in flight; safe at any time, a no-op when idle."""
        if self._cancel is not None:
            self._cancel.fire()

    async def process(self, text: str, *, on_event: EventSink | None = None) -> AgentResult:
        """Run one user message to its answer. Raises `LLMError` on API failure (not on abort)."""
        if self._running:
            raise RuntimeError("AgentService.process is already running on this instance")
        self._running = True
        cancel = self._cancel = CancelSignal()
        try:
            return await self._loop(text, cancel, on_event)
        finally:
            self._running = False
            self._cancel = None

    async def _loop(
        self, text: str, cancel: CancelSignal, on_event: EventSink | None
    ) -> AgentResult:
        self._append_user_text(text)
        tools_used: list[ToolCallRecord] = []
        usage = Usage()
        iterations = 0
        while True:
            if cancel.fired:
                return self._aborted(tools_used, iterations)
            request = LLMRequest(
                system=self._system_prompt(self.state),
                messages=tuple(trim_history(self.history, self._max_history)),
                tools=self.tools.specs,
            )
            try:
                response = await self.provider.send(request, cancel=cancel, on_event=on_event)
            except LLMError as error:
                if error.code is ErrorCode.ABORTED:
                    return self._aborted(tools_used, iterations)
                raise
            usage = _add(usage, response.usage)
            if response.stop_reason is StopReason.MAX_TOKENS:
                log.warning(
                    "The model stopped at max_tokens (%d output tokens); a tool call may be cut",
                    response.usage.output_tokens,
                )
            tool_uses = response.tool_uses
            if response.stop_reason is not StopReason.TOOL_USE or not tool_uses:
                if response.content:
                    self.history.append(Message("assistant", response.content))
                return AgentResult(
                    response.text, response.stop_reason, tools_used, iterations, False, usage
                )
            self.history.append(Message("assistant", response.content))
            if iterations >= self._max_iterations:
                log.warning("Tool loop stopped after %d rounds", iterations)
                self._close_tool_uses(tool_uses, NOT_RUN_LIMIT.format(limit=self._max_iterations))
                note = (
                    f"I stopped after {self._max_iterations} tool steps without finishing; "
                    "ask me to continue if needed."
                )
                answer = f"{response.text}\n\n{note}" if response.text else note
                return AgentResult(
                    answer, response.stop_reason, tools_used, iterations, False, usage
                )
            iterations += 1
            log.debug(
                "Tool loop iteration %d: %s", iterations, ", ".join(t.name for t in tool_uses)
            )
            results: list[ContentBlock] = []
            for tool_use in tool_uses:
                if cancel.fired:
                    results.append(ToolResultBlock(tool_use.id, NOT_RUN_CANCELLED, True))
                    continue
                results.append(await self._run_tool(tool_use, tools_used, on_event))
            self.history.append(Message("user", tuple(results)))

    async def _run_tool(
        self, tool_use: ToolUseBlock, tools_used: list[ToolCallRecord], on_event: EventSink | None
    ) -> ToolResultBlock:
        if on_event is not None:
            on_event(ToolStarted(tool_use.id, tool_use.name, tool_use.input))
        outcome = await self.tools.run(tool_use.name, tool_use.input)
        self.state.tool_call_count += 1
        summary = _summary(outcome.content)
        log.debug(
            "Tool result: %s %s: %s", tool_use.name, "error" if outcome.is_error else "ok", summary
        )
        tools_used.append(ToolCallRecord(tool_use.name, tool_use.input, outcome.is_error, summary))
        if on_event is not None:
            on_event(ToolFinished(tool_use.id, tool_use.name, outcome.is_error, summary))
        return ToolResultBlock(tool_use.id, outcome.content, outcome.is_error)

    def _aborted(self, tools_used: list[ToolCallRecord], iterations: int) -> AgentResult:
        empty = LLMResponse.empty()
        return AgentResult(empty.text, empty.stop_reason, tools_used, iterations, True)

    def _close_tool_uses(self, tool_uses: list[ToolUseBlock], reason: str) -> None:
        self.history.append(
            Message("user", tuple(ToolResultBlock(t.id, reason, True) for t in tool_uses))
        )

    def _append_user_text(self, text: str) -> None:
        """Add the user's message; after an aborted or capped request, merge into the last user turn."""
        block = TextBlock(text)
        if self.history and self.history[-1].role == "user":
            last = self.history[-1]
            self.history[-1] = Message("user", (*last.content, block))
        else:
            self.history.append(Message("user", (block,)))

    def export_state(self) -> dict[str, Any]:
        """History and conversation state, JSON-ready, for persistence across restarts."""
        return {
            "history": [m.to_dict() for m in self.history],
            "state": self.state.to_dict(),
        }

    def restore_state(self, data: dict[str, Any]) -> None:
        if self._running:
            raise RuntimeError("cannot restore state while a request is running")
        self.history = [Message.from_dict(m) for m in data.get("history", [])]
        self.state = ConversationState.from_dict(data.get("state", {}))
