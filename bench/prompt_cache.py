"""What prompt caching saves: a 6-round request's input bill, cached vs uncached, per model.

Everything goes through the real code over real sockets: the agent loop and the Anthropic
provider (official SDK) talk to the stand-in, which accounts for the cache as the API does
(prefixes up to each breakpoint, the 20-block lookback, 5-minute lifetime, per-model
minimum; tokens estimated as characters / 4). The tools are the real vault tools (what
`ask` sends; `serve` adds the conversation and git tools, sized below), the system prompt
is the real one with the default information architecture, and the tool results are the
real tools' answers on a small vault.

Bill = input + 1.25 x cache write + 0.1 x cache read, in input-token units; the baseline
is the same request without caching (no breakpoints), measured in the same run.
The next request comes 4 minutes later from a new agent (as `serve` makes one per message),
with another local time and conversation context: it should read the tools and the
stable system prompt from the cache.

Run: .venv/bin/python bench/prompt_cache.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smarthole_notes.bus import EventBus
from smarthole_notes.conversations.store import ConversationStore
from smarthole_notes.inbox import InboxMessage
from smarthole_notes.llm.anthropic_provider import AnthropicProvider, make_client
from smarthole_notes.llm.caching import min_cacheable_tokens
from smarthole_notes.llm.limits import ModelLimits
from smarthole_notes.llm.prompt import SystemPrompt
from smarthole_notes.llm.service import AgentService
from smarthole_notes.llm.state import ConversationState
from smarthole_notes.settings import Settings
from smarthole_notes.tools.base import Tool, ToolRegistry
from smarthole_notes.tools.conversation import TurnContext, conversation_tools
from smarthole_notes.tools.vault import vault_tools
from smarthole_notes.vault import Vault
from tests.standins.anthropic_api import (
    AnthropicStandIn,
    CacheAccount,
    PromptCache,
    Reply,
    text_reply,
    tool_reply,
)

MODELS = ["claude-sonnet-4-6", "claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-7"]
START = datetime(2026, 2, 5, 19, 30, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.seconds = 0.0

    def monotonic(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return START + timedelta(seconds=self.seconds)


def make_vault(root: Path) -> None:
    (root / "Lists").mkdir(parents=True)
    (root / "Journal").mkdir()
    (root / "Projects").mkdir()
    (root / "Lists" / "Shopping.md").write_text(
        "# Shopping\n\n" + "".join(f"- item {i}\n" for i in range(30))
    )
    (root / "Lists" / "Reading.md").write_text("# Reading\n\n- The Overstory\n- Piranesi\n")
    for day in range(1, 6):
        (root / "Journal" / f"2026-02-0{day}.md").write_text(
            f"# February {day}\n\nWorked on the kitchen plans; bought eggs. "
            "Talked to the builder about the cabinets and the window.\n" * 3
        )
    (root / "Projects" / "Kitchen.md").write_text(
        "# Kitchen renovation\n\n## Budget\n\n- cabinets\n- worktop\n- window\n"
    )


def six_rounds() -> list[Reply]:
    return [
        tool_reply("list_files", {}, text="Let me look at your notes."),
        tool_reply("search_files", {"pattern": "kitchen"}),
        tool_reply("read_file", {"path": "Projects/Kitchen.md"}),
        tool_reply(
            "edit_file",
            {
                "path": "Projects/Kitchen.md",
                "old_text": "- window\n",
                "new_text": "- window\n- tiles\n",
            },
        ),
        tool_reply("read_file", {"path": "Lists/Shopping.md", "start_line": 1, "end_line": 10}),
        text_reply("Added tiles to the kitchen budget in Projects/Kitchen.md."),
    ]


def agent(
    api: AnthropicStandIn, vault: Path, model: str, clock: Clock, context: str, caching: bool
) -> AgentService:
    provider = AnthropicProvider(
        make_client("bench-key", api.base_url), model, limits=ModelLimits(), prompt_caching=caching
    )
    prompt = SystemPrompt(
        Settings().information_architecture,
        zone=UTC,
        zone_name="UTC",
        clock=clock.now,
        conversation_context=lambda: context,
    )
    return AgentService(
        provider, system_prompt=prompt, tools=ToolRegistry(vault_tools(Vault(vault)))
    )


def accounts(api: AnthropicStandIn, since: int) -> list[CacheAccount]:
    found = [r.cache for r in api.requests[since:]]
    assert all(a is not None for a in found)
    return [a for a in found if a is not None]


def stable_prefix_tokens(body: dict[str, Any]) -> int:
    """The stand-in's tokens for tools + the stable system block."""
    stable = body["system"][0] if isinstance(body["system"], list) else body["system"]
    if isinstance(stable, dict):
        stable = stable["text"]
    return (
        PromptCache()
        .account(
            {
                "model": body["model"],
                "tools": body.get("tools") or [],
                "system": [
                    {"type": "text", "text": stable, "cache_control": {"type": "ephemeral"}}
                ],
                "messages": [],
            },
            commit=False,
        )
        .total_input_tokens
    )


async def run(model: str, root: Path) -> dict[str, Any]:
    clock = Clock()
    with AnthropicStandIn(cache_clock=clock.monotonic) as api:
        vault = root / model
        make_vault(vault)
        api.script(*six_rounds())
        await agent(api, vault, model, clock, "Current conversation: (new)", False).process(
            "add tiles to the kitchen budget"
        )
        uncached = accounts(api, 0)
        (vault / "Projects" / "Kitchen.md").write_text(
            "# Kitchen renovation\n\n## Budget\n\n- cabinets\n- worktop\n- window\n"
        )
        api.prompt_cache.clear()
        start = len(api.requests)
        api.script(*six_rounds())
        result = await agent(api, vault, model, clock, "Current conversation: (new)", True).process(
            "add tiles to the kitchen budget"
        )
        cached = accounts(api, start)
        clock.seconds += 240
        start = len(api.requests)
        api.script(text_reply("Piranesi is next on your reading list."))
        await agent(
            api, vault, model, clock, "Current conversation:\n[2:30 PM] User: kitchen", True
        ).process("what am I reading next?")
        following = accounts(api, start)[0]
        body = api.requests[start].body
    uncached_total = sum(a.total_input_tokens for a in uncached)
    bill = sum(a.billed_input_tokens for a in cached)
    stable = stable_prefix_tokens(body)
    return {
        "model": model,
        "minimum": min_cacheable_tokens(model),
        "stable": stable,
        "rounds": len(cached),
        "uncached": uncached_total,
        "bill": bill,
        "ratio": bill / uncached_total,
        "next_read": following.cache_read_input_tokens,
        "next_ratio": following.cache_read_input_tokens / stable,
        "cost": result.usage_dict()["cost_usd"],
    }


def serve_tools_prefix(root: Path) -> int:
    """Tools + stable system tokens with the conversation tools `serve` adds (git tools aside)."""
    vault = root / "serve"
    make_vault(vault)
    turn = TurnContext(
        InboxMessage("m1", "hi", "chat", START.isoformat()), "c1", ConversationState()
    )
    store = ConversationStore(root / "conversations.db")
    extra: list[Tool] = conversation_tools(turn, bus=EventBus(), store=store, notifier=None)
    registry = ToolRegistry([*vault_tools(Vault(vault)), *extra])
    tools = [
        {"name": t.name, "description": t.description, "input_schema": t.input_schema}
        for t in registry.specs
    ]
    prompt = SystemPrompt(Settings().information_architecture)
    return stable_prefix_tokens(
        {"model": "m", "tools": tools, "system": [{"text": prompt.stable()}]}
    )


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = [await run(model, root) for model in MODELS]
        serve_prefix = serve_tools_prefix(root)
    print(
        f"{'model':<19} {'min':>6} {'stable':>7} {'uncached':>9} {'billed':>9} {'ratio':>6} "
        f"{'next read':>10} {'of stable':>9} {'cost $':>8}"
    )
    for row in rows:
        print(
            f"{row['model']:<19} {row['minimum']:>6,} {row['stable']:>7,} {row['uncached']:>9,} "
            f"{row['bill']:>9,.0f} {row['ratio']:>6.2f} {row['next_read']:>10,} "
            f"{row['next_ratio']:>9.2f} {row['cost']:>8.4f}"
        )
    print(
        "\nstable = tools + stable system prompt (vault tools, as `ask` sends them), in the "
        "stand-in's tokens (chars/4);"
        "\nratio = billed input of the 6-round request / the same request uncached (target "
        "<= 0.40 on Sonnet 4.6);"
        "\nnext read = tokens the next request (4 minutes later) read from the cache; "
        "'of stable' = that / stable (>= 1.00: tools and stable system prompt were read);"
        "\ncost $ = the cached 6-round answer's estimated cost (llm/pricing.py)."
    )
    print(
        f"with the conversation tools `serve` adds, tools + stable system = {serve_prefix:,} "
        "tokens (git tools add more when versioning is on)."
    )
    for row in rows:
        if row["stable"] < row["minimum"]:
            print(
                f"{row['model']}: the stable prefix ({row['stable']:,}) is below its "
                f"{row['minimum']:,}-token minimum, so it is not cached across requests."
            )
    sonnet = next(r for r in rows if r["model"] == "claude-sonnet-4-6")
    ok = sonnet["ratio"] <= 0.40 and sonnet["next_ratio"] >= 1.0
    print(f"\nSonnet 4.6 target met: {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    asyncio.run(main())
