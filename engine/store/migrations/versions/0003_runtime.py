"""runtime: job_run, outbox delivery columns

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OUTBOX_COLUMNS = [
    ("claimed_by", sa.String(length=64)),
    ("lease_until", sa.DateTime(timezone=True)),
    ("channel", sa.String(length=32)),
    ("sent_at", sa.DateTime(timezone=True)),
    ("provider_id", sa.String(length=100)),
    ("error", sa.Text()),
]


def upgrade() -> None:
    op.create_table(
        "job_run",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.String(length=64), nullable=True),
        sa.Column(
            "result", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_run")),
        sa.UniqueConstraint("job", "period", name=op.f("uq_job_run_job_period")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        for name, type_ in OUTBOX_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        for name, _ in reversed(OUTBOX_COLUMNS):
            batch_op.drop_column(name)
    op.drop_table("job_run")
