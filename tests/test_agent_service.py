"""The agent loop: tools, history, the iteration cap, abort and reentrancy, over the stand-in."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from smarthole_notes.llm.errors import ErrorCode, LLMError
from smarthole_notes.llm.events import AgentEvent, TextDelta, ToolFinished, ToolStarted
from smarthole_notes.llm.service import AgentService
from smarthole_notes.llm.state import ConversationState
from smarthole_notes.llm.types import Message, ToolResultBlock, ToolUseBlock
from smarthole_notes.tools.base import Tool, ToolError, ToolInput, ToolRegistry
from tests.llm_helpers import RecordingSleep, provider
from tests.standins.anthropic_api import AnthropicStandIn, status_reply, text_reply, tool_reply

NOTE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"path": {"type": "string"}},
    "required": ["path"],
    "additionalProperties": False,
}


class Notes:
    """A tiny in-memory tool family for exercising the loop."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.during: Any = None

    async def read(self, tool_input: ToolInput) -> str:
        self.calls.append(tool_input)
        if self.during is not None:
            self.during()
        if tool_input["path"] == "missing.md":
            raise ToolError("missing.md does not exist; use list_files to see the notes")
        if tool_input["path"] == "boom.md":
            raise RuntimeError("disk on fire")
        return f"1: contents of {tool_input['path']}\n[lines 1-1 of 1]"

    def tools(self) -> ToolRegistry:
        return ToolRegistry([Tool("read_file", "Read a note.", NOTE_SCHEMA, self.read)])


def service(api: AnthropicStandIn, notes: Notes, **kwargs: Any) -> AgentService:
    return AgentService(
        provider(api, sleep=RecordingSleep()),
        system_prompt=lambda state: "You are a test agent.",
        tools=notes.tools(),
        **kwargs,
    )


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    last = body["messages"][-1]
    return [b for b in last["content"] if b["type"] == "tool_result"]


async def test_tool_loop_runs_the_tool_and_sends_its_result(
    anthropic_api: AnthropicStandIn,
) -> None:
    notes = Notes()
    anthropic_api.script(
        tool_reply("read_file", {"path": "Lists/Shopping.md"}, text="Looking.", tool_id="toolu_a"),
        text_reply("You need eggs."),
    )
    events: list[AgentEvent] = []
    agent = service(anthropic_api, notes)
    result = await agent.process("what's on my shopping list?", on_event=events.append)

    assert result.text == "You need eggs."
    assert notes.calls == [{"path": "Lists/Shopping.md"}]
    assert [(t.name, t.is_error) for t in result.tools_used] == [("read_file", False)]
    second = anthropic_api.requests[1].body
    assert tool_results(second) == [
        {
            "type": "tool_result",
            "tool_use_id": "toolu_a",
            "content": "1: contents of Lists/Shopping.md\n[lines 1-1 of 1]",
            "is_error": False,
        }
    ]
    assert [m.role for m in agent.history] == ["user", "assistant", "user", "assistant"]
    kinds = [type(e) for e in events if not isinstance(e, TextDelta)]
    assert kinds == [ToolStarted, ToolFinished]


@pytest.mark.parametrize(
    ("tool_input", "name", "expected"),
    [
        ({"path": "missing.md"}, "read_file", "Error: missing.md does not exist"),
        ({"path": "boom.md"}, "read_file", "Error: read_file failed unexpectedly (RuntimeError"),
        ({"path": "x.md"}, "teleport_file", "Error: unknown tool 'teleport_file'"),
        ({"path": 42}, "read_file", "Error: invalid input for read_file (path)"),
        ({"path": "a.md", "extra": 1}, "read_file", "Error: invalid input for read_file"),
    ],
)
async def test_tool_failures_become_error_results_and_the_loop_goes_on(
    anthropic_api: AnthropicStandIn, tool_input: dict[str, Any], name: str, expected: str
) -> None:
    anthropic_api.script(tool_reply(name, tool_input), text_reply("Sorry, that failed."))
    result = await service(anthropic_api, Notes()).process("read it")
    (block,) = tool_results(anthropic_api.requests[1].body)
    assert block["is_error"] is True
    assert block["content"].startswith(expected)
    assert result.text == "Sorry, that failed."


async def test_the_loop_stops_after_ten_tool_rounds_with_a_valid_history(
    anthropic_api: AnthropicStandIn,
) -> None:
    notes = Notes()
    anthropic_api.script(*[tool_reply("read_file", {"path": f"n{i}.md"}) for i in range(11)])
    agent = service(anthropic_api, notes)
    result = await agent.process("read everything")
    assert len(notes.calls) == 10
    assert len(anthropic_api.requests) == 11
    assert "stopped after 10 tool steps" in result.text
    # Every tool_use in the history has its tool_result: the next request is valid.
    uses = {b.id for m in agent.history for b in m.content if isinstance(b, ToolUseBlock)}
    results = {
        b.tool_use_id for m in agent.history for b in m.content if isinstance(b, ToolResultBlock)
    }
    assert uses == results
    anthropic_api.script(text_reply("Carrying on."))
    assert (await agent.process("continue")).text == "Carrying on."
    assert anthropic_api.requests[-1].body["messages"][-1]["content"][-1] == {
        "type": "text",
        "text": "continue",
    }


async def test_a_second_process_call_while_one_runs_raises_at_once(
    anthropic_api: AnthropicStandIn,
) -> None:
    anthropic_api.script(text_reply("slow " * 10, chunk_size=5, delay=0.1))
    agent = service(anthropic_api, Notes())
    first = asyncio.create_task(agent.process("one"))
    await asyncio.to_thread(anthropic_api.wait_for_requests, 1)
    with pytest.raises(RuntimeError, match="already running"):
        await agent.process("two")
    assert (await first).text.startswith("slow")
    assert len(anthropic_api.requests) == 1


async def test_abort_mid_stream_returns_the_benign_empty_response(
    anthropic_api: AnthropicStandIn,
) -> None:
    anthropic_api.script(text_reply("slow answer " * 30, chunk_size=3, delay=0.2))
    agent = service(anthropic_api, Notes())
    task = asyncio.create_task(agent.process("tell me a story"))
    await asyncio.to_thread(anthropic_api.wait_for_requests, 1)
    await asyncio.sleep(0.3)
    aborted_at = time.monotonic()
    agent.abort()
    result = await asyncio.wait_for(task, 1)
    assert result.aborted and result.text == "" and result.tools_used == []
    disconnected_at = await asyncio.to_thread(anthropic_api.wait_for_disconnect, 0, 2.0)
    assert disconnected_at - aborted_at < 0.2
    # The user's message stays; nothing is recorded as the assistant's answer.
    assert [m.role for m in agent.history] == ["user"]
    assert agent.history[0].text == "tell me a story"


async def test_abort_between_tool_rounds_runs_no_further_tool(
    anthropic_api: AnthropicStandIn,
) -> None:
    notes = Notes()
    anthropic_api.script(tool_reply("read_file", {"path": "a.md"}))
    agent = service(anthropic_api, notes)
    notes.during = agent.abort  # the user presses Stop while the first tool runs
    result = await agent.process("read a then b")
    assert result.aborted
    assert notes.calls == [{"path": "a.md"}]
    assert len(anthropic_api.requests) == 1
    # The finished tool round stays, complete; the next message continues cleanly.
    assert agent.history[-1].has_tool_results
    notes.during = None
    anthropic_api.script(text_reply("Fine."))
    assert (await agent.process("never mind")).text == "Fine."


async def test_abort_when_idle_is_a_no_op(anthropic_api: AnthropicStandIn) -> None:
    agent = service(anthropic_api, Notes())
    agent.abort()
    result = await agent.process("hi")
    assert not result.aborted and result.text == "OK"


async def test_api_failures_propagate_and_keep_the_user_message(
    anthropic_api: AnthropicStandIn,
) -> None:
    anthropic_api.script(status_reply(401))
    agent = service(anthropic_api, Notes())
    with pytest.raises(LLMError) as caught:
        await agent.process("add milk")
    assert caught.value.code is ErrorCode.AUTH_ERROR
    assert agent.history == [Message.user_text("add milk")]
    assert not agent.busy


async def test_max_tokens_stop_is_logged_as_a_warning(
    anthropic_api: AnthropicStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    anthropic_api.script(text_reply("cut off mid", stop_reason="max_tokens"))
    with caplog.at_level(logging.WARNING):
        await service(anthropic_api, Notes()).process("write a novel")
    assert "max_tokens" in caplog.text


async def test_history_is_trimmed_in_requests(anthropic_api: AnthropicStandIn) -> None:
    agent = service(anthropic_api, Notes(), max_history_messages=4)
    for i in range(5):
        await agent.process(f"message {i}")
    sent = anthropic_api.requests[-1].body["messages"]
    assert len(sent) <= 4 and sent[0]["role"] == "user"
    assert sent[-1]["content"][0]["text"] == "message 4"


async def test_state_exports_and_restores_across_instances(anthropic_api: AnthropicStandIn) -> None:
    notes = Notes()
    anthropic_api.script(tool_reply("read_file", {"path": "a.md"}), text_reply("Which list?"))
    first = service(anthropic_api, notes)
    await first.process("add it to the list")
    first.state.ask("Which list?", "msg-1")
    saved = first.export_state()

    second = service(anthropic_api, notes)
    second.restore_state(saved)
    assert second.history == first.history
    assert second.state == first.state
    assert second.state.tool_call_count == 1
    assert isinstance(second.state, ConversationState)


async def test_verbose_logging_covers_requests_responses_retries_and_tools(
    anthropic_api: AnthropicStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    anthropic_api.script(
        status_reply(529), tool_reply("read_file", {"path": "a.md"}), text_reply("Done.")
    )
    with caplog.at_level(logging.DEBUG, logger="smarthole_notes.llm"):
        await service(anthropic_api, Notes()).process("read a")
    text = caplog.text
    assert "LLM request: model=claude-haiku-4-5 messages=1 tools=1 streaming=True" in text
    assert "LLM retry: attempt 1/3 failed (overloaded" in text
    assert "LLM response: stop_reason=tool_use" in text
    assert "Tool loop iteration 1: read_file" in text
    assert "Tool result: read_file ok" in text
