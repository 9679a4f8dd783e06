"""Durable file writes: a crash at any moment leaves the old file or the new one, never a mix.

Used for everything the service writes outside the vault tools: settings, credentials,
inbox messages, retrospection notes.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

TEMP_MARKER = ".smarthole-tmp-"


def temp_name(name: str, token: str) -> str:
    """`.<name>.smarthole-tmp-<pid>-<token>`: hidden, ours, and naming the process writing it,
    so a later start can tell an orphan (its writer is gone) from a write in progress."""
    stem = name[:32].encode("utf-8")[:32].decode("utf-8", "ignore")
    return f".{stem}{TEMP_MARKER}{os.getpid()}-{token}"


def temp_writer_pid(name: str) -> int | None:
    """The process id in a temporary file's name (None for names from before it was kept)."""
    _, _, tail = name.rpartition(TEMP_MARKER)
    pid, sep, _token = tail.partition("-")
    return int(pid) if sep and pid.isdigit() else None


def write_file_atomically(
    path: Path, data: bytes, *, mode: int = 0o666, exact: bool = False
) -> None:
    """Replace `path` with `data` so a crash leaves either the old file or the new one.

    The temporary file is created in the same folder with `mode` (reduced by the umask
    unless `exact`), flushed and fsynced, renamed over the target, and the folder fsynced
    so the rename itself survives a power cut. A symlink is followed, not replaced.
    """
    if path.is_symlink():
        path = path.resolve()
    folder = path.parent
    temp = folder / temp_name(path.name, secrets.token_hex(6))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(temp, flags, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            if exact and hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_folder(folder)


def fsync_folder(folder: Path) -> None:
    """Make a rename durable; folders cannot be opened on some platforms, which is fine."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
