"""workflows/schema.json is a valid Draft 2020-12 schema that the default workflow meets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from engine.definitions.schema import SCHEMA_PATH
from engine.yamlsrc import load_file

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "workflows" / "schema.json"
GRID_CASE = ROOT / "workflows" / "grid_case.yaml"
VALID_FIXTURES = sorted((ROOT / "tests" / "fixtures" / "workflows" / "valid").glob("*.yaml"))


def schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def test_the_loader_uses_this_schema_file():
    assert SCHEMA_PATH.resolve() == SCHEMA_FILE.resolve()


def test_schema_is_a_valid_draft_2020_12_schema():
    document = schema()
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(document)


def _errors(path: Path) -> list[str]:
    src = load_file(path)
    assert src.problems == []
    return [f"{list(e.absolute_path)}: {e.message}" for e in Draft202012Validator(schema()).iter_errors(src.data)]


def test_grid_case_meets_the_schema():
    assert _errors(GRID_CASE) == []


@pytest.mark.parametrize("path", VALID_FIXTURES, ids=[p.name for p in VALID_FIXTURES])
def test_valid_fixtures_meet_the_schema(path: Path):
    assert _errors(path) == []
