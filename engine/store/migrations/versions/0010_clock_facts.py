"""sla_clock's index by case carries what the monthly scoring reads of a clock (PostgreSQL)

The scoring run reads every clock of the month's cases once (``engine/scoring/facts.py``: the visit
facts and each case's clock summary). The heap holds each clock's policy and history as JSON, several
times the width of what scoring needs; with these columns in the index (``INCLUDE``), PostgreSQL answers
from the index alone once the table is vacuumed. The index's key stays ``(case_id, status)``, which a
step's clock reads use. SQLite has no ``INCLUDE``: there the index is as before.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# engine.store.models.CLOCK_FACT_COLUMNS as of this revision (a migration keeps its own copy)
COLUMNS = ["id", "scope", "state", "started_at", "stopped_at", "breached_at", "outcome", "consumed_s", "assignee_id",
           "stopped_by"]  # fmt: skip


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_sla_clock_case", table_name="sla_clock")
    op.create_index("ix_sla_clock_case", "sla_clock", ["case_id", "status"],
                    postgresql_include=COLUMNS)  # fmt: skip


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_sla_clock_case", table_name="sla_clock")
    op.create_index("ix_sla_clock_case", "sla_clock", ["case_id", "status"])
