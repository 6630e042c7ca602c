"""Finding cases: filters, grid scope, sorting and cursor pagination (the ledger's 台账 listing).

A cursor is the sort key and id of the last row of a page (keyset pagination): the next page
starts strictly after it, so a page never repeats or skips a row while cases are being reported,
and the database walks an index instead of counting an offset. The cursor is opaque to clients
(URL-safe base64 of JSON) and checked when it comes back.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from engine.errors import InputError
from engine.store.models import Case, Place, SlaClock

Sort = Literal["-reported_at", "reported_at", "-updated_at", "updated_at", "due_at", "-id", "id"]
SORTS: tuple[str, ...] = ("-reported_at", "reported_at", "-updated_at", "updated_at", "due_at", "-id", "id")


@dataclass(frozen=True)
class CaseFilter:
    status: tuple[str, ...] = ()
    village: str | None = None
    grid: str | None = None
    category: str | None = None
    priority: str | None = None
    overdue: bool | None = None
    breaching_within: timedelta | None = None  # a running clock falls due within this from ``at``
    assignee: str | None = None
    reporter: str | None = None
    person: str | None = None  # reported or handles
    source: str | None = None
    reported_from: datetime | None = None
    reported_to: datetime | None = None
    open_only: bool = False
    pending_extension: bool | None = None  # an extension request waits for the centre's decision
    extra: dict[str, Any] = field(default_factory=dict)


def _column(sort: str) -> Any:
    name = sort.lstrip("-")
    return {
        "reported_at": Case.reported_at,
        "updated_at": Case.updated_at,
        "id": Case.id,
        "due_at": _due_at(),
    }[name]


def _due_at() -> Any:
    """The earliest deadline of the case's running clocks (a correlated subquery)."""
    from sqlalchemy import func

    return (
        select(func.min(SlaClock.due_at))
        .where(SlaClock.case_id == Case.id, SlaClock.status == "running")
        .correlate(Case)
        .scalar_subquery()
    )


def encode_cursor(sort: str, key: Any, case_id: int) -> str:
    value = key.isoformat() if isinstance(key, datetime) else key
    raw = json.dumps({"s": sort, "k": value, "i": case_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[Any, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("s") != sort or not isinstance(data.get("i"), int):
            raise ValueError
        key = data.get("k")
        if sort.lstrip("-") in ("reported_at", "updated_at", "due_at") and key is not None:
            key = datetime.fromisoformat(key)
        return key, int(data["i"])
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(
            "cursor: not a cursor of this listing (or of another sort); start again without it and follow next_cursor"
        ) from exc


def search(
    session: Session,
    flt: CaseFilter,
    *,
    at: datetime,
    grids: frozenset[str] | None,
    sort: str = "-reported_at",
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Case], str | None]:
    """One page of cases matching ``flt`` inside ``grids`` (None: every grid), and the next page's cursor."""
    if sort not in SORTS:
        raise InputError(f"sort {sort!r}: one of {', '.join(SORTS)}")
    query = select(Case)
    where = _where(flt, at, grids)
    if where:
        query = query.where(and_(*where))
    column = _column(sort)
    descending = sort.startswith("-")
    if cursor:
        key, last_id = decode_cursor(cursor, sort)
        if sort.lstrip("-") == "id":
            query = query.where(Case.id < last_id if descending else Case.id > last_id)
        elif key is None:  # past the rows with a key: only the keyless ones after this id
            query = query.where(column.is_(None), Case.id > last_id)
        else:
            after = or_(column < key, and_(column == key, Case.id < last_id)) if descending else None
            if not descending:
                after = or_(column > key, and_(column == key, Case.id > last_id), column.is_(None))
            query = query.where(after)
    if sort.lstrip("-") == "id":
        query = query.order_by(Case.id.desc() if descending else Case.id)
    elif descending:
        query = query.order_by(column.desc(), Case.id.desc())
    else:
        query = query.order_by(column.is_(None), column, Case.id)
    rows = list(session.scalars(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    if not more or not rows:
        return rows, None
    last = rows[-1]
    key = last.id if sort.lstrip("-") == "id" else _key_of(session, last, sort)
    return rows, encode_cursor(sort, key, last.id)


def count(session: Session, flt: CaseFilter, *, at: datetime, grids: frozenset[str] | None) -> int:
    """How many cases match ``flt`` inside ``grids`` (None: every grid)."""
    from sqlalchemy import func

    query = select(func.count()).select_from(Case)
    where = _where(flt, at, grids)
    if where:
        query = query.where(and_(*where))
    return int(session.scalar(query) or 0)


def _key_of(session: Session, case: Case, sort: str) -> Any:
    name = sort.lstrip("-")
    if name == "due_at":
        from sqlalchemy import func

        return session.scalar(
            select(func.min(SlaClock.due_at)).where(SlaClock.case_id == case.id, SlaClock.status == "running")
        )
    return getattr(case, name)


def _where(flt: CaseFilter, at: datetime, grids: frozenset[str] | None) -> list[Any]:
    where: list[Any] = []
    if grids is not None:
        where.append(Case.grid_id.in_(sorted(grids)) if grids else Case.id.is_(None))
    if flt.status:
        where.append(Case.status.in_(flt.status))
    if flt.grid:
        where.append(Case.grid_id == flt.grid)
    if flt.village:
        in_village = select(Place.id).where(Place.village_id == flt.village, Place.kind == "grid")
        where.append(Case.grid_id.in_(in_village))
    if flt.category:
        where.append(Case.category == flt.category)
    if flt.priority:
        where.append(Case.priority == flt.priority)
    if flt.overdue is not None:
        # ``overdue = true``, not ``IS TRUE``: PostgreSQL matches the former (not the latter) to a partial
        # index ``WHERE overdue``, the one a village's overdue list needs (the column is NOT NULL: same rows).
        where.append(Case.overdue == flt.overdue)
    if flt.assignee:
        where.append(Case.assignee_id == flt.assignee)
    if flt.reporter:
        where.append(Case.reporter_id == flt.reporter)
    if flt.person:
        where.append(or_(Case.assignee_id == flt.person, Case.reporter_id == flt.person))
    if flt.source:
        where.append(or_(Case.source_channel == flt.source, Case.source_client == flt.source))
    if flt.reported_from:
        where.append(Case.reported_at >= flt.reported_from)
    if flt.reported_to:
        where.append(Case.reported_at < flt.reported_to)
    if flt.open_only:
        where.append(Case.closed_at.is_(None))
    if flt.pending_extension is not None:
        where.append(Case.pending_extension.is_not(None) if flt.pending_extension else Case.pending_extension.is_(None))
    if flt.breaching_within is not None:
        where.append(
            exists().where(
                SlaClock.case_id == Case.id,
                SlaClock.status == "running",
                SlaClock.breached_at.is_(None),
                SlaClock.due_at <= at + flt.breaching_within,
            )
        )
    return where
