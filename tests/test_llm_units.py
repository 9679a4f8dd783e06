"""Pure pieces of the LLM layer: error table, retry delays, prompt formatting, history trimming."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from smarthole_notes.clock import format_local_time
from smarthole_notes.llm.errors import ErrorCode, LLMError
from smarthole_notes.llm.limits import DEFAULT_MAX_TOKENS, table_max_tokens
from smarthole_notes.llm.prompt import SystemPrompt
from smarthole_notes.llm.retry import RetryPolicy, parse_retry_after
from smarthole_notes.llm.service import trim_history
from smarthole_notes.llm.state import ConversationState
from smarthole_notes.llm.types import (
    Message,
    StopReason,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        ("auth_error", False),
        ("rate_limit", True),
        ("overloaded", True),
        ("server_error", True),
        ("network_error", True),
        ("malformed_response", True),
        ("invalid_request", False),
        ("context_too_long", False),
        ("refused", False),
        ("output_limit", False),
        ("aborted", False),
        ("unknown", False),
    ],
)
def test_error_table_matches_the_spec(code: str, retryable: bool) -> None:
    assert ErrorCode(code).retryable is retryable
    assert LLMError(ErrorCode(code)).retryable is retryable


def test_user_message_counts_attempts_not_retries() -> None:
    error = LLMError(ErrorCode.OVERLOADED, "HTTP 529", attempts=3)
    assert error.user_message == "Anthropic is overloaded; failed after 3 attempts"
    assert str(error) == error.user_message
    assert (
        LLMError(ErrorCode.AUTH_ERROR).user_message == "The Anthropic API key is missing or invalid"
    )


def test_retry_delays_are_one_then_two_seconds() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts == 3
    assert [policy.delay(1, None), policy.delay(2, None)] == [1.0, 2.0]


def test_retry_after_is_honoured_and_capped() -> None:
    policy = RetryPolicy(retry_after_cap=30.0)
    assert policy.delay(1, 5.0) == 5.0
    assert policy.delay(1, 3600.0) == 30.0
    assert policy.delay(1, -1.0) == 0.0


def test_retry_after_headers_in_every_form() -> None:
    assert parse_retry_after({"retry-after": "7"}) == 7.0
    assert parse_retry_after({"retry-after": "0.5"}) == 0.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    in_the_past = parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert in_the_past == 0.0


def test_max_tokens_table_matches_dated_ids_and_is_not_one_number() -> None:
    assert table_max_tokens("claude-haiku-4-5") == 64_000
    assert table_max_tokens("claude-haiku-4-5-20251001") == 64_000
    assert table_max_tokens("claude-opus-4-7") == 128_000
    assert table_max_tokens("claude-opus-4-1-20250805") == 32_000
    assert table_max_tokens("gpt-who") is None
    assert DEFAULT_MAX_TOKENS < 64_000


def test_unknown_stop_reasons_map_safely() -> None:
    assert StopReason.parse("tool_use") is StopReason.TOOL_USE
    assert StopReason.parse("model_context_window_exceeded_v9") is StopReason.OTHER
    assert StopReason.parse(None) is StopReason.OTHER


@pytest.mark.parametrize(
    ("zone", "moment", "expected"),
    [
        (
            "America/New_York",
            datetime(2026, 2, 5, 19, 30, tzinfo=UTC),
            "Thursday, Feb 5, 2026 2:30 PM (America/New_York, UTC-5)",
        ),
        (
            "Asia/Kolkata",
            datetime(2026, 2, 5, 0, 5, tzinfo=UTC),
            "Thursday, Feb 5, 2026 5:35 AM (Asia/Kolkata, UTC+5:30)",
        ),
        (
            "Europe/London",
            datetime(2026, 7, 1, 11, 0, tzinfo=UTC),
            "Wednesday, Jul 1, 2026 12:00 PM (Europe/London, UTC+1)",
        ),
    ],
)
def test_local_time_has_zone_name_and_offset(zone: str, moment: datetime, expected: str) -> None:
    assert format_local_time(moment.astimezone(ZoneInfo(zone)), zone) == expected


def test_system_prompt_carries_time_architecture_context_and_pending_question() -> None:
    prompt = SystemPrompt(
        "Lists/ holds running lists.",
        zone=ZoneInfo("America/New_York"),
        zone_name="America/New_York",
        clock=lambda: datetime(2026, 2, 5, 19, 30, tzinfo=UTC),
        conversation_context=lambda: "Recent conversations:\n- Kitchen plans",
    )
    state = ConversationState()
    state.ask("Which list, groceries or hardware?", "msg-1")
    text = prompt(state)
    assert "Thursday, Feb 5, 2026 2:30 PM (America/New_York, UTC-5)" in text
    assert "Lists/ holds running lists." in text
    assert "Recent conversations:\n- Kitchen plans" in text
    assert "Which list, groceries or hardware?" in text
    assert "best-guess" in text
    assert "waiting" not in prompt(ConversationState())


def _tool_round(i: int) -> list[Message]:
    use = ToolUseBlock(f"t{i}", "read_file", {"path": f"n{i}.md"})
    return [
        Message("assistant", (use,)),
        Message("user", (ToolResultBlock(f"t{i}", "ok"),)),
    ]


def test_trimming_never_separates_tool_use_from_its_result() -> None:
    history: list[Message] = []
    for turn in range(6):
        history.append(Message.user_text(f"request {turn}"))
        for i in range(3):
            history.extend(_tool_round(turn * 10 + i))
        history.append(Message("assistant", (TextBlock("done"),)))
    for limit in range(1, len(history) + 2):
        kept = trim_history(history, limit)
        assert kept[0].role == "user" and not kept[0].has_tool_results
        uses = {u.id for m in kept for u in m.tool_uses}
        results = {b.tool_use_id for m in kept for b in m.content if isinstance(b, ToolResultBlock)}
        assert results <= uses
        assert kept == history[len(history) - len(kept) :]


def test_message_round_trips_through_dicts() -> None:
    message = Message(
        "assistant",
        (TextBlock("hi"), ToolUseBlock("t1", "write_file", {"path": "a.md", "content": "é"})),
    )
    assert Message.from_dict(message.to_dict()) == message
    result = Message("user", (ToolResultBlock("t1", "Error: nope", True),))
    assert Message.from_dict(result.to_dict()) == result


def test_conversation_state_round_trips() -> None:
    state = ConversationState()
    state.ask("Which one?", "m-7")
    state.tool_call_count = 4
    assert ConversationState.from_dict(state.to_dict()) == state
