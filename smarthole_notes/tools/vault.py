"""The ten vault tools: thin wrappers that run the vault layer off the event loop.

Every rule (confinement, protected folders, lookup, atomic writes, concurrent edits, link
updates) lives in `smarthole_notes.vault`; this module only declares the tools' schemas and
descriptions and turns the layer's results into text for the model.
"""

from __future__ import annotations

import asyncio
import mimetypes
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from smarthole_notes.tools.base import Tool, ToolError, ToolInput
from smarthole_notes.vault import (
    ActiveOutcome,
    EditOutcome,
    InfoOutcome,
    ListOutcome,
    MoveOutcome,
    ReadOutcome,
    Vault,
    VaultError,
)
from smarthole_notes.vault.format import human_size
from smarthole_notes.vault.search import SearchResult

T = TypeVar("T")

PATH_RULES = (
    "Paths are relative to the vault root with '/' separators (e.g. 'Projects/Plan.md'); "
    "letter case does not need to match. Protected folders (.obsidian, .smarthole, .git) are "
    "off limits."
)


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else plural or word + 's'}"


async def _run(function: Callable[[], T]) -> T:
    try:
        return await asyncio.to_thread(function)
    except VaultError as exc:
        raise ToolError(str(exc)) from None
    except PermissionError as exc:
        raise ToolError(f"permission denied: {exc.filename or ''}".strip()) from None
    except OSError as exc:
        raise ToolError(f"the file operation failed: {exc.strerror or exc}") from None


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _string(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


# -- output formatting ---------------------------------------------------------------------


def format_read(out: ReadOutcome) -> str:
    if out.binary:
        kind = mimetypes.guess_type(out.rel)[0] or "unknown type"
        return (
            f"{out.rel} is a binary file ({kind}, {human_size(out.size)}); it cannot be shown "
            "as text."
        )
    if out.total_lines == 0:
        return f"({out.rel} is empty)\n[0 lines]"
    body = "\n".join(f"{number}: {text}" for number, text in out.lines)
    first, last = out.lines[0][0], out.lines[-1][0]
    footer = f"[lines {first}-{last} of {out.total_lines}"
    if out.truncated:
        footer += f"; {out.truncated}"
    return f"{body}\n{footer}]"


def format_edit(out: EditOutcome) -> str:
    text = f"{out.report} in {out.rel}."
    if out.attempts > 1:
        text += (
            " The note changed on disk while editing (probably in Obsidian); the edit was "
            "applied to the new content, keeping those changes."
        )
    return text


def format_move(out: MoveOutcome) -> str:
    source = out.source + ("/" if out.is_dir else "")
    destination = out.destination + ("/" if out.is_dir else "")
    if out.noop:
        return f"{source} is already at {destination}; nothing was moved."
    text = f"Moved {source} to {destination}."
    if out.links:
        text += f" Updated {_plural(out.links, 'link')} in {_plural(out.notes, 'note')}."
    else:
        text += " No links needed updating."
    if out.failures:
        text += " Could not update links in: " + "; ".join(out.failures)
    return text


def format_search(out: SearchResult, pattern: str, max_results: int) -> str:
    lines: list[str] = []
    if out.stopped_early:
        lines.append(
            f"Stopped early: {out.stopped_early} after searching {out.files_searched:,} of "
            f"{out.files_considered:,}+ files; results are partial. Narrow file_pattern or "
            "simplify the pattern."
        )
    if not out.files:
        lines.append(
            f"No matches for {pattern!r} in {_plural(out.files_searched, 'file')} searched."
        )
        return "\n".join(lines)
    count = f"{out.matches:,}" + ("+" if any(f.count >= 1000 for f in out.files) else "")
    header = (
        f"Found {count} matches in {_plural(out.files_matched, 'file')} "
        f"(of {out.files_searched:,} searched)"
    )
    if out.files_matched > len(out.files):
        header += f"; showing the {len(out.files)} with the most matches"
    lines.append(header + ":")
    for hits in out.files:
        shown = f"{hits.count:,}" + ("+" if hits.count >= 1000 else "")
        lines.append("")
        lines.append(f"{hits.rel} ({shown} match{'es' if hits.count != 1 else ''})")
        for index, excerpt in enumerate(hits.excerpts):
            if index:
                lines.append("  --")
            for line in excerpt:
                lines.append(f"{'>' if line.is_match else ' '} {line.number}: {line.text}")
        if hits.more_excerpts:
            lines.append(f"  (+{hits.more_excerpts} more places; use read_file to see them)")
    if out.files_matched > len(out.files):
        lines.append("")
        lines.append(
            f"{out.files_matched - len(out.files)} more files match; raise max_results "
            f"(now {max_results}) or narrow the pattern."
        )
    return "\n".join(lines)


def format_list(out: ListOutcome, vault: Vault, pattern: str) -> str:
    if out.total == 0:
        where = f"'{out.base}/'" if out.base else "the vault root"
        return f"No files or folders match {pattern!r} in {where}."
    lines = [f"[file] {rel} (modified: {vault.format_time(mtime)})" for rel, mtime in out.files]
    lines += [f"[folder] {rel}/" for rel in out.folders]
    shown = len(out.files) + len(out.folders)
    if shown < out.total:
        lines.append(
            f"(showing {shown:,} of {out.total:,}; narrow the pattern or path, or raise "
            "max_results up to 1000)"
        )
    return "\n".join(lines)


def format_info(out: InfoOutcome, vault: Vault) -> str:
    created = (
        vault.format_time(out.created)
        if out.created is not None
        else "not recorded by this file system"
    )
    if out.is_dir:
        files, folders = out.children or (0, 0)
        return "\n".join(
            [
                f"Path: {out.rel + '/' if out.rel else '/ (the vault root)'}",
                "Type: folder",
                f"Contains: {_plural(files, 'file')} and {_plural(folders, 'folder')} directly",
                f"Created: {created}",
                f"Modified: {vault.format_time(out.modified)}",
            ]
        )
    if out.rel.lower().endswith(".md"):
        kind = "file (Markdown note)"
    elif out.binary:
        kind = f"file (binary, {mimetypes.guess_type(out.rel)[0] or 'unknown type'})"
    else:
        kind = "file (text)"
    lines = [
        f"Path: {out.rel}",
        f"Type: {kind}",
        f"Size: {human_size(out.size)}" + (f" ({out.size:,} bytes)" if out.size >= 1024 else ""),
    ]
    if out.lines is not None:
        lines.append(f"Lines: {out.lines:,}")
    lines += [f"Created: {created}", f"Modified: {vault.format_time(out.modified)}"]
    return "\n".join(lines)


def format_active(out: ActiveOutcome | str, vault: Vault) -> str:
    if isinstance(out, str):
        return out + "."
    return "\n".join(
        [
            f"Active note: {out.rel}",
            f"Name: {out.name}",
            f"Modified: {vault.format_time(out.modified)}",
            f"(from Obsidian's {out.source})",
        ]
    )


# -- the tools -----------------------------------------------------------------------------


def vault_tools(vault: Vault) -> list[Tool]:
    """The ten vault tools, bound to `vault`."""

    async def read_file(args: ToolInput) -> str:
        out = await _run(
            lambda: vault.read(args["path"], args.get("start_line"), args.get("end_line"))
        )
        return format_read(out)

    async def edit_file(args: ToolInput) -> str:
        path = args["path"]
        text_mode = any(k in args for k in ("old_text", "new_text", "replace_all"))
        line_ops = [
            k for k in ("insert_after_line", "insert_before_line", "delete_lines") if k in args
        ]
        if text_mode and (line_ops or "content" in args):
            raise ToolError(
                "mixing modes: use either old_text/new_text (search and replace) or one line "
                "operation (insert_after_line, insert_before_line or delete_lines), not both"
            )
        if text_mode:
            if "old_text" not in args or "new_text" not in args:
                raise ToolError(
                    "search and replace needs both old_text and new_text (new_text may be "
                    "empty to delete the text)"
                )
            replace_all = bool(args.get("replace_all", False))
            out = await _run(
                lambda: vault.replace(path, args["old_text"], args["new_text"], replace_all)
            )
            return format_edit(out)
        if len(line_ops) > 1:
            raise ToolError(f"give only one line operation per call, not {' and '.join(line_ops)}")
        if not line_ops:
            raise ToolError(
                "nothing to do: give old_text and new_text, or one of insert_after_line, "
                "insert_before_line (with content) or delete_lines"
            )
        op = line_ops[0]
        if op == "delete_lines":
            if "content" in args:
                raise ToolError("content is only used with insert_after_line or insert_before_line")
            span = args["delete_lines"]
            out = await _run(lambda: vault.delete_lines(path, span["start"], span["end"]))
            return format_edit(out)
        if "content" not in args:
            raise ToolError(f"{op} needs content: the text to insert")
        content = args["content"]
        line = args[op]
        if op == "insert_after_line":
            out = await _run(lambda: vault.insert_after(path, line, content))
        else:
            out = await _run(lambda: vault.insert_before(path, line, content))
        return format_edit(out)

    async def write_file(args: ToolInput) -> str:
        out = await _run(lambda: vault.write(args["path"], args["content"]))
        size = human_size(out.size)
        return f"{'Created' if out.created else 'Overwrote'} file {out.rel} ({size})"

    async def create_folder(args: ToolInput) -> str:
        out = await _run(lambda: vault.create_folder(args["path"]))
        if out.created:
            return f"Created folder {out.rel}/"
        return f"Folder {out.rel}/ already exists; nothing to do."

    async def delete_file(args: ToolInput) -> str:
        out = await _run(lambda: vault.delete(args["path"]))
        if out.is_dir:
            return (
                f"Moved folder {out.rel}/ and its contents to the trash: {out.trash_rel}/ "
                "(move it back with move_file to restore)."
            )
        return (
            f"Moved {out.rel} to the trash: {out.trash_rel} (move it back with move_file "
            "to restore)."
        )

    async def move_file(args: ToolInput) -> str:
        out = await _run(lambda: vault.move(args["source"], args["destination"]))
        return format_move(out)

    async def search_files(args: ToolInput) -> str:
        cancelled = threading.Event()
        max_results = int(args.get("max_results", 10))
        try:
            out = await _run(
                lambda: vault.search(
                    args["pattern"],
                    args.get("file_pattern") or "*.md",
                    int(args.get("context_lines", 2)),
                    max_results,
                    cancelled,
                )
            )
        finally:
            cancelled.set()  # stops the worker thread if this call was cancelled
        return format_search(out, args["pattern"], max_results)

    async def list_files(args: ToolInput) -> str:
        pattern = args.get("pattern") or "*"
        out = await _run(
            lambda: vault.list_entries(
                pattern, args.get("path") or "", int(args.get("max_results", 100))
            )
        )
        return format_list(out, vault, pattern)

    async def get_file_info(args: ToolInput) -> str:
        out = await _run(lambda: vault.info(args["path"]))
        return format_info(out, vault)

    async def get_active_note(args: ToolInput) -> str:
        out = await _run(vault.active_note)
        return format_active(out, vault)

    path_field = _string("Vault-relative path, e.g. 'Projects/Plan.md'.")
    return [
        Tool(
            "read_file",
            "Read a note (or other text file) with numbered lines ('12: text') and a footer "
            "'[lines 1-40 of 40]'. Use start_line/end_line to read part of a long file; output "
            "stops at about 2,000 lines or 100 KB and the footer says how to continue. A path "
            f"without extension means the .md note. {PATH_RULES}",
            _schema(
                {
                    "path": path_field,
                    "start_line": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "First line to show (1-based, inclusive).",
                    },
                    "end_line": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "Last line to show (inclusive).",
                    },
                },
                ["path"],
            ),
            read_file,
        ),
        Tool(
            "edit_file",
            "Change part of an existing note. Either search/replace (old_text, new_text, "
            "optional replace_all; old_text must match exactly, and only the first occurrence "
            "is replaced unless replace_all is true) or exactly one line operation: "
            "insert_after_line (0 = top) or insert_before_line with content, or delete_lines "
            "{start, end} (inclusive). Prefer search/replace; line numbers come from read_file "
            "and go stale if the note changes. Edits made meanwhile in Obsidian are kept. "
            f"{PATH_RULES}",
            _schema(
                {
                    "path": path_field,
                    "old_text": _string("Exact text to find (search/replace mode)."),
                    "new_text": _string("Replacement text; empty to delete old_text."),
                    "replace_all": {
                        "type": "boolean",
                        "description": "Replace every occurrence (default false: first only).",
                    },
                    "insert_after_line": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Insert content after this line; 0 inserts at the top.",
                    },
                    "insert_before_line": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "Insert content before this line.",
                    },
                    "delete_lines": {
                        "type": "object",
                        "description": "Lines to delete, inclusive.",
                        "properties": {
                            "start": {"type": "integer", "minimum": 1},
                            "end": {"type": "integer", "minimum": 1},
                        },
                        "required": ["start", "end"],
                        "additionalProperties": False,
                    },
                    "content": _string("Text to insert (line operations only)."),
                },
                ["path"],
            ),
            edit_file,
        ),
        Tool(
            "write_file",
            "Create a file, or replace a file's whole content. Parent folders are created. A "
            "path without extension gets '.md'. To change part of an existing note use "
            "edit_file instead. Writes are atomic: the note is never left half-written. "
            f"{PATH_RULES} Nothing can be written in .trash.",
            _schema(
                {"path": path_field, "content": _string("The complete new content.")},
                ["path", "content"],
            ),
            write_file,
        ),
        Tool(
            "create_folder",
            "Create a folder (and its parents). An existing folder is reported, not an error. "
            f"{PATH_RULES}",
            _schema(
                {"path": _string("Vault-relative folder path, e.g. 'Projects/2025'.")}, ["path"]
            ),
            create_folder,
        ),
        Tool(
            "delete_file",
            "Delete a note or a folder (with its contents) by moving it to the vault's .trash/ "
            "folder under the same relative path; nothing is destroyed and it can be moved "
            f"back with move_file. {PATH_RULES} Give 'Name/' for a folder when a note "
            "'Name.md' sits beside it.",
            _schema({"path": path_field}, ["path"]),
            delete_file,
        ),
        Tool(
            "move_file",
            "Move or rename a note, file or folder. Missing destination folders are created; "
            "if destination is an existing folder (or ends with '/'), the source goes inside "
            "it. Never overwrites an existing file. Links to the moved notes elsewhere in the "
            "vault ([[wiki links]], embeds, Markdown links) are updated, as Obsidian does. "
            f"Also restores from .trash/. {PATH_RULES}",
            _schema(
                {
                    "source": _string("Current vault-relative path."),
                    "destination": _string("New vault-relative path, or a folder to move into."),
                },
                ["source", "destination"],
            ),
            move_file,
        ),
        Tool(
            "search_files",
            "Search the contents of notes with a regular expression (RE2 syntax: no "
            "look-around or backreferences). Case-insensitive unless the pattern starts with "
            "(?-i); ^ and $ match at line boundaries. Returns, per matching file (most matches "
            "first), up to 5 excerpts with line numbers, matching lines marked '>'. For plain "
            "words just give the words; escape regex characters such as ( [ . * + ?. Hidden "
            "and protected folders and .trash are not searched.",
            _schema(
                {
                    "pattern": {
                        "type": "string",
                        "minLength": 1,
                        "description": "Regular expression (RE2), e.g. 'project alpha' or "
                        "'budget (review|report)'.",
                    },
                    "file_pattern": _string(
                        "Glob of files to search; default '*.md' (every note). Without '/' it "
                        "matches file names in any folder; with '/' it matches from the vault "
                        "root, e.g. 'Projects/**/*.md'."
                    ),
                    "context_lines": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": 20,
                        "description": "Lines of context around each match (default 2).",
                    },
                    "max_results": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 200,
                        "description": "Maximum number of files to show (default 10).",
                    },
                },
                ["pattern"],
            ),
            search_files,
        ),
        Tool(
            "list_files",
            "List files and folders matching a glob, newest files first: '[file] path "
            "(modified: date)' and '[folder] path/' lines. The glob is case-insensitive and "
            "relative to path: '*' lists the folder's direct contents (the default), "
            "'**/*.md' every note below it, '**/*meeting*' any depth. Hidden and protected "
            "folders are skipped; list the trash with path '.trash'.",
            _schema(
                {
                    "pattern": _string("Glob with *, ?, ** (default '*')."),
                    "path": _string("Folder to list, relative to the vault (default the root)."),
                    "max_results": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 1000,
                        "description": "Maximum entries to return (default 100, at most 1000).",
                    },
                },
                [],
            ),
            list_files,
        ),
        Tool(
            "get_file_info",
            "Details of a file or folder: type, size (files), line count (text files), created "
            f"and modified dates. {PATH_RULES}",
            _schema({"path": path_field}, ["path"]),
            get_file_info,
        ),
        Tool(
            "get_active_note",
            "The note currently open in Obsidian (path, name, modified date), from Obsidian's "
            "workspace. Use it when the user says 'this note' or 'the current note'.",
            _schema({}, []),
            get_active_note,
        ),
    ]
