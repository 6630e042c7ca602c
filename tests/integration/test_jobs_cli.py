"""`gridflow jobs run|list` as a user runs them (SQLite home): each period once; bad input exits 7."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from tests import runtime_support as rt

SH = ZoneInfo("Asia/Shanghai")
INSTALLED = datetime(2026, 11, 20, 10, 0, tzinfo=SH)  # `gridflow init`: November is one of its months
AT = "2026-12-01T02:00"  # --at: an hour after November's scoring fell due
NOW = datetime(2026, 12, 1, 3, 0, tzinfo=SH)  # the clock: an hour after --at


def test_jobs_run_runs_each_due_period_once_and_lists_it(tmp_path):
    env = rt.environment(tmp_path / "home", "", "", now=NOW)
    rt.init(env, at=INSTALLED)
    first = rt.cli(["jobs", "run", "monthly_scoring", "--at", AT], env)
    assert first.returncode == 0, first.stderr
    assert "monthly_scoring 2026-11: done" in first.stdout
    again = rt.cli(["jobs", "run", "monthly_scoring", "--at", AT], env)
    assert again.returncode == 0 and "nothing due" in again.stdout
    listed = rt.cli(["jobs", "list", "--json"], env)
    runs = [(r["job"], r["period"], r["status"], r["attempts"]) for r in json.loads(listed.stdout)["runs"]]
    assert runs == [("monthly_scoring", "2026-11", "done", 1)]
    table = rt.cli(["jobs", "list"], env)
    assert "2026-11" in table.stdout and "due and not done" in table.stdout


def test_jobs_run_refuses_bad_input_and_changes_nothing(tmp_path):
    env = rt.environment(tmp_path / "home", "", "", now=NOW)
    rt.init(env, at=INSTALLED)
    unknown = rt.cli(["jobs", "run", "weekly_scoring"], env)
    assert unknown.returncode == 3 and "monthly_scoring" in unknown.stderr
    bad_time = rt.cli(["jobs", "run", "--at", "next tuesday"], env)
    assert bad_time.returncode == 8 and "2026-03-02T10:00" in bad_time.stderr
    future = rt.cli(["jobs", "run", "--at", "2027-01-01T02:00"], env)  # would score a month that is not over
    assert future.returncode == 9 and "is in the future" in future.stderr
    listed = rt.cli(["jobs", "list", "--json"], env)
    assert json.loads(listed.stdout)["runs"] == []
