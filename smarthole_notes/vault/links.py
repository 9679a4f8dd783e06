"""Finding, resolving and rewriting internal links the way Obsidian does.

Forms handled: `[[Name]]`, `[[Name|alias]]`, `[[Name#Heading]]`, `[[Name#^block]]`, embeds
`![[Name]]`, path-style `[[Folder/Name]]`, `[[Name.md]]`, and Markdown links
`[text](Folder/My%20Name.md)`, `[text](<Folder/My Name.md>)`, `![alt](img.png)`, relative
`[text](../Name.md)`. Links inside fenced code blocks and inline code spans are never touched.

Rewriting after a move follows one rule: a link is rewritten only when the file it pointed to
before the move is not the file it would point to afterwards (the moved file at its new place,
or an unmoved file whose link broke because the linking note moved). The new link uses the
vault's link format (Obsidian's `newLinkFormat`: shortest unambiguous form by default).
"""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote

from smarthole_notes.vault.names import has_extension, is_markdown, lookup_key

_FENCE_OPEN = re.compile(r"^[ \t>]*(`{3,}|~{3,})(.*)$")
_WIKI = re.compile(r"(!?)\[\[([^\[\]\n]+?)\]\]")
_MD = re.compile(
    r"(!?)\[((?:[^\[\]\n]|\[[^\[\]\n]*\])*)\]"
    r"\(\s*(<[^<>\n]*>|(?:[^()\s]|\([^()\s]*\))+)(\s+(?:\"[^\"\n]*\"|'[^'\n]*'))?\s*\)"
)
_SCHEME = re.compile(r"\A[A-Za-z][A-Za-z0-9+.\-]*:")
_BACKTICKS = re.compile(r"`+")

LinkStyle = str  # "shortest" | "relative" | "absolute"


@dataclass(frozen=True, slots=True)
class Link:
    start: int
    end: int
    wiki: bool
    embed: bool
    target: str  # decoded path part, as written (no subpath, no alias)
    subpath: str  # "#Heading", "#^block" (wiki), or the raw "#fragment" (Markdown), or ""
    alias: str  # wiki: "|alias" or "\\|alias" as written; Markdown: the link text
    angle: bool = False  # Markdown: target written in <...>
    title: str = ""  # Markdown: ` "title"` as written


def code_ranges(text: str) -> list[tuple[int, int]]:
    """Character ranges of fenced code blocks and inline code spans."""
    ranges: list[tuple[int, int]] = []
    segments: list[tuple[int, int]] = []  # text outside fences
    position = 0
    segment_start = 0
    fence: tuple[str, int] | None = None
    fence_start = 0
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\r\n")
        if fence is None:
            match = _FENCE_OPEN.match(stripped)
            if match and not (match.group(1)[0] == "`" and "`" in match.group(2)):
                fence = (match.group(1)[0], len(match.group(1)))
                fence_start = position
                segments.append((segment_start, position))
        else:
            body = stripped.lstrip(" \t>")
            char, size = fence
            run = len(body) - len(body.lstrip(char))
            if run >= size and body.strip(char).strip() == "":
                ranges.append((fence_start, position + len(line)))
                fence = None
                segment_start = position + len(line)
        position += len(line)
    if fence is not None:
        ranges.append((fence_start, len(text)))
    else:
        segments.append((segment_start, len(text)))
    for start, end in segments:
        ranges.extend(_code_spans(text, start, end))
    ranges.sort()
    return ranges


def _code_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    runs = list(_BACKTICKS.finditer(text, start, end))
    index = 0
    while index < len(runs):
        opening = runs[index]
        size = len(opening.group())
        for later in range(index + 1, len(runs)):
            if len(runs[later].group()) == size:
                spans.append((opening.start(), runs[later].end()))
                index = later
                break
        index += 1
    return spans


def _inside(ranges: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(low < end and start < high for low, high in ranges)


def find_links(text: str) -> list[Link]:
    """Every internal link outside code, in document order."""
    code = code_ranges(text)
    links: list[Link] = []
    for match in _WIKI.finditer(text):
        if _inside(code, match.start(), match.end()):
            continue
        inner = match.group(2)
        pipe = inner.find("|")
        if pipe >= 0:
            left, alias = inner[:pipe], inner[pipe:]
            if left.endswith("\\"):  # `[[Name\|alias]]` inside a table
                left, alias = left[:-1], "\\" + alias
        else:
            left, alias = inner, ""
        hash_at = left.find("#")
        target, subpath = (left[:hash_at], left[hash_at:]) if hash_at >= 0 else (left, "")
        if not target.strip():
            continue  # [[#Heading]]: a link inside the same note
        links.append(
            Link(match.start(), match.end(), True, match.group(1) == "!", target, subpath, alias)
        )
    for match in _MD.finditer(text):
        if _inside(code, match.start(), match.end()):
            continue
        raw = match.group(3)
        angle = raw.startswith("<")
        if angle:
            raw = raw[1:-1]
        if not raw or raw.startswith(("#", "//")) or _SCHEME.match(raw):
            continue
        hash_at = raw.find("#")
        path_part, fragment = (raw[:hash_at], raw[hash_at:]) if hash_at >= 0 else (raw, "")
        target = unquote(path_part)
        if not target.strip():
            continue
        links.append(
            Link(
                match.start(),
                match.end(),
                False,
                match.group(1) == "!",
                target,
                fragment,
                match.group(2),
                angle,
                match.group(4) or "",
            )
        )
    links.sort(key=lambda link: (link.start, not link.wiki))
    kept: list[Link] = []
    for link in links:  # `[[a]](b)` must not yield two overlapping links
        if kept and link.start < kept[-1].end:
            continue
        kept.append(link)
    return kept


class LinkIndex:
    """Resolves link targets to vault files, case-insensitively, as Obsidian does."""

    def __init__(self, files: Iterable[str]) -> None:
        self.files: set[str] = set()
        self._by_path: dict[str, str] = {}
        self._by_base: dict[str, list[str]] = defaultdict(list)
        self._by_note: dict[str, list[str]] = defaultdict(list)
        for path in files:
            self.add(path)

    def add(self, path: str) -> None:
        self.files.add(path)
        self._by_path[lookup_key(path)] = path
        base = posixpath.basename(path)
        self._by_base[lookup_key(base)].append(path)
        if is_markdown(base):
            self._by_note[lookup_key(base[:-3])].append(path)

    def remapped(self, moved: dict[str, str]) -> LinkIndex:
        return LinkIndex(moved.get(path, path) for path in self.files)

    def _exact(self, path: str) -> str | None:
        normal = posixpath.normpath(path)
        if normal.startswith("../") or normal == "..":
            return None
        normal = normal.lstrip("/")
        found = self._by_path.get(lookup_key(normal))
        if found is None and not has_extension(posixpath.basename(normal)):
            found = self._by_path.get(lookup_key(normal + ".md"))
        return found

    @staticmethod
    def _pick(candidates: list[str], source_dir: str) -> str | None:
        if not candidates:
            return None
        if len(candidates) == 1:
            return candidates[0]
        beside = [c for c in candidates if posixpath.dirname(c) == source_dir]
        if beside:
            return sorted(beside)[0]
        return sorted(candidates, key=lambda c: (c.count("/"), c))[0]

    def unique(self, name: str) -> bool:
        """Whether a bare name (no folder) designates exactly one file in the vault."""
        key = lookup_key(name)
        if has_extension(name):
            return len(self._by_base.get(key, [])) == 1
        return len(self._by_note.get(key, [])) == 1 and not self._by_base.get(key)

    def resolve(self, target: str, source: str) -> str | None:
        """The file a link from note `source` to `target` points to, or None if broken."""
        text = target.strip().replace("\\", "/")
        if not text:
            return None
        source_dir = posixpath.dirname(source)
        if text.startswith(("./", "../")):
            return self._exact(posixpath.join(source_dir, text))
        if "/" in text.strip("/"):
            found = self._exact(text) or self._exact(posixpath.join(source_dir, text))
            if found is not None:
                return found
            base = posixpath.basename(text.rstrip("/"))
            key = lookup_key(text.strip("/"))
            pool = self._by_base.get(lookup_key(base), []) + self._by_note.get(lookup_key(base), [])
            suffixes = [
                c
                for c in dict.fromkeys(pool)
                if lookup_key(c).endswith("/" + key) or lookup_key(c).endswith("/" + key + ".md")
            ]
            return self._pick(suffixes, source_dir)
        name = text.strip("/")
        if not has_extension(name) or not is_markdown(name):
            notes = self._by_note.get(lookup_key(name), [])
            if notes and not has_extension(name):
                return self._pick(notes, source_dir)
        return self._pick(self._by_base.get(lookup_key(name), []), source_dir)


def _relative(path: str, source: str) -> str:
    rel = posixpath.relpath(path, posixpath.dirname(source) or ".")
    return rel if rel.startswith("../") else "./" + rel if "/" in rel else rel


def link_path(
    target: str, source: str, index: LinkIndex, style: LinkStyle, *, keep_extension: bool
) -> str:
    """The text to write for a link from `source` to file `target` in the given style."""
    strip = is_markdown(target) and not keep_extension
    shown = target[:-3] if strip else target
    if style == "relative":
        candidate = _relative(shown, source)
        if index.resolve(candidate, source) == target:
            return candidate
    elif style == "shortest":
        candidate = posixpath.basename(shown)
        if index.unique(candidate) and index.resolve(candidate, source) == target:
            return candidate
    if index.resolve(shown, source) == target:
        return shown
    return target


_MD_UNSAFE = {" ": "%20", "(": "%28", ")": "%29", "<": "%3C", ">": "%3E", "#": "%23", "%": "%25"}


def encode_markdown_target(path: str) -> str:
    """Encode what would break a Markdown link (spaces, parentheses, `#`, `%`)."""
    return "".join(_MD_UNSAFE.get(ch, ch) for ch in path)


def render(link: Link, new_path: str) -> str:
    if link.wiki:
        return f"{'!' if link.embed else ''}[[{new_path}{link.subpath}{link.alias}]]"
    if link.angle:
        destination = "<" + new_path.replace("<", "%3C").replace(">", "%3E") + link.subpath + ">"
    else:
        destination = encode_markdown_target(new_path) + link.subpath
    return f"{'!' if link.embed else ''}[{link.alias}]({destination}{link.title})"


def rewrite_links(
    text: str,
    *,
    source_old: str,
    source_new: str,
    old_index: LinkIndex,
    new_index: LinkIndex,
    moved: dict[str, str],
    style: LinkStyle,
) -> tuple[str, int]:
    """Rewrite the links of one note after a move. Returns the new text and links changed."""
    pieces: list[str] = []
    last = 0
    changed = 0
    for link in find_links(text):
        before = old_index.resolve(link.target, source_old)
        if before is None:
            continue  # a broken link stays as it is
        expected = moved.get(before, before)
        if new_index.resolve(link.target, source_new) == expected:
            continue
        written = link.target.strip()
        link_style = "relative" if written.startswith(("./", "../")) else style
        keep_extension = not link.wiki or is_markdown(written)
        new_path = link_path(
            expected, source_new, new_index, link_style, keep_extension=keep_extension
        )
        replacement = render(link, new_path)
        if replacement == text[link.start : link.end]:
            continue
        pieces.append(text[last : link.start])
        pieces.append(replacement)
        last = link.end
        changed += 1
    if not changed:
        return text, 0
    pieces.append(text[last:])
    return "".join(pieces), changed


def mentions(moved: dict[str, str]) -> list[str]:
    """Literal words a note must contain to possibly link to a moved file (a prefilter)."""
    words: set[str] = set()
    for old, new in moved.items():
        for path in (old, new):
            base = posixpath.basename(path)
            stem = base[:-3] if is_markdown(base) else base
            words.update({stem, encode_markdown_target(stem), quote(stem)})
    return sorted(words)
