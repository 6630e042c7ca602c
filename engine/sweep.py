"""Turn due timers into reminders, breaches and escalations, each exactly once.

A sweep has two phases, each its own transaction:

1. **claim**: take up to ``batch`` due timers (``status = 'pending'``, ``fire_at <= at``,
   no live lease) and stamp them with this sweeper's id and a lease. On PostgreSQL
   the candidates are locked with ``FOR UPDATE SKIP LOCKED``, so concurrent sweepers
   take disjoint sets; on SQLite the stamp is a conditional UPDATE whose row count
   says whether the claim was won.
2. **fire** (the whole batch, set-based): lock and load the batch's cases in id order
   (the same lock order as a user step: case first, then its timers, so the two never
   deadlock); flip ``pending → fired`` only the timers this sweeper still holds (a timer
   fires at most once) and read their clocks; check each timer's fence (its clock still
   running at the timer's generation, else it is cancelled as stale); apply the effects
   in deadline order; then write the cases (compare-and-set on their version), the
   ``sla.*`` events, the outbox rows and the breach stamps — on PostgreSQL in one
   pipeline.

A sweeper that dies after claiming leaves timers with a lease; once the lease runs
out another sweep claims them again (at least once), and the conditional flip makes
the effect happen at most once. The cost grows with the due timers: both phases go
through the partial index on ``fire_at`` where ``status = 'pending'``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from engine import notices, webhooks
from engine.errors import ConcurrentUpdate
from engine.scope import OrgSnapshot, snapshot
from engine.sla import Policy
from engine.store import case_repo
from engine.store.case_repo import CaseRecord, EventRecord
from engine.store.models import Case, Outbox, SlaClock, SlaTimer
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
    more: bool = False  # stopped at its time budget with due timers left for the next sweep

    def __bool__(self) -> bool:
        return bool(self.claimed)


# -- claim ----------------------------------------------------------------------------


def _due(at: datetime, until: datetime | None = None):  # type: ignore[no-untyped-def]
    """Pending, due by ``until`` (default ``at``), and not held under a live lease at ``at``."""
    return and_(
        SlaTimer.status == "pending",
        SlaTimer.fire_at <= (until or at),
        or_(SlaTimer.lease_until.is_(None), SlaTimer.lease_until < at),
    )


def claim(session: Session, at: datetime, worker: str, batch: int = 500, lease: timedelta = DEFAULT_LEASE) -> list[int]:
    """Stamp up to ``batch`` due timers with ``worker`` and a lease; return their ids."""
    at = require_aware(at)
    return [timer_id for timer_id, _ in _claim(session, at, at, worker, batch, lease)]


def claim_ahead(
    session: Session, at: datetime, horizon: timedelta, worker: str, batch: int = 500, lease: timedelta = DEFAULT_LEASE
) -> list[tuple[int, datetime]]:
    """Claim timers due by ``at + horizon`` for precise firing: ``(id, fire_at)``, by ``fire_at``.

    The lease runs ``lease`` past the horizon: if the hand-off to the worker is lost (the
    broker restarted), the sweep takes the timers over when the lease runs out.
    """
    at = require_aware(at)
    return _claim(session, at, at + horizon, worker, batch, lease + horizon)


def _claim(
    session: Session, at: datetime, until: datetime, worker: str, batch: int, lease: timedelta
) -> list[tuple[int, datetime]]:
    stamp = {"claimed_by": worker, "lease_until": at + lease, "attempts": SlaTimer.attempts + 1}
    due = _due(at, until)
    if session.get_bind().dialect.name == "postgresql":
        candidates = (
            select(SlaTimer.id)
            .where(due)
            .order_by(SlaTimer.fire_at)
            .limit(batch)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        stmt = update(SlaTimer).where(SlaTimer.id.in_(candidates)).values(stamp)
        rows = session.execute(
            stmt.returning(SlaTimer.id, SlaTimer.fire_at), execution_options={"synchronize_session": False}
        )
        return sorted(((r.id, r.fire_at) for r in rows), key=lambda r: (r[1], r[0]))
    found = session.execute(select(SlaTimer.id, SlaTimer.fire_at).where(due).order_by(SlaTimer.fire_at).limit(batch))
    won = []
    for timer_id, fire_at in found.all():
        result = session.execute(
            update(SlaTimer).where(SlaTimer.id == timer_id, due).values(stamp),
            execution_options={"synchronize_session": False},
        )
        if result.rowcount == 1:
            won.append((timer_id, fire_at))
    return won


def plan(session: Session, at: datetime, limit: int = 1000) -> list[dict[str, Any]]:
    """What a sweep at ``at`` would fire, read only (``sla sweep --dry-run``): pending timers due by
    then, in deadline order, each marked ``stale`` when its clock has moved on (the sweep skips those)."""
    rows = session.execute(
        select(SlaTimer, SlaClock.status, SlaClock.generation, SlaClock.scope, SlaClock.state, Case.code)
        .join(SlaClock, SlaClock.id == SlaTimer.clock_id)
        .join(Case, Case.id == SlaTimer.case_id)
        .where(SlaTimer.status == "pending", SlaTimer.fire_at <= require_aware(at))
        .order_by(SlaTimer.fire_at, SlaTimer.id)
        .limit(limit)
    ).all()
    return [
        {
            "timer": timer.id,
            "case_code": code,
            "kind": timer.kind,
            "level": timer.level,
            "fire_at": timer.fire_at,
            "clock": scope if scope == "case" else state,
            "stale": status != "running" or generation != timer.generation,
        }
        for timer, status, generation, scope, state, code in rows
    ]


# -- fire -----------------------------------------------------------------------------


_TIMERS, _CLOCKS = SlaTimer.__table__, SlaClock.__table__
_TIMER_COLUMNS = (
    _TIMERS.c.id,
    _TIMERS.c.clock_id,
    _TIMERS.c.case_id,
    _TIMERS.c.kind,
    _TIMERS.c.level,
    _TIMERS.c.generation,
    _TIMERS.c.fire_at,
)
_CLOCK_COLUMNS = (  # what the fence and the effects need of a timer's clock
    _CLOCKS.c.status.label("clock_status"),
    _CLOCKS.c.generation.label("clock_generation"),
    _CLOCKS.c.scope,
    _CLOCKS.c.state,
    _CLOCKS.c.due_at,
    _CLOCKS.c.policy,
)
# Flip only the timers this sweeper still holds; at most once, because of status = 'pending'.
_FLIP_BASE = (
    update(_TIMERS)
    .where(
        _TIMERS.c.id.in_(bindparam("ids", expanding=True)),
        _TIMERS.c.status == "pending",
        _TIMERS.c.claimed_by == bindparam("worker"),
    )
    .values(status="fired", fired_at=bindparam("at"))
)
# PostgreSQL: the same flip, returning each timer's clock too (UPDATE ... FROM sla_clock).
_FLIP = _FLIP_BASE.where(_TIMERS.c.clock_id == _CLOCKS.c.id).returning(*_TIMER_COLUMNS, *_CLOCK_COLUMNS)
_FLIP_ONLY = _FLIP_BASE.returning(*_TIMER_COLUMNS)  # SQLite: its RETURNING cannot name sla_clock
_CLOCK_ROWS = select(_CLOCKS.c.id, *_CLOCK_COLUMNS).where(_CLOCKS.c.id.in_(bindparam("ids", expanding=True)))
_INSERT_OUTBOX = insert(Outbox.__table__)
_BREACHED = (
    update(SlaClock.__table__).where(SlaClock.__table__.c.id == bindparam("clock")).values(breached_at=bindparam("at"))
)


def _with_clocks(conn: Any, timers: list[Any]) -> list[Any]:
    """Timer rows joined with their clocks' columns (what _FLIP returns in one go on PostgreSQL)."""
    if not timers:
        return []
    clocks = {c.id: c for c in conn.execute(_CLOCK_ROWS, {"ids": sorted({t.clock_id for t in timers})})}
    return [
        SimpleNamespace(**t._mapping, **{k: v for k, v in clocks[t.clock_id]._mapping.items() if k != "id"})
        for t in timers
    ]


@dataclass(frozen=True)
class Fired:
    timer_id: int
    case_code: str
    kind: str
    level: int
    event: str
    notices: int
    stale: bool = False


@dataclass
class _Batch:
    """What one fire transaction works on: claimed timers, their clocks and cases."""

    timers: list[Any]  # rows: id, clock_id, case_id, kind, level, generation, fire_at
    clocks: dict[int, Any]  # rows: id, status, generation, scope, state, due_at, policy
    cases: dict[int, CaseRecord]
    versions: dict[int, int]  # case id -> version as read
    org_token: str | None
    events: list[EventRecord] = field(default_factory=list)
    notices: list[dict] = field(default_factory=list)
    breaches: list[dict] = field(default_factory=list)  # clock id and the time it breached


def fire_one(session: Session, timer_id: int, worker: str, at: datetime) -> Fired | None:
    """Fire one claimed timer; None if it is no longer ours (fired or re-claimed elsewhere)."""
    fired = fire_batch(session, [timer_id], worker, at)
    return fired[0] if fired else None


def fire_batch(session: Session, timer_ids: list[int], worker: str, at: datetime) -> list[Fired]:
    """Fire the timers this worker claimed, set-based, in the caller's transaction.

    Lock order is the cases first (in id order), then the timers: the same order as a user
    step (case, then the clock's timers), so a sweep and a step never deadlock; they queue.
    Returns what fired, and the stale timers (marked ``stale=True``).
    """
    at = require_aware(at)
    if not timer_ids:
        return []
    loaded = case_repo.lock_cases_of_timers(session, timer_ids)
    batch = _load(session, loaded, timer_ids, worker, at)
    if batch is None:
        return []
    fired, stale = _effects(session, batch, at)
    _write(session, batch, fired, at)
    return fired + stale


def _load(session: Session, loaded: list, timer_ids: list[int], worker: str, at: datetime) -> _Batch | None:
    """Flip our claimed timers to fired and read their clocks, in one statement."""
    conn = session.connection()
    params = {"ids": timer_ids, "worker": worker, "at": at}
    if conn.dialect.name == "postgresql":
        flipped = conn.execute(_FLIP, params).all()
    else:  # SQLite's RETURNING cannot name the FROM table's columns: flip, then read the clocks
        flipped = _with_clocks(conn, conn.execute(_FLIP_ONLY, params).all())
    if not flipped:
        return None
    timers = sorted(flipped, key=lambda t: (t.case_id, t.fire_at, t.id))
    clocks = {t.clock_id: t for t in timers}  # each row carries its clock's columns
    cases = {item.case.id: item.case for item in loaded}
    token = loaded[0].org_token if loaded else None
    return _Batch(timers, clocks, cases, {i: c.version for i, c in cases.items()}, token)


def _effects(session: Session, batch: _Batch, at: datetime) -> tuple[list[Fired], list[Fired]]:
    fired: list[Fired] = []
    stale: list[Fired] = []
    org = snapshot(session, batch.org_token)
    for timer in batch.timers:
        clock, case = batch.clocks[timer.clock_id], batch.cases[timer.case_id]
        if clock.clock_status != "running" or clock.clock_generation != timer.generation:
            stale.append(Fired(timer.id, case.code, timer.kind, timer.level, "", 0, stale=True))
            continue
        roles, template, payload = _effect(timer, case, Policy.from_json(clock.policy))
        if timer.kind == "breach":
            batch.breaches.append({"clock": timer.clock_id, "at": timer.fire_at})
        case.version, case.updated_at = case.version + 1, at
        payload.update(
            {
                "clock": clock.scope,
                "state": clock.state,
                "timer": timer.id,
                "due_at": clock.due_at.isoformat() if clock.due_at else None,
            }
        )
        batch.events.append(
            EventRecord(
                case.id,
                case.version,
                at,
                SYSTEM,
                EVENT[timer.kind],
                case.status,
                case.status,
                payload,
                case.workflow_version,
            )
        )
        notices = _notices(timer.id, case, org, roles, template, payload, at, per_role=timer.kind != "reminder")
        batch.notices.extend(notices)
        batch.notices.extend(webhooks.timer_rows(session, org.token, timer.kind, timer.id, case, payload, at))
        fired.append(Fired(timer.id, case.code, timer.kind, timer.level, EVENT[timer.kind], len(notices)))
    if stale:
        session.execute(
            update(SlaTimer)
            .where(SlaTimer.id.in_([f.timer_id for f in stale]))
            .values(status="cancelled", note="stale: its clock moved on before it fired"),
            execution_options={"synchronize_session": False},
        )
    return fired, stale


def _write(session: Session, batch: _Batch, fired: list[Fired], at: datetime) -> None:
    """The cases (compare-and-set; they are locked, so it holds), events, outbox, clocks."""
    changed = [c for i, c in batch.cases.items() if c.version != batch.versions[i]]
    extra = [(_INSERT_OUTBOX, batch.notices), (_BREACHED, batch.breaches)]
    case_repo.write_fired(session, changed, batch.versions, batch.events, extra)


def _effect(timer: Any, case: CaseRecord, policy: Policy) -> tuple[tuple, str, dict]:
    if timer.kind == "reminder":
        reminder = policy.reminders[timer.level - 1]
        share = f"{reminder.percent}%" if reminder.percent is not None else None
        return reminder.notify, reminder.template, {"level": timer.level, "share": share}
    if timer.kind == "breach":
        case.overdue = True
        return policy.breach_notify, "sla_breach", {"limit": policy.limit_text}
    step = policy.ladder[timer.level - 1]
    case.escalation_level = max(case.escalation_level, timer.level)
    if MARK_ORDER.get(step.mark, 0) > MARK_ORDER.get(case.mark, 0):
        case.mark = step.mark
    template = (
        "supervision_order" if step.mark == "supervision_order" and step.template == "sla_escalated" else step.template
    )
    return step.notify, template, {"level": timer.level, "mark": step.mark}


def _notices(
    timer_id: int,
    case: CaseRecord,
    org: OrgSnapshot,
    roles: tuple,
    template: str,
    payload: dict,
    at: datetime,
    per_role: bool = True,
) -> list[dict]:
    """One outbox row per recipient, resolved from the org chart now; unique per timer and person. A role
    nobody holds for the case's grid is told through the centre (``instead_of`` in the notice's params)."""
    found, missing = notices.rung_recipients(org, case, roles, per_role)
    params = notices.case_params(org, case, **payload)
    if missing:
        params["instead_of"] = missing
    return notices.outbox_rows(org, case, roles, template, params, at, key=f"timer:{timer_id}", found=found)


# -- one sweep ----------------------------------------------------------------------------


def sweep(
    transaction: Callable[[], object],
    at: datetime,
    worker: str,
    batch: int = 500,
    lease: timedelta = DEFAULT_LEASE,
    clock: Callable[[], datetime] | None = None,
    until: datetime | None = None,
    stop: Callable[[], bool] | None = None,
) -> SweepReport:
    """Claim and fire everything due at ``at``, a batch at a time.

    ``transaction()`` gives a context manager yielding a Session that commits on
    success (``sessionmaker.begin``). Claims commit first (the lease); then each batch
    fires in one transaction. If that transaction fails (the database, a deadlock
    victim), its timers stay claimed and a later sweep retries them after the lease.

    The runtime passes ``clock`` and ``until``: each batch then claims and fires at the
    clock's time (``fired_at`` is when the batch fired, not when the sweep began), and the
    sweep stops taking new batches at ``until`` — a backlog is shared by the next ticks
    and by other workers instead of holding one task slot for minutes — or when ``stop()``
    says so (the process is shutting down).
    """
    report = SweepReport()
    while True:
        now = require_aware(clock()) if clock else at
        with transaction() as session:  # type: ignore[attr-defined]
            ids = claim(session, now, worker, batch, lease)
        report.claimed += len(ids)
        if ids:
            _fire(transaction, ids, worker, now, report)
        if len(ids) < batch:
            return report
        if (until is not None and clock is not None and clock() >= until) or (stop is not None and stop()):
            report.more = True
            return report


def _fire(transaction, ids: list[int], worker: str, at: datetime, report: SweepReport) -> None:  # type: ignore[no-untyped-def]
    try:
        with transaction() as session:
            results = fire_batch(session, ids, worker, at)
    except ConcurrentUpdate:
        report.retried += len(ids)  # left claimed; a later sweep takes them over when the lease runs out
        return
    for fired in results:
        if fired.stale:
            report.stale += 1
        else:
            report.fired.append(fired.__dict__)
