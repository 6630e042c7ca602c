"""Alembic, driven from code: upgrade to head, and refuse to run on a stale schema."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from engine.errors import DatabaseError
from engine.store.revision import HEAD  # the newest migration

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@cache
def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Create or upgrade the schema; return (revision before, revision after)."""
    from alembic import command
    from alembic.util.exc import CommandError

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
    if _stamped(engine) == HEAD:
        return  # the everyday case, without loading Alembic
    current, head = current_revision(engine), head_revision()
    _refuse_unknown(current)
    if current != head:
        state = "has no gridflow schema" if current is None else f"is at schema {current}"
        raise DatabaseError(f"the database {state}; this gridflow expects {head}. Run `gridflow init`.")


def _stamped(engine: Engine) -> str | None:
    """The revision in ``alembic_version``, or None when there is none (Alembic then tells why)."""
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        return None
