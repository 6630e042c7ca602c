"""Alembic, driven from code: upgrade to head, and refuse to run on a stale schema."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine

from engine.errors import DatabaseError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def known_revisions() -> set[str]:
    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Create or upgrade the schema; return (revision before, revision after)."""
    before = current_revision(engine)
    _refuse_unknown(before)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        try:
            command.upgrade(cfg, "head")
        except CommandError as exc:
            raise DatabaseError(f"cannot upgrade the database schema: {exc}") from exc
    return before, head_revision()


def _refuse_unknown(revision: str | None) -> None:
    if revision is not None and revision not in known_revisions():
        raise DatabaseError(
            f"the database is at schema {revision}, which this gridflow does not know: it was made by a newer "
            f"gridflow ({head_revision()} is the newest here). Upgrade gridflow, or use another database."
        )


def ensure_current(engine: Engine) -> None:
    """Raise a clear error unless the database is at the schema this code expects."""
    current, head = current_revision(engine), head_revision()
    _refuse_unknown(current)
    if current != head:
        state = "has no gridflow schema" if current is None else f"is at schema {current}"
        raise DatabaseError(f"the database {state}; this gridflow expects {head}. Run `gridflow init`.")
