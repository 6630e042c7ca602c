"""Use cases: cases, workflows, the org chart, the SLA clocks and the calendars."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import cases
from engine.store import workflow_repo
from engine.store.models import Person, Place, RoleAssignment, SlaClock, SlaTimer
from gridflow import present
from gridflow.app.base import Base


class CaseUseCases(Base):
    """Cases, workflows, the org chart, the SLA clocks and the calendars."""

    def explain_sla(self, ref: str) -> dict[str, Any]:
        """Every clock of a case: limits, deadlines, pauses, extensions, timers (``sla explain --json``)."""
        with self.transaction(write=False) as session:
            found = cases.get_case(session, ref)
            return {"case": found.code, "clocks": timeline(session, found.id)}

    def org_chart(self, village: str | None = None) -> dict[str, Any]:
        """The active places and every person with their roles (``org show --json``)."""
        with self.transaction(write=False) as session:
            places = session.scalars(select(Place).where(Place.active).order_by(Place.id)).all()
            people = session.scalars(select(Person).order_by(Person.id)).all()
            roles = session.scalars(select(RoleAssignment).order_by(RoleAssignment.person_id)).all()
            by_person: dict[str, list[tuple[str, str]]] = {}
            for r in roles:
                by_person.setdefault(r.person_id, []).append((r.role, r.place_id))
            return {
                "places": [present.place_dict(p) for p in places if village is None or p.village_id == village],
                "people": [present.person_dict(p, by_person.get(p.id, [])) for p in people],
            }

    def list_workflows(self) -> list[dict[str, Any]]:
        """Published workflow versions (``workflow list --json``)."""
        with self.transaction(write=False) as session:
            return [
                {
                    "name": r.name,
                    "version": r.version,
                    "title": r.title,
                    "published_at": present.iso(r.published_at),
                    "source_hash": r.source_hash[:12],
                }
                for r in workflow_repo.list_versions(session)
            ]

    def show_workflow(self, name: str, version: int | None = None) -> dict[str, Any]:
        """A published version's states and triggers (``workflow show NAME --json``)."""
        with self.transaction(write=False) as session:
            row = workflow_repo.get_version(session, name, version)
            return present.workflow_summary(row, workflow_repo.compiled(session, row.id).definition)


def timeline(session: Session, case_id: int) -> list[dict[str, Any]]:
    clocks = session.scalars(select(SlaClock).where(SlaClock.case_id == case_id).order_by(SlaClock.id)).all()
    timers = session.scalars(
        select(SlaTimer).where(SlaTimer.case_id == case_id).order_by(SlaTimer.fire_at, SlaTimer.id)
    ).all()
    out = []
    for clock in clocks:
        out.append(
            {
                "clock": clock.id,
                "scope": clock.scope,
                "state": clock.state,
                "calendar": clock.calendar,
                "limit": clock.policy.get("limit_text"),
                "limit_s": clock.limit_s,
                "consumed_s": clock.consumed_s,
                "status": clock.status,
                "due_at": present.iso(clock.due_at),
                "estimated": clock.estimated,
                "breached_at": present.iso(clock.breached_at),
                "outcome": clock.outcome,
                "history": clock.history,
                "timers": [
                    {
                        "kind": t.kind,
                        "level": t.level,
                        "generation": t.generation,
                        "fire_at": present.iso(t.fire_at),
                        "status": t.status,
                        "fired_at": present.iso(t.fired_at),
                        "note": t.note,
                    }
                    for t in timers
                    if t.clock_id == clock.id
                ],
            }
        )
    return out
