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
from engine.yamlsrc import MAX_SHOWN, Source, brief

ALTERNATIVE_EXAMPLES = {"to": "to: <state>", "stay": "stay: true", "at": "at: 80%", "before": "before: 1h"}
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
    if "propertyNames" in error.relative_schema_path:
        _bad_key_name(src, path, error)
    elif kind == "additionalProperties":
        _unknown_keys(src, path, error)
    elif kind == "required":
        src.problem(path, f"missing key {_required_name(error)!r}", at_key=True)
    elif kind == "pattern" and error.schema.get("pattern") == schema()["$defs"]["duration"]["pattern"]:
        src.problem(path, f"bad duration {brief(error.instance)}: {DURATION_HINT}")
    elif kind == "pattern" and "%" in error.schema.get("pattern", ""):
        src.problem(path, f"bad share {brief(error.instance)}: write a percentage from 1% to 99%")
    elif kind == "pattern":
        src.problem(path, f"bad name {brief(error.instance)}: use lower_snake_case starting with a letter")
    elif kind == "oneOf" and _alternatives(error.validator_value):
        names = [ALTERNATIVE_EXAMPLES.get(n, n) for n in _alternatives(error.validator_value)]
        src.problem(path, f"needs exactly one of {' or '.join(repr(n) for n in names)}", at_key=True)
    elif kind in ("oneOf", "anyOf") and error.context:
        _report(src, _most_relevant(error))
    elif kind == "const" and path[-1:] == ("stay",):
        src.problem(path, "'stay' can only be true; to move the case write 'to: <state>' instead")
    elif kind == "const":
        src.problem(path, f"must be {error.validator_value!r}")
    elif kind == "maxLength":
        shown = brief(error.instance)  # which ends with the length of a long value
        src.problem(path, f"{shown} is too long: at most {error.validator_value} characters; shorten it")
    elif kind == "maxProperties":
        src.problem(path, f"{len(error.instance):,} entries, at most {error.validator_value}", at_key=True)
    else:
        src.problem(path, _message(error))


def _message(error: ValidationError) -> str:
    """jsonschema's message, with the offending value it quotes (``[...] is not of type 'string'``)
    cut by :func:`~engine.yamlsrc.brief`: an alias-expanded list must not fill the screen."""
    shown = repr(error.instance)
    if len(shown) <= MAX_SHOWN or shown not in error.message:
        return error.message
    return error.message.replace(shown, brief(error.instance))


def _alternatives(branches: list[dict[str, Any]]) -> list[str]:
    """For ``oneOf: [{required: [a]}, {required: [b]}]``: the names a, b; else []."""
    if all(set(b) == {"required"} and len(b["required"]) == 1 for b in branches):
        return [b["required"][0] for b in branches]
    return []


def _most_relevant(error: ValidationError) -> ValidationError:
    """Of the branches that failed, the one whose type fits the value (a list for a list...)."""
    duration = schema()["$defs"]["duration"]["pattern"]
    for sub in error.context or []:
        if sub.validator == "pattern" and sub.validator_value == duration:
            return sub
    fitting = [sub for sub in error.context or [] if sub.validator not in ("type", "const")]
    return best_match(fitting or error.context)


def _unknown_keys(src: Source, path: tuple[Any, ...], error: ValidationError) -> None:
    known = list(error.schema.get("properties", {}))
    for key in sorted(set(error.instance) - set(known)):
        hint = difflib.get_close_matches(key, known, n=1)
        advice = f"did you mean {hint[0]!r}?" if hint else f"known keys: {', '.join(known)}"
        src.problem((*path, key), f"unknown key {brief(key)}; {advice}", at_key=True)


def _required_name(error: ValidationError) -> str:
    return error.message.split("'")[1] if "'" in error.message else error.message


def _bad_key_name(src: Source, path: tuple[Any, ...], error: ValidationError) -> None:
    bad = error.instance if isinstance(error.instance, str) else str(error.instance)
    src.problem((*path, bad), f"bad name {brief(bad)}: use lower_snake_case starting with a letter", at_key=True)
    src.rejected.add((*path, bad))
