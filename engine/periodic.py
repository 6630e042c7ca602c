"""The bodies of the period jobs, for now: a tally of the period in SQL, and the calendar check.

The monthly scoring, the quarterly posting and the annual summary get their full indicators,
scores and artefacts in the scoring issue; until then each records the period's key figures
(cases reported, closed, voided; clocks breached and met) so that the keying, the catch-up
and the exactly-once runs are real and visible (`gridflow jobs list`). Every figure is one
aggregate query over an index, not a loop over cases.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from engine.calendar import WorkCalendar, check_calendars
from engine.jobs import Body, Period
from engine.store.models import Case, SlaClock


def bounds(period: Period, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The period's local start and end as UTC instants."""
    start = datetime.combine(period.start, time(), tz).astimezone(UTC)
    end = datetime.combine(period.end, time(), tz).astimezone(UTC)
    return start, end


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


def bodies(tz: ZoneInfo, calendars: Mapping[str, WorkCalendar]) -> dict[str, Body]:
    """Each job's body, bound to the local zone and the calendars."""

    def scored(session: Session, period: Period, at: datetime) -> dict[str, Any]:
        return tally(session, period, tz)

    def calendar_check(session: Session, period: Period, at: datetime) -> dict[str, Any]:
        return {"warnings": check_calendars(calendars, period.start)}

    return {
        "monthly_scoring": scored,
        "quarterly_publication": scored,
        "annual_summary": scored,
        "calendar_check": calendar_check,
    }
