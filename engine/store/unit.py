"""A case step's transaction on PostgreSQL without SQLAlchemy's Session on the hot path.

A report or a step on PostgreSQL runs its statements on the bare psycopg connection (``case_repo``'s
compiled path): what it asks of its session is only ``connection()`` (for the driver connection, the
dialect and the engine), ``get_transaction()`` and ``info`` (the per-transaction caches). A SQLAlchemy
Session and its Connection cost about 0.3 ms a transaction on top of the statements (measured side by
side in ``bench/transitions.py``: about a quarter of a whole step with no time limits), so
:class:`PgUnit` gives the step exactly those three and nothing more, on a connection checked out of the
engine's pool.

Anything else asked of it (an ORM query on a cache miss, ``execute``, ``add``, ``flush`` …) goes to a
real Session made on first use and joined to the *same* database transaction: a SQLAlchemy Connection
over the same pooled DBAPI connection, begun before the Session binds to it, so the Session never
commits or rolls back by itself. :func:`step_transaction` commits once at the end (flushing that Session
first) or rolls back on any error; the connection goes back to the pool either way, or is dropped when
it broke. On SQLite it is ``sessions.begin()`` unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from engine.store.case_repo import pg_failure


class _Conn:
    """What ``case_repo``'s compiled path reads of a connection; anything else is the unit's SQLAlchemy
    Connection (made on first use, in the same transaction)."""

    __slots__ = ("_unit", "connection", "dialect", "engine")

    def __init__(self, unit: PgUnit, engine: Engine, fairy: Any):
        self._unit = unit
        self.engine = engine
        self.dialect = engine.dialect
        self.connection = fairy  # ``.driver_connection`` is the psycopg connection

    def invalidate(self, exception: BaseException | None = None) -> None:
        self._unit.invalidate(exception)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._unit.core(), name)


class PgUnit:
    """One transaction on one pooled PostgreSQL connection, shaped like the Session a use case expects."""

    def __init__(self, engine: Engine):
        self._engine = engine
        try:
            self._fairy = engine.raw_connection()
        except engine.dialect.loaded_dbapi.Error as exc:  # as SQLAlchemy's own connect raises it: the caller explains
            raise DBAPIError.instance(None, None, exc, engine.dialect.loaded_dbapi.Error) from exc
        self._view = _Conn(self, engine, self._fairy)
        self._core: Connection | None = None
        self._root: Any = None
        self._session: Session | None = None
        self._invalid = False
        self.info: dict[Any, Any] = {}

    # -- what the hot path uses ---------------------------------------------------------------------

    def connection(self, *_args: Any, **_kwargs: Any) -> Any:
        return self._view

    def get_transaction(self) -> PgUnit:
        return self  # one unit, one transaction: the key of the per-transaction caches in ``info``

    # -- everything else: SQLAlchemy, in the same transaction ---------------------------------------

    def core(self) -> Connection:
        """The SQLAlchemy Connection over this unit's DBAPI connection, its transaction begun."""
        if self._core is None:
            self._core = Connection(self._engine, connection=self._fairy)
            self._root = self._core.begin()  # on psycopg only bookkeeping: the driver has its own BEGIN
        return self._core

    def _orm(self) -> Session:
        if self._session is None:
            # Bound to a Connection whose transaction is begun: the Session joins it and never ends it.
            self._session = Session(bind=self.core(), expire_on_commit=False, join_transaction_mode="rollback_only")
        return self._session

    def __getattr__(self, name: str) -> Any:
        return getattr(self._orm(), name)

    def invalidate(self, exception: BaseException | None = None) -> None:
        """The connection broke: it leaves the pool when the unit ends."""
        self._invalid = True
        with contextlib.suppress(Exception):
            (self._core.invalidate if self._core is not None else self._fairy.invalidate)(exception)

    # -- the end ------------------------------------------------------------------------------------

    def commit(self) -> None:
        import psycopg

        if self._session is not None:
            self._session.flush()
        try:
            if self._root is not None:
                self._root.commit()
            else:
                self._fairy.driver_connection.commit()
        except psycopg.Error as exc:  # the driver's own commit (SQLAlchemy's raises its DBAPIError)
            raise pg_failure(exc, self._view) from exc

    def close(self, rollback: bool) -> None:
        """Give the connection back (rolled back first unless committed); drop it when it broke."""
        try:
            if self._session is not None:
                self._session.close()
            if rollback and not self._invalid:
                with contextlib.suppress(Exception):  # a failed rollback: the pool resets or drops it
                    if self._root is not None and self._root.is_active:
                        self._root.rollback()
                    else:
                        self._fairy.driver_connection.rollback()
        finally:
            if self._core is not None:
                self._core.close()
            else:
                self._fairy.close()


@contextmanager
def step_transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction for a report or a step: a :class:`PgUnit` on PostgreSQL, ``sessions.begin()``
    elsewhere. Commits when the block ends, rolls back on any error."""
    engine = sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        with sessions.begin() as session:
            yield session
        return
    unit = PgUnit(engine)
    committed = False
    try:
        yield unit  # type: ignore[misc]  # shaped like a Session where a step needs it
        unit.commit()
        committed = True
    finally:
        unit.close(rollback=not committed)
