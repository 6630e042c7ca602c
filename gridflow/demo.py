"""A demo township worth opening (演示数据): the sample township's last full quarter, loaded into an
empty gridflow through the real engine, so that every listing has something true to show.

:func:`load` makes the quarter's plan (:mod:`gridflow.demo_plan`: several hundred cases, seeded)
and plays it on a virtual clock, in time order: each step is :meth:`Gridflow.fire` with the step's
past time (a backfilled step: the history says it was typed in now), a report is :meth:`Gridflow.report`
with the demo's channel; before each step,
:meth:`Gridflow.sweep` fires the SLA timers due by then, each at its due time (so reminders, breaches
and escalations fire as they would have); on the first of each month at 01:00 the monthly scoring
job runs, on the first day after the quarter at 03:00 the quarterly posting job, both through
:func:`engine.jobs.run_period` (``gridflow jobs list`` shows them like any other); at the end the
sweep catches up to ``now``.

Demo data is marked, in one way each, and said wherever it shows:

- a demo case has ``source_channel = 'demo'`` and a title starting with 【演示】
  (:mod:`engine.store.demo_repo`); ``case list``, ``case show`` and ``sla due`` show the title;
- its notices (and those of a posting of demo figures) are never sent: the dispatcher suppresses
  them (:func:`notifications.dispatch.suppress_demo`), ``notices list`` shows them as 演示;
- a posting whose figures include demo cases carries 演示数据 in its title, a banner and a
  watermark on every page, its CSV's first line and its JSON (:mod:`engine.publication.posting`);
  ``score show`` and ``publish show`` print a 演示数据 note (:func:`note`).

Loading is idempotent (a database that holds the demo is left as it is), refuses a quarter that
has real cases or was scored, published or run by the period jobs, and is off where the setting
``demo`` is false (``GRIDFLOW_DEMO=false``, ``demo: false`` in ``config/gridflow.yaml``).
:func:`clear` removes every demo row and the posting files, and nothing else.
Time is passed in: ``quarter`` and ``now`` (default: the last full quarter before the clock's now).
"""

from __future__ import annotations

import time as _time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from engine import jobs as engine_jobs
from engine import sla
from engine.calendar import WorkCalendar
from engine.definitions.model import WorkflowDef
from engine.errors import CommandRejected, ConcurrentUpdate, ConfigError, ContractError, PeriodNotOver
from engine.jobs import Body, Period, bounds, period_of, previous
from engine.periodic import bodies
from engine.publication import posting
from engine.scope import OrgSnapshot, snapshot
from engine.scoring import runs
from engine.store import case_repo, demo_repo, workflow_repo
from engine.store.demo_repo import DEMO_CHANNEL, LABEL, Holdings
from engine.store.models import ScoreRun
from gridflow.app.base import not_after_now
from gridflow.demo_plan import DEFAULT_SIZE, SEED, CasePlan, Limits, Plan, Step, make_plan, township
from notifications import dispatch

if TYPE_CHECKING:  # the application calls this module (gridflow.app.runtime): it is not imported back
    from gridflow.app import Gridflow

WORKER = "gridflow demo"  # who ran the demo's period jobs (job_run.worker)
SETTING = "`demo` (GRIDFLOW_DEMO, or demo: in config/gridflow.yaml)"
MONTHLY, QUARTERLY = "monthly_scoring", "quarterly_publication"
TRIGGERS = {
    "classify",
    "assign",
    "accept",
    "return",
    "suspend",
    "resume",
    "request_extension",
    "approve_extension",
    "reject_extension",
    "resolve",
    "rework",
    "verify",
    "void",
}
Progress = Callable[[int, int], None]  # (done, total); (0, 0) when loading begins, before the plan is made


# -- periods ----------------------------------------------------------------------------------------


def last_quarter(now: datetime, tz: ZoneInfo) -> Period:
    """The last full quarter whose posting was due by ``now`` (on 2026-12-02: 2026Q3)."""
    quarter = previous(period_of("quarter", now.astimezone(tz).date()))
    if engine_jobs.JOBS[QUARTERLY].due_at(quarter, tz) > now:
        quarter = previous(quarter)
    return quarter


def demo_periods(quarter: Period) -> tuple[list[str], list[tuple[str, str]]]:
    """The demo's periods (the quarter and its months) and its period jobs' keys."""
    months = posting.months_of(quarter)
    keys = [m.key for m in months] + [quarter.key]
    return keys, [(MONTHLY, m.key) for m in months] + [(QUARTERLY, quarter.key)]


def _check_quarter(quarter: Period, now: datetime, tz: ZoneInfo) -> None:
    due = engine_jobs.JOBS[QUARTERLY].due_at(quarter, tz)
    if due > now:
        raise PeriodNotOver(
            f"{quarter.key} is not over (its posting is due {due.astimezone(tz):%Y-%m-%d %H:%M}): the demo loads "
            f"a past quarter; leave --quarter out for the last full one ({last_quarter(now, tz).key})"
        )


# -- status -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    quarter: Period | None  # the quarter the demo cases were reported in
    holdings: Holdings

    @property
    def loaded(self) -> bool:
        return bool(self.holdings.cases)

    @property
    def complete(self) -> bool:
        """Loaded to the end: the quarter's posting is there."""
        return self.quarter is not None and any(
            kind == "quarterly" and period == self.quarter.key for kind, period, _ in self.holdings.postings
        )


def status(gf: Gridflow) -> Status:
    """What demo data this database holds."""
    with gf.transaction(write=False) as session:
        return _status(session, gf.tz)


def _status(session: Session, tz: ZoneInfo) -> Status:
    first = demo_repo.first_reported(session)
    if first is None:
        return Status(None, Holdings())
    quarter = period_of("quarter", first.astimezone(tz).date())
    periods, jobs = demo_periods(quarter)
    return Status(quarter, demo_repo.holdings(session, periods, jobs))


def cases_here(gf: Gridflow) -> int:
    """Every case in the database, demo or not."""
    with gf.transaction(write=False) as session:
        return demo_repo.all_cases(session)


def note(session: Session, start: datetime, end: datetime) -> str | None:
    """The line ``score show`` and ``publish show`` print under figures that come from demo data."""
    count = demo_repo.cases_in(session, start, end)
    if not count:
        return None
    return f"{LABEL} demo data: {count} demo case(s) behind these figures (`gridflow demo --status`); not real results"


def posting_note(session: Session, pub: Any) -> str | None:
    """:func:`note` for a posting: the figures of the score run it was published from."""
    run = session.get(ScoreRun, pub.run_id)
    return note(session, run.period_start, run.period_end) if run is not None else None


# -- load ---------------------------------------------------------------------------------------


@dataclass
class Loaded:
    status: Status  # before (nothing loaded) or after
    fresh: bool = False
    plan: Plan | None = None
    fired: Counter[str] = field(default_factory=Counter)  # sla.reminder / sla.breach / sla.escalated
    months: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # each month's township summary
    posting: tuple[str, int] | None = None  # period, version
    files: list[Path] = field(default_factory=list)
    suppressed: int = 0
    seconds: float = 0.0


def require_enabled(gf: Gridflow) -> None:
    if not gf.settings.demo:
        raise ConfigError(
            f"demo data is turned off here: the setting {SETTING} is false, as on a real installation; "
            "nothing was loaded. Try the demo on a scratch database with GRIDFLOW_DEMO=true"
        )


def load(
    gf: Gridflow,
    *,
    quarter: Period | None = None,
    now: datetime | None = None,
    size: int = DEFAULT_SIZE,
    progress: Progress | None = None,
) -> Loaded:
    """Load the demo quarter (default: the last full one before ``now``, default the clock's now)."""
    require_enabled(gf)
    started = _time.perf_counter()
    now = not_after_now(now or gf.clock(), gf.clock(), gf.tz)
    quarter = quarter or last_quarter(now, gf.tz)
    _check_quarter(quarter, now, gf.tz)
    with gf.transaction(write=False) as session:
        found = _status(session, gf.tz)
        if found.loaded:
            return Loaded(found)
        _check_free(session, quarter, gf.tz)
        definition, org = _workflow(session, gf.settings.default_workflow)
    if progress is not None:
        progress(0, 0)
    office = gf.calendars[str(definition.extras.get("calendar", sla.DEFAULT_CALENDAR))]
    plan = make_plan(township(org), limits(definition, gf.calendars, gf.tz), office, quarter, now, gf.tz, size)
    result = Loaded(found, fresh=True, plan=plan)
    _play(gf, plan, result, progress)
    with gf.transaction() as session:
        result.suppressed = len(dispatch.suppress_demo(session))
    with gf.transaction(write=False) as session:
        result.files = gf.export_postings(session)
        result.status = _status(session, gf.tz)
        result.months = [(m.key, dict(_summary(session, m.key))) for m in posting.months_of(quarter)]
    result.seconds = _time.perf_counter() - started
    return result


def _summary(session: Session, period: str) -> dict[str, Any]:
    run = runs.current_run(session, period)
    return dict(run.summary) if run is not None else {}


def _check_free(session: Session, quarter: Period, tz: ZoneInfo) -> None:
    """Refuse a quarter with real cases, or one the period jobs or anyone scored or published."""
    start, end = bounds(quarter, tz)
    real = demo_repo.cases_in(session, start, end, demo=False)
    if real:
        raise CommandRejected(
            f"this database has {real} real case(s) in {quarter.key} (reported before its end and not closed before "
            "its start); the demo loads only into a quarter without real cases, so nothing was loaded. Demo data "
            f"belongs on a scratch database; or give an earlier --quarter"
        )
    periods, _ = demo_periods(quarter)
    used = demo_repo.period_use(session, periods)
    if used:
        what = "; ".join(
            f"{label}: {', '.join(items)}"
            for label, items in (("scored", used.score_runs), ("published", used.postings), ("jobs", used.job_runs))
            if items
        )
        raise CommandRejected(f"{quarter.key} is in use here ({what}); the demo loads only into unused periods")


def labels(gf: Gridflow) -> tuple[dict[str, str], dict[str, str]]:
    """The workflow's Chinese labels of the states and of the categories, for people."""
    with gf.transaction(write=False) as session:
        workflow_id, source_hash, _ = case_repo.latest_workflow(session, gf.settings.default_workflow)
        if workflow_id is None:
            return {}, {}
        definition = workflow_repo.compiled(session, workflow_id, source_hash).definition
    category = definition.fields.get("category")
    return {n: s.label for n, s in definition.states.items()}, dict(category.values) if category else {}


def _workflow(session: Session, name: str) -> tuple[WorkflowDef, OrgSnapshot]:
    """The published workflow the demo drives (it needs the default workflow's triggers) and the org chart."""
    workflow_id, source_hash, token = case_repo.latest_workflow(session, name)
    if workflow_id is None:
        raise workflow_repo.not_found(session, name)
    definition = workflow_repo.compiled(session, workflow_id, source_hash).definition
    missing = sorted(TRIGGERS - set(definition.triggers))
    if missing:
        raise CommandRejected(
            f"the demo plays the grid_case workflow's steps; workflow {name!r} has no {', '.join(missing)}"
        )
    return definition, snapshot(session, token)


def limits(definition: WorkflowDef, calendars: dict[str, WorkCalendar], tz: ZoneInfo) -> Limits:
    """A state's time limit for a case, by the workflow's own rules (:func:`engine.sla.resolve`)."""

    def limit(state: str, category: str, priority: str, at: datetime) -> tuple[WorkCalendar, int]:
        spec = definition.states[state].sla or {"limit": "1d"}
        facts = sla.CaseFacts(0, category, priority)
        policy = sla.resolve(definition, spec, facts, calendars, at.astimezone(tz).month)
        return calendars[policy.calendar], policy.limit_s

    return limit


# -- playing the plan on a virtual clock ------------------------------------------------------------


@dataclass(frozen=True, order=True)
class _Item:
    at: datetime
    order: int  # jobs before steps at the same instant; steps by case, then by their place in it
    index: int
    job: str = ""
    period: Period | None = None


def _timeline(plan: Plan, tz: ZoneInfo) -> list[_Item]:
    items = [_Item(step.at, case.number, i) for case in plan.cases for i, step in enumerate(case.steps)]
    for month in posting.months_of(plan.quarter):
        items.append(_Item(engine_jobs.JOBS[MONTHLY].due_at(month, tz), 0, 0, MONTHLY, month))
    items.append(_Item(engine_jobs.JOBS[QUARTERLY].due_at(plan.quarter, tz), 0, 1, QUARTERLY, plan.quarter))
    return sorted(items)


def _play(gf: Gridflow, plan: Plan, result: Loaded, progress: Progress | None) -> None:
    items = _timeline(plan, gf.tz)
    by_number = {c.number: c for c in plan.cases}
    codes: dict[int, str] = {}
    job_bodies = _labelled(bodies(gf.tz, gf.calendars, scoring=gf.scoring_rules, base_url=gf.settings.public_url))
    due = _next_timer(gf)
    for done, item in enumerate(items, start=1):
        due = _catch_up(gf, item.at, due, result.fired)
        if item.job:
            due = _run_job(gf, item, job_bodies, result)
        else:
            case = by_number[item.order]
            due = _take(gf, codes, case, case.steps[item.index])
        if progress is not None:
            progress(done, len(items))
    _catch_up(gf, plan.now, due, result.fired)


def _next_timer(gf: Gridflow) -> datetime | None:
    with gf.transaction(write=False) as session:
        return demo_repo.next_timer(session)


def _catch_up(gf: Gridflow, until: datetime, due: datetime | None, fired: Counter[str]) -> datetime | None:
    """Sweep, at each due time in turn, every timer due by ``until``; the next due time after."""
    while due is not None and due <= until:
        report = gf.sweep(due)
        if not report.claimed:
            raise ConcurrentUpdate(
                f"SLA timers due at {due:%Y-%m-%d %H:%M} UTC are held by another sweeper (is `gridflow up` running?); "
                "stop it, then `gridflow demo --clear` and `gridflow demo`"
            )
        fired.update(f["event"] for f in report.fired)
        due = _next_timer(gf)
    return due


def _take(gf: Gridflow, codes: dict[int, str], case: CasePlan, step: Step) -> datetime | None:
    """One step of the plan at its past time (a backfilled step: the history says it was typed in now);
    the next timer due after it."""
    fields = dict(step.fields)
    if step.trigger == "report":  # the demo's channel marks it in the transaction that logs it (and its notices)
        done = gf.report(grid_id=case.grid, actor_id=step.actor, fields=fields, at=step.at, channel=DEMO_CHANNEL)
        codes[case.number] = done["case"]["code"]
    else:
        done = gf.fire(codes[case.number], step.trigger, actor_id=step.actor, fields=fields, at=step.at)
    if done["case"]["status"] != step.to_state:
        raise ContractError(
            f"demo case {done['case']['code']}: {step.trigger} led to {done['case']['status']}, the plan expected "
            f"{step.to_state}; has the workflow changed?"
        )
    return _next_timer(gf)


def _labelled(real: dict[str, Body]) -> dict[str, Body]:
    """The period jobs' own bodies, their results marked 演示数据 (what ``gridflow jobs list`` shows)."""

    def label(body: Body) -> Body:
        return lambda session, period, at: {**body(session, period, at), "demo": LABEL}

    return {name: label(body) for name, body in real.items()}


def _run_job(gf: Gridflow, item: _Item, job_bodies: dict[str, Body], result: Loaded) -> datetime | None:
    """A period job at its due time, as beat would have run it."""
    assert item.period is not None
    spec = engine_jobs.JOBS[item.job]
    with gf.transaction() as session:
        engine_jobs.run_period(session, spec, item.period, item.at, gf.tz, job_bodies[item.job], WORKER)
        if item.job == QUARTERLY:
            pub = posting.current(session, "quarterly", item.period.key)
            result.posting = (item.period.key, pub.version) if pub is not None else None
        return demo_repo.next_timer(session)


# -- clear --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cleared:
    quarter: Period | None
    removed: Counter[str]
    files: list[Path]


def clear(gf: Gridflow) -> Cleared:
    """Remove every demo row — cases, events, clocks, timers, notices and deliveries, the demo periods'
    score runs, postings (and their files), objections and job runs — and nothing else."""
    with gf.transaction() as session:
        found = _status(session, gf.tz)
        if found.quarter is None:
            return Cleared(None, Counter(), [])
        if found.holdings.points_entries:
            entries = ", ".join(f"#{n}" for n in found.holdings.points_entries[:10])
            raise CommandRejected(
                f"points entries {entries} name demo cases; the points ledger is never edited, so the demo stays. "
                "Correct those entries first (`gridflow points correct`), or keep the demo"
            )
        periods, jobs = demo_periods(found.quarter)
        removed = demo_repo.clear(session, periods, jobs)
    return Cleared(found.quarter, removed, _remove_files(gf, found.holdings.postings))


def _remove_files(gf: Gridflow, postings: list[tuple[str, str, int]]) -> list[Path]:
    gone = []
    for kind, period, version in postings:
        folder = gf.settings.postings_path / kind / period
        for suffix in ("html", "csv", "json"):
            path = folder / f"v{version}.{suffix}"
            if path.exists():
                path.unlink()
                gone.append(path)
        for empty in (folder, folder.parent):  # the period's folder, and its kind's if nothing else is left
            if empty.is_dir() and not any(empty.iterdir()):
                empty.rmdir()
    return gone


__all__ = ["DEFAULT_SIZE", "SEED", "Loaded", "Status", "clear", "last_quarter", "load", "note", "status"]
