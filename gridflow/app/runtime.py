"""Use cases: the runtime's period jobs and SLA hand-offs, and the demo township.

Each takes plain values (job names, period keys, ids, aware datetimes) and returns plain values: the dicts
that ``gridflow jobs list --json`` and ``gridflow demo --status --json`` print (times as ISO strings), lists
of dicts, or ``(id, time)`` pairs. The demo's work is done by :mod:`gridflow.demo`, on this application.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from engine import jobs as engine_jobs
from engine.jobs import parse_period
from engine.store.db import sqlite_path
from engine.store.private import exposed
from gridflow import present
from gridflow.app.base import Base, not_after_now
from gridflow.lazy import lazy_module

# Loaded by the use cases that need them, not by every command that builds the application.
periodic = lazy_module("engine.periodic")
engine_sweep = lazy_module("engine.sweep")

log = logging.getLogger("gridflow")  # the runtime's log (tasks.runtime.log)

DemoProgress = Callable[[int, int], None]  # (steps done, steps in all)


def _run_dict(run: Any) -> dict[str, Any]:
    return {
        "job": run.job,
        "period": run.period,
        "status": run.status,
        "attempts": run.attempts,
        "due_at": present.iso(run.due_at),
        "finished_at": present.iso(run.finished_at),
        "result": run.result,
        "error": run.error,
    }


def _fixed(at: datetime) -> Callable[[], datetime]:
    """A clock that always reads ``at`` (jobs run as if it were then)."""
    return lambda: at


def _short(result: dict | None) -> str:
    if not result:
        return "-"
    return ", ".join(f"{k}={v}" for k, v in result.items() if k not in ("from", "to", "warnings")) or (
        f"{len(result.get('warnings', []))} warning(s)"
    )


class RuntimeUseCases(Base):
    """Period jobs, the SLA timers handed to precise firing, and the demo township."""

    def require_current_schema(self) -> None:
        """The database is there and its schema is current (else: run ``gridflow init``)."""
        with self.transaction(write=False):
            pass

    def exposed_files(self) -> list[dict[str, str]]:
        """The home (and what is directly in it) and gridflow's files elsewhere (an SQLite database,
        ``notices.log``) that group or other users may read, write or enter: ``path`` and ``mode``
        (``drwxr-xr-x``). gridflow creates them 0700 and 0600; one made before, or widened since, shows here."""
        s = self.settings
        files = [sqlite_path(s.db_url), sqlite_path(s.broker) if s.embedded_broker else None, s.notices_path]
        outside = [p for p in files if p is not None and not p.is_relative_to(s.home)]
        paths = [s.home, *outside, *(Path(f"{p}{suffix}") for p in outside for suffix in ("-wal", "-shm"))]
        return [{"path": str(path), "mode": mode} for path, mode in exposed(paths)]

    # -- period jobs -------------------------------------------------------------------------------

    def list_jobs(self, job: str | None = None, limit: int = 50) -> dict[str, Any]:
        """The runs of the period jobs (or of one), newest first, and by job the periods due and not done."""
        names = [engine_jobs.job(job).name] if job else list(engine_jobs.JOBS)
        now = self.clock()
        with self.transaction(write=False) as session:
            runs = engine_jobs.runs(session, names, limit)
            since, catch_up = engine_jobs.installed_at(session), self.settings.jobs_catch_up_periods
            due = {
                n: [p.key for p in engine_jobs.due_periods(session, engine_jobs.JOBS[n], now, self.tz, catch_up, since)]
                for n in names
            }
            rows = [_run_dict(r) for r in runs]
        return {"runs": rows, "due": due}

    def run_jobs(self, job: str | None = None, at: datetime | None = None) -> list[dict[str, Any]]:
        """Run what is due and not done (what beat does), each period once, in order (monthly before
        quarterly: the posting draws on the month's scores); ``at``: as if it were then (a past time).
        What ran: job, period and result."""
        clock = self.clock if at is None else _fixed(not_after_now(at, self.clock(), self.tz))
        names = [engine_jobs.job(job).name] if job else list(engine_jobs.JOBS)
        body_of = periodic.bodies(
            self.tz, self.calendars, scoring=self.scoring_rules, base_url=self.settings.public_url
        )
        done: list[dict[str, Any]] = []
        for name in names:
            spec = engine_jobs.job(name)
            with self.transaction(write=False) as session:
                since = engine_jobs.installed_at(session)
                due = engine_jobs.due_periods(
                    session, spec, clock(), self.tz, self.settings.jobs_catch_up_periods, since
                )
            for period in due:
                outcome = self._run_job(spec, period, body_of[name], clock)
                if outcome is not None:
                    done.append(outcome)
        return done

    def _run_job(
        self, spec: engine_jobs.JobSpec, period: engine_jobs.Period, body: Any, clock: Callable[[], datetime]
    ) -> dict[str, Any] | None:
        try:
            with self.transaction() as session:
                outcome = engine_jobs.run_period(session, spec, period, clock(), self.tz, body, self.worker_id)
        except Exception as exc:
            with self.transaction() as session:
                engine_jobs.record_failure(
                    session, spec, period, clock(), self.tz, "".join(traceback.format_exception_only(exc))
                )
            log.error("job %s %s failed: %s", spec.name, period, exc)
            raise
        if not outcome.ran:
            return None
        if spec.name in ("quarterly_publication", "annual_summary"):
            with self.transaction(write=False) as session:
                for path in self.export_postings(session):
                    log.info("posting written: %s", path)
        log.info("job %s %s done: %s", spec.name, period, _short(outcome.result))
        for warning in (outcome.result or {}).get("warnings") or []:
            log.warning("%s", warning)
        return {"job": spec.name, "period": period.key, "result": outcome.result}

    # -- SLA timers handed to precise firing --------------------------------------------------------

    def claim_timers_ahead(
        self, horizon: timedelta, token: str, *, batch: int, lease: timedelta
    ) -> list[tuple[int, datetime]]:
        """Claim the SLA timers due within ``horizon`` from now for precise firing: ``(id, fire_at)``, by time."""
        with self.transaction() as session:
            return engine_sweep.claim_ahead(session, self.clock(), horizon, token, batch=batch, lease=lease)

    def fire_claimed_timers(self, ids: list[int], token: str) -> dict[str, Any]:
        """Fire the timers ``token`` claimed ahead, now: what fired (as a sweep reports it) and how many were
        stale. :class:`engine.errors.ConcurrentUpdate` if a step moved a case meanwhile (the claim holds)."""
        with self.transaction() as session:
            results = engine_sweep.fire_batch(session, ids, token, self.clock())
        fired = [r.__dict__ for r in results if not r.stale]
        return {"fired": fired, "stale": len(results) - len(fired)}

    # -- the demo township ---------------------------------------------------------------------------

    def demo_status(self) -> dict[str, Any]:
        """What demo data this database holds (what ``gridflow demo --status --json`` prints)."""
        from gridflow import demo

        return self._demo_status_dict(demo.status(self))

    def _demo_status_dict(self, found: Any) -> dict[str, Any]:
        h = found.holdings
        return {
            "loaded": found.loaded,
            "complete": found.complete,
            "enabled": self.settings.demo,
            "quarter": found.quarter.key if found.quarter else None,
            "cases": h.cases,
            "first_reported": present.iso(h.first_reported),
            "last_reported": present.iso(h.last_reported),
            "by_status": h.by_status,
            "by_category": h.by_category,
            "events": h.events,
            "clocks": h.clocks,
            "timers": h.timers,
            "notices": h.notices,
            "deliveries": h.deliveries,
            "score_runs": h.score_runs,
            "postings": [{"kind": k, "period": p, "version": v} for k, p, v in h.postings],
            "job_runs": h.job_runs,
            "objections": h.objections,
        }

    def demo_labels(self) -> dict[str, dict[str, str]]:
        """The default workflow's Chinese labels: ``states`` and ``categories``, by name (empty without one)."""
        from gridflow import demo

        states, categories = demo.labels(self)
        return {"states": states, "categories": categories}

    def load_demo(
        self,
        *,
        quarter: str | None = None,
        at: datetime | None = None,
        size: int | None = None,
        if_empty: bool = False,
        progress: DemoProgress | None = None,
    ) -> dict[str, Any]:
        """Load the demo township's quarter (default the last full one before ``at``, default now), unless it
        is here already. ``outcome``: ``loaded``, ``already`` (``status`` says what is here), or with
        ``if_empty`` ``off`` (demo data is turned off here) or ``not_empty`` (``cases_here`` real cases)."""
        from gridflow import demo

        if if_empty and not self.settings.demo:
            return {"outcome": "off"}
        if if_empty and (held := demo.cases_here(self)):
            if not demo.status(self).loaded:
                return {"outcome": "not_empty", "cases_here": held}
        now = self.clock()
        when = now if at is None else not_after_now(at, now)
        target = parse_period("quarter", quarter) if quarter else None
        demo.require_enabled(self)
        result = demo.load(self, quarter=target, now=when, size=size or demo.DEFAULT_SIZE, progress=progress)
        status = self._demo_status_dict(result.status)
        if not result.fresh:
            return {"outcome": "already", "status": status}
        plan = result.plan
        assert plan is not None
        posting = {"period": result.posting[0], "version": result.posting[1]} if result.posting else None
        return {
            "outcome": "loaded",
            "quarter": plan.quarter.key,
            "seed": plan.seed,
            "cases": len(plan.cases),
            "steps": plan.steps,
            "seconds": result.seconds,
            "fired": dict(result.fired),
            "months": [{"period": key, "summary": summary} for key, summary in result.months],
            "posting": posting,
            "files": [str(path) for path in result.files],
            "suppressed": result.suppressed,
            "status": status,
        }

    def clear_demo(self) -> dict[str, Any]:
        """Remove every demo row and posting file, and nothing else: the quarter (None: there was no demo),
        the rows removed by kind, the files deleted."""
        from gridflow import demo

        result = demo.clear(self)
        return {
            "quarter": result.quarter.key if result.quarter else None,
            "removed": dict(result.removed),
            "files": [str(path) for path in result.files],
        }
