"""Demo data (演示数据, ``gridflow demo``): what marks it, what it holds, and removing it.

A **demo case** is a case whose ``source_channel`` is ``demo`` (for people, its title starts
with 【演示】 too). Everything else of the demo hangs off those cases — their events, clocks,
timers and notices — or off the **demo periods**: the quarter the demo cases were reported in and
its months, whose score runs, postings and job runs the demo made (it loads only into periods
nobody has scored, published or filled with real cases). A **demo notice** is a notice of a demo
case, or of a posting whose figures come from demo data (its params carry ``"demo": true``); the
dispatcher never sends one (:func:`notifications.dispatch.suppress_demo`, the one place of that rule).

This module is the only one that reads or deletes demo rows in SQL; :mod:`gridflow.demo` calls it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, true, update
from sqlalchemy.orm import Session

from engine.store.models import (
    Case,
    CaseCounter,
    CaseEvent,
    Delivery,
    HouseholdScore,
    JobRun,
    Objection,
    Outbox,
    PointsEntry,
    PointsExemption,
    Publication,
    Score,
    ScoreExemption,
    ScoreIndicator,
    ScoreRun,
    SlaClock,
    SlaTimer,
)

DEMO_CHANNEL = "demo"  # cases.source_channel of every demo case
TITLE_PREFIX = "【演示】"  # and the start of its title
LABEL = "演示数据"


def is_demo_case() -> ColumnElement[bool]:
    return Case.source_channel == DEMO_CHANNEL


def demo_notice() -> ColumnElement[bool]:
    """An outbox row of the demo: its case is a demo case, or it announces a posting of demo data."""
    of_demo_case = exists().where(Case.id == Outbox.case_id, is_demo_case())
    return or_(of_demo_case, and_(Outbox.case_id.is_(None), Outbox.params["demo"].as_boolean() == true()))


def _alive(start: datetime, end: datetime) -> ColumnElement[bool]:
    """Cases a period's figures look at: reported before its end, not closed before its start."""
    return and_(Case.reported_at < end, or_(Case.closed_at.is_(None), Case.closed_at >= start))


def cases_in(session: Session, start: datetime, end: datetime, demo: bool = True) -> int:
    """How many demo cases (``demo=False``: other cases) count in the period ``[start, end)``."""
    which = is_demo_case() if demo else Case.source_channel != DEMO_CHANNEL
    return session.scalar(select(func.count()).select_from(Case).where(which, _alive(start, end))) or 0


def all_cases(session: Session) -> int:
    """Every case, demo or not (``gridflow demo --if-empty`` loads only into a database without any)."""
    return session.scalar(select(func.count()).select_from(Case)) or 0


def first_reported(session: Session) -> datetime | None:
    """When the first demo case was reported; None: there is no demo here."""
    return session.scalar(select(func.min(Case.reported_at)).where(is_demo_case()))


def next_timer(session: Session) -> datetime | None:
    """When the next pending SLA timer (of any case) is due; through the partial index on ``fire_at``."""
    return session.scalar(select(func.min(SlaTimer.fire_at)).where(SlaTimer.status == "pending"))


# -- what a period holds already -------------------------------------------------------------------


@dataclass(frozen=True)
class PeriodUse:
    """Score runs, postings and job runs already recorded for some periods."""

    score_runs: tuple[str, ...]
    postings: tuple[str, ...]
    job_runs: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.score_runs or self.postings or self.job_runs)


def period_use(session: Session, periods: list[str]) -> PeriodUse:
    runs = session.scalars(select(ScoreRun.period).where(ScoreRun.period.in_(periods)).distinct())
    pubs = session.execute(
        select(Publication.kind, Publication.period).where(Publication.period.in_(periods)).distinct()
    )
    jobs = session.execute(select(JobRun.job, JobRun.period).where(JobRun.period.in_(periods)))
    return PeriodUse(
        tuple(sorted(runs)),
        tuple(sorted(f"{kind} {period}" for kind, period in pubs)),
        tuple(sorted(f"{job} {period}" for job, period in jobs)),
    )


# -- what the demo holds ---------------------------------------------------------------------------


@dataclass
class Holdings:
    """Every row of the demo, counted (``gridflow demo --status``, and what ``--clear`` removes)."""

    cases: int = 0
    first_reported: datetime | None = None
    last_reported: datetime | None = None
    by_status: dict[str, int] = field(default_factory=dict)
    by_category: dict[str, int] = field(default_factory=dict)
    events: int = 0
    clocks: int = 0
    timers: dict[str, int] = field(default_factory=dict)  # by status
    notices: dict[str, int] = field(default_factory=dict)  # by status
    deliveries: int = 0
    score_runs: list[str] = field(default_factory=list)  # "2026-07 #1"
    postings: list[tuple[str, str, int]] = field(default_factory=list)  # kind, period, version
    job_runs: list[str] = field(default_factory=list)  # "monthly_scoring 2026-07"
    objections: int = 0
    points_entries: list[int] = field(default_factory=list)  # ledger entries that name a demo case


def _demo_ids():  # type: ignore[no-untyped-def]
    return select(Case.id).where(is_demo_case())


def holdings(session: Session, periods: list[str], jobs: list[tuple[str, str]]) -> Holdings:
    """The demo's rows; ``periods`` are the demo periods, ``jobs`` their (job, period) keys."""
    found = Holdings()
    row = session.execute(
        select(func.count(), func.min(Case.reported_at), func.max(Case.reported_at)).where(is_demo_case())
    ).one()
    found.cases, found.first_reported, found.last_reported = int(row[0]), row[1], row[2]
    if not found.cases and not periods:
        return found
    group = lambda column: dict(  # noqa: E731
        session.execute(select(column, func.count()).where(is_demo_case()).group_by(column)).all()
    )
    found.by_status, found.by_category = group(Case.status), {k or "—": v for k, v in group(Case.category).items()}
    ids = _demo_ids()
    found.events = _count(session, CaseEvent, CaseEvent.case_id.in_(ids))
    found.clocks = _count(session, SlaClock, SlaClock.case_id.in_(ids))
    found.timers = dict(
        session.execute(
            select(SlaTimer.status, func.count()).where(SlaTimer.case_id.in_(ids)).group_by(SlaTimer.status)
        ).all()
    )
    found.notices = dict(
        session.execute(select(Outbox.status, func.count()).where(demo_notice()).group_by(Outbox.status)).all()
    )
    found.deliveries = _count(session, Delivery, Delivery.key.in_(_notice_keys()))
    runs = session.execute(select(ScoreRun.period, ScoreRun.seq).where(ScoreRun.period.in_(periods)))
    found.score_runs = sorted(f"{p} #{s}" for p, s in runs)
    pubs = session.execute(
        select(Publication.kind, Publication.period, Publication.version).where(Publication.period.in_(periods))
    )
    found.postings = sorted((k, p, v) for k, p, v in pubs)
    found.job_runs = sorted(f"{j} {p}" for j, p in session.execute(select(JobRun.job, JobRun.period)) if (j, p) in jobs)
    found.objections = _count(session, Objection, Objection.publication_id.in_(_publications(periods)))
    found.points_entries = list(session.scalars(select(PointsEntry.id).where(PointsEntry.case_id.in_(ids))))
    return found


def _count(session: Session, model: Any, where: Any) -> int:
    return session.scalar(select(func.count()).select_from(model).where(where)) or 0


def _notice_keys():  # type: ignore[no-untyped-def]
    """The idempotency keys a demo notice was (or would be) delivered under: its own, or its digest's."""
    own = select(Outbox.dedupe_key).where(demo_notice())
    digests = select(Outbox.digest_key).where(demo_notice(), Outbox.digest_key.is_not(None))
    return own.union(digests).scalar_subquery()


def _publications(periods: list[str]):  # type: ignore[no-untyped-def]
    return select(Publication.id).where(Publication.period.in_(periods)).scalar_subquery()


# -- removing it ----------------------------------------------------------------------------------


def clear(session: Session, periods: list[str], jobs: list[tuple[str, str]]) -> Counter[str]:
    """Delete every demo row, in foreign-key order, and nothing else; the caller commits.

    ``periods`` are the demo periods (their score runs, postings, objections go), ``jobs`` the
    (job, period) keys of their job runs. The case-code counters the demo counted up are set back
    to the highest code left, so a reload numbers its cases the same way."""
    gone: Counter[str] = Counter()
    ids = _demo_ids()
    pubs = _publications(periods)
    objections = select(Objection.id).where(Objection.publication_id.in_(pubs)).scalar_subquery()
    run_ids = select(ScoreRun.id).where(ScoreRun.period.in_(periods)).scalar_subquery()
    prefixes = _counter_prefixes(session)

    def drop(name: str, model: Any, *where: Any) -> None:
        result = session.execute(delete(model).where(*where), execution_options={"synchronize_session": False})
        gone[name] += result.rowcount or 0

    drop("deliveries", Delivery, Delivery.key.in_(_notice_keys()))
    drop("notices", Outbox, demo_notice())
    drop(
        "exemptions", ScoreExemption, or_(ScoreExemption.case_id.in_(ids), ScoreExemption.objection_id.in_(objections))
    )
    drop("exemptions", PointsExemption, PointsExemption.objection_id.in_(objections))
    drop("objections", Objection, Objection.id.in_(objections))
    drop("postings", Publication, Publication.id.in_(pubs))
    drop("household scores", HouseholdScore, HouseholdScore.run_id.in_(run_ids))
    drop("indicators", ScoreIndicator, ScoreIndicator.run_id.in_(run_ids))
    drop("scores", Score, Score.run_id.in_(run_ids))
    drop("score runs", ScoreRun, ScoreRun.id.in_(run_ids))
    for job, period in jobs:
        drop("job runs", JobRun, JobRun.job == job, JobRun.period == period)
    drop("timers", SlaTimer, SlaTimer.case_id.in_(ids))
    drop("clocks", SlaClock, SlaClock.case_id.in_(ids))
    drop("events", CaseEvent, CaseEvent.case_id.in_(ids))
    drop("cases", Case, is_demo_case())
    for prefix in prefixes:
        _reset_counter(session, prefix)
    return gone


def _counter_prefixes(session: Session) -> list[str]:
    """The counters (``SL-2026``) of the demo cases' codes (``SL-2026-000123``)."""
    return sorted({code.rsplit("-", 1)[0] for code in session.scalars(select(Case.code).where(is_demo_case()))})


def _reset_counter(session: Session, prefix: str) -> None:
    numbers = [
        int(tail)
        for code in session.scalars(select(Case.code).where(Case.code.like(f"{prefix}-%")))
        if (tail := code[len(prefix) + 1 :]).isdigit()
    ]
    session.execute(update(CaseCounter).where(CaseCounter.prefix == prefix).values(last=max(numbers, default=0)))
