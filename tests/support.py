"""Test support: real databases for both back ends, a fixed clock, row snapshots.

PostgreSQL: each test session creates its own database on the server named by
GRIDFLOW_TEST_PG_ADMIN_URL (default: the local server, user postgres, trust
auth) and drops it at the end. Locally an unreachable service skips its tests;
under CI=true it fails them: in CI a missing service is a failure.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, inspect, select, text
from sqlalchemy.orm import Session, sessionmaker

from engine.definitions.loader import load_workflow_file
from engine.errors import Problem
from engine.org import load_org_file
from engine.store import migrate, org_repo, workflow_repo
from engine.store.db import create_db_engine, session_factory
from engine.store.models import Base

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
ORG_FILE = ROOT / "config" / "org" / "shengli.yaml"
WORKFLOW_FILE = ROOT / "workflows" / "grid_case.yaml"
CALENDAR_FILE = ROOT / "config" / "calendars.yaml"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get("GRIDFLOW_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("GRIDFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai

CENTER = "p-chen-jia"
GRID = "mayingtai-01"
GRID_WORKER = "p-an-yixuan"  # grid worker of mayingtai-01
OTHER_GRID_WORKER_OF = "mayingtai-02"


def clock_offset(at: datetime) -> str:
    """``GRIDFLOW_CLOCK_OFFSET_S`` for a gridflow process whose clock is to read ``at`` now and run on
    from there. Tests give every process they start a time this way, never today's date."""
    return repr((at - datetime.now(UTC)).total_seconds())


def service_unavailable(what: str, exc: BaseException) -> None:
    message = f"{what} is not reachable ({exc.__class__.__name__}: {exc})"
    if IN_CI:
        pytest.fail(f"{message}; CI needs it (.ci/run starts it)", pytrace=False)
    pytest.skip(f"{message}; start it or run `bash .ci/run`")


class Clock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime = T0):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


@dataclass
class Database:
    backend: str
    url: str
    engine: Engine
    sessions: sessionmaker[Session]

    def session(self) -> Session:
        return self.sessions()

    def reset(self, seed: bool = True) -> None:
        """Empty every table, then load the sample org chart and the default workflow."""
        tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
        with self.engine.begin() as conn:
            if self.backend == "postgresql":
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                for name in tables:
                    conn.execute(text(f"DELETE FROM {name}"))
        if seed:
            with self.sessions.begin() as session:
                org_repo.apply_org_chart(session, seeded_org(), T0 - timedelta(days=1))
                workflow_repo.publish(session, seeded_workflow(), T0 - timedelta(days=1))

    def snapshot(self) -> dict[str, list[tuple]]:
        """Every row of every table, to prove a rejected command changed nothing."""
        out = {}
        with self.engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
                out[table.name] = [tuple(r) for r in rows]
        return out


_ORG = None
_WORKFLOW = None
_CALENDARS = None


def calendars():
    global _CALENDARS
    if _CALENDARS is None:
        from engine.calendar import load_calendars

        _CALENDARS = load_calendars(CALENDAR_FILE)
    return _CALENDARS


def seeded_org():
    global _ORG
    _ORG = _ORG or load_org_file(ORG_FILE)
    return _ORG


def seeded_workflow():
    global _WORKFLOW
    _WORKFLOW = _WORKFLOW or load_workflow_file(WORKFLOW_FILE, calendars())
    return _WORKFLOW


def sqlite_database(path: Path) -> Database:
    url = f"sqlite:///{path}"
    engine = create_db_engine(url)
    migrate.upgrade(engine)
    return Database("sqlite", url, engine, session_factory(engine))


class PostgresServer:
    """Creates throwaway databases on the real PostgreSQL server."""

    def __init__(self, admin_url: str = PG_ADMIN_URL):
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []

    def check(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text("SELECT 1"))

    def create(self, prefix: str = "gridflow_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.admin.url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


def postgres_database(url: str) -> Database:
    engine = create_db_engine(url)
    migrate.upgrade(engine)
    return Database("postgresql", url, engine, session_factory(engine))


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


@dataclass(frozen=True)
class Expected:
    """One problem a bad input file must produce: where, and a piece of its message."""

    line: int
    column: int
    path: str
    text: str

    def matches(self, problem: Problem) -> bool:
        where = (problem.line, problem.column, problem.path)
        return where == (self.line, self.column, self.path) and self.text in problem.message

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: [{self.path}] {self.text}"
