"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.standins.anthropic_api import AnthropicStandIn


@pytest.fixture
def anthropic_api() -> Iterator[AnthropicStandIn]:
    """A started Anthropic API stand-in, stopped after the test."""
    with AnthropicStandIn() as api:
        yield api
