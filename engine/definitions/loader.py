"""Load a workflow file: safe YAML -> schema -> whole-graph checks -> WorkflowDef.

Every problem in the file is collected and raised together as one
:class:`~engine.errors.WorkflowInvalid`; a broken file never loads as empty.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.definitions.model import BUILTIN_FIELDS, FieldDef, ReportDef, StateDef, TriggerDef, WorkflowDef
from engine.definitions.schema import check_structure, schema
from engine.definitions.validate import check_semantics
from engine.errors import WorkflowInvalid
from engine.yamlsrc import Source, load_file, load_text

EXTRA_KEYS = ("calendar", "calendar_by_category", "case_sla", "extensions")


@dataclass(frozen=True)
class LoadedWorkflow:
    definition: WorkflowDef
    source_text: str
    source_hash: str
    file: str


def load_workflow_file(path: str | Path, calendars: Mapping[str, Any] | None = None) -> LoadedWorkflow:
    """Load and check a workflow file; with ``calendars``, calendar names are checked too."""
    return _finish(load_file(path), calendars)


def load_workflow_text(text: str, file: str = "<string>", calendars: Mapping[str, Any] | None = None) -> LoadedWorkflow:
    return _finish(load_text(text, file), calendars)


def check_source(src: Source, calendars: Mapping[str, Any] | None = None) -> None:
    """Add every structural and semantic problem of ``src`` to it."""
    if src.data is None and src.problems:
        return
    if not isinstance(src.data, dict):
        src.problem((), "a workflow file must be a mapping with workflow, title, states and triggers")
        return
    if _too_many(src):
        return  # checked before the schema, which would take seconds over thousands of states
    check_structure(src)
    check_semantics(src, calendars)


def _too_many(src: Source) -> bool:
    """A problem for each of states, triggers and fields with more entries than the schema allows."""
    over = False
    for key in ("states", "triggers", "fields"):
        value, most = src.data.get(key), schema()["properties"][key]["maxProperties"]
        if isinstance(value, dict) and len(value) > most:
            src.problem(
                (key,),
                f"{len(value):,} {key} (at most {most}); a workflow this large cannot be run by people, split it",
            )
            over = True
    return over


def _finish(src: Source, calendars: Mapping[str, Any] | None) -> LoadedWorkflow:
    check_source(src, calendars)
    if src.problems:
        raise WorkflowInvalid(src.problems)
    digest = hashlib.sha256(src.text.encode("utf-8")).hexdigest()
    return LoadedWorkflow(build(src.data), src.text, digest, src.file)


def build(doc: dict[str, Any]) -> WorkflowDef:
    """Turn a validated document into frozen values."""
    report = doc.get("report", {})
    return WorkflowDef(
        name=doc["workflow"],
        title=doc["title"],
        description=doc.get("description", ""),
        report=ReportDef(
            roles=tuple(report.get("roles", ReportDef.roles)),
            required=tuple(report.get("fields", ReportDef.required)),
            optional=tuple(report.get("optional", ReportDef.optional)),
            notify=tuple(report.get("notify", ())),
        ),
        fields={name: _field(name, spec) for name, spec in {**BUILTIN_FIELDS, **doc.get("fields", {})}.items()},
        states={name: _state(name, spec) for name, spec in doc["states"].items()},
        triggers={name: _trigger(name, spec) for name, spec in doc["triggers"].items()},
        extras={key: doc[key] for key in EXTRA_KEYS if key in doc},
    )


def _field(name: str, spec: dict[str, Any]) -> FieldDef:
    return FieldDef(
        name=name,
        label=spec["label"],
        type=spec["type"],
        values=dict(spec.get("values", {})),
        max_length=spec.get("max_length"),
        roles=tuple(spec.get("roles", ())),
        scope=spec.get("scope", "any"),
    )


def _state(name: str, spec: dict[str, Any]) -> StateDef:
    return StateDef(
        name=name,
        label=spec["label"],
        initial=spec.get("initial", False),
        final=spec.get("final", False),
        pauses_sla=spec.get("pauses_sla", False),
        sla=spec.get("sla"),
        notify=tuple(spec.get("notify", ())),
    )


def _trigger(name: str, spec: dict[str, Any]) -> TriggerDef:
    sources = spec["from"]
    return TriggerDef(
        name=name,
        label=spec["label"],
        sources=tuple(sources if isinstance(sources, list) else [sources]),
        dest=spec.get("to"),
        roles=tuple(spec["roles"]),
        required=tuple(spec.get("fields", ())),
        optional=tuple(spec.get("optional", ())),
        guards=tuple(spec.get("guards", ())),
        effects=tuple(spec.get("effects", ())),
        notify=tuple(spec.get("notify", ())),
    )
