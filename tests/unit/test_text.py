"""The one check of free text (:func:`engine.text.clean_text`), the display of stored text and whole numbers."""

from __future__ import annotations

import pytest

from engine import text
from engine.errors import InputError

# name -> (the text, the code point the message names, its position)
HOSTILE = {
    "ESC clear screen": ("清屏\x1b[2J", "U+001B (ESC", 3),
    "BEL": ("响铃\x07", "U+0007 (BEL", 3),
    "NUL": ("a\x00b", "U+0000 (NUL", 2),
    "DEL": ("x\x7f", "U+007F (DEL", 2),
    "C1 CSI": ("x\u009b2J", "U+009B (CSI, a C1 control", 2),
    "C1 NEL": ("\u0085", "U+0085 (NEL", 1),
    "bidi override RLO": ("invoice\u202egnp.exe", "U+202E (RIGHT-TO-LEFT OVERRIDE", 8),
    "bidi isolate LRI": ("\u2066x\u2069", "U+2066 (LEFT-TO-RIGHT ISOLATE", 1),
    "zero-width space": ("零\u200b宽", "U+200B (ZERO WIDTH SPACE, an invisible format character", 2),
    "BOM": ("\ufeffx", "U+FEFF", 1),
    "line separator": ("a\u2028b", "U+2028 (LINE SEPARATOR, a Unicode line break", 2),
    "lone surrogate": ("bad \udcff", "U+DCFF (a lone surrogate", 5),
    "lone CR": ("a\rb", "U+000D (CR", 2),
    "tag character": ("x\U000e0041", "U+E0041", 2),
    "noncharacter": ("x\ufffe", "U+FFFE", 2),
}
FINE = [
    "马营台村1社水管破裂",
    "照顾母亲　两周",  # an ideographic space
    "👨\u200d👩\u200d👧 全家",  # emoji joined by ZWJ
    "❤\ufe0f",  # a variation selector
    "\ue000 生僻字",  # private use: rare characters of names
    "Zoë, café – “quotes” …",
]


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("multiline", [False, True])
def test_hostile_characters_are_refused_with_the_field_the_code_point_and_the_position(name, multiline):
    value, named, position = HOSTILE[name]
    with pytest.raises(InputError) as refused:
        text.clean_text(value, "evidence", 500, multiline=multiline)
    message = str(refused.value)
    assert message.startswith("evidence ") and named in message and f"position {position}" in message
    assert "remove it" in message  # and what to do
    assert "\x1b" not in message and "\u202e" not in message  # the message never carries the character itself
    assert text.text_problem(value, "evidence", 500, multiline=multiline) == message


@pytest.mark.parametrize("value", FINE)
def test_ordinary_text_passes_unchanged(value):
    assert text.clean_text(value, "title", 200) == value
    assert text.shown(value) == value


def test_newlines_and_tabs_only_in_a_multi_line_field_and_windows_line_ends_become_newlines():
    assert text.clean_text("一\n二\t三", "reason", 100, multiline=True) == "一\n二\t三"
    assert text.clean_text("一\r\n二", "reason", 100, multiline=True) == "一\n二"
    for value in ("一\n二", "一\t二"):
        with pytest.raises(
            InputError, match=r"title is one line, but the character at position 2 is a (line break|tab)"
        ):
            text.clean_text(value, "title", 100)
    with pytest.raises(InputError, match=r"U\+000D \(CR, a control character\) at position 2"):
        text.clean_text("一\r\n二", "title", 100)


def test_too_long_is_counted_in_characters_as_postgresql_counts_them():
    assert text.clean_text("字" * 200, "title", 200) == "字" * 200
    with pytest.raises(InputError, match=r"title is 201 characters long; at most 200 fit: shorten it"):
        text.clean_text("字" * 201, "title", 200)
    with pytest.raises(InputError, match="must be text"):
        text.clean_text(5, "title", 200)
    assert text.optional_text(None, "note", 10) is None


def test_shown_writes_out_what_would_move_the_cursor_and_keeps_the_layout():
    assert text.shown("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert text.shown("x\u009b\u202ey\udcff") == "x\\x9b\\u202ey\\udcff"
    assert text.shown("一\n二\t三") == "一\n二\t三"
    assert text.shown("\U000e0041") == "\\U000e0041"


def test_json_safe_sends_the_same_data_without_raw_characters():
    import json

    data = {"evidence": "旧\u009b\u202e的\udcff\U000e0041\n"}
    sent = text.json_safe(json.dumps(data, ensure_ascii=False, indent=2))
    assert all(c.isprintable() or c == "\n" for c in sent)
    assert json.loads(sent) == data and "旧" in sent


def test_the_written_out_ranges_are_those_of_this_pythons_unicode():
    assert list(text.RANGES) == text.computed_ranges()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("²", "is not a whole number: write it with the digits 0–9 (half-width)"),
        ("١٢", "is not a whole number"),
        ("１２", "is not a whole number"),
        ("1.5", "is not a whole number"),
        ("1_000", "is not a whole number"),
        ("99999999999999999999", "is out of range: give a whole number from 1 to 1,000"),
        (10**20, "is out of range"),
        (0, "0 is out of range"),
        (10**40, "a number of 41 digits is out of range"),
        (True, "must be a whole number"),
        (1.0, "must be a whole number"),
    ],
)
def test_whole_numbers_are_ascii_digits_within_their_range(value, message):
    with pytest.raises(InputError, match="quantity") as refused:
        text.whole_number(value, "quantity", 1, 1000)
    assert message in str(refused.value)


def test_whole_numbers_within_range_pass():
    assert text.whole_number("12", "quantity", 1, 1000) == 12
    assert text.whole_number(" 7 ", "quantity", 1, 1000) == 7
    assert text.whole_number(1000, "quantity", 1, 1000) == 1000
    assert text.whole_number("-3", "points", -10, 10) == -3
