"""Monthly scoring on SQLite and PostgreSQL: the fixture month's indicators, worked out by hand
(tests/scoring_month.py says how), the same figures from the plain-Python oracle, frozen
against what happens after the period, the run history, and the period keying of the job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update

from engine import cases, jobs
from engine.errors import ConfigError
from engine.jobs import bounds, parse_period
from engine.periodic import bodies
from engine.scoring import facts, naive, runs
from engine.scoring.config import load
from engine.store.models import Case, JobRun, Place, RoleAssignment, Score, ScoreIndicator, ScoreRun, SlaClock, SlaTimer
from engine.sweep import sweep
from tests.scoring_month import AN, CENTER, CHEN, XIONG, Month, sh
from tests.support import ROOT, calendars

SH = ZoneInfo("Asia/Shanghai")
NOV = parse_period("month", "2026-11")
RULES = load(ROOT / "config" / "scoring.yaml")


@pytest.fixture
def month(db) -> Month:
    m = Month(db)
    m.november()
    return m


def indicators(db, period=NOV, exempt=()):
    start, end = bounds(period, SH)
    with db.sessions.begin() as s:
        return facts.compute(s.connection(), RULES, start, end, exempt)


def as_tuples(values: dict) -> dict:
    """{indicator: (numerator, denominator)} for rates; {indicator: n} for counts; hours rounded."""
    out = {}
    for name, v in values.items():
        if v.denominator is None:
            out[name] = int(v.numerator)
        elif v.numerator is None:
            out[name] = (v.denominator, None if v.value is None else round(v.value, 4))
        else:
            out[name] = (int(v.numerator), v.denominator)
    return out


# -- the fixture month, by hand -------------------------------------------------------------------

TOWNSHIP = {
    "cases": 11,  # A–K: J carried over from October
    "reported": 10,  # all but J
    "classified": 8,  # A B D E F G H K (C voided unclassified, I classified in December, J in October)
    "voided": 1,  # C
    "due_to_close": 7,  # closed A B F G H J, and E (its deadline fell on 30 Nov); D suspended, K and I not due
    "closed": 6,
    "closed_on_time": 5,  # all but J (its case clock ran out on 5 Nov)
    "overdue_open": 1,  # E
    "dispatched": 9,  # A B D E F H K, and G twice
    "returned": 1,  # G, by 陈小琴
    "close_rate": (6, 7),
    "on_time_close_rate": (5, 7),
    "on_time_dispatch_rate": (8, 9),  # H dispatched at 16:00, its 4h limit ran out at 15:00
    "on_time_handling_rate": (5, 8),  # due: A B(twice) F G H J resolved, E past its deadline; late: B's first, J, E
    "rework_rate": (1, 6),  # B
    "return_rate": (1, 9),
    "extension_rate": (1, 8),  # F
    "suspension_rate": (1, 8),  # D
    "valid_report_rate": (8, 9),  # of the 10 reported, 9 decided by the end (I still pending); C voided
    "response_rate": (6, 8),  # first responses of cases: A B D E F G H left in time but H; K's limit ran out
    "satisfaction_rate": (5, 6),  # F 不满意; B 基本满意 counts
    "handling_hours_mean": (6, round(162.5 / 6, 4)),  # A 14, B 20, F 18, G 15.5, H 10, J 85
    "handling_hours_median": (6, 16.75),  # (15.5 + 18) / 2
    "handling_hours_p90": (6, 52.5),  # rank 4.5 of 0..5: 20 + 0.5 × (85 − 20)
}


def test_the_fixture_month_township_wide(db, month):
    assert as_tuples(indicators(db)[("township", "*")]) == TOWNSHIP


def test_a_grid_with_one_case_and_a_grid_with_nothing_but_zero_denominators(db, month):
    got = indicators(db)
    h = as_tuples(got[("grid", "mayingtai-02")])  # H only
    assert {k: h[k] for k in ("cases", "reported", "classified", "closed", "closed_on_time", "dispatched")} == {
        "cases": 1,
        "reported": 1,
        "classified": 1,
        "closed": 1,
        "closed_on_time": 1,
        "dispatched": 1,
    }
    assert h["on_time_dispatch_rate"] == (0, 1)
    assert h["response_rate"] == (0, 1)
    assert h["on_time_handling_rate"] == (1, 1)
    assert h["satisfaction_rate"] == (1, 1)
    assert h["handling_hours_median"] == (1, 10.0)
    i = got[("grid", "mayingtai-03")]  # I only: reported on 30 Nov, nothing else yet
    assert i["reported"].value == 1
    for rate in (
        "close_rate",
        "on_time_close_rate",
        "on_time_dispatch_rate",
        "on_time_handling_rate",
        "rework_rate",
        "return_rate",
        "extension_rate",
        "suspension_rate",
        "response_rate",
        "satisfaction_rate",
    ):
        assert i[rate].denominator == 0 and i[rate].value is None, rate  # NULL, not 0 and not 100 %
    assert i["valid_report_rate"].denominator == 0  # reported, not yet classified or voided: not judged yet
    assert i["handling_hours_mean"].value is None
    assert ("grid", "qinglong-01") not in got  # no case at all: no row (scored as "no data", see below)


def test_workers_as_handler_and_as_reporter(db, month):
    got = indicators(db)
    chen = as_tuples(got[("handler", CHEN)])  # A B E J K are hers at the end; G was returned by her
    assert {k: chen[k] for k in ("cases", "closed", "due_to_close", "closed_on_time", "overdue_open")} == {
        "cases": 5,
        "closed": 3,
        "due_to_close": 4,
        "closed_on_time": 2,
        "overdue_open": 1,
    }
    assert chen["return_rate"] == (1, 5)  # dispatched to her: A B E G K
    assert chen["response_rate"] == (4, 5)  # K late
    assert chen["on_time_handling_rate"] == (2, 5)  # A, B's second; late: B's first, E, J
    assert chen["rework_rate"] == (1, 3)
    assert chen["satisfaction_rate"] == (3, 3)
    assert chen["on_time_dispatch_rate"] == (0, 0)  # the centre dispatches: never a handler's
    assert chen["handling_hours_p90"] == (3, 72.0)  # 14, 20, 85: 20 + 0.8 × 65
    xiong = as_tuples(got[("handler", XIONG)])  # the village secretary handled H
    assert xiong["response_rate"] == (0, 1) and xiong["closed"] == 1
    an = as_tuples(got[("reporter", AN)])  # reported A–G, K in November (J in October)
    assert an == {"cases": 9, "reported": 8, "classified": 7, "voided": 1, "valid_report_rate": (7, 8)}


def test_the_sql_agrees_with_the_naive_oracle_for_every_subject(db, month):
    start, end = bounds(NOV, SH)
    with db.sessions.begin() as s:
        sql = facts.compute(s.connection(), RULES, start, end)
        slow = naive.compute(s, RULES, start, end)
    assert sql.keys() == slow.keys()
    for key in sql:
        assert as_tuples(sql[key]) == as_tuples(slow[key]), key


def test_what_happens_after_the_end_does_not_change_the_month(db, month, clock):
    at = sh(12, 1, 1)
    with db.sessions.begin() as s:
        first = runs.score_period(s, NOV, at, RULES, SH, "monthly job")
        first_id = first.id
    before = indicators(db)
    month.december()  # I classified, K accepted, D resumed and closed, E extended and closed
    with db.sessions.begin() as s:
        again = runs.score_period(s, NOV, sh(12, 3, 9), RULES, SH, "forced")
        assert (again.seq, again.current) == (2, True)
        assert s.get(ScoreRun, first_id).current is False  # kept, as history
        stored = {
            (r.subject_kind, r.subject_id, r.indicator): (r.numerator, r.denominator, r.value)
            for r in s.scalars(select(ScoreIndicator).where(ScoreIndicator.run_id == first_id))
        }
        restored = {
            (r.subject_kind, r.subject_id, r.indicator): (r.numerator, r.denominator, r.value)
            for r in s.scalars(select(ScoreIndicator).where(ScoreIndicator.run_id == again.id))
        }
    assert indicators(db) == before
    assert restored == stored
    december = indicators(db, parse_period("month", "2026-12"))[("township", "*")]
    # D: 63 h of 70 used when suspended, 7 h left from Tue 1 Dec 09:00 → Wed 2 Dec 09:00, verified 11:00; E late
    assert december["closed"].value == 2 and december["closed_on_time"].value == 0


def test_a_run_stores_scores_ranks_and_the_rules_version(db, month):
    with db.sessions.begin() as s:
        run = runs.score_period(s, NOV, sh(12, 1, 1), RULES, SH, "monthly job")
        rows = {(r.subject_kind, r.subject_id): r for r in s.scalars(select(Score).where(Score.run_id == run.id))}
        assert run.config_version == 1
        assert run.summary["on_time_close_rate"]["numerator"] == 5
    grid = rows[("grid", "mayingtai-01")]
    assert grid.ranked and grid.rank == 1 and grid.grade is not None
    assert rows[("grid", "mayingtai-02")].ranked is False  # 1 case < minimum 3: listed, not ranked
    empty = rows[("grid", "qinglong-01")]
    assert (empty.composite, empty.ranked, empty.cases) == (None, False, 0)
    assert set(empty.missing) == set(RULES.subjects["grid"].weights)  # says which parts were missing
    assert rows[("worker", AN)].cases == 9 + 3  # as reporter 9; as handler D, F and G at the end


def test_scoring_waits_for_the_sweep(db):
    Month(db).report("A", "mayingtai-01", AN, sh(11, 30, 16), "公厕损坏")  # the reminder at 50 % is due 17:00
    with db.sessions.begin() as s:
        pending = s.scalar(select(func.count()).select_from(SlaTimer).where(SlaTimer.status == "pending"))
        assert pending
        with pytest.raises(runs.NotSwept, match="have not fired yet"):
            runs.score_period(s, NOV, sh(12, 1, 1), RULES, SH, "monthly job")
    with db.sessions.begin() as s:
        assert s.scalar(select(func.count()).select_from(ScoreRun)) == 0  # nothing stored
    sweep(db.sessions.begin, sh(12, 1, 0, 30), "sweeper")
    with db.sessions.begin() as s:
        assert runs.score_period(s, NOV, sh(12, 1, 1), RULES, SH, "monthly job").seq == 1


def test_a_month_that_is_not_over_is_refused(db):
    with db.sessions.begin() as s, pytest.raises(Exception, match="not over yet"):
        runs.score_period(s, NOV, sh(11, 30, 23), RULES, SH, "too early")


# -- the job, keyed by period ------------------------------------------------------------------------

MONTHLY = jobs.JOBS["monthly_scoring"]


def run_jobs(db, at: datetime, catch_up: int = 3) -> list[str]:
    body = bodies(SH, calendars(), scoring=lambda: RULES)["monthly_scoring"]
    with db.sessions.begin() as s:
        due = jobs.due_periods(s, MONTHLY, at, SH, catch_up)
    done = []
    for period in due:
        with db.sessions.begin() as s:
            if jobs.run_period(s, MONTHLY, period, at, SH, body, "test").ran:
                done.append(period.key)
    return done


def test_the_monthly_job_runs_once_a_period(db, month):
    # 00:30 on 1 December is still 30 November in UTC; November is due at 01:00 local, so only October runs
    assert sh(12, 1, 0, 30).astimezone(UTC).date().isoformat() == "2026-11-30"
    assert run_jobs(db, sh(12, 1, 0, 30), catch_up=1) == ["2026-10"]
    assert run_jobs(db, sh(12, 1, 0, 30), catch_up=1) == []
    assert run_jobs(db, sh(12, 1, 1), catch_up=1) == ["2026-11"]  # 17:00 UTC on 30 November
    assert run_jobs(db, sh(12, 1, 1, 0) + timedelta(seconds=5), catch_up=1) == []  # beat fired twice
    with db.sessions.begin() as s:
        assert s.scalar(select(func.count()).select_from(ScoreRun).where(ScoreRun.period == "2026-11")) == 1
        row = s.scalar(select(JobRun).where(JobRun.period == "2026-11"))
        assert row.result["on_time_close_rate"] == round(5 / 7, 4)


def test_a_missed_month_is_scored_once_when_beat_returns(db, month):
    # beat down from 30 Nov to 2 Feb: December and January are due, each once; November's job had run
    assert run_jobs(db, sh(12, 1, 1), catch_up=1) == ["2026-11"]
    sweep(db.sessions.begin, sh(2, 2, 9, y=2027), "sweeper")
    assert run_jobs(db, sh(2, 2, 9, y=2027)) == ["2026-12", "2027-01"]
    assert run_jobs(db, sh(2, 2, 10, y=2027)) == []


def test_a_month_scored_by_hand_is_not_scored_again_by_the_job(db, month):
    with db.sessions.begin() as s:
        runs.score_period(s, NOV, sh(12, 1, 0, 40), RULES, SH, "by hand")
    assert run_jobs(db, sh(12, 1, 1), catch_up=1) == ["2026-11"]  # the job's record, the same run
    with db.sessions.begin() as s:
        assert s.scalar(select(func.count()).select_from(ScoreRun)) == 1


# -- random months: the SQL and the oracle agree -------------------------------------------------------

PEOPLE = {"assignee": [CHEN, AN, XIONG]}
MOVES = {
    "reported": [("classify", CENTER), ("void", CENTER)],
    "classified": [("assign", CENTER), ("void", CENTER)],
    "assigned": [("accept", None), ("return", None), ("request_extension", None)],
    "in_progress": [("resolve", None), ("suspend", None), ("request_extension", None), ("return", None)],
    "suspended": [("resume", None)],
    "resolved": [("verify", CENTER), ("rework", CENTER)],
}
FIELDS = {
    "classify": lambda r: {
        "category": r.choice(["water_supply", "dispute", "sanitation", "road_traffic"]),
        "priority": r.choice(["normal", "normal", "urgent"]),
    },
    "assign": lambda r: {"assignee": r.choice(PEOPLE["assignee"])},
    "void": lambda r: {"reason": "重复"},
    "return": lambda r: {"reason": "不属本人"},
    "suspend": lambda r: {"reason": "等待"},
    "request_extension": lambda r: {"extend_by": r.choice(["1d", "2d"]), "reason": "需要时间"},
    "resolve": lambda r: {"resolution": "已处理"},
    "verify": lambda r: {"satisfaction": r.choice(["satisfied", "basically_satisfied", "dissatisfied"])},
    "rework": lambda r: {"reason": "未处理好"},
}


def random_month(db, rnd, n_cases: int) -> None:
    """Cases reported across October and November, each walking the workflow at random times."""
    start = sh(10, 12, 8)
    events = []
    for i in range(n_cases):
        at = start + timedelta(hours=rnd.randint(0, 24 * 48))
        events.append((at, i))
    state: dict[int, tuple[int, str, str | None]] = {}
    queue = sorted(events)
    while queue:
        at, i = queue.pop(0)
        sweep(db.sessions.begin, at, "sweeper")
        with db.sessions.begin() as s:
            if i not in state:
                case = cases.report(
                    s,
                    grid_id=rnd.choice(["mayingtai-01", "mayingtai-02"]),
                    actor_id=CENTER,
                    fields={"title": f"事件{i}"},
                    at=at,
                    calendars=calendars(),
                ).case
                state[i] = (case.id, case.status, None)
            else:
                case_id, status, assignee = state[i]
                extension_pending = s.get(Case, case_id).pending_extension
                options = MOVES[status]
                trigger, actor = rnd.choice(options)
                if trigger == "request_extension" and extension_pending:
                    trigger, actor = "approve_extension", CENTER
                fields = FIELDS.get(trigger, lambda r: {})(rnd)
                try:
                    result = cases.fire(
                        s, case_id, trigger, actor_id=actor or assignee, fields=fields, at=at, calendars=calendars()
                    )
                except Exception:  # a guard (e.g. extensions used up): try another move later
                    result = None
                if result is not None:
                    c = result.case
                    state[i] = (c.id, c.status, c.assignee_id)
        case_id, status, _ = state[i]
        if status not in ("verified", "voided") and rnd.random() < 0.9:
            nxt = at + timedelta(hours=rnd.choice([1, 3, 8, 20, 50, 120]))
            if nxt < sh(12, 15, 0):
                queue.append((nxt, i))
                queue.sort()
    sweep(db.sessions.begin, sh(12, 15, 0), "sweeper")


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_random_months_sql_and_oracle_agree(db, seed):
    import random

    db.reset()
    random_month(db, random.Random(seed), n_cases=14)
    for key in ("2026-10", "2026-11"):
        start, end = bounds(parse_period("month", key), SH)
        with db.sessions.begin() as s:
            sql = facts.compute(s.connection(), RULES, start, end)
            slow = naive.compute(s, RULES, start, end)
        assert sql.keys() == slow.keys()
        for subject in sql:
            assert as_tuples(sql[subject]) == as_tuples(slow[subject]), (key, subject)


# -- found in review: each of these failed before its fix --------------------------------------------


def handled_late_then(db, trigger: str, sweep_on_time: bool) -> dict:
    """A water case accepted Mon 2 Nov 09:00 (2d = 14 working hours: deadline Wed 4 Nov 09:00); at
    Wed 4 Nov 10:00 the handler either returns it or has an extension approved; the sweep either ran
    at the deadline or lags until after the step."""
    m = Month(db)
    m.sweep = (lambda at: None) if not sweep_on_time else m.sweep  # type: ignore[method-assign]
    m.report("X", "mayingtai-01", AN, sh(11, 2, 9), "水管破裂")
    m.through("X", sh(11, 2, 9), "water_supply", CHEN)
    if sweep_on_time:
        sweep(db.sessions.begin, sh(11, 4, 9, 1), "sweeper")
    if trigger == "return":
        m.step("X", "return", CHEN, sh(11, 4, 10), reason="不属本人")
    else:
        m.step("X", "request_extension", CHEN, sh(11, 4, 9, 30), extend_by="2d", reason="缺配件")
        m.step("X", "approve_extension", CENTER, sh(11, 4, 10))
    sweep(db.sessions.begin, sh(12, 1, 0), "sweeper")
    return as_tuples(indicators(db)[("township", "*")])


@pytest.mark.parametrize("trigger", ["return", "extension"])
def test_a_missed_handling_deadline_counts_however_the_visit_ends_and_however_late_the_sweep(db, trigger):
    on_time = handled_late_then(db, trigger, sweep_on_time=True)
    db.reset()
    lagging = handled_late_then(db, trigger, sweep_on_time=False)
    assert on_time["on_time_handling_rate"] == (0, 1)  # the deadline fell on 4 Nov: due, and missed
    assert lagging == on_time  # the same history gives the same figures, whenever the sweep ran
    with db.sessions.begin() as s:
        clock = s.scalars(select(SlaClock).where(SlaClock.state == "in_progress")).first()
        assert clock.breached_at == sh(11, 4, 9)


def test_a_recomputation_uses_the_org_chart_the_period_was_scored_with(db, month):
    with db.sessions.begin() as s:
        first = runs.score_period(s, NOV, sh(12, 1, 1), RULES, SH, "monthly job")
        before = {(r.subject_kind, r.subject_id): (r.composite, r.rank) for r in runs.scores(s, first)}
    with db.sessions.begin() as s:  # a later reorganisation: a grid moves village, one closes, a worker leaves
        s.execute(update(Place).where(Place.id == "mayingtai-02").values(village_id="diping", parent_id="diping"))
        s.execute(update(Place).where(Place.id == "mayingtai-01").values(active=False))
        s.execute(delete(RoleAssignment).where(RoleAssignment.person_id == CHEN))
    with db.sessions.begin() as s:
        again = runs.score_period(s, NOV, sh(12, 3, 1), RULES, SH, "forced")
        after = {(r.subject_kind, r.subject_id): (r.composite, r.rank) for r in runs.scores(s, again)}
    assert after == before


def test_the_same_period_a_year_before():
    assert runs.year_before(parse_period("month", "2027-01")).key == "2026-01"
    assert runs.year_before(parse_period("month", "2028-02")).key == "2027-02"
    assert runs.year_before(parse_period("quarter", "2027Q1")).key == "2026Q1"
    assert runs.year_before(parse_period("year", "2027")).key == "2026"


def test_rules_naming_a_trigger_or_answer_no_workflow_has_are_refused(db, month):
    from engine.scoring.config import parse_text

    text = (ROOT / "config" / "scoring.yaml").read_text(encoding="utf-8")
    typo = parse_text(
        text.replace("dispatch: [assign]", "dispatch: [asign]").replace(
            "satisfied: [satisfied, basically_satisfied]", "satisfied: [satisifed]"
        )
    )
    with db.sessions.begin() as s, pytest.raises(ConfigError) as caught:
        runs.score_period(s, NOV, sh(12, 1, 1), typo, SH, "monthly job")
    assert "workflow.dispatch: 'asign' is not a trigger" in str(caught.value)
    assert "satisfied: 'satisifed' is not an answer" in str(caught.value)


def test_the_migration_backfill_recovers_what_the_clocks_now_record(db, month):
    import importlib

    backfill = importlib.import_module("engine.store.migrations.versions.0005_scoring").backfill
    with db.sessions.begin() as s:
        recorded = {c.id: (c.state, c.stopped_by, c.assignee_id) for c in s.scalars(select(SlaClock))}
        s.execute(update(SlaClock).values(stopped_by=None, assignee_id=None))
    with db.engine.begin() as conn:
        backfill(conn)
    with db.sessions.begin() as s:
        restored = {c.id: (c.state, c.stopped_by, c.assignee_id) for c in s.scalars(select(SlaClock))}
    assert {k: v[1] for k, v in restored.items()} == {k: v[1] for k, v in recorded.items()}
    handling = {k for k, v in recorded.items() if v[0] in ("assigned", "in_progress", "resolved")}
    assert {k: restored[k][2] for k in handling} == {k: recorded[k][2] for k in handling}
