"""Compare-and-set on cases.version: of concurrent updates exactly one wins."""

from __future__ import annotations

import threading

import pytest

from engine import cases
from engine.errors import ConcurrentUpdate, TriggerNotAllowed
from engine.store import case_repo
from engine.store.models import Case, CaseEvent
from tests.support import CENTER, GRID, GRID_WORKER, T0, calendars

CLASSIFY = {"category": "water_supply", "priority": "urgent"}


def _new_case(db) -> int:
    with db.sessions.begin() as s:
        return cases.report(
            s, grid_id=GRID, calendars=calendars(), actor_id=GRID_WORKER, fields={"title": "并发"}, at=T0
        ).case.id


def _race(db, case_id: int, workers: int, expected: int | None) -> list[object]:
    barrier = threading.Barrier(workers)
    outcomes: list[object] = [None] * workers

    def attempt(i: int) -> None:
        barrier.wait(timeout=10)
        try:
            with db.sessions.begin() as s:
                cases.fire(
                    s,
                    case_id,
                    "classify",
                    calendars=calendars(),
                    actor_id=CENTER,
                    fields=dict(CLASSIFY),
                    at=T0,
                    expected_version=expected,
                )
            outcomes[i] = "won"
        except Exception as exc:  # recorded and asserted on below
            outcomes[i] = exc

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return outcomes


def test_exactly_one_of_many_concurrent_updates_wins(db):
    case_id = _new_case(db)
    outcomes = _race(db, case_id, workers=6, expected=1)
    assert outcomes.count("won") == 1
    losers = [o for o in outcomes if o != "won"]
    assert all(isinstance(o, ConcurrentUpdate) for o in losers), losers
    with db.session() as s:
        case = s.get(Case, case_id)
        assert (case.status, case.version) == ("classified", 2)
        assert s.query(CaseEvent).filter_by(case_id=case_id).count() == 2


def test_a_writer_holding_a_stale_row_loses_with_a_conflict(pg_db):
    """B read version 1; A commits version 2; B's compare-and-set is refused, not applied on top.

    PostgreSQL only: SQLite serialises writers with BEGIN IMMEDIATE (the race above covers it).
    """
    db = pg_db
    case_id = _new_case(db)
    b = db.session()
    b.begin()
    stale = case_repo.load(b, case_id).case
    assert stale.version == 1
    with db.sessions.begin() as a:
        cases.fire(a, case_id, "classify", calendars=calendars(), actor_id=CENTER, fields=dict(CLASSIFY), at=T0)
    stale.status, stale.version = "voided", 2
    with pytest.raises(ConcurrentUpdate, match="changed by someone else"):
        case_repo.save(b, stale, expected_version=1)
    b.rollback()
    b.close()
    with db.session() as s:
        case = s.get(Case, case_id)
        assert (case.status, case.version) == ("classified", 2)
        assert s.query(CaseEvent).filter_by(case_id=case_id).count() == 2


def test_racing_without_expected_version_never_applies_twice(db):
    """Without --expect-version the losers get a conflict or, having read the new state, a refusal."""
    case_id = _new_case(db)
    outcomes = _race(db, case_id, workers=6, expected=None)
    assert outcomes.count("won") == 1
    assert all(isinstance(o, (ConcurrentUpdate, TriggerNotAllowed)) for o in outcomes if o != "won"), outcomes
    with db.session() as s:
        assert s.get(Case, case_id).version == 2
        assert s.query(CaseEvent).filter_by(case_id=case_id).count() == 2


def test_a_report_does_not_wait_for_another_township_report_still_open(pg_db):
    """The case-code counter commits on its own connection: a report whose transaction is still open does
    not hold the counter's row lock, so a second report in the same township goes through meanwhile
    (before, it waited on the lock until the first committed)."""
    first = pg_db.sessions()
    try:
        a = cases.report(
            first, grid_id=GRID, calendars=calendars(), actor_id=GRID_WORKER, fields={"title": "甲"}, at=T0
        )
        done: list[str] = []

        def second() -> None:
            done.append(_code(pg_db, "乙"))

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the second report waited for the first one's transaction"
        first.commit()
    finally:
        first.close()
    assert done and done[0] != a.case.code
    assert sorted([a.case.code, done[0]]) == [a.case.code, done[0]]  # numbered in the order they were taken


def test_a_report_that_rolls_back_leaves_a_gap_and_nothing_else(pg_db):
    with pg_db.sessions() as session:
        lost = cases.report(
            session, grid_id=GRID, calendars=calendars(), actor_id=GRID_WORKER, fields={"title": "撤"}, at=T0
        )
        session.rollback()
    kept = _code(pg_db, "留")
    assert int(kept.rsplit("-", 1)[1]) == int(lost.case.code.rsplit("-", 1)[1]) + 1
    with pg_db.sessions() as session:
        assert [c for (c,) in session.query(Case.code)] == [kept]


def _code(db, title: str) -> str:
    with db.sessions.begin() as s:
        return cases.report(
            s, grid_id=GRID, calendars=calendars(), actor_id=GRID_WORKER, fields={"title": title}, at=T0
        ).case.code


def test_the_counter_connection_commits_without_waiting_for_a_disk_sync(pg_db):
    """The counter's own commit is asynchronous (the report's synchronous commit makes it durable with the
    case: it flushes the WAL up to the case's commit record, past the counter's update); the report's own
    connection keeps synchronous commits."""
    from engine.store.case_repo import _CounterConnection

    with pg_db.sessions.begin() as session:
        cases.report(session, grid_id=GRID, calendars=calendars(), actor_id=GRID_WORKER, fields={"title": "丙"}, at=T0)
        own = session.connection().exec_driver_sql("SHOW synchronous_commit").scalar_one()
        counter = _CounterConnection.of(session.connection().engine).connection.driver_connection
        assert counter.execute("SHOW synchronous_commit").fetchone()[0] == "off"
    assert own == "on"
