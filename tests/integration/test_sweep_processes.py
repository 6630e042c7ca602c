"""Several OS processes sweeping at once on PostgreSQL fire every due timer exactly once.

Each sweeper is a separate process (multiprocessing, spawn) with its own engine and connections,
as the Celery workers of the next issue will be. PostgreSQL only: SQLite has one writer at a time.
"""

from __future__ import annotations

import multiprocessing
from datetime import timedelta

from sqlalchemy import text

from engine.store.models import Case, SlaClock
from engine.sweep import sweep
from tests.integration.test_sla import CENTER_STAFF, report, sh
from tests.support import T0

WORKERS = 4
LEASE = timedelta(minutes=2)  # engine.sweep.DEFAULT_LEASE


def _sweeper(url: str, worker: str, at, batch: int, start, results) -> None:
    """One sweeper process: its own engine, one sweep, its report on the queue."""
    from engine.store.db import create_db_engine, session_factory
    from engine.sweep import sweep

    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:  # connect before the start, so the sweeps overlap
            conn.execute(text("SELECT 1"))
        start.wait(timeout=60)
        try:
            result = sweep(session_factory(engine).begin, at, worker, batch=batch)
            results.put((worker, result.claimed, len(result.fired), result.stale, result.retried, None))
        except Exception as exc:  # reported to the test
            results.put((worker, 0, 0, 0, 0, f"{exc.__class__.__name__}: {exc}"))
    finally:
        engine.dispose()


def _sweep_in_processes(db, at, batch: int) -> list[tuple]:
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(WORKERS), ctx.Queue()
    processes = [
        ctx.Process(target=_sweeper, args=(db.url, f"process-{i}", at, batch, start, results)) for i in range(WORKERS)
    ]
    for p in processes:
        p.start()
    try:
        out = [results.get(timeout=120) for _ in processes]
    finally:
        for p in processes:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in processes), [p.exitcode for p in processes]
    return out


def _build_due_timers(db, count: int) -> None:
    """``count`` reported cases, each with one due timer (its reported clock's breach), set-based.

    One case is reported through the engine; the others are copies of its rows made by
    INSERT ... SELECT, with their own codes, events, clocks and one timer each.
    """
    with db.sessions.begin() as s:
        template = report(s, T0).id
    cases = [c.name for c in Case.__table__.columns if c.name not in ("id", "code")]
    clocks = [c.name for c in SlaClock.__table__.columns if c.name not in ("id", "case_id")]
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM sla_timer"))
        conn.execute(
            text(
                f"INSERT INTO cases (code, {', '.join(cases)}) "
                f"SELECT 'SL-2026-' || lpad(g::text, 6, '0'), {', '.join('c.' + n for n in cases)} "
                "FROM cases c CROSS JOIN generate_series(2, :count) g WHERE c.id = :template"
            ),
            {"count": count, "template": template},
        )
        conn.execute(
            text(
                "INSERT INTO case_event (case_id, seq, at, actor_id, trigger, from_state, to_state, payload, "
                "workflow_version) SELECT c.id, e.seq, e.at, e.actor_id, e.trigger, e.from_state, e.to_state, "
                "e.payload, e.workflow_version FROM cases c JOIN case_event e ON e.case_id = :template "
                "WHERE c.id <> :template"
            ),
            {"template": template},
        )
        conn.execute(
            text(
                f"INSERT INTO sla_clock (case_id, {', '.join(clocks)}) "
                f"SELECT c.id, {', '.join('k.' + n for n in clocks)} "
                "FROM cases c JOIN sla_clock k ON k.case_id = :template WHERE c.id <> :template"
            ),
            {"template": template},
        )
        conn.execute(
            text(
                "INSERT INTO sla_timer (clock_id, case_id, kind, level, generation, fire_at, status, attempts, "
                "dedupe_key) SELECT k.id, k.case_id, 'breach', 0, k.generation, k.due_at, 'pending', 0, "
                "k.id || ':' || k.generation || ':breach:0' FROM sla_clock k WHERE k.state = 'reported'"
            )
        )
        conn.execute(text("UPDATE case_counter SET last = :count"), {"count": count})
        assert conn.execute(text("SELECT count(*) FROM sla_timer WHERE status = 'pending'")).scalar() == count


def _one(conn, sql: str) -> int:
    return conn.execute(text(sql)).scalar()


def test_processes_sweeping_10000_due_timers_fire_each_exactly_once(pg_db):
    db = pg_db
    count = 10_000
    _build_due_timers(db, count)
    at = sh(2026, 3, 2, 11)  # the reported clocks' breach: Monday 11:00
    outcomes = _sweep_in_processes(db, at, batch=200)
    assert [o[5] for o in outcomes] == [None] * WORKERS, outcomes
    assert sum(o[2] for o in outcomes) == count, outcomes
    assert sum(o[1] for o in outcomes) == count  # no timer claimed twice (the leases did not run out)
    assert sum(o[3] for o in outcomes) == 0
    assert sum(1 for o in outcomes if o[2]) >= 2, outcomes  # the sweeps really overlapped
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT status, count(*) FROM sla_timer GROUP BY status")).all() == [("fired", count)]
        assert _one(conn, "SELECT count(*) FROM case_event WHERE trigger = 'sla.breach'") == count
        assert (
            _one(conn, "SELECT count(DISTINCT payload->>'timer') FROM case_event WHERE trigger LIKE 'sla.%'") == count
        )
        assert _one(conn, "SELECT count(*) FROM outbox WHERE dedupe_key LIKE 'timer:%'") == count * len(CENTER_STAFF)
        assert (
            _one(
                conn,
                "SELECT count(*) FROM (SELECT 1 FROM outbox WHERE dedupe_key LIKE 'timer:%' GROUP BY params->>'timer', recipient_id "
                "HAVING count(*) > 1) d",
            )
            == 0
        )
        assert (
            _one(conn, "SELECT count(DISTINCT params->>'timer') FROM outbox WHERE dedupe_key LIKE 'timer:%'") == count
        )
        assert _one(conn, "SELECT count(*) FROM cases WHERE version <> 2 OR NOT overdue") == 0
        # the invariant: every case's events are numbered 1..version
        assert (
            _one(
                conn,
                "SELECT count(*) FROM cases c WHERE (SELECT array_agg(seq ORDER BY seq) FROM case_event e "
                "WHERE e.case_id = c.id) <> ARRAY(SELECT generate_series(1, c.version))",
            )
            == 0
        )
        assert _one(conn, "SELECT count(*) FROM sla_clock WHERE state = 'reported' AND breached_at = due_at") == count
        fired_by = dict(conn.execute(text("SELECT claimed_by, count(*) FROM sla_timer GROUP BY claimed_by")).all())
    assert fired_by == {o[0]: o[2] for o in outcomes if o[2]}


def test_processes_sweeping_several_timers_of_each_case_fire_each_exactly_once(pg_db):
    """300 cases with five due timers each (reported through the engine, swept a month late): the
    sweepers contend for the same cases. No sweeper may fail (a deadlock between two of them would be
    a failure); a lost race is retried by a later sweep once the lease has run out.
    """
    db = pg_db
    with db.sessions.begin() as s:
        for _ in range(300):
            report(s, T0)
    at = sh(2026, 3, 30, 9)  # reported reminder and breach, case reminder, breach and 督办
    outcomes = _sweep_in_processes(db, at, batch=50)
    assert [o[5] for o in outcomes] == [None] * WORKERS, outcomes
    later = sweep(db.sessions.begin, at + LEASE + timedelta(seconds=1), "cleanup")
    assert sum(o[2] for o in outcomes) + len(later.fired) == 1500
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT status, count(*) FROM sla_timer GROUP BY status")).all() == [("fired", 1500)]
        assert _one(conn, "SELECT count(*) FROM case_event WHERE trigger LIKE 'sla.%'") == 1500
        assert _one(conn, "SELECT count(DISTINCT payload->>'timer') FROM case_event WHERE trigger LIKE 'sla.%'") == 1500
        assert (
            _one(
                conn,
                "SELECT count(*) FROM (SELECT 1 FROM outbox WHERE dedupe_key LIKE 'timer:%' GROUP BY params->>'timer', recipient_id "
                "HAVING count(*) > 1) d",
            )
            == 0
        )
        # per case: 3 + 3 (reported reminder, breach: centre) + 3 (case reminder: centre)
        # + 4 (case breach: centre, village secretary) + 6 (督办: township leaders, centre)
        assert _one(conn, "SELECT count(*) FROM outbox WHERE dedupe_key LIKE 'timer:%'") == 300 * 19
        assert _one(conn, "SELECT count(*) FROM cases WHERE version <> 6 OR mark <> 'supervision_order'") == 0
        assert (
            _one(
                conn,
                "SELECT count(*) FROM cases c WHERE (SELECT array_agg(seq ORDER BY seq) FROM case_event e "
                "WHERE e.case_id = c.id) <> ARRAY(SELECT generate_series(1, c.version))",
            )
            == 0
        )
