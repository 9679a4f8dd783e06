"""The agent service: history, tools and the tool loop around one provider.

One instance per conversation turn-taker. `process` runs one user message to its
answer; `abort` stops it from anywhere, at any time.

Every stop reason ends truthfully (as the API documents each stop reason): `tool_use` and `pause_turn` go on
looping; `end_turn`, `stop_sequence`, unknown reasons and a plain `max_tokens` (with a
note) are answers; `refusal`, a tool call cut by `max_tokens` and
`model_context_window_exceeded` raise an `LLMError` and are never an answer. A tool call
whose input is not valid JSON is answered with an is-error result, and the loop goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from smarthole_notes.llm.cancel import CancelSignal
from smarthole_notes.llm.errors import ErrorCode, LLMError, OutputLimitError, RefusalError
from smarthole_notes.llm.events import EventSink, ToolFinished, ToolStarted
from smarthole_notes.llm.provider import Provider
from smarthole_notes.llm.state import ConversationState
from smarthole_notes.llm.tooling import NoTools, ToolRunner
from smarthole_notes.llm.types import (
    ContentBlock,
    LLMRequest,
    LLMResponse,
    Message,
    StopReason,
    TextBlock,
    ToolCallRecord,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)

log = logging.getLogger("smarthole_notes.llm")

MAX_TOOL_ITERATIONS = 10
MAX_HISTORY_MESSAGES = 40
NOT_RUN_CANCELLED = "Error: not run: the user stopped the request."
NOT_RUN_LIMIT = "Error: not run: the limit of {limit} tool rounds for one request was reached."
NOT_RUN_OUTPUT_LIMIT = (
    "Error: not run: the model's output limit cut this call before its input was complete."
)
NOT_RUN_CONTEXT = "Error: not run: the conversation became too long for the model."
NOT_RUN_STOPPED = "Error: not run: the model's turn ended with stop reason {reason!r}."
INVALID_INPUT = (
    "Error: not run: the input of this {name} call was {reason}. It began: {excerpt} "
    "Send the call again with a valid JSON object as its input."
)
OUTPUT_LIMIT_NOTE = "(This answer was cut off at the model's output limit.)"
EXCERPT_CHARS = 120

__all__ = [
    "AgentResult",
    "AgentService",
    "ToolCallRecord",
    "trim_history",
]


@dataclass(slots=True)
class AgentResult:
    text: str
    stop_reason: StopReason
    tools_used: list[ToolCallRecord] = field(default_factory=list)
    iterations: int = 0
    aborted: bool = False
    usage: Usage = field(default_factory=Usage)
    """Summed over every round of the request (cache writes and reads included)."""
    model: str = ""
    """The model that answered (as the API named it), for pricing the usage."""

    def usage_dict(self) -> dict[str, Any]:
        """The usage, JSON-ready, with the model and its estimated cost (see `Usage.to_dict`)."""
        return self.usage.to_dict(self.model)


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


def _excerpt(raw: str | None) -> str:
    text = " ".join((raw or "").split())
    if not text:
        return "(nothing)."
    return repr(text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…")


def _resendable(content: tuple[ContentBlock, ...]) -> tuple[ContentBlock, ...]:
    """Paused assistant content as it can end a request: the API refuses a final assistant
    text block that ends in whitespace (or is empty)."""
    if not content or not isinstance(content[-1], TextBlock):
        return content
    last = content[-1].text.rstrip()
    return (*content[:-1], TextBlock(last)) if last else content[:-1]


class AgentService:
    """Tools, working history and the tool loop for one conversation."""

    def __init__(
        self,
        provider: Provider,
        *,
        system_prompt: Callable[[ConversationState], str],
        tools: ToolRunner | None = None,
        max_iterations: int = MAX_TOOL_ITERATIONS,
        max_history_messages: int = MAX_HISTORY_MESSAGES,
    ) -> None:
        self.provider = provider
        self.tools: ToolRunner = tools if tools is not None else NoTools()
        self.history: list[Message] = []
        self.state = ConversationState()
        self._system_prompt = system_prompt
        self._max_iterations = max_iterations
        self._max_history = max_history_messages
        self._cancel: CancelSignal | None = None
        self._running = False
        self._model: str = provider.model

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
        except LLMError as error:
            error.model = error.model or self._model
            raise
        finally:
            self._running = False
            self._cancel = None

    async def _loop(
        self, text: str, cancel: CancelSignal, on_event: EventSink | None
    ) -> AgentResult:
        before = list(self.history)
        self._append_user_text(text)
        tools_used: list[ToolCallRecord] = []
        usage = Usage()
        iterations = 0
        # Once per request, not per round: every round then sends the same system prompt,
        # so each reads the whole previous round's prompt from the cache.
        system = self._system_prompt(self.state)
        while True:
            if cancel.fired:
                return self._aborted(tools_used, iterations, usage)
            request = LLMRequest(
                system=system,
                messages=tuple(trim_history(self.history, self._max_history)),
                tools=self.tools.specs,
                cache_messages=True,
            )
            try:
                response = await self.provider.send(request, cancel=cancel, on_event=on_event)
            except LLMError as error:
                if error.code is ErrorCode.ABORTED:
                    return self._aborted(tools_used, iterations, usage)
                error.tools_used = list(tools_used)
                error.usage = usage
                raise
            usage = usage + response.usage
            self._model = response.model or self._model
            stop = response.stop_reason
            tool_uses = response.tool_uses
            if stop is StopReason.REFUSAL:
                refusal = response.refusal
                log.warning(
                    "The model declined the request (category %s)",
                    refusal.category if refusal else None,
                )
                # The API asks for the refused turn to be removed before going on: kept,
                # it would make every following request be refused too.
                self.history = before
                raise RefusalError(
                    refusal.category if refusal else None,
                    refusal.explanation if refusal else None,
                    tools_used=tools_used,
                    partial_text=response.text,
                    usage=usage,
                )
            if stop is StopReason.MODEL_CONTEXT_WINDOW_EXCEEDED:
                log.warning("The model's context window was filled; the request failed")
                self._record_final(response, NOT_RUN_CONTEXT)
                raise LLMError(
                    ErrorCode.CONTEXT_TOO_LONG,
                    "stop_reason model_context_window_exceeded",
                    tools_used=tools_used,
                    partial_text=response.text,
                    usage=usage,
                )
            if stop is StopReason.MAX_TOKENS:
                log.warning(
                    "The model stopped at max_tokens (%d output tokens)",
                    response.usage.output_tokens,
                )
                cut = [t for t in tool_uses if t.input_error is not None]
                if cut:
                    self._record_final(response, NOT_RUN_OUTPUT_LIMIT)
                    raise OutputLimitError(
                        cut[0].name,
                        tools_used=tools_used,
                        partial_text=response.text,
                        output_tokens=response.usage.output_tokens,
                        usage=usage,
                    )
            tool_round = bool(tool_uses) and stop in (
                StopReason.TOOL_USE,
                StopReason.MAX_TOKENS,  # a call whose input is whole: it can run
                StopReason.PAUSE_TURN,
            )
            if not tool_round and stop is not StopReason.PAUSE_TURN:
                return self._answer(response, tools_used, iterations, usage)
            if iterations >= self._max_iterations:
                log.warning("Tool loop stopped after %d rounds", iterations)
                self._append_assistant(response.content)
                self._close_tool_uses(tool_uses, NOT_RUN_LIMIT.format(limit=self._max_iterations))
                note = (
                    f"I stopped after {self._max_iterations} tool steps without finishing; "
                    "ask me to continue if needed."
                )
                answer = f"{response.text}\n\n{note}" if response.text else note
                return AgentResult(answer, stop, tools_used, iterations, False, usage, self._model)
            iterations += 1
            if not tool_round:
                # pause_turn: send the paused content back so the model continues its turn.
                log.debug("Tool loop iteration %d: continuing a paused turn", iterations)
                self._append_assistant(_resendable(response.content))
                continue
            self._append_assistant(response.content)
            log.debug(
                "Tool loop iteration %d: %s", iterations, ", ".join(t.name for t in tool_uses)
            )
            results: list[ContentBlock] = []
            for tool_use in tool_uses:
                if cancel.fired:
                    results.append(ToolResultBlock(tool_use.id, NOT_RUN_CANCELLED, True))
                elif tool_use.input_error is not None:
                    results.append(self._refuse_input(tool_use, tools_used, on_event))
                else:
                    results.append(await self._run_tool(tool_use, tools_used, on_event))
            self.history.append(Message("user", tuple(results)))

    def _answer(
        self,
        response: LLMResponse,
        tools_used: list[ToolCallRecord],
        iterations: int,
        usage: Usage,
    ) -> AgentResult:
        """A final answer: the text, with a note when the output limit cut it short."""
        stop = response.stop_reason  # an unknown one was logged by name by the provider
        self._record_final(
            response, NOT_RUN_STOPPED.format(reason=response.raw_stop_reason or "none")
        )
        text = response.text
        if stop is StopReason.MAX_TOKENS:
            text = f"{text.rstrip()}\n\n{OUTPUT_LIMIT_NOTE}" if text.strip() else OUTPUT_LIMIT_NOTE
        return AgentResult(text, stop, tools_used, iterations, False, usage, self._model)

    def _record_final(self, response: LLMResponse, not_run: str) -> None:
        """Keep the last assistant turn in history, closing any tool call it left unanswered."""
        if response.content:
            self._append_assistant(response.content)
        if response.tool_uses:
            self._close_tool_uses(response.tool_uses, not_run)

    def _refuse_input(
        self, tool_use: ToolUseBlock, tools_used: list[ToolCallRecord], on_event: EventSink | None
    ) -> ToolResultBlock:
        """A call whose input is not a JSON object: not run; the model is told why."""
        content = INVALID_INPUT.format(
            name=tool_use.name,
            reason=tool_use.input_error,
            excerpt=_excerpt(tool_use.raw_input),
        )
        summary = "not run: its input was not valid JSON"
        log.debug("Tool result: %s error: %s (%s)", tool_use.name, summary, tool_use.input_error)
        if on_event is not None:
            on_event(ToolStarted(tool_use.id, tool_use.name, tool_use.input))
        tools_used.append(ToolCallRecord(tool_use.name, tool_use.input, True, summary))
        if on_event is not None:
            on_event(ToolFinished(tool_use.id, tool_use.name, True, summary))
        return ToolResultBlock(tool_use.id, content, True)

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

    def _aborted(
        self, tools_used: list[ToolCallRecord], iterations: int, usage: Usage
    ) -> AgentResult:
        empty = LLMResponse.empty()
        return AgentResult(
            empty.text, empty.stop_reason, tools_used, iterations, True, usage, self._model
        )

    def _append_assistant(self, content: tuple[ContentBlock, ...]) -> None:
        """Add an assistant turn; after a paused turn, the continuation joins that same turn."""
        if not content:
            return
        if self.history and self.history[-1].role == "assistant":
            last = self.history[-1]
            self.history[-1] = Message("assistant", (*last.content, *content))
        else:
            self.history.append(Message("assistant", content))

    def _close_tool_uses(self, tool_uses: list[ToolUseBlock], reason: str) -> None:
        """Answer calls that will not run, so no tool_use is left dangling in history."""
        if not tool_uses:
            return
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
