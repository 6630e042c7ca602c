"""Alembic migrations on an empty SQLite file and a fresh PostgreSQL database.

The migrations must build exactly the schema the models describe, a second
upgrade must change nothing, and a database without the schema must be refused
with a message that says to run ``gridflow init``.
"""

from __future__ import annotations

import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from engine.errors import DatabaseError
from engine.org import load_org_file
from engine.store import migrate, org_repo
from engine.store.db import create_db_engine, session_factory
from engine.store.models import Base
from tests.support import ORG_FILE, T0, table_names


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request, tmp_path) -> Engine:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'gridflow.db'}"
    else:
        url = request.getfixturevalue("pg_server").create("gridflow_migrate")
    engine = create_db_engine(url)
    yield engine
    engine.dispose()


def schema(engine: Engine) -> str:
    """Tables, columns, keys and indexes as the database reports them."""
    insp = inspect(engine)
    out = {}
    for table in sorted(insp.get_table_names()):
        out[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)],
            "pk": insp.get_pk_constraint(table),
            "fks": sorted(insp.get_foreign_keys(table), key=lambda fk: fk["name"] or ""),
            "indexes": sorted(insp.get_indexes(table), key=lambda ix: ix["name"] or ""),
            "uniques": sorted(insp.get_unique_constraints(table), key=lambda uq: uq["name"] or ""),
        }
    return json.dumps(out, sort_keys=True, default=str, ensure_ascii=False, indent=1)


def differences(engine: Engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(context, Base.metadata)


def test_upgrade_creates_the_schema(empty_engine):
    assert table_names(empty_engine) == set()
    before, after = migrate.upgrade(empty_engine)
    assert (before, after) == (None, migrate.head_revision())
    assert migrate.current_revision(empty_engine) == migrate.head_revision()
    assert table_names(empty_engine) == set(Base.metadata.tables) | {"alembic_version"}


def test_migrated_schema_matches_the_models(empty_engine):
    migrate.upgrade(empty_engine)
    assert differences(empty_engine) == []


def test_second_upgrade_changes_nothing(empty_engine):
    migrate.upgrade(empty_engine)
    with session_factory(empty_engine).begin() as session:
        org_repo.apply_org_chart(session, load_org_file(ORG_FILE), T0)
    shape = schema(empty_engine)
    with empty_engine.connect() as conn:
        places = conn.execute(text("SELECT count(*) FROM place")).scalar_one()

    before, after = migrate.upgrade(empty_engine)

    assert before == after == migrate.head_revision()
    assert schema(empty_engine) == shape
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM place")).scalar_one() == places == 99
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [after]


def test_ensure_current_refuses_an_empty_database(empty_engine):
    with pytest.raises(DatabaseError, match=r"has no gridflow schema.*Run `gridflow init`"):
        migrate.ensure_current(empty_engine)


def test_ensure_current_refuses_an_older_schema_revision(empty_engine):
    migrate.upgrade(empty_engine)
    with empty_engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    with pytest.raises(DatabaseError, match=r"is at schema 0001; this gridflow expects .*Run `gridflow init`"):
        migrate.ensure_current(empty_engine)


def test_a_schema_from_a_newer_gridflow_is_refused_not_upgraded(empty_engine):
    migrate.upgrade(empty_engine)
    with empty_engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'zzzz'"))
    for action in (migrate.ensure_current, migrate.upgrade):
        with pytest.raises(DatabaseError, match=r"at schema zzzz, which this gridflow does not know.*newer"):
            action(empty_engine)


def test_ensure_current_accepts_the_migrated_database(empty_engine):
    migrate.upgrade(empty_engine)
    migrate.ensure_current(empty_engine)


def test_the_comparison_would_see_a_drift(empty_engine):
    """Guard against a vacuous check: a dropped index must show up as a difference."""
    migrate.upgrade(empty_engine)
    with empty_engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_cases_status"))
    assert [d[0] for d in differences(empty_engine)] == ["add_index"]


def test_the_head_every_command_checks_is_alembics_head():
    assert migrate.HEAD == migrate.head_revision(), "set engine.store.revision.HEAD to the newest migration"


def test_the_clock_index_carries_every_column_scoring_reads_of_a_clock(empty_engine):
    """Migration 0010: on PostgreSQL ``ix_sla_clock_case`` INCLUDEs what the scoring query reads of
    ``sla_clock`` (so it can answer from the index alone); on SQLite the index is as before."""
    import importlib
    import re

    from engine.scoring.facts import facts_sql
    from engine.store.models import CLOCK_FACT_COLUMNS

    migration = importlib.import_module("engine.store.migrations.versions.0010_clock_facts")
    assert tuple(migration.COLUMNS) == CLOCK_FACT_COLUMNS
    read = set(re.findall(r"\bk\.([a-z_]+)", facts_sql(empty_engine.dialect.name)))
    assert read and read <= {"case_id", "status", *CLOCK_FACT_COLUMNS}, read - set(CLOCK_FACT_COLUMNS)
    migrate.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        if empty_engine.dialect.name == "postgresql":
            ddl = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_sla_clock_case'")).scalar()
            assert ddl.endswith(f"(case_id, status) INCLUDE ({', '.join(CLOCK_FACT_COLUMNS)})"), ddl
        else:
            ddl = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'ix_sla_clock_case'")).scalar()
            assert ddl.endswith("(case_id, status)"), ddl
