"""The agent's tools: the registry, the declarations (`catalog`) and, one module per family,
the handlers that bind them to a vault, a repository or a turn."""

from smarthole_notes.tools.base import (
    Tool,
    ToolAnnotations,
    ToolDefinition,
    ToolError,
    ToolOutcome,
    ToolRegistry,
)
from smarthole_notes.tools.catalog import NOTE_WRITING_TOOLS, READ_ONLY_TOOLS
from smarthole_notes.tools.schema import ToolArgs

__all__ = [
    "NOTE_WRITING_TOOLS",
    "READ_ONLY_TOOLS",
    "Tool",
    "ToolAnnotations",
    "ToolArgs",
    "ToolDefinition",
    "ToolError",
    "ToolOutcome",
    "ToolRegistry",
]
