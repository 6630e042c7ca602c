"""Check the fields a command carries against the workflow's field definitions.

Every problem with the fields of one command is reported in one FieldError:
unknown fields, missing required fields, and malformed values. Values come
back normalised (text stripped, durations canonical, integers parsed).
"""

from __future__ import annotations

import re
from typing import Any

from engine.definitions.model import ROLE_LABELS, FieldDef, WorkflowDef
from engine.durations import parse_duration
from engine.errors import FieldError
from engine.scope import OrgSnapshot, PlaceInfo


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


_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def _text(spec: FieldDef, raw: Any) -> tuple[Any, str | None]:
    if not isinstance(raw, str):
        return None, f"{spec.name} ({spec.label}) must be text"
    bad = _UNPRINTABLE.search(raw)
    if bad:
        return None, (
            f"{spec.name} ({spec.label}) contains an unprintable character "
            f"(U+{ord(bad.group()):04X}); remove it or check the terminal's encoding (UTF-8)"
        )
    value = raw.strip()
    if spec.max_length and len(value) > spec.max_length:
        return None, f"{spec.name} ({spec.label}) is {len(value)} characters long; at most {spec.max_length}"
    return value, None


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
