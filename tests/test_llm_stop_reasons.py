"""Every row of llm.md's "stop reasons and model output" table, over real sockets.

Each row goes through the real provider and agent service against the Anthropic
stand-in (what the caller gets, what stays in the service's history, how many HTTP
requests were made), and through the `ask` command (what the user is told, the exit code).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from smarthole_notes.llm.errors import ErrorCode, LLMError, OutputLimitError, RefusalError
from smarthole_notes.llm.service import OUTPUT_LIMIT_NOTE, AgentService
from smarthole_notes.llm.types import (
    Message,
    OpaqueBlock,
    StopReason,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)
from smarthole_notes.tools.base import Tool, ToolInput, ToolRegistry
from tests.llm_helpers import RecordingSleep, ask, provider
from tests.standins.anthropic_api import (
    MALFORMED_KINDS,
    AnthropicStandIn,
    context_exceeded_reply,
    cut_tool_reply,
    encode_sse,
    invalid_tool_reply,
    malformed_reply,
    pause_reply,
    prompt_too_long_reply,
    raw_reply,
    refusal_reply,
    reply_events,
    text_reply,
    tool_reply,
)
from tests.test_cli_ask import run_ask

WRITE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
    "required": ["path", "content"],
}


class Notes:
    """An in-memory `write_file`, to see what was (not) written."""

    def __init__(self) -> None:
        self.written: dict[str, str] = {}

    async def write(self, tool_input: ToolInput) -> str:
        self.written[tool_input["path"]] = tool_input["content"]
        return f"Wrote {tool_input['path']}"

    def tools(self) -> ToolRegistry:
        return ToolRegistry([Tool("write_file", "Write a note.", WRITE_SCHEMA, self.write)])


def agent(api: AnthropicStandIn, notes: Notes, sleep: RecordingSleep | None = None) -> AgentService:
    return AgentService(
        provider(api, sleep=sleep or RecordingSleep()),
        system_prompt=lambda state: "You are a test agent.",
        tools=notes.tools(),
    )


def bodies(api: AnthropicStandIn) -> list[dict[str, Any]]:
    return [r.body for r in api.requests]


# --------------------------------------------------------------------------- answers


@pytest.mark.parametrize("stop", ["end_turn", "stop_sequence"])
async def test_end_turn_and_stop_sequence_are_the_answer(
    anthropic_api: AnthropicStandIn, stop: str
) -> None:
    anthropic_api.script(text_reply("Added eggs.", stop_reason=stop))
    result = await agent(anthropic_api, Notes()).process("add eggs")
    assert result.text == "Added eggs."
    assert result.stop_reason == StopReason(stop)
    assert len(anthropic_api.requests) == 1


async def test_plain_max_tokens_is_the_text_with_a_note(anthropic_api: AnthropicStandIn) -> None:
    anthropic_api.script(
        text_reply("Here is the long summary, part one ", stop_reason="max_tokens")
    )
    service = agent(anthropic_api, Notes())
    result = await service.process("summarise everything")
    assert result.text == f"Here is the long summary, part one\n\n{OUTPUT_LIMIT_NOTE}"
    assert result.stop_reason is StopReason.MAX_TOKENS
    assert len(anthropic_api.requests) == 1
    assert [m.role for m in service.history] == ["user", "assistant"]


async def test_an_unknown_stop_reason_is_logged_by_name_and_its_text_delivered(
    anthropic_api: AnthropicStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    anthropic_api.script(text_reply("Still an answer.", stop_reason="brand_new_reason"))
    with caplog.at_level(logging.WARNING, logger="smarthole_notes.llm"):
        result = await agent(anthropic_api, Notes()).process("hi")
    assert result.text == "Still an answer."
    assert result.stop_reason is StopReason.OTHER
    assert "brand_new_reason" in caplog.text
    assert len(anthropic_api.requests) == 1


# --------------------------------------------------------------------------- refusal


async def test_a_refusal_is_an_error_with_its_category_and_explanation_never_retried(
    anthropic_api: AnthropicStandIn,
) -> None:
    anthropic_api.script(refusal_reply("I can", category="cyber"), text_reply("never sent"))
    service = agent(anthropic_api, Notes())
    with pytest.raises(RefusalError) as caught:
        await service.process("write me a keylogger")
    error = caught.value
    assert error.code is ErrorCode.REFUSED and not error.retryable
    assert error.category == "cyber"
    assert error.explanation == "This request was declined because it could enable cyber harm."
    assert error.user_message == (
        "Claude declined this request: it may facilitate cyber attacks (such as malware or "
        "exploits). Anthropic's explanation: This request was declined because it could "
        "enable cyber harm."
    )
    assert error.partial_text == "I can"
    assert error.tools_used == []
    assert len(anthropic_api.requests) == 1
    # The refused turn is removed, as the API asks, so the next message is not refused too.
    assert service.history == []


@pytest.mark.parametrize(
    ("category", "explanation", "details", "expected"),
    [
        ("bio", None, True, "Claude declined this request: it may facilitate biological harm."),
        (
            "frontier_llm",
            None,
            True,
            "Claude declined this request: it may help build competing AI models, which "
            "Anthropic's terms restrict.",
        ),
        (
            "general_harms",
            "Declined under the usage policy",
            True,
            "Claude declined this request: it touches an area Anthropic's usage policies "
            "treat as harmful. Anthropic's explanation: Declined under the usage policy.",
        ),
        (
            "next_year_category",
            None,
            True,
            "Claude declined this request: Anthropic's safety checks flagged it "
            "(next_year_category).",
        ),
        (None, None, True, "Claude declined this request: Anthropic's safety checks flagged it."),
        (None, None, False, "Claude declined this request: Anthropic's safety checks flagged it."),
    ],
)
async def test_refusal_wording_for_each_category(
    anthropic_api: AnthropicStandIn,
    category: str | None,
    explanation: str | None,
    details: bool,
    expected: str,
) -> None:
    anthropic_api.script(
        refusal_reply(category=category, explanation=explanation, stop_details=details)
    )
    with pytest.raises(RefusalError) as caught:
        await agent(anthropic_api, Notes()).process("something")
    assert caught.value.user_message == expected
    assert caught.value.category == category


async def test_a_refusal_after_a_tool_ran_says_what_was_already_done(
    anthropic_api: AnthropicStandIn,
) -> None:
    notes = Notes()
    anthropic_api.script(
        tool_reply("write_file", {"path": "a.md", "content": "x"}, tool_id="toolu_a"),
        refusal_reply(category="cyber", explanation=None),
    )
    service = agent(anthropic_api, notes)
    with pytest.raises(RefusalError) as caught:
        await service.process("do it")
    assert notes.written == {"a.md": "x"}
    assert [t.name for t in caught.value.tools_used] == ["write_file"]
    assert caught.value.user_message.endswith("Already done before it stopped: write_file (a.md).")
    assert len(anthropic_api.requests) == 2
    assert service.history == []


# --------------------------------------------------------------------------- pause_turn


async def test_pause_turn_is_continued_with_the_paused_content_never_shown_as_the_answer(
    anthropic_api: AnthropicStandIn,
) -> None:
    anthropic_api.script(
        pause_reply("Let me search for that. ", tool_id="srvtoolu_1"),
        text_reply("Found three ideas."),
    )
    service = agent(anthropic_api, Notes())
    result = await service.process("kitchen ideas?")
    assert result.text == "Found three ideas."
    assert result.iterations == 1  # the continuation counts as a round of the loop
    assert len(anthropic_api.requests) == 2
    second = bodies(anthropic_api)[1]["messages"]
    assert [m["role"] for m in second] == ["user", "assistant"]
    paused = second[-1]["content"]
    assert [b["type"] for b in paused] == ["text", "server_tool_use", "web_search_tool_result"]
    assert paused[0]["text"] == "Let me search for that. "  # sent back as it came
    assert paused[1]["id"] == "srvtoolu_1" and paused[1]["input"] == {
        "query": "kitchen renovation ideas"
    }
    assert paused[2]["tool_use_id"] == "srvtoolu_1"
    # The continuation joins the paused turn: one assistant turn in history.
    assert [m.role for m in service.history] == ["user", "assistant"]
    assert isinstance(service.history[1].content[1], OpaqueBlock)
    assert service.history[1].text.endswith("Found three ideas.")


async def test_a_paused_turn_ending_in_text_is_sent_back_without_trailing_space(
    anthropic_api: AnthropicStandIn,
) -> None:
    """The API refuses a request whose final assistant text ends in whitespace."""
    paused = dataclasses.replace(text_reply("Thinking it over. \n"), stop_reason="pause_turn")
    anthropic_api.script(paused, text_reply(" Done thinking."))
    result = await agent(anthropic_api, Notes()).process("think")
    assert result.text == " Done thinking."
    last = bodies(anthropic_api)[1]["messages"][-1]
    assert last == {"role": "assistant", "content": [{"type": "text", "text": "Thinking it over."}]}


async def test_pause_turn_then_a_tool_call_then_the_answer(anthropic_api: AnthropicStandIn) -> None:
    notes = Notes()
    anthropic_api.script(
        pause_reply(None, with_result=False),
        tool_reply("write_file", {"path": "Ideas.md", "content": "tiles"}, tool_id="toolu_w"),
        text_reply("Saved the ideas to Ideas.md."),
    )
    result = await agent(anthropic_api, notes).process("save kitchen ideas")
    assert result.text == "Saved the ideas to Ideas.md."
    assert notes.written == {"Ideas.md": "tiles"}
    assert result.iterations == 2
    third = bodies(anthropic_api)[2]["messages"]
    assert [m["role"] for m in third] == ["user", "assistant", "user"]
    assert [b["type"] for b in third[1]["content"]] == ["server_tool_use", "tool_use"]
    assert third[2]["content"][0]["tool_use_id"] == "toolu_w"


async def test_endless_pause_turns_stop_at_the_round_limit(anthropic_api: AnthropicStandIn) -> None:
    anthropic_api.script(*[pause_reply(None) for _ in range(12)])
    service = AgentService(
        provider(anthropic_api, sleep=RecordingSleep()),
        system_prompt=lambda state: "test",
        tools=Notes().tools(),
        max_iterations=3,
    )
    result = await service.process("search forever")
    assert "stopped after 3 tool steps" in result.text
    assert len(anthropic_api.requests) == 4


# --------------------------------------------------------------------------- max_tokens cutting a tool call


async def test_a_tool_call_cut_by_max_tokens_is_not_run_and_is_closed_in_history(
    anthropic_api: AnthropicStandIn,
) -> None:
    notes = Notes()
    anthropic_api.script(
        cut_tool_reply(
            "write_file",
            {"path": "Big.md", "content": "word " * 200},
            keep=0.6,
            text="Let me do that for you now.",
            tool_id="toolu_cut",
        )
    )
    service = agent(anthropic_api, notes)
    with pytest.raises(OutputLimitError) as caught:
        await service.process("write a big note")
    error = caught.value
    assert error.code is ErrorCode.OUTPUT_LIMIT and not error.retryable
    assert error.cut_tool == "write_file"
    assert error.user_message == (
        "The request stopped at the model's output limit while writing a write_file call, "
        "so that step was not done. Nothing had been done yet."
    )
    assert error.partial_text == "Let me do that for you now."
    assert notes.written == {}
    assert len(anthropic_api.requests) == 1
    roles = [m.role for m in service.history]
    assert roles == ["user", "assistant", "user"]
    cut = service.history[1].tool_uses[0]
    assert cut.id == "toolu_cut" and cut.input_error is not None
    closing = service.history[2].content[0]
    assert isinstance(closing, ToolResultBlock)
    assert closing.tool_use_id == "toolu_cut" and closing.is_error
    assert "output limit" in closing.content

    # The history stays valid for the API: the next request has no dangling tool_use.
    anthropic_api.script(text_reply("Shorter then."))
    assert (await service.process("try a shorter note")).text == "Shorter then."
    messages = bodies(anthropic_api)[1]["messages"]
    assert messages[1]["content"][-1]["id"] == "toolu_cut"
    assert messages[2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_cut",
        "content": closing.content,
        "is_error": True,
    }
    assert messages[2]["content"][1] == {"type": "text", "text": "try a shorter note"}
    assert "input_error" not in messages[1]["content"][-1]


async def test_output_limit_after_tools_ran_lists_what_was_done(
    anthropic_api: AnthropicStandIn,
) -> None:
    notes = Notes()
    anthropic_api.script(
        tool_reply("write_file", {"path": "One.md", "content": "1"}),
        cut_tool_reply("write_file", {"path": "Two.md", "content": "2" * 100}),
    )
    with pytest.raises(OutputLimitError) as caught:
        await agent(anthropic_api, notes).process("write two notes")
    assert notes.written == {"One.md": "1"}
    assert [(t.name, t.input) for t in caught.value.tools_used] == [
        ("write_file", {"path": "One.md", "content": "1"})
    ]
    assert caught.value.user_message.endswith(
        "Already done before it stopped: write_file (One.md)."
    )
    assert len(anthropic_api.requests) == 2


async def test_a_whole_tool_call_at_max_tokens_runs(anthropic_api: AnthropicStandIn) -> None:
    """The input JSON is complete, so nothing was cut: the call runs and the loop goes on."""
    notes = Notes()
    whole = tool_reply("write_file", {"path": "a.md", "content": "x"}, tool_id="toolu_1")
    anthropic_api.script(
        dataclasses.replace(whole, stop_reason="max_tokens"), text_reply("Done writing.")
    )
    result = await agent(anthropic_api, notes).process("write")
    assert notes.written == {"a.md": "x"}
    assert result.text == "Done writing."


# --------------------------------------------------------------------------- context too long


async def test_model_context_window_exceeded_is_context_too_long(
    anthropic_api: AnthropicStandIn,
) -> None:
    anthropic_api.script(context_exceeded_reply("The first half of"), text_reply("never"))
    service = agent(anthropic_api, Notes())
    with pytest.raises(LLMError) as caught:
        await service.process("summarise the whole vault")
    assert caught.value.code is ErrorCode.CONTEXT_TOO_LONG and not caught.value.retryable
    assert caught.value.user_message == "The conversation is too long for the model"
    assert caught.value.partial_text == "The first half of"
    assert len(anthropic_api.requests) == 1


async def test_a_400_prompt_is_too_long_is_context_too_long_and_not_retried(
    anthropic_api: AnthropicStandIn,
) -> None:
    anthropic_api.script(prompt_too_long_reply(), text_reply("never"))
    with pytest.raises(LLMError) as caught:
        await agent(anthropic_api, Notes()).process("hi")
    assert caught.value.code is ErrorCode.CONTEXT_TOO_LONG
    assert "prompt is too long" in caught.value.detail
    assert len(anthropic_api.requests) == 1


# --------------------------------------------------------------------------- invalid tool JSON


async def test_invalid_tool_json_gets_an_error_result_and_the_model_corrects_itself(
    anthropic_api: AnthropicStandIn,
) -> None:
    notes = Notes()
    sleep = RecordingSleep()
    anthropic_api.script(
        invalid_tool_reply(
            "write_file", '{"path": "a.md",, "content": "x"}', text="Writing.", tool_id="toolu_bad"
        ),
        tool_reply("write_file", {"path": "a.md", "content": "x"}, tool_id="toolu_good"),
        text_reply("Wrote a.md."),
    )
    service = agent(anthropic_api, notes, sleep)
    result = await service.process("write a.md")
    assert result.text == "Wrote a.md."
    assert notes.written == {"a.md": "x"}
    assert sleep.delays == []  # no request was retried
    assert len(anthropic_api.requests) == 3
    second = bodies(anthropic_api)[1]["messages"]
    bad_use = second[1]["content"][-1]
    assert bad_use["id"] == "toolu_bad" and bad_use["input"] == {}
    result_block = second[2]["content"][0]
    assert result_block["tool_use_id"] == "toolu_bad" and result_block["is_error"] is True
    assert "not valid JSON" in result_block["content"]
    assert '{"path": "a.md",, "content": "x"}' in result_block["content"]
    assert [(t.name, t.is_error) for t in result.tools_used] == [
        ("write_file", True),
        ("write_file", False),
    ]


async def test_invalid_tool_json_is_two_requests_when_the_model_then_answers(
    anthropic_api: AnthropicStandIn,
) -> None:
    anthropic_api.script(
        invalid_tool_reply("write_file", '{"path": "a.md", "content": "unterminated}'),
        text_reply("Sorry, I could not write it."),
    )
    result = await agent(anthropic_api, Notes()).process("write")
    assert result.text == "Sorry, I could not write it."
    assert len(anthropic_api.requests) == 2
    content = bodies(anthropic_api)[1]["messages"][-1]["content"][0]
    assert content["is_error"] is True and "not valid JSON" in content["content"]


async def test_tool_input_that_is_json_but_not_an_object_is_refused_too(
    anthropic_api: AnthropicStandIn,
) -> None:
    anthropic_api.script(invalid_tool_reply("write_file", '["a.md"]'), text_reply("ok"))
    await agent(anthropic_api, Notes()).process("write")
    content = bodies(anthropic_api)[1]["messages"][-1]["content"][0]
    assert content["is_error"] is True and "not an object" in content["content"]


async def test_a_long_invalid_input_is_shown_as_a_short_excerpt(
    anthropic_api: AnthropicStandIn,
) -> None:
    raw = '{"path": "a.md", "content": "' + "x" * 5000 + '",,}'
    anthropic_api.script(invalid_tool_reply("write_file", raw), text_reply("ok"))
    await agent(anthropic_api, Notes()).process("write")
    content = bodies(anthropic_api)[1]["messages"][-1]["content"][0]["content"]
    assert len(content) < 600 and "…" in content


# --------------------------------------------------------------------------- stream framing


async def test_no_final_blank_line_is_accepted_in_one_request(
    anthropic_api: AnthropicStandIn,
) -> None:
    anthropic_api.script(text_reply("All of it.", final_blank_line=False))
    result = await agent(anthropic_api, Notes()).process("hi")
    assert result.text == "All of it."
    assert len(anthropic_api.requests) == 1


async def test_no_newline_at_all_after_message_stop_is_accepted(
    anthropic_api: AnthropicStandIn,
) -> None:
    body = encode_sse(reply_events(tool_reply("write_file", {"path": "a", "content": "b"}), "m"))
    anthropic_api.script(raw_reply(body.rstrip(b"\n"), write_size=4096), text_reply("Done."))
    notes = Notes()
    result = await agent(anthropic_api, notes).process("hi")
    assert result.text == "Done." and notes.written == {"a": "b"}
    assert len(anthropic_api.requests) == 2


async def test_a_body_ending_after_its_stop_reason_is_whole_as_for_the_sdk(
    anthropic_api: AnthropicStandIn,
) -> None:
    """Ended after message_delta (stop reason known, every block closed), before message_stop."""
    reply = text_reply("Whole answer.")
    events = reply_events(reply, "m")
    assert [name for name, _ in events][-2:] == ["message_delta", "message_stop"]
    anthropic_api.script(reply.with_(end_after=len(events) - 1))
    response = await provider(anthropic_api, sleep=RecordingSleep()).send(ask())
    assert response.text == "Whole answer."
    assert len(anthropic_api.requests) == 1


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
async def test_malformed_event_sequences_are_named_as_such_not_network_problems(
    anthropic_api: AnthropicStandIn, kind: str
) -> None:
    anthropic_api.script(*[malformed_reply(kind)] * 3)
    with pytest.raises(LLMError) as caught:
        await provider(anthropic_api, sleep=RecordingSleep()).send(ask())
    assert caught.value.code is ErrorCode.MALFORMED_RESPONSE
    assert (
        caught.value.user_message == "Anthropic sent a malformed response; failed after 3 attempts"
    )
    assert "network" not in caught.value.user_message
    assert len(anthropic_api.requests) == 3


async def test_a_malformed_stream_is_retried_like_a_server_error(
    anthropic_api: AnthropicStandIn,
) -> None:
    anthropic_api.script(malformed_reply("delta_for_unknown_index"), text_reply("Fine now."))
    sleep = RecordingSleep()
    response = await provider(anthropic_api, sleep=sleep).send(ask())
    assert response.text == "Fine now."
    assert sleep.delays == [1.0]


# --------------------------------------------------------------------------- usage


async def test_usage_accumulates_across_rounds_with_cache_figures(
    anthropic_api: AnthropicStandIn,
) -> None:
    anthropic_api.script(
        dataclasses.replace(
            tool_reply("write_file", {"path": "a.md", "content": "x"}),
            usage={
                "input_tokens": 100,
                "output_tokens": 20,
                "cache_creation_input_tokens": 1000,
                "cache_read_input_tokens": 0,
            },
        ),
        dataclasses.replace(
            text_reply("Done."),
            usage={
                "input_tokens": 30,
                "output_tokens": 5,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 1000,
            },
        ),
    )
    result = await agent(anthropic_api, Notes()).process("write")
    assert result.usage == Usage(130, 25, 1000, 1000)
    assert Usage(1, 2) + Usage(3, 4, None, 5) == Usage(4, 6, None, 5)


# --------------------------------------------------------------------------- history round trip


def test_a_tool_use_with_an_input_error_round_trips_for_persistence() -> None:
    block = ToolUseBlock("t1", "write_file", {}, input_error="not valid JSON", raw_input="{,")
    message = Message("assistant", (TextBlock("hi"), block))
    assert Message.from_dict(json.loads(json.dumps(message.to_dict()))) == message
    assert message.to_api()["content"][1] == {
        "type": "tool_use",
        "id": "t1",
        "name": "write_file",
        "input": {},
    }


# --------------------------------------------------------------------------- through `ask`


def test_ask_refusal_exits_1_with_a_plain_statement(
    anthropic_api: AnthropicStandIn, tmp_path: Path
) -> None:
    anthropic_api.script(refusal_reply(category="cyber"))
    done = run_ask(anthropic_api, tmp_path, "write malware")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines()[-1] == (
        "smarthole-notes: error: Claude declined this request: it may facilitate cyber "
        "attacks (such as malware or exploits). Anthropic's explanation: This request was "
        "declined because it could enable cyber harm."
    )
    assert len(anthropic_api.requests) == 1


def test_ask_cut_tool_call_exits_1_and_writes_nothing(
    anthropic_api: AnthropicStandIn, tmp_path: Path
) -> None:
    anthropic_api.script(
        cut_tool_reply(
            "write_file",
            {"path": "Big.md", "content": "word " * 100},
            text="Let me do that for you now.",
        )
    )
    done = run_ask(anthropic_api, tmp_path, "write a big note")
    assert done.returncode == 1
    assert "stopped at the model's output limit" in done.stderr
    assert "Nothing had been done yet." in done.stderr
    assert not (tmp_path / "vault" / "Big.md").exists()
    assert len(anthropic_api.requests) == 1


def test_ask_plain_max_tokens_prints_the_text_and_the_note(
    anthropic_api: AnthropicStandIn, tmp_path: Path
) -> None:
    anthropic_api.script(text_reply("A long answer", stop_reason="max_tokens"))
    done = run_ask(anthropic_api, tmp_path, "tell me everything")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"A long answer\n\n{OUTPUT_LIMIT_NOTE}\n"


def test_ask_pause_turn_is_continued(anthropic_api: AnthropicStandIn, tmp_path: Path) -> None:
    anthropic_api.script(pause_reply("Searching."), text_reply("Three ideas found."))
    done = run_ask(anthropic_api, tmp_path, "ideas")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Three ideas found.\n"
    assert len(anthropic_api.requests) == 2


@pytest.mark.parametrize(
    "reply", [context_exceeded_reply("Partial"), prompt_too_long_reply()], ids=["stop", "400"]
)
def test_ask_context_too_long_exits_1(
    anthropic_api: AnthropicStandIn, tmp_path: Path, reply: Any
) -> None:
    anthropic_api.script(reply)
    done = run_ask(anthropic_api, tmp_path, "hi")
    assert done.returncode == 1
    assert "The conversation is too long for the model" in done.stderr
    assert len(anthropic_api.requests) == 1


def test_ask_unknown_stop_reason_delivers_the_text(
    anthropic_api: AnthropicStandIn, tmp_path: Path
) -> None:
    anthropic_api.script(text_reply("Here you go.", stop_reason="brand_new_reason"))
    done = run_ask(anthropic_api, tmp_path, "hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Here you go.\n"


def test_ask_invalid_tool_json_is_corrected_in_a_second_request(
    anthropic_api: AnthropicStandIn, tmp_path: Path
) -> None:
    anthropic_api.script(
        invalid_tool_reply("write_file", '{"path": "Lists/Shopping.md",, "content": "- eggs"}'),
        tool_reply("write_file", {"path": "Lists/Shopping.md", "content": "- eggs\n"}),
        text_reply("Added eggs."),
    )
    done = run_ask(anthropic_api, tmp_path, "add eggs")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Added eggs.\n"
    assert "network" not in done.stderr
    assert (tmp_path / "vault" / "Lists" / "Shopping.md").read_text() == "- eggs\n"
    assert len(anthropic_api.requests) == 3
    result_block = anthropic_api.requests[1].body["messages"][-1]["content"][0]
    assert result_block["is_error"] is True and "not valid JSON" in result_block["content"]


def test_ask_no_final_blank_line_is_one_request(
    anthropic_api: AnthropicStandIn, tmp_path: Path
) -> None:
    anthropic_api.script(text_reply("Complete.", final_blank_line=False))
    done = run_ask(anthropic_api, tmp_path, "hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Complete.\n"
    assert len(anthropic_api.requests) == 1


def test_ask_malformed_stream_is_named_and_exits_1(
    anthropic_api: AnthropicStandIn, tmp_path: Path
) -> None:
    anthropic_api.script(*[malformed_reply("delta_before_block_start")] * 3)
    done = run_ask(anthropic_api, tmp_path, "hi")
    assert done.returncode == 1
    assert "Anthropic sent a malformed response; failed after 3 attempts" in done.stderr
    assert "network" not in done.stderr
    assert len(anthropic_api.requests) == 3
