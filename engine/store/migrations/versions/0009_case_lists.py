"""case lists: newest first, and the overdue ones newest first, read from an index instead of sorted

A page of cases (the API's ``GET /api/v1/cases``, ``gridflow case list``) is ordered by
``reported_at DESC, id DESC``. With 100,000 cases a village's overdue page took ~100 ms of sorting;
with the partial index it reads 50 rows in order (bench/api.py, docs/benchmarks.md).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_cases_reported", "cases", ["reported_at", "id"])
    op.create_index(
        "ix_cases_overdue_reported",
        "cases",
        ["reported_at", "id"],
        postgresql_where=sa.text("overdue"),
        sqlite_where=sa.text("overdue"),
    )


def downgrade() -> None:
    op.drop_index("ix_cases_overdue_reported", table_name="cases")
    op.drop_index("ix_cases_reported", table_name="cases")
