"""The vault tools: thin wrappers that run the vault layer off the event loop.

Every rule (confinement, protected folders, lookup, atomic writes, concurrent edits, link
updates) lives in `smarthole_notes.vault`, and the tools' names, descriptions and input
models in `catalog`; this module only turns the layer's results into text for the model.
"""

from __future__ import annotations

import asyncio
import mimetypes
import threading
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from smarthole_notes.tools import catalog
from smarthole_notes.tools.base import Tool, ToolError
from smarthole_notes.tools.catalog import (
    CreateFolderArgs,
    EditFileArgs,
    ListFilesArgs,
    MoveFileArgs,
    NoArgs,
    PathArgs,
    ReadFileArgs,
    SearchFilesArgs,
    SearchNotesArgs,
    SetPropertiesArgs,
    WriteFileArgs,
)
from smarthole_notes.vault import (
    ActiveOutcome,
    EditOutcome,
    InfoOutcome,
    ListOutcome,
    MoveOutcome,
    NoteLinks,
    ReadOutcome,
    SearchNotesOutcome,
    Vault,
    VaultError,
)
from smarthole_notes.vault.format import human_size
from smarthole_notes.vault.search import SearchResult

T = TypeVar("T")


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
    if out.linked_from:
        verb = "links" if out.linked_from == 1 else "link"
        text += f" {_plural(out.linked_from, 'other note')} {verb} to what moved."
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


# -- the tools: one handler per declaration in `catalog` ---------------------------------


async def read_file(vault: Vault, args: ReadFileArgs) -> str:
    return format_read(await _run(lambda: vault.read(args.path, args.start_line, args.end_line)))


def _edit_mode(args: EditFileArgs) -> str:
    """Which edit was asked for ("replace" or the one line operation), or why it is unclear."""
    given = args.model_fields_set
    text_mode = bool(given & {"old_text", "new_text", "replace_all"})
    line_ops = [
        k for k in ("insert_after_line", "insert_before_line", "delete_lines") if k in given
    ]
    if text_mode and (line_ops or "content" in given):
        raise ToolError(
            "mixing modes: use either old_text/new_text (search and replace) or one line "
            "operation (insert_after_line, insert_before_line or delete_lines), not both"
        )
    if text_mode:
        if args.old_text is None or args.new_text is None:
            raise ToolError(
                "search and replace needs both old_text and new_text (new_text may be "
                "empty to delete the text)"
            )
        return "replace"
    if len(line_ops) > 1:
        raise ToolError(f"give only one line operation per call, not {' and '.join(line_ops)}")
    if not line_ops:
        raise ToolError(
            "nothing to do: give old_text and new_text, or one of insert_after_line, "
            "insert_before_line (with content) or delete_lines"
        )
    op = line_ops[0]
    if op == "delete_lines" and args.content is not None:
        raise ToolError("content is only used with insert_after_line or insert_before_line")
    if op != "delete_lines" and args.content is None:
        raise ToolError(f"{op} needs content: the text to insert")
    return op


async def edit_file(vault: Vault, args: EditFileArgs) -> str:
    path, content = args.path, args.content or ""
    mode = _edit_mode(args)
    if mode == "replace":
        old, new = args.old_text or "", args.new_text or ""
        out = await _run(lambda: vault.replace(path, old, new, args.replace_all))
    elif args.delete_lines is not None:
        span = args.delete_lines
        out = await _run(lambda: vault.delete_lines(path, span.start, span.end))
    elif args.insert_after_line is not None:
        after = args.insert_after_line
        out = await _run(lambda: vault.insert_after(path, after, content))
    else:
        before = args.insert_before_line
        assert before is not None  # _edit_mode saw exactly one line operation
        out = await _run(lambda: vault.insert_before(path, before, content))
    return format_edit(out)


async def write_file(vault: Vault, args: WriteFileArgs) -> str:
    out = await _run(lambda: vault.write(args.path, args.content))
    text = f"{'Created' if out.created else 'Overwrote'} file {out.rel} ({human_size(out.size)})"
    if out.template:
        text += f", starting from the daily-note template {out.template} (your content follows it)"
    return text


async def create_folder(vault: Vault, args: CreateFolderArgs) -> str:
    out = await _run(lambda: vault.create_folder(args.path))
    if out.created:
        return f"Created folder {out.rel}/"
    return f"Folder {out.rel}/ already exists; nothing to do."


async def delete_file(vault: Vault, args: PathArgs) -> str:
    out = await _run(lambda: vault.delete(args.path))
    if out.is_dir:
        text = (
            f"Moved folder {out.rel}/ and its contents to the trash: {out.trash_rel}/ "
            "(move it back with move_file to restore)."
        )
    else:
        text = (
            f"Moved {out.rel} to the trash: {out.trash_rel} (move it back with move_file to "
            "restore)."
        )
    if out.linked_from:
        verb = "links" if out.linked_from == 1 else "link"
        text += (
            f" {_plural(out.linked_from, 'other note')} {verb} to it; those links are now "
            "broken (get_links on the restored note lists them)."
        )
    return text


async def move_file(vault: Vault, args: MoveFileArgs) -> str:
    return format_move(await _run(lambda: vault.move(args.source, args.destination)))


async def search_files(vault: Vault, args: SearchFilesArgs) -> str:
    cancelled = threading.Event()
    file_pattern = args.file_pattern or "*.md"
    try:
        out = await _run(
            lambda: vault.search(
                args.pattern, file_pattern, args.context_lines, args.max_results, cancelled
            )
        )
    finally:
        cancelled.set()  # stops the worker thread if this call was cancelled
    return format_search(out, args.pattern, args.max_results)


async def list_files(vault: Vault, args: ListFilesArgs) -> str:
    pattern = args.pattern or "*"
    out = await _run(lambda: vault.list_entries(pattern, args.path, args.max_results))
    return format_list(out, vault, pattern)


async def get_file_info(vault: Vault, args: PathArgs) -> str:
    return format_info(await _run(lambda: vault.info(args.path)), vault)


async def get_active_note(vault: Vault, args: NoArgs) -> str:
    return format_active(await _run(vault.active_note), vault)


def format_search_notes(out: SearchNotesOutcome, query: str) -> str:
    status = out.status
    lines: list[str] = []
    if status.state == "building":
        lines.append(f"Note: {status.describe()}; results may be incomplete.")
    if not out.hits:
        lines.append(
            f"No notes match {query!r} (of {status.notes:,} indexed). Try other words, or "
            "search_files for exact text."
        )
        return "\n".join(lines)
    for hit in out.hits:
        lines.append(f"{hit.rel} | {hit.title} | {hit.snippet}")
    return "\n".join(lines)


def format_links(out: NoteLinks) -> str:
    lines = [f"Links from {out.rel} ({len(out.outgoing)}):"]
    if not out.outgoing:
        lines.append("  (none)")
    for row in out.outgoing:
        shown = row.target + row.subpath
        where = row.resolved if row.resolved is not None else "unresolved (no such file)"
        kind = "embed" if row.embed else "link"
        lines.append(f"  line {row.line}: {kind} {shown} -> {where}")
    sources = {row.source for row in out.backlinks}
    lines.append(
        f"Backlinks to {out.rel} ({len(out.backlinks)} in {_plural(len(sources), 'note')}):"
    )
    if not out.backlinks:
        lines.append("  (none)")
    for row in out.backlinks:
        lines.append(f"  {row.source}:{row.line}: {row.text}")
    return "\n".join(lines)


async def search_notes(vault: Vault, args: SearchNotesArgs) -> str:
    out = await _run(lambda: vault.search_notes(args.query, args.limit, args.folder, args.tag))
    return format_search_notes(out, args.query)


async def get_links(vault: Vault, args: PathArgs) -> str:
    return format_links(await _run(lambda: vault.get_links(args.path)))


async def set_properties(vault: Vault, args: SetPropertiesArgs) -> str:
    out = await _run(lambda: vault.set_properties(args.path, dict(args.properties)))
    text = f"Properties of {out.rel}: " + ", ".join(out.changes) + "."
    if out.attempts > 1:
        text += (
            " The note changed on disk meanwhile (probably in Obsidian); those changes were kept."
        )
    return text


def vault_tools(vault: Vault) -> list[Tool]:
    """The vault tools, bound to `vault`."""
    return [
        catalog.READ_FILE.bind(partial(read_file, vault)),
        catalog.EDIT_FILE.bind(partial(edit_file, vault)),
        catalog.WRITE_FILE.bind(partial(write_file, vault)),
        catalog.CREATE_FOLDER.bind(partial(create_folder, vault)),
        catalog.DELETE_FILE.bind(partial(delete_file, vault)),
        catalog.MOVE_FILE.bind(partial(move_file, vault)),
        catalog.SEARCH_FILES.bind(partial(search_files, vault)),
        catalog.LIST_FILES.bind(partial(list_files, vault)),
        catalog.GET_FILE_INFO.bind(partial(get_file_info, vault)),
        catalog.GET_ACTIVE_NOTE.bind(partial(get_active_note, vault)),
        catalog.SEARCH_NOTES.bind(partial(search_notes, vault)),
        catalog.GET_LINKS.bind(partial(get_links, vault)),
        catalog.SET_PROPERTIES.bind(partial(set_properties, vault)),
    ]
