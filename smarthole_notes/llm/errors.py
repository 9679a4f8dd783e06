"""The provider-neutral error table: one code per kind of failure, each retryable or not.

Besides the transport failures, three model outcomes end a request as a failure because
the user must never take them for an answer: a refusal (`refused`), a tool call cut by
the output limit (`output_limit`) and a conversation too long for the model
(`context_too_long`). Every error raised by the agent service carries the tool calls
that did run before it (`tools_used`) and any text the model wrote (`partial_text`), so
whoever reports the failure can say truthfully what was and was not done.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from smarthole_notes.llm.types import ToolCallRecord, Usage


class ErrorCode(StrEnum):
    AUTH_ERROR = "auth_error"
    RATE_LIMIT = "rate_limit"
    OVERLOADED = "overloaded"
    SERVER_ERROR = "server_error"
    NETWORK_ERROR = "network_error"
    MALFORMED_RESPONSE = "malformed_response"
    INVALID_REQUEST = "invalid_request"
    CONTEXT_TOO_LONG = "context_too_long"
    REFUSED = "refused"
    OUTPUT_LIMIT = "output_limit"
    ABORTED = "aborted"
    UNKNOWN = "unknown"

    @property
    def retryable(self) -> bool:
        return self in _RETRYABLE


# A malformed response is the server's fault and usually a one-off (a proxy or a bad
# deploy mangling one stream), so it is retried like a server error.
_RETRYABLE = frozenset(
    {
        ErrorCode.RATE_LIMIT,
        ErrorCode.OVERLOADED,
        ErrorCode.SERVER_ERROR,
        ErrorCode.NETWORK_ERROR,
        ErrorCode.MALFORMED_RESPONSE,
    }
)

_USER_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.AUTH_ERROR: "The Anthropic API key is missing or invalid",
    ErrorCode.RATE_LIMIT: "Anthropic's rate limit was reached",
    ErrorCode.OVERLOADED: "Anthropic is overloaded",
    ErrorCode.SERVER_ERROR: "Anthropic had a server error",
    ErrorCode.NETWORK_ERROR: "Could not reach Anthropic (network problem)",
    ErrorCode.MALFORMED_RESPONSE: "Anthropic sent a malformed response",
    ErrorCode.INVALID_REQUEST: "Anthropic refused the request",
    ErrorCode.CONTEXT_TOO_LONG: "The conversation is too long for the model",
    ErrorCode.REFUSED: "Claude declined this request",
    ErrorCode.OUTPUT_LIMIT: "The request stopped at the model's output limit",
    ErrorCode.ABORTED: "Stopped",
    ErrorCode.UNKNOWN: "Unexpected error talking to Anthropic",
}

REFUSAL_CATEGORIES: dict[str, str] = {
    "cyber": "it may facilitate cyber attacks (such as malware or exploits)",
    "bio": "it may facilitate biological harm",
    "frontier_llm": "it may help build competing AI models, which Anthropic's terms restrict",
    "reasoning_extraction": "it asks Claude to reveal its internal reasoning",
    "general_harms": "it touches an area Anthropic's usage policies treat as harmful",
}
"""Plain meanings of the `stop_details.category` values the API sends (SDK 2.14's list)."""

UNKNOWN_REFUSAL_CATEGORY = "Anthropic's safety checks flagged it"


def refusal_reason(category: str | None) -> str:
    """The plain meaning of a refusal category; a generic sentence for a new or missing one."""
    if category is None:
        return UNKNOWN_REFUSAL_CATEGORY
    return REFUSAL_CATEGORIES.get(category, f"{UNKNOWN_REFUSAL_CATEGORY} ({category})")


def done_before(tools_used: Sequence[ToolCallRecord]) -> str:
    """One sentence on which tool calls had already run (successfully) before a failure."""
    done = [_describe(t) for t in tools_used if not t.is_error]
    if not done:
        return "Nothing had been done yet."
    return "Already done before it stopped: " + "; ".join(done) + "."


def _describe(tool: ToolCallRecord) -> str:
    target = tool.input.get("path") or tool.input.get("source") or tool.input.get("query")
    return f"{tool.name} ({target})" if isinstance(target, str) and target else tool.name


class LLMError(Exception):
    """A classified LLM failure.

    `detail` is for logs (never contains the API key); `user_message` is the short,
    actionable line a user sees. `tools_used`, `partial_text` and `usage` are filled in by
    the agent service when the failure ends a request in which tools ran, text was written
    or tokens were billed (`usage`: the rounds that completed, the failing one too when its
    response arrived).
    """

    def __init__(
        self,
        code: ErrorCode,
        detail: str = "",
        *,
        status: int | None = None,
        retry_after: float | None = None,
        attempts: int = 1,
        tools_used: Sequence[ToolCallRecord] = (),
        partial_text: str = "",
        usage: Usage | None = None,
    ) -> None:
        self.code = code
        self.detail = detail
        self.status = status
        self.retry_after = retry_after
        self.attempts = attempts
        self.tools_used: list[ToolCallRecord] = list(tools_used)
        self.partial_text = partial_text
        self.usage = usage or Usage()
        self.model: str | None = None  # the model the request went to, for pricing `usage`
        super().__init__(code.value)

    def __str__(self) -> str:
        return self.user_message

    @property
    def retryable(self) -> bool:
        return self.code.retryable

    @property
    def user_message(self) -> str:
        base = _USER_MESSAGES[self.code]
        if self.attempts > 1:
            base += f"; failed after {self.attempts} attempts"
        if self.code is ErrorCode.INVALID_REQUEST and self.detail:
            base += f": {self.detail}"
        return base

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.value!r}, {self.detail!r}, status={self.status})"


class RefusalError(LLMError):
    """Claude declined the request (`stop_reason: refusal`). Never an answer; never retried."""

    def __init__(
        self,
        category: str | None,
        explanation: str | None,
        *,
        tools_used: Sequence[ToolCallRecord] = (),
        partial_text: str = "",
        usage: Usage | None = None,
    ) -> None:
        self.category = category
        self.explanation = explanation.strip() if explanation and explanation.strip() else None
        detail = f"refusal: category={category!r}" + (
            f", explanation={self.explanation!r}" if self.explanation else ""
        )
        super().__init__(
            ErrorCode.REFUSED, detail, tools_used=tools_used, partial_text=partial_text,
            usage=usage,
        )  # fmt: skip

    @property
    def user_message(self) -> str:
        message = f"Claude declined this request: {refusal_reason(self.category)}."
        if self.explanation:
            explanation = self.explanation
            if explanation[-1] not in ".!?":
                explanation += "."
            message += f" Anthropic's explanation: {explanation}"
        if self.tools_used:
            message += " " + done_before(self.tools_used)
        return message


class OutputLimitError(LLMError):
    """The model's output limit cut a tool call midway: the call was not run; the request failed.

    `cut_tool` names the call that was cut; `tools_used` holds the calls that did run.
    """

    def __init__(
        self,
        cut_tool: str,
        *,
        tools_used: Sequence[ToolCallRecord] = (),
        partial_text: str = "",
        output_tokens: int = 0,
        usage: Usage | None = None,
    ) -> None:
        self.cut_tool = cut_tool
        self.output_tokens = output_tokens
        super().__init__(
            ErrorCode.OUTPUT_LIMIT,
            f"max_tokens cut a {cut_tool} call after {output_tokens} output tokens",
            tools_used=tools_used,
            partial_text=partial_text,
            usage=usage,
        )

    @property
    def user_message(self) -> str:
        return (
            f"The request stopped at the model's output limit while writing a {self.cut_tool} "
            f"call, so that step was not done. {done_before(self.tools_used)}"
        )


class ConfigurationError(Exception):
    """The service cannot run as configured (e.g. no API key); the message says how to fix it."""
