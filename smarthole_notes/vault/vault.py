"""`Vault`: the one object the tools use to touch the user's notes.
 Each method resolves its paths through
`PathResolver` (confinement, protected folders, case-insensitive lookup), works through
`files` (atomic durable writes, concurrent-edit-safe read-modify-write, trash), and returns
plain data that `smarthole_notes.tools.vault` turns into text for the model. Methods are
blocking; the tools run them in a worker thread.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import posixpath
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from pathlib import Path

from smarthole_notes.vault import conventions, edits, files, frontmatter, obsidian
from smarthole_notes.vault.cache import ContentCache
from smarthole_notes.vault.errors import (
    AmbiguousPathError,
    ConflictError,
    NotFoundError,
    RefusedPathError,
    VaultError,
)
from smarthole_notes.vault.files import BetweenReadAndWrite
from smarthole_notes.vault.format import format_time
from smarthole_notes.vault.index import IndexStatus, NoteHit, NoteIndex, NoteLinks
from smarthole_notes.vault.linkgraph import LinkGraph
from smarthole_notes.vault.links import Link, exact_keys, find_links, rewrite_links
from smarthole_notes.vault.listing import Entry, Glob, walk
from smarthole_notes.vault.names import has_extension, is_hidden, is_markdown
from smarthole_notes.vault.paths import Access, PathResolver, VaultPath, Want, parse_path
from smarthole_notes.vault.resolver import lookup_name
from smarthole_notes.vault.search import Searcher, SearchResult

READ_MAX_LINES = 2000
READ_MAX_BYTES = 100 * 1024
READ_MAX_LINE_CHARS = 20_000
WRITE_MAX_BYTES = 16 * 1024 * 1024
SEEN_ENTRIES = 2048
INDEX_WAIT_SECONDS = 20.0  # a search waits this long for a first build (then says so)


@dataclass(frozen=True, slots=True)
class ReadOutcome:
    rel: str
    lines: list[tuple[int, str]]
    total_lines: int
    size: int
    binary: bool = False
    truncated: str | None = None  # why the output stops before the requested end


@dataclass(frozen=True, slots=True)
class EditOutcome:
    rel: str
    report: str  # "Replaced 3 occurrences", "Inserted 5 lines after line 42"
    attempts: int  # >1 when the note changed on disk and the edit was redone


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    rel: str
    created: bool
    size: int
    template: str | None = None  # a new daily note: the template it was created from


@dataclass(frozen=True, slots=True)
class FolderOutcome:
    rel: str
    created: bool


@dataclass(frozen=True, slots=True)
class DeleteOutcome:
    rel: str
    trash_rel: str
    is_dir: bool
    linked_from: int | None = None  # notes elsewhere linking to what was deleted (None: unknown)


@dataclass(frozen=True, slots=True)
class MoveOutcome:
    source: str
    destination: str
    is_dir: bool
    noop: bool = False
    links: int = 0
    notes: int = 0
    failures: list[str] = field(default_factory=list)
    linked_from: int | None = None  # notes elsewhere linking to what moved (None: unknown)


@dataclass(frozen=True, slots=True)
class ListOutcome:
    base: str
    files: list[tuple[str, float]]  # (vault-relative path, mtime), newest first
    folders: list[str]
    total: int


@dataclass(frozen=True, slots=True)
class InfoOutcome:
    rel: str
    is_dir: bool
    size: int
    created: float | None
    modified: float
    lines: int | None = None
    children: tuple[int, int] | None = None  # (files, folders) directly inside
    binary: bool = False


@dataclass(frozen=True, slots=True)
class SearchNotesOutcome:
    hits: list[NoteHit]
    status: IndexStatus  # the build may still be running: results then are partial


@dataclass(frozen=True, slots=True)
class PropertiesOutcome:
    rel: str
    changes: list[str]  # "set status", "added due", "removed draft"
    attempts: int


@dataclass(frozen=True, slots=True)
class ActiveOutcome:
    rel: str
    name: str
    modified: float
    source: str


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Vault:
    """One notes vault. Construct with the vault folder; `tz` is for dates in outputs."""

    def __init__(self, root: Path, *, tz: tzinfo | None = None) -> None:
        self.resolver = PathResolver(Path(root))
        self.root = self.resolver.root
        self.tz = tz
        self.cache = ContentCache()
        self.searcher = Searcher(self.root, self.cache)
        self.search_time_limit = 10.0
        # Tests set this to change a note between an edit's read and its write.
        self.between_read_and_write: BetweenReadAndWrite | None = None
        self._lock = threading.RLock()  # serialises this service's own writes
        self._seen: OrderedDict[str, str] = OrderedDict()  # real path -> digest last shown
        self._links: LinkGraph | None = None  # built at the first move
        self.index = NoteIndex(self.root)  # search_notes, get_links: built by start_index()
        self._relinked: list[str] = []  # notes whose links the last move rewrote

    # -- shared helpers ----------------------------------------------------------------

    def format_time(self, timestamp: float) -> str:
        return format_time(timestamp, self.tz)

    def resolve(self, path: str, access: Access, want: Want = Want.ANY) -> VaultPath:
        return self.resolver.resolve(path, access, want)

    def _remember(self, vp: VaultPath, data: bytes) -> None:
        key = str(vp.real)
        self._seen[key] = _digest(data)
        self._seen.move_to_end(key)
        while len(self._seen) > SEEN_ENTRIES:
            self._seen.popitem(last=False)

    def _check_not_changed_since_read(self, vp: VaultPath, current: bytes, doing: str) -> None:
        seen = self._seen.get(str(vp.real))
        if seen is not None and seen != _digest(current):
            raise ConflictError(
                f"{vp.rel} changed on disk since you last read it (probably edited in "
                f"Obsidian), so {doing} could discard those changes. Read it again with "
                "read_file, then redo the change on the current content."
            )

    def _not_found(self, raw: str, vp: VaultPath | None = None) -> NotFoundError:
        shown = vp.rel if vp is not None else raw
        hint = ""
        try:
            parsed = parse_path(raw)
            parent = "/".join(parsed.components[:-1])
            name = parsed.components[-1] if parsed.components else ""
            folder = self.resolve(parent, Access.READ)
            if folder.exists and folder.is_dir and name:
                names = [n for n in os.listdir(folder.real) if not is_hidden(n)]
                close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
                if close:
                    prefix = f"{folder.rel}/" if folder.rel else ""
                    hint = " Did you mean " + " or ".join(f"'{prefix}{c}'" for c in close) + "?"
        except (VaultError, OSError):
            pass
        return NotFoundError(
            f"'{shown}' was not found.{hint} Use list_files or search_files to find the path."
        )

    def _existing(self, raw: str, access: Access, want: Want = Want.ANY) -> VaultPath:
        vp = self.resolve(raw, access, want)
        if not vp.exists:
            raise self._not_found(raw, vp)
        return vp

    def _check_folder_or_note(self, raw: str, vp: VaultPath) -> None:
        """`Plan` naming both a folder `Plan/` and a note `Plan.md` is ambiguous for delete/move."""
        parsed = parse_path(raw)
        if not vp.is_dir or parsed.trailing_slash or not parsed.components:
            return
        if has_extension(parsed.components[-1]):
            return
        sibling = self.resolve(vp.rel + ".md", Access.READ)
        if sibling.exists and not sibling.is_dir:
            raise AmbiguousPathError(
                f"'{raw}' could mean the folder '{vp.rel}/' or the note '{sibling.rel}'; "
                f"give '{vp.rel}/' for the folder or '{sibling.rel}' for the note"
            )

    # -- read_file ---------------------------------------------------------------------

    def read(
        self, path: str, start_line: int | None = None, end_line: int | None = None
    ) -> ReadOutcome:
        vp = self._existing(path, Access.READ, Want.FILE)
        if vp.is_dir:
            raise VaultError(f"'{vp.rel}/' is a folder, not a file; use list_files to see inside")
        data = files.read_bytes(vp.real)
        if files.is_binary(data):
            return ReadOutcome(vp.rel, [], 0, len(data), binary=True)
        self._remember(vp, data)
        text = data.decode("utf-8")
        all_lines = edits.Lines.of(text).lines
        total = len(all_lines)
        start = 1 if start_line is None else start_line
        end = total if end_line is None else end_line
        if start < 1:
            raise VaultError("start_line must be 1 or more")
        if total == 0:
            if start_line not in (None, 1):
                raise VaultError(f"line {start_line} does not exist; the file is empty")
            return ReadOutcome(vp.rel, [], 0, len(data))
        if start > total:
            raise VaultError(
                f"line {start} does not exist; the file has {total} line{'s' if total != 1 else ''}"
            )
        if end < start:
            raise VaultError(f"end_line ({end}) is before start_line ({start})")
        end = min(end, total)
        shown: list[tuple[int, str]] = []
        budget = READ_MAX_BYTES
        truncated: str | None = None
        for number in range(start, end + 1):
            line = all_lines[number - 1].rstrip("\r")
            if len(line) > READ_MAX_LINE_CHARS:
                line = (
                    line[:READ_MAX_LINE_CHARS]
                    + f" … [line cut: {len(line) - READ_MAX_LINE_CHARS:,} more characters]"
                )
            cost = len(line.encode("utf-8")) + 8
            if shown and (len(shown) >= READ_MAX_LINES or cost > budget):
                limit = (
                    f"{READ_MAX_LINES:,} lines"
                    if len(shown) >= READ_MAX_LINES
                    else f"about {READ_MAX_BYTES // 1024} KB"
                )
                truncated = f"output limited to {limit}; read further with start_line={number}"
                break
            budget -= cost
            shown.append((number, line))
        return ReadOutcome(vp.rel, shown, total, len(data), truncated=truncated)

    # -- edit_file ---------------------------------------------------------------------

    def _edit(
        self, path: str, edit: Callable[[str], tuple[str, str]], *, line_based: bool
    ) -> EditOutcome:
        with self._lock:
            vp = self._existing(path, Access.WRITE, Want.FILE)
            if vp.is_dir:
                raise VaultError(f"'{vp.rel}/' is a folder, not a note")
            if line_based:
                self._check_not_changed_since_read(
                    vp, files.read_bytes(vp.real), "editing by line number"
                )
            done = files.modify_text(
                vp,
                edit,
                between_read_and_write=self.between_read_and_write,
                reapply=not line_based,
            )
            self._remember(vp, done.new.encode("utf-8"))
            self.cache.discard(str(vp.real))
            self.index.changed([vp.rel])
            return EditOutcome(vp.rel, done.result, done.attempts)

    def replace(
        self, path: str, old_text: str, new_text: str, replace_all: bool = False
    ) -> EditOutcome:
        return self._edit(
            path,
            lambda text: edits.replace_text(text, old_text, new_text, replace_all),
            line_based=False,
        )

    def insert_after(self, path: str, line: int, content: str) -> EditOutcome:
        return self._edit(
            path, lambda text: edits.insert_after(text, line, content), line_based=True
        )

    def insert_before(self, path: str, line: int, content: str) -> EditOutcome:
        return self._edit(
            path, lambda text: edits.insert_before(text, line, content), line_based=True
        )

    def delete_lines(self, path: str, start: int, end: int) -> EditOutcome:
        return self._edit(path, lambda text: edits.delete_lines(text, start, end), line_based=True)

    # -- write_file --------------------------------------------------------------------

    def write(self, path: str, content: str) -> WriteOutcome:
        data = content.encode("utf-8")
        if len(data) > WRITE_MAX_BYTES:
            raise VaultError(
                f"the content is too large ({len(data):,} bytes; at most {WRITE_MAX_BYTES:,})"
            )
        if parse_path(path).trailing_slash:
            raise VaultError(f"'{path}' names a folder; give the path of a file to write")
        with self._lock:
            vp = self.resolve(path, Access.WRITE, Want.NEW_NOTE)
            if vp.is_root:
                raise RefusedPathError("give a file name to write")
            if vp.exists and vp.is_dir:
                raise VaultError(f"'{vp.rel}/' is a folder; give a file path inside it")
            before: bytes | None = None
            if vp.exists:
                try:
                    before = files.read_bytes(vp.real, WRITE_MAX_BYTES * 4)
                except FileNotFoundError:
                    before = None
                if before is not None:
                    self._check_not_changed_since_read(vp, before, "overwriting it")
            template = None
            if before is None:
                data, template = self._from_daily_template(vp.rel, content, data)
            files.make_parents(self.resolver, vp)
            # The parents exist now: re-resolve, so the final location is checked on disk.
            vp = self.resolve(vp.rel, Access.WRITE)
            if self.between_read_and_write is not None:
                self.between_read_and_write(vp.real)

            def unchanged() -> None:
                try:
                    current: bytes | None = files.read_bytes(vp.real, WRITE_MAX_BYTES * 4)
                except FileNotFoundError:
                    current = None
                if current != before:
                    raise ConflictError(
                        f"{vp.rel} changed on disk while it was being written (probably in "
                        "Obsidian); nothing was written. Read it again and retry."
                    )

            files.atomic_write(vp.real, data, check=unchanged)
            files.clean_stale_temp_files(vp.real.parent)
            self._remember(vp, data)
            self.cache.discard(str(vp.real))
            self.index.changed([vp.rel])
            return WriteOutcome(vp.rel, before is None, len(data), template)

    def _from_daily_template(self, rel: str, content: str, data: bytes) -> tuple[bytes, str | None]:
        """A new daily note starts from its template, as in Obsidian; `content` follows it."""
        if not is_markdown(rel):
            return data, None
        found = conventions.read_conventions(self.resolver)
        if found is None or found.daily is None or not found.daily.template:
            return data, None
        day = conventions.daily_note_date(rel, found.daily, datetime.now(self.tz))
        if day is None:
            return data, None
        template = conventions.read_template(self.resolver, found.daily.template)
        if template is None or (template.strip() and template.strip() in content):
            return data, None
        filled = conventions.fill_daily_template(template, found.daily, day)
        joined = filled if not content else filled.rstrip("\n") + "\n\n" + content
        return joined.encode("utf-8"), found.daily.template

    def obsidian_conventions(self) -> conventions.Conventions | None:
        """Obsidian's daily-note, template, attachment and new-note settings for this vault."""
        return conventions.read_conventions(self.resolver)

    def conventions_prompt(self) -> str:
        """For the stable part of the system prompt ("" for a plain folder)."""
        found = conventions.read_conventions(self.resolver)
        return found.describe() if found is not None else ""

    def daily_note_prompt(self, now: datetime) -> str:
        """For the volatile part: today's daily note path (depends on the date)."""
        found = conventions.read_conventions(self.resolver)
        if found is None or found.daily is None:
            return ""
        rel = found.daily.path_for(now)
        try:
            exists = self.resolve(rel, Access.READ).exists
        except VaultError:
            exists = False
        state = "exists" if exists else "does not exist yet"
        return f"Today's daily note: {rel} ({state})."

    # -- create_folder -----------------------------------------------------------------

    def create_folder(self, path: str) -> FolderOutcome:
        with self._lock:
            vp = self.resolve(path, Access.WRITE)
            if vp.is_root:
                raise RefusedPathError(
                    "the vault root always exists; give the name of the folder to create"
                )
            if vp.exists:
                if vp.is_dir:
                    return FolderOutcome(vp.rel, False)
                raise VaultError(f"'{vp.rel}' already exists as a file, not a folder")
            files.make_folders(self.resolver, vp.entry)
            return FolderOutcome(vp.rel, True)

    # -- delete_file -------------------------------------------------------------------

    def delete(self, path: str) -> DeleteOutcome:
        with self._lock:
            vp = self.resolve(path, Access.WRITE)
            if vp.is_root:
                raise RefusedPathError(
                    "refusing to delete the vault root; give the path of a note or folder"
                )
            if not vp.exists:
                raise self._not_found(path, vp)
            self._check_folder_or_note(path, vp)
            linking = self.index.linking_notes([vp.rel])
            trash_rel = files.move_to_trash(self.resolver, vp)
            self.cache.discard(str(vp.real))
            self.index.changed([vp.rel])
            count = None if linking is None else len(linking)
            return DeleteOutcome(vp.rel, trash_rel, vp.is_dir, count)

    # -- move_file ---------------------------------------------------------------------

    def _destination(self, source: VaultPath, destination: str) -> VaultPath:
        parsed = parse_path(destination)
        if not parsed.components:
            # "move to the root": into the vault root folder
            return self.resolve(source.name, Access.WRITE)
        target = self.resolve(destination, Access.WRITE)
        if parsed.trailing_slash or (
            target.exists and target.is_dir and target.real != source.real
        ):
            if target.exists and not target.is_dir:
                raise VaultError(f"'{target.rel}' is a file, not a folder")
            return self.resolve(f"{target.rel}/{source.name}", Access.WRITE)
        last = parsed.components[-1]
        if not source.is_dir and not has_extension(last) and has_extension(source.name):
            suffix = source.name[source.name.rfind(".") :]
            return self.resolve(destination.rstrip("/\\ ") + suffix, Access.WRITE)
        return target

    def move(self, source: str, destination: str) -> MoveOutcome:
        with self._lock:
            src = self.resolve(source, Access.MOVE_SOURCE)
            if src.is_root:
                raise RefusedPathError("the vault root cannot be moved")
            if not src.exists:
                raise self._not_found(source, src)
            self._check_folder_or_note(source, src)
            dst = self._destination(src, destination)
            if dst.is_root:
                raise RefusedPathError("give a destination path")
            same_entry = dst.exists and _same_entry(src.entry, dst.entry)
            if same_entry and dst.rel.rsplit("/", 1)[0:-1] == src.rel.rsplit("/", 1)[0:-1]:
                wanted = parse_path(destination).components[-1:]
                if not wanted or wanted[0] in (src.name, src.name.removesuffix(".md")):
                    return MoveOutcome(src.rel, dst.rel, src.is_dir, noop=True)
                # A change of letter case only: rename to the name as given.
                new_name = wanted[0]
                if not src.is_dir and not has_extension(new_name) and has_extension(src.name):
                    new_name += src.name[src.name.rfind(".") :]
                return self._rename_case(src, new_name)
            if dst.exists:
                raise ConflictError(
                    f"'{dst.display}' already exists; moving never overwrites. Choose another "
                    "name, or delete the existing one first."
                )
            if src.is_dir and (dst.real == src.real or dst.real.is_relative_to(src.real)):
                raise VaultError(f"cannot move the folder '{src.rel}/' into itself")
            linking = self.index.linking_notes([src.rel])  # counted before the links change
            done = self._move_and_relink(src, dst)
            return done if linking is None else replace(done, linked_from=len(linking))

    def _rename_case(self, src: VaultPath, new_name: str) -> MoveOutcome:
        graph = self._link_graph()
        parent = src.entry.parent
        temporary = parent / files.temp_name_for(src.name)
        os.rename(src.entry, temporary)
        try:
            files.rename_noreplace(temporary, parent / new_name)
        except BaseException:
            os.rename(temporary, src.entry)
            raise
        files.fsync_folder(parent)
        dst = self.resolve(posixpath.join(posixpath.dirname(src.rel), new_name), Access.WRITE)
        return self._relink_after(src, dst, graph)

    def _link_graph(self) -> LinkGraph:
        """The vault's link index, brought up to date (call before changing anything)."""
        if self._links is None:
            self._links = LinkGraph(self.root)
        self._links.refresh()
        return self._links

    def _move_and_relink(self, src: VaultPath, dst: VaultPath) -> MoveOutcome:
        graph = self._link_graph()
        files.make_parents(self.resolver, dst)
        dst = self.resolve(dst.rel, Access.WRITE)
        if dst.exists:
            raise ConflictError(f"'{dst.display}' already exists; moving never overwrites")
        try:
            files.rename_noreplace(src.entry, dst.entry)
        except FileExistsError:
            raise ConflictError(
                f"'{dst.rel}' appeared meanwhile; moving never overwrites"
            ) from None
        files.fsync_folder(dst.entry.parent)
        files.fsync_folder(src.entry.parent)
        return self._relink_after(src, dst, graph)

    def _relink_after(self, src: VaultPath, dst: VaultPath, graph: LinkGraph) -> MoveOutcome:
        dst = self.resolve(dst.rel, Access.WRITE)
        if src.is_dir:
            cut = len(src.rel) + 1
            moved = {rel: dst.rel + "/" + rel[cut:] for rel in graph.files_under(src.rel)}
        elif src.rel in graph.resolver:
            moved = {src.rel: dst.rel}
        else:
            moved = {}
        links, notes, failures = self._update_links(graph, moved)
        self.index.changed([src.rel, dst.rel, *self._relinked])
        self._relinked.clear()
        return MoveOutcome(src.rel, dst.rel, src.is_dir, False, links, notes, failures)

    def _update_links(self, graph: LinkGraph, moved: dict[str, str]) -> tuple[int, int, list[str]]:
        """Rewrite the links that would open something else after `moved` (done on disk).

        Only notes whose links look a moved file's old or new name up, and the moved notes
        themselves, can change: the others are not read.
        """
        if not moved:
            return 0, 0, []
        before = graph.resolver
        after = before.after(moved)
        names = {lookup_name(path) for pair in moved.items() for path in pair}
        affected = graph.notes_linking(names) | {rel for rel in moved if is_markdown(rel)}
        style = obsidian.link_style(self.resolver)
        links = notes = 0
        failures: list[str] = []
        for source_old in sorted(affected):
            rel = moved.get(source_old, source_old)
            try:
                vp = self.resolve(rel, Access.WRITE)
                if not vp.exists or vp.is_dir:
                    continue

                found: list[list[Link]] = []

                def relink(
                    text: str,
                    source_old: str = source_old,
                    rel: str = rel,
                    found: list[list[Link]] = found,
                ) -> tuple[str, int]:
                    found[:] = [find_links(text)]
                    return rewrite_links(
                        text,
                        source_old=source_old,
                        source_new=rel,
                        before=before,
                        after=after,
                        moved=moved,
                        style=style,
                        links=found[0],
                    )

                done = files.modify_text(
                    vp, relink, between_read_and_write=self.between_read_and_write
                )
            except (VaultError, OSError) as exc:
                failures.append(f"{rel}: {exc}")
                continue
            if done.result:
                links += done.result
                notes += 1
                self._remember(vp, done.new.encode("utf-8"))
                self._relinked.append(rel)
                graph.touched(source_old)
            elif found and source_old not in moved:
                graph.refine(source_old, exact_keys(found[0]))
        graph.moved(moved)
        return links, notes, failures

    # -- search_files ------------------------------------------------------------------

    def search(
        self,
        pattern: str,
        file_pattern: str = "*.md",
        context_lines: int = 2,
        max_results: int = 10,
        cancelled: threading.Event | None = None,
    ) -> SearchResult:
        return self.searcher.search(
            pattern,
            file_pattern=file_pattern,
            context_lines=context_lines,
            max_results=max_results,
            time_limit=self.search_time_limit,
            cancelled=cancelled,
        )

    # -- search_notes, get_links, set_properties -----------------------------------------

    def start_index(self) -> None:
        """Build (or update) the search index in the background and keep it fresh."""
        self.index.start()

    def _ready_index(self) -> IndexStatus:
        """The index, started if nobody did (one-off `ask`, MCP), given a moment to build."""
        self.index.start()
        self.index.wait_ready(INDEX_WAIT_SECONDS)
        status = self.index.status()
        if status.state == "failed":
            raise VaultError(f"{status.describe()}; use search_files instead")
        if status.state == "building" and status.done == 0:
            raise VaultError(f"{status.describe()}; try again shortly, or use search_files")
        return status

    def search_notes(
        self, query: str, limit: int = 10, folder: str | None = None, tag: str | None = None
    ) -> SearchNotesOutcome:
        base = ""
        if folder and folder.strip("/ "):
            found = self._existing(folder, Access.READ)
            if not found.is_dir:
                raise VaultError(f"'{found.rel}' is a file, not a folder; give a folder path")
            base = found.rel
        status = self._ready_index()
        hits = self.index.search(query, limit, folder=base, tag=tag or "")
        return SearchNotesOutcome(hits, status)

    def get_links(self, path: str) -> NoteLinks:
        vp = self._existing(path, Access.READ, Want.FILE)
        if vp.is_dir:
            raise VaultError(f"'{vp.rel}/' is a folder; give the path of a note")
        self._ready_index()
        self.index.changed([vp.rel])  # this note at least is as it is now
        return self.index.links(vp.rel)

    def set_properties(self, path: str, properties: dict[str, object]) -> PropertiesOutcome:
        if not properties:
            raise VaultError("give at least one property to set (or null to remove one)")
        types = obsidian.property_types(self.resolver)
        with self._lock:
            vp = self._existing(path, Access.WRITE, Want.FILE)
            if vp.is_dir or not is_markdown(vp.name):
                raise VaultError(f"'{vp.rel}' is not a note; properties live in Markdown notes")
            done = files.modify_text(
                vp,
                lambda text: frontmatter.set_properties(text, properties, types),
                between_read_and_write=self.between_read_and_write,
            )
            self._remember(vp, done.new.encode("utf-8"))
            self.cache.discard(str(vp.real))
            self.index.changed([vp.rel])
            return PropertiesOutcome(vp.rel, done.result, done.attempts)

    # -- list_files --------------------------------------------------------------------

    def list_entries(
        self, pattern: str = "*", path: str = "", max_results: int = 100
    ) -> ListOutcome:
        base = self._existing(path, Access.READ)
        if not base.is_dir:
            raise VaultError(
                f"'{base.rel}' is a file, not a folder; use get_file_info or read_file"
            )
        glob = Glob(pattern, anywhere=False)
        found_files: list[Entry] = []
        found_folders: list[str] = []
        skip = len(base.rel) + 1 if base.rel else 0
        for entry in walk(self.root, base.real, base.rel, max_depth=glob.depth):
            if not glob.matches(entry.rel[skip:]):
                continue
            if entry.is_dir:
                found_folders.append(entry.rel)
            else:
                found_files.append(entry)
        found_files.sort(key=lambda e: (-e.mtime, e.rel))
        found_folders.sort(key=str.casefold)
        total = len(found_files) + len(found_folders)
        chosen_files = [(e.rel, e.mtime) for e in found_files[:max_results]]
        room = max(0, max_results - len(chosen_files))
        return ListOutcome(base.rel, chosen_files, found_folders[:room], total)

    # -- get_file_info -----------------------------------------------------------------

    def info(self, path: str) -> InfoOutcome:
        vp = self._existing(path, Access.READ)
        stat_result = os.stat(vp.real)
        created = files.creation_time(vp.real)
        if vp.is_dir:
            counted = [e for e in walk(self.root, vp.real, vp.rel, max_depth=1)]
            children = (
                sum(1 for e in counted if not e.is_dir),
                sum(1 for e in counted if e.is_dir),
            )
            return InfoOutcome(
                vp.rel or "", True, 0, created, stat_result.st_mtime, children=children
            )
        lines: int | None = None
        binary = False
        if stat_result.st_size <= 8 * 1024 * 1024:
            data = files.read_bytes(vp.real)
            binary = files.is_binary(data)
            if not binary:
                lines = edits.count_lines(data.decode("utf-8"))
        return InfoOutcome(
            vp.rel,
            False,
            stat_result.st_size,
            created,
            stat_result.st_mtime,
            lines=lines,
            binary=binary,
        )

    # -- get_active_note ---------------------------------------------------------------

    def active_note(self) -> ActiveOutcome | str:
        found = obsidian.active_note(self.resolver)
        if isinstance(found, str):
            return found
        vp = found.path
        stem = vp.name[:-3] if is_markdown(vp.name) else vp.name
        return ActiveOutcome(vp.rel, stem, os.stat(vp.real).st_mtime, found.source)

    # -- maintenance -------------------------------------------------------------------

    def clean_stale_temp_files(self, max_age: float = files.STALE_TEMP_SECONDS) -> int:
        """Remove temporary files left by interrupted writes anywhere in the vault."""
        return files.clean_temp_files_under(self.root, max_age)


def _same_entry(first: Path, second: Path) -> bool:
    try:
        return os.path.samestat(os.lstat(first), os.lstat(second))
    except OSError:
        return False
