"""The application's base: settings in, one database, transactions, the clock.

:class:`gridflow.app.Gridflow` adds the use cases of each area to this base. Each use case opens one
transaction, calls the engine with ``at`` read from the clock here, and commits. Database failures are
translated into :class:`DatabaseError`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, tzinfo
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.orm import Session

from config.settings import Settings
from engine.errors import DatabaseError, InputError, NotYet
from engine.store import migrate
from engine.store.db import create_db_engine, session_factory, sqlite_file_missing
from engine.store.unit import step_transaction
from engine.timeutil import in_years

if TYPE_CHECKING:  # loaded where used: a command that needs no calendar or template does not wait for them
    from engine.calendar import WorkCalendar
    from engine.points.rules import PointsRules
    from engine.scoring.config import ScoringConfig

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class Base:
    """Settings, the clock, the database and its transactions; the calendars and rules files."""

    def __init__(self, settings: Settings, clock: Clock | None = None):
        self.settings = settings
        self.clock = clock or _offset(settings.clock_offset_s)
        self.tz = ZoneInfo(settings.timezone)
        self.engine = create_db_engine(settings.db_url)
        self._sessions = session_factory(self.engine)
        # SQLite: reads begin a deferred transaction (WAL readers never wait for writers)
        self._read_engine = create_db_engine(settings.db_url, immediate=False) if self._sqlite else self.engine
        self._reads = session_factory(self._read_engine)
        self._schema_checked = False

    @cached_property
    def calendars(self) -> dict[str, WorkCalendar]:
        """The business calendars, read once from ``settings.calendar_file``."""
        from engine.calendar import load_calendars

        return load_calendars(self.settings.calendar_file)

    @property
    def worker_id(self) -> str:
        return f"{socket.gethostname()}:{os.getpid()}"

    def load_workflow(self, path: Path):  # type: ignore[no-untyped-def]
        from engine.definitions.loader import load_workflow_file

        return load_workflow_file(path, self.calendars)

    @property
    def database_label(self) -> str:
        return make_url(self.settings.db_url).render_as_string(hide_password=True)

    @property
    def _sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def close(self) -> None:
        self.engine.dispose()
        self._read_engine.dispose()

    @contextmanager
    def transaction(self, check_schema: bool = True, write: bool = True, step: bool = False) -> Iterator[Session]:
        """One transaction; commits when the block ends, rolls back on any error.
        An engine error ends the transaction: start a new one to try again.

        ``step``: a report or a case step, which on PostgreSQL runs on the bare driver connection
        (:func:`engine.store.unit.step_transaction`: no SQLAlchemy Session unless something asks for one)."""
        try:
            if check_schema and not self._schema_checked:
                self._check_schema()
            opened = step_transaction(self._sessions) if step else (self._sessions if write else self._reads).begin()
            with opened as session:
                yield session
        except (DataError, OverflowError) as exc:  # a value the column cannot hold: the input's fault, not the server's
            raise InputError(self._too_large(exc)) from exc
        except DBAPIError as exc:
            raise DatabaseError(self._explain(exc)) from exc

    def _too_large(self, exc: Exception) -> str:
        """A number too large or a text too long for its column (PostgreSQL's DataError, SQLite's OverflowError
        when a bound integer passes 64 bits): the use cases bound what a person types, this is the last guard."""
        orig = exc.orig if isinstance(exc, DBAPIError) else exc
        reason = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        return (
            f"a value is too large or malformed for the database ({reason}); nothing was changed: check the "
            "numbers and texts given (quantities, numbers of entries, lengths) and try again"
        )

    def _check_schema(self) -> None:
        if sqlite_file_missing(self.settings.db_url):
            raise DatabaseError(f"there is no database at {self.database_label} yet; run `gridflow init`")
        migrate.ensure_current(self._read_engine)  # once per process: a schema changes only by `init`
        self._schema_checked = True

    def _explain(self, exc: DBAPIError) -> str:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        message = f"database {self.database_label} failed: {reason}."
        if isinstance(exc, OperationalError) and not self._sqlite:
            message += (
                " Is the server running and the URL right? Set GRIDFLOW_DATABASE_URL, or leave it "
                "empty for the embedded SQLite database."
            )
        return message

    # -- scoring and postings ------------------------------------------------------------------

    def scoring_rules(self) -> ScoringConfig:
        """``config/scoring.yaml`` (``settings.scoring_file``), validated; read afresh each time."""
        from engine.scoring.config import load

        return load(self.settings.scoring_file)

    def points_rules(self) -> PointsRules:
        """``config/points.yaml`` (``settings.points_file``), validated; read afresh each time."""
        from engine.points.rules import load

        return load(self.settings.points_file)

    def export_postings(self, session: Session) -> list[Path]:
        """Write every posting version not yet on disk to ``<publish_dir>/<kind>/<period>/v<n>.{html,csv,json}``;
        a file already there is left alone (a posting version never changes)."""
        written = []
        from engine.publication import posting

        for pub in posting.versions(session):
            folder = self.settings.postings_path / pub.kind / pub.period
            for suffix, text in (("html", pub.html), ("csv", pub.csv), ("json", pub.json)):
                path = folder / f"v{pub.version}.{suffix}"
                if path.exists():
                    continue
                folder.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{suffix}.tmp")
                tmp.write_text(text, encoding="utf-8")  # the CSV text starts with a BOM (for Excel)
                tmp.replace(path)
                written.append(path)
        return written


def _offset(seconds: float) -> Clock:
    """The system clock, ahead by ``clock_offset_s`` (drills and tests) — the same clock the runtime uses."""
    if not seconds:
        return system_clock
    ahead = timedelta(seconds=seconds)
    return lambda: system_clock() + ahead


def not_after_now(at: datetime, now: datetime, tz: tzinfo = UTC) -> datetime:
    """``--at`` of a command that writes must not be in the future: scoring a month that is not over, or
    firing tomorrow's deadlines today, cannot be undone. The message shows the times in ``tz``."""
    if at > now + timedelta(seconds=1):
        raise NotYet(
            f"--at {at.astimezone(tz):%Y-%m-%d %H:%M %Z} is in the future (now {now.astimezone(tz):%Y-%m-%d %H:%M %Z}): "
            "a command that writes acts at a time that has come; leave --at out, or give a past time"
        )
    return at


def parse_at(text: str | None, tz: ZoneInfo, now: datetime, what: str = "--at") -> datetime:
    """``--at`` (or the option named ``what``): an ISO time, local when it has no offset
    (``2026-03-02T10:00``), or now; a year outside 2000–2099 is refused."""
    if not text:
        return now
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"bad time {text!r}: write it like 2026-03-02T10:00 (local) or with an offset") from exc
    in_years(value, what)
    return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(UTC)
