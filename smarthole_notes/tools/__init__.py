"""The agent's tools: the registry and, one module per family, the tools themselves."""

from smarthole_notes.tools.base import Tool, ToolError, ToolOutcome, ToolRegistry

__all__ = ["Tool", "ToolError", "ToolOutcome", "ToolRegistry"]
