"""What a person types: one check for every free-text input, the display of stored text, whole numbers.

:func:`clean_text` is the one check of free text (a case's title and the text fields of a step, points
evidence and reasons, objections, notes, names of tokens, clients and subscriptions, Open311 reports). It
refuses, naming the field, the character as ``U+XXXX`` and its position:

- C0 control characters (``ESC``, ``BEL``, ``NUL`` …) — newline and tab are allowed in a multi-line field
  only, and a Windows line end (CR LF) there becomes a newline; a lone CR is refused everywhere;
- ``DEL`` and the C1 controls U+0080–U+009F (``CSI`` U+009B, ``NEL`` U+0085);
- the bidirectional overrides, embeddings and isolates (U+202A–U+202E, U+2066–U+2069) and every other
  invisible format character of Unicode category Cf (zero-width space U+200B, word joiner U+2060, BOM
  U+FEFF, LRM/RLM, soft hyphen, tag characters …), except the zero-width joiner and non-joiner
  (U+200D, U+200C), which emoji sequences and some scripts need;
- the line and paragraph separators U+2028 and U+2029 (a newline is the line break of gridflow);
- noncharacters (U+FDD0–U+FDEF, U+xxFFFE, U+xxFFFF) and lone surrogates (bytes that were not UTF-8);
- a text longer than the field's maximum, counted in characters as PostgreSQL's ``varchar(n)`` counts
  them (SQLite would store any length): the same text is refused on both back ends.

Private-use characters stay allowed (rare characters of Chinese names are typed with them), and so do
ideographic spaces, variation selectors and every visible character.

:func:`shown` is the other side: a text already stored (before this check, or by hand) as it may be
printed on a terminal, with those characters written out as ``\\x1b`` or ``\\u202e``.
"""

from __future__ import annotations

import re
import sys
import unicodedata

from engine.errors import InputError

# Cf characters that stay allowed: the zero-width non-joiner and joiner (emoji sequences, Indic scripts).
ALLOWED_FORMAT = frozenset("\u200c\u200d")
C0_NAMES = (
    "NUL SOH STX ETX EOT ENQ ACK BEL BS TAB LF VT FF CR SO SI "
    "DLE DC1 DC2 DC3 DC4 NAK SYN ETB CAN EM SUB ESC FS GS RS US"
).split()
C1_NAMES = {0x85: "NEL", 0x9B: "CSI", 0x9D: "OSC", 0x90: "DCS", 0x9C: "ST", 0x9E: "PM", 0x9F: "APC"}


# Every code point refused anywhere but newline and tab, as (first, last) ranges: C0, DEL and C1, the
# Unicode format characters (Cf) but ZWNJ and ZWJ, U+2028/U+2029, the noncharacters and the surrogates.
# Written out, not computed at import (that walk over every code point costs a command 70 ms);
# ``tests/unit/test_text.py`` checks it against :func:`computed_ranges` of this Python's Unicode.
# fmt: off
RANGES: tuple[tuple[int, int], ...] = (
    (0x0000, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C),
    (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E),
    (0x200B, 0x200B), (0x200E, 0x200F), (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F),
    (0xFDD0, 0xFDEF), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0xFFFE, 0xFFFF), (0x110BD, 0x110BD),
    (0x110CD, 0x110CD), (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0x1FFFE, 0x1FFFF),
    (0x2FFFE, 0x2FFFF), (0x3FFFE, 0x3FFFF), (0x4FFFE, 0x4FFFF), (0x5FFFE, 0x5FFFF), (0x6FFFE, 0x6FFFF),
    (0x7FFFE, 0x7FFFF), (0x8FFFE, 0x8FFFF), (0x9FFFE, 0x9FFFF), (0xAFFFE, 0xAFFFF), (0xBFFFE, 0xBFFFF),
    (0xCFFFE, 0xCFFFF), (0xDFFFE, 0xDFFFF), (0xE0001, 0xE0001), (0xE0020, 0xE007F), (0xEFFFE, 0xEFFFF),
    (0xFFFFE, 0xFFFFF), (0x10FFFE, 0x10FFFF), (0xD800, 0xDFFF),
)
# fmt: on


def computed_ranges() -> list[tuple[int, int]]:
    """:data:`RANGES` from this Python's Unicode database."""
    points = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029, *range(0xFDD0, 0xFDF0)]
    points += [plane << 16 | low for plane in range(17) for low in (0xFFFE, 0xFFFF)]
    points += [
        cp
        for cp in range(sys.maxunicode + 1)
        if not 0xD800 <= cp <= 0xDFFF and unicodedata.category(chr(cp)) == "Cf" and chr(cp) not in ALLOWED_FORMAT
    ]
    ranges: list[tuple[int, int]] = []
    for cp in sorted(set(points)):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    ranges.append((0xD800, 0xDFFF))  # lone surrogates
    return ranges


def _class(ranges: tuple[tuple[int, int], ...], keep: str = "") -> re.Pattern[str]:
    parts = []
    for first, last in ranges:
        for lo, hi in _split(first, last, keep):
            parts.append(re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}")
    return re.compile(f"[{''.join(parts)}]")


def _split(first: int, last: int, keep: str) -> list[tuple[int, int]]:
    """``first..last`` without the code points of ``keep``."""
    out, lo = [], first
    for cp in sorted(ord(c) for c in keep if first <= ord(c) <= last):
        if lo <= cp - 1:
            out.append((lo, cp - 1))
        lo = cp + 1
    if lo <= last:
        out.append((lo, last))
    return out


_ONE_LINE = _class(RANGES)  # a single-line field: newline and tab refused too
_MULTI_LINE = _class(RANGES, keep="\n\t")
_SHOWN = _MULTI_LINE  # printing keeps the layout (newlines, tabs) and writes out the rest


def describe(char: str) -> str:
    """``U+001B (ESC, a control character)``: the code point, its name and what kind of character it is."""
    cp = ord(char)
    if cp < 0x20:
        return f"U+{cp:04X} ({C0_NAMES[cp]}, a control character)"
    if cp == 0x7F:
        return "U+007F (DEL, a control character)"
    if 0x80 <= cp <= 0x9F:
        return f"U+{cp:04X} ({C1_NAMES.get(cp, 'C1 control')}, a C1 control character)"
    if 0xD800 <= cp <= 0xDFFF:
        return f"U+{cp:04X} (a lone surrogate: bytes that were not UTF-8)"
    name = unicodedata.name(char, "")
    if 0x202A <= cp <= 0x202E or 0x2066 <= cp <= 0x2069:
        kind = "a bidirectional override that reorders the text shown"
    elif cp in (0x2028, 0x2029):
        kind = "a Unicode line break; use a newline"
    elif unicodedata.category(char) == "Cf":
        kind = "an invisible format character"
    else:
        kind = "a noncharacter"
    return f"U+{cp:04X} ({name + ', ' if name else ''}{kind})"


def text_problem(value: object, field: str, max_len: int, *, multiline: bool = False) -> str | None:
    """Why ``value`` cannot be stored in ``field`` (a message saying what, where and what to do), or None."""
    if not isinstance(value, str):
        return f"{field} must be text, not {type(value).__name__}"
    bad = (_MULTI_LINE if multiline else _ONE_LINE).search(value)
    if bad is not None:
        char, position = bad.group(), bad.start() + 1
        if char in "\n\t":
            what = "a line break" if char == "\n" else "a tab"
            return (
                f"{field} is one line, but the character at position {position} is {what} {describe(char)}: "
                "write it on one line and send it again"
            )
        hint = (
            "; check that the terminal or the sending program uses UTF-8"
            if 0xD800 <= ord(char) <= 0xDFFF
            else " (it may come with text pasted from another program)"
        )
        return (
            f"{field} contains an unprintable character {describe(char)} at position {position}: "
            f"remove it and send the text again{hint}"
        )
    if len(value) > max_len:
        return f"{field} is {len(value):,} characters long; at most {max_len:,} fit: shorten it"
    return None


def clean_text(value: object, field: str, max_len: int, *, multiline: bool = False) -> str:
    """``value`` if it may be stored in ``field``, else :class:`InputError` saying why (:func:`text_problem`).

    A multi-line field's Windows line ends (CR LF) come back as newlines; nothing else is changed (the
    caller strips, as it did before)."""
    if multiline and isinstance(value, str) and "\r\n" in value:
        value = value.replace("\r\n", "\n")
    problem = text_problem(value, field, max_len, multiline=multiline)
    if problem:
        raise InputError(problem)
    assert isinstance(value, str)
    return value


def optional_text(value: str | None, field: str, max_len: int, *, multiline: bool = False) -> str | None:
    """:func:`clean_text` of a value that may be left out (None stays None)."""
    return None if value is None else clean_text(value, field, max_len, multiline=multiline)


def shown(text: str) -> str:
    """``text`` safe to print on a terminal: every character :func:`clean_text` refuses, but newline and tab,
    written out (``\\x1b``, ``\\u202e``), so a stored row can neither move the cursor nor reorder the screen."""
    if not _SHOWN.search(text):
        return text
    return _SHOWN.sub(_escaped, text)


def json_safe(text: str) -> str:
    """JSON text (of :func:`json.dumps` with ``ensure_ascii=False``) with the characters :func:`shown` writes
    out as JSON escapes instead (``\\u009b``; beyond U+FFFF as a surrogate pair): the same data, nothing a
    terminal acts on. JSON escapes C0 controls itself, but not C1, bidi or invisible characters."""
    if not _SHOWN.search(text):
        return text
    return _SHOWN.sub(_json_escaped, text)


def _json_escaped(match: re.Match[str]) -> str:
    cp = ord(match.group())
    if cp < 0x10000:
        return f"\\u{cp:04x}"
    cp -= 0x10000
    return f"\\u{0xD800 + (cp >> 10):04x}\\u{0xDC00 + (cp & 0x3FF):04x}"


def _escaped(match: re.Match[str]) -> str:
    cp = ord(match.group())
    return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}" if cp < 0x10000 else f"\\U{cp:08x}"


# -- whole numbers ------------------------------------------------------------------------------------

MAX_ID = 10**15  # an entry, redemption or other row number a person types: far inside 64 bits (and JSON)


def whole_number(value: object, field: str, low: int, high: int, hint: str = "") -> int:
    """``value`` (an int, or text of the digits 0–9) if it is a whole number in ``low..high``, else
    :class:`InputError` naming ``field``, the range and what to do (``hint``, e.g. where to look it up)."""
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if not (digits.isascii() and digits.isdigit()):
            raise InputError(
                f"{field} {value!r} is not a whole number: write it with the digits 0–9 (half-width), "
                f"from {low:,} to {high:,}{hint}"
            )
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{field} must be a whole number from {low:,} to {high:,}, not {value!r}{hint}")
    if not low <= value <= high:
        shown_value = f"{value:,}" if abs(value) < 10**30 else f"a number of {len(str(abs(value)))} digits"
        raise InputError(f"{field} {shown_value} is out of range: give a whole number from {low:,} to {high:,}{hint}")
    return value
