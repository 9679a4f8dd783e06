"""What the MCP server and its live relay share, apart from the MCP SDK: `serve` relays the
stdio servers' changes from the start, while the SDK loads only when `/mcp` is first used."""

from __future__ import annotations

from typing import Any, Final, Protocol

MCP_SOURCE: Final = "mcp"
MESSAGE_ID_PREFIX: Final = "mcp-"


class Publish(Protocol):
    """Where live events go (`EventBus.publish` in `serve`, a datagram to `serve` on stdio)."""

    def __call__(self, event_type: str, **fields: Any) -> None: ...
