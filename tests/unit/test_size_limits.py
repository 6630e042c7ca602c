"""Input files that are far too large are refused at once, with their place, before any slow work
(issue 19, finding 7): the file's size, one value's length, the number of states and triggers."""

from __future__ import annotations

import time

import pytest

from engine.definitions.loader import load_workflow_file, load_workflow_text
from engine.errors import WorkflowInvalid
from engine.yamlsrc import MAX_BYTES, MAX_SCALAR, load_file, load_text


def _chain(states: int) -> str:
    lines = [
        "workflow: big",
        "title: 大",
        "report: {roles: [grid_worker]}",
        "states:",
        "  reported: {label: 上报, initial: true}",
    ]
    lines += [f"  s{i}: {{label: 状态{i}{', final: true' if i == states - 1 else ''}}}" for i in range(states)]
    lines += ["triggers:"]
    lines += [
        f"  t{i}: {{label: 步{i}, from: [{'reported' if i == 0 else f's{i - 1}'}], to: s{i}, roles: [center]}}"
        for i in range(states)
    ]
    return "\n".join(lines) + "\n"


def test_a_file_past_the_size_limit_is_refused_without_being_read(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"a: b\n" * (MAX_BYTES // 5 + 1))
    start = time.perf_counter()
    src = load_file(path)
    assert time.perf_counter() - start < 0.1
    assert [p.message for p in src.problems] == [
        f"the file is {path.stat().st_size:,} bytes, more than the {MAX_BYTES:,} a configuration file may hold, "
        "so it was not read; is it the right file? split it or shorten it"
    ]
    assert src.data is None
    assert load_text("a: '" + "b" * MAX_BYTES + "'\n").problems  # text handed over directly (the API's uploads)


def test_a_value_past_the_scalar_limit_is_refused_with_its_place():
    src = load_text("a: ok\nb: " + "x" * (MAX_SCALAR + 1) + "\n", "f.yaml")
    assert [(p.line, p.column, p.path) for p in src.problems] == [(2, 4, "b")]
    assert f"{MAX_SCALAR + 1:,} characters (at most {MAX_SCALAR:,})" in src.problems[0].message
    assert not load_text("b: " + "x" * MAX_SCALAR + "\n").problems


def test_thousands_of_states_are_refused_by_count_before_the_schema_runs(monkeypatch):
    """The count is checked before jsonschema walks every state (which took 6 s for 10,000); the time
    bound is loose (0.4 s on a quiet machine) so that a loaded CI machine does not make it flaky."""
    from engine.definitions import loader

    def schema_must_not_run(src):  # type: ignore[no-untyped-def]
        raise AssertionError("the schema ran over a workflow already refused by its size")

    monkeypatch.setattr(loader, "check_structure", schema_must_not_run)
    text = _chain(1_200)
    assert len(text.encode()) < MAX_BYTES
    start = time.perf_counter()
    with pytest.raises(WorkflowInvalid) as refused:
        load_workflow_text(text, "big.yaml")
    took = time.perf_counter() - start
    assert took < 3.0, took
    messages = [p.message for p in refused.value.problems]
    assert messages == [
        "1,201 states (at most 100); a workflow this large cannot be run by people, split it",
        "1,200 triggers (at most 200); a workflow this large cannot be run by people, split it",
    ]


def test_a_workflow_at_the_count_limits_still_loads():
    loaded = load_workflow_text(_chain(99), "ok.yaml")
    assert len(loaded.definition.states) == 100


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("title", "题" * 201, "is too long: at most 200 characters"),
        ("description", "说" * 2001, "is too long: at most 2000 characters"),
        ("workflow", "w" * 33, "is too long: at most 32 characters"),
    ],
)
def test_top_level_texts_have_the_columns_limits(tmp_path, key, value, message):
    text = _chain(2).replace("title: 大", "title: 大" if key != "title" else f"title: {value}")
    if key == "description":
        text += f"description: {value}\n"
    if key == "workflow":
        text = text.replace("workflow: big", f"workflow: {value}")
    path = tmp_path / "w.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(WorkflowInvalid, match=message):
        load_workflow_file(path)
