"""The Anthropic provider: one model, one mode (streaming or not), on the official async SDK.

It owns the retry policy, cancellation, the stall watchdog and error classification;
callers see only provider-neutral requests, responses and `LLMError`s.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

import anthropic
import httpx2

# The SDK's own SSE decoder (what `AsyncStream.raw_events` wraps), used directly so the
# last event of a body that lacks its final blank line can be dispatched too.
from anthropic._streaming import ServerSentEvent, SSEDecoder

from smarthole_notes.llm.assembly import (
    IncompleteStream,
    MalformedStream,
    StreamAssembler,
    ToolInputError,
)
from smarthole_notes.llm.caching import apply_cache_breakpoints
from smarthole_notes.llm.cancel import Cancelled, CancelSignal, run_cancellable
from smarthole_notes.llm.classify import classify, classify_error_event
from smarthole_notes.llm.errors import ErrorCode, LLMError
from smarthole_notes.llm.events import EventSink, StreamRestarted, TextDelta
from smarthole_notes.llm.limits import ModelLimits
from smarthole_notes.llm.retry import RetryPolicy
from smarthole_notes.llm.types import (
    ContentBlock,
    LLMRequest,
    LLMResponse,
    OpaqueBlock,
    RefusalDetails,
    StopReason,
    TextBlock,
    ToolUseBlock,
    Usage,
)

log = logging.getLogger("smarthole_notes.llm")

DEFAULT_STREAM_IDLE_TIMEOUT = 90.0
DEFAULT_MICRO_MAX_TOKENS = 2_048
TOOL_CHOICE: dict[str, Any] = {"type": "auto", "disable_parallel_tool_use": True}

# One cache for the process: max_tokens is asked once per model.
shared_model_limits = ModelLimits()


def make_client(api_key: str, base_url: str | None = None) -> anthropic.AsyncAnthropic:
    """An SDK client with its own retries off (the provider retries) and sane timeouts.

    `base_url` None lets the SDK read `ANTHROPIC_BASE_URL`, path prefix included.
    """
    return anthropic.AsyncAnthropic(
        api_key=api_key,
        base_url=base_url,
        max_retries=0,
        timeout=httpx2.Timeout(connect=15.0, read=300.0, write=60.0, pool=15.0),
    )


class AnthropicProvider:
    """Sends provider-neutral requests to one Claude model, streaming or not (fixed at birth)."""

    def __init__(
        self,
        client: anthropic.AsyncAnthropic,
        model: str,
        *,
        streaming: bool = True,
        retry: RetryPolicy | None = None,
        stream_idle_timeout: float = DEFAULT_STREAM_IDLE_TIMEOUT,
        limits: ModelLimits | None = None,
        micro_max_tokens: int = DEFAULT_MICRO_MAX_TOKENS,
        prompt_caching: bool = True,
    ) -> None:
        self._client = client
        self.model = model
        self.streaming = streaming
        self._retry = retry or RetryPolicy()
        self._idle_timeout = stream_idle_timeout
        self._limits = limits or shared_model_limits
        self._micro_max_tokens = micro_max_tokens
        self.prompt_caching = prompt_caching
        """Mark cache breakpoints (see `caching`); off only to measure what caching saves."""

    async def send(
        self,
        request: LLMRequest,
        *,
        cancel: CancelSignal | None = None,
        on_event: EventSink | None = None,
    ) -> LLMResponse:
        """One request with retries. Raises `LLMError` (code `aborted` when cancelled)."""
        if cancel is not None and cancel.fired:
            raise LLMError(ErrorCode.ABORTED, "cancelled before the request was sent")
        try:
            params = await run_cancellable(self._params(request), cancel)
        except Cancelled:
            raise LLMError(ErrorCode.ABORTED, "cancelled before the request was sent") from None
        attempt = 0
        while True:
            attempt += 1
            log.debug(
                "LLM request: model=%s messages=%d tools=%d streaming=%s max_tokens=%d attempt=%d",
                self.model,
                len(request.messages),
                len(request.tools),
                self.streaming,
                params["max_tokens"],
                attempt,
            )
            try:
                message, input_errors = await run_cancellable(
                    self._attempt(params, on_event), cancel
                )
            except Cancelled:
                raise LLMError(ErrorCode.ABORTED, "cancelled by the user") from None
            except Exception as exc:
                error = classify(exc)
                error.attempts = attempt
                if not error.retryable or attempt >= self._retry.max_attempts:
                    log.debug("LLM request failed for good: %s (%s)", error.code, error.detail)
                    raise error from exc
                delay = self._retry.delay(attempt, error.retry_after)
                log.debug(
                    "LLM retry: attempt %d/%d failed (%s: %s); retrying in %.2fs",
                    attempt,
                    self._retry.max_attempts,
                    error.code,
                    error.detail,
                    delay,
                )
                try:
                    await run_cancellable(self._retry.sleep(delay), cancel)
                except Cancelled:
                    raise LLMError(ErrorCode.ABORTED, "cancelled during a retry wait") from None
                if on_event is not None and self.streaming:
                    on_event(StreamRestarted(attempt + 1, error.detail))
                continue
            response = to_llm_response(message, input_errors)
            log.debug(
                "LLM response: stop_reason=%s input_tokens=%d cache_write=%s cache_read=%s "
                "output_tokens=%d blocks=%d",
                response.raw_stop_reason,
                response.usage.input_tokens,
                response.usage.cache_creation_input_tokens,
                response.usage.cache_read_input_tokens,
                response.usage.output_tokens,
                len(response.content),
            )
            if response.stop_reason is StopReason.OTHER:
                log.warning(
                    "Unknown stop reason %r from the API; its text is delivered as the answer",
                    response.raw_stop_reason,
                )
            return response

    async def _params(self, request: LLMRequest) -> dict[str, Any]:
        if request.max_tokens is not None:
            max_tokens = request.max_tokens
        elif self.streaming:
            max_tokens = await self._limits.max_tokens(self.model, self._lookup_max_tokens)
        else:
            max_tokens = self._micro_max_tokens
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_tokens,
            "messages": [m.to_api() for m in request.messages],
        }
        if request.tools:
            params["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.input_schema}
                for t in request.tools
            ]
            params["tool_choice"] = TOOL_CHOICE
        apply_cache_breakpoints(
            params,
            request.system,
            self.model,
            mark=self.prompt_caching,
            messages=request.cache_messages,
        )
        return params

    async def _lookup_max_tokens(self, model: str) -> int | None:
        info = await self._client.with_options(timeout=10.0).models.retrieve(model)
        return info.max_tokens

    async def _attempt(
        self, params: dict[str, Any], on_event: EventSink | None
    ) -> tuple[dict[str, Any], dict[int, ToolInputError]]:
        if not self.streaming:
            message = await self._client.messages.create(**params)
            as_dict: dict[str, Any] = message.to_dict()
            return as_dict, {}
        return await self._stream_attempt(params, on_event)

    async def stream_final_message(
        self, params: dict[str, Any], on_event: EventSink | None
    ) -> dict[str, Any]:
        """One streaming attempt (no retries): the final message in the API's dict form."""
        message, _ = await self._stream_attempt(params, on_event)
        return message

    async def _stream_attempt(
        self, params: dict[str, Any], on_event: EventSink | None
    ) -> tuple[dict[str, Any], dict[int, ToolInputError]]:
        stream = await self._client.messages.create(**params, stream=True)
        response = stream.response
        try:
            return await self._read_stream(response, on_event)
        finally:
            # Releases the connection at once, also when cancelled or failed midway.
            await response.aclose()

    async def _read_stream(
        self, response: httpx2.Response, on_event: EventSink | None
    ) -> tuple[dict[str, Any], dict[int, ToolInputError]]:
        assembler = StreamAssembler()
        decoder = SSEDecoder()
        events = decoder.aiter_bytes(response.aiter_bytes()).__aiter__()
        while True:
            try:
                async with asyncio.timeout(self._idle_timeout):
                    sse = await anext(events)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise LLMError(
                    ErrorCode.NETWORK_ERROR,
                    f"the stream stalled (no event for {self._idle_timeout:g} s)",
                ) from None
            self._apply(sse, assembler, on_event)
        # The body may end without the blank line that completes its last event (the
        # SDK still uses what came before it): dispatch that event if it is whole.
        last = decoder.decode("")
        if last is not None:
            try:
                self._apply(last, assembler, on_event)
            except LLMError as exc:
                if exc.code is not ErrorCode.MALFORMED_RESPONSE:
                    raise
                # A half-written last event is a body cut short, not a malformed one:
                # whether the message is whole is decided below, as for any early end.
                log.debug("Ignored an unterminated last stream event: %s", exc.detail)
        try:
            return assembler.final_message(), assembler.input_errors
        except IncompleteStream as exc:
            raise LLMError(ErrorCode.NETWORK_ERROR, f"incomplete stream: {exc}") from exc

    @staticmethod
    def _apply(
        sse: ServerSentEvent, assembler: StreamAssembler, on_event: EventSink | None
    ) -> None:
        """Feed one SSE event to the assembler; in-stream errors and bad events raise."""
        if sse.event == "ping" or not sse.data:
            return
        if sse.event == "error":
            raise classify_error_event(200, _json_or_text(sse.data))
        try:
            data = json.loads(sse.data)
        except ValueError as exc:
            raise LLMError(
                ErrorCode.MALFORMED_RESPONSE, f"a stream event is not JSON ({sse.event})"
            ) from exc
        if not isinstance(data, dict):
            raise LLMError(
                ErrorCode.MALFORMED_RESPONSE, f"a stream event is not an object ({sse.event})"
            )
        try:
            text = assembler.feed(data)
        except MalformedStream as exc:
            raise LLMError(ErrorCode.MALFORMED_RESPONSE, f"malformed stream: {exc}") from exc
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise LLMError(
                ErrorCode.MALFORMED_RESPONSE,
                f"malformed stream event {sse.event} ({type(exc).__name__}: {exc})",
            ) from exc
        if text and on_event is not None:
            on_event(TextDelta(text))


def _json_or_text(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data


def to_llm_response(
    message: Mapping[str, Any], input_errors: Mapping[int, ToolInputError] | None = None
) -> LLMResponse:
    """A Messages API message (dict form) as a provider-neutral response.

    Thinking blocks and server-side blocks are dropped, except from a paused turn
    (`pause_turn`), which must be sent back exactly as it came; empty text blocks are
    dropped too (the API refuses them when sent back in history). `input_errors` marks
    tool_use blocks whose streamed input was not a whole JSON object.
    """
    raw_stop = message.get("stop_reason")
    stop_reason = StopReason.parse(raw_stop)
    keep_opaque = stop_reason is StopReason.PAUSE_TURN
    errors = input_errors or {}
    content: list[ContentBlock] = []
    for index, block in enumerate(message.get("content") or []):
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            content.append(TextBlock(block["text"]))
        elif kind == "tool_use":
            tool_input = block.get("input")
            fault = errors.get(index)
            if fault is None and not isinstance(tool_input, dict):
                fault = ToolInputError(json.dumps(tool_input), "not a JSON object")
            content.append(
                ToolUseBlock(
                    str(block["id"]),
                    str(block["name"]),
                    tool_input if isinstance(tool_input, dict) else {},
                    input_error=fault.reason if fault else None,
                    raw_input=fault.raw if fault else None,
                )
            )
        elif keep_opaque and kind != "text" and isinstance(kind, str):
            content.append(OpaqueBlock(dict(block)))
    usage = message.get("usage") or {}
    return LLMResponse(
        content=tuple(content),
        stop_reason=stop_reason,
        usage=Usage(
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
            cache_creation_input_tokens=_optional_int(usage.get("cache_creation_input_tokens")),
            cache_read_input_tokens=_optional_int(usage.get("cache_read_input_tokens")),
        ),
        raw_stop_reason=raw_stop,
        model=str(message.get("model") or ""),
        refusal=_refusal(message) if stop_reason is StopReason.REFUSAL else None,
    )


def _optional_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _refusal(message: Mapping[str, Any]) -> RefusalDetails:
    """The `stop_details` of a refusal, tolerating a missing or odd-shaped object."""
    details = message.get("stop_details")
    if not isinstance(details, Mapping):
        return RefusalDetails()
    category = details.get("category")
    explanation = details.get("explanation")
    return RefusalDetails(
        category if isinstance(category, str) and category else None,
        explanation if isinstance(explanation, str) and explanation.strip() else None,
    )
