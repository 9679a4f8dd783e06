"""smarthole-notes: keep a Markdown notes vault by voice and chat, with Claude doing the work."""

__version__ = "0.1.0"
