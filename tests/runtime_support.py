"""Helpers for runtime tests and the end-to-end bench: a database with many due timers, real
worker and beat processes, and the exactly-once checks counted against the unique keys.

Timers are laid on clones of one case that the engine itself reported on the ``quick``
workflow (24x7, a one-minute limit): each clone has its own running clock and one reminder
timer at the given instant, which notifies the centre's three people — so each timer must
end as exactly one ``sla.reminder`` event and three outbox rows.

Time: ``environment(..., now=...)`` places the clock of every process of a test (the CLI, workers,
beats, and the helpers here) at that instant through ``GRIDFLOW_CLOCK_OFFSET_S``, from where it runs
on; ``now(env)`` reads that clock. Without ``now`` the processes run on this machine's clock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, insert, select, update

from config.settings import Settings
from engine.store.models import Case, CaseEvent, Outbox, SlaClock, SlaTimer
from gridflow.app import Gridflow
from tests.support import clock_offset

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "tests" / "fixtures" / "workflows" / "runtime" / "quick.yaml"
NOTIFICATIONS = ROOT / "tests" / "fixtures" / "notifications" / "runtime.yaml"
WORKFLOWS = [ROOT / "workflows" / "grid_case.yaml", QUICK]
GRID, REPORTER = "mayingtai-01", "p-an-yixuan"
NOTICES_PER_TIMER = 3  # the reminder of `quick` notifies the centre: three people

RUNTIME_ENV = {  # fast ticks and short leases, so faults heal within seconds
    "GRIDFLOW_SWEEP_INTERVAL_S": "1",
    "GRIDFLOW_SWEEP_LEASE_S": "5",
    "GRIDFLOW_DISPATCH_INTERVAL_S": "1",
    "GRIDFLOW_JOBS_CATCH_UP_S": "2",
    "GRIDFLOW_API_PORT": "0",  # no HTTP door: these tests run the worker and beat (test_up_api.py runs the API)
}


def environment(
    home: Path, database_url: str, broker_url: str = "", now: datetime | None = None, **extra: str
) -> dict[str, str]:
    """The environment of a test's gridflow processes; with ``now``, their clock reads ``now`` at this moment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
    env.update(RUNTIME_ENV)
    if now is not None:
        env["GRIDFLOW_CLOCK_OFFSET_S"] = clock_offset(now)
    env["GRIDFLOW_NOTIFICATIONS_FILE"] = str(NOTIFICATIONS)
    env.update({"GRIDFLOW_HOME": str(home), "GRIDFLOW_DATABASE_URL": database_url, "GRIDFLOW_BROKER_URL": broker_url})
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def settings_of(env: dict[str, str]) -> Settings:
    """The settings of ``env`` that the helpers here need, its clock included."""
    return Settings(
        home=Path(env["GRIDFLOW_HOME"]),
        database_url=env["GRIDFLOW_DATABASE_URL"],
        broker_url=env.get("GRIDFLOW_BROKER_URL", ""),
        clock_offset_s=float(env.get("GRIDFLOW_CLOCK_OFFSET_S", 0)),
    )


def init(env: dict[str, str], at: datetime | None = None) -> None:
    """``gridflow init`` of ``env``'s home: the org chart and workflows published at ``at``, or now
    by the environment's clock. The period jobs count periods from then (``jobs.installed_at``)."""
    gf = Gridflow(settings_of(env), clock=(lambda: at) if at is not None else None)
    try:
        gf.init(workflow_files=WORKFLOWS)
    finally:
        gf.close()


def lay_timers(env: dict[str, str], tag: str, fire_at: list[datetime], chunk: int = 5000) -> None:
    """One case with one pending reminder per instant in ``fire_at``; codes ``RT-<tag>-<n>``."""
    gf = Gridflow(settings_of(env))
    try:
        reported = gf.report(grid_id=GRID, actor_id=REPORTER, fields={"title": f"演练 {tag}"}, workflow="quick")
        template_id = reported["case"]["id"]
        with gf.transaction() as session:
            session.execute(update(SlaTimer).where(SlaTimer.case_id == template_id).values(status="cancelled"))
            case = session.execute(select(Case.__table__).where(Case.id == template_id)).one()._asdict()
            clock = (
                session.execute(
                    select(SlaClock.__table__).where(SlaClock.case_id == template_id, SlaClock.scope == "state")
                )
                .one()
                ._asdict()
            )
        for start in range(0, len(fire_at), chunk):
            with gf.transaction() as session:
                _clone(session, tag, case, clock, fire_at[start : start + chunk], start)
    finally:
        gf.close()


def _clone(session: Any, tag: str, case: dict, clock: dict, fire_at: list[datetime], offset: int) -> None:
    cases = [
        {**{k: v for k, v in case.items() if k != "id"}, "code": f"RT-{tag}-{offset + i}"} for i in range(len(fire_at))
    ]
    case_ids = list(session.scalars(insert(Case).returning(Case.id, sort_by_parameter_order=True), cases))
    clocks = [{**{k: v for k, v in clock.items() if k != "id"}, "case_id": cid} for cid in case_ids]
    clock_ids = list(session.scalars(insert(SlaClock).returning(SlaClock.id, sort_by_parameter_order=True), clocks))
    timers = [
        {
            "clock_id": kid,
            "case_id": cid,
            "kind": "reminder",
            "level": 1,
            "generation": clock["generation"],
            "fire_at": at,
            "status": "pending",
            "attempts": 0,
            "dedupe_key": f"rt:{tag}:{offset + i}",
        }
        for i, (cid, kid, at) in enumerate(zip(case_ids, clock_ids, fire_at, strict=True))
    ]
    session.execute(insert(SlaTimer), timers)


def rows(env: dict[str, str], stmt: Any) -> list[Any]:
    """Run one SELECT on the test's database and close the engine."""
    gf = Gridflow(settings_of(env))
    try:
        with gf.transaction(write=False) as session:
            return list(session.execute(stmt).all())
    finally:
        gf.close()


@dataclass
class Tally:
    timers: int
    fired: int
    pending: int
    events: int
    duplicate_events: int  # cases with more than one sla.reminder event
    outbox: int
    cases_short_of_notices: int  # fired cases with fewer than NOTICES_PER_TIMER outbox rows
    lateness_s: list[float]

    @property
    def exactly_once(self) -> bool:
        return (
            self.fired == self.timers == self.events
            and not self.duplicate_events
            and self.outbox == self.timers * NOTICES_PER_TIMER
            and not self.cases_short_of_notices
        )


def tally(env: dict[str, str], tag: str) -> Tally:
    gf = Gridflow(settings_of(env))
    try:
        with gf.transaction(write=False) as session:
            return _tally(session, tag)
    finally:
        gf.close()


def _tally(session: Any, tag: str) -> Tally:
    ours = SlaTimer.dedupe_key.like(f"rt:{tag}:%")
    status = dict(session.execute(select(SlaTimer.status, func.count()).where(ours).group_by(SlaTimer.status)).all())
    cases = select(Case.id).where(Case.code.like(f"RT-{tag}-%")).scalar_subquery()
    per_case = (
        select(CaseEvent.case_id, func.count().label("n"))
        .where(CaseEvent.case_id.in_(cases), CaseEvent.trigger == "sla.reminder")
        .group_by(CaseEvent.case_id)
        .subquery()
    )
    events = session.scalar(select(func.coalesce(func.sum(per_case.c.n), 0)))
    duplicates = session.scalar(select(func.count()).select_from(per_case).where(per_case.c.n > 1))
    outbox_per_case = (
        select(Outbox.case_id, func.count().label("n")).where(Outbox.case_id.in_(cases)).group_by(Outbox.case_id)
    ).subquery()
    outbox = session.scalar(select(func.coalesce(func.sum(outbox_per_case.c.n), 0)))
    short = session.scalar(
        select(func.count()).select_from(outbox_per_case).where(outbox_per_case.c.n < NOTICES_PER_TIMER)
    )
    late = [
        (fired - due).total_seconds()
        for fired, due in session.execute(
            select(SlaTimer.fired_at, SlaTimer.fire_at).where(ours, SlaTimer.status == "fired")
        ).all()
    ]
    return Tally(
        timers=sum(status.values()),
        fired=status.get("fired", 0),
        pending=status.get("pending", 0),
        events=int(events),
        duplicate_events=int(duplicates),
        outbox=int(outbox),
        cases_short_of_notices=int(short),
        lateness_s=late,
    )


def delivered(env: dict[str, str]) -> list[int]:
    """Ids of the notices the console channel wrote, one entry per time written (a repeat is a double
    delivery); a digest message counts for each notice it folds."""
    path = Path(env["GRIDFLOW_HOME"]) / "notices.log"
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [notice for line in lines if line for notice in json.loads(line)["notices"]]


def wait_for(what: str, check: Callable[[], bool], timeout: float, every: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def cli(
    args: list[str], env: dict[str, str], timeout: float = 60, process: bool = False
) -> subprocess.CompletedProcess[str]:
    """``gridflow ARGS`` with the settings of ``env``: in this process (Typer's runner, the same command
    tree, about a second less a command), or as its own process where that is the point (``process``:
    a command racing a running worker, or the console script itself). An exception no command expected
    is raised here, as a traceback would be printed there."""
    if process:
        return subprocess.run(
            [sys.executable, "-m", "gridflow", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    from typer.testing import CliRunner

    from gridflow.cli import app

    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("GRIDFLOW_") and k not in env}
    opened: list[Gridflow] = []  # a command's application lives until its process ends: close it here
    real_init = Gridflow.__init__

    def tracked(self: Gridflow, *a: Any, **kw: Any) -> None:
        real_init(self, *a, **kw)
        opened.append(self)

    Gridflow.__init__ = tracked  # type: ignore[method-assign]
    try:
        done = CliRunner().invoke(app, args, env={**unset, **env}, catch_exceptions=False)
    finally:
        Gridflow.__init__ = real_init  # type: ignore[method-assign]
        for gf in opened:
            gf.close()
    return subprocess.CompletedProcess(["gridflow", *args], done.exit_code, done.stdout, done.stderr)


def now(env: dict[str, str] | None = None) -> datetime:
    """Now by the clock of ``env``'s processes (this machine's clock without ``env``)."""
    offset = float(env.get("GRIDFLOW_CLOCK_OFFSET_S", 0)) if env else 0.0
    return datetime.now(UTC) + timedelta(seconds=offset)


class Proc:
    """A worker or beat as its own process group (so kill -9 takes its pool children too)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logdir: Path):
        self.name = name
        self.log_path = logdir / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, marker: str = "ready.", timeout: float = 60) -> None:
        wait_for(f"{self.name} to be ready", lambda: marker in self.log() or self.popen.poll() is not None, timeout)
        if self.popen.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.popen.returncode}:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        """kill -9 of the whole group: the worker and its pool processes."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)
        self._log.close()

    def stop(self, timeout: float = 30) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)  # the main process stops its pool; a group kill would not wait
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=30)
        self._log.close()
        return self.popen.returncode


def worker(name: str, env: dict[str, str], logdir: Path, concurrency: int = 2, pool: str = "prefork") -> Proc:
    argv = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-l", "INFO", "-Q", "gridflow"]
    argv += ["-c", str(concurrency), "-P", pool, "-n", f"{name}@%h", "--without-gossip", "--without-mingle"]
    return Proc(name, argv, env, logdir)


def beat(name: str, env: dict[str, str], logdir: Path) -> Proc:
    home = Path(env["GRIDFLOW_HOME"])
    argv = [sys.executable, "-m", "celery", "-A", "tasks", "beat", "-l", "INFO", "-s", str(home / f"{name}-schedule")]
    return Proc(name, argv, env, logdir)
