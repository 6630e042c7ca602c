"""Benchmark: case lifecycles through the engine against the same writes as plain SQL.

One run on the real local PostgreSQL server:

1. create a throwaway database, migrate it, load the sample org chart and
   publish the default workflow (dropped again at the end, also on error);
2. ENGINE: drive ``--cases`` cases report → classify → assign → accept →
   resolve → verify through ``engine.cases``, one transaction per step;
3. PLAIN: issue exactly the rows the engine writes for each step through
   psycopg 3 (no SQLAlchemy), one transaction per step: the physical limit of
   this schema;
4. BPMN (``bench/bpmn_side.py``): the same lifecycle as a BPMN model with timer boundary
   events for the SLA limits, run by SpiffWorkflow 3.x and persisted to PostgreSQL after each
   step as SpiffWorkflow's server does (the whole workflow serialised to JSON in a row, plus a
   small per-case row). SpiffWorkflow is not a gridflow dependency: ``pip install
   'SpiffWorkflow>=3,<4'`` into the bench's environment; without it this side is reported as
   skipped (with the reason) and the others run. ``--no-bpmn`` leaves it out;
5. warm every side up once, then time ``--rounds`` rounds, rotating which
   side goes first, and compare the medians.

Before timing, one engine case and one plain case are compared column by column
(cases and case_event), so the two sides are known to write the same rows.

Run it from the project root (the module's name shadows the ``transitions``
library when the file is run as a script, so prefer ``-m``)::

    .venv/bin/python -m bench.transitions --cases 300 --rounds 3
    .venv/bin/python -m bench.transitions --json --min-ratio 0.5
    .venv/bin/python -m bench.transitions --smoke --json    # seconds: every check, no target

``--smoke`` (run by the test suite) times 3 cases in one round: the column-by-column
comparison and the check of every timed batch run as always, the ratios are reported,
and ``--min-ratio`` is not enforced.

Exit status: 0 done; 1 ratio below ``--min-ratio`` but not ``--smoke`` (or a crash, with
its traceback); 2 bad arguments, no server, the two sides wrote different rows, a check of a
batch failed (the BPMN side's too: a case not complete, a timer not waiting), or ``--bpmn``
without SpiffWorkflow; 130 interrupted (Ctrl-C or SIGTERM; the database is dropped all
the same).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import signal
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy
from psycopg.types.json import Jsonb
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

# Run as a script, this directory comes first on sys.path and this very file
# would be imported in place of the ``transitions`` library the engine uses.
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from bench.clients import ClientError, ClientSpec, clients  # noqa: E402
from bench.counted import CountedStatements  # noqa: E402
from bench.plain_sla import (  # noqa: E402  (the plain sides' case and event INSERTs are written once, there)
    EVENT_COLUMNS,
    INSERT_CASE,
    INSERT_EVENT,
    PlainSlaClient,
    PlainSlaError,
    Script,
    sla_rows,
)
from engine import cases  # noqa: E402
from engine.calendar import load_calendars  # noqa: E402
from engine.definitions.loader import load_workflow_file, load_workflow_text  # noqa: E402
from engine.org import load_org_file  # noqa: E402
from engine.store import (  # noqa: E402
    case_repo,  # noqa: E402
    migrate,
    org_repo,
    workflow_repo,
)
from engine.store.db import create_db_engine, normalize_url, session_factory  # noqa: E402
from engine.store.unit import step_transaction  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ADMIN_URL_ENV = "GRIDFLOW_BENCH_PG_ADMIN_URL"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
ORG_FILE = ROOT / "config" / "org" / "shengli.yaml"
WORKFLOW_FILE = ROOT / "workflows" / "grid_case.yaml"
MAX_CASES = 100_000
MAX_ROUNDS = 50
MAX_PROCS = 16
DEFAULT_CASES = 300
DEFAULT_ROUNDS = 3
SMOKE_CASES = 3

GRID = "mayingtai-01"
WORKER = "p-an-yixuan"  # grid worker of mayingtai-01
CENTER = "p-chen-jia"  # grid management centre
BASE_AT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai
STEP_GAP = timedelta(minutes=10)


@dataclass(frozen=True)
class Step:
    """One command of the lifecycle and the case columns it sets (besides status, version, updated_at)."""

    trigger: str
    actor: str
    fields: dict[str, Any]
    to_state: str
    columns: dict[str, Any] = field(default_factory=dict)
    closes: bool = False


LIFECYCLE: tuple[Step, ...] = (
    Step("report", WORKER, {"title": "马营台一组自来水管破裂"}, "reported"),
    Step(
        "classify",
        CENTER,
        {"category": "water_supply", "priority": "urgent"},
        "classified",
        {"category": "water_supply", "priority": "urgent"},
    ),
    Step("assign", CENTER, {"assignee": WORKER}, "assigned", {"assignee_id": WORKER}),
    Step("accept", WORKER, {}, "in_progress"),
    Step("resolve", WORKER, {"resolution": "已更换破裂管段，恢复供水"}, "resolved"),
    Step("verify", CENTER, {"satisfaction": "satisfied"}, "verified", {"satisfaction": "satisfied"}, closes=True),
)
STEPS = len(LIFECYCLE)


def step_time(index: int) -> datetime:
    """When step ``index`` of a lifecycle happens: the same for every case, on both sides."""
    return BASE_AT + index * STEP_GAP


class BenchError(Exception):
    """A setup problem: bad arguments, no server, or the two sides disagree."""


# -- the throwaway database ----------------------------------------------------------


def admin_url(cli_value: str | None) -> URL:
    url = make_url(normalize_url(cli_value or os.environ.get(ADMIN_URL_ENV) or DEFAULT_ADMIN_URL))
    if url.get_backend_name() != "postgresql":
        raise BenchError(f"the admin URL must name a PostgreSQL server, not {url.get_backend_name()!r}")
    elsewhere = {k: v for k, v in url.query.items() if k in ("host", "hostaddr")}
    if url.host not in LOOPBACK_HOSTS or elsewhere:
        where = url.host or elsewhere or "a Unix socket"
        raise BenchError(f"refusing to benchmark on {where!r}: loopback TCP only ({', '.join(sorted(LOOPBACK_HOSTS))})")
    return url


@contextmanager
def throwaway_database(admin: URL) -> Iterator[URL]:
    """Create ``gridflow_bench_<hex>`` on the server; drop it again whatever happens.

    The drop is armed before ``CREATE DATABASE`` is sent, so an interrupt (Ctrl-C, or SIGTERM
    under :func:`sigterm_as_interrupt`) that lands just after the server created it still drops
    it, and an interrupt during the drop waits for it to finish (psycopg would cancel it).
    Only a hard kill (SIGKILL, a crash of the interpreter) can leave one behind.
    """
    server = create_engine(admin, isolation_level="AUTOCOMMIT")
    name = f"gridflow_bench_{uuid.uuid4().hex[:10]}"
    armed = False
    try:
        try:
            armed = True
            with server.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except SQLAlchemyError as exc:
            armed = False  # nothing was created: no drop (which would fail too, hiding the reason)
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise BenchError(f"cannot create a database on {admin.render_as_string()}: {reason}") from exc
        yield admin.set(database=name)
    finally:
        try:
            if armed:
                with signals_deferred(), server.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            server.dispose()


DEFERRED = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM that arrive inside are held, then raised again (with the handlers of
    before) on the way out. Outside the main thread it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: held.append(signum)) for sig in DEFERRED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
        for signum in dict.fromkeys(held):
            signal.raise_signal(signum)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises KeyboardInterrupt (a kill cleans up like Ctrl-C does); the
    previous handler is put back on the way out. Outside the main thread it does nothing.

    The exception is raised wherever the main thread is when the signal comes, and Python ignores it
    there in a few places (a weakref callback, a ``__del__``: "Exception ignored in …"); a block that
    ends normally after a SIGTERM raises KeyboardInterrupt on the way out, so the kill is never lost."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def interrupt(signum: int, _frame: Any) -> None:
        received.append(signum)
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    if received:
        raise KeyboardInterrupt(f"signal {received[0]} (raised where Python ignored it; the work went on)")


CALENDARS = load_calendars(ROOT / "config" / "calendars.yaml")
PLAIN_WORKFLOW = "grid_case_plain"  # grid_case without time limits: the same writes as the plain side


def without_time_limits(text: str) -> str:
    """The default workflow with every SLA and notify key removed and renamed, for the engine-vs-plain
    ratio: the plain side writes the case and its events, so the engine side must write just those."""
    doc = yaml.safe_load(text)
    for key in ("case_sla", "calendar_by_category", "calendar"):
        doc.pop(key, None)
    doc.get("report", {}).pop("notify", None)
    for state in doc["states"].values():
        state.pop("sla", None)
        state.pop("notify", None)
    for trigger in doc["triggers"].values():
        trigger.pop("notify", None)
    doc["workflow"] = PLAIN_WORKFLOW
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def seed(engine: Engine, sessions: sessionmaker[Session]) -> None:
    migrate.upgrade(engine)
    at = BASE_AT - timedelta(days=1)
    with sessions.begin() as session:
        org_repo.apply_org_chart(session, load_org_file(ORG_FILE), at)
        workflow_repo.publish(session, load_workflow_file(WORKFLOW_FILE, CALENDARS), at)
        plain = without_time_limits(WORKFLOW_FILE.read_text(encoding="utf-8"))
        workflow_repo.publish(session, load_workflow_text(plain, f"{PLAIN_WORKFLOW}.yaml"), at)


def psycopg_conninfo(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


# -- ENGINE side ---------------------------------------------------------------------


def engine_lifecycle(
    sessions: sessionmaker[Session], mark: Callable[[str], None] = lambda _: None, workflow: str = PLAIN_WORKFLOW
) -> int:
    """Report one case and fire every later step, each in its own transaction; return the case id.

    The transactions are the application's (``Gridflow.report`` and ``Gridflow.fire``):
    :func:`engine.store.unit.step_transaction`, on PostgreSQL the bare driver connection."""
    first = LIFECYCLE[0]
    mark(first.trigger)
    with step_transaction(sessions) as session:
        case_id = cases.report(
            session,
            grid_id=GRID,
            actor_id=first.actor,
            fields=dict(first.fields),
            at=step_time(0),
            workflow=workflow,
            calendars=CALENDARS,
        ).case.id
    for index, step in enumerate(LIFECYCLE[1:], start=1):
        mark(step.trigger)
        with step_transaction(sessions) as session:
            cases.fire(
                session,
                case_id,
                step.trigger,
                actor_id=step.actor,
                fields=dict(step.fields),
                at=step_time(index),
                calendars=CALENDARS,
            )
    return case_id


# -- PLAIN side ----------------------------------------------------------------------

COUNTER_INIT = "INSERT INTO case_counter (prefix, last) VALUES (%s, 0) ON CONFLICT DO NOTHING"
COUNTER_NEXT = "UPDATE case_counter SET last = last + 1 WHERE prefix = %s RETURNING last"


@dataclass(frozen=True)
class Target:
    """What a client knows before it writes: the workflow version and the case-code counter row."""

    workflow_id: int
    workflow_name: str
    workflow_version: int
    counter_key: str


def update_case_sql(step: Step) -> str:
    sets = ["status = %s", "version = version + 1", "updated_at = %s"]
    sets += [f"{name} = %s" for name in step.columns]
    if step.closes:
        sets.append("closed_at = %s")
    return f"UPDATE cases SET {', '.join(sets)} WHERE id = %s AND version = %s"


UPDATE_CASE = {step.trigger: update_case_sql(step) for step in LIFECYCLE[1:]}
# The same two writes as one statement: the event is inserted only if the compare-and-set matched.
STEP_CTE = {
    trigger: f"WITH moved AS ({sql} RETURNING id) INSERT INTO case_event ({EVENT_COLUMNS})"
    " SELECT moved.id, %s, %s, %s, %s, %s, %s, %s, %s FROM moved RETURNING seq"
    for trigger, sql in UPDATE_CASE.items()
}


class PlainClient(CountedStatements):
    """The engine's writes, hand-written: one transaction per step, nothing read that a client already knows."""

    def __init__(self, conn: psycopg.Connection, target: Target, cte: bool = False):
        self.conn = conn
        self.target = target
        self.cte = cte  # one statement per step (UPDATE and INSERT joined by a CTE), as the engine does
        super().__init__()

    def lifecycle(self) -> int:
        case_id = self.report(LIFECYCLE[0])
        for index, step in enumerate(LIFECYCLE[1:], start=1):
            self.fire(case_id, index, step)
        return case_id

    def report(self, step: Step) -> int:
        t, at = self.target, step_time(0)
        with self.conn.cursor() as cur:
            self._step = step.trigger
            self._run(cur, COUNTER_INIT, (t.counter_key,))
            number = self._one(cur, COUNTER_NEXT, (t.counter_key,))
            code = f"{t.counter_key}-{number:06d}"
            values = (code, t.workflow_id, t.workflow_name, t.workflow_version, step.to_state, step.fields["title"])
            case_id = self._one(cur, INSERT_CASE, (*values, GRID, step.actor, at, at))
            self._event(cur, case_id, 1, step, None, at)
        self.conn.commit()
        return case_id

    def fire(self, case_id: int, index: int, step: Step) -> None:
        at, version = step_time(index), index  # the case is at version ``index`` before step ``index``
        params: tuple[Any, ...] = (step.to_state, at, *step.columns.values(), *((at,) if step.closes else ()))
        with self.conn.cursor() as cur:
            self._step = step.trigger
            if self.cte:
                event = self._event_params(case_id, version + 1, step, LIFECYCLE[index - 1].to_state, at)
                self._run(cur, STEP_CTE[step.trigger], (*params, case_id, version, *event[1:]))
                if len(cur.fetchall()) != 1:
                    raise BenchError(f"plain {step.trigger} of case {case_id}: compare-and-set lost")
                self.conn.commit()
                return
            self._run(cur, UPDATE_CASE[step.trigger], (*params, case_id, version))
            if cur.rowcount != 1:
                raise BenchError(f"plain {step.trigger} of case {case_id}: compare-and-set on version {version} lost")
            self._event(cur, case_id, version + 1, step, LIFECYCLE[index - 1].to_state, at)
        self.conn.commit()

    def _event(self, cur: psycopg.Cursor, case_id: int, seq: int, step: Step, source: str | None, at: datetime) -> None:
        self._run(cur, INSERT_EVENT, self._event_params(case_id, seq, step, source, at))

    def _event_params(self, case_id: int, seq: int, step: Step, source: str | None, at: datetime) -> tuple:
        payload = Jsonb(dict(step.fields))
        return (
            case_id,
            seq,
            at,
            step.actor,
            step.trigger,
            source,
            step.to_state,
            payload,
            self.target.workflow_version,
        )


def plain_target(conn: psycopg.Connection, engine_case_id: int) -> Target:
    """Take the workflow version and counter row from a case the engine reported."""
    row = conn.execute(
        "SELECT code, workflow_id, workflow_name, workflow_version FROM cases WHERE id = %s", (engine_case_id,)
    ).fetchone()
    conn.commit()
    assert row is not None
    code, workflow_id, workflow_name, workflow_version = row
    return Target(workflow_id, workflow_name, workflow_version, code.rsplit("-", 1)[0])


# -- checks --------------------------------------------------------------------------

CASE_COLUMNS_COMPARED = (
    "workflow_id, workflow_name, workflow_version, status, version, title, description, category, priority,"
    " grid_id, reporter_id, assignee_id, source_channel, satisfaction, rework_count, extension_count,"
    " pending_extension, reported_at, updated_at, closed_at"
)
EVENT_COLUMNS_COMPARED = "seq, at, actor_id, trigger, from_state, to_state, payload, workflow_version"


def written_rows(conn: psycopg.Connection, case_id: int) -> tuple[tuple, list[tuple]]:
    case = conn.execute(f"SELECT {CASE_COLUMNS_COMPARED} FROM cases WHERE id = %s", (case_id,)).fetchone()
    events = conn.execute(
        f"SELECT {EVENT_COLUMNS_COMPARED} FROM case_event WHERE case_id = %s ORDER BY seq", (case_id,)
    ).fetchall()
    conn.commit()
    assert case is not None
    return case, events


def check_same_rows(conn: psycopg.Connection, engine_case: int, plain_case: int) -> None:
    """Fail loudly unless the plain side wrote what the engine wrote (ids and code aside)."""
    ours, theirs = written_rows(conn, plain_case), written_rows(conn, engine_case)
    if ours != theirs:
        raise BenchError(
            f"plain SQL and the engine wrote different rows:\n engine case {engine_case}: {theirs}\n"
            f" plain case {plain_case}: {ours}\nfix the PLAIN side of bench/transitions.py"
        )


def check_batch(conn: psycopg.Connection, ids: list[int]) -> None:
    """Every case of a timed batch must have reached the final state with one event per step."""
    closed, events = conn.execute(
        "SELECT (SELECT count(*) FROM cases WHERE id = ANY(%s) AND status = %s AND version = %s),"
        " (SELECT count(*) FROM case_event WHERE case_id = ANY(%s))",
        (ids, LIFECYCLE[-1].to_state, STEPS, ids),
    ).fetchone() or (0, 0)
    conn.commit()
    if closed != len(ids) or events != len(ids) * STEPS:
        raise BenchError(f"batch incomplete: {closed}/{len(ids)} cases closed, {events}/{len(ids) * STEPS} events")


# -- statement counts ----------------------------------------------------------------


@dataclass
class StatementTally:
    """SQLAlchemy cursor executions per step, plus the pool's pre-ping round trip per checkout."""

    per_step: Counter[str] = field(default_factory=Counter)
    pings: int = 0
    sql: list[tuple[str, str]] = field(default_factory=list)
    step: str = ""

    def mark(self, step: str) -> None:
        self.step = step


def count_engine_statements(
    engine: Engine, sessions: sessionmaker[Session], workflow: str = PLAIN_WORKFLOW
) -> tuple[int, StatementTally]:
    tally = StatementTally()
    pre_ping = bool(getattr(engine.pool, "_pre_ping", False))

    def on_execute(_conn, _cursor, statement, _params, _context, _many) -> None:  # type: ignore[no-untyped-def]
        tally.per_step[tally.step] += 1
        tally.sql.append((tally.step, " ".join(statement.split())))

    def on_checkout(*_args: Any) -> None:
        tally.pings += pre_ping

    # On PostgreSQL the engine's hot statements go straight to its psycopg connection
    # (engine.store.case_repo._PG); count those too, by wrapping that one entry point.
    direct_run = case_repo._PG().run

    def counted_run(conn, statement, values):  # type: ignore[no-untyped-def]
        on_execute(None, None, statement[0], values, None, False)
        return direct_run(conn, statement, values)

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine.pool, "checkout", on_checkout)
    case_repo._PG().run = counted_run  # type: ignore[method-assign]
    try:
        case_id = engine_lifecycle(sessions, tally.mark, workflow)
    finally:
        case_repo._PG().run = direct_run  # type: ignore[method-assign]
        event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(engine.pool, "checkout", on_checkout)
    return case_id, tally


def count_plain_statements(plain: PlainClient) -> Counter[str]:
    plain.statements.clear()
    plain.lifecycle()
    return Counter(plain.statements)


# -- timing --------------------------------------------------------------------------


@dataclass
class Side:
    name: str
    run_one: Callable[[], int]
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)  # this process only: Python + driver, not the server
    check: Callable[[list[int]], None] | None = None  # the side's own check of a batch (default: check_batch)
    remote: Callable[[int], tuple[float, float, list[int]]] | None = None  # --procs: run by the client processes

    def batch(self, n: int) -> tuple[float, float, list[int]]:
        if self.remote is not None:
            return self.remote(n)
        started, cpu_started = time.perf_counter(), time.process_time()
        ids = [self.run_one() for _ in range(n)]
        return time.perf_counter() - started, time.process_time() - cpu_started, ids

    def cases_per_s(self, n: int) -> list[float]:
        return [n / s for s in self.seconds]

    def median_cases_per_s(self, n: int) -> float:
        return statistics.median(self.cases_per_s(n))

    def median_client_cpu_ms_per_case(self, n: int) -> float:
        return statistics.median(1000 * s / n for s in self.cpu_seconds)


def timed_rounds(sides: tuple[Side, ...], check: psycopg.Connection, n: int, rounds: int) -> None:
    """Warm every side up, then rotate which goes first, so drift hits all alike."""
    for side in sides:
        (side.check or (lambda ids: check_batch(check, ids)))(side.batch(n)[2])
    for r in range(rounds):
        for side in sides[r % len(sides) :] + sides[: r % len(sides)]:
            seconds, cpu_seconds, ids = side.batch(n)
            side.seconds.append(seconds)
            side.cpu_seconds.append(cpu_seconds)
            (side.check or (lambda ids: check_batch(check, ids)))(ids)


# -- report --------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("?" where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def machine(conn: psycopg.Connection) -> dict[str, Any]:
    row = conn.execute("SHOW server_version").fetchone()
    conn.commit()
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "postgresql": row[0] if row else "?",
        "sqlalchemy": sqlalchemy.__version__,
        "psycopg": psycopg.__version__,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),  # the edge may read the clock
    }


@dataclass
class BpmnRun:
    """The BPMN side of a run, or why it was skipped."""

    side: Side | None = None
    statements: Counter[str] = field(default_factory=Counter)
    skipped: str | None = None  # the reason, when it did not run
    version: str | None = None
    timers_waiting: dict[str, int] = field(default_factory=dict)  # user task -> timer events seen waiting on it
    timers_modelled: dict[str, list[str]] = field(default_factory=dict)
    stored_json_bytes: int = 0  # one finished case's serialised workflow


def _bpmn() -> Any:
    """bench/bpmn_side.py, imported only when wanted (it imports SpiffWorkflow, if installed)."""
    from bench import bpmn_side

    return bpmn_side


def results(
    args: argparse.Namespace,
    sides: tuple[Side, Side, Side, Side, Side],
    tallies: tuple[StatementTally, StatementTally],
    plain: tuple[Counter[str], Counter[str], Counter[str]],
    info: dict,
    bpmn: BpmnRun | None = None,
) -> dict:
    engine_side, plain_side, cte_side, sla_side, plain_sla_side = sides
    tally, sla_tally = tallies
    n = args.cases * args.procs  # cases per round, all client processes together

    def side(s: Side, statements: Counter[str], extra: int) -> dict:
        rate = s.median_cases_per_s(n)
        return {
            "cases_per_s": round(rate, 1),
            "steps_per_s": round(rate * STEPS, 1),
            "rounds_cases_per_s": [round(x, 1) for x in s.cases_per_s(n)],
            "wall_ms_per_case": round(1000 / rate, 2),
            "client_cpu_ms_per_case": round(s.median_client_cpu_ms_per_case(n), 2),
            "statements_per_lifecycle": sum(statements.values()),
            "statements_per_step": {st.trigger: statements[st.trigger] for st in LIFECYCLE},
            "pre_ping_round_trips_per_lifecycle": extra,
        }

    fastest_plain = max(plain_side.median_cases_per_s(n), cte_side.median_cases_per_s(n))
    ratio = engine_side.median_cases_per_s(n) / fastest_plain
    bpmn = bpmn or BpmnRun(skipped="--no-bpmn")
    if bpmn.side is None:
        bpmn_row: dict[str, Any] = {"skipped": True, "reason": bpmn.skipped}
        over_bpmn: dict[str, float | None] = {"engine": None, "engine_sla": None}
    else:
        bpmn_row = {
            **side(bpmn.side, bpmn.statements, 0),
            "skipped": False,
            "spiffworkflow": bpmn.version,
            "persisted": "BpmnWorkflowSerializer JSON of the whole workflow in one row + a per-case row, every step",
            "timer_events_modelled": bpmn.timers_modelled,
            "timer_events_waiting_per_task": bpmn.timers_waiting,
            "stored_json_bytes_per_case": bpmn.stored_json_bytes,
        }
        rate = bpmn.side.median_cases_per_s(n)
        over_bpmn = {
            k: round(s.median_cases_per_s(n) / rate, 3) for k, s in (("engine", engine_side), ("engine_sla", sla_side))
        }
    return {
        "benchmark": "case lifecycle report→verify, one transaction per step",
        "machine": info,
        "cases_per_round": n,
        "procs": args.procs,
        "cases_per_round_per_proc": args.cases,
        "rounds": args.rounds,
        "steps_per_case": STEPS,
        "engine": side(engine_side, tally.per_step, tally.pings),
        "plain": side(plain_side, plain[0], 0),
        "plain_cte": side(cte_side, plain[1], 0),
        "engine_sla": side(sla_side, sla_tally.per_step, sla_tally.pings),
        "plain_sla": side(plain_sla_side, plain[2], 0),
        "ratio_engine_over_plain": round(ratio, 3),
        "ratio_engine_sla_over_plain_sla": round(
            sla_side.median_cases_per_s(n) / plain_sla_side.median_cases_per_s(n), 3
        ),
        "target_ratio_engine_sla_over_plain_sla": 0.5,
        "ratio_engine_sla_over_engine": round(sla_side.median_cases_per_s(n) / engine_side.median_cases_per_s(n), 3),
        "bpmn": bpmn_row,
        "ratio_engine_sla_over_bpmn": over_bpmn["engine_sla"],
        "ratio_engine_over_bpmn": over_bpmn["engine"],
        "target_ratio_engine_sla_over_bpmn": 2.0,
        "ratio_is_against": "the faster of plain and plain_cte",
        "min_ratio": args.min_ratio,
        "target_ratio": 0.6,
    }


def print_table(res: dict, tally: StatementTally, show_sql: bool) -> None:
    console = Console()
    m = res["machine"]
    console.print(f"[bold]gridflow bench: {res['benchmark']}[/bold]")
    console.print(f"date     {m['date']}", highlight=False)
    console.print(f"machine  {m['platform']}, {m['cpus']} CPUs, Python {m['python']}", highlight=False)
    console.print(f"database PostgreSQL {m['postgresql']}", highlight=False)
    console.print(f"drivers  SQLAlchemy {m['sqlalchemy']}, psycopg {m['psycopg']}", highlight=False)
    procs = res["procs"]
    who = (
        "in this process"
        if procs == 1
        else f"by {procs} client processes at once ({res['cases_per_round_per_proc']} each)"
    )
    console.print(
        f"{res['cases_per_round']} cases × {res['rounds']} rounds, {who} (after one untimed warm-up of each side)"
    )
    console.print(_throughput_table(res))
    console.print(_statements_table(res))
    verdict = "meets" if res["ratio_engine_over_plain"] >= res["target_ratio"] else "is BELOW"
    console.print(
        f"ratio engine / fastest plain = [bold]{res['ratio_engine_over_plain']:.3f}[/bold] "
        f"({verdict} the {res['target_ratio']} target)"
    )
    ratio = res["ratio_engine_sla_over_plain_sla"]
    verdict = "meets" if ratio >= res["target_ratio_engine_sla_over_plain_sla"] else "is BELOW"
    console.print(
        f"ratio engine_sla / plain_sla (the same clocks, timers and notices by hand) = [bold]{ratio:.3f}[/bold] "
        f"({verdict} the {res['target_ratio_engine_sla_over_plain_sla']} target)"
    )
    if res.get("smoke"):
        console.print("a smoke run: too few cases for the ratio to mean much; --min-ratio is not enforced")
    console.print(
        f"engine with the default workflow's time limits (clocks and timers written on every step) / "
        f"engine without = {res['ratio_engine_sla_over_engine']:.3f}",
        highlight=False,
    )
    bpmn = res["bpmn"]
    if bpmn["skipped"]:
        console.print(f"BPMN side skipped: {bpmn['reason']}", highlight=False)
    else:
        verdict = (
            "meets" if res["ratio_engine_sla_over_bpmn"] >= res["target_ratio_engine_sla_over_bpmn"] else "is BELOW"
        )
        console.print(
            f"ratio engine_sla / BPMN (SpiffWorkflow {bpmn['spiffworkflow']}) = "
            f"[bold]{res['ratio_engine_sla_over_bpmn']:.3f}[/bold] ({verdict} the 2× target); "
            f"engine / BPMN = {res['ratio_engine_over_bpmn']:.3f}; "
            f"{bpmn['stored_json_bytes_per_case']:,} bytes of JSON stored per case, rewritten each step",
            highlight=False,
        )
    if show_sql:
        for step, sql in tally.sql:
            console.print(f"{step:>8}  {sql}", markup=False, highlight=False, soft_wrap=True)


def _throughput_table(res: dict) -> Table:
    table = Table(title="throughput (median over rounds)")
    for column in ("side", "cases/s", "steps/s", "ms/case", "client CPU ms/case", "cases/s per round"):
        table.add_column(column, justify="left" if column == "side" else "right")
    for name in sides_in(res):
        s = res[name]
        rounds = ", ".join(f"{x:.0f}" for x in s["rounds_cases_per_s"])
        cells = (s["cases_per_s"], s["steps_per_s"], s["wall_ms_per_case"], s["client_cpu_ms_per_case"])
        table.add_row(name, *(f"{x:.1f}" if x >= 100 else f"{x:.2f}" for x in cells), rounds)
    return table


SIDES = ("engine", "plain", "plain_cte", "engine_sla", "plain_sla")
BPMN_SIDE = "bpmn"


def sides_in(res: dict) -> tuple[str, ...]:
    """The sides a report has rows for: the four, and the BPMN side when it ran."""
    return SIDES + (() if res.get(BPMN_SIDE, {}).get("skipped", True) else (BPMN_SIDE,))


def _statements_table(res: dict) -> Table:
    names = sides_in(res)
    table = Table(title="SQL statements per lifecycle (+6 BEGIN, 6 COMMIT each side)")
    table.add_column("step")
    for name in names:
        table.add_column(name, justify="right")
    for step in LIFECYCLE:
        table.add_row(step.trigger, *(str(res[name]["statements_per_step"][step.trigger]) for name in names))
    table.add_row("total", *(str(res[name]["statements_per_lifecycle"]) for name in names), style="bold")
    pings = res["engine"]["pre_ping_round_trips_per_lifecycle"]
    table.add_row(
        "+ pool pre-ping",
        str(pings),
        "0",
        "0",
        str(res["engine_sla"]["pre_ping_round_trips_per_lifecycle"]),
        "0",
        *(("0",) if BPMN_SIDE in names else ()),
        style="dim",
    )
    return table


# -- main ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.transitions", description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=None, help=f"cases per batch (default {DEFAULT_CASES})")
    p.add_argument("--rounds", type=int, default=None, help=f"timed rounds per side (default {DEFAULT_ROUNDS})")
    p.add_argument(
        "--procs",
        type=int,
        default=1,
        help=f"client processes running each side at once (default 1: in this process; at most {MAX_PROCS})",
    )
    p.add_argument("--min-ratio", type=float, default=0.0, help="exit 1 if engine/plain is below this (default 0)")
    p.add_argument(
        "--smoke",
        action="store_true",
        help=f"{SMOKE_CASES} cases × 1 round (the test suite): every check, the ratios reported, "
        "--min-ratio not enforced",
    )
    p.add_argument("--admin-url", help=f"admin URL of the server (env {ADMIN_URL_ENV}; default {DEFAULT_ADMIN_URL})")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--show-sql", action="store_true", help="also print the engine's SQL for one lifecycle")
    p.add_argument(
        "--bpmn",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the BPMN side (SpiffWorkflow 3.x; default: when it is installed, else it is reported skipped)",
    )
    args = p.parse_args(argv)
    if args.cases is None:
        args.cases = SMOKE_CASES if args.smoke else DEFAULT_CASES
    if args.rounds is None:
        args.rounds = 1 if args.smoke else DEFAULT_ROUNDS
    if not 1 <= args.cases <= MAX_CASES:
        p.error(f"--cases must be between 1 and {MAX_CASES}")
    if not 1 <= args.rounds <= MAX_ROUNDS:
        p.error(f"--rounds must be between 1 and {MAX_ROUNDS}")
    if not 1 <= args.procs <= MAX_PROCS:
        p.error(f"--procs must be between 1 and {MAX_PROCS}")
    return args


def benchmark(args: argparse.Namespace, url: URL) -> tuple[dict, StatementTally]:
    engine = create_db_engine(url.render_as_string(hide_password=False))
    sessions = session_factory(engine)
    try:
        seed(engine, sessions)
        with psycopg.connect(psycopg_conninfo(url)) as conn, psycopg.connect(psycopg_conninfo(url)) as check:
            engine_lifecycle(sessions)  # load the org snapshot and the compiled workflows once
            engine_lifecycle(sessions, workflow="grid_case")
            engine_case, tally = count_engine_statements(engine, sessions)
            sla_case, sla_tally = count_engine_statements(engine, sessions, "grid_case")
            target = plain_target(check, engine_case)
            plain, plain_cte = PlainClient(conn, target), PlainClient(conn, target, cte=True)
            check_same_rows(check, engine_case, plain.lifecycle())
            check_same_rows(check, engine_case, plain_cte.lifecycle())
            plain_sla = plain_sla_client(conn, check, sla_case)
            counts = (
                count_plain_statements(plain),
                count_plain_statements(plain_cte),
                count_plain_statements(plain_sla),
            )
            sides = (
                Side("engine", lambda: engine_lifecycle(sessions)),
                Side("plain", plain.lifecycle),
                Side("plain_cte", plain_cte.lifecycle),
                Side("engine_sla", lambda: engine_lifecycle(sessions, workflow="grid_case")),
                Side("plain_sla", plain_sla.lifecycle),
            )
            bpmn = prepare_bpmn(args, conn, check)
            timed = sides + ((bpmn.side,) if bpmn.side else ())
            if args.procs == 1:
                timed_rounds(timed, check, args.cases, args.rounds)
            else:
                spec = ClientSpec(
                    url.render_as_string(hide_password=False),
                    target,
                    plain_sla.target,
                    plain_sla.script,
                    bpmn.side is not None,
                )
                try:
                    with clients(args.procs, spec) as running:
                        for side in timed:
                            side.remote = functools.partial(running.batch, side.name)
                        timed_rounds(timed, check, args.cases, args.rounds)
                except ClientError as exc:
                    raise BenchError(str(exc)) from exc
            if bpmn.side is not None:
                bpmn.stored_json_bytes = stored_json_bytes(check)
            return results(args, sides, (tally, sla_tally), counts, machine(check), bpmn), tally
    finally:
        engine.dispose()


def plain_sla_client(conn: psycopg.Connection, check: psycopg.Connection, sla_case: int) -> PlainSlaClient:
    """The PLAIN_SLA side, its script learned from the engine's case ``sla_case``, and checked: one plain
    case must have written the engine's rows, column by column (case, events, clocks, timers, outbox)."""
    try:
        script = Script.learn(check, sla_case, [step_time(i) for i in range(STEPS)])
        client = PlainSlaClient(conn, plain_target(check, sla_case), script, LIFECYCLE, step_time, GRID)
        plain_case = client.lifecycle()
    except PlainSlaError as exc:
        raise BenchError(f"plain_sla: {exc}") from exc
    check_same_rows(check, sla_case, plain_case)
    ours, theirs = sla_rows(check, plain_case), sla_rows(check, sla_case)
    for table in theirs:
        if ours[table] != theirs[table]:
            raise BenchError(
                f"plain_sla and the engine wrote different {table} rows:\n engine case {sla_case}: {theirs[table]}\n"
                f" plain_sla case {plain_case}: {ours[table]}\nfix bench/plain_sla.py"
            )
    return client


def prepare_bpmn(args: argparse.Namespace, conn: psycopg.Connection, check: psycopg.Connection) -> BpmnRun:
    """The BPMN side, ready to time: its tables made, its model parsed, one case walked through with its
    timers checked at every step, and one lifecycle's statements counted. Or why it is skipped."""
    if args.bpmn is False:
        return BpmnRun(skipped="--no-bpmn")
    side = _bpmn()
    reason = side.missing()
    if reason:
        if args.bpmn:  # asked for by name: not having it is an error
            raise BenchError(f"--bpmn: {reason}")
        return BpmnRun(skipped=reason)
    try:
        model = side.Model(WORKFLOW_FILE)
        side.create_tables(conn)
        waiting = side.check_timers(check, model, LIFECYCLE, step_time)
        client = side.BpmnClient(conn, model, LIFECYCLE, step_time)
        client.lifecycle()  # statements of one lifecycle
    except side.BpmnError as exc:
        raise BenchError(str(exc)) from exc
    statements = Counter(client.statements)

    def checked(ids: list[int]) -> None:
        try:
            side.check_batch(check, model, ids, STEPS, LIFECYCLE[-1].to_state)
        except side.BpmnError as exc:
            raise BenchError(str(exc)) from exc

    return BpmnRun(
        side=Side(BPMN_SIDE, client.lifecycle, check=checked),
        statements=statements,
        version=side.version(),
        timers_waiting=waiting,
        timers_modelled=side.timer_summary(model),
    )


def stored_json_bytes(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "SELECT octet_length(serialization::text) FROM bpmn_workflow ORDER BY case_id DESC LIMIT 1"
    ).fetchone()
    conn.commit()
    return int(row[0]) if row else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with sigterm_as_interrupt(), throwaway_database(admin_url(args.admin_url)) as url:
            res, tally = benchmark(args, url)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; database dropped", file=sys.stderr)
        return 130
    res["smoke"] = args.smoke
    if args.json:
        print(json.dumps(res, ensure_ascii=False, indent=2))
    else:
        print_table(res, tally, args.show_sql)
    if args.smoke:
        return 0  # a smoke run checks the rows; its few cases say nothing about the ratio
    if res["ratio_engine_over_plain"] < args.min_ratio:
        print(
            f"bench: engine/plain {res['ratio_engine_over_plain']:.3f} is below --min-ratio {args.min_ratio}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
