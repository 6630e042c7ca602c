"""Alembic, driven from code: upgrade to head, and refuse to run on a stale schema."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
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


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Create or upgrade the schema; return (revision before, revision after)."""
    before = current_revision(engine)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return before, head_revision()


def ensure_current(engine: Engine) -> None:
    """Raise a clear error unless the database is at the schema this code expects."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        state = "has no gridflow schema" if current is None else f"is at schema {current}"
        raise DatabaseError(f"the database {state}; this gridflow expects {head}. Run `gridflow init`.")
