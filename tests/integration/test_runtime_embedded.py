"""`gridflow up` on the embedded default, as a user runs it: SQLite database, SQLite broker, worker
and beat in one process; the CLI works beside it; notices reach the console and the file; Ctrl-C
stops it cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta

import psutil

from tests import runtime_support as rt
from tests.support import T0


def test_gridflow_up_fires_dispatches_and_stops_on_ctrl_c(tmp_path):
    home = tmp_path / "home"
    env = rt.environment(home, "", "", now=T0)
    rt.init(env)
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen(
        [sys.executable, "-m", "gridflow", "up"], env=env, cwd=rt.ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        output = lambda: (tmp_path / "up.log").read_text(encoding="utf-8", errors="replace")  # noqa: E731
        rt.wait_for("gridflow up to be ready", lambda: "ready." in output() or up.poll() is not None, timeout=60)
        assert up.poll() is None, output()
        assert len(psutil.Process(up.pid).children(recursive=True)) == 0, "one process: no pool or beat children"
        start = rt.now(env) + timedelta(seconds=2)
        rt.lay_timers(env, "up", [start + timedelta(milliseconds=10 * i) for i in range(100)])
        reported = rt.cli(["case", "report", "-g", rt.GRID, "-a", rt.REPORTER, "-t", "运行中上报"], env, process=True)
        assert reported.returncode == 0, reported.stderr
        rt.wait_for("every timer to fire", lambda: rt.tally(env, "up").fired == 100, timeout=60)
        expected = 100 * rt.NOTICES_PER_TIMER + 1  # and the receipt of the case reported from the CLI
        rt.wait_for("the notices", lambda: len(rt.delivered(env)) >= expected, 60)
        result = rt.tally(env, "up")
        assert result.exactly_once, result
        assert max(result.lateness_s) < 3, sorted(result.lateness_s)[-5:]
        delivered = rt.delivered(env)
        assert len(set(delivered)) == len(delivered) == expected
        up.send_signal(signal.SIGINT)
        began = time.monotonic()
        assert up.wait(timeout=30) == 0, output()
        assert time.monotonic() - began < 20
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        log.close()
    text = output()
    assert "SLA fired" in text and "notices:" in text and "📨" in text, text[-2000:]
    assert "Traceback" not in text, text


def test_ctrl_c_during_a_backlog_stops_within_seconds(tmp_path):
    """A sweep in `gridflow up` stops between batches when asked to, so a warm shutdown never waits on it."""
    home = tmp_path / "home"
    env = rt.environment(home, "", "", now=T0, GRIDFLOW_TASK_BUDGET_S="2")
    rt.init(env)
    rt.lay_timers(env, "backlog", [rt.now(env) - timedelta(seconds=1)] * 20_000)
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen(
        [sys.executable, "-m", "gridflow", "up"], env=env, cwd=rt.ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        output = lambda: (tmp_path / "up.log").read_text(encoding="utf-8", errors="replace")  # noqa: E731
        rt.wait_for("the backlog to be under way", lambda: rt.tally(env, "backlog").fired >= 500, 90, every=0.05)
        assert rt.tally(env, "backlog").fired < 20_000, "the backlog was gone before the stop: nothing tested"
        up.send_signal(signal.SIGINT)
        began = time.monotonic()
        assert up.wait(timeout=30) == 0, output()
        assert time.monotonic() - began < 12, f"stopped after {time.monotonic() - began:.1f} s"
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        log.close()
    result = rt.tally(env, "backlog")
    assert result.duplicate_events == 0 and result.events == result.fired
