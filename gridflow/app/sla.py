"""Use cases: the SLA clocks (时限) and the business calendars (工作日历).

What is due, what a sweep would fire, one sweep, a case's clocks with their history and timers; a month of a
calendar, when a time limit falls due (the clocks' own arithmetic) and a check of the schedules. Each takes
plain values (aware datetimes, durations, names) and returns plain values: the dicts that ``gridflow sla …
--json`` prints (ISO times), or a frozen dataclass whose ``as_dict()`` is what ``gridflow calendar … --json``
prints, with the few values a person's table needs besides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from engine import cases
from engine.durations import Duration
from engine.errors import DatabaseError, NotFound
from engine.store.db import sqlite_file_missing
from engine.store.models import Case, Outbox, SlaClock, SlaTimer
from gridflow.app.base import Base
from gridflow.present import iso

if TYPE_CHECKING:  # the calendars and the sweep load only for the use cases that need them
    from engine.calendar import DueBreakdown, WorkCalendar
    from engine.sweep import SweepReport

WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
DAY_MARKS = {"holiday": "休", "makeup_workday": "班"}


class CalendarNotFound(NotFound):
    pass


@dataclass(frozen=True)
class CalendarMonth:
    """A month of a calendar: each day's kind, whether it is worked, whether its year is estimated."""

    calendar: str
    month: str  # 2026-02
    timezone: str
    days: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"calendar": self.calendar, "month": self.month, "days": self.days}


@dataclass(frozen=True)
class CalendarDue:
    """When a time limit falls due: ``due`` is ``calendar due --json`` (local ISO times, minutes);
    ``limit_s`` and ``day_length_s`` the business time of the limit and of one working day, ``official``
    whether the calendar follows China's official schedules."""

    due: dict[str, Any]
    limit_s: float
    day_length_s: float
    official: bool
    timezone: str

    def as_dict(self) -> dict[str, Any]:
        return self.due


@dataclass(frozen=True)
class CalendarCheck:
    """``warnings`` (a schedule missing soon, estimated deadlines) and ``errors`` (unanswerable ones)."""

    warnings: list[str]
    errors: list[str]
    calendars: list[str]  # the calendars' names, sorted

    def as_dict(self) -> dict[str, Any]:
        return {"warnings": self.warnings, "errors": self.errors}


class SlaUseCases(Base):
    """The SLA clocks and their sweep; the business calendars."""

    # -- the clocks --------------------------------------------------------------------------------

    def sla_due(self, at: datetime | None = None, within: timedelta = timedelta(0)) -> list[dict[str, Any]]:
        """Running clocks whose deadline is before ``at + within`` (default now), by grid and deadline."""
        when = at or self.clock()
        with self.transaction(write=False) as session:
            return due_clocks(session, when, within)

    def sweep_plan(self, at: datetime | None = None) -> dict[str, Any]:
        """What a sweep at ``at`` (default now; may be in the future) would fire; nothing is written."""
        from engine import sweep

        when = at or self.clock()
        with self.transaction(write=False) as session:
            items = sweep.plan(session, when)
        return {"at": iso(when), "dry_run": True, "would_fire": [{**i, "fire_at": iso(i["fire_at"])} for i in items]}

    def sweep(
        self, at: datetime | None = None, budget: timedelta | None = None, stop: Callable[[], bool] | None = None
    ) -> SweepReport:
        """One sweep: fire every timer due at ``at`` (default: now). With a ``budget`` (the runtime),
        each batch fires at the clock's time and the sweep stops taking batches when it is spent."""
        from engine import sweep

        start = at or self.clock()
        try:
            return sweep.sweep(
                self._sessions.begin,
                start,
                self.worker_id,
                batch=self.settings.sweep_batch,
                lease=timedelta(seconds=self.settings.sweep_lease_s),
                clock=self.clock if budget is not None or stop is not None else None,
                until=start + budget if budget is not None else None,
                stop=stop,
            )
        except DBAPIError as exc:
            raise DatabaseError(self._explain(exc)) from exc

    def explain_sla(self, ref: str) -> dict[str, Any]:
        """Every clock of a case: started, paused, resumed, extended, stopped; deadlines and timers."""
        with self.transaction(write=False) as session:
            found = cases.get_case(session, ref)
            clocks = timeline(session, found.id)
            _add_recipients(session, found, clocks)
            return {"case": found.code, "clocks": clocks}

    # -- the calendars -----------------------------------------------------------------------------

    def calendar_month(self, year: int, month: int, name: str = "township") -> CalendarMonth:
        """A month of calendar ``name`` with its holidays (休) and make-up working days (班)."""
        cal = self.calendar(name)
        days = [
            {"date": d.isoformat(), "kind": kind, "working": cal.is_working_day(d), "estimated": cal.is_estimated(d)}
            for d, kind in cal.month(year, month)
        ]
        return CalendarMonth(name, f"{year}-{month:02d}", cal.tz.key, days)

    def calendar_due(self, start: datetime, limit: Duration, name: str = "township") -> CalendarDue:
        """When a time limit started at ``start`` falls due on calendar ``name``, and the time each day counts."""
        cal = self.calendar(name)
        b = due_reckoning(cal, start, limit)
        return CalendarDue(
            due_dict(b, cal, limit, self.tz),
            b.limit.total_seconds(),
            cal.day_length.total_seconds(),
            cal.china is not None,
            cal.tz.key,
        )

    def calendar_check(self) -> CalendarCheck:
        """Warn when next year's schedule is missing (from November on); an error for each deadline the
        calendars cannot answer (this year and next, and every running clock's)."""
        from engine.calendar import check_calendars

        today = self.clock().astimezone(self.tz).date()
        warnings = check_calendars(self.calendars, today)
        errors = [
            f"{name}: the years {today.year} and {today.year + 1} must be answerable"
            for name, cal in self.calendars.items()
            if not (cal.knows_year(today.year) and cal.knows_year(today.year + 1))
        ]
        if not sqlite_file_missing(self.settings.db_url):
            with self.transaction(write=False) as session:
                warnings += estimated_deadlines(session)
                errors += unanswerable_deadlines(session, self.calendars)
        return CalendarCheck(warnings, errors, sorted(self.calendars))

    def calendar(self, name: str) -> WorkCalendar:
        """The calendar ``name`` of ``config/calendars.yaml``, or :class:`CalendarNotFound`."""
        cal = self.calendars.get(name)
        if cal is None:
            known = ", ".join(sorted(self.calendars)) or "none"
            raise CalendarNotFound(f"no calendar {name!r}; calendars: {known} (config/calendars.yaml)")
        return cal


# -- queries -------------------------------------------------------------------------------------------


def due_clocks(session: Session, at: datetime, within: timedelta) -> list[dict[str, Any]]:
    """Running clocks whose deadline is before ``at + within``, by grid and deadline."""
    rows = session.execute(
        select(SlaClock, Case.code, Case.grid_id, Case.title, Case.status, Case.mark)
        .join(Case, Case.id == SlaClock.case_id)
        .where(SlaClock.status == "running", SlaClock.due_at <= at + within)
        .order_by(Case.grid_id, SlaClock.due_at)
    ).all()
    return [
        {
            "grid": grid,
            "case": code,
            "title": title,
            "status": status,
            "mark": mark,
            "clock": clock.scope if clock.scope == "case" else clock.state,
            "calendar": clock.calendar,
            "due_at": iso(clock.due_at),
            "overdue": clock.due_at <= at,
            "estimated": clock.estimated,
        }
        for clock, code, grid, title, status, mark in rows
    ]


def timeline(session: Session, case_id: int) -> list[dict[str, Any]]:
    """A case's clocks in order, each with its history and its timers."""
    clocks = session.scalars(select(SlaClock).where(SlaClock.case_id == case_id).order_by(SlaClock.id)).all()
    timers = session.scalars(
        select(SlaTimer).where(SlaTimer.case_id == case_id).order_by(SlaTimer.fire_at, SlaTimer.id)
    ).all()
    return [
        {
            "clock": clock.id,
            "scope": clock.scope,
            "state": clock.state,
            "calendar": clock.calendar,
            "limit": clock.policy.get("limit_text"),
            "limit_s": clock.limit_s,
            "consumed_s": clock.consumed_s,
            "status": clock.status,
            "due_at": iso(clock.due_at),
            "estimated": clock.estimated,
            "breached_at": iso(clock.breached_at),
            "outcome": clock.outcome,
            "history": clock.history,
            "timers": [_timer_dict(t) for t in timers if t.clock_id == clock.id],
        }
        for clock in clocks
    ]


def _add_recipients(session: Session, case: Case, clocks: list[dict[str, Any]]) -> None:
    """Who each timer tells (a pending one: as the org chart stands now), and the roles the centre is
    told in place of because nobody holds them for the case's grid (``instead_of``)."""
    from engine import notices, scope
    from engine.sla import Policy

    org = scope.current(session)
    policies = {
        c.id: Policy.from_json(c.policy)
        for c in session.scalars(select(SlaClock).where(SlaClock.case_id == case.id))
        if c.policy
    }
    sent: dict[str, list[Any]] = {}  # timer id → its notices, for the timers that fired
    for o in session.scalars(select(Outbox).where(Outbox.case_id == case.id, Outbox.dedupe_key.like("timer:%"))):
        sent.setdefault(o.dedupe_key.split(":")[1], []).append(o)
    for clock in clocks:
        policy = policies.get(clock["clock"])
        for t in clock["timers"]:
            roles = _rung_roles(policy, t["kind"], t["level"]) if policy else ()
            t["roles"] = list(roles)
            if t["status"] == "fired":  # who was told, as the notices were staged
                rows = sent.get(str(t["id"]), [])
                found = {o.recipient_id: o.role for o in rows}
                missing = next((list(o.params.get("instead_of") or []) for o in rows if o.params), [])
            elif t["status"] == "pending":  # who would be told, as the org chart stands now
                found, missing = notices.rung_recipients(org, case, roles, per_role=t["kind"] != "reminder")  # type: ignore[arg-type]
            else:
                continue
            t["to"] = [{"person": p, "name": getattr(org.people.get(p), "name", p), "as": r} for p, r in found.items()]
            t["instead_of"] = missing


def _rung_roles(policy: Any, kind: str, level: int) -> tuple[str, ...]:
    try:
        if kind == "reminder":
            return tuple(policy.reminders[level - 1].notify)
        if kind == "breach":
            return tuple(policy.breach_notify)
        return tuple(policy.ladder[level - 1].notify)
    except IndexError:
        return ()


def _timer_dict(t: SlaTimer) -> dict[str, Any]:
    return {
        "id": t.id,
        "kind": t.kind,
        "level": t.level,
        "generation": t.generation,
        "fire_at": iso(t.fire_at),
        "status": t.status,
        "fired_at": iso(t.fired_at),
        "note": t.note,
    }


def estimated_deadlines(session: Session) -> list[str]:
    """A warning when running clocks have a deadline in a year whose official notice is not loaded."""
    count = session.scalar(
        select(func.count()).select_from(SlaClock).where(SlaClock.status == "running", SlaClock.estimated)
    )
    if not count:
        return []
    return [
        f"{count} running clock(s) have a deadline in a year whose official holiday notice is not loaded "
        "(marked 'estimated'); add it under official_schedules in config/calendars.yaml"
    ]


def unanswerable_deadlines(session: Session, calendars: dict[str, WorkCalendar]) -> list[str]:
    """An error for each running clock whose calendar is gone or cannot answer its deadline's year."""
    out = []
    for name, due in session.execute(
        select(SlaClock.calendar, SlaClock.due_at).where(SlaClock.status == "running", SlaClock.due_at.is_not(None))
    ):
        cal = calendars.get(name)
        if cal is None:
            out.append(f"a running clock uses calendar {name!r}, which config/calendars.yaml no longer defines")
        elif not cal.knows_year(due.astimezone(cal.tz).year):
            out.append(f"a running clock on {name} is due in {due.year}, a year the calendar cannot answer")
    return sorted(set(out))


# -- a deadline's reckoning ---------------------------------------------------------------------------


def due_reckoning(cal: WorkCalendar, start: datetime, limit: Duration) -> DueBreakdown:
    """The deadline a clock started at ``start`` with ``limit`` gets: the SLA clocks' own conversion
    (:func:`engine.sla.business`) and arithmetic (:func:`engine.calendar.due_breakdown`)."""
    from engine.calendar import due_breakdown
    from engine.sla import business

    return due_breakdown(cal, start, timedelta(seconds=business(limit, cal)))


def minutes(amount: timedelta) -> int | float:
    """Minutes, whole when they are."""
    value = amount.total_seconds() / 60
    return int(value) if value.is_integer() else round(value, 2)


def _mark(cal: WorkCalendar, day: date, kind: str) -> str:
    mark = DAY_MARKS.get(kind, "")
    return mark + ("?" if mark and cal.is_estimated(day) else "")


def due_dict(b: DueBreakdown, cal: WorkCalendar, limit: Duration, tz: ZoneInfo) -> dict[str, Any]:
    """``calendar due --json``: times in ISO 8601 with the local offset, amounts in minutes."""
    return {
        "calendar": cal.name,
        "calendar_label": cal.label,
        "always_open": cal.always_open,
        "start": b.start.astimezone(tz).isoformat(),
        "counting_from": b.begin.astimezone(tz).isoformat(),
        "duration": str(limit),
        "limit_minutes": minutes(b.limit),
        "due_at": b.deadline.at.astimezone(tz).isoformat(),
        "estimated": b.deadline.estimated,
        "estimated_years": sorted({d.day.year for d in b.days if d.estimated}),
        "days": [
            {
                "date": d.day.isoformat(),
                "weekday": WEEKDAYS[d.day.weekday()],
                "kind": d.kind,
                "mark": _mark(cal, d.day, d.kind),
                "counted_minutes": minutes(d.counted),
                "total_minutes": minutes(d.total),
                "estimated": d.estimated,
            }
            for d in b.days
        ],
    }
