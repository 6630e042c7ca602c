"""Case commands: ``report`` a case and ``fire`` a trigger on it.

Each command runs inside the caller's transaction and does, in order:
look up, check (trigger allowed in this state, role and grid scope, fields,
guards), and only then change the case, append one ``case_event`` and flush.
The flush is a compare-and-set on ``cases.version``: of two concurrent updates
exactly one wins, the other raises :class:`ConcurrentUpdate`. A rejected command
raises before anything is changed. The caller commits (or rolls back).

Time is passed in (``at``, aware); this module never reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from engine import fields as field_rules
from engine.definitions.model import ORG_ROLES, ROLE_LABELS
from engine.errors import (
    CaseNotFound,
    ConcurrentUpdate,
    GuardFailed,
    NotFound,
    PermissionDenied,
    PersonNotFound,
)
from engine.machine import CompiledWorkflow
from engine.rules import EFFECTS, GUARDS, StepContext
from engine.scope import roles_over
from engine.store import workflow_repo
from engine.store.models import Case, CaseCounter, CaseEvent, Place
from engine.timeutil import DEFAULT_TZ, require_aware

REPORT = "report"
CASE_COLUMNS = ("title", "description", "category", "priority", "satisfaction")


@dataclass(frozen=True)
class StepResult:
    case: Case
    event: CaseEvent


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
) -> StepResult:
    """Log a new case in ``grid_id`` on the latest version of ``workflow``."""
    at = require_aware(at)
    wf_row = workflow_repo.get_version(session, workflow)
    flow = workflow_repo.compiled(session, wf_row.id)
    grid = _grid(session, grid_id)
    rules = flow.definition.report
    _authorize(session, actor_id, grid, rules.roles, case=None, action="report a case in")
    values = field_rules.check(session, flow.definition, REPORT, fields, rules.required, rules.optional, grid)
    case = Case(
        code=_next_code(session, grid, at, tz),
        workflow_id=wf_row.id,
        workflow_name=wf_row.name,
        workflow_version=wf_row.version,
        status=flow.definition.initial,
        version=1,
        grid_id=grid.id,
        reporter_id=actor_id,
        source_channel=channel,
        rework_count=0,
        extension_count=0,
        reported_at=at,
        updated_at=at,
    )
    _apply_columns(case, values)
    session.add(case)
    session.flush()
    event = _event(case, REPORT, actor_id, None, values, at)
    session.add(event)
    session.flush()
    return StepResult(case, event)


def _grid(session: Session, grid_id: str) -> Place:
    grid = session.get(Place, grid_id)
    if grid is None or grid.kind != "grid" or not grid.active:
        raise NotFound(f"no active grid cell {grid_id!r}; `gridflow org show` lists the grid cells")
    return grid


def _next_code(session: Session, grid: Place, at: datetime, tz: ZoneInfo) -> str:
    """``SL-2026-000123``: township prefix, local year, a per-year sequence."""
    prefix = grid.township_id[:2].upper()
    township = session.get(Place, grid.township_id)
    if township is not None and township.attributes.get("code"):
        prefix = str(township.attributes["code"])
    key = f"{prefix}-{at.astimezone(tz).year}"
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(dialect.insert(CaseCounter).values(prefix=key, last=0).on_conflict_do_nothing())
    number = session.execute(
        update(CaseCounter).where(CaseCounter.prefix == key).values(last=CaseCounter.last + 1).returning(CaseCounter.last)
    ).scalar_one()
    return f"{key}-{number:06d}"


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
) -> StepResult:
    """Fire ``trigger`` on a case as ``actor_id`` at ``at``."""
    at = require_aware(at)
    case = get_case(session, case_ref)
    if expected_version is not None and case.version != expected_version:
        raise ConcurrentUpdate(
            f"case {case.code} is at version {case.version}, not {expected_version}: someone changed it "
            f"meanwhile; look at `gridflow case show {case.code}` and try again"
        )
    flow = workflow_repo.compiled(session, case.workflow_id)
    spec, dest = flow.step(case.status, trigger)
    grid = session.get(Place, case.grid_id)
    assert grid is not None
    _authorize(session, actor_id, grid, spec.roles, case=case, action=f"{trigger} ({spec.label}) case {case.code} in")
    values = field_rules.check(session, flow.definition, trigger, fields or {}, spec.required, spec.optional, grid)
    ctx = StepContext(case, trigger, actor_id, values, at)
    _check_guards(spec.guards, ctx, case)
    return _apply(session, flow, case, trigger, dest, ctx)


def _check_guards(guards: tuple[str, ...], ctx: StepContext, case: Case) -> None:
    for name in guards:
        reason = GUARDS[name](ctx)
        if reason is not None:
            raise GuardFailed(f"cannot {ctx.trigger} case {case.code}: {reason}")


def _apply(session: Session, flow: CompiledWorkflow, case: Case, trigger: str, dest: str, ctx: StepContext) -> StepResult:
    source, code = case.status, case.code  # read now: a failed flush expires the instance
    spec = flow.definition.triggers[trigger]
    _apply_columns(case, ctx.fields)
    for name in spec.effects:
        EFFECTS[name](ctx)
    case.status = dest
    case.version += 1
    case.updated_at = ctx.at
    if flow.definition.states[dest].final:
        case.closed_at = ctx.at
    event = _event(case, trigger, ctx.actor_id, source, ctx.fields, ctx.at)
    session.add(event)
    try:
        session.flush()
    except (StaleDataError, IntegrityError) as exc:
        raise ConcurrentUpdate(
            f"case {code} was changed by someone else while {trigger} was being applied; "
            f"nothing was saved. Look at `gridflow case show {code}` and try again"
        ) from exc
    return StepResult(case, event)


def _apply_columns(case: Case, values: dict[str, Any]) -> None:
    for name in CASE_COLUMNS:
        if name in values:
            setattr(case, name, values[name])
    if "assignee" in values:
        case.assignee_id = values["assignee"]


def _event(case: Case, trigger: str, actor_id: str, source: str | None, payload: dict, at: datetime) -> CaseEvent:
    return CaseEvent(
        case_id=case.id,
        seq=case.version,
        at=at,
        actor_id=actor_id,
        trigger=trigger,
        from_state=source,
        to_state=case.status,
        payload=dict(payload),
        workflow_version=case.workflow_version,
    )


# -- roles and scope -----------------------------------------------------------------


def _authorize(
    session: Session, actor_id: str, grid: Place, roles: tuple[str, ...], case: Case | None, action: str
) -> None:
    person, held = roles_over(session, actor_id, grid)
    if person is None:
        raise PersonNotFound(f"no person {actor_id!r} in the org chart; `gridflow org show` lists the people")
    if not person.active:
        raise PermissionDenied(f"{person.name} ({actor_id}) is no longer in the org chart and cannot act")
    if case is not None and _case_role(case, actor_id) & set(roles):
        return
    if held & set(roles) & set(ORG_ROLES):
        return
    wanted = " or ".join(f"{ROLE_LABELS[r]} {r}" for r in roles)
    has = ", ".join(sorted(held)) or "no role there"
    raise PermissionDenied(f"{person.name} ({actor_id}) may not {action} grid {grid.id}: needs {wanted}; has {has}")


def _case_role(case: Case, actor_id: str) -> set[str]:
    out = set()
    if case.assignee_id == actor_id:
        out.add("assignee")
    if case.reporter_id == actor_id:
        out.add("reporter")
    return out


# -- reading -----------------------------------------------------------------------


def get_case(session: Session, ref: int | str) -> Case:
    """A case by id (``42``) or code (``SL-2026-000042``)."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        case = session.get(Case, int(ref))
    else:
        case = session.scalars(select(Case).where(Case.code == ref)).first()
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


def history(session: Session, case: Case) -> list[CaseEvent]:
    return list(session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq)))
