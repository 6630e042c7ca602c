"""engine.yamlsrc: plain values only, YAML 1.2 core scalars, every value located."""

from __future__ import annotations

import time

import pytest

from engine.errors import MAX_MESSAGE, Problem
from engine.yamlsrc import MAX_DEPTH, MAX_NODES, MAX_SHOWN, Source, brief, format_path, load_file, load_text


def only_problem(src: Source) -> Problem:
    assert len(src.problems) == 1, [str(p) for p in src.problems]
    return src.problems[0]


# -- scalars ------------------------------------------------------------------


def test_yaml_1_1_booleans_stay_strings_as_keys_and_values():
    src = load_text("on: yes\nno: off\nyes: no\noff: on\nY: n\n")
    assert src.problems == []
    assert src.data == {"on": "yes", "no": "off", "yes": "no", "off": "on", "Y": "n"}


@pytest.mark.parametrize(
    "text",
    ["08:30", "8:30", "1:30:00", "2026-10-01", "2026-10-01 08:30:00", "2026-10-01T08:30:00+08:00", "1_000", "0b11"],
)
def test_times_dates_and_yaml_1_1_numbers_stay_strings(text: str):
    src = load_text(f"v: {text}\n")
    assert src.problems == []
    assert src.data == {"v": text}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("True", True),
        ("FALSE", False),
        ("false", False),
        ("null", None),
        ("~", None),
        ("", None),
        ("0", 0),
        ("42", 42),
        ("-7", -7),
        ("+3", 3),
        ("0x1F", 31),
        ("0o17", 15),
        ("1.5", 1.5),
        ("-.5", -0.5),
        ("1e3", 1000.0),
        (".inf", float("inf")),
        ("-.Inf", float("-inf")),
        ("'true'", "true"),
        ('"42"', "42"),
        ("tRUE", "tRUE"),
    ],
)
def test_core_schema_scalars(text: str, value: object):
    src = load_text(f"v: {text}\n")
    assert src.problems == []
    assert src.data == {"v": value}
    assert type(src.data["v"]) is type(value)


def test_nan_is_a_float():
    value = load_text("v: .nan\n").data["v"]
    assert isinstance(value, float) and value != value


def test_non_string_keys_become_their_text():
    src = load_text("1: a\ntrue: b\nnull: c\n")
    assert src.problems == []
    assert src.data == {"1": "a", "true": "b", "null": "c"}


# -- tags ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("!!python/object:os.system\n    command: echo pwned", "python/object:os.system"),
        ("!!python/object/apply:os.system [echo pwned]", "python/object/apply:os.system"),
        ("!!python/object/new:os.system [echo pwned]", "python/object/new:os.system"),
        ("!!python/name:os.system ''", "python/name:os.system"),
        ("!!python/module:os ''", "python/module:os"),
        ("!!python/tuple [1, 2]", "python/tuple"),
        ("!!binary aGVsbG8=", "binary"),
        ("!!timestamp 2026-10-01", "timestamp"),
        ("!!set {a, b}", "set"),
        ("!!omap [a: 1]", "omap"),
        ("!!pairs [a: 1]", "pairs"),
        ("!secret token", "!secret"),
        ("!<tag:example.com,2026:thing> x", "tag:example.com,2026:thing"),
        ("!!str [a, b]", "tag:yaml.org,2002:str"),
        ("!!int {a: 1}", "tag:yaml.org,2002:int"),
    ],
)
def test_every_non_plain_tag_is_rejected_where_it_stands(value: str, tag: str):
    src = load_text(f"ok: 1\nouter:\n  bad: {value}\n", "f.yaml")
    problem = only_problem(src)
    assert (problem.file, problem.line, problem.column, problem.path) == ("f.yaml", 3, 8, "outer.bad")
    assert tag in problem.message and "not allowed" in problem.message
    assert src.data["ok"] == 1
    assert src.data["outer"]["bad"] in (None, [], {})


@pytest.mark.parametrize("value", ["!!str 1", "!!int '3'", "!!float '1'", "!!bool 'true'", "!!null ''", "!!map {a: 1}"])
def test_explicit_core_tags_are_plain_values(value: str):
    assert load_text(f"v: {value}\n").problems == []


def test_a_tagged_key_is_rejected():
    src = load_text("a: 1\n!!python/name:os.system b: 2\n")
    problem = only_problem(src)
    assert (problem.line, problem.column) == (2, 1)
    assert "a key must be a plain string" in problem.message
    assert src.data == {"a": 1}


def test_a_collection_key_is_rejected():
    src = load_text("? [a, b]\n: 1\nc: 2\n")
    problem = only_problem(src)
    assert (problem.line, problem.column) == (1, 3)
    assert src.data == {"c": 2}


@pytest.mark.parametrize("value", ["!!int x", "!!float x", "!!bool x"])
def test_a_bad_explicit_core_scalar_is_a_problem(value: str):
    problem = only_problem(load_text(f"v: {value}\n"))
    assert (problem.line, problem.column, problem.path) == (1, 4, "v")


# -- keys ---------------------------------------------------------------------


def test_duplicate_keys_are_reported_not_overwritten():
    src = load_text("a: 1\nb:\n  c: first\n  c: second\na: 2\n", "f.yaml")
    assert src.data == {"a": 1, "b": {"c": "first"}}
    assert [(p.line, p.column, p.path) for p in src.problems] == [(4, 3, "b.c"), (5, 1, "a")]
    assert all("duplicate key" in p.message for p in src.problems)


def test_plain_anchors_and_aliases_are_allowed():
    src = load_text("roles: &r [center, township_leader]\nagain: *r\n")
    assert src.problems == []
    assert src.data["again"] == ["center", "township_leader"]


def test_merge_keys_are_rejected():
    src = load_text("base: &b {label: x}\nstate:\n  <<: *b\n  final: true\n")
    problem = only_problem(src)
    assert (problem.line, problem.column, problem.path) == (3, 3, "state")
    assert "merge keys" in problem.message


def test_a_literal_merge_tag_is_rejected():
    problem = only_problem(load_text("a: !!merge <<\n"))
    assert (problem.line, problem.column, problem.path) == (1, 4, "a")


# -- limits -------------------------------------------------------------------


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_stopped_quickly():
    started = time.perf_counter()
    src = load_text(billion_laughs(), "bomb.yaml")
    elapsed = time.perf_counter() - started
    problem = only_problem(src)
    assert f"more than {MAX_NODES} values" in problem.message
    assert problem.file == "bomb.yaml"
    assert len(src.values) <= MAX_NODES
    assert elapsed < 2
    assert len(str(problem)) < 400


def test_a_refused_bomb_leaves_no_data_and_silences_every_later_problem():
    src = load_text(billion_laughs() + "states: {open: {label: x}}\n", "bomb.yaml")
    assert src.data is None  # partial data would make every later key look missing or None
    src.problem(("states",), "None is not of type 'object'")
    src.problem((), "missing key 'workflow'")
    assert len(src.problems) == 1


def test_problems_found_before_the_bomb_are_kept():
    src = load_text("early: !!binary aGk=\n" + billion_laughs(), "bomb.yaml")
    assert [p.path for p in src.problems] == ["early", src.problems[1].path]
    assert "more than" in src.problems[1].message


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("a: " + "[" * 100 + "]" * 100 + "\n", (1, 68)),  # built, then refused by the builder
        ("a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 80)), (66, 131)),
        ("a: " + "[" * 500 + "]" * 500 + "\n", (1, 67)),  # too deep for PyYAML's composer: no RecursionError
    ],
    ids=["flow", "block", "past-the-composer"],
)
def test_values_nested_too_deep_are_refused_with_their_place(text, where):
    src = load_text(text, "deep.yaml")
    problem = only_problem(src)
    assert (problem.line, problem.column) == where
    assert f"nested more than {MAX_DEPTH} levels deep" in problem.message
    assert src.data is None


def test_nesting_up_to_the_limit_loads():
    depth = MAX_DEPTH - 1  # the top-level mapping is one level
    src = load_text("a: " + "[" * depth + "]" * depth + "\n")
    assert src.problems == []


def test_many_distinct_values_below_the_limit_load():
    src = load_text("items: [" + ", ".join(str(i) for i in range(1000)) + "]\n")
    assert src.problems == []
    assert len(src.data["items"]) == 1000


# -- files --------------------------------------------------------------------


def test_a_utf8_file_loads(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("title: 网格事件处置流程\n", encoding="utf-8")
    src = load_file(path)
    assert src.problems == []
    assert src.data == {"title": "网格事件处置流程"}
    assert src.file == str(path)


def test_a_non_utf8_file_is_a_problem(tmp_path):
    path = tmp_path / "gbk.yaml"
    path.write_bytes("title: 网格事件\n".encode("gbk"))
    src = load_file(path)
    problem = only_problem(src)
    assert (problem.file, problem.line, problem.column) == (str(path), 1, 1)
    assert "not UTF-8" in problem.message and "save the file as UTF-8" in problem.message
    assert src.data is None


def test_a_missing_file_is_a_problem(tmp_path):
    path = tmp_path / "absent.yaml"
    problem = only_problem(load_file(path))
    assert (problem.file, problem.line, problem.column) == (str(path), 1, 1)
    assert "file not found" in problem.message


def test_a_directory_is_a_problem(tmp_path):
    problem = only_problem(load_file(tmp_path))
    assert "cannot read the file" in problem.message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_an_empty_document_is_a_problem(text: str):
    src = load_text(text, "f.yaml")
    assert str(only_problem(src)) == "f.yaml:1:1: the file is empty; it must hold a mapping"
    assert src.data is None


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("a:\n  b: 1\n c: 2\n", 3, 2),
        ("a: [1, 2\n", 2, 1),
        ("a: 'open\n", 2, 1),
        ("a:\tb\n", 1, 3),
        ("a: *nowhere\n", 1, 4),
        ("a: 1\n---\nb: 2\n", 2, 1),
    ],
)
def test_malformed_yaml_is_located(text: str, line: int, column: int):
    src = load_text(text, "f.yaml")
    problem = only_problem(src)
    assert (problem.line, problem.column, problem.path) == (line, column, "")
    assert problem.message.startswith("malformed YAML: ")
    assert src.data is None


# -- locations ----------------------------------------------------------------

NESTED = """\
states:
  open:
    label: 待处理
    initial: true
triggers:
  close:
    from: [open, paused]
    notify:
      - to: [center]
        urgent: true
"""


def test_where_finds_values_and_keys_of_nested_mappings():
    src = load_text(NESTED)
    assert src.where(("states", "open", "label")) == (3, 12)
    assert src.where(("states", "open", "label"), at_key=True) == (3, 5)
    assert src.where(("states", "open")) == (3, 5)
    assert src.where(("states", "open"), at_key=True) == (2, 3)
    assert src.where(("triggers",), at_key=True) == (5, 1)


def test_where_finds_list_items():
    src = load_text(NESTED)
    assert src.where(("triggers", "close", "from", 0)) == (7, 12)
    assert src.where(("triggers", "close", "from", 1)) == (7, 18)
    assert src.where(("triggers", "close", "notify", 0)) == (9, 9)
    assert src.where(("triggers", "close", "notify", 0, "to", 0)) == (9, 14)
    assert src.where(("triggers", "close", "notify", 0, "urgent"), at_key=True) == (10, 9)


def test_where_falls_back_to_the_nearest_located_ancestor():
    src = load_text(NESTED)
    assert src.where(("triggers", "close", "from", 5)) == (7, 11)
    assert src.where(("triggers", "close", "roles"), at_key=True) == (6, 3)
    assert src.where(("nowhere", "at", "all")) == (1, 1)
    assert src.where(()) == (1, 1)


def test_problem_is_located_by_path():
    src = load_text(NESTED, "wf.yaml")
    src.problem(("triggers", "close", "from", 1), "unknown state 'paused'")
    src.problem(("states", "open"), "no way out", at_key=True)
    assert [str(p) for p in src.problems] == [
        "wf.yaml:7:18: [triggers.close.from[1]] unknown state 'paused'",
        "wf.yaml:2:3: [states.open] no way out",
    ]


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), ""),
        (("states",), "states"),
        (("states", "assigned", "label"), "states.assigned.label"),
        (("triggers", "classify", "from", 0), "triggers.classify.from[0]"),
        (("a", 0, 1, "b"), "a[0][1].b"),
        ((0, "a"), "[0].a"),
    ],
)
def test_format_path(path: tuple, text: str):
    assert format_path(path) == text


@pytest.mark.parametrize(("text", "value"), [("012", 12), ("09", 9), ("-010", -10)])
def test_leading_zero_integers_are_decimal(text: str, value: int):
    src = load_text(f"v: {text}\n")
    assert src.problems == []
    assert src.data == {"v": value}


# -- values shown in messages ---------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("submit", "'submit'"),
        (3, "3"),
        (None, "None"),
        (["center", "township_leader"], "['center', 'township_leader']"),
        ({"a": [1, 2]}, "{'a': [1, 2]}"),
        ("x" * 1000, "'" + "x" * (MAX_SHOWN - 2) + "… (1,000 characters)"),
        (
            [["lol"] * 9] * 9,
            "[['lol', 'lol', 'lol', 'lol', 'lol', 'lol', 'lol', 'lol', 'lol'], ['lol', 'lol'… (a list of 9 items, 90 values in all)",
        ),
        (
            list(range(100)),
            "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, … (a list of 100 items)",
        ),
        (
            {f"k{i}": i for i in range(40)},
            "{'k0': 0, 'k1': 1, 'k2': 2, 'k3': 3, 'k4': 4, 'k5': 5, 'k6': 6, 'k7': 7, 'k8': … (a mapping of 40 keys)",
        ),
    ],
)
def test_brief_shows_short_values_whole_and_cuts_long_ones_with_their_size(value, shown):
    assert brief(value) == shown


def test_brief_of_a_huge_value_is_quick():
    huge = [["lol" * 100_000] * 1000] * 100  # 100,000 strings of 300,000 characters, by reference
    started = time.perf_counter()
    shown = brief(huge)
    assert time.perf_counter() - started < 2
    assert len(shown) < 150 and shown.endswith("(a list of 100 items, 100,100 values in all)")


def test_a_problem_message_is_cut_in_the_middle_keeping_what_to_do():
    message = "bad value " + "[1, 2, 3] " * 1000 + "; write a number"
    problem = Problem("f.yaml", 1, 1, "x", message)
    assert len(problem.message) < MAX_MESSAGE + 50
    assert problem.message.startswith("bad value [1, 2, 3]") and problem.message.endswith("; write a number")
    assert "characters left out" in problem.message
