"""Plain values of the application's answers: ISO times for machines, local times with their zone for
people, and the dicts of a case, an event, a workflow, a person and a place.

Every face uses these: the CLI's ``--json`` and tables, the HTTP API, the runtime's log lines. Nothing here
knows Rich, Typer or HTTP.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from engine.definitions.model import ROLE_LABELS, WorkflowDef

if TYPE_CHECKING:  # read by attribute only: gridflow.quick passes rows it read without the ORM
    from engine.store.models import Case, CaseEvent, Person, Place, WorkflowDefinition


def iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def parse_iso(text: str | None) -> datetime | None:
    """The aware datetime of an :func:`iso` text (None for None or a text that is not one)."""
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


# How a person reads a time, in every table and message: local, with its zone.
LOCAL_TIME_FORMAT = "%H:%M %Z"  # 10:03 CST, for a time later today
LOCAL_FORMAT = f"%Y-%m-%d {LOCAL_TIME_FORMAT}"  # 2026-11-28 10:03 CST
LOCAL_FORMAT_SECONDS = "%Y-%m-%d %H:%M:%S %Z"  # the runtime's log lines


def local_text(at: datetime | None, tz: ZoneInfo) -> str:
    """``at`` in ``tz`` with the zone's name, like ``2026-11-28 10:03 CST``; empty for no time.

    JSON keeps :func:`iso` (ISO 8601 with the offset); this is for people.
    """
    return at.astimezone(tz).strftime(LOCAL_FORMAT) if at else ""


def local_short(at: datetime, tz: ZoneInfo, today: datetime) -> str:
    """:func:`local_text` without the date when ``at`` falls on ``today``'s local date: ``07:00 CST``."""
    local = at.astimezone(tz)
    return local.strftime(LOCAL_TIME_FORMAT) if local.date() == today.astimezone(tz).date() else local_text(at, tz)


def enum_label(definition: WorkflowDef, name: str, value: str | None) -> str | None:
    spec = definition.fields.get(name)
    return spec.values.get(value, value) if spec and value else None


def case_dict(case: Case, definition: WorkflowDef, allowed: list[str] | None = None) -> dict[str, Any]:
    out = {
        "id": case.id,
        "code": case.code,
        "workflow": case.workflow_name,
        "workflow_version": case.workflow_version,
        "status": case.status,
        "status_label": definition.state_label(case.status),
        "version": case.version,
        "title": case.title,
        "description": case.description,
        "category": case.category,
        "category_label": enum_label(definition, "category", case.category),
        "priority": case.priority,
        "priority_label": enum_label(definition, "priority", case.priority),
        "grid": case.grid_id,
        "reporter": case.reporter_id,
        "assignee": case.assignee_id,
        "satisfaction": case.satisfaction,
        "rework_count": case.rework_count,
        "extension_count": case.extension_count,
        "pending_extension": case.pending_extension,
        "reported_at": iso(case.reported_at),
        "updated_at": iso(case.updated_at),
        "closed_at": iso(case.closed_at),
    }
    if allowed is not None:
        out["allowed_triggers"] = [{"trigger": t, "label": definition.triggers[t].label} for t in allowed]
    return out


def event_dict(event: CaseEvent, definition: WorkflowDef) -> dict[str, Any]:
    trigger = definition.triggers.get(event.trigger)
    return {
        "seq": event.seq,
        "at": iso(event.at),
        "actor": event.actor_id,
        "trigger": event.trigger,
        "trigger_label": trigger.label if trigger else "上报" if event.trigger == "report" else event.trigger,
        "from": event.from_state,
        "to": event.to_state,
        "payload": event.payload,
        "workflow_version": event.workflow_version,
        "received_at": iso(event.received_at),
        "entered_by": event.entered_by,
    }


def workflow_summary(row: WorkflowDefinition, d: WorkflowDef) -> dict[str, Any]:
    return {
        "name": row.name,
        "version": row.version,
        "title": row.title,
        "published_at": iso(row.published_at),
        "source_file": row.source_file,
        "source_hash": row.source_hash,
        "initial": d.initial,
        "states": [
            {"name": s.name, "label": s.label, "initial": s.initial, "final": s.final, "pauses_sla": s.pauses_sla}
            for s in d.states.values()
        ],
        "triggers": [
            {
                "name": t.name,
                "label": t.label,
                "from": list(t.sources),
                "to": t.dest,
                "roles": list(t.roles),
                "fields": list(t.required),
                "optional": list(t.optional),
                "guards": list(t.guards),
                "effects": list(t.effects),
            }
            for t in d.triggers.values()
        ],
    }


def person_dict(p: Person, roles: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "title": p.title,
        "phone": p.phone,
        "email": p.email,
        "wecom": p.wecom,
        "notify": p.notify,
        "active": p.active,
        "roles": [{"role": r, "role_label": ROLE_LABELS.get(r, r), "scope": s} for r, s in roles],
    }


def place_dict(p: Place) -> dict[str, Any]:
    return {
        "id": p.id,
        "kind": p.kind,
        "name": p.name,
        "parent": p.parent_id,
        "village": p.village_id,
        "grid_kind": p.grid_kind,
        "households": p.households,
        "active": p.active,
    }
