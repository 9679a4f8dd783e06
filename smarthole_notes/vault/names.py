"""Name normalisation: the comparison keys every other module uses.

Two keys exist. The *lookup key* (NFC, casefolded) decides when two names are "the same
note" for case-insensitive lookup. The *protection key* is more aggressive (NFKC, format
characters such as zero-width spaces removed, casefolded, surrounding blanks and trailing
dots removed) so that no spelling of `.obsidian` slips past the protected-folder check.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from smarthole_notes.durable import TEMP_MARKER

PROTECTED_ALWAYS = frozenset({".obsidian", ".smarthole", ".git"})
TRASH_FOLDER = ".trash"
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4000

_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,10}\Z")


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def lookup_key(name: str) -> str:
    """Key under which names are equal for case-insensitive lookup (NFC + casefold)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


@functools.lru_cache(maxsize=65536)
def protection_key(name: str) -> str:
    """Key for comparing a name against the protected folder names."""
    text = unicodedata.normalize("NFKC", name)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = unicodedata.normalize("NFKC", text.casefold())
    return text.strip().rstrip(". ").strip()


def protected_name(name: str, *, include_trash: bool) -> str | None:
    """The protected folder `name` stands for, or None."""
    if name.isascii() and not name.lstrip().startswith("."):
        return None  # fast path: every protected key starts with a dot
    key = protection_key(name)
    if key in PROTECTED_ALWAYS:
        return key
    if include_trash and key == TRASH_FOLDER:
        return key
    return None


def is_temp_name(name: str) -> bool:
    """A temporary file of an atomic write: never listed, searched or shown."""
    return name.startswith(".") and TEMP_MARKER in name


def is_hidden(name: str) -> bool:
    """Names Obsidian does not show (dot-files and dot-folders) and protected names."""
    return name.startswith(".") or protected_name(name, include_trash=True) is not None


def has_extension(name: str) -> bool:
    """Whether `name` ends in something that looks like a file extension (`.md`, `.png`).

    `Meeting 2024.05.01` and `Dr. Smith` do not: an extension has a letter and no spaces.
    """
    match = _EXTENSION.search(name)
    return match is not None and match.start() > 0 and any(c.isalpha() for c in match.group())


def is_markdown(name: str) -> bool:
    return name.lower().endswith(".md")


def check_component(name: str) -> str | None:
    """Why `name` cannot be a file or folder name, or None if it can."""
    if "\x00" in name:
        return "the path contains a NUL byte"
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        return f"the name {name!r} contains a control character"
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_BYTES:
        return (
            f"the name {name[:40]!r}... is too long ({size} bytes in UTF-8; at most "
            f"{MAX_NAME_BYTES}); use a shorter name"
        )
    return None
