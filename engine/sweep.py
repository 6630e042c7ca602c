"""Turn due timers into reminders, breaches and escalations, each exactly once.

A sweep has two phases, each its own transaction:

1. **claim**: take up to ``batch`` due timers (``status = 'pending'``, ``fire_at <= at``,
   no live lease) and stamp them with this sweeper's id and a lease. On PostgreSQL
   the candidates are locked with ``FOR UPDATE SKIP LOCKED``, so concurrent sweepers
   take disjoint sets; on SQLite the stamp is a conditional UPDATE whose row count
   says whether the claim was won.
2. **fire**: for each claimed timer, in one transaction: flip it ``pending → fired``
   with a conditional UPDATE that also checks the claim (a timer fires at most once),
   check the fence (its clock is still running at the same generation; otherwise it
   is cancelled as stale, doing nothing), apply the effect to the case with a
   compare-and-set on its version, append the ``sla.*`` event and stage the notices.

A sweeper that dies after claiming leaves timers with a lease; once the lease runs
out another sweep claims them again (at least once), and the conditional flip makes
the effect happen at most once. The cost grows with the due timers: both phases go
through the partial index on ``fire_at`` where ``status = 'pending'``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from engine.errors import ConcurrentUpdate
from engine.scope import OrgSnapshot, snapshot
from engine.sla import Policy
from engine.store import case_repo
from engine.store.case_repo import CaseRecord, EventRecord
from engine.store.models import Outbox, SlaClock, SlaTimer
from engine.timeutil import require_aware

SYSTEM = "system"
DEFAULT_LEASE = timedelta(minutes=2)
EVENT = {"reminder": "sla.reminder", "breach": "sla.breach", "escalation": "sla.escalated"}
MARK_ORDER = {None: 0, "yellow_card": 1, "red_card": 2, "supervision_order": 3}


@dataclass
class SweepReport:
    claimed: int = 0
    fired: list[dict] = field(default_factory=list)
    stale: int = 0
    retried: int = 0  # lost a race with a user step; left for the next sweep

    def __bool__(self) -> bool:
        return bool(self.claimed)


# -- claim ----------------------------------------------------------------------------


def _due(at: datetime):  # type: ignore[no-untyped-def]
    return and_(
        SlaTimer.status == "pending",
        SlaTimer.fire_at <= at,
        or_(SlaTimer.lease_until.is_(None), SlaTimer.lease_until < at),
    )


def claim(session: Session, at: datetime, worker: str, batch: int = 500, lease: timedelta = DEFAULT_LEASE) -> list[int]:
    """Stamp up to ``batch`` due timers with ``worker`` and a lease; return their ids."""
    at = require_aware(at)
    stamp = {"claimed_by": worker, "lease_until": at + lease, "attempts": SlaTimer.attempts + 1}
    if session.get_bind().dialect.name == "postgresql":
        candidates = (
            select(SlaTimer.id).where(_due(at)).order_by(SlaTimer.fire_at).limit(batch)
            .with_for_update(skip_locked=True).scalar_subquery()
        )
        stmt = update(SlaTimer).where(SlaTimer.id.in_(candidates)).values(stamp).returning(SlaTimer.id)
        return list(session.execute(stmt, execution_options={"synchronize_session": False}).scalars())
    ids = list(session.scalars(select(SlaTimer.id).where(_due(at)).order_by(SlaTimer.fire_at).limit(batch)))
    won = []
    for timer_id in ids:
        result = session.execute(
            update(SlaTimer).where(SlaTimer.id == timer_id, _due(at)).values(stamp),
            execution_options={"synchronize_session": False},
        )
        if result.rowcount == 1:
            won.append(timer_id)
    return won


# -- fire -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Fired:
    timer_id: int
    case_code: str
    kind: str
    level: int
    event: str
    notices: int
    stale: bool = False


def fire_one(session: Session, timer_id: int, worker: str, at: datetime) -> Fired | None:
    """Fire one claimed timer; None if it is no longer ours (fired or re-claimed elsewhere)."""
    at = require_aware(at)
    flip = session.execute(
        update(SlaTimer)
        .where(SlaTimer.id == timer_id, SlaTimer.status == "pending", SlaTimer.claimed_by == worker)
        .values(status="fired", fired_at=at),
        execution_options={"synchronize_session": False},
    )
    if flip.rowcount != 1:
        return None
    timer = session.get(SlaTimer, timer_id)
    clock = session.get(SlaClock, timer.clock_id)
    assert timer is not None and clock is not None
    if clock.status != "running" or clock.generation != timer.generation:
        timer.status, timer.note = "cancelled", "stale: its clock moved on before it fired"
        return Fired(timer_id, "", timer.kind, timer.level, "", 0, stale=True)
    loaded = case_repo.load(session, timer.case_id)
    assert loaded is not None
    return _apply(session, timer, clock, loaded.case, snapshot(session, loaded.org_token), at)


def _apply(session: Session, timer: SlaTimer, clock: SlaClock, case: CaseRecord, org: OrgSnapshot,
           at: datetime) -> Fired:
    policy = Policy.from_json(clock.policy)
    before = case.version
    roles, template, payload = _effect(timer, clock, case, policy)
    case.version, case.updated_at = before + 1, at
    name = EVENT[timer.kind]
    payload.update({"clock": clock.scope, "state": clock.state, "due_at": clock.due_at.isoformat() if clock.due_at
                    else None, "timer": timer.id})
    event = EventRecord(case.id, case.version, at, SYSTEM, name, case.status, case.status, payload,
                        case.workflow_version)
    case_repo.save_step(session, case, before, event)
    notices = _stage(session, timer, case, org, roles, template, payload, at)
    return Fired(timer.id, case.code, timer.kind, timer.level, name, notices)


def _effect(timer: SlaTimer, clock: SlaClock, case: CaseRecord, policy: Policy) -> tuple[tuple, str, dict]:
    if timer.kind == "reminder":
        reminder = policy.reminders[timer.level - 1]
        share = f"{int(reminder.share * 100)}%" if reminder.share is not None else None
        return reminder.notify, reminder.template, {"level": timer.level, "share": share}
    if timer.kind == "breach":
        clock.breached_at = timer.fire_at
        case.overdue = True
        return policy.breach_notify, "sla_breach", {"limit": policy.limit_text}
    step = policy.ladder[timer.level - 1]
    case.escalation_level = max(case.escalation_level, timer.level)
    if MARK_ORDER.get(step.mark, 0) > MARK_ORDER.get(case.mark, 0):
        case.mark = step.mark
    return step.notify, step.template, {"level": timer.level, "mark": step.mark}


def _stage(session: Session, timer: SlaTimer, case: CaseRecord, org: OrgSnapshot, roles: tuple,
           template: str, payload: dict, at: datetime) -> int:
    """One outbox row per recipient, resolved from the org chart now; unique per timer and person."""
    grid = org.places.get(case.grid_id)
    recipients: dict[str, str] = {}
    for role in roles:
        if role == "assignee" and case.assignee_id:
            recipients.setdefault(case.assignee_id, role)
        elif role == "reporter":
            recipients.setdefault(case.reporter_id, role)
        elif grid is not None:
            for person in org.holders(role, grid):
                recipients.setdefault(person, role)
    urgent = case.priority in ("urgent", "critical")
    params = {**payload, "case": case.code, "title": case.title, "grid": case.grid_id, "status": case.status}
    for person, role in recipients.items():
        session.add(Outbox(
            case_id=case.id, recipient_id=person, role=role, template=template, params=params, urgent=urgent,
            status="pending", attempts=0, next_attempt_at=at, created_at=at,
            dedupe_key=f"timer:{timer.id}:{person}",
        ))
    return len(recipients)


# -- one sweep ----------------------------------------------------------------------------


def sweep(
    transaction: Callable[[], object],
    at: datetime,
    worker: str,
    batch: int = 500,
    lease: timedelta = DEFAULT_LEASE,
) -> SweepReport:
    """Claim and fire everything due at ``at``, a batch at a time.

    ``transaction()`` gives a context manager yielding a Session that commits on
    success (``sessionmaker.begin``). Claims commit first (the lease); then each batch
    fires in one transaction, every timer in its own savepoint, so a timer whose case
    a user moved meanwhile rolls back alone and is retried by a later sweep.
    """
    report = SweepReport()
    while True:
        with transaction() as session:  # type: ignore[attr-defined]
            ids = claim(session, at, worker, batch, lease)
        report.claimed += len(ids)
        if ids:
            with transaction() as session:  # type: ignore[attr-defined]
                for timer_id in ids:
                    _fire_in_savepoint(session, timer_id, worker, at, report)
        if len(ids) < batch:
            return report


def _fire_in_savepoint(session: Session, timer_id: int, worker: str, at: datetime, report: SweepReport) -> None:
    try:
        with session.begin_nested():
            fired = fire_one(session, timer_id, worker, at)
    except ConcurrentUpdate:
        report.retried += 1  # a user step won the race; the lease runs out and a later sweep retries
        return
    if fired is None:
        return
    if fired.stale:
        report.stale += 1
    else:
        report.fired.append(fired.__dict__)
