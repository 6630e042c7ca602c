"""bench/points.py --smoke: a January of household points recorded both ways writes the same rows, the
ledger checks hold, the report has its rates, ratio and periods, and the throwaway databases are
dropped, also when the two ways disagree.

It needs the local PostgreSQL server. The bench records on fixed dates (January 2026), not today.
Other runs may make ``gridflow_bench_*`` databases at the same time, so each test checks the databases
its own run made, by name.
"""

from __future__ import annotations

import json
import time

import pytest

from bench import points
from tests.bench_support import admin_url, bench_databases, record_databases

pytestmark = pytest.mark.postgres


@pytest.fixture
def made(monkeypatch) -> list[str]:
    """The names of the throwaway databases the bench makes in this process."""
    return record_databases(monkeypatch, points)


def test_the_points_bench_smoke_checks_the_ledger_and_reports_its_figures(pg_server, made, capsys):
    started = time.perf_counter()
    # --check with the targets: a smoke run prints them and does not enforce them.
    code = points.main(["--smoke", "--json", "--check", "--admin-url", admin_url(pg_server)])
    took = time.perf_counter() - started
    out, err = capsys.readouterr()
    assert code == 0, err[-4000:]

    report = json.loads(out)
    assert report["smoke"] is True
    assert report["households"] == points.SMOKE["households"] and report["seed"] == points.DEFAULTS["seed"]
    year = report["record_many"]
    assert year["days"] == 31 and year["sheets"] > 31 and year["entries_recorded"] > 0
    assert year["entries_per_s"] > 0 and 0 < year["sheet_ms_median"] <= year["sheet_ms_p95"]
    assert year["items_offered"] == year["entries_recorded"] + year["duplicates"] + sum(year["refused"].values())
    assert year["duplicates"] > 0  # the sheet submitted twice on the 15th
    assert year["redemptions"] > 0 and year["approved"] + year["rejected"] > 0  # the month's end, the mornings
    sample = report["sample"]
    assert sample["record_many"]["days"] == sample["one_by_one"]["days"] == points.SMOKE["sample_days"]
    assert sample["record_many"]["entries_recorded"] == sample["one_by_one"]["entries_recorded"] > 0
    assert sample["ratio_record_many_over_one_by_one"] > 0
    checked = report["checked"]
    assert checked["balances"] == points.SMOKE["households"]
    assert checked["ledger_kinds"]["redeem"] == year["redemptions"]
    evaluation = report["evaluation"]
    assert [m["period"] for m in evaluation["months"]] == [f"2026-{m:02d}" for m in range(1, 13)]
    assert evaluation["months"][0]["with_award"] > 0 and evaluation["year"]["households"] > 0
    assert "participation" in evaluation["score_period_december"]
    assert {text for text, _ok in points.verdicts(report)}  # the targets can be judged on a smoke report
    assert report["machine"]["autovacuum"] in ("on", "off")

    assert report["databases"] == made and len(made) == 2
    assert not set(made) & bench_databases(pg_server)
    assert took < 60, f"the smoke run took {took:.1f} s"


def test_when_the_two_ways_disagree_the_smoke_fails_and_drops_its_databases(pg_server, made, monkeypatch, capsys):
    real = points.one_by_one

    def one_short(session, items, at):  # the one-by-one side leaves out each sheet's last item
        return real(session, items[:-1], at)

    monkeypatch.setattr(points, "one_by_one", one_short)
    assert points.main(["--smoke", "--json", "--admin-url", admin_url(pg_server)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "record_many and ledger.record one by one wrote different entries" in err
    assert len(made) == 2 and not set(made) & bench_databases(pg_server)
