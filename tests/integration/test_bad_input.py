"""Odd input that once crashed or behaved differently per back end (each test failed before its fix)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from config.settings import Settings
from engine import cases
from engine.definitions.loader import load_workflow_text
from engine.durations import parse_duration
from engine.errors import CaseNotFound, ConfigError, DatabaseError, FieldError
from engine.store import workflow_repo
from engine.store.db import create_db_engine
from gridflow.app import Gridflow
from tests.support import CENTER, GRID, GRID_WORKER, T0, calendars, clock_offset, sqlite_database

GRIDFLOW = Path(sys.executable).with_name("gridflow")


def _report(session, **fields):
    return cases.report(
        session, grid_id=GRID, calendars=calendars(), actor_id=GRID_WORKER, fields={"title": "标题", **fields}, at=T0
    ).case


MINI = """
workflow: mini
title: 小流程
states:
  open: {label: 待办, initial: true}
  done: {label: 完成, final: true}
triggers:
  finish: {label: 完成, from: open, to: done, roles: [center]}
report: {roles: [grid_worker]}
"""


def test_two_databases_in_one_process_never_share_a_compiled_workflow(db, tmp_path):
    """Row id 1 is grid_case in one database and mini in the other."""
    other = sqlite_database(tmp_path / "other.db")
    other.reset(seed=True)
    with other.sessions.begin() as s:
        s.execute(text("DELETE FROM workflow_definition"))
        workflow_repo.publish(s, load_workflow_text(MINI, "mini.yaml"), T0)
    with db.sessions.begin() as s:
        assert _report(s).workflow_name == "grid_case"  # caches grid_case under its own key
    with other.sessions.begin() as s:
        case = cases.report(s, grid_id=GRID, actor_id=GRID_WORKER, fields={"title": "x"}, at=T0, workflow="mini")
        assert (case.case.workflow_name, case.case.status) == ("mini", "open")
    other.engine.dispose()


@pytest.mark.parametrize("ref", ["²", "١", "99999999999999999999", "-1", " 1"])
def test_odd_case_ids_are_simply_not_found(db, ref):
    with db.sessions.begin() as s:
        _report(s)
    with db.sessions.begin() as s:
        with pytest.raises(CaseNotFound):
            cases.get_case(s, ref)
        with pytest.raises(CaseNotFound):
            cases.fire(s, ref, "void", calendars=calendars(), actor_id=CENTER, fields={"reason": "x"}, at=T0)


def test_an_empty_json_value_is_sql_null_on_both_back_ends(db):
    with db.sessions.begin() as s:
        case_id = _report(s).id
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT pending_extension IS NULL FROM cases WHERE id = :i"), {"i": case_id}).scalar()


@pytest.mark.parametrize("title", ["a\x00b", "bell\x07", "lone \udcff surrogate"])
def test_unprintable_text_is_a_field_error(db, title):
    before = db.snapshot()
    with pytest.raises(FieldError, match="unprintable character"):
        with db.sessions.begin() as s:
            _report(s, title=title)
    assert db.snapshot() == before


@pytest.mark.parametrize("value", [["urgent"], {"a": 1}, 3])
def test_an_enum_value_must_be_text(db, value):
    with db.sessions.begin() as s:
        case_id = _report(s).id
    with pytest.raises(FieldError, match="must be one value written as text"):
        with db.sessions.begin() as s:
            cases.fire(
                s,
                case_id,
                "classify",
                calendars=calendars(),
                actor_id=CENTER,
                fields={"category": "water_supply", "priority": value},
                at=T0,
            )


def test_a_broken_case_counter_is_a_database_error_on_both_back_ends(db, tmp_path):
    gf = Gridflow(Settings(home=tmp_path, database_url=db.url), clock=lambda: T0)
    try:
        gf.report(grid_id=GRID, actor_id=GRID_WORKER, fields={"title": "一"})
        with db.engine.begin() as conn:
            conn.execute(text("DELETE FROM case_counter"))
        with pytest.raises(DatabaseError, match=r"cases\.code|uq_cases_code"):
            gf.report(grid_id=GRID, actor_id=GRID_WORKER, fields={"title": "二"})
    finally:
        gf.close()


def test_huge_durations_are_refused():
    for text_ in ("99999999999999999999d", "10000h", "2d\n"):
        with pytest.raises(ValueError, match="1 to 9999"):
            parse_duration(text_)
    assert str(parse_duration("9999m")) == "9999m"


@pytest.mark.parametrize("url", ["foo://x", "mysql://root@127.0.0.1/x", "postgresql+psycopg2://u@127.0.0.1/x"])
def test_unsupported_database_urls_are_config_errors(url):
    with pytest.raises(ConfigError, match="bad database URL|unsupported database"):
        create_db_engine(url)


def test_a_reader_does_not_wait_for_a_sqlite_writer(tmp_path):
    db = sqlite_database(tmp_path / "g.db")
    db.reset(seed=True)
    gf = Gridflow(Settings(home=tmp_path, database_url=db.url), clock=lambda: T0)
    holder = sqlite3.connect(tmp_path / "g.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.perf_counter()
        with gf.transaction(write=False) as s:
            assert cases.list_cases(s) == []
        assert time.perf_counter() - started < 2
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        gf.close()
        db.engine.dispose()


def _home(path: Path) -> dict[str, str]:
    """A gridflow home whose clock starts at T0, whatever today is."""
    return {"GRIDFLOW_HOME": str(path), "GRIDFLOW_CLOCK_OFFSET_S": clock_offset(T0)}


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
    return subprocess.run(
        [str(GRIDFLOW), *args],
        env={**clean, **env, "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_shows_data_as_written_and_never_creates_files_on_read(tmp_path):
    home = _home(tmp_path / "home")
    assert _cli(home, "case", "list").returncode == 6
    assert not (tmp_path / "home").exists()
    assert _cli(home, "init").returncode == 0
    title = "管道[/]破裂 [red]红[/red]"
    made = _cli(home, "case", "report", "-g", GRID, "-a", GRID_WORKER, "-t", title)
    assert made.returncode == 0, made.stderr
    listed = _cli(home, "case", "list")
    assert listed.returncode == 0 and "[red]红[/red]" in listed.stdout and "管道[/]破裂" in listed.stdout
    shown = _cli(home, "case", "show", "[/]")
    assert shown.returncode == 3 and "no case '[/]'" in shown.stderr
    stale = _cli(home, "case", "fire", "SL-2026-000001", "void", "-a", CENTER, "--expect-version", "-1")
    assert stale.returncode == 2
    missing = _cli(home, "workflow", "show", "nothing.yaml")
    assert missing.returncode == 7 and "file not found: nothing.yaml" in missing.stderr


def test_cli_reports_a_bad_database_url_without_a_traceback(tmp_path):
    run = _cli({"GRIDFLOW_HOME": str(tmp_path), "GRIDFLOW_DATABASE_URL": "mysql://root@127.0.0.1/x"}, "case", "list")
    assert run.returncode == 7 and "unsupported database" in run.stderr and "Traceback" not in run.stderr


def test_cli_init_in_an_unwritable_home_says_so(tmp_path):
    run = _cli({"GRIDFLOW_HOME": "/proc/gridflow-cannot-be-here"}, "init")
    assert run.returncode == 7 and "set GRIDFLOW_HOME" in run.stderr and "Traceback" not in run.stderr


def test_stale_org_snapshot_is_not_served_after_a_reload(db):
    """Covered end to end in test_app; here: two threads reading while nothing changes agree."""
    results = []

    def read():
        with db.sessions.begin() as s:
            results.append(
                cases.report(
                    s, grid_id=GRID, calendars=calendars(), actor_id=GRID_WORKER, fields={"title": "并发"}, at=T0
                ).case.code
            )

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(set(results)) == 4


def test_calendar_check_fails_on_a_deadline_no_schedule_can_answer(tmp_path):
    home = _home(tmp_path)
    assert _cli(home, "init").returncode == 0
    assert _cli(home, "case", "report", "-g", GRID, "-a", GRID_WORKER, "-t", "远期").returncode == 0
    ok = _cli(home, "calendar", "check")
    assert ok.returncode == 0, ok.stderr
    with sqlite3.connect(tmp_path / "gridflow.db") as conn:
        conn.execute("UPDATE sla_clock SET due_at = '2150-01-01 00:00:00.000000' WHERE status = 'running'")
    bad = _cli(home, "calendar", "check")
    assert bad.returncode == 1 and "due in 2150, a year the calendar cannot answer" in bad.stderr
