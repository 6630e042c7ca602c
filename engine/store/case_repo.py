"""The case hot path in SQLAlchemy Core: few statements, no ORM unit of work.

A step is one SELECT (the case and the org token together), one compare-and-set
UPDATE and one INSERT of its event. A report is one SELECT (the workflow version
and the org token), one upsert of the code counter, one INSERT of the case and
one of its event. ``CaseRecord`` is the engine's working copy of a case row.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from engine.errors import ConcurrentUpdate
from engine.scope import token_query
from engine.store.models import Case, CaseCounter, CaseEvent, WorkflowDefinition

CASES = Case.__table__
EVENTS = CaseEvent.__table__
#: Columns a step may change; the UPDATE always writes all of them (one cached statement).
MUTABLE = ("status", "version", "title", "description", "category", "priority", "assignee_id", "satisfaction",
           "rework_count", "extension_count", "pending_extension", "updated_at", "closed_at")


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


_CASE_FIELDS = tuple(f.name for f in fields(CaseRecord))
_EVENT_FIELDS = tuple(f.name for f in fields(EventRecord))
_COLUMNS = [CASES.c[name] for name in _CASE_FIELDS]
_NAMES = [c.name for c in _COLUMNS]

# Statements are built once; each call only binds parameters (no per-call SQL construction).
_LOAD_BY_ID = select(*_COLUMNS, token_query().label("org_token")).where(CASES.c.id == bindparam("ref"))
_LOAD_BY_CODE = select(*_COLUMNS, token_query().label("org_token")).where(CASES.c.code == bindparam("ref"))
_TOKEN = select(token_query())
_LATEST = select(
    select(WorkflowDefinition.id)
    .where(WorkflowDefinition.name == bindparam("name"))
    .order_by(WorkflowDefinition.version.desc())
    .limit(1)
    .scalar_subquery()
    .label("workflow_id"),
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
_SAVE_WITH_EVENT = insert(EVENTS).from_select(
    list(_EVENT_FIELDS_FOR_SQL := ("case_id", "seq", "at", "actor_id", "trigger", "from_state", "to_state",
                                   "payload", "workflow_version")),
    select(_MOVED.c.id, *[bindparam(f"e_{n}", type_=EVENTS.c[n].type) for n in _EVENT_FIELDS_FOR_SQL[1:]]),
).returning(EVENTS.c.seq)  # rowcount is not reported for this form: count the returned rows
_COUNTERS = {}
for _dialect in (postgresql, sqlite):
    _upsert = _dialect.insert(CaseCounter).values(prefix=bindparam("key"), last=1)
    _upsert = _upsert.on_conflict_do_update(index_elements=[CaseCounter.prefix], set_={"last": CaseCounter.last + 1})
    _COUNTERS[_dialect.dialect.name] = _upsert.returning(CaseCounter.last)


def _conn(session: Session) -> Connection:
    """The session's connection, in its transaction: Core statements skip the ORM layer."""
    return session.connection()


def load(session: Session, ref: int | str) -> tuple[CaseRecord | None, str | None]:
    """The case by id or code, and the org token, in one statement."""
    conn = _conn(session)
    if _is_id(ref):
        row = conn.execute(_LOAD_BY_ID, {"ref": int(ref)}).first()
    else:
        row = conn.execute(_LOAD_BY_CODE, {"ref": str(ref)}).first()
    if row is None:
        return None, conn.execute(_TOKEN).scalar()
    return CaseRecord(*row[: len(_NAMES)]), row[len(_NAMES)]


def _is_id(ref: int | str) -> bool:
    return isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit())


def latest_workflow(session: Session, name: str) -> tuple[int | None, str | None]:
    """The id of the newest version of workflow ``name``, and the org token, in one statement."""
    row = _conn(session).execute(_LATEST, {"name": name}).one()
    return row.workflow_id, row.org_token


def next_number(session: Session, key: str) -> int:
    """Count up the code counter ``key`` (e.g. ``SL-2026``) in one upsert."""
    conn = _conn(session)
    return conn.execute(_COUNTERS[conn.dialect.name], {"key": key}).scalar_one()


def insert_case(session: Session, values: dict[str, Any]) -> int:
    return _conn(session).execute(_INSERT_CASE, values).scalar_one()


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


def save_step(session: Session, case: CaseRecord, expected_version: int, event: EventRecord) -> None:
    """Compare-and-set the case and append its event; one round trip on PostgreSQL."""
    conn = _conn(session)
    if conn.dialect.name != "postgresql":
        save(session, case, expected_version)
        add_event(session, event)
        return
    params = _save_params(case, expected_version)
    params.update({f"e_{name}": getattr(event, name) for name in _EVENT_FIELDS_FOR_SQL[1:]})
    if len(conn.execute(_SAVE_WITH_EVENT, params).all()) != 1:
        raise _lost(case)


def add_event(session: Session, event: EventRecord) -> None:
    _conn(session).execute(_INSERT_EVENT, {name: getattr(event, name) for name in _EVENT_FIELDS})
