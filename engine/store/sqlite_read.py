"""Reads of the embedded SQLite database through the standard library's ``sqlite3`` alone.

``gridflow case show`` asks two SELECTs of the database, and a process spends most of a second importing
SQLAlchemy and mapping the models before it may ask them. These reads answer the common case without
either: the same rows, the same values (times aware in UTC, JSON decoded), for the caller to present as
the full path does. They are an optimisation, never a second opinion: whenever anything is not exactly as
expected (a URL that is not a plain file, no file, another schema revision, no such row, any error of
SQLite) they return None, and the caller takes the full path, which says what is wrong in its own words.

The file is opened read and write but never created (``mode=rw``; a WAL database's readers may need to
make its ``-shm`` file, which SQLite gives the database file's mode), and nothing is written.
``tests/integration/test_quick_reads.py`` holds these answers equal to the full path's, row by row.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

#: The columns of a case the card shows, as ``engine.store.models.Case`` names them.
CASE_COLUMNS = (
    "id", "code", "workflow_id", "workflow_name", "workflow_version", "status", "version", "title", "description",
    "category", "priority", "grid_id", "reporter_id", "assignee_id", "satisfaction", "rework_count",
    "extension_count", "pending_extension", "reported_at", "updated_at", "closed_at",
)  # fmt: skip
_TIMES = ("reported_at", "updated_at", "closed_at")
_JSON = ("pending_extension",)
_BUSY_MS = 5000  # a writer holds the file only while it commits (WAL): wait for it rather than fall back


def plain_file(url: str) -> Path | None:
    """The file of ``sqlite:///PATH`` (the embedded default's form); None for any other URL."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    rest = url[len(prefix) :]
    if not rest or rest == ":memory:" or "?" in rest or "#" in rest or rest.startswith("file:"):
        return None
    return Path(rest)


def case_with_workflow(url: str, ref: str, head: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The case ``ref`` (its id or its code) and its workflow version's compiled definition, or None.

    ``head`` is the schema revision this gridflow expects; any other (or none) is None too."""
    path = plain_file(url)
    if path is None or not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=rw", uri=True, timeout=_BUSY_MS / 1000)
    except sqlite3.Error:
        return None
    try:
        conn.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
        if conn.execute("SELECT version_num FROM alembic_version").fetchall() != [(head,)]:
            return None
        by = "id" if ref.isascii() and ref.isdigit() and 0 < len(ref) < 19 else "code"
        row = conn.execute(
            f"SELECT {', '.join(CASE_COLUMNS)} FROM cases WHERE {by} = ?", (int(ref) if by == "id" else ref,)
        ).fetchone()
        if row is None:
            return None
        case = dict(zip(CASE_COLUMNS, row, strict=True))
        found = conn.execute("SELECT compiled FROM workflow_definition WHERE id = ?", (case["workflow_id"],)).fetchone()
        if found is None:
            return None
        for name in _TIMES:
            case[name] = _utc(case[name])
        for name in _JSON:
            case[name] = json.loads(case[name]) if case[name] is not None else None
        return case, json.loads(found[0])
    except (sqlite3.Error, ValueError, TypeError):
        return None
    finally:
        conn.close()


def _utc(value: str | None) -> datetime | None:
    """A time as SQLAlchemy stores it on SQLite (naive, in UTC: ``2026-12-03 01:00:00.000000``), aware."""
    if value is None:
        return None
    at = datetime.fromisoformat(value)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
