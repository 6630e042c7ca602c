"""Benchmark: the real runtime end to end — how late timers fire, and how fast a burst drains.

Real processes, real servers, loopback only. Each scenario gets a fresh database (a throwaway
``gridflow_bench_<hex>`` on the local PostgreSQL server, or a fresh SQLite home) and fresh
runtime processes; everything is stopped, dropped and removed at the end, also after an error
or Ctrl-C. Timers are laid with ``tests/runtime_support.lay_timers``: one case, one running
clock and one pending reminder per timer, which must end as exactly one ``sla.reminder`` event
and three outbox rows.

1. **Spread** (production mode: PostgreSQL, a private Redis, ``celery -A tasks worker`` prefork
   concurrency 2 and ``celery -A tasks beat``). ``--spread`` timers (default 10,000) fall due
   evenly over ``--span`` seconds (default 60), the first ``--lead`` seconds (15) after the
   processes are ready. Run twice, side by side: precise firing on (the default horizon of
   5 s) and off (horizon 0: the sweep alone); the sweep runs every 2 s in both. Lateness is
   the stored ``fired_at − fire_at`` of every timer, and, as a check on it, the moment a poll
   (every 0.25 s) first saw the timer fired. Targets: p99 ≤ 2 s, no duplicates, none lost
   (still unfired ``--spread-grace`` seconds after the last one fell due).
2. **Burst**: ``--burst`` timers (default 100,000), laid a day ahead before the processes
   start, are moved (one UPDATE) to fall due all at one instant ``--burst-lead`` seconds later;
   the time from that instant until none is pending (polled every 0.2 s) is the burst time
   (target ≤ 60 s). The worker's memory is sampled every 0.2 s (sum of RSS over its process
   tree). The limit, side by side: the same burst on an identical fresh database, fired by one
   in-process ``Gridflow(settings).sweep(at)`` (one process, no Celery).
3. **Embedded default**: the same spread and a burst of ``--embedded-burst`` timers through
   ``python -m gridflow up`` (one process: worker threads and beat on SQLite, SQLite broker),
   stopped with SIGINT at the end (it must exit within 15 s).

Run it from the project root::

    .venv/bin/python -m bench.e2e_latency              # the sizes of issue 4 (about 15 minutes)
    .venv/bin/python -m bench.e2e_latency --quick      # small sizes, under two minutes
    .venv/bin/python -m bench.e2e_latency --smoke --json   # tiny sizes, every check (the test suite)
    .venv/bin/python -m bench.e2e_latency --json --check --keep-logs /tmp/e2e-logs

``--smoke`` (run by the test suite, ``tests/integration/test_bench_e2e.py``): every scenario with a
few dozen timers, the six of them side by side (each still on its own database and processes; the
figures of a smoke run mean nothing), so it takes seconds, not minutes. Every check runs and fails
the run (exit 1): no timer lost or fired twice, three outbox rows each, ``gridflow up`` exits on
SIGINT; the targets (p99, burst time) are printed but not enforced, ``--check`` included.

Every process the run starts carries ``BENCH_E2E_RUN=<a fresh id>`` in its environment; at the end
any of them still alive is killed (after the runtime processes were stopped, before the databases are
dropped), a Celery pool process whose parent died included. The report lists the databases
(``databases``).

Exit status: 0 done; 1 a check failed (any run), or a target missed under ``--check`` (or a crash,
with its traceback); 2 bad arguments or no server; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, bench/ would come first on sys.path and bench/transitions.py would be
# imported in place of the ``transitions`` library the engine uses.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import psycopg  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy import func, select, update  # noqa: E402

from bench.transitions import (  # noqa: E402
    ADMIN_URL_ENV,
    DEFAULT_ADMIN_URL,
    BenchError,
    admin_url,
    cpu_model,
    psycopg_conninfo,
    sigterm_as_interrupt,
    throwaway_database,
)
from engine.store.models import SlaTimer  # noqa: E402
from gridflow.app import Gridflow  # noqa: E402
from tests import runtime_support as rt  # noqa: E402
from tests.servers import RedisInstance, ServerUnavailable, server_environment  # noqa: E402

# The product's defaults (tests/runtime_support.py speeds them up for the fault tests; not here).
PRODUCT_ENV = {
    "GRIDFLOW_SWEEP_INTERVAL_S": "2",
    "GRIDFLOW_SWEEP_LEASE_S": "120",
    "GRIDFLOW_DISPATCH_INTERVAL_S": "2",
    "GRIDFLOW_JOBS_CATCH_UP_S": "600",
    "GRIDFLOW_SWEEP_BATCH": "500",
    "GRIDFLOW_WORKER_CONCURRENCY": "2",
}
PRECISE_HORIZON_S = "5"  # the default; 0 turns precise firing off
TARGET_P99_S = 2.0
TARGET_BURST_S = 60.0
STOP_WITHIN_S = 15.0  # `gridflow up` after SIGINT
WARM_STOP_S = 30.0  # a Celery worker or beat after SIGTERM to its main process
READY_TIMEOUT_S = 90.0
SPREAD_POLL_S = 0.25
BURST_POLL_S = 0.2
MEMORY_EVERY_S = 0.2
SETTLE_S = 2.0  # after the last timer fired: a few more ticks, so a late duplicate would show
BURST_IDLE_S = 3.0  # from the runtime being ready to the idle RSS sample (smoke: 1 s)
RUN_MARK = "BENCH_E2E_RUN"  # a fresh id, inherited by every process a run starts (rt strips GRIDFLOW_*)
JOIN_S = 60.0  # smoke: how long the scenarios' threads get to stop after an error or Ctrl-C

DEFAULTS = {
    "spread": 10_000,
    "span": 60.0,
    "lead": 15.0,
    "spread_grace": 120.0,
    "burst": 100_000,
    "burst_lead": 5.0,
    "burst_timeout": 300.0,
    "embedded_burst": 100_000,
}
QUICK = {
    "spread": 1_000,
    "span": 10.0,
    "lead": 6.0,
    "spread_grace": 30.0,
    "burst": 5_000,
    "burst_timeout": 60.0,
    "embedded_burst": 5_000,
}
SMOKE = {
    "spread": 20,
    "span": 1.0,
    "lead": 3.0,
    "spread_grace": 20.0,
    "burst": 50,
    "burst_lead": 2.0,
    "burst_timeout": 30.0,
    "embedded_burst": 50,
}
LIMITS = {  # every loop and every table is bounded by these
    "spread": (1, 100_000),
    "span": (1.0, 600.0),
    "lead": (3.0, 120.0),
    "spread_grace": (5.0, 900.0),
    "burst": (1, 500_000),
    "burst_lead": (2.0, 60.0),
    "burst_timeout": (10.0, 1800.0),
    "embedded_burst": (1, 500_000),
}
HELPS = {
    "spread": "timers in each spread",
    "span": "seconds the spread's timers fall due over",
    "lead": "seconds from the processes being ready to the first timer of a spread",
    "spread_grace": "seconds after the spread's last timer fell due before the rest count as lost",
    "burst": "timers due at one instant in the production burst (and the in-process limit)",
    "burst_lead": "seconds from moving the burst's timers to the instant they fall due",
    "burst_timeout": "seconds after the burst's instant before the rest count as lost",
    "embedded_burst": "timers in the embedded burst (SQLite)",
}


# -- small helpers -----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def wall() -> datetime:
    return datetime.now(UTC)


ABORT = threading.Event()  # smoke: a scenario failed or the run was interrupted; the others stop


def pause(seconds: float) -> None:
    """Sleep, unless the run is being stopped."""
    if ABORT.wait(seconds):
        raise BenchError("stopped: another scenario failed or the run was interrupted")


def wait_until(check: Callable[[], bool], deadline: float, every: float) -> bool:
    """Poll check() until it holds or the monotonic deadline passes; whether it held."""
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        pause(every)


class MemorySampler:
    """Sum of RSS over a process and its descendants, every ``every`` seconds, in a thread."""

    def __init__(self, pid: int, every: float = MEMORY_EVERY_S):
        self.pid, self.every = pid, every
        self.peak = 0
        self.samples = 0
        self.processes_max = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)

    def tree_rss(self) -> int:
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        self.processes_max = max(self.processes_max, len(procs))
        return total

    def start(self) -> MemorySampler:
        self.baseline = self.tree_rss()
        self.peak = self.baseline
        self._thread.start()
        return self

    def reset_peak(self) -> int:
        """Start a new phase: the peak is taken from now on; returns the RSS now."""
        now = self.tree_rss()
        self.peak = now
        return now

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            rss = self.tree_rss()
            if rss == 0:
                return  # the process is gone
            self.samples += 1
            self.peak = max(self.peak, rss)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


def mb(n: int) -> float:
    return round(n / 2**20, 1)


# -- the runtime under test --------------------------------------------------------------------

LOG_ERROR = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback")
LOG_WARNING = re.compile(r"\bWARNING\b")


def scan_log(text: str) -> dict[str, Any]:
    errors = [line for line in text.splitlines() if LOG_ERROR.search(line)]
    warnings = [line for line in text.splitlines() if LOG_WARNING.search(line) and "SecurityWarning" not in line]
    return {
        "errors": len(errors),
        "warnings": len(warnings),
        "error_lines": list(dict.fromkeys(line[:240] for line in errors))[:5],
        "warning_lines": list(dict.fromkeys(line[:240] for line in warnings))[:5],
        "expired_tasks": len(re.findall(r"expired", text)),
    }


_STARTED: list[rt.Proc] = []  # every runtime process this run started; none may outlive it


def _started(proc: rt.Proc) -> rt.Proc:
    _STARTED.append(proc)
    return proc


def kill_leftovers() -> None:
    """SIGKILL the process group of any runtime process still running (after an error or Ctrl-C)."""
    for proc in _STARTED:
        if proc.popen.poll() is None:
            try:
                proc.kill()
            except (OSError, subprocess.TimeoutExpired):
                pass


def marked(mark: str) -> list[psutil.Process]:
    """The live processes (other than this one) whose environment carries ``RUN_MARK=mark``: the ones
    this run started and their children (a Celery pool process whose parent died, say)."""
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and proc.environ().get(RUN_MARK) == mark:
                found.append(proc)
        except psutil.Error:  # gone, or not ours to read
            pass
    return found


def kill_marked(mark: str) -> int:
    """SIGKILL whatever of this run is still alive; how many there were."""
    left = marked(mark)
    for proc in left:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(left, timeout=10)
    return len(left)


class Production:
    """One worker (prefork, concurrency 2) and one beat, as `celery -A tasks ...` process groups."""

    name = "production"

    def __init__(self, env: dict[str, str], logdir: Path, label: str):
        self.env, self.logdir, self.label = env, logdir, label
        self.procs: list[rt.Proc] = []
        self.stopped: dict[str, Any] = {}

    def start(self) -> None:
        self.worker = _started(rt.worker(f"{self.label}-worker", self.env, self.logdir, concurrency=2, pool="prefork"))
        self.procs.append(self.worker)
        self.beat = _started(rt.beat(f"{self.label}-beat", self.env, self.logdir))
        self.procs.append(self.beat)
        self.worker.wait_ready("ready.", timeout=READY_TIMEOUT_S)
        self.beat.wait_ready("beat: Starting", timeout=READY_TIMEOUT_S)

    @property
    def pid(self) -> int:
        return self.worker.popen.pid

    def alive(self) -> bool:
        return all(p.popen.poll() is None for p in self.procs)

    def stop(self) -> None:
        for proc in reversed(self.procs):  # beat first: no new work while the worker winds down
            if proc.name in self.stopped:
                continue
            # SIGTERM to the main process only (Celery's warm shutdown: the pool's children finish
            # their tasks); the whole group is signalled only if it is not gone within 30 s.
            began, popen = time.monotonic(), proc.popen
            if popen.poll() is None:
                popen.send_signal(signal.SIGTERM)
                try:
                    popen.wait(timeout=WARM_STOP_S)
                except subprocess.TimeoutExpired:
                    pass
            warm = popen.poll() is not None
            code = proc.stop(timeout=15)
            self.stopped[proc.name] = {
                "signal": "SIGTERM",
                "warm_within_s": WARM_STOP_S,
                "exited": warm,  # False: still running after WARM_STOP_S, so its group got SIGTERM (then SIGKILL)
                "exit": code,
                "seconds": round(time.monotonic() - began, 1),
            }

    def logs(self) -> dict[str, str]:
        return {p.name: p.log() for p in self.procs}


class Embedded:
    """`python -m gridflow up`: worker threads and beat in one process (SQLite, SQLite broker)."""

    name = "embedded"

    def __init__(self, env: dict[str, str], logdir: Path, label: str):
        self.env, self.logdir, self.label = env, logdir, label
        self.proc: rt.Proc | None = None
        self.stopped: dict[str, Any] = {}

    def start(self) -> None:
        self.proc = _started(
            rt.Proc(f"{self.label}-up", [sys.executable, "-m", "gridflow", "up"], self.env, self.logdir)
        )
        self.proc.wait_ready("ready.", timeout=READY_TIMEOUT_S)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.popen.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.popen.poll() is None

    def stop(self) -> None:
        """SIGINT (Ctrl-C) to the process; it must exit within STOP_WITHIN_S, else it is killed."""
        if self.proc is None or self.stopped:
            return
        popen = self.proc.popen
        began = time.monotonic()
        if popen.poll() is None:
            popen.send_signal(signal.SIGINT)
            try:
                popen.wait(timeout=STOP_WITHIN_S)
            except subprocess.TimeoutExpired:
                pass
        seconds = time.monotonic() - began
        exited = popen.poll() is not None
        if not exited:
            self.proc.kill()  # SIGKILL to its process group
        else:
            self.proc.stop(timeout=5)  # closes the log
        self.stopped = {
            "signal": "SIGINT",
            "exited_within_s": STOP_WITHIN_S,
            "exited": exited,
            "exit": popen.returncode,
            "seconds": round(seconds, 1),
        }

    def logs(self) -> dict[str, str]:
        return {self.proc.name: self.proc.log()} if self.proc else {}


@contextmanager
def running(runtime: Production | Embedded) -> Iterator[Production | Embedded]:
    try:
        runtime.start()
        yield runtime
    finally:
        runtime.stop()


# -- database probes ---------------------------------------------------------------------------


class Probe:
    """Read-only queries on one scenario's database (PostgreSQL or SQLite), through the engine."""

    def __init__(self, env: dict[str, str], tag: str):
        self.gf = Gridflow(rt.settings_of(env))
        self.ours = SlaTimer.dedupe_key.like(f"rt:{tag}:%")

    def close(self) -> None:
        self.gf.close()

    def fire_times(self) -> dict[int, datetime]:
        with self.gf.transaction(write=False) as session:
            return dict(session.execute(select(SlaTimer.id, SlaTimer.fire_at).where(self.ours)).all())

    def fired_ids(self) -> list[int]:
        with self.gf.transaction(write=False) as session:
            return list(session.scalars(select(SlaTimer.id).where(self.ours, SlaTimer.status == "fired")))

    def pending(self, due_by: datetime) -> int:
        """Our pending timers due by ``due_by`` (the partial index on pending timers serves it)."""
        with self.gf.transaction(write=False) as session:
            return int(
                session.scalar(
                    select(func.count()).where(SlaTimer.status == "pending", SlaTimer.fire_at <= due_by, self.ours)
                )
            )

    def move_all(self, at: datetime) -> None:
        """Every pending timer of ours falls due at ``at`` (one UPDATE, one transaction)."""
        with self.gf.transaction() as session:
            session.execute(
                update(SlaTimer).where(self.ours, SlaTimer.status == "pending").values(fire_at=at),
                execution_options={"synchronize_session": False},
            )


def checks(t: rt.Tally) -> dict[str, Any]:
    return {
        "timers": t.timers,
        "fired": t.fired,
        "lost": t.timers - t.fired,
        "pending": t.pending,
        "events": t.events,
        "duplicate_events": t.duplicate_events,
        "extra_events": t.events - t.fired,
        "outbox": t.outbox,
        "outbox_mismatch": t.outbox - t.fired * rt.NOTICES_PER_TIMER,
        "cases_short_of_notices": t.cases_short_of_notices,
        "exactly_once": t.exactly_once,
        "duplicates": t.duplicate_events + max(0, t.events - t.fired),
    }


def late_stats(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": rounded(percentile(values, 50)),
        "p99": rounded(percentile(values, 99)),
        "max": rounded(max(values) if values else None),
        "min": rounded(min(values) if values else None),
    }


# -- scenarios ---------------------------------------------------------------------------------


TAG_SPREAD, TAG_BURST = "spread", "burst"


def run_spread(
    runtime: Production | Embedded, env: dict[str, str], args: argparse.Namespace, say: Callable[[str], None]
) -> dict[str, Any]:
    n, span, lead = args.spread, args.span, args.lead
    probe = Probe(env, TAG_SPREAD)
    try:
        with running(runtime):
            sampler = MemorySampler(runtime.pid).start()
            try:
                first = wall() + timedelta(seconds=lead)
                step = timedelta(seconds=span / n)
                fire_at = [first + i * step for i in range(n)]
                began = time.monotonic()
                rt.lay_timers(env, TAG_SPREAD, fire_at)
                lay_s = time.monotonic() - began
                margin = (first - wall()).total_seconds()
                say(f"  {runtime.label}: laid {n:,} timers in {lay_s:.1f} s; the first falls due in {margin:.1f} s")
                due = probe.fire_times()
                last = max(due.values())
                seen: dict[int, datetime] = {}
                deadline = time.monotonic() + (last - wall()).total_seconds() + args.spread_grace

                def poll() -> bool:
                    if not runtime.alive():
                        raise BenchError(f"{runtime.label}: a runtime process exited during the spread")
                    at = wall()
                    for timer_id in probe.fired_ids():
                        seen.setdefault(timer_id, at)
                    return len(seen) >= len(due)

                done = wait_until(poll, deadline, SPREAD_POLL_S)
                if done:
                    pause(SETTLE_S)
                else:
                    say(f"  {runtime.label}: {len(due) - len(seen):,} timers still unfired at the timeout")
            finally:
                sampler.stop()
        tally = rt.tally(env, TAG_SPREAD)
    finally:
        probe.close()
    observed = [(at - due[i]).total_seconds() for i, at in seen.items() if i in due]
    result = {
        "timers": n,
        "span_s": span,
        "lay_s": round(lay_s, 1),
        "first_due_after_laying_s": round(margin, 1),
        "lateness_s": late_stats(tally.lateness_s),
        "observed_lateness_s": late_stats(observed),
        "all_fired": done,
        **checks(tally),
        "worker_rss_mb": {"baseline": mb(sampler.baseline), "peak": mb(sampler.peak)},
        "stop": runtime.stopped,
        "logs": {name: scan_log(text) for name, text in runtime.logs().items()},
    }
    say(
        f"  {runtime.label}: p50 {result['lateness_s']['p50']} s, p99 {result['lateness_s']['p99']} s, "
        f"max {result['lateness_s']['max']} s; lost {result['lost']}, duplicates {result['duplicates']}"
    )
    return result


def run_burst(
    runtime: Production | Embedded, env: dict[str, str], n: int, args: argparse.Namespace, say: Callable[[str], None]
) -> dict[str, Any]:
    probe = Probe(env, TAG_BURST)
    try:
        began = time.monotonic()
        rt.lay_timers(env, TAG_BURST, [wall() + timedelta(days=1)] * n)
        lay_s = time.monotonic() - began
        say(f"  {runtime.label}: laid {n:,} timers a day ahead in {lay_s:.1f} s; starting the runtime")
        with running(runtime):
            sampler = MemorySampler(runtime.pid).start()
            try:
                pause(1.0 if args.smoke else BURST_IDLE_S)  # beat's first ticks are through; the runtime is idle
                idle_rss = sampler.reset_peak()
                instant = wall() + timedelta(seconds=args.burst_lead)
                began = time.monotonic()
                probe.move_all(instant)
                move_s = time.monotonic() - began
                margin = (instant - wall()).total_seconds()
                say(f"  {runtime.label}: moved them to fall due in {margin:.1f} s (the UPDATE took {move_s:.1f} s)")
                deadline = time.monotonic() + margin + args.burst_timeout
                left = [n]

                def poll() -> bool:
                    if not runtime.alive():
                        raise BenchError(f"{runtime.label}: a runtime process exited during the burst")
                    left[0] = probe.pending(instant)
                    return left[0] == 0

                done = wait_until(poll, deadline, BURST_POLL_S)
                finished = wall()
                burst_s = (finished - instant).total_seconds()
                if done:
                    pause(SETTLE_S)
                else:
                    say(f"  {runtime.label}: {left[0]:,} timers still pending at the timeout")
                peak = sampler.peak
            finally:
                sampler.stop()
        tally = rt.tally(env, TAG_BURST)
    finally:
        probe.close()
    result = {
        "timers": n,
        "lay_s": round(lay_s, 1),
        "update_s": round(move_s, 2),
        "update_done_before_instant_s": round(margin, 1),
        "burst_s": round(burst_s, 3) if done else None,
        "timed_out_after_s": None if done else round(burst_s, 1),
        "fired_per_s": round(n / burst_s) if done and burst_s > 0 else None,
        "recorded_lateness_s": late_stats(tally.lateness_s),
        "all_fired": done,
        **checks(tally),
        "worker_rss_mb": {"idle": mb(idle_rss), "peak": mb(peak), "growth": mb(peak - idle_rss)},
        "worker_processes": sampler.processes_max,
        "stop": runtime.stopped,
        "logs": {name: scan_log(text) for name, text in runtime.logs().items()},
    }
    say(
        f"  {runtime.label}: {'all fired in ' + str(result['burst_s']) + ' s' if done else 'TIMED OUT'}; "
        f"peak RSS {result['worker_rss_mb']['peak']} MB; lost {result['lost']}, duplicates {result['duplicates']}"
    )
    return result


def run_limit(env: dict[str, str], n: int, say: Callable[[str], None]) -> dict[str, Any]:
    """The same burst fired by one in-process sweep: no broker, no worker, one process."""
    probe = Probe(env, TAG_BURST)
    gf = Gridflow(rt.settings_of(env))
    try:
        began = time.monotonic()
        rt.lay_timers(env, TAG_BURST, [wall() + timedelta(days=1)] * n)
        lay_s = time.monotonic() - began
        instant = wall()
        probe.move_all(instant)
        gf.sweep(instant - timedelta(hours=1))  # warm-up: schema check, connections; nothing is due
        rss_before = psutil.Process().memory_info().rss
        began, cpu = time.monotonic(), time.process_time()
        report = gf.sweep(wall())
        limit_s = time.monotonic() - began
        cpu_s = time.process_time() - cpu
        rss_after = psutil.Process().memory_info().rss
    finally:
        gf.close()
        probe.close()
    tally = rt.tally(env, TAG_BURST)
    say(f"  limit: one in-process sweep fired {len(report.fired):,} timers in {limit_s:.1f} s")
    return {
        "timers": n,
        "lay_s": round(lay_s, 1),
        "burst_s": round(limit_s, 3),
        "fired_per_s": round(n / limit_s) if limit_s > 0 else None,
        "client_cpu_s": round(cpu_s, 1),
        "sweep_report": {"claimed": report.claimed, "fired": len(report.fired), "stale": report.stale},
        "bench_process_rss_mb": {"before": mb(rss_before), "after": mb(rss_after)},
        **checks(tally),
    }


# -- the whole run -----------------------------------------------------------------------------


def machine(admin_conninfo: str) -> dict[str, Any]:
    model = cpu_model()
    with psycopg.connect(admin_conninfo, connect_timeout=5) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    redis_bin = shutil.which("redis-server")
    redis_version = "?"
    if redis_bin:
        try:  # without a faked clock: redis-server hangs under libfaketime (make test-clock)
            out = subprocess.run([redis_bin, "--version"], capture_output=True, text=True, timeout=10, check=False,
                                 env=server_environment())  # fmt: skip
        except subprocess.TimeoutExpired:
            out = subprocess.CompletedProcess([redis_bin], 1, "(no answer to --version)", "")
        found = re.search(r"v=(\S+)", out.stdout)
        redis_version = found.group(1) if found else out.stdout.strip()
    return {
        "date": wall().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "postgresql": row[0] if row else "?",
        "redis": redis_version,
    }


def production_env(home: Path, db_url: str, broker_url: str, horizon: str) -> dict[str, str]:
    return rt.environment(home, db_url, broker_url, **PRODUCT_ENV, **scratch(home), GRIDFLOW_PRECISE_HORIZON_S=horizon)


def scratch(home: Path) -> dict[str, str]:
    """TMPDIR inside the run's directory: what a killed process leaves there (multiprocessing's
    ``pymp-*`` directories, say) goes with the directory at the end."""
    tmp = home.parent / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return {"TMPDIR": str(tmp)}


@dataclass
class Scenario:
    """One runtime on a fresh database: ``prepare`` makes the database and home (in the main thread:
    migrations are not thread-safe), ``run`` starts the processes, times them and stops them."""

    place: tuple[str, str]  # where its result goes in the report: res[a][b]
    what: str
    prepare: Callable[[], dict[str, str]]
    run: Callable[[dict[str, str]], dict[str, Any]]


def run_scenarios(scenarios: list[Scenario], together: bool, say: Callable[[str], None]) -> list[dict[str, Any]]:
    """One after the other (the real run: the figures are the point); with ``together`` (smoke), each
    prepared in this thread and then run in a thread of its own, side by side with the others (whose
    processes start while the next database is migrated). A failure or Ctrl-C stops every scenario:
    their waits end and the runtime processes are killed, so no start-up is waited for."""
    if not together:
        done = []
        for scenario in scenarios:
            say(scenario.what)
            done.append(scenario.run(scenario.prepare()))
        return done
    results: list[dict[str, Any]] = [{} for _ in scenarios]
    errors: list[BaseException] = []

    def go(i: int, env: dict[str, str]) -> None:
        try:
            results[i] = scenarios[i].run(env)
        except BaseException as exc:  # handed to the main thread
            errors.append(exc)
            ABORT.set()

    threads: list[threading.Thread] = []
    try:
        for i, scenario in enumerate(scenarios):
            env = scenario.prepare()
            if errors:
                raise errors[0]
            say(f"side by side: {scenario.what}")
            thread = threading.Thread(
                target=go, args=(i, env), name=f"scenario-{'-'.join(scenario.place)}", daemon=True
            )
            thread.start()
            threads.append(thread)
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
                if errors:
                    raise errors[0]
    except BaseException:
        ABORT.set()
        kill_leftovers()
        for thread in threads:
            thread.join(JOIN_S)
        raise
    if errors:
        raise errors[0]
    return results


def benchmark(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    started = time.monotonic()
    admin = admin_url(args.admin_url)
    ABORT.clear()
    res: dict[str, Any] = {"benchmark": "the runtime end to end: timer lateness, burst drain, embedded default"}
    res["machine"] = machine(psycopg_conninfo(admin))
    res["sizes"] = {k: getattr(args, k) for k in DEFAULTS}
    res["settings"] = {**PRODUCT_ENV, "GRIDFLOW_PRECISE_HORIZON_S": f"{PRECISE_HORIZON_S} (precise) / 0 (sweep only)"}
    res["smoke"] = args.smoke
    made: list[str] = []
    res["databases"] = made  # every one dropped by the end
    mark_before = os.environ.get(RUN_MARK)
    mark = uuid.uuid4().hex  # fresh: only this run's processes can carry it
    os.environ[RUN_MARK] = mark  # inherited by Redis and every runtime process (rt.environment keeps it)
    try:
        with ExitStack() as stack:
            # Undone in reverse: runtime processes killed, Redis stopped, anything marked killed, the
            # databases dropped, the logs copied, the directory removed.
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gridflow-e2e-")))
            logdir = work / "logs"
            logdir.mkdir()
            if args.keep_logs:
                stack.callback(_keep_logs, logdir, Path(args.keep_logs))
            databases = stack.enter_context(ExitStack())
            stack.callback(kill_marked, mark)
            redis: RedisInstance | None = None
            if not args.skip_production:
                redis = RedisInstance(work / "redis")
                stack.callback(redis.stop)  # before start: a Ctrl-C while it starts stops it too
                try:
                    redis.start()
                except ServerUnavailable as exc:
                    raise BenchError(str(exc)) from exc
            stack.callback(kill_leftovers)
            counter = iter(range(1, 100))

            def db_url() -> str:
                url = databases.enter_context(throwaway_database(admin))
                made.append(url.database)
                say(f"  database {url.database}")
                return url.render_as_string(hide_password=False)

            def broker() -> str:
                assert redis is not None
                index = next(counter) % 16
                with redis.client(index) as client:
                    client.flushdb()
                return redis.url(index)

            def production(home: str, horizon: str, with_broker: bool = True) -> Callable[[], dict[str, str]]:
                def prepare() -> dict[str, str]:
                    env = production_env(work / home, db_url(), broker() if with_broker else "", horizon)
                    rt.init(env)
                    return env

                return prepare

            def embedded(home: str) -> Callable[[], dict[str, str]]:
                def prepare() -> dict[str, str]:
                    env = rt.environment(work / home, "", "", **PRODUCT_ENV, **scratch(work / home))
                    rt.init(env)
                    return env

                return prepare

            scenarios: list[Scenario] = []
            if not args.skip_production and not args.skip_spread:
                for label, horizon in (("precise", PRECISE_HORIZON_S), ("sweep_only", "0")):
                    scenarios.append(
                        Scenario(
                            ("spread", label),
                            f"spread, production, {label}: {args.spread:,} timers over {args.span:g} s",
                            production(f"home-{label}", horizon),
                            lambda env, label=label: run_spread(
                                Production(env, logdir, f"spread-{label}"), env, args, say
                            ),
                        )
                    )
            if not args.skip_production and not args.skip_burst:
                scenarios.append(
                    Scenario(
                        ("burst", "runtime"),
                        f"burst, production: {args.burst:,} timers due at one instant",
                        production("home-burst", PRECISE_HORIZON_S),
                        lambda env: run_burst(Production(env, logdir, "burst"), env, args.burst, args, say),
                    )
                )
                scenarios.append(
                    Scenario(
                        ("burst", "limit"),
                        f"burst, the limit: one in-process sweep of {args.burst:,} timers on a fresh database",
                        production("home-limit", PRECISE_HORIZON_S, with_broker=False),
                        lambda env: run_limit(env, args.burst, say),
                    )
                )
            if not args.skip_embedded and not args.skip_spread:
                scenarios.append(
                    Scenario(
                        ("embedded", "spread"),
                        f"spread, embedded (gridflow up, SQLite): {args.spread:,} timers over {args.span:g} s",
                        embedded("home-embedded-spread"),
                        lambda env: run_spread(Embedded(env, logdir, "embedded-spread"), env, args, say),
                    )
                )
            if not args.skip_embedded and not args.skip_burst:
                scenarios.append(
                    Scenario(
                        ("embedded", "burst"),
                        f"burst, embedded (gridflow up, SQLite): {args.embedded_burst:,} timers due at one instant",
                        embedded("home-embedded-burst"),
                        lambda env: run_burst(
                            Embedded(env, logdir, "embedded-burst"), env, args.embedded_burst, args, say
                        ),
                    )
                )
            for scenario, result in zip(scenarios, run_scenarios(scenarios, args.smoke, say), strict=True):
                part, key = scenario.place
                res.setdefault(part, {})[key] = result
    finally:
        if mark_before is None:
            os.environ.pop(RUN_MARK, None)
        else:
            os.environ[RUN_MARK] = mark_before
    if "spread" in res:
        p_on, p_off = res["spread"]["precise"]["lateness_s"]["p99"], res["spread"]["sweep_only"]["lateness_s"]["p99"]
        res["spread"]["p99_ratio_sweep_only_over_precise"] = round(p_off / p_on, 2) if p_on and p_off else None
    if "burst" in res:
        r_s, l_s = res["burst"]["runtime"]["burst_s"], res["burst"]["limit"]["burst_s"]
        res["burst"]["ratio_runtime_over_limit"] = round(r_s / l_s, 2) if r_s and l_s else None
    res["seconds_total"] = round(time.monotonic() - started, 1)
    res["verdicts"] = [{"what": text, "pass": ok, "target": target} for text, ok, target in verdicts(res)]
    return res


def _keep_logs(logdir: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for path in logdir.iterdir():
        shutil.copy2(path, dest / path.name)


# -- report ------------------------------------------------------------------------------------


def _clean(r: dict) -> bool:
    return r["duplicates"] == 0 and r["outbox_mismatch"] == 0 and r["cases_short_of_notices"] == 0


def verdicts(res: dict) -> list[tuple[str, bool, bool]]:
    """(what, passed, is a target): targets are the figures of issue 4 (``--check``); the rest are
    checks that a correct runtime passes at any size and speed (``--smoke`` fails on them)."""
    out: list[tuple[str, bool, bool]] = []

    def clean(label: str, r: dict) -> None:
        out.append((f"{label}: duplicates {r['duplicates']}, outbox mismatch {r['outbox_mismatch']}", _clean(r), False))
        out.append((f"{label}: lost {r['lost']} of {r['timers']:,}", r["lost"] == 0, False))

    def spread(label: str, r: dict) -> None:
        p99 = r["lateness_s"]["p99"]
        target = f"{label}: lateness p99 {p99} s (target ≤ {TARGET_P99_S:g} s)"
        out.append((target, p99 is not None and p99 <= TARGET_P99_S, True))
        clean(label, r)

    def burst(label: str, r: dict) -> None:
        s = r["burst_s"]
        shown = f"{s} s" if s is not None else f"not done in {r['timed_out_after_s']} s"
        target = f"{label}: burst of {r['timers']:,} {shown} (target ≤ {TARGET_BURST_S:g} s)"
        out.append((target, bool(s and s <= TARGET_BURST_S), True))
        clean(label, r)

    if "spread" in res:
        spread("spread, production, precise firing", res["spread"]["precise"])
        clean("spread, production, sweep only", res["spread"]["sweep_only"])
    if "burst" in res:
        burst("burst, production", res["burst"]["runtime"])
        lim = res["burst"]["limit"]
        out.append((f"burst, in-process limit: all {lim['timers']:,} fired exactly once", lim["exactly_once"], False))
    if "embedded" in res:
        if "spread" in res["embedded"]:
            spread("spread, embedded", res["embedded"]["spread"])
        if "burst" in res["embedded"]:
            burst("burst, embedded", res["embedded"]["burst"])
        for key, r in res["embedded"].items():
            st = r["stop"]
            out.append(
                (
                    f"{key}, embedded: SIGINT → exit {st.get('exit')} after {st.get('seconds')} s "
                    f"(within {STOP_WITHIN_S:g} s)",
                    bool(st.get("exited")),
                    False,
                )
            )
    return out


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def print_report(res: dict) -> None:
    console = Console(width=max(Console().width, 130))
    m = res["machine"]
    console.print(f"[bold]gridflow bench: {res['benchmark']}[/bold]")
    console.print(f"date     {m['date']}", highlight=False)
    console.print(
        f"machine  {m['platform']}, nproc {m['nproc']}, {m['cpu_model']}, Python {m['python']}", highlight=False
    )
    console.print(f"servers  PostgreSQL {m['postgresql']}, Redis {m['redis']} (loopback)", highlight=False)
    console.print(
        "settings " + ", ".join(f"{k.removeprefix('GRIDFLOW_')}={v}" for k, v in res["settings"].items()),
        highlight=False,
    )
    spreads = [
        (f"production, {k.replace('_', ' ')}", v) for k, v in res.get("spread", {}).items() if isinstance(v, dict)
    ]
    if "spread" in res.get("embedded", {}):
        spreads.append(("embedded (gridflow up)", res["embedded"]["spread"]))
    if spreads:
        sz = res["sizes"]
        table = Table(title=f"Spread: {sz['spread']:,} timers due evenly over {sz['span']:g} s")
        for col in (
            "runtime",
            "p50 s",
            "p99 s",
            "max s",
            "seen p99 s",
            "seen max s",
            "fired",
            "lost",
            "dup.",
            "outbox ∆",
            "peak RSS MB",
            "log errors",
        ):
            table.add_column(col, justify="left" if col == "runtime" else "right")
        for label, r in spreads:
            late, seen = r["lateness_s"], r["observed_lateness_s"]
            table.add_row(
                label,
                _s(late["p50"]),
                _s(late["p99"]),
                _s(late["max"]),
                _s(seen["p99"]),
                _s(seen["max"]),
                f"{r['fired']:,}",
                str(r["lost"]),
                str(r["duplicates"]),
                str(r["outbox_mismatch"]),
                f"{r['worker_rss_mb']['peak']:.0f}",
                str(sum(log["errors"] for log in r["logs"].values())),
            )
        console.print(table)
        console.print(
            "lateness = stored fired_at − fire_at; seen = when a poll every 0.25 s first saw it fired (− fire_at)",
            highlight=False,
        )
        ratio = res.get("spread", {}).get("p99_ratio_sweep_only_over_precise")
        if ratio is not None:
            console.print(f"p99 sweep only / p99 precise = [bold]{ratio:.2f}[/bold]")
    bursts = []
    if "burst" in res:
        bursts += [("production (worker + beat)", res["burst"]["runtime"]), ("limit: one in-process sweep", None)]
    if "burst" in res.get("embedded", {}):
        bursts.append(("embedded (gridflow up)", res["embedded"]["burst"]))
    if bursts:
        table = Table(title="Burst: every timer due at one instant")
        for col in ("runtime", "timers", "all fired after s", "timers/s", "idle RSS MB", "peak RSS MB", "lost", "dup."):
            table.add_column(col, justify="left" if col == "runtime" else "right")
        for label, r in bursts:
            if r is None:
                lim = res["burst"]["limit"]
                table.add_row(
                    label,
                    f"{lim['timers']:,}",
                    _s(lim["burst_s"]),
                    f"{lim['fired_per_s']:,}",
                    "",
                    "",
                    str(lim["lost"]),
                    str(lim["duplicates"]),
                )
                continue
            done = _s(r["burst_s"]) if r["burst_s"] is not None else f"> {r['timed_out_after_s']:.0f} (timeout)"
            table.add_row(
                label,
                f"{r['timers']:,}",
                done,
                f"{r['fired_per_s']:,}" if r["fired_per_s"] else "—",
                f"{r['worker_rss_mb']['idle']:.0f}",
                f"{r['worker_rss_mb']['peak']:.0f}",
                str(r["lost"]),
                str(r["duplicates"]),
            )
        console.print(table)
        if "burst" in res and res["burst"].get("ratio_runtime_over_limit") is not None:
            console.print(f"burst runtime / limit = [bold]{res['burst']['ratio_runtime_over_limit']:.2f}[/bold]")
    logs = {}
    for part in (res.get("spread", {}), res.get("burst", {}), res.get("embedded", {})):
        for r in part.values():
            if isinstance(r, dict):
                logs.update(r.get("logs", {}))
    noisy = {name: log for name, log in logs.items() if log["errors"] or log["warnings"]}
    for name, log in noisy.items():
        console.print(f"log {name}: {log['errors']} error line(s), {log['warnings']} warning line(s)", highlight=False)
        for line in log["error_lines"] + log["warning_lines"]:
            console.print(f"    {line}", markup=False, highlight=False)
    for part in (res.get("spread", {}), res.get("burst", {}), res.get("embedded", {})):
        for key, r in part.items():
            if not isinstance(r, dict) or "stop" not in r:
                continue
            named = r["stop"].items() if "signal" not in r["stop"] else [(f"gridflow up ({key})", r["stop"])]
            for name, st in named:
                how = "exited" if st.get("exited") else "had not exited, so it was stopped by force"
                console.print(
                    f"stop {name}: {st.get('signal')} → {how} after {st.get('seconds')} s (exit {st.get('exit')})",
                    highlight=False,
                )
    for v in res["verdicts"]:
        mark = (
            "[green]PASS[/green]"
            if v["pass"]
            else "[yellow]MISS[/yellow]"
            if v["target"] and res["smoke"]
            else "[red]FAIL[/red]"
        )
        console.print(f"{mark}  {v['what']}", highlight=False)
    if res["smoke"]:
        console.print("smoke run: the scenarios ran side by side; targets are not enforced", highlight=False)
    console.print(f"total run time {res['seconds_total']:.0f} s", highlight=False)


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.e2e_latency", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="small sizes: " + ", ".join(f"{k}={v:g}" for k, v in QUICK.items())
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes, the scenarios side by side, every check, no target enforced (the test suite)",
    )
    for key, default in DEFAULTS.items():
        kind = int if isinstance(default, int) else float
        lo, hi = LIMITS[key]
        p.add_argument(
            f"--{key.replace('_', '-')}",
            type=kind,
            default=None,
            help=f"{HELPS[key]} (default {default:g}; {lo:g}–{hi:g})",
        )
    p.add_argument("--skip-production", action="store_true", help="skip the PostgreSQL + Redis runs")
    p.add_argument("--skip-embedded", action="store_true", help="skip the `gridflow up` (SQLite) runs")
    p.add_argument("--skip-spread", action="store_true", help="skip the spreads")
    p.add_argument("--skip-burst", action="store_true", help="skip the bursts")
    p.add_argument("--keep-logs", metavar="DIR", help="copy the runtime processes' logs here at the end")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--admin-url", help=f"admin URL of the server (env {ADMIN_URL_ENV}; default {DEFAULT_ADMIN_URL})")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = p.parse_args(argv)
    base = {**DEFAULTS, **(QUICK if args.quick else {}), **(SMOKE if args.smoke else {})}
    for key in DEFAULTS:
        if getattr(args, key) is None:
            setattr(args, key, base[key])
        lo, hi = LIMITS[key]
        if not lo <= getattr(args, key) <= hi:
            p.error(f"--{key.replace('_', '-')} must be between {lo:g} and {hi:g}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    err = Console(stderr=True)

    def say(text: str) -> None:
        err.print(f"[dim]{time.strftime('%H:%M:%S')} {text}[/dim]", highlight=False)

    try:
        with sigterm_as_interrupt():
            res = benchmark(args, say)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; processes stopped, databases dropped, temporary files removed", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(res, ensure_ascii=False, indent=2))
    else:
        print_report(res)
    return exit_status(res, args)


def exit_status(res: dict, args: argparse.Namespace) -> int:
    """1 when a check failed (always: a wrong result is never a pass) or, under ``--check`` and not
    ``--smoke``, when a target was missed; else 0."""
    failed = [v["what"] for v in res["verdicts"] if not v["pass"] and not v["target"]]
    if failed:
        print("bench: failed " + "; ".join(failed), file=sys.stderr)
        return 1
    missed = [v["what"] for v in res["verdicts"] if not v["pass"]]
    if missed and args.check and not args.smoke:
        print("bench: missed " + "; ".join(missed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
