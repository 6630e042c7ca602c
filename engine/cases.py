"""Case commands: ``report`` a case and ``fire`` a trigger on it.

Each command runs inside the caller's transaction and does, in order: look up
(the case and the org token in one statement), check (trigger allowed in this
state, role and grid scope, fields, guards), and only then change the case with
a compare-and-set on ``cases.version`` and append one ``case_event``. Of two
concurrent updates exactly one wins; the other raises :class:`ConcurrentUpdate`.
A rejected command raises before anything is written. The caller commits.

Time is passed in (``at``, aware); this module never reads the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, or_, select
from sqlalchemy.orm import Session

from engine import fields as field_rules
from engine import notices, scope, webhooks
from engine.definitions.model import ORG_ROLES, ROLE_LABELS, WorkflowDef
from engine.durations import parse_duration
from engine.errors import (
    CaseNotFound,
    ConcurrentUpdate,
    ConfigError,
    GuardFailed,
    NotFound,
    OutOfOrder,
    PermissionDenied,
    PersonNotFound,
    TriggerNotAllowed,
)
from engine.machine import CompiledWorkflow
from engine.rules import EFFECTS, GUARDS, StepContext
from engine.scope import OrgSnapshot, PlaceInfo, snapshot
from engine.sla import CaseFacts, Clocks
from engine.store import case_repo, workflow_repo
from engine.store.case_repo import CaseRecord, EventRecord
from engine.store.models import Case, CaseEvent, Outbox, ScoreRun
from engine.timeutil import DEFAULT_TZ, require_aware

if TYPE_CHECKING:
    from engine.calendar import WorkCalendar

REPORT = "report"
_INSERT_OUTBOX = insert(Outbox.__table__)
CASE_COLUMNS = ("title", "description", "category", "priority", "satisfaction")


@dataclass(frozen=True)
class StepResult:
    case: CaseRecord
    event: EventRecord


@dataclass(frozen=True)
class Entry:
    """A step typed in after the fact (a grid worker's notebook, a paper register): when it was
    received and who typed it in. The step itself is dated ``at``, when it happened."""

    received_at: datetime
    entered_by: str


# -- report ------------------------------------------------------------------------


def report(
    session: Session,
    *,
    grid_id: str,
    actor_id: str,
    fields: dict[str, Any],
    at: datetime,
    workflow: str = "grid_case",
    channel: str = "grid_worker",
    tz: ZoneInfo = DEFAULT_TZ,
    calendars: Mapping[str, WorkCalendar] | None = None,
    entry: Entry | None = None,
) -> StepResult:
    """Log a new case in ``grid_id`` on the latest version of ``workflow``; start its clocks.

    With ``entry`` the report is backfilled: it happened at ``at`` (its clocks run from then)
    and was typed in at ``entry.received_at`` by ``entry.entered_by``."""
    at = require_aware(at)
    workflow_id, workflow_hash, token = case_repo.latest_workflow(session, workflow)
    if workflow_id is None:
        raise workflow_repo.not_found(session, workflow)
    flow = workflow_repo.compiled(session, workflow_id, workflow_hash)
    org = snapshot(session, token)
    grid = _grid(org, grid_id)
    rules = flow.definition.report
    _authorize(org, actor_id, grid, rules.roles, case=None, action="report a case in")
    _check_entry(session, org, entry, at, None, tz)
    values = field_rules.check(org, flow.definition, REPORT, fields, rules.required, rules.optional, grid)
    case = _new_case(flow, "", grid.id, actor_id, channel, at)
    _apply_columns(case, values)
    clocks = None
    if _has_sla(flow.definition):  # every deadline worked out (a calendar may refuse the year) before the number
        clocks = _clocks(session, case, flow.definition, calendars, tz)
        clocks.on_report(flow.definition, at)
    counter = f"{org.code_prefix(grid)}-{at.astimezone(tz).year}"  # SL-2026: per township, per local year
    case.code = f"{counter}-{case_repo.next_number(session, counter):06d}"
    row = case.as_dict()
    del row["id"]
    event = case_repo.insert_reported(session, row, _event(case, REPORT, actor_id, None, values, at, entry))
    case.id = event.case_id
    _stage_notices(session, org, case, event, rules.notify + flow.definition.states[case.status].notify, at)
    webhooks.step(session, token, case, event, at)
    if clocks is not None:
        clocks.bind(case.id)
        clocks.finish()
    return StepResult(case, event)


def _stage_notices(
    session: Session, org: OrgSnapshot, case: CaseRecord, event: EventRecord, entries: tuple, at: datetime
) -> None:
    if entries:
        rows = notices.for_step(org, case, event, entries, at)
        case_repo.execute_rows(session.connection(), _INSERT_OUTBOX, rows)


def _has_sla(definition: WorkflowDef) -> bool:
    return bool(definition.extras.get("case_sla")) or any(s.sla for s in definition.states.values())


def _clocks(
    session: Session,
    case: CaseRecord,
    definition: WorkflowDef,
    calendars: Mapping[str, WorkCalendar] | None,
    tz: ZoneInfo,
    open_clocks: list[dict[str, Any]] | None = None,
) -> Clocks:
    if calendars is None:
        raise ConfigError(
            f"workflow {definition.name!r} has time limits but no calendars were given; "
            "load config/calendars.yaml (engine.calendar.load_calendars) and pass calendars="
        )
    facts = CaseFacts(case.id, case.category, case.priority, case.assignee_id)
    return Clocks(session, facts, calendars, tz, open_clocks)


def _new_case(flow: CompiledWorkflow, code: str, grid_id: str, actor_id: str, channel: str, at: datetime) -> CaseRecord:
    """A case in the workflow's initial state, at version 1; ``id`` is set once inserted."""
    assert flow.workflow_id is not None and flow.version is not None
    return CaseRecord(
        id=0,
        code=code,
        workflow_id=flow.workflow_id,
        workflow_name=flow.definition.name,
        workflow_version=flow.version,
        status=flow.definition.initial,
        version=1,
        title="",
        description=None,
        category=None,
        priority=None,
        grid_id=grid_id,
        reporter_id=actor_id,
        assignee_id=None,
        source_channel=channel,
        satisfaction=None,
        rework_count=0,
        extension_count=0,
        pending_extension=None,
        reported_at=at,
        updated_at=at,
        closed_at=None,
    )


def _grid(org: OrgSnapshot, grid_id: str) -> PlaceInfo:
    grid = org.grid(grid_id)
    if grid is None:
        raise NotFound(f"no active grid cell {grid_id!r}; `gridflow org show` lists the grid cells")
    return grid


# -- fire --------------------------------------------------------------------------


def fire(
    session: Session,
    case_ref: int | str,
    trigger: str,
    *,
    actor_id: str,
    fields: dict[str, Any] | None,
    at: datetime,
    expected_version: int | None = None,
    tz: ZoneInfo = DEFAULT_TZ,
    calendars: Mapping[str, WorkCalendar] | None = None,
    entry: Entry | None = None,
) -> StepResult:
    """Fire ``trigger`` on a case (id or code) as ``actor_id`` at ``at``; move its clocks.

    With ``entry`` the step is backfilled (see :func:`report`); it may not go before the case's
    last recorded step, so the history stays in order."""
    at = require_aware(at)
    loaded = case_repo.load(session, case_ref)
    if loaded is None:
        raise CaseNotFound(f"no case {case_ref!r}; `gridflow case list` shows the cases")
    case, token = loaded.case, loaded.org_token
    if expected_version is not None and case.version != expected_version:
        raise ConcurrentUpdate(
            f"case {case.code} is at version {case.version}, not {expected_version}: someone changed it "
            f"meanwhile; look at `gridflow case show {case.code}` and try again"
        )
    flow = workflow_repo.compiled(session, case.workflow_id, loaded.workflow_hash)
    org = snapshot(session, token)
    try:
        spec, dest = flow.step(case.status, trigger)
    except TriggerNotAllowed as exc:
        raise _overtaken(session, flow, org, case, trigger, actor_id, at) or exc from None
    grid = org.places[case.grid_id]
    _authorize(org, actor_id, grid, spec.roles, case=case, action=f"{trigger} ({spec.label}) case {case.code} in")
    _check_entry(session, org, entry, at, case, tz)
    values = field_rules.check(org, flow.definition, trigger, fields or {}, spec.required, spec.optional, grid)
    ctx = StepContext(case, trigger, actor_id, values, at, flow.definition.extras)
    _check_guards(spec.guards, ctx)
    result = _apply(session, flow, ctx, dest, entry)
    entered = flow.definition.states[dest].notify if dest != result.event.from_state else ()
    _stage_notices(session, org, result.case, result.event, spec.notify + entered, at)
    webhooks.step(session, token, result.case, result.event, at)
    if _has_sla(flow.definition):
        _move_clocks(session, flow.definition, result, spec.effects, calendars, tz, loaded.open_clocks)
    return result


def _move_clocks(
    session: Session,
    definition: WorkflowDef,
    result: StepResult,
    effects: tuple[str, ...],
    calendars: Mapping[str, WorkCalendar] | None,
    tz: ZoneInfo,
    open_clocks: list[dict[str, Any]] | None = None,
) -> None:
    event = result.event
    clocks = _clocks(session, result.case, definition, calendars, tz, open_clocks)
    why = f"{event.trigger} ({definition.triggers[event.trigger].label}) by {event.actor_id}"
    clocks.on_step(definition, event.from_state or "", event.to_state, event.at, why, event.trigger)
    if "approve_extension" in effects and event.payload.get("extend_by"):
        clocks.extend(parse_duration(event.payload["extend_by"]), event.at, why)
    clocks.finish()


def _check_guards(guards: tuple[str, ...], ctx: StepContext) -> None:
    for name in guards:
        reason = GUARDS[name](ctx)
        if reason is not None:
            raise GuardFailed(f"cannot {ctx.trigger} case {ctx.case.code}: {reason}")


def _apply(
    session: Session, flow: CompiledWorkflow, ctx: StepContext, dest: str, entry: Entry | None = None
) -> StepResult:
    case = ctx.case
    assert isinstance(case, CaseRecord)
    source, before = case.status, case.version
    _apply_columns(case, ctx.fields)
    for name in flow.definition.triggers[ctx.trigger].effects:
        EFFECTS[name](ctx)
    case.status = dest
    case.version = before + 1
    case.updated_at = ctx.at
    if flow.definition.states[dest].final:
        case.closed_at = ctx.at
    event = _event(case, ctx.trigger, ctx.actor_id, source, ctx.fields, ctx.at, entry)
    case_repo.save_step(session, case, before, event)
    return StepResult(case, event)


def _apply_columns(case: CaseRecord, values: dict[str, Any]) -> None:
    for name in CASE_COLUMNS:
        if name in values:
            setattr(case, name, values[name])
    if "assignee" in values:
        case.assignee_id = values["assignee"]


def _event(
    case: CaseRecord,
    trigger: str,
    actor_id: str,
    source: str | None,
    payload: dict,
    at: datetime,
    entry: Entry | None = None,
) -> EventRecord:
    return EventRecord(
        case_id=case.id,
        seq=case.version,
        at=at,
        actor_id=actor_id,
        trigger=trigger,
        from_state=source,
        to_state=case.status,
        payload=dict(payload),
        workflow_version=case.workflow_version,
        received_at=entry.received_at if entry else None,
        entered_by=entry.entered_by if entry and entry.entered_by != actor_id else None,
    )


# -- backfilling and lost races ------------------------------------------------------


def _check_entry(
    session: Session, org: OrgSnapshot, entry: Entry | None, at: datetime, case: CaseRecord | None, tz: ZoneInfo
) -> None:
    """A backfilled step: typed in by someone of the org chart, not before it happened, not in a
    month already scored (its figures are frozen), and (on a case) not before the case's last step."""
    if entry is None:
        return
    month = f"{at.astimezone(tz):%Y-%m}"
    if session.scalar(select(ScoreRun.id).where(ScoreRun.period == month).limit(1)) is not None:
        raise OutOfOrder(
            f"{month} has been scored (`gridflow score history --period {month}`): a step dated "
            f"{at.astimezone(tz):%Y-%m-%d %H:%M} would change its frozen figures; record it at the time "
            "it is typed in (leave --at out) and say when it happened in the fields"
        )
    if entry.entered_by not in org.people:
        raise PersonNotFound(
            f"no person {entry.entered_by!r} in the org chart (who typed it in); `gridflow org show` lists the people"
        )
    if require_aware(entry.received_at) < at:
        raise OutOfOrder(
            f"a step cannot be typed in ({entry.received_at.astimezone(tz):%Y-%m-%d %H:%M %Z}) before it happened"
        )
    if case is not None and at < case.updated_at:
        raise OutOfOrder(
            f"case {case.code} was last changed at {case.updated_at.astimezone(tz):%Y-%m-%d %H:%M %Z} "
            f"(version {case.version}); a backfilled step cannot be dated before it "
            f"({at.astimezone(tz):%Y-%m-%d %H:%M %Z}): `gridflow case history {case.code}` shows the steps"
        )


def _overtaken(
    session: Session,
    flow: CompiledWorkflow,
    org: OrgSnapshot,
    case: CaseRecord,
    trigger: str,
    actor_id: str,
    at: datetime,
) -> TriggerNotAllowed | None:
    """When ``trigger`` is not allowed now but was before the case's last step, someone else got
    there first: say who, what and how long ago, instead of only that the trigger is not allowed."""
    moves = select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.from_state != CaseEvent.to_state)
    last = session.scalars(moves.order_by(CaseEvent.seq.desc()).limit(1)).first()
    if last is None or last.from_state is None or trigger not in flow.allowed(last.from_state):
        return None
    d = flow.definition
    try:  # only someone who could have taken the step lost a race for it
        _authorize(org, actor_id, org.places[case.grid_id], d.triggers[trigger].roles, case=case, action=trigger)
    except (PermissionDenied, PersonNotFound):
        return None
    person = org.people.get(last.actor_id)
    who = f"{person.name} ({last.actor_id})" if person else last.actor_id
    who = f"you ({who}) already" if last.actor_id == actor_id else f"someone else ({who})"
    did = d.triggers[last.trigger].label if last.trigger in d.triggers else last.trigger
    allowed = flow.allowed(case.status)
    listed = ", ".join(f"{t} ({d.triggers[t].label})" for t in allowed) or "none: the case is closed"
    return TriggerNotAllowed(
        f"{who} took the step {last.trigger} ({did}) on case {case.code} {_ago(at - last.at)} ago; "
        f"it is now {case.status} ({d.state_label(case.status)}), so {trigger!r} is no longer possible; "
        f"allowed now: {listed}",
        allowed,
    )


def _ago(delta: timedelta) -> str:
    seconds = max(delta.total_seconds(), 0.0)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# -- roles and scope -----------------------------------------------------------------


def _authorize(
    org: OrgSnapshot, actor_id: str, grid: PlaceInfo, roles: tuple[str, ...], case: CaseRecord | None, action: str
) -> None:
    person = org.people.get(actor_id)
    if person is None:
        raise PersonNotFound(f"no person {actor_id!r} in the org chart; `gridflow org show` lists the people")
    if not person.active:
        raise PermissionDenied(f"{person.name} ({actor_id}) is no longer in the org chart and cannot act")
    if case is not None and _case_roles(case, actor_id) & set(roles):
        return
    held = org.roles_over(actor_id, grid)
    if held & set(roles) & set(ORG_ROLES):
        return
    wanted = " or ".join(f"{ROLE_LABELS[r]} {r}" for r in roles)
    has = ", ".join(sorted(held)) or "no role there"
    raise PermissionDenied(f"{person.name} ({actor_id}) may not {action} grid {grid.id}: needs {wanted}; has {has}")


def _case_roles(case: CaseRecord, actor_id: str) -> set[str]:
    out = set()
    if case.assignee_id == actor_id:
        out.add("assignee")
    if case.reporter_id == actor_id:
        out.add("reporter")
    return out


# -- reading -----------------------------------------------------------------------


def get_case(session: Session, ref: int | str) -> Case:
    """A case row (ORM, for reading) by id (``42``) or code (``SL-2026-000042``). The first read of a
    transaction brings the org chart's token along (:func:`engine.scope.prime`): one statement less."""
    number = case_repo.case_id(ref)
    where = Case.id == number if number is not None else Case.code == str(ref)
    if scope.seen(session):
        case = session.get(Case, number) if number is not None else session.scalars(select(Case).where(where)).first()
    else:
        found = session.execute(select(Case, scope.token_query()).where(where)).first()
        case = found[0] if found is not None else None
        if found is not None:
            scope.prime(session, found[1])
    if case is None:
        raise CaseNotFound(f"no case {ref!r}; `gridflow case list` shows the cases")
    return case


def list_cases(
    session: Session,
    *,
    status: str | None = None,
    grid_id: str | None = None,
    person_id: str | None = None,
    open_only: bool = False,
    limit: int = 100,
) -> list[Case]:
    query = select(Case).order_by(Case.id.desc()).limit(limit)
    if status:
        query = query.where(Case.status == status)
    if grid_id:
        query = query.where(Case.grid_id == grid_id)
    if person_id:
        query = query.where(or_(Case.assignee_id == person_id, Case.reporter_id == person_id))
    if open_only:
        query = query.where(Case.closed_at.is_(None))
    return list(session.scalars(query))


def history(session: Session, case: Case | CaseRecord) -> list[CaseEvent]:
    return list(session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq)))
