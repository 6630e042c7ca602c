"""The case hot path in SQLAlchemy Core: few statements, no ORM unit of work.

A step is one SELECT (the case and the org token together), one compare-and-set
UPDATE and one INSERT of its event. A report is one SELECT (the workflow version
and the org token), one upsert of the code counter, one INSERT of the case and
one of its event. ``CaseRecord`` is the engine's working copy of a case row.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import weakref
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from functools import cache
from types import SimpleNamespace
from typing import Any, ClassVar

from sqlalchemy import bindparam, event, func, insert, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql import sqltypes

from engine.errors import ConcurrentUpdate, DatabaseError
from engine.scope import token_query
from engine.store.models import Case, CaseCounter, CaseEvent, SlaClock, SlaTimer, WorkflowDefinition

CASES = Case.__table__
EVENTS = CaseEvent.__table__
#: Columns a step may change; the UPDATE always writes all of them (one cached statement).
MUTABLE = (
    "status",
    "version",
    "title",
    "description",
    "category",
    "priority",
    "assignee_id",
    "satisfaction",
    "rework_count",
    "extension_count",
    "pending_extension",
    "updated_at",
    "closed_at",
    "overdue",
    "escalation_level",
    "mark",
)


@dataclass(slots=True)
class CaseRecord:
    """A case row as the engine reads and changes it."""

    id: int
    code: str
    workflow_id: int
    workflow_name: str
    workflow_version: int
    status: str
    version: int
    title: str
    description: str | None
    category: str | None
    priority: str | None
    grid_id: str
    reporter_id: str
    assignee_id: str | None
    source_channel: str
    satisfaction: str | None
    rework_count: int
    extension_count: int
    pending_extension: dict[str, Any] | None
    reported_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    overdue: bool = False
    escalation_level: int = 0
    mark: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _CASE_FIELDS}


@dataclass(frozen=True, slots=True)
class EventRecord:
    case_id: int
    seq: int
    at: datetime
    actor_id: str
    trigger: str
    from_state: str | None
    to_state: str
    payload: dict[str, Any]
    workflow_version: int
    received_at: datetime | None = None  # a backfilled step: when it was typed in (``at`` is when it happened)
    entered_by: str | None = None  # and who typed it in, when not the actor


_CASE_FIELDS = tuple(f.name for f in fields(CaseRecord))
_EVENT_FIELDS = tuple(f.name for f in fields(EventRecord))
_COLUMNS = [CASES.c[name] for name in _CASE_FIELDS]
_NAMES = [c.name for c in _COLUMNS]

# Statements are built once; each call only binds parameters (no per-call SQL construction).
_WORKFLOW_HASH = (
    select(WorkflowDefinition.source_hash).where(WorkflowDefinition.id == CASES.c.workflow_id).scalar_subquery()
)
_LOAD_BY_ID = select(*_COLUMNS, token_query().label("org_token"), _WORKFLOW_HASH.label("workflow_hash")).where(
    CASES.c.id == bindparam("ref")
)
_LOAD_BY_CODE = select(*_COLUMNS, token_query().label("org_token"), _WORKFLOW_HASH.label("workflow_hash")).where(
    CASES.c.code == bindparam("ref")
)
_CLOCKS = SlaClock.__table__
# PostgreSQL: the case's open clocks come with the case, as one JSON array (engine.sla needs them for a step
# with time limits; a step on a workflow without them gets NULL). Reading them before the compare-and-set is
# safe: whatever changes a clock (a step, a fired timer) also moves the case's version, so a step that read
# clocks since changed loses its compare-and-set and writes nothing.
_OPEN_CLOCKS = (
    select(func.json_agg(postgresql.aggregate_order_by(literal_column(_CLOCKS.name), _CLOCKS.c.id)))
    .where(_CLOCKS.c.case_id == CASES.c.id, _CLOCKS.c.status != "stopped")
    .scalar_subquery()
)
_LOAD_BY_ID_PG = _LOAD_BY_ID.add_columns(_OPEN_CLOCKS.label("open_clocks"))
_LOAD_BY_CODE_PG = _LOAD_BY_CODE.add_columns(_OPEN_CLOCKS.label("open_clocks"))
#: the timestamp columns of a clock, read back from the JSON above
CLOCK_TIMES = ("segment_start", "started_at", "stopped_at", "due_at", "breached_at")
_NEWEST = (
    select(WorkflowDefinition.id)
    .where(WorkflowDefinition.name == bindparam("name"))
    .order_by(WorkflowDefinition.version.desc())
    .limit(1)
    .scalar_subquery()
)
_LATEST = select(
    _NEWEST.label("workflow_id"),
    select(WorkflowDefinition.source_hash).where(WorkflowDefinition.id == _NEWEST).scalar_subquery().label("hash"),
    token_query().label("org_token"),
)
_INSERT_CASE = insert(CASES).returning(CASES.c.id)
_SAVE = (
    update(CASES)
    .where(CASES.c.id == bindparam("_id"), CASES.c.version == bindparam("_expected"))
    .values({name: bindparam(name) for name in MUTABLE})
)
_INSERT_EVENT = insert(EVENTS)
# PostgreSQL: the compare-and-set UPDATE and the event INSERT as one statement. When the
# case moved on meanwhile, the CTE updates no row and so no event is inserted (rowcount 0).
_MOVED = _SAVE.returning(CASES.c.id).cte("moved")
_SAVE_WITH_EVENT = (
    insert(EVENTS)
    .from_select(
        list(
            _EVENT_FIELDS_FOR_SQL := (
                "case_id",
                "seq",
                "at",
                "actor_id",
                "trigger",
                "from_state",
                "to_state",
                "payload",
                "workflow_version",
                "received_at",
                "entered_by",
            )
        ),
        select(_MOVED.c.id, *[bindparam(f"e_{n}", type_=EVENTS.c[n].type) for n in _EVENT_FIELDS_FOR_SQL[1:]]),
    )
    .returning(EVENTS.c.seq)
)  # rowcount is not reported for this form: count the returned rows
# PostgreSQL: a report's case and its first event as one statement.
_NEW = (
    insert(CASES)
    .values({name: bindparam(name, type_=CASES.c[name].type) for name in _CASE_FIELDS if name != "id"})
    .returning(CASES.c.id)
    .cte("new")
)
_INSERT_CASE_WITH_EVENT = (
    insert(EVENTS)
    .from_select(
        list(_EVENT_FIELDS_FOR_SQL),
        select(_NEW.c.id, *[bindparam(f"e_{n}", type_=EVENTS.c[n].type) for n in _EVENT_FIELDS_FOR_SQL[1:]]),
    )
    .returning(EVENTS.c.case_id)
)
_COUNTERS = {}
for _dialect in (postgresql, sqlite):
    _upsert = _dialect.insert(CaseCounter).values(prefix=bindparam("key"), last=1)
    _upsert = _upsert.on_conflict_do_update(index_elements=[CaseCounter.prefix], set_={"last": CaseCounter.last + 1})
    _COUNTERS[_dialect.dialect.name] = _upsert.returning(CaseCounter.last)


class _PgSql:
    """The statements above, compiled once for psycopg and run on the session's own psycopg
    connection (inside the session's transaction). This skips SQLAlchemy's per-statement
    execution machinery, which costs more than the round trip itself on a local server.
    The SQL text still comes from the Core statements, so the models stay the one source."""

    JSON_PARAMS = ("pending_extension", "e_payload", "payload", "params")

    def __init__(self) -> None:
        from psycopg.types.json import Jsonb
        from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg

        self._jsonb = Jsonb
        self._extra: dict[tuple, tuple[str, dict[str, Any]]] = {}
        self._json_columns: dict[str, tuple[str, ...]] = {}
        self._dialect = dialect = pg_psycopg.dialect()
        keys = [name for name in _CASE_FIELDS if name != "id"]
        self.load_by_id = self._compile(_LOAD_BY_ID_PG, dialect)
        self.load_by_code = self._compile(_LOAD_BY_CODE_PG, dialect)
        self.latest = self._compile(_LATEST, dialect)
        self.counter = self._compile(_COUNTERS["postgresql"], dialect)
        self.insert_case = self._compile(_INSERT_CASE, dialect, column_keys=keys)
        self.insert_event = self._compile(_INSERT_EVENT, dialect, column_keys=list(_EVENT_FIELDS))
        self.save_with_event = self._compile(_SAVE_WITH_EVENT, dialect)
        self.insert_case_with_event = self._compile(_INSERT_CASE_WITH_EVENT, dialect)
        self.save = self._compile(_SAVE, dialect)

    @staticmethod
    def _compile(stmt: Any, dialect: Any, **kwargs: Any) -> tuple[str, dict[str, Any]]:
        compiled = stmt.compile(dialect=dialect, **kwargs)
        return str(compiled), dict(compiled.params)  # SQL, and the literals' own parameters

    def compiled(self, stmt: Any, keys: list[str]) -> tuple[str, dict[str, Any]]:
        """A statement compiled for these parameter names, once."""
        key = (id(stmt), tuple(keys))
        if key not in self._extra:
            self._extra[key] = self._compile(stmt, self._dialect, column_keys=keys)
        return self._extra[key]

    def compiled_unnest(self, stmt: Any, keys: list[str]) -> tuple[str, dict[str, Any]]:
        """An INSERT of any number of rows of these columns, one array parameter per column
        (``INSERT … SELECT * FROM unnest(…)``): one SQL text whatever the row count, so psycopg keeps it
        parsed and prepared (a many-row VALUES list is longer than it caches)."""
        table = stmt.table
        key = (id(stmt), tuple(keys), "unnest")
        if key not in self._extra:
            quote = self._dialect.identifier_preparer
            arrays = ", ".join(f"%({k})s::{table.c[k].type.compile(dialect=self._dialect)}[]" for k in keys)
            columns = ", ".join(quote.quote(k) for k in keys)
            sql = f"INSERT INTO {quote.format_table(table)} ({columns}) SELECT * FROM unnest({arrays})"
            self._extra[key] = (sql, {})
        return self._extra[key]

    def json_values(self, table: Any, params: dict[str, Any], suffix: str = "") -> dict[str, Any]:
        """``params`` with the values of ``table``'s JSON columns wrapped for psycopg (in place)."""
        names = self._json_columns.get(table.name)
        if names is None:
            names = self._json_columns[table.name] = tuple(
                c.name for c in table.c if c.type._type_affinity is sqltypes.JSON
            )
        for name in names:
            value = params.get(name + suffix)
            if value is not None and not isinstance(value, self._jsonb):
                params[name + suffix] = self._jsonb(value)
        return params

    def adapt(self, params: dict[str, Any]) -> dict[str, Any]:
        for name in self.JSON_PARAMS:
            value = params.get(name)
            if value is not None and not isinstance(value, self._jsonb):
                params[name] = self._jsonb(value)
        return params

    def run(self, conn: Connection, statement: tuple[str, dict[str, Any]], values: dict[str, Any]) -> Any:
        import psycopg  # loaded by now: this runs on a psycopg connection

        sql, defaults = statement
        params = self.adapt({**defaults, **values})
        raw = conn.connection.driver_connection
        try:
            return raw.execute(sql, params)
        except psycopg.Error as exc:
            raise pg_failure(exc, conn) from exc


def pg_failure(exc: Exception, conn: Any) -> Exception:
    """What a psycopg error on ``conn`` (a statement or a commit) means to a step: a lost race, or a database
    failure; a broken connection is invalidated, so the pool does not hand it out again."""
    import psycopg

    if isinstance(exc, psycopg.errors.UniqueViolation):
        if exc.diag.constraint_name == "uq_case_event_case_id_seq":
            return ConcurrentUpdate("another step was recorded on this case meanwhile; try again")
        return DatabaseError(f"PostgreSQL refused a duplicate ({exc.diag.constraint_name}): {exc}")
    if isinstance(exc, psycopg.errors.DeadlockDetected | psycopg.errors.SerializationFailure):
        return ConcurrentUpdate("the database chose this step as a deadlock victim; try again")
    if conn.connection.driver_connection.broken:
        conn.invalidate(exc)
    return DatabaseError(f"PostgreSQL failed: {str(exc).strip()}")


# Built on first use: SQLite installs never load psycopg, and no command waits for these compiles.
_PG = cache(_PgSql)


def _conn(session: Session) -> Connection:
    """The session's connection, in its transaction: Core statements skip the ORM layer."""
    return session.connection()


def _pg(session: Session) -> Connection | None:
    """The session's connection when it is PostgreSQL (statements then go through ``_PG``)."""
    conn = session.connection()
    return conn if conn.dialect.name == "postgresql" else None


def _record(row: Any) -> CaseRecord:
    case = CaseRecord(*row[: len(_NAMES)])
    for name in ("reported_at", "updated_at", "closed_at"):
        value = getattr(case, name)
        if value is not None and value.tzinfo is not UTC:
            setattr(case, name, value.astimezone(UTC))
    return case


@dataclass(frozen=True, slots=True)
class Loaded:
    """A case with what its step needs to know besides: the org token and its workflow's hash."""

    case: CaseRecord
    org_token: str | None
    workflow_hash: str
    open_clocks: list[dict[str, Any]] | None = None  # read with the case (PostgreSQL); None: not read


def load(session: Session, ref: int | str) -> Loaded | None:
    """The case by id or code, with the org token and workflow hash, in one statement."""
    by_id = case_id(ref)
    key = {"ref": by_id if by_id is not None else str(ref)}
    raw = _pg(session)
    if raw is None:
        row = _conn(session).execute(_LOAD_BY_ID if by_id is not None else _LOAD_BY_CODE, key).first()
        return None if row is None else Loaded(_record(row), row[len(_NAMES)], row[len(_NAMES) + 1])
    pg = _PG()
    row = pg.run(raw, pg.load_by_id if by_id is not None else pg.load_by_code, key).fetchone()
    if row is None:
        return None
    clocks = row[len(_NAMES) + 2] or []
    for clock in clocks:
        for name in CLOCK_TIMES:
            if clock[name] is not None:
                clock[name] = datetime.fromisoformat(clock[name])
    return Loaded(_record(row), row[len(_NAMES)], row[len(_NAMES) + 1], clocks)


_TIMER_TABLE = SlaTimer.__table__
_LOCK_CASES_OF_TIMERS = (
    select(*_COLUMNS, token_query().label("org_token"), _WORKFLOW_HASH.label("workflow_hash"))
    .where(
        CASES.c.id.in_(select(_TIMER_TABLE.c.case_id).where(_TIMER_TABLE.c.id.in_(bindparam("timers", expanding=True))))
    )
    .order_by(CASES.c.id)
    .with_for_update(of=CASES)
)


def lock_cases_of_timers(session: Session, timer_ids: list[int]) -> list[Loaded]:
    """Lock (in id order, so lockers never deadlock) and load the cases of these timers."""
    rows = _conn(session).execute(_LOCK_CASES_OF_TIMERS, {"timers": timer_ids}).all()
    return [Loaded(_record(row), row[len(_NAMES)], row[len(_NAMES) + 1]) for row in rows]


_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits that fit a BIGINT; anything else is a case code


def case_id(ref: int | str) -> int | None:
    """``ref`` as a case id, or None when it is (to be looked up as) a case code."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        return ref if 0 < ref < 10**18 else -1
    return int(ref) if isinstance(ref, str) and _ID.fullmatch(ref) else None


def latest_workflow(session: Session, name: str) -> tuple[int | None, str | None, str | None]:
    """The newest version of workflow ``name`` (id, source hash) and the org token, in one statement."""
    raw = _pg(session)
    if raw is not None:
        row = _PG().run(raw, _PG().latest, {"name": name}).fetchone()
    else:
        row = _conn(session).execute(_LATEST, {"name": name}).one()
    return row[0], row[1], row[2]


def next_number(session: Session, key: str) -> int:
    """Count up the code counter ``key`` (e.g. ``SL-2026``) in one upsert.

    On PostgreSQL the upsert commits at once on a connection of its own (see :class:`_CounterConnection`):
    inside the report's transaction it would hold the counter's row lock until that commits, so every
    concurrent report in the township would queue behind it. The price: a report that fails after
    taking its number (a database error; every check runs before) leaves a gap in the codes."""
    raw = _pg(session)
    if raw is not None:
        counter = _CounterConnection.of(raw.engine)
        with counter.lock:
            return _PG().run(counter, _PG().counter, {"key": key}).fetchone()[0]
    return _conn(session).execute(_COUNTERS["sqlite"], {"key": key}).scalar_one()


class _CounterConnection:
    """One autocommit psycopg connection per engine and process, for the case-code counters only.

    It is taken from the engine (same URL and connect arguments) but detached from its pool, so a report
    never waits for a second pooled connection while it holds one (a full pool would stall every report).
    A lock lets one thread at a time use it, for one statement. Shaped like the SQLAlchemy connection
    ``_PgSql.run`` expects (``.connection.driver_connection``, ``.invalidate``); a broken connection is
    dropped and the next report opens a new one, and ``engine.dispose()`` closes it. After a fork the child
    opens its own."""

    _open: ClassVar[dict[tuple[int, int], _CounterConnection]] = {}
    _guard = threading.Lock()

    def __init__(self, engine: Any):
        fairy = engine.raw_connection()
        driver = fairy.driver_connection
        fairy.detach()  # ours now: the pool neither counts nor resets it
        driver.autocommit = True
        # Its commits need not wait for the WAL flush (a disk sync per report): a case that takes a number
        # commits later on a synchronous connection, and flushing its commit flushes the WAL up to it,
        # the counter's earlier update included. A crash can only undo numbers no committed case holds.
        driver.execute("SET synchronous_commit TO off")
        self.connection = SimpleNamespace(driver_connection=driver)
        self.lock = threading.Lock()
        self._key = (id(engine), os.getpid())
        weakref.finalize(engine, self._close)  # an engine dropped without dispose()
        event.listen(engine, "engine_disposed", lambda _engine: self._close(), once=True)

    @classmethod
    def of(cls, engine: Any) -> _CounterConnection:
        key = (id(engine), os.getpid())
        found = cls._open.get(key)
        if found is None or found.connection.driver_connection.closed:
            with cls._guard:
                found = cls._open.get(key)
                if found is None or found.connection.driver_connection.closed:
                    found = cls._open[key] = cls(engine)
        return found

    def invalidate(self, _exc: BaseException | None = None) -> None:
        self._close()

    def _close(self) -> None:
        if self._open.get(self._key) is self:
            del self._open[self._key]
        with contextlib.suppress(Exception):
            self.connection.driver_connection.close()


def insert_case(session: Session, values: dict[str, Any]) -> int:
    raw = _pg(session)
    if raw is not None:
        return _PG().run(raw, _PG().insert_case, values).fetchone()[0]
    return _conn(session).execute(_INSERT_CASE, values).scalar_one()


def insert_reported(session: Session, values: dict[str, Any], event: EventRecord) -> EventRecord:
    """Insert a new case and its first event (``event.case_id`` is filled in); the event with the case's id.
    One statement on PostgreSQL."""
    raw = _pg(session)
    if raw is None:
        case_id = insert_case(session, values)
        event = replace(event, case_id=case_id)
        add_event(session, event)
        return event
    params = {**values, **{f"e_{name}": getattr(event, name) for name in _EVENT_FIELDS_FOR_SQL[1:]}}
    case_id = _PG().run(raw, _PG().insert_case_with_event, params).fetchone()[0]
    return replace(event, case_id=case_id)


def _save_params(case: CaseRecord, expected_version: int) -> dict[str, Any]:
    params = {name: getattr(case, name) for name in MUTABLE}
    params["_id"], params["_expected"] = case.id, expected_version
    return params


def _lost(case: CaseRecord) -> ConcurrentUpdate:
    return ConcurrentUpdate(
        f"case {case.code} was changed by someone else meanwhile; nothing was saved. "
        f"Look at `gridflow case show {case.code}` and try again"
    )


def save(session: Session, case: CaseRecord, expected_version: int) -> None:
    """Compare-and-set: write ``case`` only if the row is still at ``expected_version``."""
    if _conn(session).execute(_SAVE, _save_params(case, expected_version)).rowcount != 1:
        raise _lost(case)


def save_many(session: Session, cases: list[CaseRecord], versions: dict[int, int]) -> None:
    """Compare-and-set several cases; pipelined into one round trip on PostgreSQL."""
    if not cases:
        return
    params = [_save_params(case, versions[case.id]) for case in cases]
    raw = _pg(session)
    if raw is None:
        for case, p in zip(cases, params, strict=True):
            if _conn(session).execute(_SAVE, p).rowcount != 1:
                raise _lost(case)
        return
    pg = _PG()
    sql, defaults = pg.save
    rows = [pg.adapt({**defaults, **p}) for p in params]
    with raw.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
        cursor.executemany(sql, rows)
        if cursor.rowcount != len(rows):
            raise ConcurrentUpdate("a case changed while the sweep fired its timers; they are retried later")


def write_fired(
    session: Session,
    cases: list[CaseRecord],
    versions: dict[int, int],
    events: list[EventRecord],
    extra: list[tuple[Any, list[dict[str, Any]]]],
) -> None:
    """A sweep batch's writes: compare-and-set the cases, insert the events, and run ``extra``
    (Core statement, rows) — on PostgreSQL all in one pipeline, i.e. one round trip."""
    raw = _pg(session)
    if raw is None:
        save_many(session, cases, versions)
        if events:
            add_events(session, events)
        for statement, rows in extra:
            if rows:
                _conn(session).execute(statement, rows)
        return
    import psycopg

    driver = raw.connection.driver_connection
    pg = _PG()
    saves = [pg.adapt({**pg.save[1], **_save_params(c, versions[c.id])}) for c in cases]
    event_rows = [pg.adapt({name: getattr(e, name) for name in _EVENT_FIELDS}) for e in events]
    try:
        with driver.cursor() as save_cursor, driver.cursor() as cursor:
            with driver.pipeline():
                if saves:
                    save_cursor.executemany(pg.save[0], saves)
                if event_rows:
                    cursor.executemany(pg.insert_event[0], event_rows)
                for statement, rows in extra:
                    if rows:
                        sql, defaults = pg.compiled(statement, list(rows[0]))
                        cursor.executemany(sql, [pg.adapt({**defaults, **row}) for row in rows])
            if saves and save_cursor.rowcount != len(saves):  # known once the pipeline has synced
                raise ConcurrentUpdate("a case changed while the sweep fired its timers; they are retried later")
    except psycopg.Error as exc:
        raise DatabaseError(f"PostgreSQL failed: {str(exc).strip()}") from exc


def save_step(session: Session, case: CaseRecord, expected_version: int, event: EventRecord) -> None:
    """Compare-and-set the case and append its event; one round trip on PostgreSQL."""
    raw = _pg(session)
    if raw is None:
        save(session, case, expected_version)
        add_event(session, event)
        return
    params = _save_params(case, expected_version)
    params.update({f"e_{name}": getattr(event, name) for name in _EVENT_FIELDS_FOR_SQL[1:]})
    if len(_PG().run(raw, _PG().save_with_event, params).fetchall()) != 1:
        raise _lost(case)


# -- any Core statement of a step on the compiled path -------------------------------------------------------
#
# The clock, timer and outbox statements of a step (engine.sla, engine.cases) go through these: on PostgreSQL
# the statement is compiled once per parameter names (and, for an INSERT of several rows, per row count) and
# runs on the session's psycopg connection like the case statements above; on SQLite through SQLAlchemy.


def fetch_dicts(conn: Connection, statement: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of a SELECT (or of a DML ... RETURNING) as dicts of column name to value."""
    if conn.dialect.name != "postgresql":
        return [dict(row._mapping) for row in conn.execute(statement, params)]
    pg = _PG()
    cursor = pg.run(conn, pg.compiled(statement, list(params)), params)
    names = [column.name for column in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def scalar(conn: Connection, statement: Any, params: dict[str, Any]) -> Any:
    """The first column of the one row a statement returns (an INSERT ... RETURNING id)."""
    if conn.dialect.name != "postgresql":
        return conn.execute(statement, params).scalar_one()
    pg = _PG()
    values = pg.json_values(
        statement.table, _complete(statement.table, params) if statement.is_insert else dict(params)
    )
    return pg.run(conn, pg.compiled(statement, list(values)), values).fetchone()[0]


@cache
def _defaults(table: Any) -> tuple[tuple[str, Any, bool], ...]:
    """(column, default, callable?) for ``table``'s columns with a Python-side default: SQLAlchemy fills
    these in when it executes an INSERT; a statement compiled once and run on psycopg must be given them."""
    found = []
    for column in table.c:
        default = column.default
        if default is not None and not column.primary_key and (default.is_scalar or default.is_callable):
            found.append((column.name, default.arg, default.is_callable))
    return tuple(found)


def _complete(table: Any, row: dict[str, Any]) -> dict[str, Any]:
    """An INSERT's row with the columns it leaves out at their Python-side defaults."""
    row = dict(row)
    for name, default, call in _defaults(table):
        if name not in row:
            row[name] = default(None) if call else default
    return row


def execute_rows(conn: Connection, statement: Any, rows: list[dict[str, Any]]) -> None:
    """Run a statement for each row: an INSERT as one multi-row INSERT, anything else row by row
    (a step changes one or two rows; psycopg's executemany would set up a pipeline for them)."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(statement, rows)
        return
    pg = _PG()
    table = statement.table
    if statement.is_insert:
        rows = [_complete(table, row) for row in rows]
    if statement.is_insert and len(rows) > 1:
        keys = list(rows[0])
        rows = [pg.json_values(table, row) for row in rows]
        pg.run(conn, pg.compiled_unnest(statement, keys), {k: [row[k] for row in rows] for k in keys})
        return
    for row in rows:
        pg.run(conn, pg.compiled(statement, list(row)), pg.json_values(table, dict(row)))


def add_events(session: Session, events: list[EventRecord]) -> None:
    """Several events in one multi-row INSERT."""
    rows = [{name: getattr(e, name) for name in _EVENT_FIELDS} for e in events]
    _conn(session).execute(_INSERT_EVENT, rows)


def add_event(session: Session, event: EventRecord) -> None:
    values = {name: getattr(event, name) for name in _EVENT_FIELDS}
    raw = _pg(session)
    if raw is not None:
        _PG().run(raw, _PG().insert_event, values)
    else:
        _conn(session).execute(_INSERT_EVENT, values)
