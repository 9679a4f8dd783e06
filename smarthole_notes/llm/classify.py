"""Map every way an Anthropic call can fail onto the provider-neutral error table.

Failures come from four places: the SDK's status errors (including an in-stream
`event: error`, which the SDK raises with status 200), the HTTP library under the
SDK (a cut or stalled stream), our own stream checks (an incomplete body), and
anything else.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2

from smarthole_notes.llm.errors import ErrorCode, LLMError
from smarthole_notes.llm.retry import parse_retry_after

_BY_ERROR_TYPE: dict[str, ErrorCode] = {
    "authentication_error": ErrorCode.AUTH_ERROR,
    "permission_error": ErrorCode.AUTH_ERROR,
    "rate_limit_error": ErrorCode.RATE_LIMIT,
    "overloaded_error": ErrorCode.OVERLOADED,
    "api_error": ErrorCode.SERVER_ERROR,
    "timeout_error": ErrorCode.SERVER_ERROR,
    "invalid_request_error": ErrorCode.INVALID_REQUEST,
    "not_found_error": ErrorCode.INVALID_REQUEST,
    "request_too_large": ErrorCode.INVALID_REQUEST,
}

_BY_STATUS: dict[int, ErrorCode] = {
    400: ErrorCode.INVALID_REQUEST,
    401: ErrorCode.AUTH_ERROR,
    403: ErrorCode.AUTH_ERROR,
    404: ErrorCode.INVALID_REQUEST,
    413: ErrorCode.INVALID_REQUEST,
    422: ErrorCode.INVALID_REQUEST,
    429: ErrorCode.RATE_LIMIT,
    529: ErrorCode.OVERLOADED,
}


def error_type_and_message(body: Any) -> tuple[str | None, str]:
    """The `error.type` and `error.message` of an Anthropic error body, if it has them."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            kind = inner.get("type")
            message = inner.get("message")
            return (kind if isinstance(kind, str) else None, str(message) if message else "")
    return None, ""


_CONTEXT_TOO_LONG_MESSAGES = ("prompt is too long", "exceed context limit")
"""Phrases of the API's 400 messages that mean the conversation does not fit the model:
"prompt is too long: 215000 tokens > 200000 maximum" and "input length and `max_tokens`
exceed context limit: ..."."""


def classify_error_event(status: int, body: Any, headers: Any = None) -> LLMError:
    """Classify an error by the type in its body first (in-stream errors arrive with 200)."""
    error_type, message = error_type_and_message(body)
    code = _BY_ERROR_TYPE.get(error_type or "")
    if code is None:
        code = _BY_STATUS.get(status)
    if code is None:
        code = ErrorCode.SERVER_ERROR if 500 <= status < 600 else ErrorCode.UNKNOWN
    if code is ErrorCode.INVALID_REQUEST and any(
        phrase in message.lower() for phrase in _CONTEXT_TOO_LONG_MESSAGES
    ):
        code = ErrorCode.CONTEXT_TOO_LONG
    where = "in the stream" if status == 200 else f"HTTP {status}"
    detail = f"{where}: {error_type or 'error'}" + (f": {message}" if message else "")
    retry_after = parse_retry_after(headers) if headers is not None else None
    return LLMError(code, detail, status=status, retry_after=retry_after)


def classify(exc: BaseException) -> LLMError:
    """Any exception raised while talking to the API, as an `LLMError`."""
    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, anthropic.APIStatusError):
        return classify_error_event(exc.status_code, exc.body, exc.response.headers)
    if isinstance(exc, anthropic.APITimeoutError):
        return LLMError(ErrorCode.NETWORK_ERROR, "the request timed out")
    if isinstance(exc, anthropic.APIConnectionError):
        cause = exc.__cause__
        reason = f"{type(cause).__name__}: {cause}" if cause else str(exc)
        return LLMError(ErrorCode.NETWORK_ERROR, f"connection failed ({reason})")
    if isinstance(exc, httpx2.TimeoutException | TimeoutError):
        return LLMError(ErrorCode.NETWORK_ERROR, f"timed out ({type(exc).__name__})")
    if isinstance(exc, httpx2.TransportError | OSError):
        return LLMError(ErrorCode.NETWORK_ERROR, f"connection lost ({type(exc).__name__}: {exc})")
    return LLMError(ErrorCode.UNKNOWN, f"{type(exc).__name__}: {exc}")
