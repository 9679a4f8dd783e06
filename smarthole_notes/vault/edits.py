"""Pure text edits used by edit_file: search/replace and line operations.

Lines are split on `\n` only (so numbering matches what read_file shows); a note whose line
endings are all CRLF is edited in LF form and written back with CRLF.
"""

from __future__ import annotations

from dataclasses import dataclass

from smarthole_notes.vault.errors import VaultError


@dataclass(frozen=True, slots=True)
class Lines:
    lines: list[str]
    trailing_newline: bool

    @classmethod
    def of(cls, text: str) -> Lines:
        if text == "":
            return cls([], False)
        parts = text.split("\n")
        if parts[-1] == "":
            return cls(parts[:-1], True)
        return cls(parts, False)

    def text(self) -> str:
        if not self.lines:
            return ""
        return "\n".join(self.lines) + ("\n" if self.trailing_newline else "")


def count_lines(text: str) -> int:
    return len(Lines.of(text).lines)


def _uses_crlf(text: str) -> bool:
    newlines = text.count("\n")
    return newlines > 0 and text.count("\r\n") == newlines


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _in_lf(text: str) -> tuple[str, bool]:
    crlf = _uses_crlf(text)
    return (text.replace("\r\n", "\n") if crlf else text), crlf


def _back(text: str, crlf: bool) -> str:
    return text.replace("\n", "\r\n") if crlf else text


def replace_text(text: str, old: str, new: str, replace_all: bool) -> tuple[str, str]:
    """Replace the first (or every) occurrence of `old`. Returns the new text and a report."""
    body, crlf = _in_lf(text)
    old = old.replace("\r\n", "\n")
    new = new.replace("\r\n", "\n")
    if old == "":
        raise VaultError("old_text is empty; give the exact text to replace")
    count = body.count(old)
    if count == 0:
        total = count_lines(body)
        hint = ""
        lowered = body.casefold().find(old.casefold())
        if lowered >= 0:
            line = body.count("\n", 0, lowered) + 1
            hint = f" A match that differs in letter case starts on line {line}."
        elif " ".join(old.split()) and " ".join(old.split()) in " ".join(body.split()):
            hint = " A match that differs only in spaces or line breaks exists."
        raise VaultError(
            f"old_text was not found in the file (it has {_plural(total, 'line')}).{hint} "
            "Read the file again with read_file and copy the text exactly."
        )
    first_line = body.count("\n", 0, body.find(old)) + 1
    if replace_all:
        result = body.replace(old, new)
        report = f"Replaced {_plural(count, 'occurrence')}"
    else:
        result = body.replace(old, new, 1)
        report = f"Replaced 1 occurrence (line {first_line})"
        if count > 1:
            report += f"; {count - 1} more left unchanged (use replace_all to replace every one)"
    return _back(result, crlf), report


def _content_lines(content: str) -> list[str]:
    content = content.replace("\r\n", "\n")
    if content.endswith("\n"):
        content = content[:-1]
    return content.split("\n")


def _no_line(line: int, total: int) -> VaultError:
    if total == 0:
        return VaultError(f"line {line} does not exist; the file is empty")
    return VaultError(f"line {line} does not exist; the file has {_plural(total, 'line')}")


def insert_after(text: str, line: int, content: str) -> tuple[str, str]:
    body, crlf = _in_lf(text)
    doc = Lines.of(body)
    total = len(doc.lines)
    if line < 0 or line > total:
        raise _no_line(line, total)
    new_lines = _content_lines(content)
    lines = doc.lines[:line] + new_lines + doc.lines[line:]
    trailing = doc.trailing_newline or (total == 0 and content.endswith("\n"))
    where = "at the top" if line == 0 else f"after line {line}"
    return _back(Lines(lines, trailing).text(), crlf), (
        f"Inserted {_plural(len(new_lines), 'line')} {where}"
    )


def insert_before(text: str, line: int, content: str) -> tuple[str, str]:
    body, crlf = _in_lf(text)
    doc = Lines.of(body)
    total = len(doc.lines)
    if line < 1 or (line > total and not (total == 0 and line == 1)):
        raise _no_line(line, total)
    new_lines = _content_lines(content)
    lines = doc.lines[: line - 1] + new_lines + doc.lines[line - 1 :]
    trailing = doc.trailing_newline or (total == 0 and content.endswith("\n"))
    return _back(Lines(lines, trailing).text(), crlf), (
        f"Inserted {_plural(len(new_lines), 'line')} before line {line}"
    )


def delete_lines(text: str, start: int, end: int) -> tuple[str, str]:
    body, crlf = _in_lf(text)
    doc = Lines.of(body)
    total = len(doc.lines)
    if start > end:
        raise VaultError(f"delete_lines start ({start}) is after end ({end})")
    if start < 1 or start > total:
        raise _no_line(start, total)
    if end > total:
        raise _no_line(end, total)
    lines = doc.lines[: start - 1] + doc.lines[end:]
    count = end - start + 1
    span = f"line {start}" if start == end else f"lines {start}-{end}"
    return _back(Lines(lines, doc.trailing_newline).text(), crlf), (
        f"Deleted {span} ({_plural(count, 'line')})"
    )
