"""``gridflow calendar due START DURATION``: the deadline a case dispatched at START would get.

Before this command a clerk had to report a fake case to learn a due date. The answer must be the
one a real clock gets, so the property below starts real SLA clocks (``engine.sla.Clocks.start``,
on SQLite and PostgreSQL) and compares. The CLI runs in-process (Typer's runner) with its home in a
temporary directory; no test depends on today's date.

Worked example (2026 schedule: 国庆节 1–7 Oct off; township 08:30–12:00, 14:00–17:30, ``1d`` = 7 h):
dispatched Wed 30 Sep 16:00 with ``2d`` = 14 working hours → 1.5 h on 30 Sep, nothing 1–7 Oct,
7 h on Thu 8 Oct, 5.5 h on Fri 9 Oct → due Fri 9 Oct 16:00.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import gridflow.app
import gridflow.cli as cli
import gridflow.cli.common as common
from engine.durations import Duration
from engine.sla import CaseFacts, Clocks
from gridflow.app.sla import due_reckoning
from tests.support import GRID, GRID_WORKER, T0, calendars, seeded_workflow

SH = ZoneInfo("Asia/Shanghai")


# -- the same deadline as a real clock --------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    minute=st.integers(0, 2 * 365 * 24 * 60),  # any minute of 2026 and 2027 (2027 is estimated)
    amount=st.integers(1, 9999),
    unit=st.sampled_from("mhd"),
    name=st.sampled_from(["township", "24x7"]),
)
def test_the_due_time_is_what_an_sla_clock_gets(db, minute, amount, unit, name):
    """For any start, limit and calendar: the command's deadline = a clock's ``due_at`` and ``estimated``."""
    start = datetime(2026, 1, 1, tzinfo=SH) + timedelta(minutes=minute)
    limit = Duration(min(amount, 400) if unit == "d" else amount, unit)  # 400 working days stay within 2029
    cal = calendars()[name]
    reckoning = due_reckoning(cal, start, limit)
    with db.session() as s:
        case_id = _a_case(s)
        clocks = Clocks(s, CaseFacts(case_id, None, None), calendars(), SH)
        spec = {"limit": str(limit), "calendar": name}
        clock = clocks.start(seeded_workflow().definition, "state", "reported", spec, start, "probe")
        s.rollback()
    assert (clock.due_at, clock.estimated) == (reckoning.deadline.at, reckoning.deadline.estimated)
    assert clock.segment_start == reckoning.begin
    assert sum((d.counted for d in reckoning.days), timedelta(0)) == timedelta(seconds=clock.limit_s)


def _a_case(session) -> int:
    from engine import cases

    fields = {"title": "时限试算"}
    result = cases.report(session, grid_id=GRID, actor_id=GRID_WORKER, fields=fields, at=T0, calendars=calendars())
    return result.case.id


# -- the command ------------------------------------------------------------------------------------


@pytest.fixture
def run(tmp_path, monkeypatch):
    """``gridflow ARGS`` in-process: a home of its own, a pinned clock, a 100-column console."""
    monkeypatch.setenv("GRIDFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("GRIDFLOW_CONFIG_FILE", str(tmp_path / "absent.yaml"))
    built: list[gridflow.app.Gridflow] = []

    def build(settings):  # type: ignore[no-untyped-def]
        built.append(gridflow.app.Gridflow(settings, clock=lambda: datetime(2026, 12, 2, 2, 0, tzinfo=UTC)))
        return built[-1]

    monkeypatch.setattr(common, "Gridflow", build)
    for console in (common.out, common.err):
        monkeypatch.setattr(console, "_width", 100)

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(cli.app, list(args), catch_exceptions=False)

    yield invoke
    for app in built:
        app.close()


def test_the_table_counts_national_day_as_days_off(run):
    result = run("calendar", "due", "2026-09-30T16:00", "2d")
    assert result.exit_code == 0, result.output
    out, said = result.stdout, _said(result.stdout)
    assert "截止 due 2026-10-09 16:00 CST 周五 Fri" in said
    assert "开始 start 2026-09-30 16:00 CST" in said and "起算" not in said  # counting starts at once
    assert "时限 limit 2d = 14h 工作时间 working time on township 乡镇工作日 (1d = 7h)" in said
    assert "估算 estimated 否 no" in said
    lines = [line for line in out.splitlines() if line.startswith("│ 2026-")]
    assert [line.split("│")[1:6] for line in lines][:2] == [
        [" 2026-09-30 ", " 周三 Wed     ", "           ", "                 90 ", "               90 "],
        [" 2026-10-01 ", " 周四 Thu     ", " 休        ", "                  0 ", "               90 "],
    ]
    cells = [[c.strip() for c in line.split("│")[1:6]] for line in lines]
    assert [c[0] for c in cells] == ["2026-09-30", *(f"2026-10-0{n}" for n in range(1, 10))]
    assert [c[2] for c in cells] == ["", *["休"] * 7, "", ""]
    assert cells[-2:] == [["2026-10-08", "周四 Thu", "", "420", "510"], ["2026-10-09", "周五 Fri", "", "330", "840"]]
    assert "班 make-up working day" in out  # the legend of the marks


def test_json_is_the_same_as_data(run):
    result = run("calendar", "due", "2026-09-30T16:00", "2d", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {k: data[k] for k in ("calendar", "duration", "limit_minutes", "due_at", "estimated")} == {
        "calendar": "township",
        "duration": "2d",
        "limit_minutes": 840,
        "due_at": "2026-10-09T16:00:00+08:00",
        "estimated": False,
    }
    assert data["start"] == data["counting_from"] == "2026-09-30T16:00:00+08:00"
    assert [(d["date"], d["weekday"], d["mark"], d["counted_minutes"], d["total_minutes"]) for d in data["days"]] == [
        ("2026-09-30", "周三", "", 90, 90),
        *((f"2026-10-0{n}", f"周{'四五六日一二三'[n - 1]}", "休", 0, 90) for n in range(1, 8)),
        ("2026-10-08", "周四", "", 420, 510),
        ("2026-10-09", "周五", "", 330, 840),
    ]


def test_24x7_is_wall_time(run):
    data = json.loads(run("calendar", "due", "2026-09-30T16:00", "2d", "--calendar", "24x7", "--json").stdout)
    assert data["due_at"] == "2026-10-02T16:00:00+08:00" and data["limit_minutes"] == 2880
    assert [d["counted_minutes"] for d in data["days"]] == [480, 1440, 960]
    out = _said(run("calendar", "due", "2026-09-30T16:00", "2d", "--calendar", "24x7").stdout)
    assert "2d = 48h 全天计时 wall time on 24x7" in out and "截止 due 2026-10-02 16:00 CST" in out


def test_outside_working_time_and_an_estimated_year_are_said(run):
    out = _said(run("calendar", "due", "2026-12-31T20:00", "4h").stdout)
    assert "起算 counting from 2027-01-04 08:30 CST" in out  # 1–3 Jan 2027 off (estimated), then Monday
    assert "时限 limit 4h 工作时间" in out
    assert "截止 due 2027-01-04 14:30 CST 周一 Mon" in out  # 08:30–12:00 and 14:00–14:30
    assert "是 yes: the official 2027 holiday schedule is not loaded" in out
    assert "│ 2027-01-01 │ 周五 Fri │ 休? │ 0 │ 0 │" in out  # an estimated day off
    data = json.loads(run("calendar", "due", "2026-12-31T20:00", "4h", "--json").stdout)
    assert (data["estimated"], data["estimated_years"]) == (True, [2027])
    assert data["counting_from"] == "2027-01-04T08:30:00+08:00"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tomorrow", "2d"), "bad time 'tomorrow'"),
        (("2026-09-30T16:00", "2 days"), "bad duration '2 days'"),
        (("2026-09-30T16:00", "0d"), "bad duration '0d'"),
        (("2026-09-30T16:00", "2d", "--calendar", "weekends"), "no calendar 'weekends'; calendars: 24x7, township"),
        (("2100-12-31T16:00", "2d"), "START 2100-12-31T16:00:00 is outside the years gridflow keeps (2000–2099)"),
        (("1999-06-01T09:00", "1h"), "START 1999-06-01T09:00:00 is outside the years gridflow keeps (2000–2099)"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(run, args, message):
    result = run("calendar", "due", *args)
    assert result.exit_code != 0 and message in _said(result.output), result.output
    assert result.stdout == ""


def _said(text: str) -> str:
    """The text with each run of blanks (table padding, line ends) as one space."""
    return " ".join(text.split())
