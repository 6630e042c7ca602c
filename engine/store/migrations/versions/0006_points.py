"""household archive and points: households, residents, the points ledger and approvals, balances,
the points store and its redemptions, household scores

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "points_rules",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source_hash", sa.String(length=64), nullable=False),
        sa.Column("source_text", sa.Text(), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_points_rules")),
    )
    op.create_table(
        "household",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("village_id", sa.String(length=64), nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=True),
        sa.Column("grid_id", sa.String(length=64), nullable=True),
        sa.Column("head_name", sa.String(length=50), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["grid_id"], ["place.id"], name=op.f("fk_household_grid_id_place")),
        sa.ForeignKeyConstraint(["group_id"], ["place.id"], name=op.f("fk_household_group_id_place")),
        sa.ForeignKeyConstraint(["village_id"], ["place.id"], name=op.f("fk_household_village_id_place")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_household")),
    )
    with op.batch_alter_table("household", schema=None) as batch_op:
        batch_op.create_index("ix_household_village", ["village_id"], unique=False)

    op.create_table(
        "store_item",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("village_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("price", sa.Integer(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["village_id"], ["place.id"], name=op.f("fk_store_item_village_id_place")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_item")),
        sa.UniqueConstraint("village_id", "code", name=op.f("uq_store_item_village_id_code")),
    )
    op.create_table(
        "household_balance",
        sa.Column("household_id", sa.String(length=32), nullable=False),
        sa.Column("earned", sa.Integer(), nullable=False),
        sa.Column("redeemed", sa.Integer(), nullable=False),
        sa.Column("refunded", sa.Integer(), nullable=False),
        sa.Column("balance", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["household_id"], ["household.id"], name=op.f("fk_household_balance_household_id_household")
        ),
        sa.PrimaryKeyConstraint("household_id", name=op.f("pk_household_balance")),
    )
    op.create_table(
        "household_score",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("household_id", sa.String(length=32), nullable=False),
        sa.Column("village_id", sa.String(length=64), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("awarded", sa.Integer(), nullable=False),
        sa.Column("deducted", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("rank_village", sa.Integer(), nullable=True),
        sa.Column("rank_township", sa.Integer(), nullable=True),
        sa.Column("stars", Json, nullable=False),
        sa.Column("listed", sa.String(length=8), nullable=True),
        sa.ForeignKeyConstraint(
            ["household_id"], ["household.id"], name=op.f("fk_household_score_household_id_household")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["score_run.id"], name=op.f("fk_household_score_run_id_score_run")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_household_score")),
        sa.UniqueConstraint("run_id", "household_id", name=op.f("uq_household_score_run_id_household_id")),
    )
    op.create_table(
        "redemption",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("household_id", sa.String(length=32), nullable=False),
        sa.Column("village_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operator_id", sa.String(length=64), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("lines", Json, nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("reversed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reversed_by", sa.String(length=64), nullable=True),
        sa.Column("reverse_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["household_id"], ["household.id"], name=op.f("fk_redemption_household_id_household")),
        sa.ForeignKeyConstraint(["village_id"], ["place.id"], name=op.f("fk_redemption_village_id_place")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redemption")),
        sa.UniqueConstraint("key", name=op.f("uq_redemption_key")),
    )
    op.create_table(
        "resident",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("household_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("relation", sa.String(length=16), nullable=False),
        sa.Column("gender", sa.String(length=4), nullable=True),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("id_number", sa.String(length=18), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["household_id"], ["household.id"], name=op.f("fk_resident_household_id_household")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resident")),
    )
    with op.batch_alter_table("resident", schema=None) as batch_op:
        batch_op.create_index("ix_resident_household", ["household_id"], unique=False)

    op.create_table(
        "points_entry",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("household_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("rule", sa.String(length=48), nullable=True),
        sa.Column("rules_version", sa.Integer(), nullable=True),
        sa.Column("category", sa.String(length=32), nullable=True),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("on_date", sa.String(length=10), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorder_id", sa.String(length=64), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("case_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("reverses_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("redemption_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("needs_approval", sa.Boolean(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_points_entry_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["household_id"], ["household.id"], name=op.f("fk_points_entry_household_id_household")
        ),
        sa.ForeignKeyConstraint(
            ["redemption_id"], ["redemption.id"], name=op.f("fk_points_entry_redemption_id_redemption")
        ),
        sa.ForeignKeyConstraint(
            ["reverses_id"], ["points_entry.id"], name=op.f("fk_points_entry_reverses_id_points_entry")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_entry")),
        sa.UniqueConstraint("key", name=op.f("uq_points_entry_key")),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_points_entry_reverses_id")),
    )
    with op.batch_alter_table("points_entry", schema=None) as batch_op:
        batch_op.create_index("ix_points_entry_effective", ["effective_at"], unique=False)
        batch_op.create_index("ix_points_entry_limit", ["household_id", "rule", "on_date"], unique=False)
        batch_op.create_index("ix_points_entry_household", ["household_id", "id"], unique=False)

    op.create_table(
        "points_approval",
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("by_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["points_entry.id"], name=op.f("fk_points_approval_entry_id_points_entry")
        ),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_points_approval")),
    )

    _exemptions()


def _exemptions() -> None:
    op.create_table(
        "points_exemption",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("objection_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["points_entry.id"], name=op.f("fk_points_exemption_entry_id_points_entry")
        ),
        sa.ForeignKeyConstraint(
            ["objection_id"], ["objection.id"], name=op.f("fk_points_exemption_objection_id_objection")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_exemption")),
        sa.UniqueConstraint("entry_id", "period", name=op.f("uq_points_exemption_entry_id_period")),
    )


def downgrade() -> None:
    op.drop_table("points_exemption")
    op.drop_table("points_approval")
    with op.batch_alter_table("points_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_points_entry_household")
        batch_op.drop_index("ix_points_entry_effective")
        batch_op.drop_index("ix_points_entry_limit")

    op.drop_table("points_entry")
    with op.batch_alter_table("resident", schema=None) as batch_op:
        batch_op.drop_index("ix_resident_household")

    op.drop_table("resident")
    op.drop_table("redemption")
    op.drop_table("household_score")
    op.drop_table("household_balance")
    op.drop_table("store_item")
    with op.batch_alter_table("household", schema=None) as batch_op:
        batch_op.drop_index("ix_household_village")

    op.drop_table("household")
    op.drop_table("points_rules")
