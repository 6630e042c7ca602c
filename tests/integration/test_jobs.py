"""Period jobs run exactly once per period, on both back ends, whoever asks and however often."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from engine import jobs
from engine.periodic import tally
from engine.store.models import JobRun

SH = ZoneInfo("Asia/Shanghai")
MONTHLY = jobs.JOBS["monthly_scoring"]


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH).astimezone(UTC)


def counting_body(calls: list):
    def body(session, period, at):
        calls.append(period.key)
        return {"period": period.key, **tally(session, period, SH)}

    return body


def run_due(db, at: datetime, body, catch_up: int = 3, since: datetime | None = None) -> list[str]:
    with db.sessions.begin() as session:
        due = jobs.due_periods(session, MONTHLY, at, SH, catch_up, since)
    ran = []
    for period in due:
        with db.sessions.begin() as session:
            if jobs.run_period(session, MONTHLY, period, at, SH, body, "test").ran:
                ran.append(period.key)
    return ran


def runs(db) -> list[tuple]:
    with db.sessions.begin() as session:
        return [
            tuple(r)
            for r in session.execute(
                select(JobRun.job, JobRun.period, JobRun.status, JobRun.attempts).order_by(JobRun.period)
            )
        ]


def test_a_job_fired_twice_runs_once(db):
    calls: list = []
    at = local("2026-12-01T01:00")
    assert run_due(db, at, counting_body(calls), catch_up=1) == ["2026-11"]
    assert run_due(db, at + timedelta(seconds=1), counting_body(calls), catch_up=1) == []
    assert calls == ["2026-11"]
    assert runs(db) == [("monthly_scoring", "2026-11", "done", 1)]


def test_a_missed_month_runs_once_when_beat_returns(db):
    calls: list = []
    run_due(db, local("2026-11-01T01:00"), counting_body(calls), catch_up=1)  # October, on time
    # beat is down from 30 November to 2 December 09:00
    assert run_due(db, local("2026-12-02T09:00"), counting_body(calls), catch_up=2) == ["2026-11"]
    assert run_due(db, local("2026-12-02T09:05"), counting_body(calls), catch_up=2) == []
    assert calls == ["2026-10", "2026-11"]


def test_fired_at_00_30_local_on_the_first_does_not_run_the_month_yet(db):
    calls: list = []
    at = local("2026-12-01T00:30")
    assert at.date().isoformat() == "2026-11-30"  # still the previous day in UTC
    assert run_due(db, at, counting_body(calls), catch_up=1) == ["2026-10"]
    assert run_due(db, local("2026-12-01T01:00"), counting_body(calls), catch_up=1) == ["2026-11"]


def test_periods_before_the_install_are_not_caught_up(db):
    calls: list = []
    installed = local("2026-11-20T10:00")
    assert run_due(db, local("2026-12-01T02:00"), counting_body(calls), since=installed) == ["2026-11"]


def test_a_failed_run_leaves_nothing_and_is_taken_again(db):
    period = jobs.parse_period("month", "2026-11")
    at = local("2026-12-01T01:00")

    def broken(session, period, at):
        session.execute(JobRun.__table__.insert().values(job="x", period="p", status="done", due_at=at, started_at=at))
        raise RuntimeError("scoring failed")

    with pytest.raises(RuntimeError), db.sessions.begin() as session:
        jobs.run_period(session, MONTHLY, period, at, SH, broken)
    with db.sessions.begin() as session:
        jobs.record_failure(session, MONTHLY, period, at, SH, "RuntimeError: scoring failed")
    assert runs(db) == [("monthly_scoring", "2026-11", "failed", 1)]  # the body's own write rolled back
    calls: list = []
    assert run_due(db, at + timedelta(minutes=10), counting_body(calls), catch_up=1) == ["2026-11"]
    assert runs(db) == [("monthly_scoring", "2026-11", "done", 2)]
    with db.sessions.begin() as session:  # a failure noted late never overwrites a done run
        jobs.record_failure(session, MONTHLY, period, at, SH, "late")
    assert runs(db) == [("monthly_scoring", "2026-11", "done", 2)]


def test_concurrent_runners_of_one_period_run_it_once(pg_db):
    period = jobs.parse_period("month", "2026-11")
    at = local("2026-12-01T01:00")
    calls: list = []
    barrier = threading.Barrier(4)

    def body(session, period, at):
        calls.append(period.key)
        return {}

    def runner():
        barrier.wait(timeout=10)
        with pg_db.sessions.begin() as session:
            jobs.run_period(session, MONTHLY, period, at, SH, body)

    threads = [threading.Thread(target=runner) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert calls == ["2026-11"]
    assert runs(pg_db) == [("monthly_scoring", "2026-11", "done", 1)]
