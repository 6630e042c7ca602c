"""The bodies of the period jobs: monthly scoring (月评比), the quarterly posting (季公示), the
annual summary (年总结) and the daily calendar check.

Each body runs inside :func:`engine.jobs.run_period`'s transaction, behind the unique key of
``job_run``, so its score run, posting and notices commit together with the ``done`` row, once.
The quarterly and annual bodies score any month of their period that has no run yet. The
result a body returns is what ``gridflow jobs list`` shows. :func:`tally` (a few aggregate
counts of a period) is kept for the job tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from engine.calendar import WorkCalendar, check_calendars
from engine.errors import ConfigError
from engine.jobs import Body, Period, bounds
from engine.publication import posting as postings
from engine.scoring import runs
from engine.store.models import Case, SlaClock

if TYPE_CHECKING:
    from engine.scoring.config import ScoringConfig


def tally(session: Session, period: Period, tz: ZoneInfo) -> dict[str, Any]:
    start, end = bounds(period, tz)

    def count(model: Any, *where: Any) -> int:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

    within = lambda column: and_(column >= start, column < end)  # noqa: E731
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "cases_reported": count(Case, within(Case.reported_at)),
        "cases_closed": count(Case, within(Case.closed_at), Case.status != "voided"),
        "cases_voided": count(Case, within(Case.closed_at), Case.status == "voided"),
        "clocks_breached": count(SlaClock, within(SlaClock.breached_at)),
        "clocks_met": count(SlaClock, within(SlaClock.stopped_at), SlaClock.outcome == "met"),
    }


def bodies(
    tz: ZoneInfo,
    calendars: Mapping[str, WorkCalendar],
    scoring: Callable[[], ScoringConfig] | None = None,
    base_url: str = "",
) -> dict[str, Body]:
    """Each job's body, bound to the local zone, the calendars and the scoring rules (loaded when
    a body runs, so an edited ``config/scoring.yaml`` is used from the next period on)."""

    def rules() -> ScoringConfig:
        if scoring is None:
            raise ConfigError("no scoring rules were given to the period jobs (pass scoring=)")
        return scoring()

    def monthly(session: Session, period: Period, at: datetime) -> dict[str, Any]:
        run = runs.current_run(session, period.key)
        if run is None:  # scored by hand (`gridflow score run`) before the job came: keep that run
            run = runs.score_period(session, period, at, rules(), tz, "月评比 monthly job")
        return run_result(run)

    def posting(kind: str) -> Body:
        def body(session: Session, period: Period, at: datetime) -> dict[str, Any]:
            done = postings.current(session, kind, period.key)
            if done is None:
                done = postings.publish(session, kind, period, at, rules(), tz, f"{kind} job", base_url).publication
            return {"version": done.version, "hash": done.content_hash[:16], "run": done.run_id}

        return body

    def calendar_check(session: Session, period: Period, at: datetime) -> dict[str, Any]:
        return {"warnings": check_calendars(calendars, period.start)}

    return {
        "monthly_scoring": monthly,
        "quarterly_publication": posting("quarterly"),
        "annual_summary": posting("annual"),
        "calendar_check": calendar_check,
    }


def run_result(run: Any) -> dict[str, Any]:
    """What a scoring job records: the run and the township's headline figures."""
    figures = run.summary or {}

    def value(name: str) -> Any:
        item = figures.get(name) or {}
        return None if item.get("value") is None else round(item["value"], 4)

    return {
        "run": run.id,
        "seq": run.seq,
        "rules": run.config_version,
        "reported": value("reported"),
        "closed": value("closed"),
        "on_time_close_rate": value("on_time_close_rate"),
        "ms": run.duration_ms,
    }
