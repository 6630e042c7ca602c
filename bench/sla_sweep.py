"""Benchmark: the SLA sweep costs what is due, not what is pending or open.

One run on the real local PostgreSQL server, in throwaway databases (created, migrated
and seeded here; dropped at the end, also after an error or Ctrl-C):

(a) **backlog**: two databases, each with ``--hot`` cases that have one running clock
    (clones, made with set-based SQL, of a case the engine itself drove to
    ``in_progress``). One holds ``--small`` pending timers in all, the other ``--large``;
    all but ``--due`` of them are due later. Every round lays ``--due`` fresh due timers
    (reminders, breaches and escalation levels of those clocks, at their generation, so
    they really fire) and times ``engine.sweep.sweep()`` turning them into events and
    outbox rows. Rounds alternate between the two databases; the medians and the ratio
    large / small are reported (target ≤ 1.5).
(b) **fire rate**: timers fired per second in (a), and in one bigger batch
    (``--big-due`` due among the large backlog).
(c) **hand-rolled**: ``--open`` open cases in a mix of states, categories and
    priorities, each with its running clock and timers laid as the engine lays them;
    ``--open-due`` of them are past their deadline. The hand-rolled periodic job loads
    every open case (state, category, priority, time it entered its state) through
    psycopg and computes each deadline in Python with the same ``WorkCalendar.add``,
    keeping those due. Both run periodically (beat), so the target (≥ 50) is per run
    in steady state: a tick with ``--tick-due`` newly due timers — the job rescans
    every open case each time, the sweep touches only what fell due. Also shown: the
    catch-up sweep firing all ``--open-due`` overdue items at once (firing costs the same
    in any design, and the job here fires nothing, which favours it), the claim alone
    (finding and leasing the due items) and an idle sweep (nothing due).

Every timed sweep is checked: every due timer fired (none stale, none retried), one
``sla.*`` event per timer, as many outbox rows as the sweep staged notices, and the
pending count as intended. The hand-rolled job must find exactly the cases whose
breach timers the sweep fires.

Run it from the project root::

    .venv/bin/python -m bench.sla_sweep              # the sizes of issue 3 (a few minutes)
    .venv/bin/python -m bench.sla_sweep --quick      # small sizes, about 15 seconds
    .venv/bin/python -m bench.sla_sweep --json --check --explain
    .venv/bin/python -m bench.sla_sweep --smoke --json   # seconds: every check, no target enforced

The claim's EXPLAIN (ANALYZE, BUFFERS) runs only under ``--explain``. ``--smoke`` (run by the
test suite) uses tiny sizes and one round: every check of the rows runs and the ratios are
reported, but a target missed is not a failure, not even under ``--check``.

Exit status: 0 done; 1 a target missed under ``--check`` but not ``--smoke`` (or a crash,
with its traceback); 2 bad arguments, no server, or a check of the rows failed; 130
interrupted (Ctrl-C or SIGTERM; the databases are dropped all the same).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
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

import psycopg  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy import Engine, event  # noqa: E402
from sqlalchemy.engine import URL  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from bench.transitions import (  # noqa: E402
    ADMIN_URL_ENV,
    DEFAULT_ADMIN_URL,
    BenchError,
    admin_url,
    machine,
    psycopg_conninfo,
    sigterm_as_interrupt,
    throwaway_database,
)
from engine import cases  # noqa: E402
from engine import sweep as sweeper  # noqa: E402
from engine.calendar import WorkCalendar, load_calendars  # noqa: E402
from engine.definitions.loader import load_workflow_file  # noqa: E402
from engine.definitions.model import WorkflowDef  # noqa: E402
from engine.org import load_org_file  # noqa: E402
from engine.sla import CaseFacts, Policy, resolve  # noqa: E402
from engine.store import migrate, org_repo, workflow_repo  # noqa: E402
from engine.store.db import create_db_engine, session_factory  # noqa: E402
from engine.timeutil import DEFAULT_TZ  # noqa: E402

ORG_FILE = ROOT / "config" / "org" / "shengli.yaml"
WORKFLOW_FILE = ROOT / "workflows" / "grid_case.yaml"
CALENDAR_FILE = ROOT / "config" / "calendars.yaml"

GRID = "mayingtai-01"
WORKER = "p-an-yixuan"  # grid worker of mayingtai-01; the template case's assignee
CENTER = "p-chen-jia"  # grid management centre
SWEEPER = "bench-sweeper"
AT = datetime(2026, 3, 19, 7, 0, tzinfo=UTC)  # Thursday 15:00 in Shanghai: every sweep and scan runs "now"
SEED_AT = AT - timedelta(days=1)  # org chart and workflow published
TEMPLATE_AT = AT - timedelta(hours=2)  # the template case is reported; three steps follow, 10 minutes apart
CODE_PREFIX = "BENCH-"
TARGET_BACKLOG_RATIO = 1.5
TARGET_HANDROLLED_RATIO = 50.0

# Due timers cycle through every kind the template's in_progress clock has (two reminders,
# the breach, three escalation levels), so every effect of the sweep is exercised.
KINDS = (("reminder", 1), ("reminder", 2), ("breach", 0), ("escalation", 1), ("escalation", 2), ("escalation", 3))

# The open cases of (c): a grid centre's ledger, mostly being handled.
STATE_MIX = (("reported", 5), ("classified", 5), ("assigned", 10), ("in_progress", 60), ("resolved", 20))
PRIORITY_MIX = (("normal", 80), ("urgent", 15), ("critical", 5))
OPEN_SEED = 20260319

LIMITS = {  # safe upper bounds: every loop and every table is bounded by these
    "due": 20_000,
    "small": 2_000_000,
    "large": 2_000_000,
    "hot": 100_000,
    "big_due": 20_000,
    "open": 200_000,
    "open_due": 20_000,
    "tick_due": 20_000,
    "rounds": 20,
    "batch": 10_000,
}
DEFAULTS = {
    "due": 1_000,
    "small": 10_000,
    "large": 1_000_000,
    "hot": 1_000,
    "big_due": 5_000,
    "open": 100_000,
    "open_due": 1_000,
    "tick_due": 10,
    "rounds": 5,
    "batch": 500,
}
SMOKE = {  # seconds: every check of every part, sizes that say nothing about the targets
    "due": 12,
    "small": 40,
    "large": 400,
    "hot": 12,
    "big_due": 24,
    "open": 300,
    "open_due": 12,
    "tick_due": 3,
    "rounds": 1,
}
QUICK = {
    "due": 100,
    "small": 1_000,
    "large": 50_000,
    "hot": 100,
    "big_due": 500,
    "open": 10_000,
    "open_due": 100,
    "tick_due": 10,
    "rounds": 3,
}


# -- one database ----------------------------------------------------------------------


@dataclass
class Db:
    """A throwaway database, migrated and seeded, with its template case driven to in_progress."""

    label: str
    url: URL
    engine: Engine
    sessions: sessionmaker[Session]
    conn: psycopg.Connection  # for bulk SQL and checks, outside the timed code
    template_case: int = 0
    template_clock: int = 0  # the template's running in_progress clock

    def one(self, sql: str, params: Any = None) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        self.conn.commit()
        return row[0] if row else None

    def run(self, sql: str, params: Any = None) -> int:
        cur = self.conn.execute(sql, params)
        self.conn.commit()
        return cur.rowcount

    def pending(self) -> int:
        return int(self.one("SELECT count(*) FROM sla_timer WHERE status = 'pending'"))

    def pending_due(self, at: datetime) -> int:
        return int(self.one("SELECT count(*) FROM sla_timer WHERE status = 'pending' AND fire_at <= %s", (at,)))

    def analyze(self) -> None:
        self.conn.commit()
        self.conn.autocommit = True
        try:
            self.conn.execute("VACUUM (ANALYZE) cases, sla_clock, sla_timer, case_event, outbox")
        finally:
            self.conn.autocommit = False


@contextmanager
def database(
    admin: URL, label: str, workflow: Any, calendars: dict[str, WorkCalendar], say: Callable[[str], None]
) -> Iterator[Db]:
    """A seeded throwaway database; its connections are closed and the database dropped on the way out."""
    with throwaway_database(admin) as url:
        say(f"{label}: database {url.database}")
        engine = create_db_engine(url.render_as_string(hide_password=False))
        try:
            with psycopg.connect(psycopg_conninfo(url)) as conn:
                db = Db(label, url, engine, session_factory(engine), conn)
                seed(db, workflow, calendars)
                yield db
        finally:
            engine.dispose()


def seed(db: Db, workflow: Any, calendars: dict[str, WorkCalendar]) -> None:
    """Migrate, load the org chart and the workflow, drive one case to in_progress through the engine."""
    migrate.upgrade(db.engine)
    with db.sessions.begin() as session:
        org_repo.apply_org_chart(session, load_org_file(ORG_FILE), SEED_AT)
        workflow_repo.publish(session, workflow, SEED_AT)
    steps = (
        ("classify", CENTER, {"category": "water_supply", "priority": "normal"}),
        ("assign", CENTER, {"assignee": WORKER}),
        ("accept", WORKER, {}),
    )
    with db.sessions.begin() as session:
        case_id = cases.report(
            session,
            grid_id=GRID,
            actor_id=WORKER,
            fields={"title": "马营台一组自来水管破裂"},
            at=TEMPLATE_AT,
            calendars=calendars,
        ).case.id
    for i, (trigger, actor, fields) in enumerate(steps, start=1):
        with db.sessions.begin() as session:
            cases.fire(
                session,
                case_id,
                trigger,
                actor_id=actor,
                fields=fields,
                at=TEMPLATE_AT + i * timedelta(minutes=10),
                calendars=calendars,
            )
    db.template_case = case_id
    db.template_clock = db.one(
        "SELECT id FROM sla_clock WHERE case_id = %s AND state = 'in_progress' AND status = 'running'", (case_id,)
    )
    if db.template_clock is None:
        raise BenchError("the template case has no running in_progress clock: does the workflow still time it?")
    if db.pending_due(AT):
        raise BenchError("the template case already has due timers at the benchmark's instant")


CASE_COLUMNS = (
    "code, workflow_id, workflow_name, workflow_version, status, version, title, description, category, priority,"
    " grid_id, reporter_id, assignee_id, source_channel, satisfaction, rework_count, extension_count,"
    " pending_extension, reported_at, updated_at, closed_at, overdue, escalation_level, mark"
)
CLOCK_COLUMNS = (
    "case_id, scope, state, calendar, limit_s, consumed_s, status, generation, segment_start, started_at,"
    " stopped_at, due_at, estimated, breached_at, outcome, policy, history"
)
TIMER_COLUMNS = "clock_id, case_id, kind, level, generation, fire_at, status, attempts, fired_at, dedupe_key"


# -- (a) backlog databases -------------------------------------------------------------------


def build_backlog(db: Db, hot: int, pending: int, due: int) -> None:
    """``hot`` cases with one running in_progress clock each, and ``pending - due`` timers due later."""
    db.run(
        f"INSERT INTO cases ({CASE_COLUMNS}) SELECT %(prefix)s || lpad(g::text, 7, '0'), workflow_id, workflow_name,"
        " workflow_version, status, version, title, description, category, priority, grid_id, reporter_id,"
        " assignee_id, source_channel, satisfaction, rework_count, extension_count, pending_extension, reported_at,"
        " updated_at, closed_at, overdue, escalation_level, mark"
        " FROM cases t CROSS JOIN generate_series(1, %(n)s) g WHERE t.id = %(template)s",
        {"prefix": CODE_PREFIX, "n": hot - 1, "template": db.template_case},
    )
    db.run(
        f"INSERT INTO sla_clock ({CLOCK_COLUMNS}) SELECT c.id, k.scope, k.state, k.calendar, k.limit_s, k.consumed_s,"
        " k.status, k.generation, k.segment_start, k.started_at, NULL, k.due_at, k.estimated, NULL, NULL, k.policy,"
        " k.history FROM cases c CROSS JOIN sla_clock k WHERE c.code LIKE %(prefix)s AND k.id = %(clock)s",
        {"prefix": CODE_PREFIX + "%", "clock": db.template_clock},
    )
    # The running in_progress clocks (the template's among them), numbered 0..hot-1, and the kinds to lay.
    db.run(
        "CREATE TABLE bench_hot AS SELECT (row_number() OVER (ORDER BY id) - 1)::int AS n, id AS clock_id, case_id,"
        " generation FROM sla_clock WHERE state = 'in_progress' AND status = 'running'"
    )
    db.run("ALTER TABLE bench_hot ADD PRIMARY KEY (n)")
    db.run("CREATE TABLE bench_kind (n int PRIMARY KEY, kind text, level int)")
    with db.conn.cursor() as cur:
        cur.executemany("INSERT INTO bench_kind VALUES (%s, %s, %s)", [(i, k, lv) for i, (k, lv) in enumerate(KINDS)])
    db.conn.commit()
    if db.one("SELECT count(*) FROM bench_hot") != hot:
        raise BenchError(f"{db.label}: expected {hot} running clocks to lay timers on")
    later = pending - due - db.pending()
    if later < 0:
        raise BenchError(f"{db.label}: {pending} pending timers cannot hold {due} due ones and the template's")
    # Due later: from a day after the sweep's instant to a year after, evenly.
    db.run(
        f"INSERT INTO sla_timer ({TIMER_COLUMNS}) SELECT h.clock_id, h.case_id, k.kind, k.level, h.generation,"
        " %(start)s + make_interval(secs => g * %(step)s), 'pending', 0, NULL, 'bench:later:' || g"
        " FROM generate_series(1, %(n)s) g JOIN bench_hot h ON h.n = g %% %(hot)s JOIN bench_kind k ON k.n = g %% 6",
        {"start": AT + timedelta(days=1), "step": 365 * 86400 / max(later, 1), "n": later, "hot": hot},
    )
    db.analyze()


def arm(db: Db, tag: str, due: int) -> None:
    """Lay ``due`` fresh timers due in the hour before the sweep's instant, spread over the hot clocks."""
    hot = db.one("SELECT count(*) FROM bench_hot")
    db.run(
        f"INSERT INTO sla_timer ({TIMER_COLUMNS}) SELECT h.clock_id, h.case_id, k.kind, k.level, h.generation,"
        " %(at)s - make_interval(secs => 1 + g %% 3600), 'pending', 0, NULL, 'bench:' || %(tag)s || ':' || g"
        " FROM generate_series(1, %(n)s) g JOIN bench_hot h ON h.n = g %% %(hot)s JOIN bench_kind k ON k.n = g %% 6",
        {"at": AT, "tag": tag, "n": due, "hot": hot},
    )


# -- timing one sweep -------------------------------------------------------------------------


@dataclass
class Sample:
    seconds: float
    cpu_seconds: float  # this process only: Python, SQLAlchemy, psycopg
    claim_seconds: float  # inside the sweep, the claim statements (and their transactions)
    fired: int
    notices: int


@contextmanager
def timed_claims(into: list[float]) -> Iterator[None]:
    """Add up the time spent in ``engine.sweep.claim`` while a sweep runs (sweep looks it up per call)."""
    real = sweeper.claim

    def claim(*args: Any, **kwargs: Any) -> list[int]:
        started = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - started)

    sweeper.claim = claim  # type: ignore[assignment]
    try:
        yield
    finally:
        sweeper.claim = real  # type: ignore[assignment]


def timed_sweep(db: Db, expect: int, batch: int, what: str, pending: int | None = None) -> Sample:
    """One sweep at AT that must fire exactly ``expect`` timers (among ``pending``); checked against its rows."""
    pending_before = db.pending()
    if pending is not None and pending_before != pending:
        raise BenchError(f"{db.label}, {what}: {pending_before:,} pending timers before the sweep, not {pending:,}")
    events_before = db.one("SELECT count(*) FROM case_event WHERE trigger LIKE 'sla.%%'")
    outbox_before = db.one("SELECT count(*) FROM outbox")
    claims: list[float] = []
    with timed_claims(claims):
        started, cpu_started = time.perf_counter(), time.process_time()
        report = sweeper.sweep(db.sessions.begin, AT, SWEEPER, batch=batch)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    notices = sum(f["notices"] for f in report.fired)
    problems = []
    if (report.claimed, len(report.fired), report.stale, report.retried) != (expect, expect, 0, 0):
        problems.append(
            f"claimed {report.claimed}, fired {len(report.fired)}, stale {report.stale}, "
            f"retried {report.retried}; expected {expect} fired, none stale or retried"
        )
    events = db.one("SELECT count(*) FROM case_event WHERE trigger LIKE 'sla.%%'") - events_before
    outbox = db.one("SELECT count(*) FROM outbox") - outbox_before
    pending_after = db.pending()
    if events != expect:
        problems.append(f"{events} sla.* events written for {expect} timers")
    if outbox != notices:
        problems.append(f"{outbox} outbox rows written, the sweep reported {notices} notices")
    if pending_before - pending_after != expect:
        problems.append(f"pending went {pending_before} → {pending_after}")
    if problems:
        raise BenchError(f"{db.label}, {what}: " + "; ".join(problems))
    return Sample(seconds, cpu, sum(claims), expect, notices)


@dataclass
class StatementCount:
    total: int = 0
    fired: int = 0

    @property
    def per_timer(self) -> float:
        return self.total / self.fired if self.fired else 0.0


def counted_sweep(db: Db, expect: int, batch: int, pending: int) -> tuple[Sample, StatementCount]:
    """An untimed sweep (the warm-up) that counts the SQL statements it sends, savepoints included.

    They are counted at the driver (``psycopg.Cursor``), where every path meets: SQLAlchemy's,
    ``case_repo._PG().run``, and the pipeline of ``case_repo.write_fired``, whose raw cursors
    no SQLAlchemy event sees. An ``executemany`` is one statement per row (in a pipeline each is
    sent on its own, in one round trip). The bench's own connection (its checks) is left out;
    BEGIN and COMMIT, which psycopg sends itself, are not counted.
    """
    count = StatementCount()
    execute, executemany = psycopg.Cursor.execute, psycopg.Cursor.executemany

    def counted_execute(cursor, query, params=None, **kwargs):  # type: ignore[no-untyped-def]
        if cursor.connection is not db.conn:
            count.total += 1
        return execute(cursor, query, params, **kwargs)

    def counted_executemany(cursor, query, params_seq, **kwargs):  # type: ignore[no-untyped-def]
        params_seq = list(params_seq)
        if cursor.connection is not db.conn:
            count.total += len(params_seq)
        return executemany(cursor, query, params_seq, **kwargs)

    psycopg.Cursor.execute = counted_execute  # type: ignore[method-assign]
    psycopg.Cursor.executemany = counted_executemany  # type: ignore[method-assign]
    try:
        sample = timed_sweep(db, expect, batch, "warm-up", pending)
    finally:
        psycopg.Cursor.execute = execute  # type: ignore[method-assign]
        psycopg.Cursor.executemany = executemany  # type: ignore[method-assign]
    count.fired = sample.fired
    return sample, count


def claim_statement(db: Db, batch: int) -> tuple[str, Any]:
    """The SQL and parameters the engine's claim sends to the driver, from a claim rolled back."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn, _cursor, statement, params, _context, _many):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("UPDATE SLA_TIMER"):
            sent.append((statement, params))

    event.listen(db.engine, "before_cursor_execute", capture)
    session = db.sessions()
    try:
        sweeper.claim(session, AT, "bench-explain", batch)
    finally:
        session.rollback()
        session.close()
        event.remove(db.engine, "before_cursor_execute", capture)
    if len(sent) != 1:
        raise BenchError(f"{db.label}: the claim sent {len(sent)} UPDATE sla_timer statements, expected one")
    return sent[0]


def explain_claim(db: Db, batch: int) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the engine's own claim statement, in a transaction rolled back.

    The statement is the one SQLAlchemy compiled for the claim (captured from a claim rolled
    back), run on the bench's own psycopg connection. EXPLAIN answers one text column per
    line, not the claim's ``(id, fire_at)``, so it must not go through the claim's result
    processing: fed to it, SQLAlchemy's compiled row processors read past the row (a segfault).
    """
    statement, params = claim_statement(db, batch)
    try:
        rows = db.conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params).fetchall()
    finally:
        db.conn.rollback()  # ANALYZE ran the UPDATE: the timers stay unclaimed
    plan = [str(row[0]) for row in rows]
    if not any("sla_timer" in line for line in plan):
        raise BenchError(f"{db.label}: the claim's EXPLAIN does not mention sla_timer: {plan[:3]}")
    return plan


def claim_only(db: Db, expect: int) -> float:
    """Time finding and leasing every due timer in one claim, rolled back (nothing fires)."""
    session = db.sessions()
    try:
        started = time.perf_counter()
        ids = sweeper.claim(session, AT, "bench-claim", batch=expect)
        session.rollback()
        seconds = time.perf_counter() - started
    finally:
        session.close()
    if len(ids) != expect:
        raise BenchError(f"{db.label}: the claim found {len(ids)} due timers, expected {expect}")
    return seconds


# -- (c) open cases and the hand-rolled job --------------------------------------------------


@dataclass
class OpenCase:
    code: str
    state: str
    category: str
    priority: str
    entered: datetime  # when it entered its state: the clock's start
    policy: int = 0
    begin: datetime | None = None
    due_at: datetime | None = None
    estimated: bool = False
    timers: list[tuple[str, int, datetime, str]] = field(default_factory=list)


class Rules:
    """The workflow's time limits, resolved once per (state, category, priority, month) by the engine."""

    def __init__(self, definition: WorkflowDef, calendars: dict[str, WorkCalendar]):
        self.definition = definition
        self.calendars = calendars
        self.policies: list[Policy] = []
        self._index: dict[tuple, int | None] = {}

    def policy_index(self, state: str, category: str | None, priority: str | None, month: int) -> int | None:
        key = (state, category, priority, month)
        if key not in self._index:
            spec = self.definition.states[state].sla
            if not spec:
                self._index[key] = None
            else:
                self.policies.append(
                    resolve(self.definition, spec, CaseFacts(0, category, priority), self.calendars, month)
                )
                self._index[key] = len(self.policies) - 1
        return self._index[key]


def plan_open_cases(n: int, due: int, rules: Rules, categories: list[str]) -> list[OpenCase]:
    """``n`` open cases, exactly ``due`` of them past their deadline, with their clocks' timers.

    Entry times are spread over the three days before AT. A case may be overdue only in a
    state whose time limit has no escalation ladder, so that each overdue case has exactly one
    due timer (its breach); any other case found overdue is moved to "entered 10 minutes ago",
    and if too few are overdue, cases are moved to "assigned a day ago". Reminders already
    past are stored as fired, as the sweep would have left them.
    """
    rng = random.Random(OPEN_SEED)
    calendars = rules.calendars
    states, state_w = zip(*STATE_MIX, strict=True)
    prios, prio_w = zip(*PRIORITY_MIX, strict=True)
    ladderless = {s for s, _ in STATE_MIX if not rules.definition.states[s].sla.get("escalation")}
    planned = []
    for i in range(n):
        state = rng.choices(states, state_w)[0]
        entered = AT - timedelta(seconds=rng.randrange(0, 3 * 86400))
        planned.append(
            OpenCase(f"{CODE_PREFIX}{i + 1:07d}", state, rng.choice(categories), rng.choices(prios, prio_w)[0], entered)
        )

    def lay(case: OpenCase) -> None:
        idx = rules.policy_index(case.state, case.category, case.priority, case.entered.astimezone(DEFAULT_TZ).month)
        assert idx is not None
        policy = rules.policies[idx]
        calendar = calendars[policy.calendar]
        case.policy = idx
        case.begin = calendar.next_working_instant(case.entered)
        deadline = calendar.add(case.begin, timedelta(seconds=policy.limit_s))
        case.due_at, case.estimated = deadline.at, deadline.estimated
        # As engine.sla.Clocks._lay lays them for a fresh clock.
        case.timers = []
        for level, reminder in enumerate(policy.reminders, start=1):
            point = reminder.consumed_at(policy.limit_s)
            if point > 0:
                case.timers.append(("reminder", level, calendar.add(case.begin, timedelta(seconds=point)).at, ""))
        case.timers.append(("breach", 0, case.due_at, ""))
        for level, step in enumerate(policy.ladder, start=1):
            case.timers.append(("escalation", level, calendar.add(case.due_at, timedelta(seconds=step.after_s)).at, ""))
        case.timers = [(k, lv, t, "fired" if t <= AT and k == "reminder" else "pending") for k, lv, t, _ in case.timers]

    for case in planned:
        lay(case)
    overdue = [c for c in planned if c.due_at <= AT and c.state in ladderless]
    fresh = [c for c in planned if c.due_at <= AT and c.state not in ladderless] + overdue[due:]
    if len(overdue) < due:
        spare = [c for c in planned if c.due_at > AT][: due - len(overdue)]
        for case in spare:
            case.state, case.entered = "assigned", AT - timedelta(days=1, seconds=rng.randrange(0, 7200))
            lay(case)
        overdue += spare
    for case in fresh:
        case.entered = AT - timedelta(seconds=rng.randrange(0, 600))
        lay(case)
    overdue = overdue[:due]
    late = [c for c in planned if c.due_at <= AT]
    due_timers = [t for c in planned for t in c.timers if t[3] == "pending" and t[2] <= AT]
    if len(late) != due or len(due_timers) != due or any(c.state not in ladderless for c in late):
        raise BenchError(
            f"could not plan {due} overdue cases among {n} (got {len(late)} overdue, "
            f"{len(due_timers)} due timers): the workflow's limits changed?"
        )
    return planned


def build_open(db: Db, planned: list[OpenCase], rules: Rules) -> None:
    """Load the planned cases, one running clock each and its timers, with COPY and INSERT … SELECT."""
    db.run(
        "CREATE TABLE bench_open (code text PRIMARY KEY, state text, category text, priority text,"
        " entered timestamptz, begin_at timestamptz, due_at timestamptz, estimated bool, policy int, overdue bool)"
    )
    db.run("CREATE TABLE bench_policy (key int PRIMARY KEY, calendar text, limit_s int, policy jsonb)")
    db.run("CREATE TABLE bench_open_timer (code text, kind text, level int, fire_at timestamptz, status text)")
    with db.conn.cursor() as cur:
        with cur.copy("COPY bench_policy FROM STDIN") as copy:
            for key, policy in enumerate(rules.policies):
                copy.write_row((key, policy.calendar, policy.limit_s, Jsonb(policy.to_json())))
        with cur.copy("COPY bench_open FROM STDIN") as copy:
            for c in planned:
                copy.write_row(
                    (
                        c.code,
                        c.state,
                        c.category,
                        c.priority,
                        c.entered,
                        c.begin,
                        c.due_at,
                        c.estimated,
                        c.policy,
                        c.due_at <= AT,
                    )
                )
        with cur.copy("COPY bench_open_timer FROM STDIN") as copy:
            for c in planned:
                for kind, level, fire_at, status in c.timers:
                    copy.write_row((c.code, kind, level, fire_at, status))
    db.conn.commit()
    db.run(
        f"INSERT INTO cases ({CASE_COLUMNS}) SELECT s.code, t.workflow_id, t.workflow_name, t.workflow_version,"
        " s.state, t.version, t.title, t.description, s.category, s.priority, t.grid_id, t.reporter_id,"
        " CASE WHEN s.state IN ('reported', 'classified') THEN NULL ELSE t.assignee_id END, t.source_channel, NULL,"
        " 0, 0, NULL, s.entered - interval '1 hour', s.entered, NULL, false, 0, NULL"
        " FROM bench_open s CROSS JOIN cases t WHERE t.id = %s",
        (db.template_case,),
    )
    db.run(
        f"INSERT INTO sla_clock ({CLOCK_COLUMNS}) SELECT c.id, 'state', s.state, p.calendar, p.limit_s, 0, 'running',"
        " 1, s.begin_at, s.entered, NULL, s.due_at, s.estimated, NULL, NULL, p.policy, '[]'::jsonb"
        " FROM bench_open s JOIN cases c ON c.code = s.code JOIN bench_policy p ON p.key = s.policy"
    )
    db.run(
        f"INSERT INTO sla_timer ({TIMER_COLUMNS}) SELECT k.id, k.case_id, t.kind, t.level, 1, t.fire_at, t.status, 0,"
        " CASE WHEN t.status = 'fired' THEN t.fire_at END, k.id || ':1:' || t.kind || ':' || t.level"
        " FROM bench_open_timer t JOIN cases c ON c.code = t.code JOIN sla_clock k ON k.case_id = c.id"
    )
    db.analyze()


def rearm_overdue(db: Db, tag: str, limit: int) -> int:
    """Fresh breach timers for (the first ``limit``) overdue clocks: they become due again."""
    return db.run(
        f"INSERT INTO sla_timer ({TIMER_COLUMNS}) SELECT k.id, k.case_id, 'breach', 0, k.generation, k.due_at,"
        " 'pending', 0, NULL, 'bench:' || %(tag)s || ':' || k.id FROM sla_clock k"
        " WHERE k.status = 'running' AND k.due_at <= %(at)s ORDER BY k.id LIMIT %(n)s",
        {"tag": tag, "at": AT, "n": limit},
    )


def restore_entry_times(db: Db) -> None:
    """The sweep stamps ``updated_at`` on the cases it fires for; put back their state-entry times."""
    db.run(
        "UPDATE cases c SET updated_at = s.entered FROM bench_open s"
        " WHERE s.overdue AND c.code = s.code AND c.updated_at <> s.entered"
    )


class HandRolled:
    """The periodic job of a hand-rolled system: load every open case, compute its deadline, keep the due.

    It reads what such a system keeps on the case row (state, category, priority, and
    ``updated_at``, the time of its last step, i.e. when it entered its state), resolves
    the limit from a table built once per (state, category, priority, month), and adds
    the limit on the same ``WorkCalendar`` the engine uses. It only finds the due cases:
    it writes nothing, sends nothing and keeps no record of what it already sent.
    """

    SQL = "SELECT id, status, category, priority, updated_at FROM cases WHERE closed_at IS NULL"

    def __init__(self, conn: psycopg.Connection, rules: Rules):
        self.conn = conn
        self.rules = rules
        self._limit: dict[tuple, tuple[WorkCalendar, timedelta] | None] = {}

    def limit(
        self, state: str, category: str | None, priority: str | None, month: int
    ) -> tuple[WorkCalendar, timedelta] | None:
        key = (state, category, priority, month)
        if key not in self._limit:
            idx = self.rules.policy_index(state, category, priority, month)
            policy = None if idx is None else self.rules.policies[idx]
            self._limit[key] = (
                None if policy is None else (self.rules.calendars[policy.calendar], timedelta(seconds=policy.limit_s))
            )
        return self._limit[key]

    def run(self, at: datetime) -> tuple[list[int], float, float, int]:
        """(due case ids, seconds loading, seconds computing, open cases seen)."""
        started = time.perf_counter()
        rows = self.conn.execute(self.SQL).fetchall()
        self.conn.commit()
        loaded = time.perf_counter()
        tz, limit, due = DEFAULT_TZ, self.limit, []
        for case_id, state, category, priority, entered in rows:
            rule = limit(state, category, priority, entered.astimezone(tz).month)
            if rule is not None and rule[0].add(entered, rule[1]).at <= at:
                due.append(case_id)
        return due, loaded - started, time.perf_counter() - loaded, len(rows)


# -- the run ----------------------------------------------------------------------------------


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def rotate(items: list, r: int) -> list:
    return items[r % len(items) :] + items[: r % len(items)]


def sample_dict(samples: list[Sample]) -> dict[str, Any]:
    secs = [s.seconds for s in samples]
    fired = samples[0].fired if samples else 0
    return {
        "median_ms": round(1000 * median(secs), 2),
        "rounds_ms": [round(1000 * s, 2) for s in secs],
        "claim_median_ms": round(1000 * median([s.claim_seconds for s in samples]), 2),
        "fire_median_ms": round(1000 * median([s.seconds - s.claim_seconds for s in samples]), 2),
        "client_cpu_ms_per_timer": round(1000 * median([s.cpu_seconds / max(s.fired, 1) for s in samples]), 3),
        "timers_per_s": round(fired / median(secs), 1) if samples else 0,
        "notices_per_sweep": samples[0].notices if samples else 0,
        "fired_per_sweep": fired,
    }


def run_backlog(
    args: argparse.Namespace,
    stack: ExitStack,
    admin: URL,
    workflow: Any,
    calendars: dict[str, WorkCalendar],
    say: Callable[[str], None],
) -> dict[str, Any]:
    dbs = []
    for label, size in (("small", args.small), ("large", args.large)):
        db = stack.enter_context(database(admin, label, workflow, calendars, say))
        started = time.perf_counter()
        build_backlog(db, args.hot, size, args.due)
        say(
            f"(a) {label}: {args.hot} cases, {size - args.due:,} timers due later, loaded and analyzed "
            f"in {time.perf_counter() - started:.1f} s"
        )
        dbs.append(db)
    samples: dict[str, list[Sample]] = {db.label: [] for db in dbs}
    statements: dict[str, StatementCount] = {}
    size = {"small": args.small, "large": args.large}
    for db in dbs:  # warm-up, untimed: statement counts; the org chart and caches loaded
        arm(db, "warm", args.due)
        statements[db.label] = counted_sweep(db, args.due, args.batch, size[db.label])[1]
    for r in range(args.rounds):
        for db in rotate(dbs, r):
            arm(db, f"r{r}", args.due)
            samples[db.label].append(timed_sweep(db, args.due, args.batch, f"round {r + 1}", size[db.label]))
        say(
            f"(a) round {r + 1}/{args.rounds}: "
            + ", ".join(f"{db.label} {1000 * samples[db.label][-1].seconds:.0f} ms" for db in dbs)
        )
    plans = {}
    for db in dbs if args.explain else ():
        arm(db, "explain", args.due)
        plans[db.label] = explain_claim(db, args.batch)
        timed_sweep(db, args.due, args.batch, "after EXPLAIN", size[db.label])  # the claim was rolled back
    small, large = dbs
    say(f"(b) big batch: {args.big_due:,} due among {args.large - args.due:,} due later")
    big = []
    for r in range(max(1, args.rounds // 2)):
        arm(large, f"big{r}", args.big_due)
        big.append(
            timed_sweep(large, args.big_due, args.batch, f"big batch {r + 1}", args.large - args.due + args.big_due)
        )
    ratio = median([s.seconds for s in samples["large"]]) / median([s.seconds for s in samples["small"]])
    return {
        "due": args.due,
        "hot_cases": args.hot,
        "batch": args.batch,
        "small": {
            "pending": args.small,
            **sample_dict(samples["small"]),
            "statements_per_timer": round(statements["small"].per_timer, 2),
        },
        "large": {
            "pending": args.large,
            **sample_dict(samples["large"]),
            "statements_per_timer": round(statements["large"].per_timer, 2),
        },
        "ratio_large_over_small": round(ratio, 3),
        "target_ratio_at_most": TARGET_BACKLOG_RATIO,
        "big_batch": {"due": args.big_due, "pending": args.large - args.due + args.big_due, **sample_dict(big)},
        "claim_plans": plans,
    }


def run_open(
    args: argparse.Namespace,
    stack: ExitStack,
    admin: URL,
    workflow: Any,
    calendars: dict[str, WorkCalendar],
    say: Callable[[str], None],
) -> dict[str, Any]:
    db = stack.enter_context(database(admin, "open", workflow, calendars, say))
    definition = workflow.definition
    rules = Rules(definition, calendars)
    started = time.perf_counter()
    categories = list(definition.fields["category"].values)
    planned = plan_open_cases(args.open - 1, args.open_due, rules, categories)  # the template is open too
    build_open(db, planned, rules)
    open_cases = db.one("SELECT count(*) FROM cases WHERE closed_at IS NULL")
    pending = db.pending()
    if open_cases != args.open or db.pending_due(AT) != args.open_due:
        raise BenchError(
            f"open cases: {open_cases} open, {db.pending_due(AT)} due; expected {args.open}, {args.open_due}"
        )
    say(
        f"(c) {open_cases:,} open cases, {pending:,} pending timers ({args.open_due} due), planned and loaded in "
        f"{time.perf_counter() - started:.1f} s"
    )
    expected = sorted(
        r[0]
        for r in db.conn.execute(
            "SELECT case_id FROM sla_timer WHERE status = 'pending' AND fire_at <= %s", (AT,)
        ).fetchall()
    )
    db.conn.commit()
    job = HandRolled(db.conn, rules)
    found = sorted(job.run(AT)[0])  # warm-up, and the check: the job finds the cases the sweep fires for
    if found != expected:
        raise BenchError(
            f"the hand-rolled job found {len(found)} due cases, the sweep has {len(expected)} "
            "due timers on other cases: the two sides disagree"
        )
    timed_sweep(db, args.open_due, args.batch, "warm-up", pending)
    restore_entry_times(db)
    hand: list[tuple[float, float]] = []
    sweeps: list[Sample] = []
    ticks: list[Sample] = []
    idles: list[Sample] = []
    claims: list[float] = []

    def hand_rolled(r: int) -> None:
        due, load_s, compute_s, seen = job.run(AT)
        if len(due) != args.open_due or seen != args.open:
            raise BenchError(f"hand-rolled round {r + 1}: {len(due)} due among {seen}")
        hand.append((load_s, compute_s))

    def gridflow(r: int) -> None:
        rearm_overdue(db, f"c{r}", args.open_due)
        claims.append(claim_only(db, args.open_due))
        sweeps.append(timed_sweep(db, args.open_due, args.batch, f"round {r + 1}", pending))
        restore_entry_times(db)
        rearm_overdue(db, f"t{r}", args.tick_due)
        ticks.append(
            timed_sweep(db, args.tick_due, args.batch, f"tick {r + 1}", pending - args.open_due + args.tick_due)
        )
        restore_entry_times(db)
        idles.append(timed_sweep(db, 0, args.batch, f"idle {r + 1}", pending - args.open_due))

    for r in range(args.rounds):
        for side in rotate([hand_rolled, gridflow], r):
            side(r)
        say(
            f"(c) round {r + 1}/{args.rounds}: hand-rolled {1000 * sum(hand[-1]):.0f} ms, sweep "
            f"{1000 * sweeps[-1].seconds:.0f} ms, claim {1000 * claims[-1]:.1f} ms, tick {1000 * ticks[-1].seconds:.1f} ms, "
            f"idle {1000 * idles[-1].seconds:.1f} ms"
        )
    hand_s = median([a + b for a, b in hand])
    sweep_s, tick_s = median([s.seconds for s in sweeps]), median([s.seconds for s in ticks])
    idle_s = median([s.seconds for s in idles])
    # The sweep's cost: what it costs with nothing due, plus a cost per due timer; hence how many
    # due timers one sweep may fire and still be 50 times faster than the job.
    per_timer = max(sweep_s - idle_s, 0.0) / args.open_due
    break_even = max(0, int((hand_s / TARGET_HANDROLLED_RATIO - idle_s) / per_timer)) if per_timer > 0 else None
    return {
        "open_cases": args.open,
        "pending_timers": pending,
        "due": args.open_due,
        "tick_due": args.tick_due,
        "hand_rolled": {
            "median_ms": round(1000 * hand_s, 2),
            "rounds_ms": [round(1000 * (a + b), 2) for a, b in hand],
            "load_median_ms": round(1000 * median([a for a, _ in hand]), 2),
            "compute_median_ms": round(1000 * median([b for _, b in hand]), 2),
            "us_per_case": round(1e6 * hand_s / args.open, 2),
        },
        "sweep": sample_dict(sweeps),
        "claim_only": {"median_ms": round(1000 * median(claims), 2), "rounds_ms": [round(1000 * c, 2) for c in claims]},
        "tick": sample_dict(ticks),
        "idle": {"median_ms": round(1000 * idle_s, 2), "rounds_ms": [round(1000 * s.seconds, 2) for s in idles]},
        "ratio_hand_rolled_over_sweep": round(hand_s / sweep_s, 3),
        "ratio_hand_rolled_over_claim": round(hand_s / median(claims), 3),
        "ratio_hand_rolled_over_tick": round(hand_s / tick_s, 3),
        "ratio_hand_rolled_over_idle": round(hand_s / idle_s, 3),
        "sweep_fixed_ms": round(1000 * idle_s, 2),
        "sweep_ms_per_timer": round(1000 * per_timer, 3),
        "due_per_sweep_at_target": break_even,
        "target_ratio_at_least": TARGET_HANDROLLED_RATIO,
    }


def benchmark(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    started = time.perf_counter()
    admin = admin_url(args.admin_url)
    calendars = load_calendars(CALENDAR_FILE)
    workflow = load_workflow_file(WORKFLOW_FILE, calendars)
    result: dict[str, Any] = {"benchmark": "SLA sweep: cost by due timers, not by backlog or open cases"}
    # Each part's throwaway databases are dropped when it ends, whatever happens.
    if not args.skip_backlog:
        with ExitStack() as stack:
            result["backlog"] = run_backlog(args, stack, admin, workflow, calendars, say)
    if not args.skip_open:
        with ExitStack() as stack:
            result["hand_rolled"] = run_open(args, stack, admin, workflow, calendars, say)
    with psycopg.connect(psycopg_conninfo(admin)) as conn:
        result["machine"] = machine(conn)
    result["sizes"] = {k: getattr(args, k) for k in DEFAULTS}
    result["smoke"] = args.smoke
    result["targets"] = [{"target": text, "met": ok} for text, ok in verdicts(result)]
    result["seconds_total"] = round(time.perf_counter() - started, 1)
    return result


# -- report ------------------------------------------------------------------------------------


def verdicts(res: dict) -> list[tuple[str, bool]]:
    out = []
    if "backlog" in res:
        b = res["backlog"]
        out.append(
            (
                f"(a) large/small = {b['ratio_large_over_small']:.3f} (target ≤ {TARGET_BACKLOG_RATIO})",
                b["ratio_large_over_small"] <= TARGET_BACKLOG_RATIO,
            )
        )
    if "hand_rolled" in res:
        h = res["hand_rolled"]
        out.append(
            (
                f"(c) one periodic run with {h['tick_due']} newly due: hand-rolled/sweep = "
                f"{h['ratio_hand_rolled_over_tick']:.1f} (target ≥ {TARGET_HANDROLLED_RATIO:.0f}; catching up "
                f"{h['due']} overdue at once: {h['ratio_hand_rolled_over_sweep']:.2f})",
                h["ratio_hand_rolled_over_tick"] >= TARGET_HANDROLLED_RATIO,
            )
        )
    return out


def print_report(res: dict, show_plans: bool) -> None:
    console = Console(width=max(Console().width, 120))
    m = res["machine"]
    console.print(f"[bold]gridflow bench: {res['benchmark']}[/bold]")
    console.print(f"date     {m['date']}", highlight=False)
    console.print(f"machine  {m['platform']}, {m['cpus']} CPUs, Python {m['python']}", highlight=False)
    console.print(f"database PostgreSQL {m['postgresql']}", highlight=False)
    console.print(f"drivers  SQLAlchemy {m['sqlalchemy']}, psycopg {m['psycopg']}", highlight=False)
    if "backlog" in res:
        b = res["backlog"]
        console.print(
            f"(a)+(b): {b['hot_cases']:,} cases with a running clock; sweep batch {b['batch']}; "
            f"median of {len(b['small']['rounds_ms'])} rounds after an untimed warm-up",
            highlight=False,
        )
        table = Table(title="(a) sweep latency by backlog, (b) fire rate")
        for col in (
            "pending timers",
            "due",
            "sweep ms",
            "claim ms",
            "fire ms",
            "timers/s",
            "SQL/timer",
            "client CPU ms/timer",
            "sweep ms per round",
        ):
            table.add_column(col, justify="right")
        for name in ("small", "large", "big_batch"):
            s = b[name]
            due = b["due"] if name != "big_batch" else s["due"]
            table.add_row(
                f"{s['pending']:,}",
                f"{due:,}",
                f"{s['median_ms']:.1f}",
                f"{s['claim_median_ms']:.1f}",
                f"{s['fire_median_ms']:.1f}",
                f"{s['timers_per_s']:.0f}",
                f"{s.get('statements_per_timer', float('nan')):.2f}" if name != "big_batch" else "",
                f"{s['client_cpu_ms_per_timer']:.2f}",
                ", ".join(f"{x:.0f}" for x in s["rounds_ms"]),
            )
        console.print(table)
        console.print(
            f"ratio large/small = [bold]{b['ratio_large_over_small']:.3f}[/bold] (target ≤ {TARGET_BACKLOG_RATIO})"
        )
    if "hand_rolled" in res:
        h = res["hand_rolled"]
        hr = h["hand_rolled"]
        console.print(
            f"(c): {h['open_cases']:,} open cases, {h['pending_timers']:,} pending timers, "
            f"{h['due']:,} overdue; median of {len(hr['rounds_ms'])} rounds",
            highlight=False,
        )
        table = Table(title="(c) against a hand-rolled periodic job")
        for col in ("side", "what it does", "ms (median)", "hand-rolled / this", "ms per round"):
            table.add_column(col, justify="left" if col in ("side", "what it does") else "right")
        table.add_row(
            "hand-rolled",
            f"load {h['open_cases']:,} open cases ({hr['load_median_ms']:.0f} ms), "
            f"compute deadlines ({hr['compute_median_ms']:.0f} ms), keep the {h['due']:,} due",
            f"{hr['median_ms']:.1f}",
            "1",
            ", ".join(f"{x:.0f}" for x in hr["rounds_ms"]),
        )
        table.add_row(
            "gridflow sweep",
            f"claim and fire the {h['due']:,} due timers (events, outbox)",
            f"{h['sweep']['median_ms']:.1f}",
            f"{h['ratio_hand_rolled_over_sweep']:.2f}",
            ", ".join(f"{x:.0f}" for x in h["sweep"]["rounds_ms"]),
        )
        table.add_row(
            "gridflow claim",
            f"find and lease the {h['due']:,} due timers, nothing fired",
            f"{h['claim_only']['median_ms']:.1f}",
            f"{h['ratio_hand_rolled_over_claim']:.1f}",
            ", ".join(f"{x:.1f}" for x in h["claim_only"]["rounds_ms"]),
        )
        table.add_row(
            "gridflow tick",
            f"a later sweep: {h['tick_due']} newly due timers fired",
            f"{h['tick']['median_ms']:.1f}",
            f"{h['ratio_hand_rolled_over_tick']:.1f}",
            ", ".join(f"{x:.1f}" for x in h["tick"]["rounds_ms"]),
        )
        table.add_row(
            "gridflow idle",
            "a sweep with nothing due",
            f"{h['idle']['median_ms']:.1f}",
            f"{h['ratio_hand_rolled_over_idle']:.0f}",
            ", ".join(f"{x:.1f}" for x in h["idle"]["rounds_ms"]),
        )
        console.print(table)
        console.print(
            f"the sweep costs {h['sweep_fixed_ms']:.1f} ms with nothing due + {h['sweep_ms_per_timer']:.2f} ms per due "
            f"timer: it stays {TARGET_HANDROLLED_RATIO:.0f}× faster than the hand-rolled job up to "
            f"{h['due_per_sweep_at_target']} due timers per sweep",
            highlight=False,
        )
    for target in res["targets"]:
        if target["met"]:
            verdict = "[green]met[/green]"
        else:
            verdict = "missed (a smoke run: not enforced)" if res["smoke"] else "[red]MISSED[/red]"
        console.print(f"{target['target']}: {verdict}")
    if show_plans and "backlog" in res:
        for label, plan in res["backlog"]["claim_plans"].items():
            console.print(f"\nEXPLAIN (ANALYZE, BUFFERS) of the claim, {label} backlog:", highlight=False)
            console.print("\n".join(plan), markup=False, highlight=False, soft_wrap=True)
    console.print(f"total run time {res['seconds_total']:.0f} s", highlight=False)


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.sla_sweep", description=__doc__.split("\n\n")[0])
    sizes = p.add_mutually_exclusive_group()
    sizes.add_argument(
        "--quick",
        action="store_true",
        help="small sizes for a quick check: " + ", ".join(f"{k}={v}" for k, v in QUICK.items()),
    )
    sizes.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes, a few seconds (the test suite): every check runs, the ratios are reported, targets are "
        "not enforced (not even under --check): " + ", ".join(f"{k}={v}" for k, v in SMOKE.items()),
    )
    helps = {
        "due": "due timers per sweep in (a)",
        "small": "pending timers in the small backlog (due ones included)",
        "large": "pending timers in the large backlog",
        "hot": "cases with a running clock in (a)",
        "big_due": "due timers in the big batch of (b)",
        "open": "open cases in (c)",
        "open_due": "overdue cases (due timers) in (c)",
        "tick_due": "newly due timers in the steady tick of (c)",
        "rounds": "timed rounds",
        "batch": "the sweep's batch size",
    }
    for key, default in DEFAULTS.items():
        p.add_argument(
            f"--{key.replace('_', '-')}",
            type=int,
            default=None,
            help=f"{helps[key]} (default {default:,}, at most {LIMITS[key]:,})",
        )
    p.add_argument("--skip-backlog", action="store_true", help="skip (a) and (b)")
    p.add_argument("--skip-open", action="store_true", help="skip (c)")
    p.add_argument("--explain", action="store_true", help="print the claim's EXPLAIN ANALYZE in both backlogs")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--admin-url", help=f"admin URL of the server (env {ADMIN_URL_ENV}; default {DEFAULT_ADMIN_URL})")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = p.parse_args(argv)
    base = {**DEFAULTS, **(QUICK if args.quick else SMOKE if args.smoke else {})}
    for key in DEFAULTS:
        if getattr(args, key) is None:
            setattr(args, key, base[key])
        if not 1 <= getattr(args, key) <= LIMITS[key]:
            p.error(f"--{key.replace('_', '-')} must be between 1 and {LIMITS[key]:,}")
    if args.small < args.due + 10 or args.large <= args.small:
        p.error("need --small ≥ --due + 10 (the template case's timers) and --large > --small")
    if args.open_due >= args.open // 2 or args.tick_due > args.open_due:
        p.error("need --open-due < --open / 2 and --tick-due ≤ --open-due")
    if args.hot < 2:
        p.error("--hot must be at least 2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    err = Console(stderr=True)

    def say(text: str) -> None:
        err.print(f"[dim]{text}[/dim]", highlight=False)

    try:
        with sigterm_as_interrupt():  # a kill drops the databases as Ctrl-C does
            res = benchmark(args, say)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; databases dropped", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(res, ensure_ascii=False, indent=2))
    else:
        print_report(res, args.explain)
    missed = [t["target"] for t in res["targets"] if not t["met"]]
    if missed and args.check and not args.smoke:
        print("bench: missed " + "; ".join(missed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
