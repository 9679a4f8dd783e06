"""Finding and rewriting the internal links of a note.

Forms: `[[Name]]`, `[[Name|alias]]`, `[[Name#Heading]]`, `[[Name#^block]]`, embeds `![[Name]]`,
path forms `[[Folder/Name]]`, `[[./Name]]`, `[[../Name]]`, `[[Name.md]]`, and Markdown links
`[text](Folder/My%20Name.md)`, `[text](<Folder/My Name>)`, `![alt](img.png)`.

Where links can be is decided by a CommonMark parser (markdown-it-py): fenced and indented
code blocks and raw HTML blocks hold none (so a fence line inside `<pre>` opens nothing), and
a block's inline text is scanned with Obsidian's inline rules, where whichever construct
starts first wins: `` `[[Name]]` `` is code, while `[[Name|`code`]]` is a link. YAML front
matter is scanned for wiki links only, as Obsidian reads links in properties.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from smarthole_notes.vault.resolver import LinkFormat, LinkResolver, link_text, lookup_keys

if TYPE_CHECKING:
    from markdown_it import MarkdownIt


@functools.cache
def _parser() -> MarkdownIt:
    """markdown-it, blocks only; made at first use (importing it is not free at start-up)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").disable(["inline", "text_join"])


_NEWLINE = re.compile(r"\r\n|\r|\n")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(?:.*?\r?\n)??(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)
_WIKI = re.compile(r"(!?)\[\[([^\[\]\n\r]+?)\]\]")
_SCHEME = re.compile(r"\A[A-Za-z][A-Za-z0-9+.\-]*:")
_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


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
    title: str = ""  # Markdown: ` "title"` as written, with the blanks before it


def _line_starts(text: str) -> list[int]:
    starts = [0]
    starts.extend(match.end() for match in _NEWLINE.finditer(text))
    return starts


def _inline_regions(text: str) -> Iterator[tuple[int, int]]:
    """Character ranges holding inline text (paragraphs, headings, list items, quotes)."""
    starts = _line_starts(text)
    starts.append(len(text))
    seen: set[tuple[int, int]] = set()
    for token in _parser().parse(text):
        if token.type != "inline" or token.map is None:
            continue
        first, last = token.map
        if (first, last) in seen:
            continue
        seen.add((first, last))
        yield starts[first], starts[min(last, len(starts) - 1)]


def find_links(text: str) -> list[Link]:
    """Every internal link of a note outside code and raw HTML, in document order."""
    links: list[Link] = []
    offset = 0
    front = _FRONT_MATTER.match(text)
    if front is not None:
        for match in _WIKI.finditer(text, 0, front.end()):
            link = _wiki(match.start(), match.end(), match.group(1) == "!", match.group(2))
            if link is not None:
                links.append(link)
        offset = front.end()
    body = text[offset:]
    for start, end in _inline_regions(body):
        _scan(text, offset + start, offset + end, links)
    return links


def _wiki(start: int, end: int, embed: bool, inner: str) -> Link | None:
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
        return None  # [[#Heading]]: a link inside the same note
    return Link(start, end, True, embed, target.strip(), subpath, alias)


def _backtick_run(text: str, at: int, end: int) -> int:
    stop = at
    while stop < end and text[stop] == "`":
        stop += 1
    return stop


def _code_span_end(text: str, at: int, end: int) -> int:
    """End of the code span opening at `at`, or the end of its backticks if it never closes."""
    run_end = _backtick_run(text, at, end)
    size = run_end - at
    search = run_end
    while True:
        found = text.find("`", search, end)
        if found < 0:
            return run_end
        close = _backtick_run(text, found, end)
        if close - found == size:
            return close
        search = close


_OPENER = re.compile(r"[\\`\[]|!\[")
"""Where a construct can start: an escape, a code span, a link, an embed."""


def _scan(text: str, start: int, end: int, links: list[Link]) -> None:
    """Find links in one block's inline text; the construct that starts first wins."""
    at = start
    while at < end:
        opener = _OPENER.search(text, at, end)
        if opener is None:
            return
        at = opener.start()
        ch = text[at]
        if ch == "\\" and at + 1 < end and text[at + 1] in _PUNCTUATION:
            at += 2
        elif ch == "`":
            at = _code_span_end(text, at, end)
        elif ch == "[" or (ch == "!" and text.startswith("[", at + 1)):
            found = _link_at(text, at, end)
            if found is None:
                at += 1
                continue
            link, stop = found
            if link is not None:
                links.append(link)
            at = stop
        else:
            at += 1


def _link_at(text: str, at: int, end: int) -> tuple[Link | None, int] | None:
    """The wiki or Markdown link starting at `at` (None for an external one) and its end."""
    embed = text[at] == "!"
    bracket = at + 1 if embed else at
    if text.startswith("[[", bracket):
        match = _WIKI.match(text, at, end)
        if match is not None and match.group(1) == ("!" if embed else ""):
            return _wiki(at, match.end(), embed, match.group(2)), match.end()
    return _markdown_link(text, at, bracket, end, embed)


def _markdown_link(
    text: str, at: int, bracket: int, end: int, embed: bool
) -> tuple[Link | None, int] | None:
    # Link text: balanced brackets; code spans and escapes inside it are skipped.
    depth = 0
    pos = bracket
    while pos < end:
        ch = text[pos]
        if ch == "\\" and pos + 1 < end and text[pos + 1] in _PUNCTUATION:
            pos += 2
            continue
        if ch == "`":
            pos = _code_span_end(text, pos, end)
            continue
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                break
        pos += 1
    else:
        return None
    label_end = pos
    if not text.startswith("(", label_end + 1):
        return None
    found = _destination(text, label_end + 2, end)
    if found is None:
        return None
    raw, angle, title, stop = found
    if not raw or raw.startswith(("#", "//")) or _SCHEME.match(raw):
        return None, stop
    hash_at = raw.find("#")
    path_part, fragment = (raw[:hash_at], raw[hash_at:]) if hash_at >= 0 else (raw, "")
    target = unquote(path_part)
    if not target.strip():
        return None, stop
    label = text[bracket + 1 : label_end]
    return Link(at, stop, False, embed, target, fragment, label, angle, title), stop


def _destination(text: str, pos: int, end: int) -> tuple[str, bool, str, int] | None:
    """A Markdown link's `(destination "title")` from just after `(`: raw destination,
    whether it is in `<...>`, the title as written, and the end after `)`."""
    while pos < end and text[pos] in " \t\r\n":
        pos += 1
    angle = text.startswith("<", pos)
    if angle:
        close = pos + 1
        while close < end and text[close] not in "<>\r\n":
            close += 2 if text[close] == "\\" and close + 1 < end else 1
        if close >= end or text[close] != ">":
            return None
        raw = text[pos + 1 : close]
        pos = close + 1
    else:
        begin, depth = pos, 0
        while pos < end:
            ch = text[pos]
            if ch == "\\" and pos + 1 < end and text[pos + 1] in _PUNCTUATION:
                pos += 2
                continue
            if ch <= " " or ch == "\x7f":
                break
            if ch == "(":
                depth += 1
            elif ch == ")":
                if depth == 0:
                    break
                depth -= 1
            pos += 1
        raw = text[begin:pos]
    title_start = pos
    while pos < end and text[pos] in " \t\r\n":
        pos += 1
    if pos < end and text[pos] in "\"'(" and pos > title_start:
        closer = ")" if text[pos] == "(" else text[pos]
        close = text.find(closer, pos + 1, end)
        if close < 0:
            return None
        pos = close + 1
        while pos < end and text[pos] in " \t\r\n":
            pos += 1
    if pos >= end or text[pos] != ")":
        return None
    return raw, angle, text[title_start:pos], pos + 1


def exact_keys(links: list[Link]) -> frozenset[str]:
    """The lookup names of these links (see `link_keys` for the cheap superset)."""
    return frozenset(key for link in links for key in lookup_keys(link.target))


def link_keys(text: str) -> frozenset[str]:
    """The lookup names (see `resolver.lookup_keys`) of every link `find_links` could find.

    A superset, found without parsing blocks (links in code count too), so that indexing a
    whole vault stays cheap: it only decides which notes a move must read.
    """
    keys: set[str] = set()
    for match in _WIKI.finditer(text):
        link = _wiki(match.start(), match.end(), False, match.group(2))
        if link is not None:
            keys.update(lookup_keys(link.target))
    at = text.find("](")
    while at >= 0:
        found = _destination(text, at + 2, len(text))
        if found is not None:
            raw = found[0]
            path = unquote(raw.split("#", 1)[0])
            if path.strip():
                keys.update(lookup_keys(path))
        at = text.find("](", at + 2)
    return frozenset(keys)


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
    before: LinkResolver,
    after: LinkResolver,
    moved: dict[str, str],
    style: LinkFormat,
    links: list[Link] | None = None,
) -> tuple[str, int]:
    """Rewrite a note's links so each opens after a move what it opened before.

    A link is rewritten only when it would otherwise open something else (or nothing); it
    is then written in the vault's link format (an explicitly relative link stays relative),
    keeping `.md` only if it was written. Broken links stay as they are. Returns the new text
    and the number of links changed. `links` are `find_links(text)` if already found.
    """
    pieces: list[str] = []
    last = 0
    changed = 0
    for link in find_links(text) if links is None else links:
        was = before.resolve(link.target, source_old)
        if was is None:
            continue
        expected = moved.get(was, was)
        if after.resolve(link.target, source_new) == expected:
            continue
        written = link.target
        new_path = link_text(
            expected,
            source_new,
            after,
            style,
            keep_extension=written.lower().endswith(".md") or not expected.lower().endswith(".md"),
            relative=written.startswith(("./", "../")),
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
