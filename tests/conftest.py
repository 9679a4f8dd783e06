"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.standins.anthropic_api import AnthropicStandIn


@pytest.fixture
def anthropic_api() -> Iterator[AnthropicStandIn]:
    """A started Anthropic API stand-in, stopped after the test."""
    with AnthropicStandIn() as api:
        yield api


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    """An empty vault folder (a test may fill it, or override this fixture)."""
    folder = tmp_path / "vault"
    folder.mkdir()
    return folder
