"""A provider whose responses' token usage is reported: what side jobs cost.

Summaries, retrospection, commit messages and routing descriptions are billed like answers
but answer no one; wrapping their provider in `Metered` lets the caller keep what each call
cost (the pipeline stores it with the conversation it served, so totals are complete).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from smarthole_notes.llm.cancel import CancelSignal
from smarthole_notes.llm.events import EventSink
from smarthole_notes.llm.provider import Provider
from smarthole_notes.llm.types import LLMRequest, LLMResponse, Usage

UsageSink = Callable[[Usage, str], Awaitable[None]]
"""Told each response's usage and the model that answered (for pricing)."""


class Metered:
    """`provider`, reporting every response's usage to `on_usage` before returning it."""

    def __init__(self, provider: Provider, on_usage: UsageSink) -> None:
        self.provider = provider
        self.model = provider.model
        self.streaming = provider.streaming
        self._on_usage = on_usage

    async def send(
        self,
        request: LLMRequest,
        *,
        cancel: CancelSignal | None = None,
        on_event: EventSink | None = None,
    ) -> LLMResponse:
        response = await self.provider.send(request, cancel=cancel, on_event=on_event)
        await self._on_usage(response.usage, self.model)
        return response
