"""The vault tools for any MCP client (Claude Desktop, Claude Code, ...).

- `server.py`: the MCP server over a vault: the agent's vault tools, the git history tools
  and `undo` (while git versioning is on), each with truthful annotations; every writing
  call is committed like an agent request (source `mcp`, the client's name in a trailer).
- `stdio.py`: `smarthole-notes mcp`, the server over stdin/stdout.
- `http.py`: the same server over streamable HTTP at `/mcp` inside `serve`.
- `live.py`: how the stdio process's changes reach `serve`'s chat page.

The conversation tools (send_message, end_conversation, get_conversation) are not offered:
they belong to the agent's own conversation with the user.

The MCP SDK loads only with `server.py` (on first use of `/mcp` in `serve`): the names
below are looked up lazily, so importing `http` or `live` costs little.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smarthole_notes.mcp.names import MCP_SOURCE

if TYPE_CHECKING:
    from smarthole_notes.mcp.server import (
        McpVaultService,
        annotations_for,
        build_server,
    )

__all__ = ["MCP_SOURCE", "McpVaultService", "annotations_for", "build_server"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from smarthole_notes.mcp import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
