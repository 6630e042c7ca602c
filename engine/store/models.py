"""SQLAlchemy 2 typed models: the database is the truth.

Schema changes go through Alembic (``engine/store/migrations``); a test checks
that the migrations and these models agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer, "sqlite")
Json = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")  # None is SQL NULL on both


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes only; stored in UTC, read back aware in UTC (SQLite too)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime (UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: Json}


# -- org chart -----------------------------------------------------------------


class Place(Base):
    """Township, village, group (社) or grid cell (单元格)."""

    __tablename__ = "place"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # township | village | group | grid
    name: Mapped[str] = mapped_column(String(100))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("place.id"))
    village_id: Mapped[str | None] = mapped_column(String(64))
    township_id: Mapped[str] = mapped_column(String(64))
    grid_kind: Mapped[str | None] = mapped_column(String(16))  # residential | unit
    households: Mapped[int | None] = mapped_column(Integer)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Person(Base):
    __tablename__ = "person"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    title: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(200))
    wecom: Mapped[str | None] = mapped_column(String(100))
    notify: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class OrgMeta(Base):
    """One row: a token that changes whenever the org chart changes.

    Readers cache the org chart in memory under this token and read the token
    in the same statement as the case, so a reload is seen at the next step.
    """

    __tablename__ = "org_meta"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(32))
    changed_at: Mapped[datetime] = mapped_column()


class RoleAssignment(Base):
    """A person holds a role over a place (their scope) and everything under it."""

    __tablename__ = "role_assignment"
    __table_args__ = (
        UniqueConstraint("person_id", "role", "place_id"),
        Index("ix_role_assignment_place_role", "place_id", "role"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    role: Mapped[str] = mapped_column(String(32))
    place_id: Mapped[str] = mapped_column(ForeignKey("place.id"))


# -- workflows and cases ---------------------------------------------------------


class WorkflowDefinition(Base):
    """One published version of a workflow; never changed once published."""

    __tablename__ = "workflow_definition"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    source_file: Mapped[str] = mapped_column(String(500))
    source_text: Mapped[str] = mapped_column(Text)
    source_hash: Mapped[str] = mapped_column(String(64))
    compiled: Mapped[dict[str, Any]] = mapped_column(JSON(none_as_null=True))  # json, not jsonb: keeps YAML order
    published_at: Mapped[datetime] = mapped_column()


class CaseCounter(Base):
    """Next number of a case code per prefix and year, e.g. ``SL-2026``."""

    __tablename__ = "case_counter"

    prefix: Mapped[str] = mapped_column(String(32), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Case(Base):
    """A case (事件) in the ledger (台账). ``version`` is the optimistic lock."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_status", "status"),
        Index("ix_cases_grid_status", "grid_id", "status"),
        Index("ix_cases_assignee", "assignee_id"),
        Index("ix_cases_reported", "reported_at", "id"),  # pages newest first (migration 0009)
        Index(
            "ix_cases_overdue_reported",
            "reported_at",
            "id",
            postgresql_where=text("overdue"),
            sqlite_where=text("overdue"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflow_definition.id"))
    workflow_name: Mapped[str] = mapped_column(String(64))
    workflow_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[str | None] = mapped_column(String(32))
    grid_id: Mapped[str] = mapped_column(ForeignKey("place.id"))
    reporter_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    assignee_id: Mapped[str | None] = mapped_column(ForeignKey("person.id"))
    source_channel: Mapped[str] = mapped_column(String(32), default="grid_worker")
    satisfaction: Mapped[str | None] = mapped_column(String(32))
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    extension_count: Mapped[int] = mapped_column(Integer, default=0)
    pending_extension: Mapped[dict[str, Any] | None] = mapped_column()
    reported_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    overdue: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    escalation_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    mark: Mapped[str | None] = mapped_column(String(32))  # yellow_card | red_card | supervision_order
    source_client: Mapped[str | None] = mapped_column(String(64))  # the API client (Open311) it came through

    # `version` is the optimistic lock; the compare-and-set is in engine.store.case_repo.save


class CaseEvent(Base):
    """Append-only audit trail: one row per accepted step; never updated or deleted."""

    __tablename__ = "case_event"
    __table_args__ = (UniqueConstraint("case_id", "seq"), Index("ix_case_event_at", "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column()
    actor_id: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(64))
    from_state: Mapped[str | None] = mapped_column(String(64))
    to_state: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    workflow_version: Mapped[int] = mapped_column(Integer)
    # A backfilled step (a paper register typed in later): ``at`` is when it happened, ``received_at``
    # when it was typed in and ``entered_by`` who typed it; both NULL for a step taken live.
    received_at: Mapped[datetime | None] = mapped_column()
    entered_by: Mapped[str | None] = mapped_column(String(64))


# -- SLA clocks, timers and the outbox --------------------------------------------------


#: What the monthly scoring reads of a clock, carried in the index by case on PostgreSQL (migration 0010):
#: the scoring run then reads the index alone, not the heap with each clock's policy and history.
CLOCK_FACT_COLUMNS = (
    "id", "scope", "state", "started_at", "stopped_at", "breached_at", "outcome", "consumed_s", "assignee_id",
    "stopped_by",
)  # fmt: skip


class SlaClock(Base):
    """One clock: the time limit of one state visit, or of the whole case.

    Business time is kept in seconds on the clock's calendar. A running clock's
    deadline is ``due_at``; pausing adds the segment to ``consumed_s``; every
    change appends to ``history`` (what ``gridflow sla explain`` shows).
    """

    __tablename__ = "sla_clock"
    __table_args__ = (Index("ix_sla_clock_case", "case_id", "status", postgresql_include=list(CLOCK_FACT_COLUMNS)),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    scope: Mapped[str] = mapped_column(String(16))  # state | case
    state: Mapped[str | None] = mapped_column(String(64))  # for scope=state
    calendar: Mapped[str] = mapped_column(String(32))
    limit_s: Mapped[int] = mapped_column(Integer)  # business seconds, extensions included
    consumed_s: Mapped[int] = mapped_column(Integer, default=0)  # business seconds before the running segment
    status: Mapped[str] = mapped_column(String(16))  # running | paused | stopped
    generation: Mapped[int] = mapped_column(Integer, default=1)  # bumped whenever timers are laid again
    segment_start: Mapped[datetime | None] = mapped_column()  # business time counts from here while running
    started_at: Mapped[datetime] = mapped_column()
    stopped_at: Mapped[datetime | None] = mapped_column()
    due_at: Mapped[datetime | None] = mapped_column()
    estimated: Mapped[bool] = mapped_column(Boolean, default=False)  # the deadline uses an estimated year
    breached_at: Mapped[datetime | None] = mapped_column()
    outcome: Mapped[str | None] = mapped_column(String(16))  # met | breached (when stopped)
    policy: Mapped[dict[str, Any]] = mapped_column()  # the resolved limit, reminders and ladder
    history: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    assignee_id: Mapped[str | None] = mapped_column(String(64))  # the case's handler when the clock started
    stopped_by: Mapped[str | None] = mapped_column(String(64))  # the trigger that stopped it


class SlaTimer(Base):
    """A reminder, the breach or an escalation level, due at ``fire_at``; fired exactly once."""

    __tablename__ = "sla_timer"
    __table_args__ = (
        Index(
            "ix_sla_timer_due",
            "fire_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_sla_timer_clock", "clock_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    clock_id: Mapped[int] = mapped_column(ForeignKey("sla_clock.id"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    kind: Mapped[str] = mapped_column(String(16))  # reminder | breach | escalation
    level: Mapped[int] = mapped_column(Integer, default=0)  # reminder index or ladder level
    generation: Mapped[int] = mapped_column(Integer)
    fire_at: Mapped[datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | fired | cancelled
    lease_until: Mapped[datetime | None] = mapped_column()
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    fired_at: Mapped[datetime | None] = mapped_column()
    note: Mapped[str | None] = mapped_column(String(200))  # why it was cancelled or skipped
    dedupe_key: Mapped[str] = mapped_column(String(100), unique=True)


class Outbox(Base):
    """A notice to one person, staged in the transaction that caused it; delivered by the dispatcher."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    recipient_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))  # why this person gets it
    template: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column()
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column()
    dedupe_key: Mapped[str] = mapped_column(String(150), unique=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64))  # the dispatcher holding it
    lease_until: Mapped[datetime | None] = mapped_column()
    channel: Mapped[str | None] = mapped_column(String(32))  # the channel that delivered it
    sent_at: Mapped[datetime | None] = mapped_column()
    provider_id: Mapped[str | None] = mapped_column(String(100))  # the provider's message id
    error: Mapped[str | None] = mapped_column(Text)  # the last failure
    channel_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # on the current channel
    exhausted: Mapped[list[str] | None] = mapped_column(Json, default=list)  # channels that failed for good
    digest_key: Mapped[str | None] = mapped_column(String(150))  # delivered folded into this digest message


class Delivery(Base):
    """One attempt to deliver one message (a notice, or a digest of several) on one channel."""

    __tablename__ = "delivery"
    __table_args__ = (Index("ix_delivery_recipient", "recipient_id", "at"), Index("ix_delivery_key", "key"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(150))  # the message's idempotency key
    recipient_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(64))
    notices: Mapped[list[int]] = mapped_column(Json, default=list)
    at: Mapped[datetime] = mapped_column()
    ok: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(String(16))  # sent | retry | unknown | permanent | exhausted
    provider_id: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(Text)
    parts: Mapped[int] = mapped_column(Integer, default=1)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)


# -- periodic jobs ----------------------------------------------------------------------


class JobRun(Base):
    """One run of a period-keyed job (monthly scoring of ``2026-11``, ...): unique per job and period,
    so a job that beat sends twice, or that a catch-up sends again, does its work once."""

    __tablename__ = "job_run"
    __table_args__ = (UniqueConstraint("job", "period"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(16))  # 2026-11, 2026Q4, 2026, 2026-11-27
    status: Mapped[str] = mapped_column(String(16))  # done | failed (a running job holds its row's lock)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    due_at: Mapped[datetime] = mapped_column()
    started_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    worker: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[dict[str, Any] | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)


# -- scoring and publication ------------------------------------------------------------


class ScoringConfig(Base):
    """One version of ``config/scoring.yaml`` as it was first used; never changed afterwards,
    so a period scored years ago can be scored again with exactly the weights it had."""

    __tablename__ = "scoring_config"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_hash: Mapped[str] = mapped_column(String(64))
    source_text: Mapped[str] = mapped_column(Text)
    stored_at: Mapped[datetime] = mapped_column()


class ScoreRun(Base):
    """One computation of a period's indicators and scores. A forced or objection-driven
    recomputation adds a run and marks the earlier one not current: history is kept."""

    __tablename__ = "score_run"
    __table_args__ = (UniqueConstraint("period", "seq"), Index("ix_score_run_current", "period", "current"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    period: Mapped[str] = mapped_column(String(16))  # 2026-11 | 2026Q4 | 2026
    kind: Mapped[str] = mapped_column(String(16))  # month | quarter | year
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per period
    current: Mapped[bool] = mapped_column(Boolean)
    config_version: Mapped[int] = mapped_column(ForeignKey("scoring_config.version"))
    period_start: Mapped[datetime] = mapped_column()
    period_end: Mapped[datetime] = mapped_column()
    computed_at: Mapped[datetime] = mapped_column()
    reason: Mapped[str] = mapped_column(String(200))
    exempt: Mapped[list[int]] = mapped_column(Json, default=list)  # case ids left out (核减) by upheld objections
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the township's key figures
    org: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the org chart it was scored with (grids, villages…)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)


class ScoreIndicator(Base):
    """One indicator of one subject in one run: numerator and denominator, value NULL when the
    denominator is 0. Subjects: township, village, grid, reporter and handler (grid workers)."""

    __tablename__ = "score_indicator"
    __table_args__ = (UniqueConstraint("run_id", "subject_kind", "subject_id", "indicator"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("score_run.id"))
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(64))
    indicator: Mapped[str] = mapped_column(String(48))
    numerator: Mapped[float | None] = mapped_column(Float)
    denominator: Mapped[int | None] = mapped_column(BigInteger)
    value: Mapped[float | None] = mapped_column(Float)


class Score(Base):
    """The composite score, grade and rank of one subject (grid, worker, village) in one run."""

    __tablename__ = "score"
    __table_args__ = (UniqueConstraint("run_id", "subject_kind", "subject_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("score_run.id"))
    subject_kind: Mapped[str] = mapped_column(String(16))  # grid | worker | village
    subject_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    group_key: Mapped[str] = mapped_column(String(64))  # ranked within this group
    cases: Mapped[int] = mapped_column(Integer)  # the case count the minimum applies to
    composite: Mapped[float | None] = mapped_column(Float)
    parts: Mapped[dict[str, Any]] = mapped_column(default=dict)  # indicator -> weight, rate used
    missing: Mapped[list[str]] = mapped_column(Json, default=list)  # weighted parts with no data
    grade: Mapped[str | None] = mapped_column(String(2))
    ranked: Mapped[bool] = mapped_column(Boolean)
    rank: Mapped[int | None] = mapped_column(Integer)  # within the group
    listed: Mapped[str | None] = mapped_column(String(8))  # red | black
    previous: Mapped[float | None] = mapped_column(Float)  # composite of the previous period
    change: Mapped[float | None] = mapped_column(Float)  # against the previous period
    year_ago: Mapped[float | None] = mapped_column(Float)  # composite of the same period a year before
    change_year: Mapped[float | None] = mapped_column(Float)
    rank_change: Mapped[int | None] = mapped_column(Integer)  # positive: moved up


class Publication(Base):
    """One version of a posting (季公示 quarterly, 年总结 annual): the artefacts as published,
    with their hash. An upheld objection publishes a new version that lists the differences."""

    __tablename__ = "publication"
    __table_args__ = (UniqueConstraint("kind", "period", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # quarterly | annual
    period: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    current: Mapped[bool] = mapped_column(Boolean)
    run_id: Mapped[int] = mapped_column(ForeignKey("score_run.id"))
    published_at: Mapped[datetime] = mapped_column()
    objection_until: Mapped[datetime | None] = mapped_column()
    content_hash: Mapped[str] = mapped_column(String(64))
    html: Mapped[str] = mapped_column(Text)
    csv: Mapped[str] = mapped_column(Text)
    json: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(200))
    changes: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)  # against the previous version


class Objection(Base):
    """An objection (异议) lodged against a posting within its window, and its decision."""

    __tablename__ = "objection"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    publication_id: Mapped[int] = mapped_column(ForeignKey("publication.id"))
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(64))
    case_ids: Mapped[list[int]] = mapped_column(Json, default=list)  # the cases (household: ledger entries) disputed
    lodged_by: Mapped[str] = mapped_column(String(100))
    lodged_at: Mapped[datetime] = mapped_column()
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="lodged")  # lodged | upheld | rejected
    decided_at: Mapped[datetime | None] = mapped_column()
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decision: Mapped[str | None] = mapped_column(Text)
    republished_id: Mapped[int | None] = mapped_column(ForeignKey("publication.id"))


class ScoreExemption(Base):
    """A case left out of the indicators of the periods inside ``period`` (核减), by an upheld objection."""

    __tablename__ = "score_exemption"
    __table_args__ = (UniqueConstraint("case_id", "period"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    period: Mapped[str] = mapped_column(String(16))
    objection_id: Mapped[int | None] = mapped_column(ForeignKey("objection.id"))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column()


# -- household archive and points (户档积分) ------------------------------------------------------


class Household(Base):
    """One household file (户档): where it lives and who heads it."""

    __tablename__ = "household"
    __table_args__ = (Index("ix_household_village", "village_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # 户号, e.g. MYT-1-0012
    village_id: Mapped[str] = mapped_column(ForeignKey("place.id"))
    group_id: Mapped[str | None] = mapped_column(ForeignKey("place.id"))  # 社
    grid_id: Mapped[str | None] = mapped_column(ForeignKey("place.id"))
    head_name: Mapped[str] = mapped_column(String(50))
    address: Mapped[str | None] = mapped_column(String(200))
    members: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column()


class Resident(Base):
    """One personal file (人档). ID number and phone are kept whole and shown masked unless allowed."""

    __tablename__ = "resident"
    __table_args__ = (Index("ix_resident_household", "household_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # <household>-<n>
    household_id: Mapped[str] = mapped_column(ForeignKey("household.id"))
    name: Mapped[str] = mapped_column(String(50))
    relation: Mapped[str] = mapped_column(String(16))  # 户主, 配偶, 子女, 父母, 孙子女, 其他
    gender: Mapped[str | None] = mapped_column(String(4))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    id_number: Mapped[str | None] = mapped_column(String(18))
    phone: Mapped[str | None] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class PointsRules(Base):
    """One version of ``config/points.yaml`` as first used (like ``scoring_config``)."""

    __tablename__ = "points_rules"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_hash: Mapped[str] = mapped_column(String(64))
    source_text: Mapped[str] = mapped_column(Text)
    stored_at: Mapped[datetime] = mapped_column()


class PointsEntry(Base):
    """The points ledger: append-only. A correction is a reversing entry; a redemption is a negative
    entry and its reversal a positive one. ``key`` makes a double-submitted form record once."""

    __tablename__ = "points_entry"
    __table_args__ = (
        Index("ix_points_entry_household", "household_id", "id"),
        Index("ix_points_entry_effective", "effective_at"),
        Index("ix_points_entry_limit", "household_id", "rule", "on_date"),  # the limit checks
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    household_id: Mapped[str] = mapped_column(ForeignKey("household.id"))
    kind: Mapped[str] = mapped_column(String(12))  # award | deduct | correct | redeem | refund
    rule: Mapped[str | None] = mapped_column(String(48))
    rules_version: Mapped[int | None] = mapped_column(Integer)
    category: Mapped[str | None] = mapped_column(String(32))
    points: Mapped[int] = mapped_column(Integer)  # signed
    on_date: Mapped[str] = mapped_column(String(10))  # the day of the deed, local (YYYY-MM-DD)
    recorded_at: Mapped[datetime] = mapped_column()
    effective_at: Mapped[datetime | None] = mapped_column()  # when it counts: recorded, or approved; NULL pending
    recorder_id: Mapped[str] = mapped_column(String(64))
    evidence: Mapped[str | None] = mapped_column(Text)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("points_entry.id"), unique=True)
    redemption_id: Mapped[int | None] = mapped_column(ForeignKey("redemption.id"))
    needs_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    key: Mapped[str] = mapped_column(String(100), unique=True)


class PointsApproval(Base):
    """The second person's decision on an entry that needs one (one row per entry, never changed)."""

    __tablename__ = "points_approval"

    entry_id: Mapped[int] = mapped_column(ForeignKey("points_entry.id"), primary_key=True)
    approved: Mapped[bool] = mapped_column(Boolean)
    by_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column()
    note: Mapped[str | None] = mapped_column(Text)


class HouseholdBalance(Base):
    """The redeemable balance of a household, kept with the ledger in the same transaction: the row a
    redemption locks, so concurrent redemptions queue and never overdraw."""

    __tablename__ = "household_balance"

    household_id: Mapped[str] = mapped_column(ForeignKey("household.id"), primary_key=True)
    earned: Mapped[int] = mapped_column(Integer, default=0)  # awards, net of their corrections
    redeemed: Mapped[int] = mapped_column(Integer, default=0)
    refunded: Mapped[int] = mapped_column(Integer, default=0)  # reversed redemptions
    balance: Mapped[int] = mapped_column(Integer, default=0)  # earned − redeemed + refunded, never negative


class StoreItem(Base):
    """Goods in a village's points store (积分超市): a price in points and the stock on the shelf."""

    __tablename__ = "store_item"
    __table_args__ = (UniqueConstraint("village_id", "code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    village_id: Mapped[str] = mapped_column(ForeignKey("place.id"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(16))
    price: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Redemption(Base):
    """One visit to the points store: what was taken, for how many points; reversible once."""

    __tablename__ = "redemption"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    household_id: Mapped[str] = mapped_column(ForeignKey("household.id"))
    village_id: Mapped[str] = mapped_column(ForeignKey("place.id"))
    at: Mapped[datetime] = mapped_column()
    operator_id: Mapped[str] = mapped_column(String(64))
    total: Mapped[int] = mapped_column(Integer)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(Json)  # item id, code, name, unit, quantity, price
    key: Mapped[str] = mapped_column(String(100), unique=True)
    reversed_at: Mapped[datetime | None] = mapped_column()
    reversed_by: Mapped[str | None] = mapped_column(String(64))
    reverse_reason: Mapped[str | None] = mapped_column(Text)


class HouseholdScore(Base):
    """A household's month (or quarter, year) in a score run: its points, running total, ranks, stars."""

    __tablename__ = "household_score"
    __table_args__ = (UniqueConstraint("run_id", "household_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("score_run.id"))
    household_id: Mapped[str] = mapped_column(ForeignKey("household.id"))
    village_id: Mapped[str] = mapped_column(String(64))
    points: Mapped[int] = mapped_column(Integer)  # net points in the period (awards, deductions, corrections)
    awarded: Mapped[int] = mapped_column(Integer)
    deducted: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)  # net points up to the period's end
    rank_village: Mapped[int | None] = mapped_column(Integer)
    rank_township: Mapped[int | None] = mapped_column(Integer)
    stars: Mapped[list[str]] = mapped_column(Json, default=list)  # e.g. ["孝道之星"]
    listed: Mapped[str | None] = mapped_column(String(8))  # red | black


class PointsExemption(Base):
    """A ledger entry left out of the households' standing in the periods inside ``period`` (核减), by an
    upheld objection to a posting. The entry itself stays (the ledger is append-only)."""

    __tablename__ = "points_exemption"
    __table_args__ = (UniqueConstraint("entry_id", "period"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("points_entry.id"))
    period: Mapped[str] = mapped_column(String(16))
    objection_id: Mapped[int | None] = mapped_column(ForeignKey("objection.id"))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column()


# -- accounts and the HTTP API ---------------------------------------------------------


class Credential(Base):
    """A person's password, as an Argon2 hash (never the password)."""

    __tablename__ = "credential"

    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), primary_key=True)
    password_hash: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column()


class ApiToken(Base):
    """A bearer token: ``kind`` token (made by ``gridflow token create``, for machines and scripts) or
    session (made by a sign-in). Only the SHA-256 of the token is kept; ``prefix`` names it in listings."""

    __tablename__ = "api_token"
    __table_args__ = (Index("ix_api_token_person", "person_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    kind: Mapped[str] = mapped_column(String(16))  # token | session
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()


class SignInCode(Base):
    """A one-time code sent by SMS for signing in; only its hash is kept, it is used once."""

    __tablename__ = "sign_in_code"
    __table_args__ = (Index("ix_sign_in_code_person", "person_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column()


class AuthEvent(Base):
    """The audit of access: every sign-in, failure, code sent, token made, revoked or used."""

    __tablename__ = "auth_event"
    __table_args__ = (
        Index("ix_auth_event_subject", "subject", "at"),
        Index("ix_auth_event_address", "address", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column()
    kind: Mapped[str] = mapped_column(String(32))  # sign_in.ok | sign_in.failed | code.sent | token.used | …
    person_id: Mapped[str | None] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(64))  # the phone as typed (masked), or the token's prefix
    address: Mapped[str] = mapped_column(String(64))  # the client's address, or "cli"
    detail: Mapped[str | None] = mapped_column(String(300))


class IdempotencyRecord(Base):
    """The first answer to a POST with an ``Idempotency-Key``: a retry gets it again, nothing is redone."""

    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("principal", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    principal: Mapped[str] = mapped_column(String(80))  # person:<id> or client:<id>
    key: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(300))
    body_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    headers: Mapped[dict[str, Any]] = mapped_column()
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column()


class ApiClient(Base):
    """A machine client of the Open311 door (the county's 12345 or 综治 platform): its ``api_key`` (hashed)
    and the person in whose name its requests are reported."""

    __tablename__ = "api_client"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column()


class WebhookSubscription(Base):
    """A subscriber's URL and the events it wants; deliveries go through the outbox, signed with ``secret``
    (Standard Webhooks, ``whsec_…``)."""

    __tablename__ = "webhook_subscription"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(100))
    events: Mapped[list[str]] = mapped_column(Json, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column()
