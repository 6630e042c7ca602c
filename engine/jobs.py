"""Period-keyed jobs: monthly scoring, quarterly publication, the annual summary, the daily
calendar check — each run exactly once per period, whoever asks and however often.

A job names its period kind and when a period becomes due (local time: the monthly scoring
of November is due on 1 December at 01:00 in Asia/Shanghai, which is still 30 November in
UTC). :func:`due_periods` works out which recent periods are due and not done, so a beat that
was down across a month boundary catches up when it returns; :func:`run_period` runs one in
the caller's transaction behind the unique key ``(job, period)`` of ``job_run``:

- the row is inserted (or a ``failed`` row taken over) with ``ON CONFLICT``; a second runner
  of the same period waits on that key until the first commits and then finds it done;
- the body runs in the same transaction, so its result and the ``done`` row commit together;
  if the body fails, nothing of it stays and :func:`record_failure` notes the error for the
  next attempt.

Pure: time comes in as ``at``; bodies are plain functions ``body(session, period, at) -> dict``.
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine.errors import InputError, NotFound
from engine.store.models import JobRun, WorkflowDefinition
from engine.timeutil import in_years, require_aware

Kind = Literal["day", "month", "quarter", "year"]
Body = Callable[[Session, "Period", datetime], dict[str, Any]]


@dataclass(frozen=True, order=True)
class Period:
    """A calendar period in local dates: ``start`` inclusive, ``end`` exclusive."""

    start: date
    end: date
    kind: Kind
    key: str

    def __str__(self) -> str:
        return self.key


def bounds(period: Period, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The period's local start and end as UTC instants."""
    start = datetime.combine(period.start, time(), tz).astimezone(UTC)
    end = datetime.combine(period.end, time(), tz).astimezone(UTC)
    return start, end


def period_of(kind: Kind, day: date) -> Period:
    """The period of ``kind`` that contains ``day``."""
    if kind == "day":
        return Period(day, day + timedelta(days=1), kind, day.isoformat())
    if kind == "month":
        start = day.replace(day=1)
        return Period(start, _add_months(start, 1), kind, f"{day.year}-{day.month:02d}")
    if kind == "quarter":
        quarter = (day.month - 1) // 3
        start = date(day.year, quarter * 3 + 1, 1)
        return Period(start, _add_months(start, 3), kind, f"{day.year}Q{quarter + 1}")
    if kind == "year":
        return Period(date(day.year, 1, 1), date(day.year + 1, 1, 1), kind, str(day.year))
    raise ValueError(f"unknown period kind {kind!r}")


def parse_period(kind: Kind, key: str) -> Period:
    """``2026-11`` (month), ``2026Q4`` (quarter), ``2026`` (year), ``2026-11-27`` (day)."""
    try:
        if kind == "month":
            year, month = key.split("-")
            day = date(int(year), int(month), 1)
        elif kind == "quarter":
            year, quarter = key.upper().split("Q")
            if not 1 <= int(quarter) <= 4:
                raise ValueError(quarter)
            day = date(int(year), (int(quarter) - 1) * 3 + 1, 1)
        elif kind == "year":
            day = date(int(key), 1, 1)
        else:
            day = date.fromisoformat(key)
    except ValueError as exc:
        example = {"day": "2026-11-27", "month": "2026-11", "quarter": "2026Q4", "year": "2026"}[kind]
        raise InputError(f"bad {kind} period {key!r}: write it like {example}") from exc
    in_years(day, f"{kind} period", key)
    period = period_of(kind, day)
    if period.key != key.upper():
        raise InputError(f"bad {kind} period {key!r}: write it like {period.key}")
    return period


def previous(period: Period) -> Period:
    return period_of(period.kind, period.start - timedelta(days=1))


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, _calendar.monthrange(year, month + 1)[1]))


@dataclass(frozen=True)
class JobSpec:
    """A period job: the period kind, and when a period is due — ``offset`` after the period's
    end (``anchor="end"``: a month is scored once it is over) or after its start (``"start"``:
    the daily check of a day runs on that day)."""

    name: str
    kind: Kind
    offset: timedelta
    anchor: Literal["start", "end"] = "end"
    label: str = ""

    def due_at(self, period: Period, tz: ZoneInfo) -> datetime:
        day = period.end if self.anchor == "end" else period.start
        return (datetime.combine(day, time(), tz) + self.offset).astimezone(UTC)


# Monthly on day 1 at 01:00, quarterly on the first day of Jan/Apr/Jul/Oct at 03:00 (after the
# month's scores it draws on), yearly on 2 January at 01:00, the calendar check daily at 06:00.
JOBS: dict[str, JobSpec] = {
    spec.name: spec
    for spec in (
        JobSpec("monthly_scoring", "month", timedelta(hours=1), label="月评比 monthly scoring"),
        JobSpec("quarterly_publication", "quarter", timedelta(hours=3), label="季公示 quarterly posting"),
        JobSpec("annual_summary", "year", timedelta(days=1, hours=1), label="年总结 annual summary"),
        JobSpec("calendar_check", "day", timedelta(hours=6), anchor="start", label="日历检查 calendar check"),
    )
}


def job(name: str) -> JobSpec:
    try:
        return JOBS[name]
    except KeyError:
        raise NotFound(f"unknown job {name!r}; jobs are: {', '.join(JOBS)}") from None


def candidate_periods(spec: JobSpec, at: datetime, tz: ZoneInfo, catch_up: int) -> list[Period]:
    """The last ``catch_up`` periods that are due at ``at``, oldest first."""
    at = require_aware(at)
    current = period_of(spec.kind, at.astimezone(tz).date())
    found: list[Period] = []
    period = current
    for _ in range(catch_up + 2):  # the current period, and the last one just before its due time, may not be due
        if spec.due_at(period, tz) <= at:
            found.append(period)
            if len(found) == catch_up:
                break
        period = previous(period)
    return sorted(found)


def due_periods(
    session: Session, spec: JobSpec, at: datetime, tz: ZoneInfo, catch_up: int, since: datetime | None = None
) -> list[Period]:
    """Candidate periods that have no ``done`` run yet; with ``since`` (when gridflow was set up),
    only periods that end after it: a new install does not sum up the years before it existed."""
    candidates = candidate_periods(spec, at, tz, catch_up)
    if since is not None:
        candidates = [p for p in candidates if datetime.combine(p.end, time(), tz) > since]
    if not candidates:
        return []
    done = set(
        session.scalars(
            select(JobRun.period).where(
                JobRun.job == spec.name, JobRun.period.in_([p.key for p in candidates]), JobRun.status == "done"
            )
        )
    )
    return [p for p in candidates if p.key not in done]


def installed_at(session: Session) -> datetime | None:
    """When this gridflow was set up: its first published workflow (``gridflow init`` publishes)."""
    return session.scalar(select(func.min(WorkflowDefinition.published_at)))


@dataclass(frozen=True)
class Outcome:
    job: str
    period: str
    ran: bool  # False: another runner had done it already
    result: dict[str, Any] | None = None


def run_period(
    session: Session, spec: JobSpec, period: Period, at: datetime, tz: ZoneInfo, body: Body, worker: str = ""
) -> Outcome:
    """Run ``body`` for ``period`` unless it is done; in the caller's transaction."""
    at = require_aware(at)
    if not _take(session, spec, period, at, tz, worker):
        return Outcome(spec.name, period.key, ran=False)
    result = body(session, period, at)
    session.execute(
        JobRun.__table__.update()
        .where(JobRun.job == spec.name, JobRun.period == period.key)
        .values(status="done", finished_at=at, result=result, error=None)
    )
    return Outcome(spec.name, period.key, ran=True, result=result)


def _upsert(session: Session):  # type: ignore[no-untyped-def]
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert(JobRun.__table__)


def _take(session: Session, spec: JobSpec, period: Period, at: datetime, tz: ZoneInfo, worker: str) -> bool:
    """Insert the period's row, or take over a failed one; False if it is done (or being done)."""
    row = {
        "job": spec.name,
        "period": period.key,
        "status": "running",
        "attempts": 1,
        "due_at": spec.due_at(period, tz),
        "started_at": at,
        "worker": worker[:64] or None,
    }
    table = JobRun.__table__
    stmt = _upsert(session).values(row)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.job, table.c.period],
        set_={"status": "running", "attempts": table.c.attempts + 1, "started_at": at, "worker": row["worker"]},
        where=table.c.status == "failed",
    ).returning(table.c.id)
    return session.execute(stmt).first() is not None


def record_failure(session: Session, spec: JobSpec, period: Period, at: datetime, tz: ZoneInfo, error: str) -> None:
    """Note a failed attempt (in a new transaction: the failed one rolled back); never over a done run."""
    table = JobRun.__table__
    stmt = _upsert(session).values(
        job=spec.name,
        period=period.key,
        status="failed",
        attempts=1,
        due_at=spec.due_at(period, tz),
        started_at=at,
        error=error[:2000],
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.job, table.c.period],
        set_={"status": "failed", "attempts": table.c.attempts + 1, "error": error[:2000]},
        where=table.c.status != "done",
    )
    session.execute(stmt)


def runs(session: Session, names: Iterable[str] | None = None, limit: int = 50) -> list[JobRun]:
    stmt = select(JobRun).order_by(JobRun.due_at.desc(), JobRun.job).limit(limit)
    if names:
        stmt = stmt.where(JobRun.job.in_(list(names)))
    return list(session.scalars(stmt))
