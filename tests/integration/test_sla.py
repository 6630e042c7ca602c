"""SLA clocks on SQLite and PostgreSQL: started, stopped, paused, resumed and extended by case steps.

Every expected instant below was worked out by hand from the State Council's 2026 schedule and
``workflows/grid_case.yaml``, not read back from the code. Times are Asia/Shanghai. The township
calendar works Mon–Fri 08:30–12:00 and 14:00–17:30 (7 hours a day, so ``1d`` = 7 working hours);
2026: New Year 1–3 Jan off (Sun 4 Jan worked), Spring Festival 15–23 Feb off (Sat 14 Feb and
Sat 28 Feb worked). The default workflow's limits:

    case_sla      10d, reminder at 80 %, escalation 2d after the breach (督办)
    reported      2h (critical 30m), reminder at 50 %
    classified    4h (urgent 1h, critical 30m)
    in_progress   5d; water_supply 2d, dispute 10d, road_traffic 3d, geological_hazard 1d;
                  urgent 1d, critical 4h (the shortest override that applies wins);
                  reminders at 50 % and 4h before; ladder at breach, +1d, +2d
    suspended     pauses the clocks
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from engine import cases
from engine.calendar import UnknownYear
from engine.errors import FieldError, GuardFailed
from engine.store import workflow_repo
from engine.store.case_repo import CaseRecord
from engine.store.models import Case, CaseEvent, SlaClock, SlaTimer
from tests.support import CENTER, FIXTURES, GRID, GRID_WORKER, T0, calendars

SH = ZoneInfo("Asia/Shanghai")
ASSIGNEE = "p-chen-xiaoqin"  # 陈小琴, B岗信息员 of 马营台村: an assignee who is not the grid worker
VILLAGE_SECRETARY = "p-xiong-chenglin"  # 熊成林, 马营台村党支部书记
CENTER_STAFF = {"p-chen-jia", "p-yang-xiaodong", "p-ren-kaixue"}  # 网格管理中心
TOWNSHIP_LEADERS = {"p-peng-li", "p-yang-guangming", "p-ran-junjie"}  # 乡领导
H = 3600
D = 7 * H  # one working day on the township calendar
SLA_FIXTURES = FIXTURES / "workflows" / "sla"


def sh(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=SH)


assert T0 == sh(2026, 3, 2, 9)  # Monday 2 March 2026, 09:00


# -- helpers (also used by test_sweep.py) ------------------------------------------------


def report(s, at: datetime = T0, workflow: str = "grid_case", **fields) -> CaseRecord:
    fields = {"title": "马营台村1社水管破裂", **fields}
    return cases.report(
        s, grid_id=GRID, actor_id=GRID_WORKER, fields=fields, at=at, workflow=workflow, calendars=calendars()
    ).case


def step(s, case_id: int, trigger: str, actor: str, at: datetime, **fields) -> CaseRecord:
    return cases.fire(s, case_id, trigger, actor_id=actor, fields=fields, at=at, calendars=calendars()).case


def to_in_progress(
    s, at: datetime = T0, category: str = "water_supply", priority: str = "urgent", assignee: str = ASSIGNEE
) -> int:
    """Report, classify, assign and accept, all at ``at``; the case id."""
    case = report(s, at)
    step(s, case.id, "classify", CENTER, at, category=category, priority=priority)
    step(s, case.id, "assign", CENTER, at, assignee=assignee)
    step(s, case.id, "accept", assignee, at)
    return case.id


def clock_of(s, case_id: int, state: str | None) -> SlaClock:
    """The newest clock of ``state`` (None: the whole-case clock)."""
    query = select(SlaClock).where(SlaClock.case_id == case_id).order_by(SlaClock.id.desc())
    query = query.where(SlaClock.scope == "case") if state is None else query.where(SlaClock.state == state)
    return s.scalars(query).first()


def timers(s, clock: SlaClock, status: str = "pending") -> dict[tuple[str, int], datetime]:
    rows = s.scalars(select(SlaTimer).where(SlaTimer.clock_id == clock.id, SlaTimer.status == status))
    return {(t.kind, t.level): t.fire_at for t in rows}


def events(s, case_id: int) -> list[CaseEvent]:
    return list(s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)))


def assert_events_numbered(s) -> None:
    """Every case's events are numbered 1..version, without gaps or repeats."""
    for case in s.scalars(select(Case)):
        assert [e.seq for e in events(s, case.id)] == list(range(1, case.version + 1)), case.code


def rejected(db, error, match, action) -> None:
    before = db.snapshot()
    with pytest.raises(error, match=match):
        with db.sessions.begin() as s:
            action(s)
    assert db.snapshot() == before


def publish_fixture(db, name: str) -> None:
    from engine.definitions.loader import load_workflow_file

    with db.sessions.begin() as s:
        workflow_repo.publish(s, load_workflow_file(SLA_FIXTURES / name, calendars()), T0 - timedelta(days=1))


# -- report: the reported clock and the case clock ---------------------------------------------


def test_report_starts_the_reported_clock_and_the_case_clock(db):
    with db.sessions.begin() as s:
        case_id = report(s, T0).id
    with db.session() as s:
        reported = clock_of(s, case_id, "reported")
        assert (reported.scope, reported.status, reported.calendar) == ("state", "running", "township")
        assert (reported.limit_s, reported.consumed_s, reported.generation) == (2 * H, 0, 1)
        assert reported.started_at == T0 and reported.segment_start == T0
        assert reported.due_at == sh(2026, 3, 2, 11)
        assert not reported.estimated and reported.breached_at is None and reported.outcome is None
        assert timers(s, reported) == {("reminder", 1): sh(2026, 3, 2, 10), ("breach", 0): sh(2026, 3, 2, 11)}
        assert [h["what"] for h in reported.history] == ["started"]
        assert "limit 2h on the township calendar" in reported.history[0]["why"]
        assert "outside working time" not in reported.history[0]["why"]

        whole = clock_of(s, case_id, None)
        assert (whole.state, whole.status, whole.limit_s) == (None, "running", 70 * H)
        # 10 working days from Monday 09:00: the Monday ten working days later, 09:00
        assert whole.due_at == sh(2026, 3, 16, 9)
        assert timers(s, whole) == {
            ("reminder", 1): sh(2026, 3, 12, 9),  # 80 % = 56 working hours
            ("breach", 0): sh(2026, 3, 16, 9),
            ("escalation", 1): sh(2026, 3, 18, 9),  # 2d = 14 working hours after the breach
        }
        all_timers = s.scalars(select(SlaTimer).where(SlaTimer.case_id == case_id)).all()
        assert {(t.status, t.generation, t.attempts, t.claimed_by) for t in all_timers} == {("pending", 1, 0, None)}
        assert len({t.dedupe_key for t in all_timers}) == 5


def test_report_outside_working_hours_counts_from_the_next_working_instant(db):
    with db.sessions.begin() as s:
        early = report(s, sh(2026, 3, 2, 7, 10)).id  # Monday before the office opens
        weekend = report(s, sh(2026, 3, 7, 22)).id  # Saturday night
    with db.session() as s:
        clock = clock_of(s, early, "reported")
        assert clock.started_at == sh(2026, 3, 2, 7, 10)
        assert clock.segment_start == sh(2026, 3, 2, 8, 30)
        assert clock.due_at == sh(2026, 3, 2, 10, 30)
        assert timers(s, clock) == {("reminder", 1): sh(2026, 3, 2, 9, 30), ("breach", 0): sh(2026, 3, 2, 10, 30)}
        started = clock.history[0]
        assert started["what"] == "started"
        assert "outside working time, counting from 2026-03-02 08:30" in started["why"]
        assert datetime.fromisoformat(started["at"]) == sh(2026, 3, 2, 7, 10)
        # the case clock says so too, and runs ten full working days from 08:30
        whole = clock_of(s, early, None)
        assert "outside working time, counting from 2026-03-02 08:30" in whole.history[0]["why"]
        assert whole.due_at == sh(2026, 3, 13, 17, 30)

        clock = clock_of(s, weekend, "reported")
        assert clock.due_at == sh(2026, 3, 9, 10, 30)
        assert "outside working time, counting from 2026-03-09 08:30" in clock.history[0]["why"]


@pytest.mark.parametrize(
    ("at", "reported_due", "case_due", "outside"),
    [
        # Saturday 14 February 2026 is a make-up working day (调休上班): the clock runs at once
        (sh(2026, 2, 14, 9), sh(2026, 2, 14, 11), sh(2026, 3, 6, 9), None),
        # Sunday 15 February: the Spring Festival break begins; nothing counts until Tuesday 24 February
        (sh(2026, 2, 15, 10), sh(2026, 2, 24, 10, 30), sh(2026, 3, 6, 17, 30), "2026-02-24 08:30"),
        # one second before the end of Friday's working day, then the make-up Saturday
        (sh(2026, 2, 13, 17, 29, 59), sh(2026, 2, 14, 10, 29, 59), sh(2026, 3, 5, 17, 29, 59), None),
        # 17:30:00 sharp is already outside working time
        (sh(2026, 2, 13, 17, 30), sh(2026, 2, 14, 10, 30), sh(2026, 3, 5, 17, 30), "2026-02-14 08:30"),
        # New Year 2026: 1–3 January off, Sunday 4 January worked
        (sh(2025, 12, 31, 16), sh(2026, 1, 4, 9), sh(2026, 1, 15, 16), None),
    ],
    ids=["makeup-saturday", "spring-festival-starts", "17:29:59", "17:30:00", "new-year"],
)
def test_report_on_the_official_2026_schedule(db, at, reported_due, case_due, outside):
    with db.sessions.begin() as s:
        case_id = report(s, at).id
    with db.session() as s:
        reported = clock_of(s, case_id, "reported")
        assert reported.due_at == reported_due
        assert not reported.estimated
        why = reported.history[0]["why"]
        if outside:
            assert f"outside working time, counting from {outside}" in why
        else:
            assert "outside working time" not in why
        assert clock_of(s, case_id, None).due_at == case_due


def test_turn_of_the_year_into_an_unannounced_year_is_flagged_estimated(db):
    """chinese_calendar carries 2026 at most and config/calendars.yaml has no 2027 notice yet, so a
    deadline in 2027 is computed on an estimate and flagged (change this test when the notice is added)."""
    with db.sessions.begin() as s:
        case_id = report(s, sh(2026, 12, 24, 9)).id  # Thursday
        later = report(s, sh(2027, 3, 1, 9)).id
    with db.session() as s:
        assert not clock_of(s, case_id, "reported").estimated  # due 11:00 the same day
        whole = clock_of(s, case_id, None)
        assert whole.due_at.astimezone(SH).year == 2027
        assert whole.estimated and whole.history[-1]["estimated"] is True
        assert clock_of(s, later, "reported").estimated and clock_of(s, later, None).estimated


def test_a_deadline_in_a_year_the_calendar_cannot_answer_is_an_error_and_changes_nothing(db):
    rejected(db, UnknownYear, "cannot answer for 2101", lambda s: report(s, sh(2100, 12, 27, 9)))


def test_naive_report_time_is_refused(db):
    from engine.errors import NaiveDatetime

    rejected(db, NaiveDatetime, "naive", lambda s: report(s, datetime(2026, 3, 2, 9)))


# -- classify: the reported clock stops, the classified clock starts ---------------------------


CLASSIFY = {"category": "water_supply", "priority": "normal"}


@pytest.mark.parametrize(
    ("at", "outcome", "consumed"),
    [
        (sh(2026, 3, 2, 10, 30), "met", 90 * 60),
        (sh(2026, 3, 2, 11), "met", 2 * H),  # on the stroke of the deadline is still in time
        (sh(2026, 3, 2, 11, 30), "breached", 150 * 60),
        (sh(2026, 3, 2, 15), "breached", 4 * H),  # the lunch break does not count
    ],
)
def test_classify_stops_the_reported_clock_and_cancels_its_timers(db, at, outcome, consumed):
    with db.sessions.begin() as s:
        case_id = report(s, T0).id
    with db.sessions.begin() as s:
        step(s, case_id, "classify", CENTER, at, **CLASSIFY)
    with db.session() as s:
        reported = clock_of(s, case_id, "reported")
        assert (reported.status, reported.outcome, reported.consumed_s) == ("stopped", outcome, consumed)
        assert reported.stopped_at == at and reported.segment_start is None
        assert timers(s, reported) == {}
        cancelled = s.scalars(select(SlaTimer).where(SlaTimer.clock_id == reported.id)).all()
        assert {(t.kind, t.status) for t in cancelled} == {("reminder", "cancelled"), ("breach", "cancelled")}
        assert all(t.note.startswith("stopped: classify") for t in cancelled)
        assert [h["what"] for h in reported.history] == ["started", "stopped"]
        assert reported.history[-1]["why"].endswith(outcome)
        # the case clock runs on untouched
        whole = clock_of(s, case_id, None)
        assert (whole.status, whole.generation, len(timers(s, whole))) == ("running", 1, 3)


@pytest.mark.parametrize(
    ("priority", "limit_s", "due"),
    [
        ("normal", 4 * H, sh(2026, 3, 2, 16, 30)),  # 10:30–12:00, then 14:00–16:30
        ("urgent", 1 * H, sh(2026, 3, 2, 11, 30)),
        ("critical", 30 * 60, sh(2026, 3, 2, 11)),
    ],
)
def test_the_classified_clock_follows_the_priority(db, priority, limit_s, due):
    with db.sessions.begin() as s:
        case_id = report(s, T0).id
        step(s, case_id, "classify", CENTER, sh(2026, 3, 2, 10, 30), category="water_supply", priority=priority)
    with db.session() as s:
        classified = clock_of(s, case_id, "classified")
        assert (classified.status, classified.limit_s, classified.due_at) == ("running", limit_s, due)
        assert timers(s, classified) == {("breach", 0): due}  # no reminders in this state


def test_friday_afternoon_plus_four_working_hours_lands_on_monday(db):
    with db.sessions.begin() as s:
        case_id = report(s, sh(2026, 3, 6, 15)).id
        step(s, case_id, "classify", CENTER, sh(2026, 3, 6, 16), category="sanitation", priority="normal")
    with db.session() as s:
        # Friday 16:00–17:30 is 1.5 h; Monday 08:30 + 2.5 h
        assert clock_of(s, case_id, "classified").due_at == sh(2026, 3, 9, 11)


def test_a_step_and_its_clocks_are_one_transaction(db):
    """A step whose transaction fails leaves the clocks and timers as they were."""
    with db.sessions.begin() as s:
        case_id = report(s, T0).id

    def classify_then_fail(s):
        step(s, case_id, "classify", CENTER, sh(2026, 3, 2, 10), **CLASSIFY)
        assert clock_of(s, case_id, "reported").status == "stopped"  # inside the transaction
        raise RuntimeError("the caller's transaction fails after the step")

    rejected(db, RuntimeError, "fails after the step", classify_then_fail)


# -- in progress: limits by category and priority, reminders and the ladder ---------------------


@pytest.mark.parametrize(
    ("category", "priority", "limit", "limit_s", "due"),
    [
        ("water_supply", "normal", "2d", 2 * D, sh(2026, 3, 4, 9)),
        ("water_supply", "urgent", "1d", 1 * D, sh(2026, 3, 3, 9)),
        ("water_supply", "critical", "4h", 4 * H, sh(2026, 3, 2, 15)),
        ("road_traffic", "normal", "3d", 3 * D, sh(2026, 3, 5, 9)),
        ("dispute", "normal", "10d", 10 * D, sh(2026, 3, 16, 9)),  # the category's own limit, longer than 5d
        ("dispute", "urgent", "1d", 1 * D, sh(2026, 3, 3, 9)),  # the shorter of the two overrides
        ("sanitation", "normal", "5d", 5 * D, sh(2026, 3, 9, 9)),  # no override: the state's limit
        ("sanitation", "critical", "4h", 4 * H, sh(2026, 3, 2, 15)),
        ("geological_hazard", "normal", "1d", 1 * D, sh(2026, 3, 3, 9)),  # March: the township calendar
    ],
)
def test_handling_limit_by_category_and_priority(db, category, priority, limit, limit_s, due):
    with db.sessions.begin() as s:
        case_id = to_in_progress(s, T0, category, priority)
    with db.session() as s:
        clock = clock_of(s, case_id, "in_progress")
        assert (clock.calendar, clock.limit_s, clock.policy["limit_text"], clock.due_at) == (
            "township",
            limit_s,
            limit,
            due,
        )
        assert timers(s, clock)[("breach", 0)] == due


def test_handling_clock_reminders_and_escalation_ladder(db):
    with db.sessions.begin() as s:
        case_id = to_in_progress(s, T0, "water_supply", "urgent")  # 1d = 7 working hours
    with db.session() as s:
        clock = clock_of(s, case_id, "in_progress")
        assert timers(s, clock) == {
            ("reminder", 1): sh(2026, 3, 2, 14, 30),  # 50 %: 3.5 h, across the lunch break
            ("reminder", 2): sh(2026, 3, 2, 12),  # 4h before the deadline: 3 h in, at the end of the morning
            ("breach", 0): sh(2026, 3, 3, 9),
            ("escalation", 1): sh(2026, 3, 3, 9),  # 黄牌 at the breach
            ("escalation", 2): sh(2026, 3, 4, 9),  # 红牌 a working day later
            ("escalation", 3): sh(2026, 3, 5, 9),  # 督办 two working days after the breach
        }
        assert [lv["mark"] for lv in clock.policy["ladder"]] == ["yellow_card", "red_card", "supervision_order"]
        # reported, classified and assigned were left at the same instant: met, nothing pending
        for state in ("reported", "classified", "assigned"):
            left = clock_of(s, case_id, state)
            assert (left.status, left.outcome, timers(s, left)) == ("stopped", "met", {})


def test_a_handling_clock_started_on_friday_evening_runs_into_the_makeup_saturday(db):
    with db.sessions.begin() as s:
        case_id = to_in_progress(s, sh(2026, 2, 12, 9), "water_supply", "normal")  # Thursday, 2d
    with db.session() as s:
        # Thursday 6.5 h, Friday 7 h, Saturday 14 February (调休上班) 08:30 + 0.5 h
        assert clock_of(s, case_id, "in_progress").due_at == sh(2026, 2, 14, 9)


# -- suspend and resume ------------------------------------------------------------------------


def test_suspend_pauses_the_handling_and_case_clocks_and_resume_continues(db):
    with db.sessions.begin() as s:
        case_id = to_in_progress(s, T0, "water_supply", "normal")  # 2d = 14 working hours
    with db.sessions.begin() as s:
        step(s, case_id, "suspend", ASSIGNEE, sh(2026, 3, 2, 15), reason="等待村民回家")
    with db.session() as s:
        handling, whole = clock_of(s, case_id, "in_progress"), clock_of(s, case_id, None)
        for clock in (handling, whole):
            assert (clock.status, clock.consumed_s, clock.due_at, clock.segment_start) == ("paused", 4 * H, None, None)
            assert timers(s, clock) == {}
            cancelled = s.scalars(select(SlaTimer).where(SlaTimer.clock_id == clock.id)).all()
            assert cancelled and all(t.status == "cancelled" and t.note.startswith("paused") for t in cancelled)
            assert clock.history[-1]["what"] == "paused"
        suspended = clock_of(s, case_id, "suspended")
        assert (suspended.status, suspended.limit_s) == ("running", 10 * D)

    with db.sessions.begin() as s:
        step(s, case_id, "resume", CENTER, sh(2026, 3, 4, 10))  # Wednesday 10:00
    with db.session() as s:
        handling = clock_of(s, case_id, "in_progress")
        assert (
            s.scalar(
                select(SlaClock.id).where(
                    SlaClock.case_id == case_id, SlaClock.state == "in_progress", SlaClock.id != handling.id
                )
            )
            is None
        )  # the same clock, resumed
        assert (handling.status, handling.consumed_s, handling.generation) == ("running", 4 * H, 2)
        assert handling.segment_start == sh(2026, 3, 4, 10)
        # 10 h left: Wednesday 10:00–12:00 and 14:00–17:30, Thursday 08:30–12:00 and 14:00–15:00
        assert handling.due_at == sh(2026, 3, 5, 15)
        assert timers(s, handling) == {
            ("reminder", 1): sh(2026, 3, 4, 15),  # 7 h in: 3 h after resuming
            ("reminder", 2): sh(2026, 3, 5, 9),  # 10 h in: 6 h after resuming
            ("breach", 0): sh(2026, 3, 5, 15),
            ("escalation", 1): sh(2026, 3, 5, 15),
            ("escalation", 2): sh(2026, 3, 6, 15),
            ("escalation", 3): sh(2026, 3, 9, 15),
        }
        laid = s.scalars(select(SlaTimer).where(SlaTimer.clock_id == handling.id, SlaTimer.status == "pending"))
        assert {t.generation for t in laid} == {2}
        assert [h["what"] for h in handling.history] == ["started", "paused", "resumed"]

        whole = clock_of(s, case_id, None)
        assert (whole.status, whole.consumed_s, whole.generation) == ("running", 4 * H, 2)
        # 66 h left from Wednesday 10:00: the deadline moves by the 11 working hours it was paused
        assert whole.due_at == sh(2026, 3, 17, 15)
        assert timers(s, whole) == {
            ("reminder", 1): sh(2026, 3, 13, 15),
            ("breach", 0): sh(2026, 3, 17, 15),
            ("escalation", 1): sh(2026, 3, 19, 15),
        }
        suspended = clock_of(s, case_id, "suspended")
        assert (suspended.status, suspended.outcome, timers(s, suspended)) == ("stopped", "met", {})


def test_a_clock_paused_across_the_spring_festival(db):
    with db.sessions.begin() as s:
        case_id = to_in_progress(s, sh(2026, 2, 12, 9), "water_supply", "normal")  # Thursday, 2d
        step(s, case_id, "suspend", ASSIGNEE, sh(2026, 2, 12, 11), reason="村民外出过年")  # 2 h used
        # resumed by the duty officer during the break: counting resumes on Tuesday 24 February
        step(s, case_id, "resume", CENTER, sh(2026, 2, 18, 10))
    with db.session() as s:
        handling = clock_of(s, case_id, "in_progress")
        assert (handling.consumed_s, handling.segment_start) == (2 * H, sh(2026, 2, 24, 8, 30))
        # 12 h left: Tuesday 7 h, Wednesday 08:30–12:00 and 14:00–15:30
        assert handling.due_at == sh(2026, 2, 25, 15, 30)
        pending = timers(s, handling)
        assert pending[("reminder", 1)] == sh(2026, 2, 24, 15, 30)  # 7 h in: 5 h after Tuesday 08:30
        assert pending[("reminder", 2)] == sh(2026, 2, 25, 9, 30)  # 10 h in: 8 h after Tuesday 08:30
        assert pending[("breach", 0)] == sh(2026, 2, 25, 15, 30)
        # the case clock was paused as well: 2 h of its 70 used before the break
        assert clock_of(s, case_id, None).consumed_s == 2 * H


def test_resuming_an_overdue_clock_keeps_the_ladder_where_it_was(db):
    """A clock paused 2 working hours after its breach: the ladder levels are business time after the
    breach, so they come 2 h sooner after resuming than they would on a fresh breach."""
    with db.sessions.begin() as s:
        case_id = to_in_progress(s, T0, "water_supply", "urgent")  # 7 h, due Tuesday 09:00
        step(s, case_id, "suspend", ASSIGNEE, sh(2026, 3, 3, 11), reason="等待配件")  # 9 h used, 2 h over
        step(s, case_id, "resume", CENTER, sh(2026, 3, 4, 9))
    with db.session() as s:
        handling = clock_of(s, case_id, "in_progress")
        assert handling.consumed_s == 9 * H
        laid = timers(s, handling)
        assert laid[("escalation", 1)] == sh(2026, 3, 4, 9)  # overdue already: at once
        assert laid[("escalation", 2)] == sh(2026, 3, 4, 16)  # 14 h in: 5 h after resuming
        assert laid[("escalation", 3)] == sh(2026, 3, 5, 16)  # 21 h in: 12 h after resuming


# -- extensions (延期) -------------------------------------------------------------------------


def test_an_approved_extension_moves_the_deadline_and_is_counted(db):
    with db.sessions.begin() as s:
        case_id = to_in_progress(s, T0, "water_supply", "urgent")  # 7 h, due Tuesday 09:00
        step(s, case_id, "request_extension", ASSIGNEE, sh(2026, 3, 2, 10), extend_by="2d", reason="等待配件")
    with db.session() as s:
        # a request alone moves nothing
        handling = clock_of(s, case_id, "in_progress")
        assert (handling.limit_s, handling.generation, handling.due_at) == (D, 1, sh(2026, 3, 3, 9))
    with db.sessions.begin() as s:
        case = step(s, case_id, "approve_extension", CENTER, sh(2026, 3, 2, 11))
        assert (case.extension_count, case.pending_extension) == (1, None)
    with db.session() as s:
        handling = clock_of(s, case_id, "in_progress")
        assert (handling.limit_s, handling.generation, handling.status) == (3 * D, 2, "running")
        # 21 working hours from Monday 09:00
        assert handling.due_at == sh(2026, 3, 5, 9)
        assert timers(s, handling) == {
            ("reminder", 1): sh(2026, 3, 3, 14, 30),  # 50 % of 21 h
            ("reminder", 2): sh(2026, 3, 4, 12),  # 17 h in
            ("breach", 0): sh(2026, 3, 5, 9),
            ("escalation", 1): sh(2026, 3, 5, 9),
            ("escalation", 2): sh(2026, 3, 6, 9),
            ("escalation", 3): sh(2026, 3, 9, 9),
        }
        old = s.scalars(select(SlaTimer).where(SlaTimer.clock_id == handling.id, SlaTimer.generation == 1)).all()
        assert len(old) == 6 and {t.status for t in old} == {"cancelled"}
        extended = handling.history[-1]
        assert (extended["what"], extended["extra_s"], extended["limit_s"]) == ("extended", 2 * D, 3 * D)
        assert "approve_extension" in extended["why"] and "+2d" in extended["why"]
        # the case clock is extended as well (engine/sla.py: every running clock of the case)
        whole = clock_of(s, case_id, None)
        assert (whole.limit_s, whole.due_at) == (12 * D, sh(2026, 3, 18, 9))
        audit = [e for e in events(s, case_id) if e.trigger == "approve_extension"]
        assert len(audit) == 1 and audit[0].payload["extend_by"] == "2d" and audit[0].actor_id == CENTER


def test_history_entries_record_the_deadline_they_set(db):
    """`gridflow sla explain` reads the history: each entry should say what the deadline became."""
    with db.sessions.begin() as s:
        case_id = to_in_progress(s, T0, "water_supply", "urgent")  # due Tuesday 09:00
        step(s, case_id, "suspend", ASSIGNEE, sh(2026, 3, 2, 10), reason="等待村民回家")  # 1 h used
        step(s, case_id, "resume", CENTER, sh(2026, 3, 2, 11))  # 6 h left: Tuesday 10:00
        step(s, case_id, "request_extension", ASSIGNEE, sh(2026, 3, 2, 11), extend_by="2d", reason="等待配件")
        step(s, case_id, "approve_extension", CENTER, sh(2026, 3, 2, 11))  # +14 h: Thursday 10:00
    with db.session() as s:
        history = clock_of(s, case_id, "in_progress").history
        assert [h["what"] for h in history] == ["started", "paused", "resumed", "extended"]
        due = {h["what"]: h["due_at"] and datetime.fromisoformat(h["due_at"]) for h in history}
        assert due["started"] == sh(2026, 3, 3, 9)
        assert due["paused"] is None
        assert due["resumed"] == sh(2026, 3, 3, 10)
        assert due["extended"] == sh(2026, 3, 5, 10)


def test_at_most_two_extensions_per_case(db):
    with db.sessions.begin() as s:
        case_id = to_in_progress(s, T0, "water_supply", "urgent")
        for minute, extend_by in ((0, "2d"), (10, "1d")):
            step(
                s,
                case_id,
                "request_extension",
                ASSIGNEE,
                sh(2026, 3, 2, 10, minute),
                extend_by=extend_by,
                reason="等待配件",
            )
            step(s, case_id, "approve_extension", CENTER, sh(2026, 3, 2, 10, minute + 5))
    with db.session() as s:
        handling = clock_of(s, case_id, "in_progress")
        assert (handling.limit_s, handling.generation, handling.due_at) == (4 * D, 3, sh(2026, 3, 6, 9))
        assert s.get(Case, case_id).extension_count == 2
    rejected(
        db,
        GuardFailed,
        r"already had 2 extension\(s\).*allows 2",
        lambda s: step(s, case_id, "request_extension", ASSIGNEE, sh(2026, 3, 2, 11), extend_by="1d", reason="再等等"),
    )


def test_a_rejected_extension_moves_nothing(db):
    with db.sessions.begin() as s:
        case_id = to_in_progress(s, T0, "water_supply", "urgent")
        step(s, case_id, "request_extension", ASSIGNEE, sh(2026, 3, 2, 10), extend_by="2d", reason="等待配件")
        step(s, case_id, "reject_extension", CENTER, sh(2026, 3, 2, 11), reason="不符合延期条件")
    with db.session() as s:
        handling = clock_of(s, case_id, "in_progress")
        assert (handling.limit_s, handling.generation, handling.due_at) == (D, 1, sh(2026, 3, 3, 9))
        assert [h["what"] for h in handling.history] == ["started"]
        assert s.get(Case, case_id).extension_count == 0


@pytest.mark.parametrize("extend_by", ["4x", "-2h", "0d", "2.5d", "", "10000d"])
def test_bad_extension_durations_are_refused_and_change_nothing(db, extend_by):
    with db.sessions.begin() as s:
        case_id = to_in_progress(s, T0, "water_supply", "urgent")
    error = FieldError
    match = r"missing extend_by" if extend_by == "" else r"extend_by \(延长时限\): bad duration"
    rejected(
        db,
        error,
        match,
        lambda s: step(
            s, case_id, "request_extension", ASSIGNEE, sh(2026, 3, 2, 10), extend_by=extend_by, reason="等待配件"
        ),
    )


# -- geological hazards: 24x7 in the flood season (May–October), township hours otherwise -------


def test_geological_hazard_in_the_flood_season_runs_around_the_clock(db):
    saturday_night = sh(2026, 6, 6, 22)
    with db.sessions.begin() as s:
        case_id = report(s, saturday_night, category="geological_hazard", priority="urgent").id
    with db.session() as s:
        reported = clock_of(s, case_id, "reported")
        assert (reported.calendar, reported.limit_s, reported.segment_start) == ("24x7", 2 * H, saturday_night)
        assert reported.due_at == sh(2026, 6, 7, 0)
        assert timers(s, reported) == {("reminder", 1): sh(2026, 6, 6, 23), ("breach", 0): sh(2026, 6, 7, 0)}
        assert "outside working time" not in reported.history[0]["why"]
        whole = clock_of(s, case_id, None)
        assert (whole.calendar, whole.limit_s) == ("24x7", 240 * H)  # 10d of 24 hours
        assert timers(s, whole) == {
            ("reminder", 1): sh(2026, 6, 14, 22),
            ("breach", 0): sh(2026, 6, 16, 22),
            ("escalation", 1): sh(2026, 6, 18, 22),
        }
    with db.sessions.begin() as s:
        step(s, case_id, "classify", CENTER, sh(2026, 6, 7, 1), category="geological_hazard", priority="urgent")
        step(s, case_id, "assign", CENTER, sh(2026, 6, 7, 1, 30), assignee=ASSIGNEE)
        step(s, case_id, "accept", ASSIGNEE, sh(2026, 6, 7, 2))
    with db.session() as s:
        assert clock_of(s, case_id, "classified").due_at == sh(2026, 6, 7, 2)  # urgent: 1 h, at night
        handling = clock_of(s, case_id, "in_progress")
        assert (handling.calendar, handling.limit_s) == ("24x7", 24 * H)
        pending = timers(s, handling)
        assert pending[("breach", 0)] == sh(2026, 6, 8, 2)
        assert pending[("escalation", 2)] == sh(2026, 6, 9, 2)
        assert pending[("escalation", 3)] == sh(2026, 6, 10, 2)
        assert pending[("reminder", 2)] == sh(2026, 6, 7, 22)  # 4 h before


@pytest.mark.parametrize(
    ("at", "calendar", "due"),
    [
        (sh(2026, 3, 7, 22), "township", sh(2026, 3, 9, 10, 30)),  # March, Saturday night: Monday morning
        (sh(2026, 10, 31, 20), "24x7", sh(2026, 10, 31, 22)),  # last day of the flood season
        (sh(2026, 11, 1, 20), "township", sh(2026, 11, 2, 10, 30)),  # first day after it (a Sunday)
    ],
)
def test_geological_hazard_calendar_depends_on_the_month(db, at, calendar, due):
    with db.sessions.begin() as s:
        case_id = report(s, at, category="geological_hazard").id
        other = report(s, at, category="water_supply").id
    with db.session() as s:
        reported = clock_of(s, case_id, "reported")
        assert (reported.calendar, reported.due_at) == (calendar, due)
        assert clock_of(s, other, "reported").calendar == "township"


# -- special workflows (tests/fixtures/workflows/sla/) -------------------------------------------


def test_the_shortest_override_is_the_shortest_in_business_time(db):
    publish_fixture(db, "override_units.yaml")
    with db.sessions.begin() as s:
        case_id = report(s, T0, workflow="sla_override_units", category="water_supply", priority="urgent").id
    with db.session() as s:
        clock = clock_of(s, case_id, "open")
        # water_supply: 8h, urgent: 1d = 7 working hours -> 7 h is the shorter limit
        assert (clock.limit_s, clock.policy["limit_text"]) == (7 * H, "1d")
        assert clock.due_at == sh(2026, 3, 3, 9)


# -- a property: pausing never loses or adds business time -----------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    start=st.integers(0, 365 * 24 * 60 - 1),  # any minute of 2026
    used=st.integers(0, 3 * 24 * 60),
    paused=st.integers(1, 30 * 24 * 60),
)
@example(start=225691, used=4320, paused=1)  # the limit used up exactly; the deadline passed before the pause
def test_suspend_and_resume_keep_the_business_time(db, start, used, paused):
    """For any instants: time used before the pause + time from the resume to the deadline = the limit."""
    township = calendars()["township"]
    accept = sh(2026, 1, 1) + timedelta(minutes=start)
    suspend = accept + timedelta(minutes=used)
    resume = suspend + timedelta(minutes=paused)
    with db.sessions.begin() as s:
        case_id = to_in_progress(s, accept, "water_supply", "normal")  # 2d = 14 working hours
        step(s, case_id, "suspend", ASSIGNEE, suspend, reason="等待")
        step(s, case_id, "resume", CENTER, resume)
    with db.session() as s:
        for clock, limit in ((clock_of(s, case_id, "in_progress"), 2 * D), (clock_of(s, case_id, None), 10 * D)):
            before = township.between(accept, suspend)
            assert clock.consumed_s == before.total_seconds()
            assert clock.segment_start == township.next_working_instant(resume)
            left = max(timedelta(0), timedelta(seconds=limit) - before)
            if clock.breached_at is not None:  # the deadline passed before the pause, swept or not: it keeps it
                assert before >= timedelta(seconds=limit) and clock.breached_at < suspend
                assert clock.due_at == clock.breached_at
                assert township.between(accept, clock.breached_at) == timedelta(seconds=limit)
                continue
            assert township.between(resume, clock.due_at) == left
            assert clock.due_at == township.add(resume, left).at
