"""Confinement: turning a path from the model into a checked location inside the vault.

`PathResolver.resolve` is the only producer of `VaultPath`, and every file operation of the
layer takes a `VaultPath`, so no operation can touch a path that was not checked.

Resolution, in order:
1. parse the text: `/` separators (a `\\` counts as one), leading/trailing slashes and `.`
   ignored, `..` applied lexically and refused when it climbs above the vault; NUL bytes,
   control characters, `~`, drive letters and over-long names refused; names NFC-normalised;
2. protected names (`.obsidian`, `.smarthole`, `.git`, and `.trash` for writes) refused in
   any case, Unicode form or with invisible characters;
3. walk the components on disk from the resolved vault root, using a unique case-insensitive
   match when the exact name does not exist, and resolving every symbolic link met on the
   way: a link whose target is outside the vault (or inside a protected folder) is refused;
4. check the fully resolved result again with `is_relative_to` on the resolved root, which
   also defeats sibling folders sharing the vault's name as a prefix (`notes_evil`).
"""

from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass
from pathlib import Path

from smarthole_notes.vault.errors import AmbiguousPathError, NotFoundError, RefusedPathError
from smarthole_notes.vault.names import (
    MAX_PATH_BYTES,
    TRASH_FOLDER,
    check_component,
    has_extension,
    lookup_key,
    nfc,
    protected_name,
)

_DRIVE = re.compile(r"\A[A-Za-z]:")


class Access(enum.Enum):
    """What the caller will do with the path; decides whether `.trash/` is allowed."""

    READ = "read"  # read, list, search, info: `.trash/` allowed
    WRITE = "write"  # create, modify, delete, destination of a move: `.trash/` refused
    MOVE_SOURCE = "move_source"  # source of a move: `.trash/` allowed (restoring a note)


class Want(enum.Enum):
    """What kind of entry the caller expects, for the `.md` completion rules."""

    ANY = "any"
    FILE = "file"
    NEW_NOTE = "new_note"  # a note to create or overwrite: `.md` added when no extension


_TOKEN = object()


class VaultPath:
    """A location inside the vault that passed every check. Only `PathResolver` makes these.

    `rel` is the vault-relative path with `/` separators (`""` for the root), using the
    names as found on disk. `entry` is the directory entry itself (its parent resolved),
    which is what a move or delete acts on; `real` is the fully resolved path, which is
    what reading and writing content acts on. Both are inside the vault.
    """

    __slots__ = ("entry", "exists", "is_dir", "is_symlink", "real", "rel")

    def __init__(
        self,
        token: object,
        *,
        rel: str,
        entry: Path,
        real: Path,
        exists: bool,
        is_dir: bool,
        is_symlink: bool,
    ) -> None:
        if token is not _TOKEN:
            raise TypeError("VaultPath values are produced only by PathResolver.resolve")
        self.rel = rel
        self.entry = entry
        self.real = real
        self.exists = exists
        self.is_dir = is_dir
        self.is_symlink = is_symlink

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1]

    @property
    def is_root(self) -> bool:
        return self.rel == ""

    @property
    def display(self) -> str:
        """How the model should see this path: folders end in `/`."""
        if self.is_root:
            return "/ (the vault root)"
        return self.rel + "/" if self.is_dir else self.rel

    def __repr__(self) -> str:
        return f"VaultPath({self.rel!r})"


@dataclass(frozen=True, slots=True)
class ParsedPath:
    components: tuple[str, ...]
    absolute: bool
    trailing_slash: bool


def parse_path(raw: str) -> ParsedPath:
    """Split and validate the text of a path, without touching the disk."""
    if not isinstance(raw, str):
        raise RefusedPathError("the path must be a string")
    if "\x00" in raw:
        raise RefusedPathError("the path contains a NUL byte; give a plain vault-relative path")
    text = raw.strip().replace("\\", "/")
    if _DRIVE.match(text):
        raise RefusedPathError(
            f"{raw!r} is an absolute Windows path; give a path relative to the vault"
        )
    absolute = text.startswith("/")
    trailing_slash = text.endswith("/") and text.strip("/") != ""
    parts: list[str] = []
    pieces = [p for p in text.split("/") if p not in ("", ".")]
    if pieces and pieces[0].startswith("~"):
        raise RefusedPathError(
            f"{raw!r} refers to a home folder (~); only paths inside the vault are allowed, "
            "relative to the vault root"
        )
    for piece in pieces:
        if piece == "..":
            if not parts:
                raise RefusedPathError(
                    f"{raw!r} climbs out of the vault with '..'; give a path inside the vault"
                )
            parts.pop()
            continue
        name = nfc(piece)
        problem = check_component(name)
        if problem is not None:
            raise RefusedPathError(problem)
        parts.append(name)
    if len("/".join(parts).encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise RefusedPathError(f"the path is too long (at most {MAX_PATH_BYTES} bytes)")
    return ParsedPath(tuple(parts), absolute, trailing_slash)


def _protected_message(name: str, which: str) -> str:
    if which == TRASH_FOLDER:
        return (
            f"'{name}' is the vault's trash: nothing can be written there. Use delete_file to "
            "move a note to the trash; notes in the trash can be read or moved back out."
        )
    return f"'{name}' is a protected folder ({which}/) that vault tools never read or change"


def check_protected(components: tuple[str, ...] | list[str], access: Access) -> None:
    """Refuse a path with a protected component (any case, Unicode form, invisible chars)."""
    for index, name in enumerate(components):
        # `.trash/` is only off limits for writes, and only as the top-level trash folder
        # matters for restoring; refuse it anywhere for writes to stay simple and safe.
        which = protected_name(name, include_trash=access is Access.WRITE)
        if which is not None:
            shown = "/".join(components[: index + 1])
            raise RefusedPathError(_protected_message(shown, which))


class PathResolver:
    """Resolves and checks paths against one vault root."""

    def __init__(self, root: Path) -> None:
        resolved = Path(os.path.realpath(root))
        if not resolved.is_dir():
            raise NotFoundError(f"the vault folder {root} does not exist")
        self.root = resolved

    # -- helpers ---------------------------------------------------------------------

    def inside(self, path: Path) -> bool:
        """Whether an already resolved path is the root or below it."""
        return path == self.root or path.is_relative_to(self.root)

    def rel_of(self, real: Path) -> str:
        return "" if real == self.root else real.relative_to(self.root).as_posix()

    def _check_link(self, entry: Path, shown: str, access: Access) -> Path:
        """Resolve the symbolic link `entry`; refuse it if it leaves the vault."""
        target = Path(os.path.realpath(entry))
        if not self.inside(target):
            raise RefusedPathError(
                f"'{shown}' is a symbolic link to a location outside the vault; vault tools "
                "do not follow it"
            )
        check_protected(self.rel_of(target).split("/") if target != self.root else [], access)
        return target

    def _find(self, directory: Path, name: str, shown_parent: str) -> str | None:
        """The on-disk name in `directory` matching `name`, exactly or case-insensitively."""
        if os.path.lexists(directory / name):
            return name
        try:
            entries = os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            return None
        key = lookup_key(name)
        matches = sorted(e for e in entries if lookup_key(e) == key)
        if not matches:
            return None
        if len(matches) > 1:
            prefix = f"{shown_parent}/" if shown_parent else ""
            listed = ", ".join(f"'{prefix}{m}'" for m in matches)
            raise AmbiguousPathError(
                f"'{prefix}{name}' matches several entries that differ only in case: {listed}. "
                "Give the exact name."
            )
        return matches[0]

    def _absolute_to_relative(self, raw: str, parsed: ParsedPath) -> tuple[str, ...]:
        """Accept `/x/y` as vault-relative when it points into the vault, else refuse."""
        as_given = Path(os.path.realpath("/" + "/".join(parsed.components)))
        if parsed.components and self.inside(as_given) and as_given != self.root:
            return tuple(self.rel_of(as_given).split("/"))
        if parsed.components and self._find(self.root, parsed.components[0], "") is not None:
            return parsed.components
        raise RefusedPathError(
            f"{raw!r} is an absolute path; give a path relative to the vault root without "
            "a leading '/' (for example 'Projects/Plan.md')"
        )

    # -- the one entry point ---------------------------------------------------------

    def resolve(self, raw: str, access: Access, want: Want = Want.ANY) -> VaultPath:
        parsed = parse_path(raw)
        components = parsed.components
        if parsed.absolute and components:
            components = self._absolute_to_relative(raw, parsed)
        if want is Want.NEW_NOTE and components and not has_extension(components[-1]):
            last_name = components[-1] + ".md"
            problem = check_component(last_name)
            if problem is not None:
                raise RefusedPathError(problem)
            components = (*components[:-1], last_name)
        check_protected(components, access)

        current = self.root  # the resolved folder the walk is in
        shown: list[str] = []
        is_symlink = False
        entry = self.root
        exists = True
        for index, name in enumerate(components):
            last = index == len(components) - 1
            parent_shown = "/".join(shown)
            found = self._find(current, name, parent_shown)
            # "read Projects/Plan" means Projects/Plan.md (for FILE, also when a folder
            # `Plan/` sits beside the note)
            if (
                last
                and want is not Want.NEW_NOTE
                and not has_extension(name)
                and (found is None or (want is Want.FILE and (current / found).is_dir()))
            ):
                note = self._find(current, name + ".md", parent_shown)
                found = note if note is not None else found
            if found is None:
                tail = list(components[index:])
                check_protected(shown + tail, access)
                entry = current.joinpath(*tail)
                shown.extend(tail)
                exists = False
                break
            shown.append(found)
            check_protected(shown, access)
            entry = current / found
            is_symlink = entry.is_symlink()
            target = self._check_link(entry, "/".join(shown), access) if is_symlink else entry
            if not last:
                if not target.is_dir():
                    raise NotFoundError(f"'{'/'.join(shown)}' is a file, not a folder")
                current = target

        if exists:
            real = Path(os.path.realpath(entry))
            if not self.inside(real):  # pragma: no cover - refused by _check_link already
                raise RefusedPathError(f"'{'/'.join(shown)}' resolves outside the vault")
            real_rel = self.rel_of(real)
            check_protected(real_rel.split("/") if real_rel else [], access)
            is_dir = real.is_dir()
        else:
            real = entry
            is_dir = False
            is_symlink = False
        # Belt and braces: the entry's resolved parent must be inside the vault too.
        if entry != self.root and not self.inside(Path(os.path.realpath(entry.parent))):
            raise RefusedPathError(f"{raw!r} resolves outside the vault")
        return VaultPath(
            _TOKEN,
            rel="/".join(shown),
            entry=entry,
            real=real,
            exists=exists,
            is_dir=is_dir,
            is_symlink=is_symlink,
        )
