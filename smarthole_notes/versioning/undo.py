"""Undo one processed request: revert exactly its commit, as a new commit; history is never rewritten.

A request's commit is the one whose `Smarthole-Message-Id` trailer names it. "last" is the
newest such commit not undone yet, so undoing "last" twice walks back two requests.

How it is done, and why it loses nothing:
1. The user's uncommitted edits are committed first (source `user`). Refusing instead
   would make undo unusable whenever Obsidian holds a freshly typed note, which is most
   of the time; committed, those edits are safe in history and take part in the conflict
   check like any later change.
2. The revert is computed entirely in git's object store, file by file: a three-way merge
   of (base: the request's version, ours: now, theirs: the version before the request),
   renames reversed, with `git merge-file`. Nothing on disk changes while computing it.
3. Any file that later changes touched on the same lines (or deleted, or re-created) is a
   conflict: the undo is refused and those files named; the vault is untouched.
4. A clean result is written as a tree with a temporary index, then checked out with
   `git read-tree -m -u`, which refuses to overwrite a file edited in the meantime, and
   committed with `update-ref` against the expected HEAD.

In a `mixed` commit, the files only the user changed are left alone (they were not the
request's doing); a file both the user and the agent changed is a conflict, because
reverting it would also take out the user's own edit.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, TypeAlias

from smarthole_notes.versioning.commit_message import (
    MESSAGE_KEY,
    REVERTS_KEY,
    SHARED_FILE_KEY,
    SOURCE_KEY,
    UNDO_OF_KEY,
    USER_FILE_KEY,
    USER_FILES_OMITTED_KEY,
    format_message,
    parse_trailers,
)
from smarthole_notes.versioning.repo import (
    EMPTY_TREE,
    GitError,
    GitVault,
    decode_path,
    encode_arg,
)

log = logging.getLogger(__name__)

LAST: Final = "last"
LOG_WINDOW: Final = 2_000
"""How many recent commits "last" looks through."""

UndoStatus: TypeAlias = Literal["undone", "conflict", "not_found", "already_undone", "failed"]


@dataclass(frozen=True, slots=True)
class UndoResult:
    """What undo did, worded for the user in `message`."""

    status: UndoStatus
    message: str
    message_id: str | None = None
    reverted_commit: str | None = None
    commit: str | None = None
    """The new commit that undid the request."""
    files: tuple[str, ...] = ()
    """Files the undo changed."""
    conflicts: tuple[str, ...] = ()
    """Files that prevented the undo (later changes on the same lines, and the like)."""
    saved_edits_commit: str | None = None
    """The commit that saved the user's uncommitted edits first, if any."""

    @property
    def ok(self) -> bool:
        return self.status == "undone"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready, for the API and the chat page."""
        return {
            "status": self.status,
            "ok": self.ok,
            "message": self.message,
            "message_id": self.message_id,
            "reverted_commit": self.reverted_commit,
            "commit": self.commit,
            "files": list(self.files),
            "conflicts": list(self.conflicts),
            "saved_edits_commit": self.saved_edits_commit,
        }


@dataclass(frozen=True, slots=True)
class _Entry:
    mode: str
    blob: str


@dataclass(slots=True)
class _Plan:
    writes: dict[str, _Entry | None] = field(default_factory=dict)
    """Path -> new entry, None to delete."""
    conflicts: dict[str, str] = field(default_factory=dict)
    """Path -> why."""


@dataclass(frozen=True, slots=True)
class _RequestCommit:
    hash: str
    message_id: str
    subject: str
    trailers: dict[str, list[str]]


def undo(git: GitVault, target: str = LAST) -> UndoResult:
    """Undo a processed request ("last", or its message id) by reverting its commit.

    Blocking (git subprocesses): call it through `asyncio.to_thread`. Waits for pending
    auto-commits first, so the request just answered can be undone.
    Never raises for an expected refusal; `GitError` only for an unexpected git failure.
    """
    git.wait_for_pending()
    with git.exclusive():
        try:
            git.check_not_busy()
        except GitError as exc:
            return UndoResult("failed", f"Not undone: {exc}.")
        if git.head() is None:
            return UndoResult(
                "not_found", "There is nothing to undo: the vault has no history yet."
            )
        wanted = target.strip() or LAST
        found, undone = _find(git, wanted)
        if found is None:
            if wanted != LAST and wanted in undone:
                return UndoResult(
                    "already_undone", "That request was already undone.", message_id=wanted
                )
            if wanted == LAST:
                return UndoResult("not_found", "There is no request left to undo.")
            return UndoResult(
                "not_found",
                "No commit belongs to that request: it changed no files, its commit was "
                "skipped, or it is not in this vault's history.",
                message_id=wanted,
            )
        return _undo_commit(git, found)


def undo_in_vault(vault: Path, target: str = LAST) -> UndoResult:
    """`undo` for a vault given by path (the `smarthole-notes undo` command).

    A vault that is not versioned, or a git failure, comes back as a `failed` result with
    a plain message rather than an exception.
    """
    git = GitVault(vault)
    try:
        if not git.is_repository():
            return UndoResult(
                "failed",
                "Git versioning is not on for this vault, so there is nothing to undo. "
                "Turn it on in Settings (enable_git_version_control).",
            )
        return undo(git, target)
    except GitError as exc:
        return UndoResult("failed", f"Undo failed: {exc}")


def _find(git: GitVault, wanted: str) -> tuple[_RequestCommit | None, set[str]]:
    """The request's commit (None if absent or already undone) and the ids undone so far."""
    args = [
        "log",
        f"--max-count={LOG_WINDOW}",
        "-z",
        "--format=%H%x1f%s%x1f%B",
    ]
    if wanted != LAST:
        args += ["-F", f"--grep={wanted}"]
    undone: set[str] = set()
    out = git.run(*args).stdout
    commits: list[_RequestCommit] = []
    for raw in out.split(b"\0"):
        if not raw.strip():
            continue
        full, subject, body = raw.decode("utf-8", "replace").split("\x1f", 2)
        found = parse_trailers(body)
        undone.update(found.get(UNDO_OF_KEY, []))
        ids = found.get(MESSAGE_KEY, [])
        if ids and UNDO_OF_KEY not in found:
            commits.append(_RequestCommit(full.strip(), ids[0], subject, found))
    if wanted != LAST:
        # Undo commits name the id too, so the grep above also finds them.
        for commit in commits:
            if commit.message_id == wanted:
                return (None if wanted in undone else commit), undone
        return None, undone
    for commit in commits:  # newest first
        if commit.message_id not in undone:
            return commit, undone
    return None, undone


def _undo_commit(git: GitVault, target: _RequestCommit) -> UndoResult:
    trailers = target.trailers
    if USER_FILES_OMITTED_KEY in trailers:
        return UndoResult(
            "conflict",
            "This request's commit also holds many of your own edits made outside "
            "smarthole-notes; it cannot be undone automatically.",
            message_id=target.message_id,
            reverted_commit=target.hash,
        )
    saved = git.commit_all(
        format_message(
            "vault(notes): save your edits before an undo",
            "Edits made outside smarthole-notes, kept in history before undoing a request.",
            [(SOURCE_KEY, "user")],
        )
    )
    head, head_tree = git.head_and_tree()
    assert head is not None
    parents = git.text("rev-parse", f"{target.hash}^@").split()
    parent_tree = git.tree_of(parents[0]) if parents else EMPTY_TREE
    user_only = set(trailers.get(USER_FILE_KEY, []))
    shared = set(trailers.get(SHARED_FILE_KEY, []))
    plan = _plan(git, parent_tree, target.hash, head_tree, user_only, shared)
    if plan.conflicts:
        names = sorted(plan.conflicts)
        listing = "; ".join(f"{path} ({plan.conflicts[path]})" for path in names)
        return UndoResult(
            "conflict",
            f"Not undone: later changes touched the same parts of {listing}. "
            "Nothing was changed; edit these notes by hand if needed.",
            message_id=target.message_id,
            reverted_commit=target.hash,
            conflicts=tuple(names),
            saved_edits_commit=saved,
        )
    if not plan.writes:
        return UndoResult(
            "already_undone",
            "Nothing to undo: the notes are already as they were before that request.",
            message_id=target.message_id,
            reverted_commit=target.hash,
            saved_edits_commit=saved,
        )
    new_tree = _write_tree(git, head_tree, plan)
    message = format_message(
        f'Revert "{target.subject}"',
        f"Undo of the request {target.message_id}: this reverts commit {target.hash}.",
        [
            (UNDO_OF_KEY, target.message_id),
            (REVERTS_KEY, target.hash),
            (SOURCE_KEY, "undo"),
        ],
    )
    commit = git.text(
        "commit-tree", "--no-gpg-sign", new_tree, "-p", head, "-F", "-", input=encode_arg(message)
    )
    git.run("update-index", "-q", "--refresh", ok=(0, 1))
    checkout = git.run("read-tree", "-m", "-u", head_tree, new_tree, ok=(0, 128), retry_locks=True)
    if checkout.returncode != 0:
        reason = checkout.stderr.decode("utf-8", "replace").strip().splitlines()
        log.warning("Undo refused at checkout: %s", reason[-1:] or "?")
        return UndoResult(
            "conflict",
            "Not undone: a note changed while undoing (perhaps it is being edited). "
            "Nothing was changed; try again.",
            message_id=target.message_id,
            reverted_commit=target.hash,
            conflicts=tuple(sorted(plan.writes)),
            saved_edits_commit=saved,
        )
    try:
        git.run("update-ref", "-m", "smarthole-notes: undo", "HEAD", commit, head, retry_locks=True)
    except GitError:
        git.run("read-tree", "-m", "-u", new_tree, head_tree, ok=(0, 128))
        raise
    files = tuple(sorted(plan.writes))
    return UndoResult(
        "undone",
        f"Undone: {_describe(files)} back as before that request.",
        message_id=target.message_id,
        reverted_commit=target.hash,
        commit=commit,
        files=files,
        saved_edits_commit=saved,
    )


def _describe(files: tuple[str, ...]) -> str:
    if len(files) <= 3:
        return ", ".join(files)
    return f"{', '.join(files[:3])} and {len(files) - 3} more"


def _raw_diff(
    git: GitVault, old: str, new: str
) -> list[tuple[str, str, str, str, str, str, str | None]]:
    """(status, old_mode, new_mode, old_blob, new_blob, path, old_path) per file, renames found."""
    out = git.run("diff-tree", "-r", "-z", "-M", "--no-commit-id", "--raw", old, new).stdout
    parts = out.split(b"\0")
    rows: list[tuple[str, str, str, str, str, str, str | None]] = []
    i = 0
    while i < len(parts):
        head = parts[i].decode("ascii", "replace").lstrip("\n")
        if not head.startswith(":"):
            i += 1
            continue
        old_mode, new_mode, old_blob, new_blob, status = head[1:].split()
        if status[0] in ("R", "C"):
            src, dst = decode_path(parts[i + 1]), decode_path(parts[i + 2])
            rows.append((status[0], old_mode, new_mode, old_blob, new_blob, dst, src))
            i += 3
        else:
            rows.append(
                (status[0], old_mode, new_mode, old_blob, new_blob, decode_path(parts[i + 1]), None)
            )
            i += 2
    return rows


def _entries(git: GitVault, tree: str, paths: list[str]) -> dict[str, _Entry]:
    """Mode and blob of `paths` in `tree` (absent paths are missing from the result)."""
    if not paths:
        return {}
    out = git.run("ls-tree", "-z", "--full-tree", tree, "--", *paths).stdout
    entries: dict[str, _Entry] = {}
    for raw in out.split(b"\0"):
        if not raw:
            continue
        meta, _, path = raw.partition(b"\t")
        mode, kind, blob = meta.decode("ascii").split()
        if kind == "blob":
            entries[decode_path(path)] = _Entry(mode, blob)
    return entries


def _plan(
    git: GitVault,
    parent_tree: str,
    commit: str,
    head_tree: str,
    user_only: set[str],
    shared: set[str],
) -> _Plan:
    """What reverting `commit` on top of `head_tree` writes, or which files conflict."""
    plan = _Plan()
    rows = _raw_diff(git, parent_tree, commit)
    paths = sorted({r[5] for r in rows} | {r[6] for r in rows if r[6] is not None})
    now = _entries(git, head_tree, paths)
    for status, old_mode, new_mode, before, after, path, old_path in rows:
        if path in user_only and old_path is None:
            continue  # the user's own edit in a mixed commit: not the request's doing
        if path in shared or (old_path is not None and old_path in shared):
            plan.conflicts[path] = "it also held your own edits"
            continue
        current = now.get(path)
        if status == "A":
            if current is None:
                continue
            if current.blob == after:
                plan.writes[path] = None
            else:
                plan.conflicts[path] = "changed since"
        elif status == "D":
            if current is None:
                plan.writes[path] = _Entry(old_mode, before)
            elif current.blob != before:
                plan.conflicts[path] = "created again since"
        elif status == "R" and old_path is not None:
            at_old = now.get(old_path)
            if current is None:
                if at_old is None or at_old.blob != before:
                    plan.conflicts[path] = "moved or deleted since"
                continue
            if at_old is not None:
                plan.conflicts[old_path] = "a file has that name again"
                continue
            merged = _merge(git, current.blob, after, before)
            if merged is None:
                plan.conflicts[path] = "changed since on the same lines"
                continue
            plan.writes[path] = None
            plan.writes[old_path] = _Entry(old_mode, merged)
        else:  # modified, or the mode / type changed
            if current is None:
                plan.conflicts[path] = "deleted since"
            elif current.blob == after:
                plan.writes[path] = _Entry(
                    old_mode if current.mode == new_mode else current.mode, before
                )
            elif current.blob != before:
                merged = _merge(git, current.blob, after, before)
                if merged is None:
                    plan.conflicts[path] = "changed since on the same lines"
                else:
                    plan.writes[path] = _Entry(current.mode, merged)
    return plan


def _merge(git: GitVault, ours: str, base: str, theirs: str) -> str | None:
    """Three-way merge of blobs; the merged blob's id, None on a conflict or binary content."""
    if ours == base:
        return theirs
    if theirs == base or ours == theirs:
        return ours
    with tempfile.TemporaryDirectory(prefix="smarthole-undo-") as folder:
        files = []
        for name, blob in (("ours", ours), ("base", base), ("theirs", theirs)):
            path = Path(folder) / name
            path.write_bytes(git.run("cat-file", "blob", blob).stdout)
            files.append(str(path))
        result = git.run("merge-file", "-p", "-q", *files, ok=range(-256, 256))
    if result.returncode != 0:
        return None
    return git.text("hash-object", "-w", "--no-filters", "--stdin", input=result.stdout)


def _write_tree(git: GitVault, head_tree: str, plan: _Plan) -> str:
    """HEAD's tree with the plan applied, built in a temporary index."""
    lines: list[bytes] = []
    for path, entry in sorted(plan.writes.items()):
        if entry is None:
            lines.append(b"0 " + b"0" * 40 + b"\t" + encode_arg(path) + b"\0")
        else:
            lines.append(f"{entry.mode} {entry.blob}\t".encode("ascii") + encode_arg(path) + b"\0")
    with git.temporary_index() as index:
        git.run("read-tree", head_tree, env=index.env)
        git.run("update-index", "-z", "--index-info", input=b"".join(lines), env=index.env)
        return git.text("write-tree", env=index.env)
