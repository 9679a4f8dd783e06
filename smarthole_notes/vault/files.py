"""File operations on checked paths: durable atomic writes, safe read-modify-write, trash.

Every function takes `VaultPath` values, which only the resolver produces.

- `atomic_write`: the new content goes to a temporary file beside the target (a hidden name
  that listing and search always skip), is flushed and fsynced, then renamed over the
  target, and the folder is fsynced. A crash leaves either the old or the new note, and at
  worst a stale temporary file, removed later by `clean_stale_temp_files`.
- `modify_text`: read, apply an edit, and write only if the note still holds what was read;
  if it changed on disk meanwhile (the user typing in Obsidian), the edit is redone on the new
  content, or fails with a clear message when it no longer applies.
- `move_to_trash`: `.trash/<same relative path>`, with a numbered suffix on a name clash.
- `rename_noreplace`: a rename that never overwrites (Linux `renameat2(RENAME_NOREPLACE)`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

try:
    import fcntl
except ImportError:  # not POSIX: no advisory locks; the check-then-rename stays as it is
    fcntl = None  # type: ignore[assignment]

from smarthole_notes.durable import temp_name, temp_writer_pid
from smarthole_notes.vault.errors import ConflictError, NotFoundError, VaultError
from smarthole_notes.vault.names import TRASH_FOLDER, is_hidden, is_temp_name
from smarthole_notes.vault.paths import Access, PathResolver, VaultPath

T = TypeVar("T")

MAX_READ_BYTES = 64 * 1024 * 1024  # a note larger than this is refused, not loaded
BINARY_SNIFF_BYTES = 8192
STALE_TEMP_SECONDS = 3600.0
EDIT_ATTEMPTS = 5

# A hook the tests use to change a note between a tool's read and its write.
BetweenReadAndWrite = Callable[[Path], None]


# -- reading -----------------------------------------------------------------------------


def read_bytes(path: Path, limit: int = MAX_READ_BYTES) -> bytes:
    """Read a file without following a symbolic link in its last component.

    Opened non-blocking, so a FIFO in place of a note is refused instead of hanging the read.
    """
    flags = (
        os.O_RDONLY
        | getattr(os, "O_NOFOLLOW", 0)
        | getattr(os, "O_CLOEXEC", 0)
        | getattr(os, "O_NONBLOCK", 0)
    )
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise VaultError(f"{path.name} is not a regular file")
        if info.st_size > limit:
            raise VaultError(
                f"{path.name} is too large to load ({info.st_size:,} bytes; at most {limit:,})"
            )
        chunks: list[bytes] = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, max(info.st_size + 1, 65536)))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise VaultError(f"{path.name} is too large to load (more than {limit:,} bytes)")
        return data
    finally:
        os.close(fd)


def is_binary(data: bytes) -> bool:
    """NUL bytes or invalid UTF-8 mean the file is not a text note."""
    if b"\x00" in data[:BINARY_SNIFF_BYTES]:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def decode_text(data: bytes, rel: str) -> str:
    if is_binary(data):
        raise VaultError(f"{rel} is a binary file, not a text note; it cannot be edited as text")
    return data.decode("utf-8")


# -- writing -----------------------------------------------------------------------------


def _fsync_dir(dir_fd: int) -> None:
    with contextlib.suppress(OSError):  # some file systems refuse fsync on folders
        os.fsync(dir_fd)


def _open_dir(path: Path) -> int:
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
    return os.open(path, flags)


def temp_name_for(name: str) -> str:
    return temp_name(name, secrets.token_hex(6))


def atomic_write(
    target: Path,
    data: bytes,
    *,
    check: Callable[[], None] | None = None,
) -> None:
    """Durably replace (or create) `target` with `data`; never leaves it half-written.

    `check` runs after the temporary file is complete and just before the rename; if it
    raises, the temporary file is removed and the target is left untouched.
    """
    parent = target.parent
    dir_fd = _open_dir(parent)
    try:
        mode = 0o666
        with contextlib.suppress(FileNotFoundError):
            existing = os.stat(target.name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISREG(existing.st_mode):
                mode = stat.S_IMODE(existing.st_mode)
        tmp = temp_name_for(target.name)
        flags = (
            os.O_WRONLY
            | os.O_CREAT
            | os.O_EXCL
            | getattr(os, "O_NOFOLLOW", 0)
            | getattr(os, "O_CLOEXEC", 0)
        )
        fd = os.open(tmp, flags, mode, dir_fd=dir_fd)
        try:
            try:
                if mode != 0o666:
                    os.fchmod(fd, mode)
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            if check is None:
                os.replace(tmp, target.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            else:
                with _writers_excluded(target.name, dir_fd):
                    check()
                    os.replace(tmp, target.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
        _fsync_dir(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def _writers_excluded(name: str, dir_fd: int) -> Iterator[None]:
    """Hold an exclusive advisory lock on the note from the check to the rename.

    Within one process the vault's lock already serialises writes; this closes the gap
    between two processes on one vault (`serve` and `smarthole-notes mcp`): a second
    writer's check waits until the first one's rename is done, then sees its bytes and
    redoes its edit, instead of both checks passing and one rename discarding the other's
    change. Editors that take no lock (Obsidian) are still covered by the check alone.
    """
    if fcntl is None:
        yield
        return
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:  # absent (the check will say so) or not lockable: check without the lock
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def make_parents(resolver: PathResolver, vp: VaultPath) -> None:
    """Create the missing folders above `vp` (which was checked, tail included)."""
    make_folders(resolver, vp.entry.parent)


def make_folders(resolver: PathResolver, folder: Path) -> None:
    """Create `folder` and its missing parents, each checked to stay a real folder in the vault."""
    missing: list[Path] = []
    current = folder
    while not os.path.lexists(current):
        missing.append(current)
        current = current.parent
    if not current.is_dir():
        raise VaultError(f"'{resolver.rel_of(current)}' is a file, not a folder")
    for path in reversed(missing):
        if not resolver.inside(Path(os.path.realpath(path.parent))):
            raise VaultError("refusing to create a folder outside the vault")
        with contextlib.suppress(FileExistsError):
            os.mkdir(path)
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode):
            raise VaultError(f"'{resolver.rel_of(path)}' is not a folder")
        parent_fd = _open_dir(path.parent)
        try:
            _fsync_dir(parent_fd)
        finally:
            os.close(parent_fd)


@dataclass(frozen=True, slots=True)
class Modified(Generic[T]):
    """The outcome of a read-modify-write: the new text and what the edit reports."""

    old: str
    new: str
    result: T
    attempts: int


def modify_text(
    vp: VaultPath,
    edit: Callable[[str], tuple[str, T]],
    *,
    between_read_and_write: BetweenReadAndWrite | None = None,
    attempts: int = EDIT_ATTEMPTS,
    reapply: bool = True,
) -> Modified[T]:
    """Apply `edit` to the note's text and write the result, safe against concurrent edits.

    The note is re-read just before the rename; if its bytes differ from what `edit` saw,
    nothing is written and the edit is applied again to the new content (with `reapply`),
    or the call fails with a ConflictError (without: for edits by line number, whose numbers
    mean something else in the new content). `edit` raises a `VaultError` when it cannot
    apply (text not found, line out of range).
    """
    if not vp.exists:
        raise NotFoundError(f"File not found: {vp.rel}")
    for attempt in range(1, attempts + 1):
        try:
            before = read_bytes(vp.real)
        except FileNotFoundError:
            raise NotFoundError(
                f"File not found: {vp.rel} (it was moved or deleted meanwhile)"
            ) from None
        text = decode_text(before, vp.rel)
        try:
            new_text, result = edit(text)
        except VaultError as exc:
            if attempt > 1:
                raise VaultError(
                    f"{vp.rel} changed on disk while it was being edited (probably in "
                    f"Obsidian), and the edit no longer applies: {exc}"
                ) from None
            raise
        if new_text == text:
            return Modified(text, new_text, result, attempt)
        if between_read_and_write is not None:
            between_read_and_write(vp.real)

        def unchanged(expected: bytes = before) -> None:
            try:
                current = read_bytes(vp.real)
            except FileNotFoundError:
                raise ConflictError(f"{vp.rel} was moved or deleted while being edited") from None
            if current != expected:
                raise _Changed

        try:
            atomic_write(vp.real, new_text.encode("utf-8"), check=unchanged)
        except _Changed:
            if not reapply:
                raise ConflictError(
                    f"{vp.rel} changed on disk while it was being edited (probably in "
                    "Obsidian), so its line numbers may have moved; nothing was written. Read "
                    "it again and redo the edit."
                ) from None
            continue
        return Modified(text, new_text, result, attempt)
    raise ConflictError(
        f"{vp.rel} kept changing on disk while being edited ({attempts} attempts); "
        "wait a moment and try again"
    )


class _Changed(Exception):
    """The note's bytes differ from what the edit was computed on."""


# -- renaming and trash ------------------------------------------------------------------

_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def _load_renameat2() -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:  # pragma: no cover
        return None
    function = getattr(libc, "renameat2", None)
    if function is None:  # pragma: no cover - old C library
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


_renameat2 = _load_renameat2()


def rename_noreplace(source: Path, destination: Path) -> None:
    """Rename without ever replacing an existing destination (raises FileExistsError)."""
    if _renameat2 is not None:
        result = _renameat2(
            _AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(destination), _RENAME_NOREPLACE
        )
        if result == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise FileExistsError(err, os.strerror(err), str(destination))
        if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(err, os.strerror(err), str(source), None, str(destination))
    # Fallback where the file system lacks RENAME_NOREPLACE: check, then rename.
    if os.path.lexists(destination):
        raise FileExistsError(errno.EEXIST, "File exists", str(destination))
    os.rename(source, destination)


def fsync_folder(path: Path) -> None:
    fd = _open_dir(path)
    try:
        _fsync_dir(fd)
    finally:
        os.close(fd)


def numbered(name: str, number: int, is_dir: bool) -> str:
    """`Plan.md` -> `Plan 2.md`; folders and extension-less names get the number at the end."""
    if not is_dir and "." in name.strip("."):
        stem, dot, ext = name.rpartition(".")
        if stem:
            return f"{stem} {number}{dot}{ext}"
    return f"{name} {number}"


def move_to_trash(resolver: PathResolver, vp: VaultPath) -> str:
    """Move a file or folder to `.trash/`, keeping its relative path. Returns the trash path."""
    trash = resolver.root / TRASH_FOLDER
    if os.path.lexists(trash) and (trash.is_symlink() or not trash.is_dir()):
        raise VaultError(
            "the vault's .trash is not a plain folder (it is a link or a file); "
            "refusing to move anything there"
        )
    parts = vp.rel.split("/")
    folder = trash.joinpath(*parts[:-1])
    make_folders(resolver, folder)
    real_folder = Path(os.path.realpath(folder))
    if not real_folder.is_relative_to(Path(os.path.realpath(trash))):
        raise VaultError("the trash folder leads outside the vault; refusing to delete")
    name = parts[-1]
    for number in range(1, 10_000):
        candidate = name if number == 1 else numbered(name, number, vp.is_dir)
        try:
            rename_noreplace(vp.entry, real_folder / candidate)
        except FileExistsError:
            continue
        fsync_folder(real_folder)
        fsync_folder(vp.entry.parent)
        return resolver.rel_of(real_folder / candidate)
    raise VaultError(f"too many items named {name} in the trash")


def _writer_gone(name: str) -> bool:
    """Whether the process that wrote this temporary file has ended (so it is an orphan)."""
    pid = temp_writer_pid(name)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


def clean_stale_temp_files(
    folder: Path, max_age: float = STALE_TEMP_SECONDS, *, orphans: bool = False
) -> int:
    """Remove temporary files of interrupted writes older than `max_age` seconds, and with
    `orphans` also those of any age whose writing process has ended (a crash)."""
    removed = 0
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if not is_temp_name(entry.name):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and (
                now - info.st_mtime >= max_age or (orphans and _writer_gone(entry.name))
            ):
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue
    return removed


def clean_temp_files_under(
    root: Path, max_age: float = STALE_TEMP_SECONDS, *, orphans: bool = False
) -> int:
    """`clean_stale_temp_files` in `root` and every folder below it that tools can write to
    (hidden and protected ones are skipped, the trash is not)."""
    removed = clean_stale_temp_files(root, max_age, orphans=orphans)
    for folder, dirs, _ in os.walk(root):
        dirs[:] = [d for d in dirs if not is_hidden(d) or d == TRASH_FOLDER]
        for name in dirs:
            removed += clean_stale_temp_files(Path(folder) / name, max_age, orphans=orphans)
    return removed


# -- creation time -----------------------------------------------------------------------


class _StatxTimestamp(ctypes.Structure):
    _fields_ = [
        ("tv_sec", ctypes.c_int64),
        ("tv_nsec", ctypes.c_uint32),
        ("reserved", ctypes.c_int32),
    ]


class _Statx(ctypes.Structure):
    _fields_ = [
        ("stx_mask", ctypes.c_uint32),
        ("stx_blksize", ctypes.c_uint32),
        ("stx_attributes", ctypes.c_uint64),
        ("stx_nlink", ctypes.c_uint32),
        ("stx_uid", ctypes.c_uint32),
        ("stx_gid", ctypes.c_uint32),
        ("stx_mode", ctypes.c_uint16),
        ("spare0", ctypes.c_uint16),
        ("stx_ino", ctypes.c_uint64),
        ("stx_size", ctypes.c_uint64),
        ("stx_blocks", ctypes.c_uint64),
        ("stx_attributes_mask", ctypes.c_uint64),
        ("stx_atime", _StatxTimestamp),
        ("stx_btime", _StatxTimestamp),
        ("stx_ctime", _StatxTimestamp),
        ("stx_mtime", _StatxTimestamp),
        ("spare", ctypes.c_uint64 * 48),  # the kernel struct is 256 bytes; keep room
    ]


_STATX_BTIME = 0x800
_AT_SYMLINK_NOFOLLOW = 0x100


def _load_statx() -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:  # pragma: no cover
        return None
    function = getattr(libc, "statx", None)
    if function is None:  # pragma: no cover
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_Statx),
    ]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


_statx = _load_statx()


def creation_time(path: Path) -> float | None:
    """The file's birth time in seconds, where the system records it, else None."""
    birth = getattr(os.stat(path), "st_birthtime", None)
    if isinstance(birth, (int, float)) and birth > 0:
        return float(birth)
    if _statx is None:
        return None
    buffer = _Statx()
    if _statx(_AT_FDCWD, os.fsencode(path), 0, _STATX_BTIME, ctypes.byref(buffer)) != 0:
        return None
    if not buffer.stx_mask & _STATX_BTIME or buffer.stx_btime.tv_sec <= 0:
        return None
    seconds: int = buffer.stx_btime.tv_sec
    nanoseconds: int = buffer.stx_btime.tv_nsec
    return seconds + nanoseconds / 1e9


__all__ = [
    "Access",
    "BetweenReadAndWrite",
    "Modified",
    "atomic_write",
    "clean_stale_temp_files",
    "clean_temp_files_under",
    "creation_time",
    "decode_text",
    "is_binary",
    "make_folders",
    "make_parents",
    "modify_text",
    "move_to_trash",
    "read_bytes",
    "rename_noreplace",
]
