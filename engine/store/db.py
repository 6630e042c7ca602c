"""Database engines and sessions for SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode with foreign keys on, and every transaction starts with
``BEGIN IMMEDIATE`` so writers queue on the busy timeout instead of failing
half-way with "database is locked".
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import ConfigError
from engine.store.private import private_dir, private_file

SQLITE_BUSY_TIMEOUT_S = 30
_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@?#]*):[^@]*@")


POOL_SIZE = 10  # connections each process keeps open to PostgreSQL
POOL_OVERFLOW = 20  # and opens beyond those under a burst, closed again when returned


def normalize_url(url: str) -> str:
    """Accept ``postgres://`` and ``postgresql://`` and use psycopg 3 for both."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_db_engine(url: str, echo: bool = False, immediate: bool = True) -> Engine:
    """An engine for SQLite or PostgreSQL (psycopg 3). On SQLite, ``immediate`` makes every
    transaction a writer (``BEGIN IMMEDIATE``); read-only work passes False to keep WAL's
    concurrent readers."""
    try:
        parsed = make_url(normalize_url(url))
        backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:  # ValueError: a port that is not a number
        shown = _PASSWORD.sub(lambda m: f"{m['head']}:***@", url)
        reason = str(exc).replace(url, shown)
        raise ConfigError(
            f"bad database URL {shown!r}: {reason}; use sqlite:///PATH or postgresql://USER:PASSWORD@HOST:5432/DB"
        ) from exc
    if backend == "sqlite":
        return _sqlite_engine(parsed.render_as_string(hide_password=False), immediate)
    if backend != "postgresql" or driver != "psycopg":
        shown = parsed.render_as_string(hide_password=True)
        raise ConfigError(
            f"unsupported database {shown}: gridflow runs on SQLite or on PostgreSQL with psycopg 3 "
            "(postgresql://USER@HOST:PORT/DB)"
        )
    # No pre-ping: it costs a round trip per checkout. Connections are recycled hourly; a
    # connection that died with its server fails its transaction and is dropped from the pool.
    # Ten kept open: SQLAlchemy's five made an API worker under 8 concurrent requests open and close
    # a connection (a PostgreSQL backend forked and torn down) for every other request.
    return create_engine(parsed, echo=echo, pool_recycle=3600, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite database URL (``sqlite:///…``, ``sqla+sqlite:///…``); None for another
    database, an in-memory one or a ``file:`` URI."""
    parsed = make_url(normalize_url(url.removeprefix("sqla+")))
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def ensure_sqlite_directory(url: str) -> None:
    """Create the directory (0700) and the empty file (0600) of an SQLite database, unless they are there
    (only `gridflow init` creates the database). SQLite gives its -wal, -shm and journal files the database
    file's mode, so they are private too; SQLite itself would make the file 0644."""
    path = sqlite_path(url)
    if path is None:
        return
    try:
        private_dir(path.parent)
        private_file(path)
    except OSError as exc:
        raise ConfigError(
            f"cannot create {path}: {exc.strerror}; set GRIDFLOW_HOME to a directory you can write"
        ) from exc


def sqlite_file_missing(url: str) -> bool:
    parsed = make_url(normalize_url(url))
    database = parsed.database
    return (
        parsed.get_backend_name() == "sqlite"
        and bool(database)
        and database != ":memory:"
        and not Path(database).exists()
    )


def _sqlite_engine(url: str, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
