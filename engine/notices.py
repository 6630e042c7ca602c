"""Notices staged by case steps: the workflow's ``notify`` entries become outbox rows in the step's
own transaction (a step that rolls back stages nothing).

``report.notify`` fires when a case is reported, a trigger's ``notify`` when it is taken, a
state's ``notify`` when a case enters the state. Each entry names roles (org roles held over
the case's grid, or the case roles ``assignee`` and ``reporter``) and a template (the event);
``urgent: true`` sends at any hour. One row per person, unique per event step and template.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.scope import OrgSnapshot
from engine.store.case_repo import CaseRecord, EventRecord

DEFAULT_TEMPLATE = {"report": "case_received"}
URGENT_PRIORITIES = ("urgent", "critical")  # a case of these priorities is told at any hour


def recipients(org: OrgSnapshot, case: CaseRecord, roles: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Person id → the role they are told as, resolved from the org chart now (first role wins)."""
    grid = org.places.get(case.grid_id)
    found: dict[str, str] = {}
    for role in roles:
        if role == "assignee":
            if case.assignee_id:
                found.setdefault(case.assignee_id, role)
        elif role == "reporter":
            found.setdefault(case.reporter_id, role)
        elif grid is not None:
            for person in org.holders(role, grid):
                found.setdefault(person, role)
    return found


FALLBACK_ROLE = "center"  # who is told in place of a role nobody holds for the case's grid
CASE_ROLES = ("assignee", "reporter")


def rung_recipients(
    org: OrgSnapshot, case: CaseRecord, roles: tuple[str, ...] | list[str], per_role: bool = True
) -> tuple[dict[str, str], list[str]]:
    """Who an SLA rung (a reminder, a breach, a rung of the ladder) tells, and the roles told through the centre.

    An org role nobody holds for the case's grid (a unit grid has no village secretary) would make an
    escalation reach no one above the handler; the centre is told in its place, and the role is listed
    so that ``sla explain`` and ``notices list`` can say so. ``per_role=False`` (reminders) falls back
    only when nobody at all is told."""
    found = recipients(org, case, roles)
    grid = org.places.get(case.grid_id)
    if per_role:
        missing = [r for r in roles if r not in CASE_ROLES and r != FALLBACK_ROLE and not _held(org, r, grid)]
    else:
        missing = [r for r in roles if r not in CASE_ROLES] if not found else []
    if missing and grid is not None:
        for person in org.holders(FALLBACK_ROLE, grid):
            found.setdefault(person, FALLBACK_ROLE)
    return found, missing


def _held(org: OrgSnapshot, role: str, grid: Any) -> bool:
    return grid is not None and bool(org.holders(role, grid))


PHASES = {"report": "reported", "resolve": "resolved", "assign": "assigned", "verify": "verified"}


def case_params(org: OrgSnapshot, case: CaseRecord, **extra: Any) -> dict[str, Any]:
    place = org.places.get(case.grid_id)
    grid_name = place.name if place is not None else case.grid_id
    return {
        "case": case.code,
        "title": case.title,
        "grid": case.grid_id,
        "grid_name": grid_name,
        "status": case.status,
        "category": case.category,
        **extra,
    }


def outbox_rows(
    org: OrgSnapshot,
    case: CaseRecord,
    roles: tuple[str, ...],
    template: str,
    params: dict[str, Any],
    at: datetime,
    key: str,
    urgent: bool = False,
    found: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One pending outbox row per person holding ``roles`` for the case (or per person of ``found``,
    already resolved); ``key:<person>`` is unique."""
    urgent = urgent or case.priority in URGENT_PRIORITIES
    return [
        {
            "case_id": case.id,
            "recipient_id": person,
            "role": role,
            "template": template,
            "params": params,
            "urgent": urgent,
            "status": "pending",
            "attempts": 0,
            "channel_attempts": 0,
            "next_attempt_at": at,
            "created_at": at,
            "dedupe_key": f"{key}:{person}"[:150],
        }
        for person, role in (found if found is not None else recipients(org, case, roles)).items()
    ]


def for_step(
    org: OrgSnapshot, case: CaseRecord, event: EventRecord, entries: tuple[dict[str, Any], ...], at: datetime
) -> list[dict[str, Any]]:
    """Outbox rows for a step's notify entries."""
    params = case_params(org, case, trigger=event.trigger, at=at.isoformat(), actor=event.actor_id)
    if event.trigger in PHASES:
        params[f"{PHASES[event.trigger]}_at"] = at.isoformat()
    if case.assignee_id:
        params["assignee"] = case.assignee_id
        person = org.people.get(case.assignee_id)
        params["assignee_name"] = getattr(person, "name", None) or case.assignee_id
    rows: list[dict[str, Any]] = []
    for entry in entries:
        template = entry.get("template") or DEFAULT_TEMPLATE.get(event.trigger, f"case_{event.trigger}")
        key = f"step:{case.id}:{event.seq}:{template}"
        urgent = bool(entry.get("urgent", False))
        rows += outbox_rows(org, case, tuple(entry["to"]), template, params, at, key, urgent)
    return rows
