"""Structural checks of a workflow file against ``workflows/schema.json``.

jsonschema finds every structural problem at once; this module turns each into
a located :class:`~engine.errors.Problem` with a message a supervisor can act on.
"""

from __future__ import annotations

import difflib
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from engine.durations import HINT as DURATION_HINT
from engine.yamlsrc import Source

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflows" / "schema.json"


@cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


def check_structure(src: Source) -> None:
    """Add a problem to ``src`` for every place the document breaks the schema."""
    for error in _validator().iter_errors(src.data):
        _report(src, error)


def _report(src: Source, error: ValidationError) -> None:
    path = tuple(error.absolute_path)
    kind = error.validator
    if kind == "additionalProperties":
        _unknown_keys(src, path, error)
    elif kind == "required":
        src.problem(path, f"missing key {_required_name(error)!r}", at_key=True)
    elif kind == "pattern" and error.schema.get("pattern") == schema()["$defs"]["duration"]["pattern"]:
        src.problem(path, f"bad duration {error.instance!r}: {DURATION_HINT}")
    elif kind == "pattern" and "%" in error.schema.get("pattern", ""):
        src.problem(path, f"bad share {error.instance!r}: write a percentage from 1% to 99%")
    elif kind == "pattern":
        src.problem(path, f"bad name {error.instance!r}: use lower_snake_case starting with a letter")
    elif kind == "propertyNames":
        _bad_key_name(src, path, error)
    elif kind == "oneOf" and path[:1] == ("triggers",) and len(path) == 2:
        src.problem(path, "a trigger needs exactly one of 'to: <state>' or 'stay: true'", at_key=True)
    elif kind in ("oneOf", "anyOf") and error.context:
        _report(src, best_match(error.context))
    else:
        src.problem(path, error.message)


def _unknown_keys(src: Source, path: tuple[Any, ...], error: ValidationError) -> None:
    known = list(error.schema.get("properties", {}))
    for key in sorted(set(error.instance) - set(known)):
        hint = difflib.get_close_matches(key, known, n=1)
        advice = f"did you mean {hint[0]!r}?" if hint else f"known keys: {', '.join(known)}"
        src.problem((*path, key), f"unknown key {key!r}; {advice}", at_key=True)


def _required_name(error: ValidationError) -> str:
    return error.message.split("'")[1] if "'" in error.message else error.message


def _bad_key_name(src: Source, path: tuple[Any, ...], error: ValidationError) -> None:
    bad = error.instance if isinstance(error.instance, str) else str(error.instance)
    src.problem((*path, bad), f"bad name {bad!r}: use lower_snake_case starting with a letter", at_key=True)
