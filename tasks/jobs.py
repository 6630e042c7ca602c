"""Period jobs: work out which periods are due and not done, and run each once."""

from __future__ import annotations

import traceback
from typing import Any

from engine import jobs as engine_jobs
from engine.periodic import bodies
from tasks.runtime import Runtime, log


def run_due(task: Any, job: str | None = None) -> list[dict[str, Any]]:
    runtime: Runtime = task.app.gridflow_runtime
    return run_due_jobs(runtime, [job] if job else list(engine_jobs.JOBS))


def run_due_jobs(runtime: Runtime, names: list[str]) -> list[dict[str, Any]]:
    """In order (monthly before quarterly: the posting draws on the month's scores)."""
    gf, tz, settings = runtime.gridflow, runtime.tz, runtime.settings
    body_of = bodies(tz, gf.calendars, scoring=gf.scoring_rules, base_url=settings.public_url)
    done: list[dict[str, Any]] = []
    for name in names:
        spec = engine_jobs.job(name)
        with gf.transaction(write=False) as session:
            since = engine_jobs.installed_at(session)
            due = engine_jobs.due_periods(session, spec, runtime.clock(), tz, settings.jobs_catch_up_periods, since)
        for period in due:
            outcome = _run_one(runtime, spec, period, body_of[name])
            if outcome is not None:
                done.append(outcome)
    return done


def _run_one(runtime: Runtime, spec: engine_jobs.JobSpec, period: engine_jobs.Period, body: Any) -> dict | None:
    gf = runtime.gridflow
    try:
        with gf.transaction() as session:
            outcome = engine_jobs.run_period(session, spec, period, runtime.clock(), runtime.tz, body, gf.worker_id)
    except Exception as exc:
        with gf.transaction() as session:
            engine_jobs.record_failure(
                session, spec, period, runtime.clock(), runtime.tz, "".join(traceback.format_exception_only(exc))
            )
        log.error("job %s %s failed: %s", spec.name, period, exc)
        raise
    if not outcome.ran:
        return None
    if spec.name in ("quarterly_publication", "annual_summary"):
        with gf.transaction(write=False) as session:
            for path in gf.export_postings(session):
                log.info("posting written: %s", path)
    log.info("job %s %s done: %s", spec.name, period, _short(outcome.result))
    warnings = (outcome.result or {}).get("warnings") or []
    for warning in warnings:
        log.warning("%s", warning)
    return {"job": spec.name, "period": period.key, "result": outcome.result}


def _short(result: dict | None) -> str:
    if not result:
        return "-"
    return ", ".join(f"{k}={v}" for k, v in result.items() if k not in ("from", "to", "warnings")) or (
        f"{len(result.get('warnings', []))} warning(s)"
    )
