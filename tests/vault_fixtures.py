"""Helpers shared by the vault tests: a vault in a temp folder and its tools behind a registry."""

from __future__ import annotations

import os
from datetime import UTC, tzinfo
from pathlib import Path

from smarthole_notes.tools.base import ToolRegistry
from smarthole_notes.tools.vault import vault_tools
from smarthole_notes.vault import Vault


class VaultHarness:
    """A vault at `<tmp>/notes` (so `<tmp>/notes_evil` can sit beside it) and its tools."""

    def __init__(self, tmp_path: Path, tz: tzinfo | None = UTC) -> None:
        self.base = tmp_path
        self.root = tmp_path / "notes"
        self.root.mkdir(exist_ok=True)
        self.vault = Vault(self.root, tz=tz)
        self.registry = ToolRegistry(vault_tools(self.vault))

    async def ok(self, name: str, **args: object) -> str:
        outcome = await self.registry.run(name, args)
        assert not outcome.is_error, outcome.content
        return outcome.content

    async def err(self, name: str, **args: object) -> str:
        outcome = await self.registry.run(name, args)
        assert outcome.is_error, f"expected an error, got: {outcome.content}"
        assert outcome.content.startswith("Error:")
        return outcome.content

    def put(self, rel: str, text: str | bytes, mtime: float | None = None) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8", newline="")
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        return path

    def text(self, rel: str) -> str:
        return (self.root / rel).read_text(encoding="utf-8")

    def exists(self, rel: str) -> bool:
        return os.path.lexists(self.root / rel)

    def all_files(self) -> set[str]:
        """Every file under the vault root, hidden ones included (for "nothing leaked")."""
        found: set[str] = set()
        for folder, _, names in os.walk(self.root):
            for name in names:
                found.add(os.path.relpath(os.path.join(folder, name), self.root))
        return found
