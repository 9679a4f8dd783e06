"""Helpers shared by the LLM tests: real SDK clients and providers pointed at the stand-in."""

from __future__ import annotations

import os
from pathlib import Path

import anthropic

from smarthole_notes.llm.anthropic_provider import AnthropicProvider, make_client
from smarthole_notes.llm.limits import ModelLimits
from smarthole_notes.llm.retry import RetryPolicy
from smarthole_notes.llm.types import LLMRequest, Message
from tests.standins.anthropic_api import AnthropicStandIn

TEST_KEY = "test-key-not-secret"
MODEL = "claude-haiku-4-5"


def process_env(
    home: Path,
    *,
    base_url: str | None = None,
    key: str | None = TEST_KEY,
    pythonpath: Path | None = None,
) -> dict[str, str]:
    """The environment of a product process a test or benchmark starts: none of the
    caller's ANTHROPIC_* variables, HOME and the configuration folder under `home`, the
    stand-in's address and the test key (unless None), unbuffered output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update(
        {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "PYTHONUNBUFFERED": "1"}
    )
    if base_url is not None:
        env["ANTHROPIC_BASE_URL"] = base_url
    if key is not None:
        env["ANTHROPIC_API_KEY"] = key
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return env


class RecordingSleep:
    """An injected clock for retry waits: records each delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def client(api: AnthropicStandIn, key: str = TEST_KEY) -> anthropic.AsyncAnthropic:
    return make_client(key, api.base_url)


def provider(
    api: AnthropicStandIn,
    *,
    streaming: bool = True,
    sleep: RecordingSleep | None = None,
    idle: float = 90.0,
    model: str = MODEL,
) -> AnthropicProvider:
    retry = RetryPolicy(sleep=sleep) if sleep is not None else RetryPolicy(delays=(0.01, 0.02))
    return AnthropicProvider(
        client(api),
        model,
        streaming=streaming,
        retry=retry,
        stream_idle_timeout=idle,
        limits=ModelLimits(),
    )


def ask(text: str = "hello", max_tokens: int | None = None) -> LLMRequest:
    return LLMRequest(system="be brief", messages=(Message.user_text(text),), max_tokens=max_tokens)
