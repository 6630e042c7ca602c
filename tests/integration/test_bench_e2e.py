"""bench/e2e_latency.py --smoke: every scenario's timers fire exactly once through the real runtime
(Celery worker and beat on PostgreSQL and a private Redis, ``gridflow up`` on SQLite), the report has
its lateness, burst times and ratios, and nothing is left behind: no database, no temporary directory,
no process — also when the run is stopped with SIGTERM in the middle.

It needs the local PostgreSQL server and the ``redis-server`` program (the bench starts its own on a
spare loopback port). The bench runs as an operator runs it, a process of its own bounded by a timeout;
every process it starts inherits ``BENCH_RUN_ID`` (a fresh value per test; the bench knows nothing of
it) and ``TMPDIR`` (a directory of the test's), which is how the test finds what outlived it. The timers are laid relative to the
clock the bench and its processes share, so the date does not matter.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from tests import support
from tests.bench_support import bench_databases
from tests.runtime_support import wait_for

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 180
pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def run(pg_server, tmp_path: Path) -> dict:
    """The environment of one bench process; afterwards the processes, directories and databases it left."""
    if shutil.which("redis-server") is None:
        support.service_unavailable("redis-server", FileNotFoundError("redis-server is not on PATH"))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
    env.update(
        GRIDFLOW_BENCH_PG_ADMIN_URL=pg_server.admin.url.render_as_string(hide_password=False),
        BENCH_RUN_ID=uuid.uuid4().hex,
        TMPDIR=str(tmp),
        COLUMNS="400",  # one line per message
    )
    state = {"env": env, "tmp": tmp, "stderr": tmp_path / "stderr.txt"}
    yield state
    for proc in marked(env["BENCH_RUN_ID"]):  # a failed test still ends what the bench left
        proc.kill()


def marked(mark: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and proc.environ().get("BENCH_RUN_ID") == mark:
                found.append(proc)
        except psutil.Error:  # gone, or not ours to read
            pass
    return found


def left_behind(pg_server, run: dict, databases: set[str]) -> dict:
    return {
        "processes": [" ".join(p.cmdline())[:200] for p in marked(run["env"]["BENCH_RUN_ID"])],
        "files": sorted(p.name for p in run["tmp"].iterdir()),
        "databases": sorted(databases & bench_databases(pg_server)),
    }


NOTHING = {"processes": [], "files": [], "databases": []}


def test_the_e2e_bench_smoke_fires_every_timer_once_in_every_runtime(pg_server, run) -> None:
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.e2e_latency", "--smoke", "--json", "--check"],
            cwd=REPO, env=run["env"], capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"bench.e2e_latency --smoke took more than {TIMEOUT_S} s:\n{exc.stderr}")
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-4000:]

    report = json.loads(done.stdout)
    assert report["smoke"] is True
    sizes = report["sizes"]
    spread, burst, embedded = report["spread"], report["burst"], report["embedded"]
    runs = [spread["precise"], spread["sweep_only"], embedded["spread"]]
    for r in runs:
        assert r["timers"] == r["fired"] == r["events"] == sizes["spread"] and r["exactly_once"], r
        assert r["outbox"] == 3 * r["timers"] and r["lost"] == r["duplicates"] == 0
        late = r["lateness_s"]
        assert late["p50"] is not None and late["p50"] <= late["p99"] <= late["max"]
        assert r["observed_lateness_s"]["p99"] is not None
    assert spread["p99_ratio_sweep_only_over_precise"] > 0
    for r, n in ((burst["runtime"], sizes["burst"]), (embedded["burst"], sizes["embedded_burst"])):
        assert r["timers"] == r["fired"] == n and r["exactly_once"] and r["burst_s"] > 0, r
        assert r["worker_rss_mb"]["peak"] > 0
    limit = burst["limit"]
    assert limit["timers"] == limit["sweep_report"]["fired"] == sizes["burst"] and limit["exactly_once"]
    assert burst["ratio_runtime_over_limit"] > 0
    for key in ("spread", "burst"):
        stop = embedded[key]["stop"]
        assert stop["signal"] == "SIGINT" and stop["exited"] and stop["exit"] == 0, stop
    verdicts = report["verdicts"]
    assert all(v["pass"] for v in verdicts if not v["target"]), verdicts
    assert sum(v["target"] for v in verdicts) == 4  # p99 and burst time, production and embedded
    assert report["machine"]["postgresql"] and report["machine"]["redis"]

    databases = set(report["databases"])
    assert len(databases) == 4  # two spreads, the burst and the limit
    assert left_behind(pg_server, run, databases) == NOTHING
    assert took < 90, f"the smoke run took {took:.0f} s"


def test_a_smoke_stopped_by_sigterm_midway_leaves_nothing_behind(pg_server, run) -> None:
    with run["stderr"].open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.e2e_latency", "--smoke"],
            cwd=REPO, env=run["env"], stdout=subprocess.DEVNULL, stderr=stderr, text=True,
        )  # fmt: skip
        try:
            # Stopped once the first runtime is up and its timers are laid, with the other scenarios starting.
            wait_for(
                "the first spread's timers",
                lambda: "spread-precise: laid" in run["stderr"].read_text() or proc.poll() is not None,
                timeout=120,
            )
            assert proc.poll() is None, run["stderr"].read_text()[-4000:]
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    err = run["stderr"].read_text()
    assert code == 130, err[-4000:]
    assert "bench: interrupted" in err

    databases = set(re.findall(r"database (gridflow_bench_[0-9a-f]+)", err))
    assert databases  # the names the bench announced
    assert left_behind(pg_server, run, databases) == NOTHING


def test_a_failed_check_fails_any_run_and_a_missed_target_only_under_check(capsys):
    from argparse import Namespace

    from bench import e2e_latency

    check = {"what": "every notice delivered once", "pass": False, "target": False}
    target = {"what": "p99 ≤ 3 s", "pass": False, "target": True}
    full = Namespace(smoke=False, check=False)
    assert e2e_latency.exit_status({"verdicts": [check]}, full) == 1  # was 0 outside --smoke
    assert e2e_latency.exit_status({"verdicts": [target]}, full) == 0
    assert e2e_latency.exit_status({"verdicts": [target]}, Namespace(smoke=False, check=True)) == 1
    assert e2e_latency.exit_status({"verdicts": [target]}, Namespace(smoke=True, check=True)) == 0
    assert "every notice delivered once" in capsys.readouterr().err
