"""`gridflow jobs run|list` as a user runs them (SQLite home): each period once; bad input exits 7."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from tests import runtime_support as rt

SH = ZoneInfo("Asia/Shanghai")


def next_month_start() -> tuple[str, str]:
    """02:00 local on the first of next month, and the key of the month that has then just ended."""
    today = datetime.now(SH).date()
    year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
    return f"{year}-{month:02d}-01T02:00", f"{today.year}-{today.month:02d}"


def test_jobs_run_runs_each_due_period_once_and_lists_it(tmp_path):
    at, month = next_month_start()
    ahead = (datetime.fromisoformat(at).replace(tzinfo=SH) - datetime.now(SH)).total_seconds() + 3600
    env = rt.environment(tmp_path / "home", "", "", GRIDFLOW_CLOCK_OFFSET_S=str(ahead))  # "now": an hour after --at
    rt.init(env)
    first = rt.cli(["jobs", "run", "monthly_scoring", "--at", at], env)
    assert first.returncode == 0, first.stderr
    assert f"monthly_scoring {month}: done" in first.stdout
    again = rt.cli(["jobs", "run", "monthly_scoring", "--at", at], env)
    assert again.returncode == 0 and "nothing due" in again.stdout
    listed = rt.cli(["jobs", "list", "--json"], env)
    runs = [(r["job"], r["period"], r["status"], r["attempts"]) for r in json.loads(listed.stdout)["runs"]]
    assert runs == [("monthly_scoring", month, "done", 1)]
    table = rt.cli(["jobs", "list"], env)
    assert month in table.stdout and "due and not done" in table.stdout


def test_jobs_run_refuses_bad_input_and_changes_nothing(tmp_path):
    env = rt.environment(tmp_path / "home", "", "")
    rt.init(env)
    unknown = rt.cli(["jobs", "run", "weekly_scoring"], env)
    assert unknown.returncode == 3 and "monthly_scoring" in unknown.stderr
    bad_time = rt.cli(["jobs", "run", "--at", "next tuesday"], env)
    assert bad_time.returncode == 8 and "2026-03-02T10:00" in bad_time.stderr
    future = rt.cli(["jobs", "run", "--at", next_month_start()[0]], env)  # would score a month that is not over
    assert future.returncode == 9 and "is in the future" in future.stderr
    listed = rt.cli(["jobs", "list", "--json"], env)
    assert json.loads(listed.stdout)["runs"] == []
