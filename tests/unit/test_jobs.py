"""Period arithmetic of the period jobs: which periods exist, when each is due (local time)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import jobs
from engine.errors import InputError, NotFound

SH = ZoneInfo("Asia/Shanghai")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH).astimezone(UTC)


@pytest.mark.parametrize(
    ("kind", "day", "key", "start", "end"),
    [
        ("month", date(2026, 11, 27), "2026-11", date(2026, 11, 1), date(2026, 12, 1)),
        ("month", date(2026, 12, 31), "2026-12", date(2026, 12, 1), date(2027, 1, 1)),
        ("quarter", date(2026, 11, 27), "2026Q4", date(2026, 10, 1), date(2027, 1, 1)),
        ("quarter", date(2026, 3, 31), "2026Q1", date(2026, 1, 1), date(2026, 4, 1)),
        ("year", date(2026, 6, 1), "2026", date(2026, 1, 1), date(2027, 1, 1)),
        ("day", date(2028, 2, 29), "2028-02-29", date(2028, 2, 29), date(2028, 3, 1)),
    ],
)
def test_period_of(kind, day, key, start, end):
    period = jobs.period_of(kind, day)
    assert (period.key, period.start, period.end) == (key, start, end)
    assert jobs.parse_period(kind, key) == period


@pytest.mark.parametrize(
    ("kind", "key"),
    [("month", "2026-13"), ("month", "2026-1"), ("month", "nov"), ("quarter", "2026Q5"), ("year", "26x")],
)
def test_bad_period_keys_are_refused_with_an_example(kind, key):
    with pytest.raises(InputError, match="write it like"):
        jobs.parse_period(kind, key)


@given(
    st.dates(min_value=date(2001, 1, 1), max_value=date(2099, 12, 31)), st.sampled_from(["month", "quarter", "year"])
)
def test_periods_tile_time(day, kind):
    period = jobs.period_of(kind, day)
    assert period.start <= day < period.end
    assert jobs.previous(period).end == period.start
    assert jobs.period_of(kind, period.end).start == period.end


def test_monthly_scoring_is_due_at_01_00_local_on_the_first():
    spec = jobs.JOBS["monthly_scoring"]
    november = jobs.parse_period("month", "2026-11")
    assert spec.due_at(november, SH) == local("2026-12-01T01:00")
    assert spec.due_at(november, SH) == datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # still November in UTC


def test_at_00_30_local_on_the_first_the_month_is_not_due_yet():
    spec = jobs.JOBS["monthly_scoring"]
    at = local("2026-12-01T00:30")  # 2026-11-30 16:30 UTC
    assert [p.key for p in jobs.candidate_periods(spec, at, SH, 1)] == ["2026-10"]
    assert [p.key for p in jobs.candidate_periods(spec, at + timedelta(minutes=30), SH, 1)] == ["2026-11"]


def test_catch_up_lists_the_last_due_periods_oldest_first():
    at = local("2027-01-01T04:00")
    monthly = jobs.candidate_periods(jobs.JOBS["monthly_scoring"], at, SH, 3)
    assert [p.key for p in monthly] == ["2026-10", "2026-11", "2026-12"]
    quarterly = jobs.candidate_periods(jobs.JOBS["quarterly_publication"], at, SH, 2)
    assert [p.key for p in quarterly] == ["2026Q3", "2026Q4"]
    yearly = jobs.candidate_periods(jobs.JOBS["annual_summary"], at, SH, 1)
    assert [p.key for p in yearly] == ["2025"]  # 2026's summary is due on 2 January
    daily = jobs.candidate_periods(jobs.JOBS["calendar_check"], at, SH, 1)
    assert [p.key for p in daily] == ["2026-12-31"]  # today's check is due at 06:00


def test_unknown_job_names_the_jobs():
    with pytest.raises(NotFound, match="monthly_scoring"):
        jobs.job("weekly")
