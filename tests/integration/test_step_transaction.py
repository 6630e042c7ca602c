"""A report or a step on PostgreSQL runs on the bare driver connection (engine/store/unit.py): no SQLAlchemy
Session unless something asks for one, and then one in the same database transaction, so the step stays
all or nothing; the connection goes back to the pool clean, or leaves it when it broke."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import func, insert, select

from engine import cases
from engine.errors import ConcurrentUpdate, DatabaseError
from engine.store import case_repo
from engine.store.models import Case, CaseEvent, Outbox
from engine.store.unit import PgUnit, step_transaction
from tests.support import CENTER, GRID, GRID_WORKER, T0, calendars

CLASSIFY = {"category": "water_supply", "priority": "urgent"}


def _report(session, title: str = "管道") -> int:
    return cases.report(
        session, grid_id=GRID, calendars=calendars(), actor_id=GRID_WORKER, fields={"title": title}, at=T0
    ).case.id


def _counts(db, case_id: int) -> tuple[int, int]:
    with db.sessions() as s:
        return (
            s.scalar(select(func.count()).select_from(Case).where(Case.id == case_id)),
            s.scalar(select(func.count()).select_from(CaseEvent).where(CaseEvent.case_id == case_id)),
        )


def test_a_warm_step_needs_no_session_and_commits(pg_db):
    with pg_db.sessions.begin() as s:  # the compiled workflow and the org snapshot cached
        _report(s, "预热")
    with step_transaction(pg_db.sessions) as unit:
        assert isinstance(unit, PgUnit)
        case_id = _report(unit)
        cases.fire(unit, case_id, "classify", calendars=calendars(), actor_id=CENTER, fields=dict(CLASSIFY), at=T0)
        assert unit._session is None and unit._core is None  # nothing but the driver connection was used
    assert _counts(pg_db, case_id) == (1, 2)


def test_orm_work_joins_the_same_transaction_and_an_error_undoes_all_of_it(pg_db):
    with pytest.raises(RuntimeError), step_transaction(pg_db.sessions) as unit:
        case_id = _report(unit, "撤销")
        unit.execute(insert(Outbox.__table__).values(**_outbox_row(case_id)))  # a real Session, made now
        assert unit._session is not None
        assert unit.scalar(select(func.count()).select_from(Case).where(Case.id == case_id)) == 1  # sees the report
        raise RuntimeError("after both writes")
    assert _counts(pg_db, case_id) == (0, 0)
    with pg_db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Outbox).where(Outbox.case_id == case_id)) == 0


def test_orm_work_commits_with_the_step(pg_db):
    with step_transaction(pg_db.sessions) as unit:
        case_id = _report(unit, "一并提交")
        unit.execute(insert(Outbox.__table__).values(**_outbox_row(case_id)))
    assert _counts(pg_db, case_id) == (1, 1)
    with pg_db.sessions() as s:
        assert (
            s.scalar(select(func.count()).select_from(Outbox).where(Outbox.dedupe_key == f"test-unit-{case_id}")) == 1
        )


def test_a_lost_race_rolls_back_and_the_connection_is_clean_for_the_next(pg_db):
    with step_transaction(pg_db.sessions) as unit:
        case_id = _report(unit)
    with pytest.raises(ConcurrentUpdate), step_transaction(pg_db.sessions) as unit:
        cases.fire(
            unit,
            case_id,
            "classify",
            calendars=calendars(),
            actor_id=CENTER,
            fields=dict(CLASSIFY),
            at=T0,
            expected_version=7,
        )
    for _ in range(pg_db.engine.pool.size() + 1):  # every pooled connection is idle, none left in a transaction
        with step_transaction(pg_db.sessions) as unit:
            raw = unit.connection().connection.driver_connection
            assert raw.info.transaction_status.name == "IDLE"
            case_repo.load(unit, case_id)
    assert _counts(pg_db, case_id) == (1, 1)


def test_a_broken_connection_fails_the_step_and_leaves_the_pool(pg_db):
    with step_transaction(pg_db.sessions) as unit:
        case_id = _report(unit, "断线")
    with pytest.raises(DatabaseError), step_transaction(pg_db.sessions) as unit:
        raw = unit.connection().connection.driver_connection
        with pg_db.engine.connect() as other:  # the server drops the step's connection
            other.exec_driver_sql(f"SELECT pg_terminate_backend({raw.info.backend_pid})")
        cases.fire(unit, case_id, "classify", calendars=calendars(), actor_id=CENTER, fields=dict(CLASSIFY), at=T0)
    assert raw.closed or raw.broken
    assert _counts(pg_db, case_id) == (1, 1)
    for _ in range(pg_db.engine.pool.size() + 1):  # the broken one is never handed out again
        with step_transaction(pg_db.sessions) as unit:
            assert unit.connection().connection.driver_connection is not raw
            case_repo.load(unit, case_id)


def test_no_server_is_the_error_sqlalchemy_gives_so_the_application_explains_it(pg_db):
    from sqlalchemy.exc import OperationalError

    from engine.store.db import create_db_engine, session_factory

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = create_db_engine(f"postgresql://nobody@127.0.0.1:{port}/none")
    try:
        with pytest.raises(OperationalError), step_transaction(session_factory(engine)):
            pass
    finally:
        engine.dispose()


def _outbox_row(case_id: int) -> dict:
    return {
        "case_id": case_id,
        "recipient_id": CENTER,
        "role": "center",
        "template": "case_reported",
        "params": {},
        "next_attempt_at": T0,
        "created_at": T0,
        "dedupe_key": f"test-unit-{case_id}",
    }
