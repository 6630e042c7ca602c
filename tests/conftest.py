"""Shared fixtures. Hermetic: GRIDFLOW_* variables are scrubbed; warnings are errors."""

from __future__ import annotations

import os

import pytest

from tests import support

for _name in [n for n in os.environ if n.startswith("GRIDFLOW_") and not n.startswith("GRIDFLOW_TEST_")]:
    del os.environ[_name]


@pytest.fixture(scope="session")
def pg_server():
    server = support.PostgresServer()
    try:
        server.check()
    except Exception as exc:  # any failure to connect is "service unavailable"
        server.admin.dispose()
        support.service_unavailable("PostgreSQL", exc)
    yield server
    server.drop_all()


@pytest.fixture(scope="session")
def _sqlite_db(tmp_path_factory):
    db = support.sqlite_database(tmp_path_factory.mktemp("sqlite") / "gridflow.db")
    yield db
    db.engine.dispose()


@pytest.fixture(scope="session")
def _postgresql_db(pg_server):
    db = support.postgres_database(pg_server.create())
    yield db
    db.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request) -> support.Database:
    """A migrated database on each back end, emptied and seeded for every test."""
    database = request.getfixturevalue(f"_{request.param}_db")
    database.reset()
    return database


@pytest.fixture
def clock() -> support.Clock:
    return support.Clock()


@pytest.fixture
def pg_db(_postgresql_db) -> support.Database:
    """The PostgreSQL database alone, for behaviour only a server with row locks shows."""
    _postgresql_db.reset()
    return _postgresql_db
