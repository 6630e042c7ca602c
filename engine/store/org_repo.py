"""Write an org chart to the database, idempotently.

Places and people missing from a new file are deactivated, never deleted:
cases and audit events keep pointing at them. Role assignments are replaced
by the file's set. Loading the same file twice changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.org import OrgChart, PersonSpec, PlaceSpec
from engine.store.models import OrgMeta, Person, Place, RoleAssignment
from engine.timeutil import require_aware

PLACE_COLUMNS = ("kind", "name", "parent_id", "village_id", "township_id", "grid_kind", "households", "attributes")
PERSON_COLUMNS = ("name", "title", "phone", "email", "wecom", "notify")


@dataclass
class Changes:
    added: int = 0
    updated: int = 0
    deactivated: int = 0

    def __str__(self) -> str:
        return f"{self.added} added, {self.updated} updated, {self.deactivated} deactivated"


@dataclass
class OrgLoadResult:
    places: Changes = field(default_factory=Changes)
    people: Changes = field(default_factory=Changes)
    roles_added: int = 0
    roles_removed: int = 0

    @property
    def changed(self) -> bool:
        counts = (self.places, self.people)
        return any(c.added or c.updated or c.deactivated for c in counts) or bool(
            self.roles_added or self.roles_removed
        )


def apply_org_chart(session: Session, chart: OrgChart, at: datetime) -> OrgLoadResult:
    """Make the database's org chart equal to ``chart``; ``at`` stamps the change."""
    result = OrgLoadResult()
    _sync(session, Place, chart.places, PLACE_COLUMNS, result.places)
    session.flush()
    _sync(session, Person, chart.people, PERSON_COLUMNS, result.people)
    session.flush()
    _sync_roles(session, chart.people, result)
    session.flush()
    _stamp(session, result.changed, require_aware(at))
    return result


SNAPSHOT_SEEN = "gridflow.org_snapshot"  # Session.info: the chart a transaction read (engine.scope.current)


def _stamp(session: Session, changed: bool, at: datetime) -> None:
    """A new token whenever the org chart changed, so in-memory copies are replaced."""
    session.info.pop(SNAPSHOT_SEEN, None)
    meta = session.get(OrgMeta, 1)
    if meta is None:
        session.add(OrgMeta(id=1, token=uuid.uuid4().hex, changed_at=at))
    elif changed:
        meta.token = uuid.uuid4().hex
        meta.changed_at = at


def _sync(session: Session, model: type, specs: tuple, columns: tuple[str, ...], changes: Changes) -> None:
    existing = {row.id: row for row in session.scalars(select(model))}
    for spec in specs:
        row = existing.pop(spec.id, None)
        if row is None:
            session.add(model(id=spec.id, active=True, **_values(spec, columns)))
            changes.added += 1
        elif _update(row, spec, columns):
            changes.updated += 1
    for row in existing.values():
        if row.active:
            row.active = False
            changes.deactivated += 1


def _values(spec: PlaceSpec | PersonSpec, columns: tuple[str, ...]) -> dict:
    return {name: getattr(spec, name) for name in columns}


def _update(row: Place | Person, spec: PlaceSpec | PersonSpec, columns: tuple[str, ...]) -> bool:
    wanted = {**_values(spec, columns), "active": True}
    changed = {k: v for k, v in wanted.items() if getattr(row, k) != v}
    for name, value in changed.items():
        setattr(row, name, value)
    return bool(changed)


def _sync_roles(session: Session, people: tuple[PersonSpec, ...], result: OrgLoadResult) -> None:
    wanted = {(p.id, role, place) for p in people for role, place in p.roles}
    rows = {(r.person_id, r.role, r.place_id): r for r in session.scalars(select(RoleAssignment))}
    for key in sorted(wanted - rows.keys()):
        session.add(RoleAssignment(person_id=key[0], role=key[1], place_id=key[2]))
        result.roles_added += 1
    for key in rows.keys() - wanted:
        session.delete(rows[key])
        result.roles_removed += 1
