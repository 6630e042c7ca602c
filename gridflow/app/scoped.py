"""Use cases as a signed-in person sees them: the API's cases, inside the viewer's grid scope.

A case outside the viewer's scope does not exist for them (:class:`CaseNotFound`, the same answer
as for a code nobody has), so nobody learns which codes exist in other grids. Steps go through
:meth:`gridflow.app.cases.CaseUseCases.fire` with the viewer as the actor: the engine checks the roles and the
grid again, in the step's transaction. ``version`` is each case's ETag.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm.attributes import set_committed_value

from engine import access, case_search, cases
from engine.errors import CaseNotFound, ConcurrentUpdate
from engine.scope import current
from engine.store import workflow_repo
from engine.store.models import Case
from gridflow import present
from gridflow.app.cases import CaseUseCases
from gridflow.app.open311 import CHANNEL, mask_text


def not_found(ref: str) -> CaseNotFound:
    return CaseNotFound(f"no case {ref!r} that you can see; check the code, or list your cases")


def _as_written(found: Case, written: Any) -> None:
    """Make the ORM row say what the engine's step wrote (its record holds every column a step can
    change), instead of reading the row back: one SELECT less per step."""
    for name in written.as_dict():
        set_committed_value(found, name, getattr(written, name))


class ScopedCaseUseCases(CaseUseCases):
    """Cases for a viewer: find, show, report, step, history, SLA, the steps they may take."""

    def _org(self, session: Any) -> Any:
        return current(session)

    def _visible(self, session: Any, viewer: access.Viewer, ref: str) -> Case:
        try:
            found = cases.get_case(session, ref)
        except CaseNotFound:
            raise not_found(ref) from None
        if not access.sees_grid(self._org(session), viewer, found.grid_id):
            raise not_found(ref)
        return found

    def _case_view(self, session: Any, viewer: access.Viewer, found: Case) -> dict[str, Any]:
        flow = workflow_repo.compiled(session, found.workflow_id)
        data = present.case_dict(found, flow.definition, None)
        data["source"] = found.source_client or found.source_channel
        _mask_resident(data, found, viewer)
        data["allowed_triggers"] = self._allowed(session, viewer, found, flow)
        return data

    def _allowed(self, session: Any, viewer: access.Viewer, found: Case, flow: Any) -> list[dict[str, Any]]:
        """The triggers the viewer may fire now: allowed in the state and held by one of their roles."""
        org = self._org(session)
        grid = org.places.get(found.grid_id)
        held = org.roles_over(viewer.person_id, grid) if grid is not None else set()
        if found.assignee_id == viewer.person_id:
            held.add("assignee")
        if found.reporter_id == viewer.person_id:
            held.add("reporter")
        d = flow.definition
        return [
            {"trigger": t, "label": d.triggers[t].label, "fields": list(d.triggers[t].required)}
            for t in flow.allowed(found.status)
            if held & set(d.triggers[t].roles)
        ]

    def case_for(self, viewer: access.Viewer, ref: str) -> dict[str, Any]:
        """One case as ``viewer`` sees it, with the steps they may take; :class:`CaseNotFound` outside scope."""
        with self.transaction(write=False) as session:
            return self._case_view(session, viewer, self._visible(session, viewer, ref))

    def find_cases(
        self,
        viewer: access.Viewer,
        flt: case_search.CaseFilter,
        *,
        sort: str = "-reported_at",
        cursor: str | None = None,
        limit: int = 50,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """A page of the cases ``viewer`` sees that match ``flt``, and the cursor of the next page."""
        now = at or self.clock()
        with self.transaction(write=False) as session:
            grids = access.grids_seen(self._org(session), viewer)
            rows, following = case_search.search(
                session, flt, at=now, grids=grids, sort=sort, cursor=cursor, limit=limit
            )
            items = []
            for found in rows:
                d = workflow_repo.compiled(session, found.workflow_id).definition
                item = present.case_dict(found, d)
                item["source"] = found.source_client or found.source_channel
                _mask_resident(item, found, viewer)
                items.append(item)
        return {"items": items, "next_cursor": following}

    def report_as(
        self,
        viewer: access.Viewer,
        *,
        grid_id: str,
        fields: dict[str, Any],
        workflow: str | None = None,
        at: datetime | None = None,
        channel: str | None = None,
        client: str | None = None,
    ) -> dict[str, Any]:
        """Report a case as ``viewer`` (the engine checks they may report in ``grid_id``); ``channel`` and
        ``client`` (an Open311 client's id) mark where it came from, in the report's own transaction."""
        source: dict[str, Any] = {"channel": channel} if channel else {}
        if client:
            source["client"] = client
        result = self.report(
            grid_id=grid_id, actor_id=viewer.person_id, fields=fields, workflow=workflow, at=at, **source
        )
        return self.case_for(viewer, _code(result))

    def step_as(
        self,
        viewer: access.Viewer,
        ref: str,
        trigger: str,
        fields: dict[str, Any],
        *,
        expected_version: int | None = None,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Fire ``trigger`` on a case ``viewer`` sees; with ``expected_version`` a stale version is
        :class:`StaleVersion` carrying the case as it is now."""
        attempts = 1 if expected_version is not None else 3
        for attempt in range(1, attempts + 1):
            try:
                with self.transaction() as session:  # one transaction: scope, version, the step, the answer
                    found = self._visible(session, viewer, ref)
                    if expected_version is not None and found.version != expected_version:
                        raise StaleVersion(found.code, expected_version, self._case_view(session, viewer, found))
                    done = self._fire_in(session, found.code, trigger, actor_id=viewer.person_id, fields=fields,
                                         expected_version=expected_version, at=at)  # fmt: skip
                    _as_written(found, done.case)  # the step wrote through the engine's own statements
                    return self._case_view(session, viewer, found)
            except StaleVersion:
                raise
            except ConcurrentUpdate:
                if attempt == attempts:
                    raise StaleVersion(ref, expected_version, self.case_for(viewer, ref)) from None
        raise AssertionError("unreachable")

    def history_for(self, viewer: access.Viewer, ref: str) -> dict[str, Any]:
        """The audit trail of a case ``viewer`` sees."""
        with self.transaction(write=False) as session:
            found = self._visible(session, viewer, ref)
            d = workflow_repo.compiled(session, found.workflow_id).definition
            events = [present.event_dict(e, d) for e in cases.history(session, found)]
            if found.source_channel == CHANNEL and not viewer.sees_personal_data:
                for event in events:
                    if isinstance(event["payload"], dict) and event["payload"].get("description"):
                        event["payload"] = {
                            **event["payload"],
                            "description": mask_text(event["payload"]["description"]),
                        }
            return {"case": found.code, "events": events}

    def sla_for(self, viewer: access.Viewer, ref: str) -> dict[str, Any]:
        """Every clock of a case ``viewer`` sees, with deadlines and timers."""
        with self.transaction(write=False) as session:
            found = self._visible(session, viewer, ref)
        return self.explain_sla(found.code)  # type: ignore[attr-defined,no-any-return]

    def org_for(self, viewer: access.Viewer, village: str | None = None) -> dict[str, Any]:
        """The org chart; phones and e-mail addresses masked unless the viewer may see personal data."""
        from engine.archive.mask import mask_phone

        chart: dict[str, Any] = self.org_chart(village)  # type: ignore[attr-defined]
        if not viewer.sees_personal_data:
            for person in chart.get("people", []):
                person["phone"] = mask_phone(person.get("phone"))
                if person.get("email"):
                    person["email"] = "***@" + str(person["email"]).rpartition("@")[2]
                person.pop("wecom", None)
        return chart

    # -- notices ------------------------------------------------------------------------------------------

    def notices_for(self, viewer: access.Viewer, *, status: str | None = None, limit: int = 50) -> dict[str, Any]:
        """The centre sees every notice; anyone else the notices sent to them."""
        to = None if viewer.is_admin else viewer.person_id
        return self.list_notices(status=status, to=to, limit=limit).data  # type: ignore[attr-defined,no-any-return]

    def notice_for(self, viewer: access.Viewer, notice_id: int) -> dict[str, Any]:
        """One notice with its attempts; someone else's notice does not exist for anyone but the centre."""
        from engine.errors import NotFound

        data: dict[str, Any] = self.show_notice(notice_id).data  # type: ignore[attr-defined]
        if not viewer.is_admin and data.get("to") != viewer.person_id:
            raise NotFound(f"no notice {notice_id} that you can see")
        return data

    def retry_notice_as(self, viewer: access.Viewer, notice_id: int) -> dict[str, Any]:
        """Send a failed notice again (the centre only)."""
        from engine.errors import PermissionDenied

        if not viewer.is_admin:
            raise PermissionDenied(f"{viewer.name} ({viewer.person_id}) may not retry notices: the centre does")
        return {"notice": notice_id, **self.retry_notice(notice_id)}  # type: ignore[attr-defined]

    # -- workflows sent as text (the API's upload) ---------------------------------------------------------

    def validate_workflow_text(self, text: str, file: str = "upload.yaml") -> dict[str, Any]:
        """Check a workflow's YAML: every problem located (file:line:column), or its summary."""
        from engine.definitions.loader import load_workflow_text
        from engine.errors import WorkflowInvalid

        try:
            loaded = load_workflow_text(text, file, self.calendars)
        except WorkflowInvalid as exc:
            return {"valid": False, "problems": [str(p) for p in exc.problems]}
        d = loaded.definition
        return {"valid": True, "problems": [], "name": d.name, "title": d.title, "states": len(d.states),
                "triggers": len(d.triggers)}  # fmt: skip

    def publish_workflow_text(self, viewer: access.Viewer, text: str, file: str = "upload.yaml") -> dict[str, Any]:
        """Publish a workflow's YAML as a new version (the centre only); open cases stay on theirs."""
        from engine.definitions.loader import load_workflow_text
        from engine.errors import PermissionDenied

        if not viewer.is_admin:
            raise PermissionDenied(f"{viewer.name} ({viewer.person_id}) may not publish workflows: the centre does")
        loaded = load_workflow_text(text, file, self.calendars)
        with self.transaction() as session:
            result = workflow_repo.publish(session, loaded, self.clock())
            row = result.row
            return {"name": row.name, "version": row.version, "title": row.title, "created": result.created,
                    "published_at": present.iso(row.published_at)}  # fmt: skip


class StaleVersion(ConcurrentUpdate):
    """The case is no longer at the version the client had (``If-Match``); ``current`` is the case now."""

    def __init__(self, code: str, expected: int | None, current: dict[str, Any]):
        super().__init__(
            f"{code} is at version {current['version']} ({current['status_label']} {current['status']}), not "
            f"{expected}: someone changed it meanwhile; read it again and decide"
        )
        self.current = current


def _mask_resident(data: dict[str, Any], found: Case, viewer: access.Viewer) -> None:
    """An Open311 case's description holds the resident's contact: masked unless the viewer may see it."""
    if found.source_channel == CHANNEL and not viewer.sees_personal_data:
        data["description"] = mask_text(data.get("description"))


def _code(result: Any) -> str:
    if isinstance(result, dict):
        return str(result["case"]["code"] if "case" in result else result["code"])
    return str(result.case.code)
