"""Obsidian's link resolution, and the link text Obsidian would write for a file.

`LinkResolver.destinations` follows Obsidian's `MetadataCache.getLinkpathDest` (as shipped in
1.12 and 1.13), because a move must keep every link opening the note Obsidian opens for it:

1. Candidates are the files whose *name* equals the link's last component, compared in lower
   case: first the name as written if it contains a dot (`[[pic.png]]`, `[[Node.js]]`), and
   only if no file has that name, the name plus `.md` (`[[Node.js]]` -> `Node.js.md`).
2. A bare name with a single candidate is that file.
3. `./x` and `../x` are taken against the linking note's folder (`..` stops at the root); a
   candidate at exactly that path wins. Otherwise the text, without a leading `/`, is
   compared with each candidate's whole path; an exact match wins.
4. A link starting with `/` resolves to nothing else.
5. Otherwise every candidate whose path *ends with* the text (by characters, not by folder)
   matches; those whose path starts with the linking note's folder come first, and within
   each group the shorter path (in UTF-16 units, as JavaScript counts) comes first.

Obsidian breaks the remaining ties by the order in which it indexed the files, which depends
on its history; here they are broken by path, so that results are reproducible. Links written
by `link_text` never rely on a tie.
"""

from __future__ import annotations

import posixpath
import unicodedata
from collections import ChainMap
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Literal

LinkFormat = Literal["shortest", "relative", "absolute"]


def fold(text: str) -> str:
    """Obsidian compares names in lower case; NFC so that both Unicode spellings agree."""
    return unicodedata.normalize("NFC", text).lower()


def _dirname(path: str) -> str:
    cut = path.rfind("/")
    return path[:cut] if cut >= 0 else ""


def _name(folded: str) -> str:
    return folded[folded.rfind("/") + 1 :]


def _units(path: str) -> int:
    """Length as JavaScript measures it (UTF-16 code units)."""
    return len(path) + sum(1 for ch in path if ord(ch) > 0xFFFF)


def lookup_name(path: str) -> str:
    """The name a file is looked up under: its lower-case file name."""
    return _name(fold(path))


def lookup_keys(linkpath: str) -> tuple[str, ...]:
    """The file names a link text can be looked up under (its candidate lists)."""
    folded = fold(linkpath)
    name = folded[folded.rfind("/") + 1 :]
    return (name, name + ".md") if "." in name else (name + ".md",)


class LinkResolver:
    """The vault's files, indexed by lower-case name, resolving links as Obsidian does."""

    def __init__(self, files: Iterable[str] = ()) -> None:
        self._by_name: MutableMapping[str, list[str]] = {}
        self._folded: MutableMapping[str, tuple[str, int]] = {}  # path -> (folded, units)
        for path in files:
            self.add(path)

    @property
    def files(self) -> Iterable[str]:
        return self._folded.keys()

    def __contains__(self, path: object) -> bool:
        return path in self._folded

    def add(self, path: str) -> None:
        if path in self._folded:
            return
        folded = fold(path)
        self._folded[path] = (folded, _units(path))
        name = _name(folded)
        same = self._by_name.get(name)
        if same is None:
            self._by_name[name] = [path]
        else:
            same.append(path)
            same.sort()

    def remove(self, path: str) -> None:
        found = self._folded.pop(path, None)
        if found is None:
            return
        name = _name(found[0])
        same = self._by_name.get(name, [])
        if path in same:
            same.remove(path)
        if not same:
            self._by_name.pop(name, None)

    def apply(self, moved: Mapping[str, str]) -> None:
        """Record moves that happened on disk."""
        for old in moved:
            self.remove(old)
        for new in moved.values():
            self.add(new)

    def after(self, moved: Mapping[str, str]) -> LinkResolver:
        """A view of the vault after `moved` (old -> new path), sharing this index.

        Only the candidate lists of the moved files' names differ, so a move costs what its
        names cost, not what the vault holds. (The view's `files` are not meaningful.)
        """
        changed: dict[str, list[str]] = {}

        def names(path: str) -> list[str]:
            name = _name(fold(path))
            if name not in changed:
                changed[name] = list(self._by_name.get(name, ()))
            return changed[name]

        for old in moved:
            same = names(old)
            if old in same:
                same.remove(old)
        paths: dict[str, tuple[str, int]] = {}
        for new in moved.values():
            names(new).append(new)
            paths[new] = (fold(new), _units(new))
        for same in changed.values():
            same.sort()
        view = LinkResolver()
        view._by_name = ChainMap(changed, self._by_name)
        view._folded = ChainMap(paths, self._folded)
        return view

    def _candidates(self, name: str) -> list[str]:
        return self._by_name.get(name) or []

    def destinations(self, linkpath: str, source: str) -> list[str]:
        """Every file `linkpath` may mean from note `source`, best first (Obsidian's order)."""
        text = fold(linkpath)
        name = text[text.rfind("/") + 1 :]
        candidates: list[str] = self._candidates(name) if "." in name else []
        if not candidates:
            text = fold(linkpath + ".md")
            name = text[text.rfind("/") + 1 :]
            candidates = self._candidates(name)
            if not candidates:
                return []
        if name == text and len(candidates) == 1:
            return list(candidates)
        folded = self._folded
        folder = fold(_dirname(source))
        if text.startswith(("./", "../")):
            if text.startswith("./../"):
                text = text[2:]
            if text.startswith("./"):
                if folder:
                    folder += "/"
                text = folder + text[2:]
            else:
                while text.startswith("../"):
                    text = text[3:]
                    folder = _dirname(folder)
                if folder:
                    folder += "/"
                text = folder + text
            for path in candidates:
                if folded[path][0] == text:
                    return [path]
        if text.startswith("/"):
            text = text[1:]
        for path in candidates:
            if folded[path][0] == text:
                return [path]
        if linkpath.startswith("/"):
            return []
        near: list[tuple[int, str]] = []
        far: list[tuple[int, str]] = []
        for path in candidates:
            key, units = folded[path]
            if key.endswith(text):
                (near if key.startswith(folder) else far).append((units, path))
        near.sort()
        far.sort()
        return [path for _, path in near] + [path for _, path in far]

    def resolve(self, linkpath: str, source: str) -> str | None:
        """The file a link from note `source` opens, or None if it is broken."""
        if not linkpath:
            return None
        found = self.destinations(linkpath, source)
        return found[0] if found else None

    def unique(self, linkpath: str, source: str, target: str) -> bool:
        """Whether `linkpath` means `target` and nothing else (Obsidian's test for a short link)."""
        return self.destinations(linkpath, source) == [target]


def _without_md(path: str, keep_extension: bool) -> str:
    return path if keep_extension or not path.lower().endswith(".md") else path[:-3]


def obsidian_relative(path: str, source: str) -> str:
    """Obsidian's relative form: `../` per folder up, no `./` for what lies below."""
    ups = ""
    folder = _dirname(source)
    while folder and not path.startswith(folder + "/"):
        ups = "../" + ups
        folder = _dirname(folder)
    return ups + path[len(folder) + 1 :] if folder else ups + path


def explicit_relative(path: str, source: str) -> str:
    """`./x` or `../x`: a path that is only ever taken against the linking note's folder."""
    rel = posixpath.relpath(path, _dirname(source) or ".")
    return rel if rel.startswith("../") else "./" + rel


def link_text(
    target: str,
    source: str,
    resolver: LinkResolver,
    style: LinkFormat,
    *,
    keep_extension: bool,
    relative: bool = False,
) -> str:
    """The path to write in a link from `source` so that it opens `target`.

    The first form of the vault's link format (or of an explicitly relative link, with
    `relative`) that Obsidian resolves to `target` is used; failing that the full path,
    then the full path with its extension, which always resolves.
    """
    shown = _without_md(target, keep_extension)
    forms: list[str] = []
    if relative:
        forms.append(explicit_relative(shown, source))
    elif style == "relative":
        forms += [obsidian_relative(shown, source), explicit_relative(shown, source)]
    elif style == "shortest":
        name = shown[shown.rfind("/") + 1 :]
        if resolver.unique(name.split("#", 1)[0], source, target):
            return name
    forms += [shown, target]
    for form in forms:
        if resolver.resolve(form, source) == target:
            return form
    return target
