"""Whole-graph and cross-reference checks of a workflow document.

Runs on the raw (already structurally checked) mapping so that every problem in
a file is found in one pass, even where the structure is broken elsewhere.
Each check is a small function that adds located problems to the source.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from engine.definitions.model import BUILTIN_FIELDS, CASE_ROLES, ORG_ROLES
from engine.durations import parse_duration
from engine.rules import EFFECTS, GUARDS
from engine.yamlsrc import Source, brief

CASE_COLUMN_TYPES = {"category": "enum", "priority": "enum", "satisfaction": "enum", "assignee": "person"}
FIELD_ONLY_KEYS = {"values": ("enum",), "max_length": ("text",), "roles": ("person",), "scope": ("person",)}


def check_semantics(src: Source, calendars: Mapping[str, Any] | None = None) -> None:
    """All cross-reference and graph checks; ``calendars`` (name -> calendar) enables the calendar ones."""
    doc = src.data if isinstance(src.data, dict) else {}
    states = _mapping(doc.get("states"))
    triggers = _mapping(doc.get("triggers"))
    _check_fields(src, _mapping(doc.get("fields")))
    fields = {**BUILTIN_FIELDS, **_mapping(doc.get("fields"))}
    _check_report(src, _mapping(doc.get("report")), fields)
    _check_triggers(src, triggers, states, fields)
    _check_state_roles(src, states, fields)
    _check_graph(src, states, triggers)
    _check_sla(src, doc, states, fields, calendars)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


# -- fields ----------------------------------------------------------------


def _check_fields(src: Source, fields: dict[str, Any]) -> None:
    for name, spec in fields.items():
        spec = _mapping(spec)
        kind = spec.get("type")
        for key, kinds in FIELD_ONLY_KEYS.items():
            if key in spec and kind not in kinds:
                src.problem(("fields", name, key), f"{key!r} applies only to {' or '.join(kinds)} fields")
        if kind == "enum" and "values" not in spec:
            src.problem(("fields", name), "an enum field needs 'values' (value id: 中文标签)", at_key=True)
        expected = CASE_COLUMN_TYPES.get(name)
        if expected and kind and kind != expected:
            src.problem(("fields", name, "type"), f"field {brief(name)} is stored on the case and must be {expected}")
        _check_roles(src, ("fields", name, "roles"), spec.get("roles"), allow_case_roles=False)


def _check_field_refs(src: Source, base: tuple[Any, ...], spec: dict[str, Any], fields: dict[str, Any]) -> None:
    required = [f for f in _as_list(spec.get("fields")) if isinstance(f, str)]
    for key in ("fields", "optional"):
        for i, name in enumerate(_as_list(spec.get(key))):
            if isinstance(name, str) and name not in fields:
                src.problem((*base, key, i), f"unknown field {brief(name)}; define it under 'fields' first")
            if key == "optional" and name in required:
                src.problem((*base, key, i), f"field {brief(name)} is both required and optional")


# -- roles -----------------------------------------------------------------


def _check_roles(src: Source, path: tuple[Any, ...], roles: Any, allow_case_roles: bool = True) -> None:
    known = ORG_ROLES + (CASE_ROLES if allow_case_roles else ())
    for i, role in enumerate(_as_list(roles)):
        if isinstance(role, str) and role not in known:
            src.problem((*path, i), f"unknown role {brief(role)}; roles are: {', '.join(known)}")


def _check_notify(src: Source, path: tuple[Any, ...], notify: Any) -> None:
    for i, entry in enumerate(_as_list(notify)):
        _check_roles(src, (*path, i, "to"), _mapping(entry).get("to"))


def _check_state_roles(src: Source, states: dict[str, Any], fields: dict[str, Any]) -> None:
    enum_values = {name: set(_mapping(_mapping(fields.get(name)).get("values"))) for name in ("category", "priority")}
    for name, spec in states.items():
        spec = _mapping(spec)
        _check_notify(src, ("states", name, "notify"), spec.get("notify"))
        sla = _mapping(spec.get("sla"))
        for i, reminder in enumerate(_as_list(sla.get("reminders"))):
            _check_roles(src, ("states", name, "sla", "reminders", i, "notify"), _mapping(reminder).get("notify"))
        for i, level in enumerate(_as_list(sla.get("escalation"))):
            _check_roles(src, ("states", name, "sla", "escalation", i, "notify"), _mapping(level).get("notify"))
        _check_roles(src, ("states", name, "sla", "notify_on_breach"), sla.get("notify_on_breach"))
        for key, field in (("by_category", "category"), ("by_priority", "priority")):
            for value in _mapping(sla.get(key)):
                if value not in enum_values[field]:
                    src.problem(("states", name, "sla", key, value), f"unknown {field} {brief(value)}", at_key=True)


# -- report and triggers ---------------------------------------------------


def _check_report(src: Source, report: dict[str, Any], fields: dict[str, Any]) -> None:
    _check_roles(src, ("report", "roles"), report.get("roles"), allow_case_roles=False)
    if "fields" in report and "title" not in _as_list(report["fields"]):
        src.problem(("report", "fields"), "a report must require 'title': every case has a title")
    _check_field_refs(src, ("report",), report, fields)
    _check_notify(src, ("report", "notify"), report.get("notify"))


def _check_triggers(src: Source, triggers: dict[str, Any], states: dict[str, Any], fields: dict) -> None:
    for name, spec in triggers.items():
        spec = _mapping(spec)
        base = ("triggers", name)
        for i, source in enumerate(_as_list(spec.get("from"))):
            path = (*base, "from", i) if isinstance(spec.get("from"), list) else (*base, "from")
            _check_state_ref(src, path, source, states)
            if _mapping(states.get(source)).get("final"):
                src.problem(path, f"state {brief(source)} is final; no trigger may leave it")
        if "to" in spec:
            _check_state_ref(src, (*base, "to"), spec["to"], states)
        _check_roles(src, (*base, "roles"), spec.get("roles"))
        _check_field_refs(src, base, spec, fields)
        _check_names(src, (*base, "guards"), spec.get("guards"), GUARDS, "guard")
        _check_names(src, (*base, "effects"), spec.get("effects"), EFFECTS, "effect")
        _check_notify(src, (*base, "notify"), spec.get("notify"))
    _check_duplicate_labels(src, triggers)


def _check_state_ref(src: Source, path: tuple[Any, ...], state: Any, states: dict[str, Any]) -> None:
    if isinstance(state, str) and state not in states:
        src.problem(path, f"unknown state {brief(state)}; states are: {', '.join(states)}")


def _check_names(src: Source, path: tuple[Any, ...], names: Any, known: dict, kind: str) -> None:
    for i, name in enumerate(_as_list(names)):
        if name not in known:
            src.problem(
                (*path, i),
                f"unknown {kind} {brief(name)}; a workflow can only name built-in {kind}s: {', '.join(known)}",
            )


def _check_duplicate_labels(src: Source, triggers: dict[str, Any]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for name, spec in triggers.items():
        spec = _mapping(spec)
        for source in _as_list(spec.get("from")):
            key = (str(source), str(spec.get("label")))
            if key in seen:
                src.problem(
                    ("triggers", name, "label"),
                    f"trigger {brief(name)} has the same label {brief(key[1])} as {brief(seen[key])} from state "
                    f"{brief(source)}; users could not tell them apart",
                )
            seen.setdefault(key, name)


# -- the graph ---------------------------------------------------------------


def _edges(triggers: dict[str, Any], states: dict[str, Any]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {name: set() for name in states}
    for spec in triggers.values():
        spec = _mapping(spec)
        dest = spec.get("to")
        for source in _as_list(spec.get("from")):
            if source in edges and dest in states and dest != source:
                edges[source].add(dest)
    return edges


def _reach(start: set[str], edges: dict[str, set[str]]) -> set[str]:
    seen, queue = set(start), deque(start)
    while queue:
        for nxt in edges.get(queue.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def _check_graph(src: Source, states: dict[str, Any], triggers: dict[str, Any]) -> None:
    if not states:
        return
    initial = [n for n, s in states.items() if _mapping(s).get("initial")]
    finals = {n for n, s in states.items() if _mapping(s).get("final")}
    if not initial:
        src.problem(("states",), "no initial state; mark exactly one state 'initial: true'", at_key=True)
    for extra in initial[1:]:
        src.problem(("states", extra, "initial"), f"a second initial state (the first is {brief(initial[0])})")
    if not finals:
        src.problem(("states",), "no final state; mark at least one state 'final: true'", at_key=True)
    for name in initial:
        if name in finals:
            src.problem(("states", name, "final"), "the initial state cannot be final")
    edges = _edges(triggers, states)
    reachable = _reach(set(initial[:1]), edges)
    reverse: dict[str, set[str]] = {name: set() for name in states}
    for source, dests in edges.items():
        for dest in dests:
            reverse[dest].add(source)
    can_finish = _reach(finals, reverse)
    for name in states:
        _check_state_in_graph(src, name, initial, reachable, finals, edges, can_finish)


def _check_state_in_graph(src, name, initial, reachable, finals, edges, can_finish) -> None:
    path = ("states", name)
    if initial and name not in reachable and name not in initial:  # a second initial is reported as such
        src.problem(path, f"state {brief(name)} is unreachable from the initial state", at_key=True)
    if name in finals:
        return
    if not edges[name]:
        src.problem(path, f"state {brief(name)} is a dead end: it is not final and no trigger leaves it", at_key=True)
    elif finals and name not in can_finish:
        src.problem(
            path, f"state {brief(name)} has no path to a final state; cases there could never close", at_key=True
        )


# -- SLA ------------------------------------------------------------------------------------


def _check_sla(src: Source, doc: dict, states: dict, fields: dict, calendars: Mapping[str, Any] | None) -> None:
    categories = set(_mapping(_mapping(fields.get("category")).get("values")))
    default = doc.get("calendar", "township")
    _check_calendar(src, ("calendar",), doc.get("calendar"), calendars)
    for category, entry in _mapping(doc.get("calendar_by_category")).items():
        path = ("calendar_by_category", category)
        if category not in categories:
            src.problem(path, f"unknown category {brief(category)}", at_key=True)
        name = entry.get("calendar") if isinstance(entry, dict) else entry
        _check_calendar(src, (*path, "calendar") if isinstance(entry, dict) else path, name, calendars)
        for i, month in enumerate(_as_list(_mapping(entry).get("months"))):
            if not isinstance(month, int) or not 1 <= month <= 12:
                src.problem((*path, "months", i), f"bad month {brief(month)}: write 1 to 12")
    if isinstance(doc.get("case_sla"), dict):
        _check_clock(src, ("case_sla",), doc["case_sla"], default, calendars)
    for name, spec in states.items():
        sla = _mapping(spec).get("sla") if isinstance(spec, dict) else None
        if isinstance(sla, dict):
            _check_calendar(src, ("states", name, "sla", "calendar"), sla.get("calendar"), calendars)
            _check_clock(src, ("states", name, "sla"), sla, sla.get("calendar", default), calendars)


def _check_calendar(src: Source, path: tuple, name: Any, calendars: Mapping[str, Any] | None) -> None:
    if calendars is not None and isinstance(name, str) and name not in calendars:
        src.problem(
            path,
            f"unknown calendar {brief(name)}; calendars are: {', '.join(sorted(calendars))} (config/calendars.yaml)",
        )


def _seconds(text: Any, day_s: float) -> float | None:
    try:
        d = parse_duration(text)
    except ValueError:
        return None  # the schema reports bad durations
    return d.amount * (day_s if d.unit == "d" else 3600 if d.unit == "h" else 60)


def _check_clock(src: Source, path: tuple, sla: dict, calendar: Any, calendars: Mapping[str, Any] | None) -> None:
    day = getattr((calendars or {}).get(calendar), "day_length", None)
    day_s = day.total_seconds() if day else 8 * 3600
    limit = _seconds(sla.get("limit"), day_s)
    for i, reminder in enumerate(_as_list(sla.get("reminders"))):
        lead = _seconds(_mapping(reminder).get("before"), day_s)
        if limit and lead is not None and lead >= limit:
            src.problem(
                (*path, "reminders", i, "before"),
                f"a reminder {reminder['before']} before a {sla['limit']} limit would be due at once; "
                "make it shorter than the limit",
            )
    previous: float | None = None
    for i, level in enumerate(_as_list(sla.get("escalation"))):
        after = _mapping(level).get("after")
        seconds = 0.0 if after == "breach" else _seconds(after, day_s)
        if seconds is None:
            continue
        if previous is not None and seconds <= previous:
            src.problem(
                (*path, "escalation", i, "after"),
                f"escalation level {i + 1} ({after}) must come later than level {i} "
                "(levels count from the breach and must increase)",
            )
        previous = seconds
