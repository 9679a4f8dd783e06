"""The provider-neutral error table of llm.md: one code per kind of failure, each retryable or not."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    AUTH_ERROR = "auth_error"
    RATE_LIMIT = "rate_limit"
    OVERLOADED = "overloaded"
    SERVER_ERROR = "server_error"
    NETWORK_ERROR = "network_error"
    INVALID_REQUEST = "invalid_request"
    ABORTED = "aborted"
    UNKNOWN = "unknown"

    @property
    def retryable(self) -> bool:
        return self in _RETRYABLE


_RETRYABLE = frozenset(
    {ErrorCode.RATE_LIMIT, ErrorCode.OVERLOADED, ErrorCode.SERVER_ERROR, ErrorCode.NETWORK_ERROR}
)

_USER_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.AUTH_ERROR: "The Anthropic API key is missing or invalid",
    ErrorCode.RATE_LIMIT: "Anthropic's rate limit was reached",
    ErrorCode.OVERLOADED: "Anthropic is overloaded",
    ErrorCode.SERVER_ERROR: "Anthropic had a server error",
    ErrorCode.NETWORK_ERROR: "Could not reach Anthropic (network problem)",
    ErrorCode.INVALID_REQUEST: "Anthropic refused the request",
    ErrorCode.ABORTED: "Stopped",
    ErrorCode.UNKNOWN: "Unexpected error talking to Anthropic",
}


class LLMError(Exception):
    """A classified LLM failure.

    `detail` is for logs (never contains the API key); `user_message` is the short,
    actionable line a user sees.
    """

    def __init__(
        self,
        code: ErrorCode,
        detail: str = "",
        *,
        status: int | None = None,
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> None:
        self.code = code
        self.detail = detail
        self.status = status
        self.retry_after = retry_after
        self.attempts = attempts
        super().__init__(self.user_message)

    @property
    def retryable(self) -> bool:
        return self.code.retryable

    @property
    def user_message(self) -> str:
        base = _USER_MESSAGES[self.code]
        if self.code.retryable and self.attempts > 1:
            base += f"; retried {self.attempts} times"
        if self.code is ErrorCode.INVALID_REQUEST and self.detail:
            base += f": {self.detail}"
        return base

    def __repr__(self) -> str:
        return f"LLMError({self.code.value!r}, {self.detail!r}, status={self.status})"


class ConfigurationError(Exception):
    """The service cannot run as configured (e.g. no API key); the message says how to fix it."""
