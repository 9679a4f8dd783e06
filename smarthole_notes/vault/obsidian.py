"""What Obsidian's own files say: the open note (workspace.json), the link format (app.json).

These files live in the protected `.obsidian/` folder, which tools never read; only this
module reads these two, directly, and every path taken from them is checked like any other.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smarthole_notes.vault.errors import VaultError
from smarthole_notes.vault.files import read_bytes
from smarthole_notes.vault.paths import Access, PathResolver, VaultPath
from smarthole_notes.vault.resolver import LinkFormat

MAX_CONFIG_BYTES = 8 * 1024 * 1024


def _read_json(resolver: PathResolver, name: str) -> Any:
    path = resolver.root / ".obsidian" / name
    real = Path(os.path.realpath(path))
    if not resolver.inside(real):
        raise VaultError(f".obsidian/{name} is a link to outside the vault; not reading it")
    try:
        data = read_bytes(real, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise VaultError(f"could not read Obsidian's .obsidian/{name}: {exc.strerror}") from None
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VaultError(f"Obsidian's .obsidian/{name} is not valid JSON ({exc})") from None


def link_style(resolver: PathResolver) -> LinkFormat:
    """Obsidian's "New link format": "shortest" (default), "relative" or "absolute"."""
    try:
        settings = _read_json(resolver, "app.json")
    except VaultError:
        return "shortest"
    if isinstance(settings, dict):
        value = settings.get("newLinkFormat")
        if value == "relative" or value == "absolute":
            return value  # type: ignore[no-any-return]
    return "shortest"


def property_types(resolver: PathResolver) -> dict[str, str]:
    """Obsidian's declared property types (`.obsidian/types.json`): name -> text, number,
    checkbox, date, datetime, multitext, tags, aliases."""
    try:
        settings = _read_json(resolver, "types.json")
    except VaultError:
        return {}
    types = settings.get("types") if isinstance(settings, dict) else None
    if not isinstance(types, dict):
        return {}
    return {str(k): str(v) for k, v in types.items() if isinstance(v, str)}


@dataclass(frozen=True, slots=True)
class ActiveNote:
    path: VaultPath
    source: str  # "active tab" or "recently opened"


def _leaves(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") == "leaf":
            yield node
        for child in node.get("children", []) or []:
            yield from _leaves(child)
        for key in ("main", "left", "right", "floating"):
            if key in node:
                yield from _leaves(node[key])
    elif isinstance(node, list):
        for child in node:
            yield from _leaves(child)


def _leaf_file(leaf: dict[str, Any]) -> str | None:
    state = leaf.get("state")
    if not isinstance(state, dict):
        return None
    inner = state.get("state")
    if isinstance(inner, dict) and isinstance(inner.get("file"), str):
        return str(inner["file"])
    return None


def _checked(resolver: PathResolver, rel: str) -> VaultPath | None:
    try:
        vp = resolver.resolve(rel, Access.READ)
    except VaultError:
        return None
    return vp if vp.exists and not vp.is_dir else None


def active_note(resolver: PathResolver) -> ActiveNote | str:
    """The note open in Obsidian, or a sentence saying why there is none."""
    workspace = _read_json(resolver, "workspace.json")
    if workspace is None:
        return (
            "No active note: Obsidian's workspace file (.obsidian/workspace.json) is absent; "
            "the vault may not have been opened in Obsidian"
        )
    if not isinstance(workspace, dict):
        return "No active note: Obsidian's workspace file has an unexpected format"
    active_id = workspace.get("active")
    for leaf in _leaves(workspace):
        if active_id is not None and leaf.get("id") == active_id:
            rel = _leaf_file(leaf)
            if rel is not None:
                vp = _checked(resolver, rel)
                if vp is not None:
                    return ActiveNote(vp, "active tab")
            break
    recent = workspace.get("lastOpenFiles")
    if isinstance(recent, list):
        for rel in recent:
            if isinstance(rel, str):
                vp = _checked(resolver, rel)
                if vp is not None:
                    return ActiveNote(vp, "most recently opened")
    return "No active note: Obsidian's workspace shows no open note that exists in the vault"
