"""The application edge: settings in, one database, transactions, the clock.

The CLI (and later the API and the Celery tasks) build one :class:`Gridflow`
from :class:`config.settings.Settings` and call its methods. Each method opens
one transaction, calls the pure engine with ``at`` read from the clock here,
and commits. Database failures are translated into :class:`DatabaseError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from config.settings import Settings
from engine import cases
from engine.definitions.loader import load_workflow_file
from engine.errors import DatabaseError
from engine.org import load_org_file
from engine.store import migrate, org_repo, workflow_repo
from engine.store.db import create_db_engine, session_factory
from engine.store.models import Case, Person, Place

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class InitReport:
    database: str
    schema_before: str | None
    schema_after: str
    org: org_repo.OrgLoadResult
    workflows: list[workflow_repo.PublishResult] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


class Gridflow:
    def __init__(self, settings: Settings, clock: Clock = system_clock):
        self.settings = settings
        self.clock = clock
        self.tz = ZoneInfo(settings.timezone)
        self.engine = create_db_engine(settings.db_url)
        self._sessions = session_factory(self.engine)
        self._schema_checked = False

    @property
    def database_label(self) -> str:
        return make_url(self.settings.db_url).render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self, check_schema: bool = True) -> Iterator[Session]:
        try:
            if check_schema and not self._schema_checked:
                migrate.ensure_current(self.engine)  # once per process: a schema changes only by `init`
                self._schema_checked = True
            with self._sessions.begin() as session:
                yield session
        except (OperationalError, DBAPIError) as exc:
            raise DatabaseError(self._explain(exc)) from exc

    def _explain(self, exc: DBAPIError) -> str:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return (
            f"database {self.database_label} failed: {reason}. Is the server running and the URL right? "
            "Set GRIDFLOW_DATABASE_URL, or leave it empty for the embedded SQLite database."
        )

    # -- setup ---------------------------------------------------------------------

    def init(self, org_file: Path | None = None, workflow_files: list[Path] | None = None) -> InitReport:
        """Create or upgrade the schema, load the org chart, publish the workflows."""
        chart = load_org_file(org_file or self.settings.org_file)
        loaded = [load_workflow_file(p) for p in (workflow_files or self.settings.workflow_files)]
        try:
            before, after = migrate.upgrade(self.engine)
        except (OperationalError, DBAPIError) as exc:
            raise DatabaseError(self._explain(exc)) from exc
        report = InitReport(self.database_label, before, after, org_repo.OrgLoadResult())
        self._schema_checked = True
        with self.transaction() as session:
            report.org = org_repo.apply_org_chart(session, chart, self.clock())
            report.workflows = [workflow_repo.publish(session, w, self.clock()) for w in loaded]
            report.counts = self._counts(session)
        return report

    def _counts(self, session: Session) -> dict[str, int]:
        def count(model: Any, *where: Any) -> int:
            return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

        return {
            "villages": count(Place, Place.kind == "village", Place.active),
            "grids": count(Place, Place.kind == "grid", Place.active),
            "people": count(Person, Person.active),
            "workflow versions": workflow_repo.count(session),
            "cases": count(Case),
        }

    def load_org(self, path: Path) -> org_repo.OrgLoadResult:
        chart = load_org_file(path)
        with self.transaction() as session:
            return org_repo.apply_org_chart(session, chart, self.clock())

    def publish_workflow(self, path: Path) -> workflow_repo.PublishResult:
        loaded = load_workflow_file(path)
        with self.transaction() as session:
            return workflow_repo.publish(session, loaded, self.clock())

    # -- cases ---------------------------------------------------------------------

    def report(
        self, *, grid_id: str, actor_id: str, fields: dict[str, Any], workflow: str | None = None
    ) -> cases.StepResult:
        with self.transaction() as session:
            result = cases.report(
                session,
                grid_id=grid_id,
                actor_id=actor_id,
                fields=fields,
                at=self.clock(),
                workflow=workflow or self.settings.default_workflow,
                tz=self.tz,
            )
            return result

    def fire(
        self, case_ref: str, trigger: str, *, actor_id: str, fields: dict[str, Any], expected_version: int | None
    ) -> cases.StepResult:
        with self.transaction() as session:
            return cases.fire(
                session,
                case_ref,
                trigger,
                actor_id=actor_id,
                fields=fields,
                at=self.clock(),
                expected_version=expected_version,
            )
