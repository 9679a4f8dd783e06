"""The vault tools for any MCP client (Claude Desktop, Claude Code, ...).

- `server.py`: the MCP server over a vault: the agent's vault tools, the git history tools
  and `undo` (while git versioning is on), each with truthful annotations; every writing
  call is committed like an agent request (source `mcp`, the client's name in a trailer).
- `stdio.py`: `smarthole-notes mcp`, the server over stdin/stdout.
- `http.py`: the same server over streamable HTTP at `/mcp` inside `serve`.
- `live.py`: how the stdio process's changes reach `serve`'s chat page.

The conversation tools (send_message, end_conversation, get_conversation) are not offered:
they belong to the agent's own conversation with the user.
"""

from smarthole_notes.mcp.server import (
    ANNOTATIONS,
    MCP_SOURCE,
    McpVaultService,
    annotations_for,
    build_server,
)

__all__ = ["ANNOTATIONS", "MCP_SOURCE", "McpVaultService", "annotations_for", "build_server"]
