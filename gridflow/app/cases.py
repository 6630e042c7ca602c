"""Use cases: setup, cases, workflows and the org chart.

Each takes plain values (case codes or ids, person and grid ids, field dicts, aware datetimes, paths) and
returns plain values: the dicts ``gridflow case|workflow|org … --json`` prints (ISO times in UTC), or a
frozen dataclass of such values (:class:`InitReport`). A step acts now, or at a past ``at`` (never a future
one, :func:`gridflow.app.base.not_after_now`); each use case is one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from engine import cases
from engine.definitions.model import WorkflowDef
from engine.errors import ConcurrentUpdate, DatabaseError
from engine.machine import CompiledWorkflow
from engine.store import migrate, org_repo, workflow_repo
from engine.store.db import ensure_sqlite_directory
from engine.store.models import Case, Person, Place, RoleAssignment, WorkflowDefinition
from gridflow import present
from gridflow.app.base import Base, not_after_now


@dataclass(frozen=True)
class InitReport:
    """What ``gridflow init`` did: the schema before and after, the org chart's changes, each workflow
    published (:meth:`CaseUseCases.publish_workflow`'s dicts) and what the database holds now."""

    database: str
    schema_before: str | None
    schema_after: str
    org: org_repo.OrgLoadResult
    workflows: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


class CaseUseCases(Base):
    """Setup, cases (report, step, show, list, history), workflows and the org chart."""

    # -- setup -------------------------------------------------------------------------------------

    def init(self, org_file: Path | None = None, workflow_files: list[Path] | None = None) -> InitReport:
        """Create or upgrade the schema, load the org chart, publish the workflows."""
        from engine.org import load_org_file

        chart = load_org_file(org_file or self.settings.org_file)
        loaded = [self.load_workflow(p) for p in (workflow_files or self.settings.workflow_files)]
        ensure_sqlite_directory(self.settings.db_url)
        try:
            before, after = migrate.upgrade(self.engine)
        except DBAPIError as exc:
            raise DatabaseError(self._explain(exc)) from exc
        self._schema_checked = True
        with self.transaction() as session:
            org = org_repo.apply_org_chart(session, chart, self.clock())
            published = [_published(workflow_repo.publish(session, w, self.clock())) for w in loaded]
            return InitReport(self.database_label, before, after, org, published, _counts(session))

    def load_org(self, path: Path) -> org_repo.OrgLoadResult:
        """Validate an org chart file and make the database's chart equal to it (idempotent)."""
        from engine.org import load_org_file

        chart = load_org_file(path)
        with self.transaction() as session:
            return org_repo.apply_org_chart(session, chart, self.clock())

    def publish_workflow(self, path: Path) -> dict[str, Any]:
        """Publish a workflow file as a new version unless the latest has the same text; ``created`` says which."""
        loaded = self.load_workflow(path)
        with self.transaction() as session:
            return _published(workflow_repo.publish(session, loaded, self.clock()))

    # -- cases -------------------------------------------------------------------------------------

    def report(
        self,
        *,
        grid_id: str,
        actor_id: str,
        fields: dict[str, Any],
        workflow: str | None = None,
        at: datetime | None = None,
        entered_by: str | None = None,
        channel: str = "grid_worker",
        client: str | None = None,
    ) -> dict[str, Any]:
        """Report a case now, or backfill one that happened ``at`` (a past time): its clocks run from
        ``at``, and the event records when it was typed in and by whom (``entered_by``, default the actor).
        ``channel`` and ``client`` say where it came from (``open311`` and the API client's id), in the same
        transaction. Returns ``{"case": …, "event": …}`` after the step."""
        now = self.clock()
        with self.transaction(step=True) as session:
            result = cases.report(
                session,
                grid_id=grid_id,
                actor_id=actor_id,
                fields=fields,
                at=now if at is None else not_after_now(at, now, self.tz),
                workflow=workflow or self.settings.default_workflow,
                channel=channel,
                tz=self.tz,
                calendars=self.calendars,
                entry=_entry(at, now, entered_by or actor_id),
            )
            if client is not None:
                session.execute(update(Case).where(Case.id == result.case.id).values(source_client=client))
            return _step_dict(session, result)

    def fire(
        self,
        case_ref: str,
        trigger: str,
        *,
        actor_id: str,
        fields: dict[str, Any],
        expected_version: int | None = None,
        at: datetime | None = None,
        entered_by: str | None = None,
    ) -> dict[str, Any]:
        """Take a step now, or backfill one that happened ``at`` (see :meth:`report`). Without
        ``expected_version`` a lost race (e.g. with a sweep) is retried on the fresh case, where every
        check runs again; with it the conflict is the answer. Returns ``{"case": …, "event": …}``."""
        attempts = 1 if expected_version is not None else 3
        for attempt in range(1, attempts + 1):
            try:
                with self.transaction(step=True) as session:
                    result = self._fire_in(
                        session, case_ref, trigger, actor_id=actor_id, fields=fields,
                        expected_version=expected_version, at=at, entered_by=entered_by,
                    )  # fmt: skip
                    return _step_dict(session, result)
            except ConcurrentUpdate:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def _fire_in(
        self,
        session: Session,
        case_ref: str,
        trigger: str,
        *,
        actor_id: str,
        fields: dict[str, Any],
        expected_version: int | None = None,
        at: datetime | None = None,
        entered_by: str | None = None,
    ) -> cases.StepResult:
        """:meth:`fire`'s step inside the caller's transaction (one attempt)."""
        now = self.clock()
        return cases.fire(
            session,
            case_ref,
            trigger,
            actor_id=actor_id,
            fields=dict(fields),
            at=now if at is None else not_after_now(at, now, self.tz),
            expected_version=expected_version,
            tz=self.tz,
            calendars=self.calendars,
            entry=_entry(at, now, entered_by or actor_id),
        )

    def show_case(self, ref: str) -> dict[str, Any]:
        """One case (code or id) with the triggers allowed in its state, as ``case show --json``."""
        with self.transaction(write=False) as session:
            found = cases.get_case(session, ref)
            return _case_view(found, _flow(session, found))

    def case_card(self, ref: str) -> dict[str, Any]:
        """:meth:`show_case` for people: ``{"case": …, "satisfaction_label": …}`` (the label of its enum)."""
        with self.transaction(write=False) as session:
            found = cases.get_case(session, ref)
            flow = _flow(session, found)
            label = present.enum_label(flow.definition, "satisfaction", found.satisfaction)
            return {"case": _case_view(found, flow), "satisfaction_label": label}

    def list_cases(
        self,
        *,
        status: str | None = None,
        grid_id: str | None = None,
        person_id: str | None = None,
        open_only: bool = False,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Cases, newest first: of a state, a grid, a person (reporter or assignee), only open ones."""
        with self.transaction(write=False) as session:
            rows = cases.list_cases(
                session, status=status, grid_id=grid_id, person_id=person_id, open_only=open_only, limit=limit
            )
            return [present.case_dict(c, _flow(session, c).definition) for c in rows]

    def case_history(self, ref: str) -> dict[str, Any]:
        """The audit trail of a case: ``{"case": code, "events": […], "state_labels": {state: label}}``."""
        with self.transaction(write=False) as session:
            found = cases.get_case(session, ref)
            d = _flow(session, found).definition
            events = cases.history(session, found)
            states = {s for e in events for s in (e.from_state, e.to_state) if s}
            return {
                "case": found.code,
                "events": [present.event_dict(e, d) for e in events],
                "state_labels": {s: d.state_label(s) for s in sorted(states)},
            }

    # -- workflows ---------------------------------------------------------------------------------

    def validate_workflow(self, path: Path) -> dict[str, Any]:
        """Check a workflow file: ``valid``, every ``problem`` located (file:line:column), or its summary."""
        from engine.errors import WorkflowInvalid

        try:
            d = self.load_workflow(path).definition
        except WorkflowInvalid as exc:
            return {"valid": False, "problems": [str(p) for p in exc.problems]}
        return {"valid": True, "problems": [], "name": d.name, "title": d.title, "states": len(d.states),
                "triggers": len(d.triggers)}  # fmt: skip

    def list_workflows(self) -> list[dict[str, Any]]:
        """Published workflow versions, by name and version."""
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
        """A published workflow's states and triggers (the latest version unless ``version`` is given)."""
        row, d = self._published_definition(name, version)
        return present.workflow_summary(row, d)

    def workflow_graph(self, name: str, version: int | None = None) -> str:
        """A published workflow as a mermaid state diagram."""
        from engine.machine import mermaid

        return mermaid(self._published_definition(name, version)[1])

    def read_workflow_file(self, path: Path) -> dict[str, Any]:
        """A workflow file's definition (checked, not published), as ``workflow show FILE --json``."""
        return self.load_workflow(path).definition.to_dict()

    def workflow_file_graph(self, path: Path) -> str:
        """A workflow file as a mermaid state diagram."""
        from engine.machine import mermaid

        return mermaid(self.load_workflow(path).definition)

    def _published_definition(self, name: str, version: int | None) -> tuple[WorkflowDefinition, WorkflowDef]:
        with self.transaction(write=False) as session:
            row = workflow_repo.get_version(session, name, version)
            return row, workflow_repo.compiled(session, row.id).definition

    # -- the org chart -----------------------------------------------------------------------------

    def org_chart(self, village: str | None = None) -> dict[str, Any]:
        """The active places (of one village, if given) and every person with their roles and scopes."""
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

    def grid_cells(self, village: str | None = None) -> list[dict[str, Any]]:
        """The active grid cells (of one village, if given): id, name, village name, households, grid worker."""
        with self.transaction(write=False) as session:
            places = session.scalars(select(Place).where(Place.active).order_by(Place.id)).all()
            workers = dict(
                session.execute(
                    select(RoleAssignment.place_id, Person.name)
                    .join(Person, Person.id == RoleAssignment.person_id)
                    .where(RoleAssignment.role == "grid_worker")
                    .order_by(RoleAssignment.person_id)
                ).all()
            )
        names = {p.id: p.name for p in places}
        return [
            {
                "id": g.id,
                "name": g.name,
                "village": names.get(g.village_id or ""),
                "households": g.households,
                "grid_worker": workers.get(g.id),
            }
            for g in places
            if g.kind == "grid" and (village is None or g.village_id == village)
        ]


def _published(result: workflow_repo.PublishResult) -> dict[str, Any]:
    row = result.row
    return {"name": row.name, "version": row.version, "title": row.title, "created": result.created,
            "published_at": present.iso(row.published_at)}  # fmt: skip


def _counts(session: Session) -> dict[str, int]:
    def count(model: Any, *where: Any) -> int:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

    return {
        "villages": count(Place, Place.kind == "village", Place.active),
        "grids": count(Place, Place.kind == "grid", Place.active),
        "people": count(Person, Person.active),
        "workflow versions": workflow_repo.count(session),
        "cases": count(Case),
    }


def _entry(at: datetime | None, now: datetime, entered_by: str) -> cases.Entry | None:
    """A step given a time of its own is backfilled: typed in ``now`` by ``entered_by``."""
    return None if at is None else cases.Entry(received_at=max(now, at), entered_by=entered_by)


def _flow(session: Session, case: Any) -> CompiledWorkflow:
    return workflow_repo.compiled(session, case.workflow_id)


def _case_view(case: Any, flow: CompiledWorkflow) -> dict[str, Any]:
    return present.case_dict(case, flow.definition, flow.allowed(case.status))


def _utc(at: datetime | None) -> datetime | None:
    return at.astimezone(UTC) if at is not None else None


def _step_dict(session: Session, result: cases.StepResult) -> dict[str, Any]:
    """A step's result as plain values: the case after it (with what is allowed now) and its event,
    times in UTC as the database gives them back."""
    case, event = result.case, result.event
    case = replace(case, reported_at=_utc(case.reported_at), updated_at=_utc(case.updated_at),
                   closed_at=_utc(case.closed_at))  # fmt: skip
    event = replace(event, at=_utc(event.at), received_at=_utc(event.received_at))
    flow = _flow(session, case)
    return {"case": _case_view(case, flow), "event": present.event_dict(event, flow.definition)}  # type: ignore[arg-type]
