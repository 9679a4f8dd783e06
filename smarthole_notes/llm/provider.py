"""The interface every LLM provider implements, so another API can be added beside Anthropic."""

from __future__ import annotations

from typing import Protocol

from smarthole_notes.llm.cancel import CancelSignal
from smarthole_notes.llm.events import EventSink
from smarthole_notes.llm.types import LLMRequest, LLMResponse


class Provider(Protocol):
    model: str
    streaming: bool

    async def send(
        self,
        request: LLMRequest,
        *,
        cancel: CancelSignal | None = None,
        on_event: EventSink | None = None,
    ) -> LLMResponse:
        """Send one request (with the provider's own retries); raise `LLMError` on failure."""
        ...
