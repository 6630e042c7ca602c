"""Business calendars: when an SLA clock runs, and business-time arithmetic on it.

A :class:`WorkCalendar` knows, for every local day, whether it is a working day
and which working periods it has (Mon–Fri 08:30–12:00 and 14:00–17:30, say),
in its own time zone. China's statutory holidays and make-up working days
(调休上班) come from the ``holidays`` package, cross-checked with
``chinese_calendar`` (which wins where the two disagree; the disagreements are
kept in :attr:`ChinaSchedule.discrepancies`), plus the official schedules and
local days off / working days written in ``config/calendars.yaml``.

Pure: no clock reads; the only I/O is :func:`load_calendars` reading its file.

Arithmetic works on integer microseconds since the epoch. For each year a
calendar builds, once, the sorted working periods of the whole year and the
business time elapsed before each of them; ``add``, ``between`` and
``next_working_instant`` are then a binary search plus a walk over the years
spanned (usually one), whatever the duration.

Years: a year is *official* when ``chinese_calendar`` has its schedule or the
file gives it under ``official_schedules``; other years from 2001 to 2100 are
computed by ``holidays`` on its estimate (no make-up days) and every
:class:`Deadline` that uses one is flagged ``estimated``. Outside that window
the calendar refuses to guess and raises :class:`UnknownYear`.

Errors::

    ConfigError
    ├── SourceError
    │   └── CalendarInvalid     located problems in calendars.yaml, all at once
    └── CalendarError           a calendar cannot answer
        └── UnknownYear         a computation needs a year the calendar does not know
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar
import holidays

from engine.durations import Duration
from engine.errors import ConfigError, SourceError
from engine.timeutil import DEFAULT_TZ, require_aware
from engine.yamlsrc import Path_, Source, load_file

__all__ = [
    "CalendarError",
    "CalendarInvalid",
    "UnknownYear",
    "Deadline",
    "DayCount",
    "DueBreakdown",
    "due_breakdown",
    "Discrepancy",
    "Period",
    "OfficialYear",
    "ChinaSchedule",
    "WorkCalendar",
    "load_calendars",
    "check_calendars",
    "DAY_KINDS",
]

WORKDAY, WEEKEND, HOLIDAY, MAKEUP_WORKDAY = "workday", "weekend", "holiday", "makeup_workday"
DAY_KINDS = (WORKDAY, WEEKEND, HOLIDAY, MAKEUP_WORKDAY)
WORKING_KINDS = frozenset({WORKDAY, MAKEUP_WORKDAY})

# The China schedule is answered for these years. ``holidays`` computes China up to its
# end_year (2100); its make-up working days start in 2001 (the first State Council
# notice it carries), and before 1995 Saturdays were working days anyway.
FIRST_CHINA_YEAR = 2001
LAST_CHINA_YEAR = holidays.China.end_year
_CC_FIRST, _CC_LAST = min(chinese_calendar.holidays).year, max(chinese_calendar.holidays).year
CHINESE_CALENDAR_YEARS = range(_CC_FIRST, _CC_LAST + 1)

CONFIG_HINT = "config/calendars.yaml"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_ZERO = timedelta(0)


# -- errors ----------------------------------------------------------------------


class CalendarError(ConfigError):
    """A calendar cannot answer the question asked of it."""


class CalendarInvalid(SourceError):
    what = "calendar file"


class UnknownYear(CalendarError):
    """A computation needs a year whose holidays the calendar cannot tell, not even on an estimate."""

    def __init__(self, calendar: str, year: int, known: str, official: str):
        self.calendar, self.year = calendar, year
        super().__init__(
            f"calendar {calendar!r} cannot answer for {year}: it knows {known} "
            f"(official schedules: {official}; other years are estimated). To add {year}, copy the "
            f"State Council's holiday notice under 'official_schedules: {year}:' in {CONFIG_HINT}"
        )


# -- values ----------------------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    at: datetime  # aware, UTC
    estimated: bool  # a day used lies in a year whose official schedule is not loaded


@dataclass(frozen=True, order=True)
class Discrepancy:
    """A day on which ``holidays`` and ``chinese_calendar`` disagree; chinese_calendar is used."""

    day: date
    holidays_working: bool
    chinese_calendar_working: bool

    def __str__(self) -> str:
        def say(working: bool) -> str:
            return "a working day" if working else "a day off"

        return (
            f"{self.day} ({self.day:%a}): holidays says {say(self.holidays_working)}, "
            f"chinese_calendar says {say(self.chinese_calendar_working)}; using chinese_calendar"
        )


class Period(NamedTuple):
    """A working period of a day, in seconds after local midnight; ``end`` may be 86400 (24:00)."""

    start: int
    end: int

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"

    @property
    def length(self) -> int:
        return self.end - self.start


def _hhmm(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def _to_us(at: datetime) -> int:
    return (at - _EPOCH) // _MICRO


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _days_of(year: int) -> Iterable[date]:
    first = date(year, 1, 1).toordinal()
    return (date.fromordinal(n) for n in range(first, date(year + 1, 1, 1).toordinal()))


def _national_kind(day: date, working: bool, named: bool) -> str:
    weekend = day.weekday() >= 5
    if working:
        return MAKEUP_WORKDAY if weekend else WORKDAY
    return HOLIDAY if named or not weekend else WEEKEND


def _spans(years: Iterable[int]) -> str:
    """``[2004, 2005, 2006, 2027]`` -> ``2004–2006, 2027``."""
    runs: list[list[int]] = []
    for year in sorted(years):
        if runs and runs[-1][1] == year - 1:
            runs[-1][1] = year
        else:
            runs.append([year, year])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in runs) or "none"


# -- China's national schedule ----------------------------------------------------


@cache
def _library_year(year: int) -> tuple[Mapping[date, str], tuple[Discrepancy, ...]]:
    """Days of ``year`` that differ from a plain Mon–Fri week, from the two libraries."""
    lib = holidays.China(years=year)
    covered = year in CHINESE_CALENDAR_YEARS
    out: dict[date, str] = {}
    found: list[Discrepancy] = []
    for day in _days_of(year):
        working, named = lib.is_working_day(day), day in lib
        if covered:
            cc_working = _cc_is_workday(day)
            if cc_working != working:
                found.append(Discrepancy(day, working, cc_working))
            working, named = cc_working, named or day in chinese_calendar.holidays
        kind = _national_kind(day, working, named)
        if kind in (HOLIDAY, MAKEUP_WORKDAY):
            out[day] = kind
    return MappingProxyType(out), tuple(found)


def _cc_is_workday(day: date) -> bool:
    """``chinese_calendar.is_workday`` without its per-call range scan (same rule, same tables)."""
    return day in chinese_calendar.workdays or (day.weekday() < 5 and day not in chinese_calendar.holidays)


@dataclass(frozen=True)
class OfficialYear:
    """A year's schedule as the State Council announced it: every day off and every make-up working day."""

    year: int
    days_off: frozenset[date]
    makeup_workdays: frozenset[date]


@dataclass(frozen=True)
class ChinaSchedule:
    """China's statutory days off and make-up working days, with official schedules from the file."""

    official: tuple[OfficialYear, ...] = ()
    _cache: dict[int, Mapping[date, str]] = field(default_factory=dict, init=False, compare=False, repr=False)

    @cached_property
    def _override_years(self) -> frozenset[int]:
        return frozenset(o.year for o in self.official)

    @cached_property
    def _override_days(self) -> Mapping[date, str]:
        days: dict[date, str] = {}
        for schedule in self.official:
            days.update(dict.fromkeys(schedule.days_off, HOLIDAY))
            days.update(dict.fromkeys(schedule.makeup_workdays, MAKEUP_WORKDAY))
        return MappingProxyType(days)

    @property
    def official_years(self) -> frozenset[int]:
        return frozenset(CHINESE_CALENDAR_YEARS) | self._override_years

    def is_official(self, year: int) -> bool:
        return year in CHINESE_CALENDAR_YEARS or year in self._override_years

    def knows(self, year: int) -> bool:
        return FIRST_CHINA_YEAR <= year <= LAST_CHINA_YEAR or year in self._override_years

    def describe_known(self) -> str:
        return _spans(set(range(FIRST_CHINA_YEAR, LAST_CHINA_YEAR + 1)) | self._override_years)

    def exceptions(self, year: int) -> Mapping[date, str]:
        """Days of a known ``year`` that are HOLIDAY or MAKEUP_WORKDAY nationally (others follow the week)."""
        cached = self._cache.get(year)
        if cached is None:
            base = {} if year in self._override_years else dict(_library_year(year)[0])
            base.update((d, kind) for d, kind in self._override_days.items() if d.year == year)
            cached = self._cache[year] = MappingProxyType(base)
        return cached

    @cached_property
    def discrepancies(self) -> tuple[Discrepancy, ...]:
        """Every day in chinese_calendar's years on which the two libraries disagree."""
        return tuple(d for year in CHINESE_CALENDAR_YEARS for d in _library_year(year)[1])


# -- the calendar -----------------------------------------------------------------


@dataclass(frozen=True)
class _Year:
    """A calendar's year, precomputed: day kinds and the sorted working periods in epoch µs."""

    kinds: tuple[str, ...]
    starts: list[int]
    ends: list[int]
    before: list[int]  # business µs in the year before period k; before[-1] is the year's total
    estimated: bool

    @property
    def total(self) -> int:
        return self.before[-1]

    def position(self, us: int) -> int:
        """Business µs in this year before the instant ``us`` (which lies in this year)."""
        k = bisect_right(self.starts, us) - 1
        if k < 0:
            return 0
        return self.before[k] + min(us, self.ends[k]) - self.starts[k]

    def instant(self, target: int) -> int:
        """The earliest instant with ``target`` (0 < target <= total) business µs before it."""
        k = bisect_left(self.before, target, 1) - 1
        return self.starts[k] + target - self.before[k]


@dataclass(frozen=True)
class WorkCalendar:
    """Working hours per weekday, holidays and make-up days, in one time zone. Immutable.

    ``week_hours`` holds seven tuples of periods, Monday first; an empty tuple is a
    day the office is closed. A make-up working day (调休上班) has ``makeup_hours``.
    """

    name: str
    tz: ZoneInfo = DEFAULT_TZ
    always_open: bool = False
    week_hours: tuple[tuple[Period, ...], ...] = ((),) * 7
    makeup_hours: tuple[Period, ...] = ()
    china: ChinaSchedule | None = None
    extra_days_off: frozenset[date] = frozenset()
    extra_working_days: frozenset[date] = frozenset()
    label: str = ""
    day_length: timedelta = field(init=False)
    _years: dict[int, _Year] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.always_open:
            if len(self.week_hours) != 7 or not any(self.week_hours):
                raise CalendarError(f"calendar {self.name!r}: give working hours for at least one weekday")
            if not self.makeup_hours:
                raise CalendarError(f"calendar {self.name!r}: give the hours of a make-up working day")
        seconds = 86400 if self.always_open else sum(p.length for p in self.makeup_hours)
        object.__setattr__(self, "day_length", timedelta(seconds=seconds))

    # -- days ----------------------------------------------------------------

    def day_kind(self, d: date) -> str:
        """``workday``, ``weekend``, ``holiday`` or ``makeup_workday`` (调休上班)."""
        if self.always_open:
            return WORKDAY
        return self._year(d.year).kinds[d.toordinal() - date(d.year, 1, 1).toordinal()]

    def is_working_day(self, d: date) -> bool:
        return self.day_kind(d) in WORKING_KINDS

    def is_estimated(self, d: date) -> bool:
        """True when ``d``'s year is computed on an estimate (its official schedule is not loaded)."""
        if self.china is None:
            return False
        self._require_known(d.year)
        return not self.china.is_official(d.year)

    def month(self, year: int, month: int) -> list[tuple[date, str]]:
        """Every day of the month with its kind, for ``gridflow calendar show 2026-02``."""
        first = date(year, month, 1).toordinal()
        after = date(year + month // 12, month % 12 + 1, 1).toordinal()
        days = [date.fromordinal(n) for n in range(first, after)]
        return [(d, self.day_kind(d)) for d in days]

    @property
    def discrepancies(self) -> tuple[Discrepancy, ...]:
        return self.china.discrepancies if self.china else ()

    # -- arithmetic --------------------------------------------------------------

    def business_time(self, duration: Duration | timedelta) -> timedelta:
        """The business time a duration stands for: ``2d`` is twice :attr:`day_length`."""
        if isinstance(duration, Duration):
            if duration.amount < 0 or duration.unit not in ("m", "h", "d"):
                raise ValueError(f"bad duration {duration}: write a positive amount of m, h or d")
            unit = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": self.day_length}[duration.unit]
            return duration.amount * unit
        if isinstance(duration, timedelta):
            if duration < _ZERO:
                raise ValueError(f"negative duration {duration}: business time only runs forward")
            return duration
        raise TypeError(f"expected a Duration or a timedelta, not {duration!r}")

    def add(self, start: datetime, duration: Duration | timedelta) -> Deadline:
        """The earliest instant after which ``duration`` of business time has run since ``start``."""
        amount = self.business_time(duration) // _MICRO
        t, year = self._locate(start)
        if self.always_open:
            return Deadline(_from_us(t + amount), False)
        if amount == 0:
            at, estimated = self._next_working(t, year)
            return Deadline(_from_us(at), estimated)
        data = self._year(year)
        estimated, target = data.estimated, data.position(t) + amount
        while target > data.total:
            target -= data.total
            year += 1
            data = self._year(year)
            estimated = estimated or data.estimated
        return Deadline(_from_us(data.instant(target)), estimated)

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Business time in ``[start, end)``; zero if ``end <= start``."""
        a, year_a = self._locate(start)
        b, year_b = self._locate(end)
        if b <= a:
            return _ZERO
        if self.always_open:
            return timedelta(microseconds=b - a)
        first = self._year(year_a)
        if year_a == year_b:
            return timedelta(microseconds=first.position(b) - first.position(a))
        amount = first.total - first.position(a)
        amount += sum(self._year(y).total for y in range(year_a + 1, year_b))
        if b != self._local_us(date(year_b, 1, 1), 0):  # not needed when end is the stroke of New Year
            amount += self._year(year_b).position(b)
        return timedelta(microseconds=amount)

    def next_working_instant(self, at: datetime) -> datetime:
        """``at`` itself inside working time, else the start of the next working period (UTC)."""
        t, year = self._locate(at)
        if self.always_open:
            return _from_us(t)
        return _from_us(self._next_working(t, year)[0])

    def _next_working(self, t: int, year: int) -> tuple[int, bool]:
        data = self._year(year)
        estimated = data.estimated
        k = bisect_right(data.ends, t)
        while k == len(data.starts):
            year, k = year + 1, 0
            data = self._year(year)
            estimated = estimated or data.estimated
        return max(t, data.starts[k]), estimated

    def _locate(self, at: datetime) -> tuple[int, int]:
        """Epoch µs of ``at`` and its local year (0 on an always-open calendar, which has no years)."""
        utc = require_aware(at)
        return _to_us(utc), 0 if self.always_open else utc.astimezone(self.tz).year

    # -- years -------------------------------------------------------------------

    def knows_year(self, year: int) -> bool:
        if self.always_open or self.china is None:
            return date.min.year < year < date.max.year
        return self.china.knows(year)

    def _require_known(self, year: int) -> None:
        if not self.knows_year(year):
            known = self.china.describe_known() if self.china else f"{date.min.year + 1}–{date.max.year - 1}"
            official = _spans(self.china.official_years) if self.china else "none needed"
            raise UnknownYear(self.name, year, known, official)

    def _year(self, year: int) -> _Year:
        data = self._years.get(year)
        if data is None:
            self._require_known(year)
            data = self._years[year] = self._build_year(year)
        return data

    def _build_year(self, year: int) -> _Year:
        national = self.china.exceptions(year) if self.china else {}
        kinds, starts, ends, before = [], [], [], [0]
        for day in _days_of(year):
            kind = self._kind(day, national.get(day))
            kinds.append(kind)
            for period in self._hours(day, kind):
                begin, finish = self._local_us(day, period.start), self._local_us(day, period.end)
                if finish > begin:  # a period swallowed by a DST gap has no time
                    starts.append(begin)
                    ends.append(finish)
                    before.append(before[-1] + finish - begin)
        estimated = self.is_estimated(date(year, 1, 1))
        return _Year(tuple(kinds), starts, ends, before, estimated)

    def _kind(self, day: date, national: str | None) -> str:
        open_that_weekday = bool(self.week_hours[day.weekday()])
        if day in self.extra_days_off:
            return HOLIDAY
        if day in self.extra_working_days:
            return WORKDAY if open_that_weekday else MAKEUP_WORKDAY
        if national in (HOLIDAY, MAKEUP_WORKDAY):
            return national
        return WORKDAY if open_that_weekday else WEEKEND

    def _hours(self, day: date, kind: str) -> tuple[Period, ...]:
        if kind == WORKDAY:
            return self.week_hours[day.weekday()]
        return self.makeup_hours if kind == MAKEUP_WORKDAY else ()

    def _local_us(self, day: date, seconds: int) -> int:
        wall = datetime.combine(day, time()) + timedelta(seconds=seconds)
        return _to_us(wall.replace(tzinfo=self.tz))


# -- a deadline, day by day ----------------------------------------------------------


@dataclass(frozen=True)
class DayCount:
    """One local day of a deadline's reckoning: its kind and the business time counted on it."""

    day: date
    kind: str  # one of DAY_KINDS
    counted: timedelta  # business time counted on this day
    total: timedelta  # counted on this day and every day before it
    estimated: bool  # the day's year is computed on an estimate


@dataclass(frozen=True)
class DueBreakdown:
    """When a limit that starts at ``start`` falls due, and the business time each day contributes."""

    start: datetime  # UTC, as asked
    begin: datetime  # UTC: ``start`` inside working time, else the start of the next working period
    limit: timedelta  # business time
    deadline: Deadline
    days: tuple[DayCount, ...]  # from the local day of ``start`` to that of the deadline


def due_breakdown(calendar: WorkCalendar, start: datetime, limit: timedelta) -> DueBreakdown:
    """The deadline an SLA clock started at ``start`` with ``limit`` gets, and how its days add up.

    The same two steps as a clock's start (``engine.sla``): counting begins at the next working
    instant, the deadline is ``limit`` of business time after it. Pure: no clock read.
    """
    start = require_aware(start)
    begin = calendar.next_working_instant(start)
    deadline = calendar.add(begin, limit)
    return DueBreakdown(start, begin, limit, deadline, tuple(_day_counts(calendar, start, deadline.at)))


def _day_counts(calendar: WorkCalendar, start: datetime, end: datetime) -> Iterable[DayCount]:
    """Each local day from ``start``'s to ``end``'s (not a day that ``end`` only touches at midnight)."""
    first, last = start.astimezone(calendar.tz).date(), end.astimezone(calendar.tz).date()
    total = _ZERO
    for ordinal in range(first.toordinal(), last.toordinal() + 1):
        day = date.fromordinal(ordinal)
        midnight, next_midnight = _midnight(day, calendar.tz), _midnight(day + timedelta(days=1), calendar.tz)
        if day != first and midnight >= end:
            break
        counted = calendar.between(max(start, midnight), min(end, next_midnight))
        total += counted
        yield DayCount(day, calendar.day_kind(day), counted, total, calendar.is_estimated(day))


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tz).astimezone(UTC)


# -- check ------------------------------------------------------------------------


def check_calendars(calendars: Mapping[str, WorkCalendar], today: date) -> list[str]:
    """Warnings about missing official schedules (this year's; from November on, next year's)."""
    warnings = []
    for name in sorted(calendars):
        china = calendars[name].china
        if calendars[name].always_open or china is None:
            continue
        years = [today.year, today.year + 1] if today.month >= 11 else [today.year]
        for year in years:
            if not china.is_official(year):
                warnings.append(_missing_schedule(name, year))
    return warnings


def _missing_schedule(name: str, year: int) -> str:
    return (
        f"calendar {name!r}: the official {year} holiday schedule is not loaded, so deadlines in {year} "
        f"are estimated (no make-up working days). Copy the State Council's notice for {year} "
        f"(published each November) under 'official_schedules: {year}:' in {CONFIG_HINT}."
    )


# -- loading ----------------------------------------------------------------------


def load_calendars(path: str | Path) -> dict[str, WorkCalendar]:
    """Read a calendars file; every problem in it is reported together as :class:`CalendarInvalid`."""
    src = load_file(path)
    calendars = _Parser(src).parse() if src.data is not None else None
    if src.problems or calendars is None:
        raise CalendarInvalid(src.problems)
    return calendars


NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
TOP_KEYS = ("calendars", "official_schedules")
CALENDAR_KEYS = (
    "label",
    "timezone",
    "always_open",
    "holidays",
    "hours",
    "makeup_workday_hours",
    "extra_days_off",
    "extra_working_days",
)
ALWAYS_OPEN_KEYS = ("label", "timezone", "always_open")
SCHEDULE_KEYS = ("days_off", "makeup_workdays")
HOLIDAY_SOURCES = ("china", "none")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
PERIOD = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
DAY = r"\d{4}-\d{2}-\d{2}"
DAYS = re.compile(rf"^\s*({DAY})\s*(?:\.\.\s*({DAY})\s*)?$")
PERIOD_HINT = "write a period as HH:MM-HH:MM, like 08:30-12:00"
DAYS_HINT = "write a date as YYYY-MM-DD, or a run of days as 2027-10-01..2027-10-07"


class _Parser:
    """Walks the document once; records every problem in the source; builds calendars if all is well."""

    def __init__(self, src: Source):
        self.src = src
        self.ok = True

    def problem(self, path: Path_, message: str, at_key: bool = False) -> None:
        self.ok = False
        self.src.problem(path, message, at_key)

    def parse(self) -> dict[str, WorkCalendar] | None:
        doc = self.src.data
        if not isinstance(doc, dict):
            self.problem((), "a calendar file must be a mapping with 'calendars' (and 'official_schedules')")
            return None
        self._unknown_keys(doc, (), TOP_KEYS)
        china = ChinaSchedule(self._official_schedules(doc.get("official_schedules")))
        specs = doc.get("calendars")
        if not isinstance(specs, dict) or not specs:
            self.problem(("calendars",), "'calendars' must map each calendar's name to its settings", at_key=True)
            return None
        calendars = {
            str(name): self._calendar(str(name), spec, ("calendars", str(name)), china) for name, spec in specs.items()
        }
        return {n: c for n, c in calendars.items() if c is not None} if self.ok else None

    def _unknown_keys(self, spec: dict, path: Path_, known: tuple[str, ...], why: str = "") -> None:
        for key in spec:
            if key not in known:
                hint = why or f"known keys: {', '.join(known)}"
                self.problem((*path, key), f"unknown key {key!r}; {hint}", at_key=True)

    # -- one calendar -------------------------------------------------------------

    def _calendar(self, name: str, spec: Any, path: Path_, china: ChinaSchedule) -> WorkCalendar | None:
        if not NAME.match(name):
            self.problem(path, f"bad calendar name {name!r}: use lowercase letters, digits, '-' and '_'", True)
        if not isinstance(spec, dict):
            self.problem(path, "expected the calendar's settings (timezone, holidays, hours, ...)")
            return None
        always = spec.get("always_open", False)
        if not isinstance(always, bool):
            self.problem((*path, "always_open"), "always_open must be true or false")
            return None
        zone, label = self._timezone(spec, path), self._label(spec, path)
        if always:
            why = "an always-open calendar runs on the wall clock every day; it takes only label and timezone"
            self._unknown_keys(spec, path, ALWAYS_OPEN_KEYS, why)
            return WorkCalendar(name, zone, always_open=True, label=label) if zone and self.ok else None
        self._unknown_keys(spec, path, CALENDAR_KEYS)
        source = self._holiday_source(spec, path)
        week = self._week(spec, path)
        makeup = self._makeup_hours(spec, path, week)
        days_off = self._dates(spec, path, "extra_days_off")
        working = self._dates(spec, path, "extra_working_days")
        self._conflicts(days_off, working, "extra_days_off", "extra_working_days")
        if not (self.ok and zone and source and week and makeup):
            return None
        return WorkCalendar(
            name,
            zone,
            False,
            week,
            makeup,
            china if source == "china" else None,
            frozenset(days_off),
            frozenset(working),
            label,
        )

    def _timezone(self, spec: dict, path: Path_) -> ZoneInfo | None:
        value = spec.get("timezone")
        if value is None:
            return DEFAULT_TZ
        try:
            if not isinstance(value, str):
                raise ValueError(value)
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            self.problem((*path, "timezone"), f"unknown time zone {value!r}; use an IANA name like Asia/Shanghai")
            return None

    def _label(self, spec: dict, path: Path_) -> str:
        value = spec.get("label", "")
        if not isinstance(value, str):
            self.problem((*path, "label"), f'label must be text (quote it: "{value}")')
            return ""
        return value

    def _holiday_source(self, spec: dict, path: Path_) -> str | None:
        value = spec.get("holidays")
        if value is None:
            self.problem(
                path,
                "missing key 'holidays': write 'holidays: china' (statutory holidays and 调休) or 'holidays: none'",
                at_key=True,
            )
            return None
        if value not in HOLIDAY_SOURCES:
            self.problem((*path, "holidays"), f"unknown holidays {value!r}; write china or none")
            return None
        return value

    # -- hours --------------------------------------------------------------------

    def _week(self, spec: dict, path: Path_) -> tuple[tuple[Period, ...], ...] | None:
        path = (*path, "hours")
        hours = spec.get("hours")
        if not isinstance(hours, dict) or not hours:
            self.problem(path, "give working hours per weekday, e.g. 'mon-fri: [08:30-12:00, 14:00-17:30]'", True)
            return None
        week: list[tuple[Period, ...] | None] = [None] * 7
        given_by: dict[int, str] = {}
        for key, value in hours.items():
            days = self._weekdays(str(key), (*path, key))
            periods = self._periods(value, (*path, key))
            for i in days or ():
                if i in given_by:
                    first = self.src.where((*path, given_by[i]), at_key=True)[0]
                    self.problem(
                        (*path, key),
                        f"{WEEKDAY_NAMES[i]} is already given by "
                        f"{given_by[i]!r} at line {first}; give each weekday once",
                        True,
                    )
                else:
                    given_by[i], week[i] = str(key), periods
        if self.ok and not any(week):
            self.problem(path, "no working hours on any day; give at least one weekday", True)
        return tuple(w or () for w in week) if self.ok else None

    def _weekdays(self, key: str, path: Path_) -> list[int] | None:
        first, _, last = key.strip().lower().partition("-")
        if first in WEEKDAYS and (not last or last in WEEKDAYS):
            a, b = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
            if a <= b:
                return list(range(a, b + 1))
            self.problem(path, f"weekday range {key!r} runs backwards; write it forwards, like mon-fri", True)
            return None
        self.problem(path, f"unknown weekday {key!r}; write {', '.join(WEEKDAYS)} or a range like mon-fri", True)
        return None

    def _makeup_hours(self, spec: dict, path: Path_, week: tuple | None) -> tuple[Period, ...] | None:
        if "makeup_workday_hours" in spec:
            periods = self._periods(spec["makeup_workday_hours"], (*path, "makeup_workday_hours"))
            if periods == ():
                self.problem((*path, "makeup_workday_hours"), "a make-up working day needs working hours")
            return periods or None
        if week and not week[0]:
            self.problem(
                path,
                "Monday is closed, so say which hours a make-up working day (调休上班) has: "
                "makeup_workday_hours: [08:30-12:00, 14:00-17:30]",
                True,
            )
            return None
        return week[0] if week else None

    def _periods(self, value: Any, path: Path_) -> tuple[Period, ...] | None:
        items = [(value, path)] if isinstance(value, str) else None
        if isinstance(value, list):
            items = [(item, (*path, i)) for i, item in enumerate(value)]
        if items is None:
            self.problem(path, f"expected a list of periods, like [08:30-12:00, 14:00-17:30]; {PERIOD_HINT}")
            return None
        periods: list[Period] = []
        good = True
        for item, where in items:
            period = self._period(item, where)
            clash = next((p for p in periods if period and p.start < period.end and period.start < p.end), None)
            if clash:
                self.problem(where, f"{period} overlaps {clash}; the periods of a day must not overlap")
            good = good and period is not None and clash is None
            if period:
                periods.append(period)
        return tuple(sorted(periods)) if good else None

    def _period(self, item: Any, path: Path_) -> Period | None:
        match = PERIOD.match(item) if isinstance(item, str) else None
        if match is None:
            self.problem(path, f"bad period {item!r}: {PERIOD_HINT}")
            return None
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        for h, m, end in ((h1, m1, False), (h2, m2, True)):
            if m > 59 or h > 24 or (h == 24 and (m or not end)):
                self.problem(
                    path,
                    f"bad time {h:02d}:{m:02d} in {item!r}: hours run 00–23 and minutes 00–59 (24:00 only as an end)",
                )
                return None
        period = Period(h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60)
        if period.end <= period.start:
            self.problem(path, f"period {item!r} ends before it starts; write start-end, like 14:00-17:30")
            return None
        return period

    # -- dates --------------------------------------------------------------------

    def _dates(self, spec: dict, path: Path_, key: str) -> dict[date, Path_]:
        """Each date of the list ``spec[key]`` with where it was written; runs of days expanded."""
        value = spec.get(key)
        if value is None:
            return {}
        if not isinstance(value, list):
            self.problem((*path, key), f"expected a list of dates; {DAYS_HINT}", True)
            return {}
        out: dict[date, Path_] = {}
        for i, item in enumerate(value):
            where = (*path, key, i)
            for day in self._days(item, where):
                if day in out:
                    line = self.src.where(out[day])[0]
                    self.problem(where, f"{day} is already listed at line {line}; list each date once")
                else:
                    out[day] = where
        return out

    def _days(self, item: Any, path: Path_) -> list[date]:
        match = DAYS.match(item) if isinstance(item, str) else None
        if match is None:
            self.problem(path, f"bad date {item!r}: {DAYS_HINT}")
            return []
        try:
            first = date.fromisoformat(match.group(1))
            last = date.fromisoformat(match.group(2) or match.group(1))
        except ValueError:
            self.problem(path, f"{item!r} is not a real date; check month and day")
            return []
        if not first <= last <= first + timedelta(days=366):
            self.problem(path, f"bad run of days {item!r}: the last day must follow the first, within a year")
            return []
        return [date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1)]

    def _conflicts(self, days_off: dict[date, Path_], working: dict[date, Path_], off_key: str, work_key: str) -> None:
        for day, where in working.items():
            if day in days_off:
                line = self.src.where(days_off[day])[0]
                self.problem(
                    where,
                    f"{day} is both a day off ({off_key}, line {line}) and a working day "
                    f"({work_key}); keep it in one list",
                )

    # -- official schedules -----------------------------------------------------------

    def _official_schedules(self, value: Any) -> tuple[OfficialYear, ...]:
        path: Path_ = ("official_schedules",)
        if value is None:
            return ()
        if not isinstance(value, dict):
            self.problem(path, "official_schedules must map a year (like 2027) to its days_off and makeup_workdays")
            return ()
        years = [self._official_year(str(key), spec, (*path, str(key))) for key, spec in value.items()]
        self._cross_year_conflicts([y for y in years if y is not None])
        return tuple(y[0] for y in years if y is not None)

    def _official_year(self, key: str, spec: Any, path: Path_) -> tuple[OfficialYear, dict, dict] | None:
        if not re.fullmatch(r"\d{4}", key):
            self.problem(path, f"bad year {key!r}: write the year in four digits, like 2027", True)
            return None
        if not isinstance(spec, dict):
            self.problem(path, "expected days_off and makeup_workdays (lists of dates)")
            return None
        self._unknown_keys(spec, path, SCHEDULE_KEYS)
        year = int(key)
        days_off, working = self._dates(spec, path, "days_off"), self._dates(spec, path, "makeup_workdays")
        if not days_off and "days_off" not in spec:
            self.problem(path, f"missing key 'days_off': list every day off (放假) of the {year} notice", True)
        for day, where in [*days_off.items(), *working.items()]:
            if not (day.year == year or (day.year == year - 1 and day.month == 12)):
                self.problem(
                    where,
                    f"{day} is not in {year}: a {year} schedule holds days of {year} "
                    f"(and of late December {year - 1} for a New Year break)",
                )
        for day, where in working.items():
            if day.weekday() < 5:
                self.problem(
                    where,
                    f"{day} is a {WEEKDAY_NAMES[day.weekday()]}; a make-up working day "
                    "(调休上班) is a Saturday or Sunday worked instead",
                )
        self._conflicts(days_off, working, "days_off", "makeup_workdays")
        return OfficialYear(year, frozenset(days_off), frozenset(working)), days_off, working

    def _cross_year_conflicts(self, years: list[tuple[OfficialYear, dict, dict]]) -> None:
        """A late-December day given by two years' schedules must say the same."""
        seen: dict[date, tuple[str, Path_]] = {}
        for _, days_off, working in years:
            for kind, days in (("day off", days_off), ("working day", working)):
                for day, where in days.items():
                    if day in seen and seen[day][1][:2] != where[:2]:
                        line = self.src.where(seen[day][1])[0]
                        self.problem(
                            where,
                            f"{day} is also given at line {line} (as a {seen[day][0]}); give it in one year's schedule",
                        )
                    seen.setdefault(day, (kind, where))
