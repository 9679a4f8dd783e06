"""An independent model of how Obsidian resolves a link, for checking the product against.

Written from the rule (Obsidian 1.12/1.13 `getLinkpathDest`), not from the product's code, and
deliberately brute force: every query looks at every file. The rule:

- the candidates are the files named like the link's last part, compared in lower case; the
  name as written if it has a dot and some file bears it, else that name plus `.md`;
- a bare name with one candidate means it;
- `./` and `../` are taken from the linking note's folder (never above the vault root), and
  a candidate at exactly that path wins; then a candidate whose whole path is the text (a
  leading `/` ignored) wins; a text with a leading `/` means nothing else;
- otherwise the candidates whose path ends with the text; those whose path begins with the
  linking note's folder first; then the shortest path, counted in UTF-16 units; then by path.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from urllib.parse import unquote


def _low(text: str) -> str:
    return unicodedata.normalize("NFC", text).lower()


def _js_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def model_resolve(files: Iterable[str], linkpath: str, source: str) -> str | None:
    every = sorted(files)

    def named(name: str) -> list[str]:
        return [f for f in every if _low(f).split("/")[-1] == name]

    return _resolve(named, linkpath, source)


class ModelIndex:
    """The same rule over a name index, for vaults too large to scan per link."""

    def __init__(self, files: Iterable[str]) -> None:
        self.by_name: dict[str, list[str]] = {}
        for path in files:
            self.add(path)

    def add(self, path: str) -> None:
        self.by_name.setdefault(_low(path).split("/")[-1], []).append(path)

    def remove(self, path: str) -> None:
        self.by_name[_low(path).split("/")[-1]].remove(path)

    def resolve(self, linkpath: str, source: str) -> str | None:
        return _resolve(lambda name: sorted(self.by_name.get(name, [])), linkpath, source)


def _resolve(named: Callable[[str], list[str]], linkpath: str, source: str) -> str | None:
    if not linkpath:
        return None
    wanted = _low(linkpath)

    last = wanted.split("/")[-1]
    pool = named(last) if "." in last else []
    if not pool:
        wanted += ".md"
        pool = named(last + ".md")
    if not pool:
        return None
    if "/" not in wanted and len(pool) == 1:
        return pool[0]
    prefix = _low(_parent(source))
    if wanted.startswith("./") or wanted.startswith("../"):
        rest = wanted[2:] if wanted.startswith("./../") else wanted
        if rest.startswith("./"):
            rest = rest[2:]
        else:
            while rest.startswith("../"):
                rest = rest[3:]
                prefix = _parent(prefix)
        if prefix:
            prefix += "/"
        wanted = prefix + rest
        exact = [f for f in pool if _low(f) == wanted]
        if exact:
            return exact[0]
    wanted = wanted.removeprefix("/")
    exact = [f for f in pool if _low(f) == wanted]
    if exact:
        return exact[0]
    if linkpath.startswith("/"):
        return None
    ending = [f for f in pool if _low(f).endswith(wanted)]
    inside = [f for f in ending if _low(f).startswith(prefix)]
    chosen = inside or ending
    if not chosen:
        return None
    return min(chosen, key=lambda f: (_js_length(f), f))


# Links in the notes the tests generate (no code, no HTML): enough to follow them there.
_LINK = re.compile(r"!?\[\[([^\[\]|#]*)[^\[\]]*\]\]|!?\[[^\[\]]*\]\((<[^>]*>|[^)\s]*)\)")


def model_links(text: str) -> list[str]:
    """The link paths of a generated note, in order (wiki and Markdown, decoded)."""
    found = []
    for match in _LINK.finditer(text):
        if match.group(1) is not None:
            found.append(match.group(1).strip())
        else:
            raw = match.group(2)
            raw = raw[1:-1] if raw.startswith("<") else raw
            found.append(unquote(raw.split("#", 1)[0]))
    return found
