"""Use cases of the centre's workbench: its queues, each a named filter of open cases with a count.

The queues are the centre's day (网格管理中心): what waits to be classified (立案), dispatched (派遣),
an extension request to decide, resolved cases to verify (核查), clocks that run out within four
working hours, and what is already overdue. Each is a :class:`engine.case_search.CaseFilter`, so a
queue's list is the same search as ``gridflow case list`` and the API's ``GET /cases``, inside the
viewer's grid scope; "within four working hours" is reckoned on the township's business calendar.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from engine import access, case_search, cases
from engine.errors import InputError
from engine.store import workflow_repo
from engine.store.models import SlaClock
from gridflow.app.scoped import ScopedCaseUseCases
from gridflow.present import iso

SOON = timedelta(hours=4)  # of working time: "breaching within 4 working hours"


@dataclass(frozen=True)
class Queue:
    name: str
    label: str  # as the clerk reads it
    hint: str  # what is in it, in words (the page shows it beside the count)
    flt: case_search.CaseFilter
    sort: str


QUEUES: tuple[Queue, ...] = (
    Queue(
        "classify",
        "待立案",
        "已上报、等待中心立案分类的事件",
        case_search.CaseFilter(status=("reported",)),
        "reported_at",
    ),
    Queue(
        "dispatch",
        "待派遣",
        "已立案、等待派遣给处置人的事件",
        case_search.CaseFilter(status=("classified",)),
        "reported_at",
    ),
    Queue(
        "extensions",
        "延期待审批",
        "处置人申请延期、等待中心审批的事件",
        case_search.CaseFilter(pending_extension=True, open_only=True),
        "reported_at",
    ),
    Queue(
        "verify",
        "待核查",
        "已办结、等待中心核查结案的事件",
        case_search.CaseFilter(status=("resolved",)),
        "reported_at",
    ),
    Queue(
        "soon",
        "4个工作小时内超时",
        "有计时在4个工作小时内到期、尚未超时的事件",
        case_search.CaseFilter(open_only=True),  # breaching_within is set per request, on the calendar
        "due_at",
    ),
    Queue(
        "overdue",
        "已超时",
        "已有计时超时、尚未结案的事件",
        case_search.CaseFilter(overdue=True, open_only=True),
        "due_at",
    ),
)
BY_NAME = {q.name: q for q in QUEUES}


class WorkbenchUseCases(ScopedCaseUseCases):
    """The workbench's queues for a viewer, with counts, and each queue's cases a page at a time."""

    def _queue_filter(self, queue: Queue, at: datetime) -> case_search.CaseFilter:
        if queue.name != "soon":
            return queue.flt
        deadline = self.calendar("township").add(at, SOON).at  # type: ignore[attr-defined]
        return replace(queue.flt, breaching_within=deadline - at)

    def queue(self, name: str) -> Queue:
        try:
            return BY_NAME[name]
        except KeyError:
            raise InputError(f"queue {name!r}: one of {', '.join(BY_NAME)}") from None

    def queue_counts(self, viewer: access.Viewer, at: datetime | None = None) -> list[dict[str, Any]]:
        """Every queue with the number of cases in it that ``viewer`` sees."""
        now = at or self.clock()
        with self.transaction(write=False) as session:
            grids = access.grids_seen(self._org(session), viewer)
            return [
                {
                    "name": q.name,
                    "label": q.label,
                    "hint": q.hint,
                    "count": case_search.count(session, self._queue_filter(q, now), at=now, grids=grids),
                }
                for q in QUEUES
            ]

    def queue_cases(
        self,
        viewer: access.Viewer,
        name: str,
        *,
        sort: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """A page of a queue's cases (the queue's own order unless ``sort`` is given)."""
        now = at or self.clock()
        q = self.queue(name)
        page = self.find_cases(
            viewer, self._queue_filter(q, now), sort=sort or q.sort, cursor=cursor, limit=limit, at=now
        )
        ids = [item["id"] for item in page["items"]]
        if ids:
            with self.transaction(write=False) as session:
                due = dict(
                    session.execute(
                        select(SlaClock.case_id, func.min(SlaClock.due_at))
                        .where(SlaClock.case_id.in_(ids), SlaClock.status == "running")
                        .group_by(SlaClock.case_id)
                    ).all()
                )
            for item in page["items"]:
                item["due_at"] = iso(due.get(item["id"]))
        return {"queue": q.name, "label": q.label, **page}

    def step_forms(self, viewer: access.Viewer, ref: str) -> list[dict[str, Any]]:
        """The steps ``viewer`` may take on a case now, each with the fields its form asks for: type, label,
        choices (an enum's values with their labels; a person field's eligible people), required or not."""
        with self.transaction(write=False) as session:
            found = self._visible(session, viewer, ref)
            flow = workflow_repo.compiled(session, found.workflow_id)
            org = self._org(session)
            grid = org.places.get(found.grid_id)
            d = flow.definition
            forms = []
            for allowed in self._allowed(session, viewer, found, flow):
                trigger = d.triggers[allowed["trigger"]]
                fields = []
                for name, required in [*((n, True) for n in trigger.required), *((n, False) for n in trigger.optional)]:
                    spec = d.fields.get(name)
                    if spec is None:
                        continue
                    choices: list[tuple[str, str]] = list(spec.values.items())
                    if spec.type == "person" and grid is not None:
                        people = (
                            sorted({p for role in spec.roles for p in org.holders(role, grid)}) if spec.roles else []
                        )
                        choices = [(p, org.people[p].name) for p in people]
                    fields.append(
                        {
                            "name": name,
                            "label": spec.label,
                            "type": spec.type,
                            "required": required,
                            "choices": choices,
                            "max_length": spec.max_length,
                        }
                    )
                forms.append({"trigger": trigger.name, "label": trigger.label, "fields": fields})
            return forms

    def case_labels(self, viewer: access.Viewer, ref: str) -> dict[str, Any]:
        """How the case page names things in Chinese: the workflow's states, steps and fields (with an enum's
        value labels) of the case's own workflow version, and the org's people who acted on the case."""
        with self.transaction(write=False) as session:
            found = self._visible(session, viewer, ref)
            d = workflow_repo.compiled(session, found.workflow_id).definition
            org = self._org(session)
            acted = {e.actor_id for e in cases.history(session, found)} | {found.reporter_id, found.assignee_id}
            return {
                "states": {name: s.label for name, s in d.states.items()},
                "triggers": {name: t.label for name, t in d.triggers.items()},
                "fields": {name: {"label": f.label, "values": dict(f.values)} for name, f in d.fields.items()},
                "people": {p: org.people[p].name for p in acted if p and p in org.people},
            }
