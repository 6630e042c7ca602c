"""Check the fields a command carries against the workflow's field definitions.

Every problem with the fields of one command is reported in one FieldError:
unknown fields, missing required fields, and malformed values. Values come
back normalised (text stripped, durations canonical, integers parsed).

Text goes through the one text check of :mod:`engine.text`: no control, bidirectional or invisible
format characters, a field stored in a column of the case (``title`` varchar(200), and the short
``category``, ``priority``, ``satisfaction``) is one line and at most as long as its column, any other
text field may have several lines; without a ``max_length`` of its own a text field holds at most
:data:`MAX_TEXT` characters (the API's bound of a field's value).
"""

from __future__ import annotations

from typing import Any

from engine.definitions.model import ROLE_LABELS, FieldDef, WorkflowDef
from engine.durations import parse_duration
from engine.errors import FieldError
from engine.scope import OrgSnapshot, PlaceInfo
from engine.text import text_problem

MAX_TEXT = 4000
# Text fields that land in a column of ``cases`` (engine.cases.CASE_COLUMNS): one line, at most the column.
COLUMN_LENGTHS = {"title": 200, "category": 64, "priority": 32, "satisfaction": 32}


def check(
    org: OrgSnapshot,
    definition: WorkflowDef,
    command: str,
    given: dict[str, Any],
    required: tuple[str, ...],
    optional: tuple[str, ...],
    grid: PlaceInfo,
) -> dict[str, Any]:
    problems: list[str] = []
    allowed = (*required, *optional)
    for name in given:
        if name not in allowed:
            takes = ", ".join(_describe(definition, n) for n in allowed) or "no fields"
            problems.append(f"unknown field {name!r} (it takes: {takes})")
    missing = [n for n in required if _blank(given.get(n))]
    if missing:
        problems.append("missing " + ", ".join(_describe(definition, n) for n in missing))
    values: dict[str, Any] = {}
    for name in allowed:
        if name in given and not _blank(given[name]):
            value, problem = _value(org, definition.fields[name], given[name], grid)
            if problem:
                problems.append(problem)
            else:
                values[name] = value
    if problems:
        raise FieldError(f"{command}: " + "; ".join(problems))
    return values


def _describe(definition: WorkflowDef, name: str) -> str:
    spec = definition.fields.get(name)
    return f"{name} ({spec.label})" if spec else name


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _value(org: OrgSnapshot, spec: FieldDef, raw: Any, grid: PlaceInfo) -> tuple[Any, str | None]:
    check_one = {"text": _text, "enum": _enum, "duration": _duration, "integer": _integer}
    if spec.type == "person":
        return _person(org, spec, raw, grid)
    return check_one[spec.type](spec, raw)


def _text(spec: FieldDef, raw: Any) -> tuple[Any, str | None]:
    if not isinstance(raw, str):
        return None, f"{spec.name} ({spec.label}) must be text"
    column = COLUMN_LENGTHS.get(spec.name)
    limit = min(filter(None, (spec.max_length, column))) if column else spec.max_length or MAX_TEXT
    sent = raw.replace("\r\n", "\n") if column is None else raw
    name, multiline = f"{spec.name} ({spec.label})", column is None
    # the characters as sent (positions as typed), the length as stored (stripped)
    problem = text_problem(sent, name, len(sent), multiline=multiline) or text_problem(
        sent.strip(), name, limit, multiline=multiline
    )
    if problem:
        return None, problem
    return sent.strip(), None


def _enum(spec: FieldDef, raw: Any) -> tuple[Any, str | None]:
    if not isinstance(raw, str):
        return None, f"{spec.name} ({spec.label}) must be one value written as text, not {type(raw).__name__}"
    if raw in spec.values:
        return raw, None
    by_label = {label: key for key, label in spec.values.items()}
    if raw in by_label:  # a Chinese label is accepted too
        return by_label[raw], None
    choices = ", ".join(f"{k} ({v})" for k, v in spec.values.items())
    return None, f"{spec.name} ({spec.label}) {raw!r} is not one of: {choices}"


def _duration(spec: FieldDef, raw: Any) -> tuple[Any, str | None]:
    try:
        return str(parse_duration(raw)), None
    except ValueError as exc:
        return None, f"{spec.name} ({spec.label}): {exc}"


def _integer(spec: FieldDef, raw: Any) -> tuple[Any, str | None]:
    if isinstance(raw, bool):
        return None, f"{spec.name} ({spec.label}) must be a whole number"
    try:
        return int(raw), None
    except (TypeError, ValueError):
        return None, f"{spec.name} ({spec.label}) must be a whole number, not {raw!r}"


def _person(org: OrgSnapshot, spec: FieldDef, raw: Any, grid: PlaceInfo) -> tuple[Any, str | None]:
    if not isinstance(raw, str):
        return None, f"{spec.name} ({spec.label}) must be a person id written as text"
    person = org.people.get(raw)
    if person is None or not person.active:
        return None, f"{spec.name} ({spec.label}): no active person {raw!r} in the org chart"
    if spec.roles and spec.scope == "case_grid" and not org.roles_over(person.id, grid) & set(spec.roles):
        wanted = " or ".join(f"{ROLE_LABELS[r]} {r}" for r in spec.roles)
        return (
            None,
            f"{spec.name} ({spec.label}): {person.name} ({person.id}) cannot handle cases of grid {grid.id}; needs {wanted} there",
        )
    return person.id, None
