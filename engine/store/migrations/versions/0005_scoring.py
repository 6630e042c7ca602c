"""scoring and publication: score runs, indicators, scores, postings, objections; clock attribution

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
At = sa.DateTime(timezone=True)


def _id() -> sa.Column:
    return sa.Column("id", BigId, autoincrement=True, nullable=False)


def backfill(bind) -> None:  # noqa: ANN001 - a Connection; also called by a test
    """Clocks from before this migration: the step that left the clock's state (or closed the case),
    and the handler it was started for (the assignee of the last dispatch before it started)."""
    bind.exec_driver_sql(
        "UPDATE sla_clock SET stopped_by = (SELECT e.trigger FROM case_event e WHERE e.case_id = sla_clock.case_id "
        "AND e.at = sla_clock.stopped_at AND (sla_clock.scope = 'case' OR e.from_state = sla_clock.state) "
        "AND e.from_state IS DISTINCT FROM e.to_state ORDER BY e.seq LIMIT 1) WHERE stopped_at IS NOT NULL"
        if bind.dialect.name == "postgresql"
        else "UPDATE sla_clock SET stopped_by = (SELECT e.trigger FROM case_event e WHERE e.case_id = sla_clock.case_id "
        "AND e.at = sla_clock.stopped_at AND (sla_clock.scope = 'case' OR e.from_state = sla_clock.state) "
        "AND e.from_state IS NOT e.to_state ORDER BY e.seq LIMIT 1) WHERE stopped_at IS NOT NULL"
    )
    assignee = (
        "e.payload ->> 'assignee'" if bind.dialect.name == "postgresql" else "json_extract(e.payload, '$.assignee')"
    )
    bind.exec_driver_sql(
        f"UPDATE sla_clock SET assignee_id = (SELECT {assignee} FROM case_event e WHERE e.case_id = sla_clock.case_id "
        "AND e.at <= sla_clock.started_at AND e.trigger IN ('assign', 'return') ORDER BY e.seq DESC LIMIT 1) "
        "WHERE scope = 'state'"
    )


def upgrade() -> None:
    with op.batch_alter_table("sla_clock", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assignee_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("stopped_by", sa.String(length=64), nullable=True))
    with op.batch_alter_table("case_event", schema=None) as batch_op:
        batch_op.create_index("ix_case_event_at", ["at"], unique=False)
    backfill(op.get_bind())

    op.create_table(
        "scoring_config",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source_hash", sa.String(length=64), nullable=False),
        sa.Column("source_text", sa.Text(), nullable=False),
        sa.Column("stored_at", At, nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_scoring_config")),
    )
    op.create_table(
        "score_run",
        _id(),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("config_version", sa.Integer(), nullable=False),
        sa.Column("period_start", At, nullable=False),
        sa.Column("period_end", At, nullable=False),
        sa.Column("computed_at", At, nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("exempt", Json, nullable=False),
        sa.Column("summary", Json, nullable=False),
        sa.Column("org", Json, nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["config_version"],
            ["scoring_config.version"],
            name=op.f("fk_score_run_config_version_scoring_config"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_score_run")),
        sa.UniqueConstraint("period", "seq", name=op.f("uq_score_run_period_seq")),
    )
    with op.batch_alter_table("score_run", schema=None) as batch_op:
        batch_op.create_index("ix_score_run_current", ["period", "current"], unique=False)
    op.create_table(
        "score_indicator",
        _id(),
        sa.Column("run_id", BigId, nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("indicator", sa.String(length=48), nullable=False),
        sa.Column("numerator", sa.Float(), nullable=True),
        sa.Column("denominator", sa.BigInteger(), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["score_run.id"], name=op.f("fk_score_indicator_run_id_score_run")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_score_indicator")),
        sa.UniqueConstraint(
            "run_id",
            "subject_kind",
            "subject_id",
            "indicator",
            name=op.f("uq_score_indicator_run_id_subject_kind_subject_id_indicator"),
        ),
    )
    op.create_table(
        "score",
        _id(),
        sa.Column("run_id", BigId, nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("group_key", sa.String(length=64), nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.Column("composite", sa.Float(), nullable=True),
        sa.Column("parts", Json, nullable=False),
        sa.Column("missing", Json, nullable=False),
        sa.Column("grade", sa.String(length=2), nullable=True),
        sa.Column("ranked", sa.Boolean(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("listed", sa.String(length=8), nullable=True),
        sa.Column("previous", sa.Float(), nullable=True),
        sa.Column("change", sa.Float(), nullable=True),
        sa.Column("year_ago", sa.Float(), nullable=True),
        sa.Column("change_year", sa.Float(), nullable=True),
        sa.Column("rank_change", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["score_run.id"], name=op.f("fk_score_run_id_score_run")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_score")),
        sa.UniqueConstraint(
            "run_id", "subject_kind", "subject_id", name=op.f("uq_score_run_id_subject_kind_subject_id")
        ),
    )
    op.create_table(
        "publication",
        _id(),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("run_id", BigId, nullable=False),
        sa.Column("published_at", At, nullable=False),
        sa.Column("objection_until", At, nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("csv", sa.Text(), nullable=False),
        sa.Column("json", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("changes", Json, nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["score_run.id"], name=op.f("fk_publication_run_id_score_run")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publication")),
        sa.UniqueConstraint("kind", "period", "version", name=op.f("uq_publication_kind_period_version")),
    )
    op.create_table(
        "objection",
        _id(),
        sa.Column("publication_id", BigId, nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("case_ids", Json, nullable=False),
        sa.Column("lodged_by", sa.String(length=100), nullable=False),
        sa.Column("lodged_at", At, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_at", At, nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decision", sa.Text(), nullable=True),
        sa.Column("republished_id", BigId, nullable=True),
        sa.ForeignKeyConstraint(
            ["publication_id"], ["publication.id"], name=op.f("fk_objection_publication_id_publication")
        ),
        sa.ForeignKeyConstraint(
            ["republished_id"], ["publication.id"], name=op.f("fk_objection_republished_id_publication")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_objection")),
    )
    op.create_table(
        "score_exemption",
        _id(),
        sa.Column("case_id", BigId, nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("objection_id", BigId, nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", At, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_score_exemption_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["objection_id"], ["objection.id"], name=op.f("fk_score_exemption_objection_id_objection")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_score_exemption")),
        sa.UniqueConstraint("case_id", "period", name=op.f("uq_score_exemption_case_id_period")),
    )


def downgrade() -> None:
    for table in ("score_exemption", "objection", "publication", "score", "score_indicator"):
        op.drop_table(table)
    with op.batch_alter_table("score_run", schema=None) as batch_op:
        batch_op.drop_index("ix_score_run_current")
    op.drop_table("score_run")
    op.drop_table("scoring_config")
    with op.batch_alter_table("case_event", schema=None) as batch_op:
        batch_op.drop_index("ix_case_event_at")
    with op.batch_alter_table("sla_clock", schema=None) as batch_op:
        batch_op.drop_column("stopped_by")
        batch_op.drop_column("assignee_id")
