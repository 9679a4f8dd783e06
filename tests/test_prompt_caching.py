"""Prompt caching through the real provider and agent loop, over sockets to the stand-in.

The stand-in accounts for the cache as the API does (prefixes up to each breakpoint, the
20-block lookback, 5-minute lifetime, per-model minimum), so these tests check what is
billed, not only where the breakpoints are. They use the real vault tools and the real
system prompt, so the prefix sizes are the product's own.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from smarthole_notes.llm.caching import (
    MAX_BREAKPOINTS,
    apply_cache_breakpoints,
    min_cacheable_tokens,
)
from smarthole_notes.llm.pricing import PRICES, estimate_cost, format_usage, price_for
from smarthole_notes.llm.prompt import SystemPrompt
from smarthole_notes.llm.service import AgentService
from smarthole_notes.llm.state import ConversationState
from smarthole_notes.llm.types import LLMRequest, Message, SystemText, Usage
from smarthole_notes.settings import Settings
from smarthole_notes.tools.base import ToolRegistry
from smarthole_notes.tools.vault import vault_tools
from smarthole_notes.vault import Vault
from tests.llm_helpers import provider
from tests.standins.anthropic_api import (
    AnthropicStandIn,
    CacheAccount,
    PromptCache,
    RecordedRequest,
    Reply,
    text_reply,
    tool_reply,
)

SONNET_46 = "claude-sonnet-4-6"
ZONE = ZoneInfo("America/New_York")
START = datetime(2026, 2, 5, 19, 30, tzinfo=UTC)


class FakeTime:
    """One clock for the prompt (wall time) and the stand-in's cache (seconds)."""

    def __init__(self) -> None:
        self.seconds = 1_000.0

    def advance(self, seconds: float) -> None:
        self.seconds += seconds

    def monotonic(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return START + timedelta(seconds=self.seconds)


@pytest.fixture
def clock(anthropic_api: AnthropicStandIn) -> FakeTime:
    fake = FakeTime()
    anthropic_api.prompt_cache.clock = fake.monotonic
    return fake


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    root = tmp_path / "vault"
    (root / "Lists").mkdir(parents=True)
    (root / "Journal").mkdir()
    (root / "Lists" / "Shopping.md").write_text("# Shopping\n\n- eggs\n- bread\n- butter\n")
    (root / "Journal" / "2026-02-05.md").write_text("# Thursday\n\nBought eggs on the way home.\n")
    return root


class Counting:
    """A conversation context that counts how often it is asked for."""

    def __init__(self, text: str = "Current conversation: (none yet)") -> None:
        self.calls = 0
        self.text = text

    def __call__(self) -> str:
        self.calls += 1
        return self.text


def agent(
    api: AnthropicStandIn,
    vault: Path,
    clock: FakeTime,
    *,
    model: str = SONNET_46,
    context: Callable[[], str] | None = None,
    architecture: str | None = None,
    caching: bool = True,
) -> AgentService:
    llm = provider(api, model=model)
    llm.prompt_caching = caching
    prompt = SystemPrompt(
        architecture if architecture is not None else Settings().information_architecture,
        zone=ZONE,
        zone_name="America/New_York",
        clock=clock.now,
        conversation_context=context,
    )
    return AgentService(llm, system_prompt=prompt, tools=ToolRegistry(vault_tools(Vault(vault))))


def six_rounds() -> list[Reply]:
    """Five tool rounds with real tools and results, then the answer: six requests."""
    return [
        tool_reply("list_files", {}, text="Let me look."),
        tool_reply("read_file", {"path": "Lists/Shopping.md"}),
        tool_reply("search_files", {"pattern": "eggs"}),
        tool_reply("get_file_info", {"path": "Lists/Shopping.md"}),
        tool_reply("read_file", {"path": "Journal/2026-02-05.md"}),
        text_reply("You have eggs, bread and butter on the list."),
    ]


def breakpoints(body: dict[str, Any]) -> list[str]:
    """Where `cache_control` sits, as `tools[i]`, `system[i]`, `messages[i][j]`."""
    found = [f"tools[{i}]" for i, t in enumerate(body.get("tools") or []) if "cache_control" in t]
    system = body.get("system")
    if isinstance(system, list):
        found += [f"system[{i}]" for i, b in enumerate(system) if "cache_control" in b]
    for i, message in enumerate(body["messages"]):
        content = message["content"]
        if isinstance(content, list):
            found += [f"messages[{i}][{j}]" for j, b in enumerate(content) if "cache_control" in b]
    return found


def last_block(body: dict[str, Any]) -> str:
    messages = body["messages"]
    return f"messages[{len(messages) - 1}][{len(messages[-1]['content']) - 1}]"


def account(record: RecordedRequest) -> CacheAccount:
    assert record.cache is not None
    return record.cache


def stable_prefix_tokens(body: dict[str, Any]) -> int:
    """The stand-in's token count of tools + the stable system block (what should be shared)."""
    stable = {k: v for k, v in body["system"][0].items() if k != "cache_control"}
    prefix = {
        "model": body["model"],
        "tools": body["tools"],
        "system": [{**stable, "cache_control": {"type": "ephemeral"}}],
        "messages": [],
    }
    return PromptCache().account(prefix, commit=False).total_input_tokens


# ---------------------------------------------------------------- where the breakpoints are


async def test_breakpoints_on_the_stable_system_part_and_the_last_block_at_most_four(
    anthropic_api: AnthropicStandIn, vault: Path, clock: FakeTime
) -> None:
    anthropic_api.script(*six_rounds())
    result = await agent(anthropic_api, vault, clock).process("what's on my shopping list?")
    assert result.iterations == 5
    bodies = [r.body for r in anthropic_api.requests]
    assert len(bodies) == 6
    for body in bodies:
        marks = breakpoints(body)
        assert len(marks) <= MAX_BREAKPOINTS
        assert "system[0]" in marks and "system[1]" not in marks
        assert last_block(body) in marks
        tool_marks = [m for m in marks if m.startswith("tools")]
        assert tool_marks in ([], [f"tools[{len(body['tools']) - 1}]"])
        # Only these: nothing marked in the middle of the history.
        assert len([m for m in marks if m.startswith("messages")]) == 1


async def test_volatile_part_follows_the_stable_part_and_is_built_once_per_request(
    anthropic_api: AnthropicStandIn, vault: Path, clock: FakeTime
) -> None:
    context = Counting("Current conversation:\n[2:29 PM] User (typed): hello")
    service = agent(anthropic_api, vault, clock, context=context)
    service.state.ask("Which list, groceries or hardware?", None)
    anthropic_api.script(*six_rounds())
    await service.process("groceries")
    assert context.calls == 1
    systems = [r.body["system"] for r in anthropic_api.requests]
    stable, volatile = systems[0]
    assert "best-guess" in stable["text"] and "Journal/ holds daily notes" in stable["text"]
    assert "Current local date and time" not in stable["text"]
    assert "cache_control" not in volatile
    assert volatile["text"].startswith(
        "Current local date and time: Thursday, Feb 5, 2026 2:46 PM (America/New_York, UTC-5)."
    )
    assert "[2:29 PM] User (typed): hello" in volatile["text"]
    assert "Which list, groceries or hardware?" in volatile["text"]
    # Byte-identical in every round, though the clock moved on between them.
    raw = {json.dumps(s, sort_keys=True) for s in systems}
    assert len(raw) == 1


async def test_stable_prefix_is_byte_identical_across_requests(
    anthropic_api: AnthropicStandIn, vault: Path, clock: FakeTime
) -> None:
    anthropic_api.script(text_reply("One."))
    await agent(anthropic_api, vault, clock, context=Counting("a")).process("first")
    clock.advance(120)
    anthropic_api.script(text_reply("Two."))
    await agent(anthropic_api, vault, clock, context=Counting("b")).process("second")
    first, second = (r.body for r in anthropic_api.requests)
    assert json.dumps(first["tools"]) == json.dumps(second["tools"])
    assert json.dumps(first["system"][0]) == json.dumps(second["system"][0])
    assert first["system"][1] != second["system"][1]


# ---------------------------------------------------------------- what the cache saves


async def test_each_round_after_the_first_reads_the_whole_previous_prompt(
    anthropic_api: AnthropicStandIn, vault: Path, clock: FakeTime
) -> None:
    anthropic_api.script(*six_rounds())
    await agent(anthropic_api, vault, clock).process("what's on my shopping list?")
    accounts = [account(r) for r in anthropic_api.requests]
    assert accounts[0].cache_read_input_tokens == 0
    assert accounts[0].cache_creation_input_tokens == accounts[0].total_input_tokens
    for previous, current in itertools.pairwise(accounts):
        assert current.cache_read_input_tokens == previous.total_input_tokens
        assert current.input_tokens == 0  # the breakpoint is on the last block
        assert current.cache_creation_input_tokens == (
            current.total_input_tokens - previous.total_input_tokens
        )


async def test_the_next_request_reads_the_tools_and_stable_system_prompt(
    anthropic_api: AnthropicStandIn, vault: Path, clock: FakeTime
) -> None:
    anthropic_api.script(*six_rounds())
    await agent(anthropic_api, vault, clock, context=Counting("first")).process("list?")
    clock.advance(4 * 60)  # within five minutes; a new agent, as the pipeline makes one
    anthropic_api.script(text_reply("Done."))
    await agent(anthropic_api, vault, clock, context=Counting("second")).process("and now?")
    request = anthropic_api.requests[-1]
    shared = stable_prefix_tokens(request.body)
    assert account(request).cache_read_input_tokens == shared
    assert shared > min_cacheable_tokens(SONNET_46)


async def test_the_cache_lives_five_minutes_from_its_last_read(
    anthropic_api: AnthropicStandIn, vault: Path, clock: FakeTime
) -> None:
    service = agent(anthropic_api, vault, clock, context=Counting("a"))
    anthropic_api.script(text_reply("ok"))
    await service.process("one")
    assert account(anthropic_api.requests[-1]).cache_read_input_tokens == 0
    for step in (299, 299):  # each read renews the lifetime: 598 s after the write, still there
        clock.advance(step)
        anthropic_api.script(text_reply("ok"))
        await agent(anthropic_api, vault, clock, context=Counting(f"{step}")).process("again")
        assert account(anthropic_api.requests[-1]).cache_read_input_tokens > 0
    clock.advance(301)
    anthropic_api.script(text_reply("ok"))
    await agent(anthropic_api, vault, clock, context=Counting("late")).process("late")
    late = account(anthropic_api.requests[-1])
    assert late.cache_read_input_tokens == 0
    assert late.cache_creation_input_tokens == late.total_input_tokens


async def test_a_six_round_request_on_sonnet_46_bills_at_most_40_percent(
    anthropic_api: AnthropicStandIn, vault: Path, clock: FakeTime
) -> None:
    anthropic_api.script(*six_rounds())
    await agent(anthropic_api, vault, clock, caching=False).process("what's on my list?")
    uncached = [account(r) for r in anthropic_api.requests]
    assert all(not breakpoints(r.body) for r in anthropic_api.requests)
    assert all(a.cache_creation_input_tokens == a.cache_read_input_tokens == 0 for a in uncached)
    anthropic_api.reset()
    anthropic_api.script(*six_rounds())
    await agent(anthropic_api, vault, clock).process("what's on my list?")
    cached = [account(r) for r in anthropic_api.requests]
    assert [a.total_input_tokens for a in cached] == [a.total_input_tokens for a in uncached]
    bill = sum(a.billed_input_tokens for a in cached)
    assert bill <= 0.40 * sum(a.total_input_tokens for a in uncached)


# ---------------------------------------------------------------- per-model minimum


async def test_haiku_places_no_breakpoint_below_its_4096_token_minimum(
    anthropic_api: AnthropicStandIn, vault: Path, clock: FakeTime
) -> None:
    anthropic_api.script(text_reply("Hi."))
    await agent(anthropic_api, vault, clock, model="claude-haiku-4-5").process("hi")
    request = anthropic_api.requests[0]
    assert account(request).total_input_tokens < 4_096
    assert breakpoints(request.body) == []
    # The system prompt still comes in its two parts, stable first.
    assert [b.get("text", "")[:8] for b in request.body["system"]] == ["You are ", "Current "]
    assert account(request).cache_creation_input_tokens == 0


async def test_haiku_caches_once_the_stable_prefix_reaches_its_minimum(
    anthropic_api: AnthropicStandIn, vault: Path, clock: FakeTime
) -> None:
    long_architecture = "\n".join(
        f"- Area{i}/ holds the notes of area {i}, one note per topic, named by topic."
        for i in range(300)
    )
    for _ in range(2):
        anthropic_api.script(text_reply("Hi."))
        service = agent(
            anthropic_api, vault, clock, model="claude-haiku-4-5", architecture=long_architecture
        )
        await service.process("hi")
        clock.advance(60)  # the local time in the volatile part moves on
    first, second = anthropic_api.requests
    assert "system[0]" in breakpoints(first.body)
    assert stable_prefix_tokens(first.body) >= 4_096
    assert account(first).cache_creation_input_tokens >= 4_096
    assert account(second).cache_read_input_tokens == stable_prefix_tokens(second.body)


def test_minimums_per_model_and_breakpoints_only_where_they_can_cache() -> None:
    assert min_cacheable_tokens("claude-sonnet-4-5") == 1_024
    assert min_cacheable_tokens("claude-sonnet-4-5-20250929") == 1_024
    assert min_cacheable_tokens("claude-sonnet-4-6") == 2_048
    assert min_cacheable_tokens("claude-opus-4-7") == 2_048
    assert min_cacheable_tokens("claude-haiku-4-5") == 4_096
    assert min_cacheable_tokens("claude-opus-4-5") == 4_096
    assert min_cacheable_tokens("claude-opus-4-6") == 4_096

    tools = [{"name": "t", "description": "x" * 6_000, "input_schema": {"type": "object"}}]
    system = SystemText("s" * 4_000, "now")
    for model, expected in [
        ("claude-sonnet-4-5", ["tools", "system", "message"]),  # tools alone reach 1,024
        ("claude-sonnet-4-6", ["system", "message"]),  # tools + system reach 2,048
        ("claude-haiku-4-5", []),  # nothing reaches 4,096
    ]:
        params: dict[str, Any] = {
            "tools": [dict(t) for t in tools],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        }
        apply_cache_breakpoints(params, system, model)
        marked = []
        if "cache_control" in params["tools"][-1]:
            marked.append("tools")
        if "cache_control" in params["system"][0]:
            marked.append("system")
        if "cache_control" in params["messages"][-1]["content"][-1]:
            marked.append("message")
        assert marked == expected, model
        assert "cache_control" not in params["system"][1]


def test_the_message_breakpoint_skips_blocks_that_cannot_carry_one() -> None:
    params: dict[str, Any] = {
        "messages": [
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "x" * 20_000},
                    {"type": "thinking", "thinking": "...", "signature": "sig"},
                    {"type": "text", "text": ""},
                ],
            }
        ]
    }
    apply_cache_breakpoints(params, "", "claude-sonnet-4-5", messages=True)
    content = params["messages"][0]["content"]
    assert ["cache_control" in b for b in content] == [True, False, False]
    assert "system" not in params


def test_a_plain_system_prompt_is_sent_as_is_and_unmarked() -> None:
    params: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}]}
    apply_cache_breakpoints(params, "be brief " * 2_000, "claude-sonnet-4-5", messages=False)
    assert params == {
        "system": "be brief " * 2_000,
        "messages": [{"role": "user", "content": "hi"}],
    }


async def test_a_one_off_request_caches_nothing_but_tools_and_a_stable_system_part(
    anthropic_api: AnthropicStandIn,
) -> None:
    """A summary or a retrospection is sent once: writing it to the cache would cost 1.25x."""
    llm = provider(anthropic_api, streaming=False, model="claude-opus-4-7")
    transcript = "User: add eggs\nAssistant: Added eggs to Lists/Shopping.md.\n" * 200
    await llm.send(
        LLMRequest(system="Summarise this conversation.", messages=(Message.user_text(transcript),))
    )
    body = anthropic_api.requests[0].body
    assert breakpoints(body) == []
    assert body["system"] == "Summarise this conversation."
    assert account(anthropic_api.requests[0]).cache_creation_input_tokens == 0


# ---------------------------------------------------------------- usage and cost


async def test_usage_and_cost_are_summed_over_the_rounds(
    anthropic_api: AnthropicStandIn, vault: Path, clock: FakeTime
) -> None:
    anthropic_api.script(*six_rounds())
    result = await agent(anthropic_api, vault, clock).process("what's on my shopping list?")
    accounts = [account(r) for r in anthropic_api.requests]
    usage = result.usage
    assert usage.input_tokens == sum(a.input_tokens for a in accounts)
    assert usage.cache_creation_input_tokens == sum(a.cache_creation_input_tokens for a in accounts)
    assert usage.cache_read_input_tokens == sum(a.cache_read_input_tokens for a in accounts)
    assert usage.total_input_tokens == sum(a.total_input_tokens for a in accounts)
    assert usage.output_tokens > 0
    assert result.model == SONNET_46
    expected = (
        usage.input_tokens * 3.0
        + usage.output_tokens * 15.0
        + (usage.cache_creation_input_tokens or 0) * 3.75
        + (usage.cache_read_input_tokens or 0) * 0.30
    ) / 1_000_000
    assert result.usage_dict() == {
        "model": SONNET_46,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_write_tokens": usage.cache_creation_input_tokens,
        "cache_read_tokens": usage.cache_read_input_tokens,
        "cost_usd": pytest.approx(expected, abs=1e-6),
    }
    json.dumps(result.usage_dict())


def test_the_price_table_and_its_fallbacks() -> None:
    usage = Usage(1_000_000, 1_000_000, 1_000_000, 1_000_000)
    assert estimate_cost("claude-haiku-4-5", usage) == pytest.approx(1 + 5 + 1.25 + 0.1)
    assert estimate_cost("claude-sonnet-4-6", usage) == pytest.approx(3 + 15 + 3.75 + 0.3)
    assert estimate_cost("claude-sonnet-4-5-20250929", usage) == pytest.approx(22.05)
    assert estimate_cost("claude-opus-4-7", usage) == pytest.approx(5 + 25 + 6.25 + 0.5)
    assert price_for("claude-opus-9") == ("claude-opus-4-7", PRICES["claude-opus-4-7"])
    assert price_for("claude-haiku-7-1")[0] == "claude-haiku-4-5"  # type: ignore[index]
    assert price_for("claude-something")[0] == "claude-sonnet-4-6"  # type: ignore[index]
    assert estimate_cost("llama-3-local", usage) is None
    assert Usage(5, 6).to_dict()["cost_usd"] is None
    line = format_usage(Usage(1_234, 56, 2_000, 10_000), "claude-sonnet-4-6")
    assert line.startswith("usage: 1,234 input, 56 output, 2,000 cache write, 10,000 cache read")
    assert "$0.0" in line and line.endswith("(claude-sonnet-4-6)")


def test_the_system_prompt_object_is_the_joined_text_with_its_parts() -> None:
    prompt = SystemPrompt(
        "Lists/ holds running lists.", zone=ZONE, zone_name="America/New_York", clock=lambda: START
    )
    text = prompt(ConversationState())
    assert isinstance(text, str) and isinstance(text, SystemText)
    assert text == f"{text.stable}\n\n{text.volatile}"
    assert text.index("Lists/ holds running lists.") < text.index("Current local date and time")


def test_ask_verbose_ends_with_the_answers_usage_and_cost(
    anthropic_api: AnthropicStandIn, tmp_path: Path
) -> None:
    from tests.test_cli_ask import run_ask

    anthropic_api.script(tool_reply("list_files", {}), text_reply("Nothing there yet."))
    done = run_ask(
        anthropic_api, tmp_path, "--verbose", "--model", SONNET_46, "what's in my notes?"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Nothing there yet.\n"
    accounts = [account(r) for r in anthropic_api.requests]
    uncached = sum(a.input_tokens for a in accounts)
    written = sum(a.cache_creation_input_tokens for a in accounts)
    read = sum(a.cache_read_input_tokens for a in accounts)
    assert written and read  # the second round read the first's prompt
    last = done.stderr.rstrip("\n").splitlines()[-1]
    assert last.startswith(f"usage: {uncached:,} input, "), last
    assert f" output, {written:,} cache write, {read:,} cache read tokens; about $" in last
    assert last.endswith(f"({SONNET_46})")
