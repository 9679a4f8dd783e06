"""Text as JavaScript sees it: what `String.prototype.trim()` strips, what `length` counts.

SmartHole is a JavaScript program: it refuses a routing description that is blank after its
`trim()` or longer than 1024 of its `length` units. Settings and the SmartHole client check
with the same rules, so a value accepted here is accepted there.
"""

from __future__ import annotations

from typing import Final

JS_TRIMMED: Final[frozenset[str]] = frozenset(
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
"""What JavaScript's `String.prototype.trim()` strips (ECMAScript WhiteSpace and LineTerminator:
TAB, VT, FF, U+FEFF, every `Zs` space, LF, CR, U+2028, U+2029), checked against Node 20.
Python's `str.strip()` differs both ways: it keeps U+FEFF and strips U+001C..U+001F and U+0085,
which SmartHole keeps."""


def js_trim(text: str) -> str:
    """`text.trim()` as SmartHole (JavaScript) computes it."""
    start, end = 0, len(text)
    while start < end and text[start] in JS_TRIMMED:
        start += 1
    while end > start and text[end - 1] in JS_TRIMMED:
        end -= 1
    return text[start:end]


def utf16_length(text: str) -> int:
    """`text.length` in JavaScript: UTF-16 code units, so a character beyond U+FFFF counts 2."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)
