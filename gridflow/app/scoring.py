"""Use cases: monthly scores (月评比), postings (季公示 / 年总结) and objections (异议).

Each takes plain values (period keys, ids, texts, aware datetimes) and returns plain values: the dicts that
``gridflow score … --json`` and ``gridflow publish … --json`` print, or frozen dataclasses that hold such a
dict with what a table shows beside it. Times in the dicts are ISO strings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import jobs as engine_jobs
from engine.errors import InputError, NotFound
from engine.jobs import Period
from engine.store.models import JobRun, Objection, Publication, ScoreRun
from engine.text import MAX_ID, clean_text, optional_text, whole_number
from gridflow import present
from gridflow.app.base import Base, not_after_now
from gridflow.lazy import lazy_module

if TYPE_CHECKING:
    from engine.scoring.config import ScoringConfig

# Loaded by the use cases that need them, not by every command that builds the application.
demo_repo = lazy_module("engine.store.demo_repo")
periodic = lazy_module("engine.periodic")
posting = lazy_module("engine.publication.posting")
runs = lazy_module("engine.scoring.runs")

SCORE_BY = ("grid", "worker", "village", "township", "reporter", "handler")  # what `score show --by` takes
RANKED = ("grid", "worker", "village")  # the subjects with a composite score, a grade and a rank
POSTING_KINDS = {"quarterly": "quarter", "annual": "year"}  # a posting's kind → the kind of its period
JOB_OF_KIND = {"month": "monthly_scoring", "quarter": "quarterly_publication", "year": "annual_summary"}
SCORE_FIELDS = (
    "subject_kind",
    "subject_id",
    "name",
    "group_key",
    "cases",
    "composite",
    "grade",
    "ranked",
    "rank",
    "listed",
    "previous",
    "change",
    "year_ago",
    "change_year",
    "rank_change",
    "missing",
    "parts",
)

Swept = Callable[[int], None]  # told how many due SLA timers were fired before scoring or publishing


@dataclass(frozen=True)
class ScoreSheet:
    """One score run: ``data`` is what ``score run|show --json`` prints; beside it what a table shows."""

    data: dict[str, Any]
    duration_ms: int
    note: str | None = None  # the demo-data warning, when demo cases are behind the figures


@dataclass(frozen=True)
class PostingView:
    """One posting version: ``data`` is what ``publish show --json`` prints (the version, its document, its
    objections); beside it where its files are, its public link and its artefacts' texts."""

    data: dict[str, Any]
    file: str  # its HTML under the publish folder
    link: str  # its public address; empty without ``public_url``
    texts: dict[str, str] = field(default_factory=dict)  # html, csv (with its BOM), json
    note: str | None = None  # the demo-data warning


@dataclass(frozen=True)
class Posted:
    """A posting published (``fresh``), or found published already; the files written for it."""

    posting: PostingView
    fresh: bool
    written: tuple[str, ...] = ()
    notices: int = 0  # staged for the villages (an upheld objection's new version)


MAX_NAME = 100  # who objects or decides: objection.lodged_by, objection.decided_by varchar(100)
MAX_OBJECTION = 2000  # an objection's reason, a decision's note (the API's bound)
MAX_REASON = 200  # a scoring run's reason: score_run.reason varchar(200)


def check_score_by(by: str) -> str:
    """``by`` if scores can be shown by it; else the InputError that names the choices."""
    if by not in SCORE_BY:
        raise InputError(f"unknown --by {by!r}; one of {', '.join(SCORE_BY)}")
    return by


def posting_period(kind: str, period: str) -> Period:
    """The period of a posting: ``quarterly`` and ``2026Q4``, or ``annual`` and ``2026``."""
    if kind not in POSTING_KINDS:
        raise InputError(f"unknown posting kind {kind!r}; one of {', '.join(POSTING_KINDS)}")
    return engine_jobs.parse_period(POSTING_KINDS[kind], period)  # type: ignore[arg-type]


class ScoringUseCases(Base):
    """Monthly scores, postings and objections."""

    # -- scores --------------------------------------------------------------------------------

    def score_run(
        self,
        period: str,
        *,
        at: datetime | None = None,
        force: bool = False,
        rules_version: int | None = None,
        reason: str | None = None,
        on_swept: Swept | None = None,
    ) -> ScoreSheet:
        """Score a period (what the monthly job does); one scored already is kept unless ``force``."""
        reason = optional_text(reason, "reason", MAX_REASON)
        now = self.clock()
        when = now if at is None else not_after_now(at, now, self.tz)
        target = runs.period_from_key(period)
        if rules_version is not None and not force:
            raise InputError("--rules-version recomputes a scored period: add --force")
        self._sweep_first(when, on_swept)
        with self.transaction() as session:
            run, fresh = self._score(session, target, when, force, rules_version, reason)
            if fresh:
                self._record_job(session, target, when, periodic.run_result(run), forced=force)
            return self._sheet(session, run, {"fresh": fresh})

    def score_show(self, period: str, *, run: int | None = None, by: str | None = None) -> ScoreSheet:
        """A period's current run (or run #``run``): scores and indicators of ``by``, or of every subject."""
        if by is not None:
            check_score_by(by)
        key = runs.period_from_key(period).key
        with self.transaction(write=False) as session:
            return self._sheet(session, _run_of(session, key, run), by=by)

    def score_weights(self, by: str) -> tuple[str, ...]:
        """The indicators the current rules weigh for ``by`` (grid, worker, village); none for the others."""
        return tuple(self.scoring_rules().subjects[by].weights) if by in RANKED else ()

    def score_history(self, period: str) -> list[dict[str, Any]]:
        """Every run of a period: the current one and the earlier ones it replaced."""
        with self.transaction(write=False) as session:
            key = runs.period_from_key(period).key
            return [
                {
                    "run": r.seq,
                    "current": r.current,
                    "rules_version": r.config_version,
                    "computed_at": present.iso(r.computed_at),
                    "reason": r.reason,
                    "exempt_cases": len(r.exempt),
                    "ms": r.duration_ms,
                    "on_time_close_rate": (r.summary.get("on_time_close_rate") or {}).get("value"),
                }
                for r in runs.runs_of(session, key)
            ]

    def _sweep_first(self, at: datetime, on_swept: Swept | None) -> None:
        """Fire the timers due by ``at`` first (the runtime may not be running), so every breach is counted."""
        fired = len(self.sweep(at).fired)
        if fired and on_swept is not None:
            on_swept(fired)

    def _score(
        self, session: Session, target: Period, at: datetime, force: bool, version: int | None, reason: str | None
    ) -> tuple[ScoreRun, bool]:
        existing = runs.current_run(session, target.key)
        if existing is not None and not force:
            return existing, False
        config: ScoringConfig = runs.config_for(session, version) if version is not None else self.scoring_rules()
        if reason is None:
            reason = "forced by `gridflow score run --force`" if existing is not None else "`gridflow score run`"
        return runs.score_period(session, target, at, config, self.tz, reason), True

    def _record_job(self, session: Session, period: Period, at: datetime, result: dict, forced: bool) -> None:
        """A month scored by hand counts as the monthly job's run; a forced run updates that record."""
        if period.kind != "month":
            return
        spec = engine_jobs.JOBS["monthly_scoring"]
        outcome = engine_jobs.run_period(session, spec, period, at, self.tz, lambda s, p, a: result, self.worker_id)
        if not outcome.ran and forced:
            row = session.scalar(select(JobRun).where(JobRun.job == spec.name, JobRun.period == period.key))
            row.result, row.attempts, row.finished_at = result, row.attempts + 1, at

    def _sheet(
        self, session: Session, run: ScoreRun, head: dict[str, Any] | None = None, by: str | None = None
    ) -> ScoreSheet:
        return ScoreSheet(
            {**(head or {}), **_run_dict(session, run, by)},
            run.duration_ms,
            _demo_note(session, run.period_start, run.period_end),
        )

    # -- postings ------------------------------------------------------------------------------

    def publish(self, kind: str, period: str, *, at: datetime | None = None, on_swept: Swept | None = None) -> Posted:
        """Publish the posting of a quarter or a year (what the quarterly and annual jobs do), once."""
        target = posting_period(kind, period)
        now = self.clock()
        when = now if at is None else not_after_now(at, now, self.tz)
        self._sweep_first(when, on_swept)
        spec = engine_jobs.JOBS[JOB_OF_KIND[target.kind]]
        body = periodic.bodies(self.tz, self.calendars, scoring=self.scoring_rules, base_url=self.settings.public_url)[
            spec.name
        ]
        with self.transaction() as session:
            outcome = engine_jobs.run_period(session, spec, target, when, self.tz, body, self.worker_id)
        with self.transaction(write=False) as session:
            pub = posting.current(session, kind, target.key)
            written = self.export_postings(session)
            if pub is None:  # the job ran before this posting existed? never: the body publishes
                raise NotFound(f"no {kind} posting of {target.key}")
            return Posted(self._view(session, pub), outcome.ran, tuple(str(p) for p in written))

    def show_posting(self, kind: str, period: str, version: int | None = None) -> PostingView:
        """One posting version (default the current): its figures, lists, objections and artefacts."""
        target = posting_period(kind, period)
        with self.transaction(write=False) as session:
            return self._view(session, _version(session, kind, target.key, version), note=True)

    def list_postings(self) -> list[dict[str, Any]]:
        """Every version of every posting, newest period first."""
        with self.transaction(write=False) as session:
            return [_posting_dict(p) for p in posting.versions(session)]

    def lodge_objection(
        self,
        kind: str,
        period: str,
        subject: str,
        by: str,
        reason: str,
        *,
        cases: Sequence[str] = (),
        entries: Sequence[int] = (),
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Record an objection (异议) to a posting, within its window (公示期)."""
        by = clean_text(by, "by", MAX_NAME)
        reason = clean_text(reason, "reason", MAX_OBJECTION, multiline=True)
        entries = [
            whole_number(e, "entry", 1, MAX_ID, "; `gridflow points list --household H` shows the entries")
            for e in entries
        ]
        target = posting_period(kind, period)
        now = self.clock()
        when = now if at is None else not_after_now(at, now, self.tz)
        with self.transaction() as session:
            objection = posting.lodge(
                session, kind, target.key, subject, list(cases), by, reason, when, self.tz, list(entries)
            )
            return _objection_dict(objection)

    def decide_objection(
        self, objection_id: int, *, uphold: bool, by: str, note: str, at: datetime | None = None
    ) -> Posted | None:
        """Reject an objection (None), or uphold it: leave its cases out (核减), recompute and republish."""
        objection_id = whole_number(objection_id, "objection", 1, MAX_ID, "; `gridflow publish show` lists them")
        by = clean_text(by, "by", MAX_NAME)
        note = clean_text(note, "note", MAX_OBJECTION, multiline=True)
        now = self.clock()
        when = now if at is None else not_after_now(at, now, self.tz)
        with self.transaction() as session:
            published = posting.decide(session, objection_id, uphold, by, note, when, self.tz, self.settings.public_url)
            if published is None:
                return None
            view, notices = self._view(session, published.publication), published.notices
        with self.transaction(write=False) as session:
            written = self.export_postings(session)
        return Posted(view, True, tuple(str(p) for p in written), notices)

    def _view(self, session: Session, pub: Publication, note: bool = False) -> PostingView:
        data = {
            **_posting_dict(pub),
            "document": posting.document_of(pub),
            "objections": [_objection_dict(o) for o in posting.objections(session, pub.kind, pub.period)],
        }
        run = session.get(ScoreRun, pub.run_id) if note else None
        return PostingView(
            data,
            str(self.settings.postings_path / pub.kind / pub.period / f"v{pub.version}.html"),
            posting.link(self.settings.public_url, pub),
            {"html": pub.html, "csv": pub.csv, "json": pub.json},
            _demo_note(session, run.period_start, run.period_end) if run is not None else None,
        )


# -- plain values ----------------------------------------------------------------------------------


def _run_of(session: Session, period: str, seq: int | None) -> ScoreRun:
    if seq is None:
        run = runs.current_run(session, period)
    else:
        run = next((r for r in runs.runs_of(session, period) if r.seq == seq), None)
    if run is None:
        raise NotFound(
            f"{period} has not been scored{'' if seq is None else f' (no run #{seq})'}; "
            f"`gridflow score run --period {period}` scores it"
        )
    return run


def _run_dict(session: Session, run: ScoreRun, by: str | None = None) -> dict[str, Any]:
    """A score run as JSON: its township figures, the scores of ``by`` (default grid, worker and village)
    and the indicators of ``by`` (a worker's: as reporter and as handler; default every subject's)."""
    kinds = [by] if by else list(RANKED)
    subjects = [
        {k: getattr(row, k) for k in SCORE_FIELDS} for row in runs.scores(session, run) if row.subject_kind in kinds
    ]
    indicators = [
        {
            "subject_kind": k,
            "subject_id": s,
            "indicators": {
                n: {"numerator": v.numerator, "denominator": v.denominator, "value": v.value} for n, v in named.items()
            },
        }
        for (k, s), named in sorted(runs.indicator_table(session, run).items())
        if by is None or k == by or (by == "worker" and k in ("reporter", "handler"))
    ]
    return {
        "period": run.period,
        "run": run.seq,
        "current": run.current,
        "rules_version": run.config_version,
        "computed_at": present.iso(run.computed_at),
        "reason": run.reason,
        "exempt_cases": run.exempt,
        "township": run.summary,
        "scores": subjects,
        "indicators": indicators,
    }


def _version(session: Session, kind: str, period: str, version: int | None) -> Publication:
    if version is None:
        pub = posting.current(session, kind, period)
    else:
        pub = next((p for p in posting.versions(session, kind, period) if p.version == version), None)
    if pub is None:
        what = "published" if version is None else f"published in version {version}"
        flag = f"--quarter {period}" if kind == "quarterly" else f"--year {period}"
        raise NotFound(f"the {kind} posting of {period} was not {what}; `gridflow publish run {flag}`")
    return pub


def _posting_dict(pub: Publication) -> dict[str, Any]:
    return {
        "kind": pub.kind,
        "period": pub.period,
        "version": pub.version,
        "current": pub.current,
        "published_at": present.iso(pub.published_at),
        "objection_until": present.iso(pub.objection_until),
        "content_hash": pub.content_hash,
        "reason": pub.reason,
        "changes": pub.changes or [],
    }


def _objection_dict(o: Objection) -> dict[str, Any]:
    return {
        "id": o.id,
        "subject": f"{o.subject_kind}:{o.subject_id}",
        "cases": o.case_ids,
        "by": o.lodged_by,
        "lodged_at": present.iso(o.lodged_at),
        "reason": o.reason,
        "status": o.status,
        "decided_at": present.iso(o.decided_at),
        "decided_by": o.decided_by,
        "decision": o.decision,
    }


def _demo_note(session: Session, start: datetime, end: datetime) -> str | None:
    """The line under figures that come from demo data (``gridflow.demo.note``, which imports the application)."""
    count = demo_repo.cases_in(session, start, end)
    if not count:
        return None
    return (
        f"{demo_repo.LABEL} demo data: {count} demo case(s) behind these figures (`gridflow demo --status`); "
        "not real results"
    )
