"""Score a period and keep every computation: a run per (period, seq), one of them current.

:func:`score_period` computes the indicators in SQL (:mod:`engine.scoring.facts`), the
composites and ranks (:mod:`engine.scoring.composite`), and stores them under a new run in the
caller's transaction; an earlier run of the same period stays, marked not current. The
scoring rules are stored by version (:func:`store_config`), so a recomputation can use exactly
the version an earlier run used (:func:`config_for`). Pure: time comes in as ``at``.
"""

from __future__ import annotations

import time as _time
from dataclasses import asdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from engine.errors import ConfigError, NotFound, NotYet, PeriodNotOver
from engine.jobs import Period, bounds, parse_period, period_of, previous
from engine.points import evaluation
from engine.points.rules import PointsRules
from engine.scoring import facts
from engine.scoring.catalogue import Value
from engine.scoring.composite import WORKER_ROLES, Who, score_rows
from engine.scoring.config import ScoringConfig, parse_text
from engine.store.models import (
    Household,
    HouseholdScore,
    Person,
    Place,
    PointsExemption,
    RoleAssignment,
    Score,
    ScoreExemption,
    ScoreIndicator,
    ScoreRun,
    WorkflowDefinition,
)
from engine.store.models import (
    ScoringConfig as ConfigRow,
)
from engine.timeutil import require_aware


class NotSwept(NotYet):
    """Timers due before the period's end have not fired: scoring would miss their breaches."""


KIND_OF_KEY = {"month": "month", "quarter": "quarter", "year": "year"}


def period_from_key(key: str) -> Period:
    """``2026-11``, ``2026Q4`` or ``2026``."""
    if "Q" in key.upper():
        return parse_period("quarter", key)
    if "-" in key:
        return parse_period("month", key)
    return parse_period("year", key)


# -- the rules, by version ------------------------------------------------------------------


def store_config(session: Session, config: ScoringConfig, at: datetime) -> None:
    """Keep this version's text; refuse a changed text under a version already used."""
    row = session.get(ConfigRow, config.version)
    if row is None:
        session.add(
            ConfigRow(
                version=config.version,
                source_hash=config.source_hash,
                source_text=config.source_text,
                stored_at=require_aware(at),
            )
        )
        session.flush()
        return
    if row.source_hash != config.source_hash:
        raise ConfigError(
            f"{config.source_file or 'the scoring rules'}: version {config.version} was already used with different "
            f"rules (stored {row.stored_at:%Y-%m-%d}); bump version: to {latest_version(session) + 1} so that scores "
            "keep saying which rules they used"
        )


def latest_version(session: Session) -> int:
    return session.scalar(select(func.max(ConfigRow.version))) or 0


def config_for(session: Session, version: int) -> ScoringConfig:
    row = session.get(ConfigRow, version)
    if row is None:
        known = ", ".join(str(v) for v in session.scalars(select(ConfigRow.version).order_by(ConfigRow.version)))
        raise NotFound(f"no scoring rules of version {version} were ever used here (known: {known or 'none'})")
    return parse_text(row.source_text, f"<scoring rules v{version}>")


# -- one run ---------------------------------------------------------------------------------


def current_run(session: Session, period: str) -> ScoreRun | None:
    return session.scalar(select(ScoreRun).where(ScoreRun.period == period, ScoreRun.current.is_(True)))


def runs_of(session: Session, period: str) -> list[ScoreRun]:
    return list(session.scalars(select(ScoreRun).where(ScoreRun.period == period).order_by(ScoreRun.seq)))


def exempt_cases(session: Session, period: Period) -> list[int]:
    """Cases left out (核减) of this period by upheld objections to a posting that covers it."""
    out = []
    for case_id, key in session.execute(select(ScoreExemption.case_id, ScoreExemption.period)):
        other = period_from_key(key)
        if other.start < period.end and period.start < other.end:
            out.append(case_id)
    return sorted(set(out))


def require_over(period: Period, at: datetime, tz: ZoneInfo, then: str) -> None:
    """Refuse a ``period`` that has not ended by ``at``; ``then`` says what to do instead."""
    end = bounds(period, tz)[1]
    if end > require_aware(at):
        raise PeriodNotOver(
            f"{period.kind} {period} is not over yet: it ends {end.astimezone(tz):%Y-%m-%d %H:%M} ({tz.key}), "
            f"and the time is {at.astimezone(tz):%Y-%m-%d %H:%M}; {then}"
        )


def score_period(
    session: Session,
    period: Period,
    at: datetime,
    config: ScoringConfig,
    tz: ZoneInfo,
    reason: str,
    points_rules: PointsRules | None = None,
) -> ScoreRun:
    """Compute and store a new run of ``period``; the earlier current run (if any) stays as history.
    With households in the archive, the run also holds their period (:mod:`engine.points.evaluation`)
    under ``points_rules`` (default: the newest version the ledger used)."""
    at = require_aware(at)
    started = _time.perf_counter()
    require_over(period, at, tz, "score it once it has ended")
    start, end = bounds(period, tz)
    conn = session.connection()
    pending = facts.unswept(conn, end)
    if pending:
        raise NotSwept(
            f"{pending} SLA timer(s) due before the end of {period} have not fired yet, so breaches would be "
            "missing; let the sweep catch up (is a worker running? `gridflow sla due`) and score again"
        )
    check_names(session, config)
    store_config(session, config, at)
    exempt = exempt_cases(session, period)
    first = session.scalar(select(ScoreRun).where(ScoreRun.period == period.key).order_by(ScoreRun.seq).limit(1))
    who = who_from_json(first.org) if first is not None and first.org else org_view(session)
    indicators = facts.compute(conn, config, start, end, exempt, who.grid_village)
    rows = score_rows(
        config, indicators, who, _composites(session, previous(period)), _composites(session, year_before(period))
    )
    run = _new_run(session, period, at, config, start, end, reason, exempt)
    run.org = who_to_json(who)
    _store(session, run, indicators, rows)
    run.summary = summary(indicators.get(("township", "*"), {}))
    households = _households(session, run, start, end, points_rules)
    if households is not None:
        run.summary = {**run.summary, "participation_rate": households}
    run.duration_ms = int((_time.perf_counter() - started) * 1000)
    session.flush()
    return run


def _households(
    session: Session, run: ScoreRun, start: datetime, end: datetime, rules: PointsRules | None
) -> dict[str, Any] | None:
    """The households' period into ``household_score``; participation per village as indicators."""
    if not session.scalar(select(func.count()).select_from(Household)):
        return None
    rules = rules or evaluation.latest_rules(session)
    period = period_from_key(run.period)
    exempt = tuple(
        entry
        for entry, key in session.execute(select(PointsExemption.entry_id, PointsExemption.period))
        if period_from_key(key).start < period.end and period.start < period_from_key(key).end
    )
    rows, participation = evaluation.compute(session, start, end, rules, exempt)
    if rows:
        session.execute(
            insert(HouseholdScore.__table__),
            [{"run_id": run.id, **{k: v for k, v in vars(r).items()}} for r in rows],
        )
    session.execute(
        insert(ScoreIndicator.__table__),
        [
            {
                "run_id": run.id,
                "subject_kind": "township" if key == "*" else "village",
                "subject_id": key,
                "indicator": "participation_rate",
                "numerator": n,
                "denominator": d,
                "value": n / d if d else None,
            }
            for key, (n, d) in sorted(participation.items())
        ],
    )
    run.org = {**(run.org or {}), "points_rules": rules.version if rules else None}
    n, d = participation.get("*", (0, 0))
    return {"numerator": n, "denominator": d, "value": n / d if d else None}


def household_scores(session: Session, run: ScoreRun) -> list[HouseholdScore]:
    stmt = select(HouseholdScore).where(HouseholdScore.run_id == run.id)
    return sorted(session.scalars(stmt), key=lambda h: (h.village_id, h.rank_village or 0, h.household_id))


def year_before(period: Period) -> Period:
    """The same period a year earlier (periods start on day 1, so there is no 29 February to trip on)."""
    return period_of(period.kind, period.start.replace(year=period.start.year - 1))


def who_to_json(who: Who) -> dict[str, Any]:
    return {
        "names": dict(who.names),
        "grid_kind": dict(who.grid_kind),
        "grid_village": dict(who.grid_village),
        "villages": list(who.villages),
        "workers": list(who.workers),
    }


def who_from_json(data: dict[str, Any]) -> Who:
    """The org chart a period was first scored with: a recomputation uses it, not today's chart (a grid
    moved to another village, a worker who left, a renamed place do not rewrite an old period)."""
    return Who(
        names=data["names"],
        grid_kind=data["grid_kind"],
        grid_village=data["grid_village"],
        villages=tuple(data["villages"]),
        workers=tuple(data["workers"]),
    )


def check_names(session: Session, config: ScoringConfig) -> None:
    """The rules' workflow names (triggers, states, satisfaction answers) must exist in a published
    workflow: a typo would silently turn a rate into 0/0."""
    triggers: set[str] = set()
    states: set[str] = set()
    answers: set[str] = set()
    for compiled in session.scalars(select(WorkflowDefinition.compiled)):
        triggers |= set((compiled or {}).get("triggers", {}))
        states |= set((compiled or {}).get("states", {}))
        field = ((compiled or {}).get("fields") or {}).get("satisfaction") or {}
        answers |= set(field.get("values") or {})
    if not triggers:
        return  # nothing published yet: nothing to score either
    problems = []
    for key, names in config.workflow.items():
        known = states if key.endswith(("_states", "_clock", "_time")) else triggers
        for name in [names] if isinstance(names, str) else names:
            if name not in known:
                problems.append(
                    f"workflow.{key}: {name!r} is not a {'state' if known is states else 'trigger'} of "
                    f"any published workflow (known: {', '.join(sorted(known))})"
                )
    for name in config.satisfied:
        if answers and name not in answers:
            problems.append(
                f"satisfied: {name!r} is not an answer of the satisfaction field ({', '.join(sorted(answers))})"
            )
    if problems:
        raise ConfigError(f"{config.source_file or 'scoring rules'}: " + "; ".join(problems))


def summary(values: dict[str, Value]) -> dict[str, Any]:
    return {name: asdict(v) for name, v in values.items()}


def org_view(session: Session) -> Who:
    places = list(session.scalars(select(Place)))
    people = {p.id: p.name for p in session.scalars(select(Person))}
    workers = sorted(
        set(session.scalars(select(RoleAssignment.person_id).where(RoleAssignment.role.in_(WORKER_ROLES))))
    )
    grids = [p for p in places if p.kind == "grid" and p.active]
    return Who(
        names={**{p.id: p.name for p in places}, **people},
        grid_kind={g.id: g.grid_kind or "residential" for g in sorted(grids, key=lambda g: g.id)},
        grid_village={g.id: g.village_id for g in grids},
        villages=tuple(sorted(p.id for p in places if p.kind == "village" and p.active)),
        workers=tuple(workers),
    )


def _composites(session: Session, period: Period) -> dict[tuple[str, str], tuple[float | None, int | None]]:
    run = current_run(session, period.key)
    if run is None:
        return {}
    rows = session.execute(
        select(Score.subject_kind, Score.subject_id, Score.composite, Score.rank).where(Score.run_id == run.id)
    )
    return {(k, s): (c, r) for k, s, c, r in rows}


def _new_run(
    session: Session,
    period: Period,
    at: datetime,
    config: ScoringConfig,
    start: datetime,
    end: datetime,
    reason: str,
    exempt: list[int],
) -> ScoreRun:
    seq = (session.scalar(select(func.max(ScoreRun.seq)).where(ScoreRun.period == period.key)) or 0) + 1
    session.execute(update(ScoreRun).where(ScoreRun.period == period.key).values(current=False))
    run = ScoreRun(
        period=period.key,
        kind=period.kind,
        seq=seq,
        current=True,
        config_version=config.version,
        period_start=start,
        period_end=end,
        computed_at=at,
        reason=reason[:200],
        exempt=exempt,
        summary={},
        duration_ms=0,
    )
    session.add(run)
    session.flush()
    return run


def _store(session: Session, run: ScoreRun, indicators: dict, rows: list) -> None:
    values = [
        {
            "run_id": run.id,
            "subject_kind": kind,
            "subject_id": subject,
            "indicator": name,
            "numerator": v.numerator,
            "denominator": v.denominator,
            "value": v.value,
        }
        for (kind, subject), named in indicators.items()
        for name, v in named.items()
    ]
    if values:
        session.execute(insert(ScoreIndicator.__table__), values)
    scores = [
        {
            "run_id": run.id,
            **{k: v for k, v in vars(row).items() if k != "extra"},
        }
        for row in rows
    ]
    if scores:
        session.execute(insert(Score.__table__), scores)


# -- reading back ------------------------------------------------------------------------------


def scores(session: Session, run: ScoreRun, kind: str | None = None) -> list[Score]:
    stmt = select(Score).where(Score.run_id == run.id)
    if kind:
        stmt = stmt.where(Score.subject_kind == kind)
    rows = list(session.scalars(stmt))
    rows.sort(key=lambda s: (s.subject_kind, s.group_key, s.rank is None, s.rank or 0, s.subject_id))
    return rows


def indicator_table(session: Session, run: ScoreRun) -> dict[tuple[str, str], dict[str, Value]]:
    out: dict[tuple[str, str], dict[str, Value]] = {}
    for row in session.scalars(select(ScoreIndicator).where(ScoreIndicator.run_id == run.id)):
        out.setdefault((row.subject_kind, row.subject_id), {})[row.indicator] = Value(
            row.numerator, row.denominator, row.value
        )
    return out
