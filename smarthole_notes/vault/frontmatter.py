"""A note's properties (YAML front matter), tags and headings, as Obsidian reads them.

Reading (for the search index) loads the front matter with ruamel.yaml's safe loader and
tolerates anything: a malformed block simply has no properties. Writing (`set_properties`)
never re-emits the whole block: ruamel.yaml's round-trip loader says on which line each key
starts, and only the lines of the keys that change are replaced, so every other key keeps its
bytes, comments and order exactly. Values are coerced to the type Obsidian declares for the
property in `.obsidian/types.json` (text, number, checkbox, date, datetime, list).
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from smarthole_notes.vault.errors import VaultError

if TYPE_CHECKING:
    from ruamel.yaml import YAML

_FRONT = re.compile(
    r"\A---[ \t]*\r?\n(?P<yaml>(?:.*?\r?\n)??)(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S
)
_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
# Obsidian: a tag starts after a blank (or at the start of a line); letters, digits, _ - /.
_TAG = re.compile(r"(?:(?<=\s)|^)#([^\s!-,.:-@\[-^`{-~]+)", re.M)
_DATE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")
_DATETIME = re.compile(r"\A\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?\Z")
_NUMBER = re.compile(r"\A[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\Z")
_LIST_TYPES = frozenset({"multitext", "tags", "aliases"})


@functools.cache
def _safe() -> YAML:
    """libyaml through ruamel.yaml.clib when installed; made at first use (ruamel.yaml is
    imported only when a note's properties are read, not at start-up)."""
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=False)


def _yaml_error() -> type[Exception]:
    from ruamel.yaml.error import YAMLError

    return YAMLError


def _round_trip() -> YAML:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long value onto several lines
    yaml.indent(mapping=2, sequence=4, offset=2)  # Obsidian's own list layout
    return yaml


@dataclass(frozen=True, slots=True)
class FrontMatter:
    """Where the block is: `yaml` is its inner text, `end` the offset of the body."""

    yaml: str
    start: int  # offset of the inner text
    end: int


def split(text: str) -> FrontMatter | None:
    match = _FRONT.match(text)
    if match is None:
        return None
    return FrontMatter(match.group("yaml") or "", match.start("yaml"), match.end())


def load(text: str) -> dict[str, Any]:
    """The note's properties; an empty dict when there are none or the YAML is broken."""
    front = split(text)
    if front is None or not front.yaml.strip():
        return {}
    try:
        data = _safe().load(front.yaml)
    except (_yaml_error(), ValueError, TypeError, RecursionError):
        return {}
    return {str(k): v for k, v in data.items()} if isinstance(data, dict) else {}


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return [str(value)]


def property_text(value: Any) -> str:
    """A property value as words for the index (lists and nested maps flattened)."""
    if isinstance(value, Mapping):
        return " ".join(f"{k} {property_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return " ".join(property_text(v) for v in value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return "" if value is None else str(value)


def _clean_tag(raw: str) -> str:
    return raw.strip().lstrip("#").strip("/").lower()


def _valid_tag(tag: str) -> bool:
    return bool(tag) and not tag.replace("/", "").isdigit() and " " not in tag


def _front_tags(properties: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for key in ("tags", "tag"):
        for item in _strings(properties.get(key)):
            # Older notes write `tags: a, b` or `tags: a b` as one string.
            found.extend(_clean_tag(part) for part in re.split(r"[,\s]+", item))
    return found


def aliases(properties: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for key in ("aliases", "alias"):
        value = properties.get(key)
        items = [s.strip() for s in value.split(",")] if isinstance(value, str) else None
        found.extend(items if items is not None else _strings(value))
    return [a for a in found if a]


@dataclass
class NoteText:
    """What the index needs from one note, found in one pass over its text."""

    properties: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)  # lower case, nested as "a/b", no '#'
    headings: list[str] = field(default_factory=list)
    body: str = ""  # the text after the front matter


def _outside_code(lines: Iterable[str]) -> Iterator[tuple[str, bool]]:
    """Each line with whether it lies outside fenced code."""
    fence: str | None = None
    for line in lines:
        match = _FENCE.match(line)
        if fence is None:
            if match is not None:
                fence = match.group(1)
                yield line, False
                continue
            yield line, not line.startswith(("    ", "\t"))
        else:
            closes = match is not None and match.group(1)[0] == fence[0]
            if closes and match is not None and len(match.group(1)) >= len(fence):
                fence = None if not line[match.end() :].strip() else fence
            yield line, False


def analyse(text: str) -> NoteText:
    front = split(text)
    properties = load(text) if front is not None else {}
    body = text[front.end :] if front is not None else text
    tags = _front_tags(properties)
    headings: list[str] = []
    for line, prose in _outside_code(body.splitlines()):
        if not prose or ("#" not in line):
            continue
        heading = _HEADING.match(line)
        if heading is not None:
            headings.append(heading.group(1))
        plain = _CODE_SPAN.sub(" ", line) if "`" in line else line
        tags.extend(_clean_tag(m.group(1)) for m in _TAG.finditer(plain))
    unique = list(dict.fromkeys(t for t in tags if _valid_tag(t)))
    return NoteText(properties, unique, headings, body)


# -- writing -------------------------------------------------------------------------------


def _coerce(key: str, value: Any, kind: str | None, current: Any) -> Any:
    """The value as Obsidian's declared property type wants it."""
    if value is None or isinstance(value, Mapping):
        return value
    if kind in _LIST_TYPES or (kind is None and key in ("tags", "aliases")):
        items = value if isinstance(value, list) else [value]
        if key == "tags" or kind == "tags":
            return [str(item).lstrip("#") for item in items]
        return items
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        text = value.strip()
        numeric = kind == "number" or (
            kind is None and isinstance(current, int | float) and not isinstance(current, bool)
        )
        if numeric and _NUMBER.match(text):
            number = float(text)
            return int(number) if number.is_integer() and "." not in text else number
        boolean = kind == "checkbox" or (kind is None and isinstance(current, bool))
        if boolean and text.lower() in ("true", "false"):
            return text.lower() == "true"
        if kind in ("date", None) and _DATE.match(text):
            return dt.date.fromisoformat(text)
        if kind in ("datetime", None) and _DATETIME.match(text):
            return _Plain(text.replace(" ", "T"))
    return value


class _Plain(str):
    """A string written without quotes (an Obsidian date-time such as 2026-11-30T10:00)."""


def _fragment(key: str, value: Any) -> str:
    """`key: value` as YAML lines, in Obsidian's layout."""
    if isinstance(value, _Plain):
        return f"{_fragment(key, 'x').split(':', 1)[0]}: {value}\n"
    stream = io.StringIO()
    _round_trip().dump({key: value}, stream)
    return stream.getvalue()


def _key_lines(yaml_text: str) -> tuple[list[str], list[tuple[str, int]]]:
    """The block's lines, and each top-level key with the line it starts on."""
    try:
        data = _round_trip().load(yaml_text) if yaml_text.strip() else None
    except (_yaml_error(), ValueError, TypeError, RecursionError) as exc:
        raise VaultError(
            f"the note's properties (front matter) are not valid YAML, so they were not "
            f"changed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}. "
            "Fix the block with edit_file first."
        ) from None
    lines = yaml_text.splitlines(keepends=True)
    if data is None:
        return lines, []
    if not isinstance(data, Mapping):
        raise VaultError(
            "the note's front matter is not a list of properties (key: value), so it was "
            "not changed; fix it with edit_file"
        )
    starts = [(str(key), data.lc.key(key)[0]) for key in data]  # type: ignore[attr-defined]
    return lines, starts


def set_properties(
    text: str, changes: Mapping[str, Any], types: Mapping[str, str] | None = None
) -> tuple[str, list[str]]:
    """The note with `changes` applied to its front matter (None removes a key), and a
    description per change. Lines of untouched keys are kept byte for byte."""
    types = types or {}
    front = split(text)
    newline = "\r\n" if "\r\n" in text[:4096] else "\n"
    yaml_text = front.yaml if front is not None else ""
    lines, starts = _key_lines(yaml_text)
    current = load(text) if front is not None else {}
    spans: dict[str, tuple[int, int]] = {}
    for index, (key, first) in enumerate(starts):
        last = starts[index + 1][1] if index + 1 < len(starts) else len(lines)
        # Blank and comment lines just before the next key belong to that key.
        while last - 1 > first and lines[last - 1].strip()[:1] in ("", "#"):
            last -= 1
        spans[key] = (first, last)
    replaced: dict[int, tuple[int, str]] = {}  # first line -> (end line, new text)
    appended: list[str] = []
    report: list[str] = []
    for key, raw in changes.items():
        if not isinstance(key, str) or not key.strip():
            raise VaultError("property names must be non-empty text")
        value = _coerce(key, raw, types.get(key), current.get(key))
        if value is None:
            if key in spans:
                first, last = spans[key]
                replaced[first] = (last, "")
                report.append(f"removed {key}")
            else:
                report.append(f"{key} was not set")
            continue
        fragment = _fragment(key, value).replace("\n", newline)
        if key in spans:
            first, last = spans[key]
            replaced[first] = (last, fragment)
            report.append(f"set {key}")
        else:
            appended.append(fragment)
            report.append(f"added {key}")
    out: list[str] = []
    index = 0
    while index < len(lines):
        if index in replaced:
            end, fragment = replaced[index]
            out.append(fragment)
            index = end
            continue
        out.append(lines[index])
        index += 1
    if out and not out[-1].endswith(("\n", "\r")):
        out[-1] += newline
    out.extend(appended)
    new_yaml = "".join(out)
    if front is None:
        if not new_yaml:
            return text, report
        return f"---{newline}{new_yaml}---{newline}{text}", report
    closing = text[front.start + len(front.yaml) : front.end]
    return text[: front.start] + new_yaml + closing + text[front.end :], report
