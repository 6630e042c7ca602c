"""bench/sla_sweep.py --smoke: every check of the sweep bench passes on tiny sizes, the report has its
ratios and the claim's EXPLAIN, and no throwaway database is left behind (normal end, error, SIGTERM).

It needs the local PostgreSQL server (the bench makes and drops databases of its own). The bench's
instant is fixed (Thursday 19 March 2026), so nothing here depends on today's date. Other runs may
make ``gridflow_bench_*`` databases at the same time (pytest-xdist, people running benches), so each
test checks the databases its own run made, by name.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import sla_sweep
from tests.bench_support import admin_url, bench_databases, record_databases

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60
pytestmark = pytest.mark.postgres


@pytest.fixture
def made(monkeypatch) -> list[str]:
    """The names of the throwaway databases the bench makes in this process."""
    return record_databases(monkeypatch, sla_sweep)


def test_the_sweep_bench_smoke_runs_every_check_and_reports_its_ratios(pg_server, made, capsys):
    started = time.perf_counter()
    # --check: a smoke run's tiny sizes miss the (c) target, which must not fail it.
    code = sla_sweep.main(["--smoke", "--explain", "--json", "--check", "--admin-url", admin_url(pg_server)])
    took = time.perf_counter() - started
    out, err = capsys.readouterr()
    assert code == 0, err[-4000:]

    report = json.loads(out)
    assert report["smoke"] is True and report["sizes"] == {**sla_sweep.DEFAULTS, **sla_sweep.SMOKE}
    backlog, hand = report["backlog"], report["hand_rolled"]
    assert backlog["ratio_large_over_small"] > 0 and backlog["target_ratio_at_most"] == 1.5
    for name in ("small", "large", "big_batch"):
        assert backlog[name]["timers_per_s"] > 0 and backlog[name]["fired_per_sweep"] > 0, name
    # Counted at the driver: one sla.* event per fired timer at least, written through the sweep's pipeline.
    assert backlog["small"]["statements_per_timer"] > 1 and backlog["large"]["statements_per_timer"] > 1
    for ratio in ("sweep", "claim", "tick", "idle"):
        assert hand[f"ratio_hand_rolled_over_{ratio}"] > 0, ratio
    assert hand["target_ratio_at_least"] == 50 and hand["due"] == sla_sweep.SMOKE["open_due"]
    assert [t["target"][:3] for t in report["targets"]] == ["(a)", "(c)"]
    # --explain: the engine's own claim, explained through the driver and rolled back.
    for label in ("small", "large"):
        plan = backlog["claim_plans"][label]
        assert plan[0].startswith("Update on sla_timer") and any("Execution Time" in line for line in plan), plan

    assert len(made) == 3 and all(re.fullmatch(r"gridflow_bench_[0-9a-f]{10}", n) for n in made), made
    assert not set(made) & bench_databases(pg_server)
    assert took < 60, f"the smoke run took {took:.1f} s: --smoke is meant to take seconds"


def test_without_explain_the_claim_is_not_explained(pg_server, made, capsys):
    assert sla_sweep.main(["--smoke", "--skip-open", "--json", "--admin-url", admin_url(pg_server)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backlog"]["claim_plans"] == {} and "hand_rolled" not in report
    assert len(made) == 2 and not set(made) & bench_databases(pg_server)


def test_a_failed_check_or_an_interrupt_still_drops_the_databases(pg_server, made, monkeypatch, capsys):
    def disagree(*_args, **_kwargs):
        raise sla_sweep.BenchError("the two sides disagree (a test)")

    monkeypatch.setattr(sla_sweep, "build_open", disagree)
    assert sla_sweep.main(["--smoke", "--skip-backlog", "--admin-url", admin_url(pg_server)]) == 2
    assert "the two sides disagree (a test)" in capsys.readouterr().err

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sla_sweep, "build_backlog", interrupted)
    assert sla_sweep.main(["--smoke", "--skip-open", "--admin-url", admin_url(pg_server)]) == 130
    assert len(made) == 2 and not set(made) & bench_databases(pg_server)


def test_sigterm_drops_the_databases(pg_server):
    """A kill in the middle of the run: the bench exits 130 and drops every database it made."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
    argv = [sys.executable, "-m", "bench.sla_sweep", "--smoke", "--skip-open", "--admin-url", admin_url(pg_server)]
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    names, lines = [], []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # "small: database gridflow_bench_…", then "large: database …"
            lines.append(line)
            if found := re.search(r"database (gridflow_bench_[0-9a-f]{10})", line):
                names.append(found.group(1))
                if len(names) == 2:  # the large one is being made: both exist now
                    proc.send_signal(signal.SIGTERM)
                    break
        rest = proc.communicate(timeout=TIMEOUT_S)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(names) == 2, "".join(lines)
    assert proc.returncode == 130, "".join(lines) + rest
    assert "interrupted; databases dropped" in rest
    assert not set(names) & bench_databases(pg_server)
