"""bench/transitions.py --smoke: the engine and plain SQL write the same rows, every timed case is
verified, the report has its ratios, and the throwaway database is dropped, also when a check fails.

It needs the local PostgreSQL server (the bench makes and drops a database of its own). The bench's
cases happen on fixed dates (March 2026), not today. Other runs may make ``gridflow_bench_*``
databases at the same time, so each test checks the database its own run made, by name.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager

import pytest
from sqlalchemy import text

from bench import transitions

pytestmark = pytest.mark.postgres


def admin_url(pg_server) -> str:
    return pg_server.admin.url.render_as_string(hide_password=False)


def bench_databases(pg_server) -> set[str]:
    with pg_server.admin.connect() as conn:
        rows = conn.execute(text("SELECT datname FROM pg_database WHERE datname LIKE 'gridflow\\_bench\\_%'"))
        return {name for (name,) in rows}


@pytest.fixture
def made(monkeypatch) -> list[str]:
    """The names of the throwaway databases the bench makes in this process."""
    names: list[str] = []
    real = transitions.throwaway_database

    @contextmanager
    def recorded(admin):
        with real(admin) as url:
            names.append(url.database)
            yield url

    monkeypatch.setattr(transitions, "throwaway_database", recorded)
    return names


def test_the_transitions_bench_smoke_checks_its_rows_and_reports_its_ratios(pg_server, made, capsys):
    started = time.perf_counter()
    # --min-ratio far above any machine's: a smoke run does not enforce it.
    code = transitions.main(["--smoke", "--json", "--min-ratio", "1000", "--admin-url", admin_url(pg_server)])
    took = time.perf_counter() - started
    out, err = capsys.readouterr()
    assert code == 0, err[-4000:]

    report = json.loads(out)
    assert report["smoke"] is True
    assert (report["cases_per_round"], report["rounds"]) == (transitions.SMOKE_CASES, 1)
    assert report["ratio_engine_over_plain"] > 0 and report["ratio_engine_sla_over_engine"] > 0
    assert report["target_ratio"] == 0.5 and report["min_ratio"] == 1000
    for side in transitions.SIDES:
        row = report[side]
        assert row["cases_per_s"] > 0 and len(row["rounds_cases_per_s"]) == 1, side
        assert sum(row["statements_per_step"].values()) == row["statements_per_lifecycle"] > 0, side
    assert report["plain"]["statements_per_lifecycle"] == 2 * transitions.STEPS + 2  # counter, case, events

    assert len(made) == 1 and made[0].startswith("gridflow_bench_")
    assert not set(made) & bench_databases(pg_server)
    assert took < 60, f"the smoke run took {took:.1f} s: --smoke is meant to take seconds"


def test_a_plain_side_that_writes_other_rows_fails_the_smoke_and_drops_the_database(
    pg_server, made, monkeypatch, capsys
):
    wrong = transitions.INSERT_CASE.replace("'grid_worker', 0, 0,", "'grid_worker', 1, 0,")  # rework_count 1
    assert wrong != transitions.INSERT_CASE
    monkeypatch.setattr(transitions, "INSERT_CASE", wrong)

    assert transitions.main(["--smoke", "--json", "--admin-url", admin_url(pg_server)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "plain SQL and the engine wrote different rows" in err
    assert len(made) == 1 and not set(made) & bench_databases(pg_server)


def test_an_incomplete_batch_fails_the_smoke(pg_server, made, monkeypatch, capsys):
    steps = transitions.LIFECYCLE

    def short_lifecycle(self):  # the plain side stops at resolved: its cases never reach verified
        case_id = self.report(steps[0])
        for index, step in enumerate(steps[1:-1], start=1):
            self.fire(case_id, index, step)
        return case_id

    monkeypatch.setattr(transitions, "check_same_rows", lambda *a: None)  # let it past the row comparison
    monkeypatch.setattr(transitions.PlainClient, "lifecycle", short_lifecycle)

    assert transitions.main(["--smoke", "--admin-url", admin_url(pg_server)]) == 2
    assert "batch incomplete" in capsys.readouterr().err
    assert len(made) == 1 and not set(made) & bench_databases(pg_server)
