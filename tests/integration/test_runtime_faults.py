"""Faults with real processes: Celery workers and beats (`celery -A tasks ...`), a Redis and a
PostgreSQL of the test's own on spare loopback ports (tests/servers.py), so stopping them
disturbs nothing else. Every test ends by counting events and outbox rows against the unique
keys: each timer fired exactly once.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from engine.store.models import JobRun
from tests import runtime_support as rt
from tests import support
from tests.servers import PostgresInstance, RedisInstance, ServerUnavailable
from tests.support import T0

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def redis_instance(tmp_path_factory):
    try:
        server = RedisInstance(tmp_path_factory.mktemp("redis"))
        server.start()
    except ServerUnavailable as exc:
        support.service_unavailable("redis-server", exc)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pg_instance(tmp_path_factory):
    try:
        server = PostgresInstance(tmp_path_factory.mktemp("pg"))
        server.start()
    except ServerUnavailable as exc:
        support.service_unavailable("PostgreSQL (initdb)", exc)
    yield server
    server.cleanup()


_counter = iter(range(1000))
SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def urls(redis_instance, pg_instance) -> tuple[str, str]:
    """A fresh database on the test's own PostgreSQL and a clean Redis database for the broker."""
    n = next(_counter)
    name = f"gridflow_rt_{n}"
    if not redis_instance.running:
        redis_instance.start()
    if not pg_instance.running:
        pg_instance.start()
    pg_instance.create_database(name)
    redis_instance.client(n % 16).flushdb()
    return pg_instance.url(name), redis_instance.url(n % 16)


@pytest.fixture
def procs():
    """The workers and beats a test starts; stopped when it ends."""
    started: list[rt.Proc] = []
    yield started
    for proc in started:
        proc.stop(timeout=15)


@pytest.fixture
def runtime_env(urls, procs, tmp_path):
    """gridflow set up at T0 (a Monday, 09:00 in Shanghai), with every process's clock running on from T0."""
    env = rt.environment(tmp_path / "home", *urls, now=T0)
    rt.init(env)
    return env, procs


def _start(procs: list[rt.Proc], proc: rt.Proc, ready: str = "ready.") -> rt.Proc:
    procs.append(proc)
    proc.wait_ready(ready)
    return proc


def _assert_exactly_once(env, tag: str, expected: int) -> rt.Tally:
    result = rt.tally(env, tag)
    assert result.timers == expected
    assert result.exactly_once, result
    return result


def test_kill_9_of_a_worker_mid_firing_loses_and_doubles_nothing(runtime_env, tmp_path):
    env, procs = runtime_env
    env = {**env, "GRIDFLOW_SWEEP_BATCH": "100", "GRIDFLOW_PRECISE_HORIZON_S": "0"}
    rt.lay_timers(env, "kill", [rt.now(env) - timedelta(seconds=1)] * 5000)
    first = _start(procs, rt.worker("first", env, tmp_path))
    _start(procs, rt.beat("beat", env, tmp_path), "beat: Starting")
    rt.wait_for("the first timers to fire", lambda: rt.tally(env, "kill").fired >= 300, timeout=60, every=0.05)
    first.kill()
    killed_at = rt.tally(env, "kill")
    assert killed_at.fired < 5000, "the worker finished before it was killed: nothing was tested"
    _start(procs, rt.worker("second", env, tmp_path))
    rt.wait_for("every timer to fire", lambda: rt.tally(env, "kill").fired == 5000, timeout=120)
    _assert_exactly_once(env, "kill", 5000)


@pytest.mark.parametrize("scheduler", ["default", "redbeat"])
def test_two_beats_at_once_fire_nothing_twice(runtime_env, tmp_path, scheduler):
    env, procs = runtime_env
    env = {**env, "GRIDFLOW_BEAT_SCHEDULER": scheduler}
    start = rt.now(env) + timedelta(seconds=3)
    rt.lay_timers(env, "beats", [start + timedelta(milliseconds=20 * i) for i in range(300)])
    _start(procs, rt.worker("worker", env, tmp_path))
    one = _start(procs, rt.beat("beat-1", env, tmp_path), "beat: Starting")
    two = _start(procs, rt.beat("beat-2", env, tmp_path), "beat: Starting")
    rt.wait_for("every timer to fire", lambda: rt.tally(env, "beats").fired == 300, timeout=60)
    time.sleep(3)  # a few more ticks of both beats
    _assert_exactly_once(env, "beats", 300)
    expected = 300 * rt.NOTICES_PER_TIMER
    rt.wait_for("every notice to be delivered", lambda: len(rt.delivered(env)) >= expected, timeout=30)
    delivered = rt.delivered(env)
    assert len(delivered) == len(set(delivered)) == expected, "a notice was delivered twice"
    sending = [b.log().count("Sending due task") for b in (one, two)]
    if scheduler == "default":
        assert all(sending), f"both beats should be sending: {sending}"
    else:
        assert sorted(n > 0 for n in sending) == [False, True], f"RedBeat: one beat holds the lock: {sending}"
    runs = rt.rows(env, select(JobRun.job, JobRun.period, JobRun.attempts))
    assert len(runs) == len({(job, period) for job, period, _ in runs})
    assert all(attempts == 1 for _, _, attempts in runs)


def test_redis_down_for_a_while_loses_nothing(runtime_env, redis_instance, tmp_path):
    env, procs = runtime_env
    _start(procs, rt.worker("worker", env, tmp_path))
    _start(procs, rt.beat("beat", env, tmp_path), "beat: Starting")
    redis_instance.stop()
    # Meanwhile: timers fall due, and a case is reported from the CLI (it writes to the database only).
    rt.lay_timers(env, "redis", [rt.now(env) + timedelta(milliseconds=10 * i) for i in range(500)])
    reported = rt.cli(
        ["case", "report", "-g", rt.GRID, "-a", rt.REPORTER, "-t", "Redis 停机期间上报", "--workflow", "quick"], env
    )
    assert reported.returncode == 0, reported.stderr
    time.sleep(4)
    assert rt.tally(env, "redis").fired == 0, "nothing can fire while the broker is down"
    redis_instance.start()
    rt.wait_for("every timer to fire after Redis returns", lambda: rt.tally(env, "redis").fired == 500, timeout=90)
    _assert_exactly_once(env, "redis", 500)
    shown = rt.cli(["case", "list", "--json"], env)
    assert "Redis 停机期间上报" in shown.stdout


def test_postgresql_restart_under_load(runtime_env, pg_instance, tmp_path):
    env, procs = runtime_env
    start = rt.now(env) + timedelta(seconds=1)
    rt.lay_timers(env, "pg", [start + timedelta(milliseconds=3 * i) for i in range(3000)])
    _start(procs, rt.worker("worker", env, tmp_path))
    _start(procs, rt.beat("beat", env, tmp_path), "beat: Starting")
    rt.wait_for("firing to be under way", lambda: rt.tally(env, "pg").fired > 0, timeout=60, every=0.1)
    pg_instance.restart()
    rt.wait_for("every timer to fire after the restart", lambda: rt.tally(env, "pg").fired == 3000, timeout=120)
    _assert_exactly_once(env, "pg", 3000)


def test_beat_down_across_a_month_boundary_runs_the_month_once(urls, procs, tmp_path):
    # gridflow was set up on 20 November, so November is one of its months. The runtime's clock says
    # 1 December 02:00 in Shanghai: beat was down at 01:00, when November was due.
    env = rt.environment(tmp_path / "home", *urls, now=datetime(2026, 12, 1, 2, 0, tzinfo=SH))
    rt.init(env, at=datetime(2026, 11, 20, 10, 0, tzinfo=SH))
    _start(procs, rt.worker("worker-1", env, tmp_path))
    _start(procs, rt.worker("worker-2", env, tmp_path))
    _start(procs, rt.beat("beat-1", env, tmp_path), "beat: Starting")
    _start(procs, rt.beat("beat-2", env, tmp_path), "beat: Starting")

    def november() -> list:
        query = select(JobRun.status, JobRun.attempts).where(
            JobRun.job == "monthly_scoring", JobRun.period == "2026-11"
        )
        return [tuple(r) for r in rt.rows(env, query)]

    rt.wait_for("November's scoring", lambda: bool(november()), timeout=60)
    time.sleep(5)  # more catch-up ticks from two beats and two workers
    assert november() == [("done", 1)]
    logs = "".join(p.log() for p in procs)
    assert logs.count("job monthly_scoring 2026-11 done") == 1
