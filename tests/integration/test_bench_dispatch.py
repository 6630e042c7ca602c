"""bench/dispatch.py --smoke: every notice goes out once through the real channels and the plain loops,
the storm folds into one digest, the report has its ratios, and nothing is left behind — the throwaway
databases are dropped and the server process stopped, also when a check fails or the run is interrupted.

It needs the local PostgreSQL server. The bench runs in this process; its SMTP server and SMS gateway
run in a child process of its own, on 127.0.0.1. Its notices happen on fixed dates (December 2026), not
today. Other runs may make ``gridflow_bench_*`` databases at the same time, so each test checks the
databases its own run made, by name.
"""

from __future__ import annotations

import json
import time

import psutil
import pytest

from bench import dispatch
from tests.bench_support import admin_url, bench_databases, record_databases

pytestmark = pytest.mark.postgres


def children() -> set[int]:
    """This process's live children, but multiprocessing's resource tracker: the first process started with
    "spawn" starts it, and it stays, one per process, until this process ends."""
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(child.cmdline()):
                found.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.fixture
def made(monkeypatch) -> list[str]:
    """The names of the throwaway databases the bench makes in this process."""
    return record_databases(monkeypatch, dispatch)


@pytest.fixture
def left_behind(pg_server, made):
    """After the test: what the bench's run left (its databases still there, child processes alive)."""
    before = children()

    def check() -> tuple[set[str], set[int]]:
        return set(made) & bench_databases(pg_server), children() - before

    return check


def test_the_dispatch_bench_smoke_sends_every_notice_once_and_reports_its_ratios(pg_server, made, left_behind, capsys):
    started = time.perf_counter()
    code = dispatch.main(["--smoke", "--json", "--admin-url", admin_url(pg_server)])
    took = time.perf_counter() - started
    out, err = capsys.readouterr()
    assert code == 0, err[-4000:]

    report = json.loads(out)
    assert report["smoke"] is True
    assert report["sizes"] == {**dispatch.DEFAULTS, **dispatch.SMOKE}
    checks = report["checks"]
    assert checks and all(c["pass"] for c in checks), [c for c in checks if not c["pass"]]
    whats = [c["what"] for c in checks]
    for part, plains in (("smtp", 2), ("http", 3)):  # http: the keep-alive loop also on as many connections
        assert f"{part}: round 1, dispatcher: each message arrived once" in whats
        p = report[part]
        assert (p["notices"], p["rounds"]) == (20, 1)
        assert len(p["sides"]) == 1 + plains and "gridflow" in p["sides"]
        for name, side in p["sides"].items():
            assert side["notices_per_s"] > 0 and side["ms_per_notice"] > 0, (part, name)
        steps = p["sides"]["gridflow"]["ms_per_notice_by_step"]
        assert set(steps) == {"claim", "load", "plan", "send", "record", "other"}
        # one round: the steps add up to the wall time, the batched writes counted in record
        assert abs(sum(steps.values()) - p["sides"]["gridflow"]["ms_per_notice"]) < 0.01, steps
        assert steps["record"] > 0.01, steps
        assert len(p["ratios"]) == plains and all(r > 0 for r in p["ratios"].values()), p["ratios"]
    # the reader sees how many connections and requests in flight the dispatcher used, and the plain side
    # that had as many
    wire = report["http"]["sides"]["gridflow"]["wire"]
    assert wire["workers"] == 4 and 1 <= wire["most_in_flight"] <= 4 and 1 <= wire["connections"], wire
    assert "plain http.client, keep-alive, 4 connections at once" in report["http"]["sides"]
    assert report["smtp"]["sides"]["gridflow"]["wire"]["workers"] == 1
    storm = report["storm"]
    assert storm["notices"] == 50 and storm["delivered_by_final_tick"] == 50
    assert storm["messages_within_span"] == 1 and storm["digests"] >= 1 and storm["gateway_rejected"] == 0
    assert storm["statuses"] == {"sent": 50}
    assert any(c["what"].startswith("storm target: at most 1 message") for c in checks)
    assert report["machine"]["postgresql"] and report["seconds_total"] > 0

    assert report["databases"] == made and len(made) == 2
    assert left_behind() == (set(), set())
    assert took < 60, f"the smoke run took {took:.1f} s"


def test_a_failed_check_fails_the_smoke_and_leaves_nothing_behind(pg_server, made, left_behind, monkeypatch, capsys):
    real_add = dispatch.Checks.add

    def add(self, what: str, ok: bool, detail: str = "") -> bool:
        return real_add(self, what, ok and not what.startswith("storm: every notice delivered"), detail)

    monkeypatch.setattr(dispatch.Checks, "add", add)
    code = dispatch.main(["--smoke", "--skip-throughput", "--json", "--admin-url", admin_url(pg_server)])
    out, err = capsys.readouterr()
    assert code == 1, err[-4000:]
    assert "bench: failed: storm: every notice delivered" in err
    assert json.loads(out)["databases"] == made and len(made) == 1
    assert left_behind() == (set(), set())


def test_an_interrupted_smoke_stops_its_servers_and_drops_its_database(
    pg_server, made, left_behind, monkeypatch, capsys
):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(dispatch, "smtp_part", interrupted)  # Ctrl-C once the servers and a database are up
    assert dispatch.main(["--smoke", "--admin-url", admin_url(pg_server)]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert len(made) == 1
    assert left_behind() == (set(), set())
