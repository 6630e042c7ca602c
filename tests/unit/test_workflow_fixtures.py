"""Table-driven workflow loading: every file under tests/fixtures/workflows.

``valid/*.yaml`` must load. Each ``invalid/NAME.yaml`` must fail with exactly the
problems listed in ``invalid/NAME.errors``, one per line::

    LINE:COLUMN: [yaml.path] substring of the message

Same count; each line, column and path equal; each message contains its substring.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine.definitions.loader import load_workflow_file
from engine.definitions.model import WorkflowDef
from engine.errors import Problem, WorkflowInvalid
from tests.support import Expected

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "workflows"
VALID = sorted((FIXTURES / "valid").glob("*.yaml"))
INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))
GRID_CASE = ROOT / "workflows" / "grid_case.yaml"
EXPECTED_LINE = re.compile(r"^(\d+):(\d+): \[(\S*)\] (.+)$")


def read_expected(path: Path) -> list[Expected]:
    out = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        match = EXPECTED_LINE.match(raw)
        assert match, f"{path.name}:{number}: write LINE:COLUMN: [path] message, not {raw!r}"
        line, column, yaml_path, text = match.groups()
        out.append(Expected(int(line), int(column), yaml_path, text))
    return out


def unmatched(expected: list[Expected], problems: list[Problem]) -> tuple[list[Expected], list[Problem]]:
    """Pair each expectation with one reported problem; return what is left on each side."""
    left = list(problems)
    missing = []
    for want in expected:
        found = next((p for p in left if want.matches(p)), None)
        if found is None:
            missing.append(want)
        else:
            left.remove(found)
    return missing, left


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def test_fixture_sets_are_not_empty():
    assert len(VALID) >= 5
    assert len(INVALID) >= 20


@pytest.mark.parametrize("path", INVALID, ids=_ids(INVALID))
def test_every_invalid_fixture_has_an_errors_file(path: Path):
    assert path.with_suffix(".errors").is_file(), f"add {path.with_suffix('.errors').name}"


@pytest.mark.parametrize("path", VALID, ids=_ids(VALID))
def test_valid_fixture_loads(path: Path):
    loaded = load_workflow_file(path)
    assert loaded.file == str(path)
    assert loaded.source_text == path.read_text(encoding="utf-8")
    assert loaded.definition.initial in loaded.definition.states


@pytest.mark.parametrize("path", [*VALID, GRID_CASE], ids=_ids([*VALID, GRID_CASE]))
def test_compiled_definition_round_trips(path: Path):
    definition = load_workflow_file(path).definition
    assert WorkflowDef.from_dict(definition.to_dict()) == definition
    as_json = json.loads(json.dumps(definition.to_dict(), ensure_ascii=False))
    assert WorkflowDef.from_dict(as_json) == definition


@pytest.mark.parametrize("path", INVALID, ids=_ids(INVALID))
def test_invalid_fixture_reports_exactly_the_expected_problems(path: Path):
    expected = read_expected(path.with_suffix(".errors"))
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow_file(path)
    problems = caught.value.problems
    missing, unexpected = unmatched(expected, problems)
    report = "\n".join(
        ["reported:", *(f"  {p.line}:{p.column}: [{p.path}] {p.message}" for p in problems)]
        + ["missing:", *(f"  {e}" for e in missing)]
        + ["unexpected:", *(f"  {p}" for p in unexpected)]
    )
    assert not missing and not unexpected, report
    assert len(problems) == len(expected)
    assert {p.file for p in problems} == {str(path)}


def test_problems_print_as_file_line_column_path_message():
    path = FIXTURES / "invalid" / "unknown_role.yaml"
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow_file(path)
    text = str(caught.value)
    assert text.startswith("1 problem(s) in workflow definition:")
    assert f"{path}:15:21: [triggers.close.roles[1]] unknown role 'mayor'" in text


def test_grid_case_loads():
    loaded = load_workflow_file(GRID_CASE)
    definition = loaded.definition
    assert definition.name == "grid_case"
    assert definition.initial == "reported"
    assert {name for name, s in definition.states.items() if s.final} == {"verified", "voided"}
    assert definition.triggers["request_extension"].stays
    assert len(loaded.source_hash) == 64


def test_yaml_1_1_words_stay_trigger_names():
    definition = load_workflow_file(FIXTURES / "valid" / "yaml11_words.yaml").definition
    assert list(definition.triggers) == ["on", "off", "yes", "no"]
    assert definition.triggers["no"].stays


def test_aliases_share_values_across_triggers():
    definition = load_workflow_file(FIXTURES / "valid" / "anchors.yaml").definition
    assert definition.report.roles == definition.triggers["submit"].roles == ("grid_worker", "info_officer")
    assert definition.triggers["approve"].roles == definition.triggers["send_back"].roles
    assert definition.triggers["send_back"].optional == ("description",)


def test_calendar_names_are_checked_when_calendars_are_known(tmp_path):
    from tests.support import calendars

    path = tmp_path / "unknown_calendar.yaml"
    path.write_text(
        (FIXTURES / "valid" / "minimal.yaml").read_text(encoding="utf-8") + "calendar: lunar\n", encoding="utf-8"
    )
    with pytest.raises(WorkflowInvalid, match=r"unknown calendar 'lunar'; calendars are: 24x7, township"):
        load_workflow_file(path, calendars())
    load_workflow_file(path)  # without calendars the name cannot be checked, and is not
