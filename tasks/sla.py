"""SLA tasks: the sweep (safety net, every few seconds) and precise firing (a countdown).

``sweep`` fires what is due, then claims the timers due within the next ``precise_horizon_s``
and hands them to ``fire`` with an ETA at their time, in buckets. It publishes only after
the claim has committed; a hand-off that is lost (the broker went away) costs only delay:
the claim's lease runs out and a later sweep fires the timers. ``fire`` flips only timers
that its claim still holds, so a timer fires once whichever of the two gets there.
"""

from __future__ import annotations

import time as _time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.errors import ConcurrentUpdate
from tasks.runtime import Runtime, log

BUCKET = timedelta(milliseconds=200)  # timers this close together share one ETA task
BUCKET_SIZE = 500
PRECISE_LEASE = timedelta(seconds=30)


def sweep(task: Any) -> dict[str, int]:
    runtime: Runtime = task.app.gridflow_runtime
    gf, settings = runtime.gridflow, runtime.settings
    if task.app.conf.get("gridflow_in_process"):
        # `gridflow up`: one process, so the sweep sees a stop request between batches and needs no
        # budget; one sweep drains a backlog while the other thread delivers
        report = gf.sweep(runtime.clock(), stop=_stopping)
    else:  # prefork: a child cannot see the stop request, so the sweep works to a time budget
        report = gf.sweep(runtime.clock(), budget=timedelta(seconds=settings.task_budget_s))
    _log_fired(report.fired, report.stale)
    handed = 0
    horizon = timedelta(seconds=settings.precise_horizon_s)
    if horizon:
        token = f"{gf.worker_id}:{task.request.id or 'local'}"[:64]
        claimed = gf.claim_timers_ahead(horizon, token, batch=settings.sweep_batch * 4, lease=PRECISE_LEASE)
        for ids, fire_at in buckets(claimed):
            eta = on_machine_clock(runtime, fire_at)
            task.app.tasks["gridflow.sla.fire"].apply_async(args=[ids, token], eta=eta, expires=eta + PRECISE_LEASE)
        handed = len(claimed)
    if report.more:  # a backlog: carry on in a new task (no expiry), so progress never waits on a tick's luck
        task.app.tasks["gridflow.sla.sweep"].apply_async()
        log.info("sweep: time budget spent with timers still due; a follow-up sweep carries on")
    return {"claimed": report.claimed, "fired": len(report.fired), "stale": report.stale, "handed": handed}


def on_machine_clock(runtime: Runtime, at: datetime) -> datetime:
    """``at`` by the runtime's clock, told on the machine's clock: Celery counts an ETA and an expiry on the
    latter, and the runtime's clock may run ahead of it or behind (``clock_offset_s``: drills, tests)."""
    return at - (runtime.clock() - datetime.now(UTC))


def _stopping() -> bool:
    from celery.worker import state

    return bool(state.should_stop or state.should_terminate)


def buckets(claimed: list[tuple[int, datetime]]) -> list[tuple[list[int], datetime]]:
    """Group ``(id, fire_at)`` (sorted by time) into runs no wider than BUCKET; ETA = the last one's time."""
    out: list[tuple[list[int], datetime]] = []
    start: datetime | None = None
    for timer_id, fire_at in claimed:
        if start is None or fire_at - start > BUCKET or len(out[-1][0]) >= BUCKET_SIZE:
            out.append(([], fire_at))
            start = fire_at
        out[-1][0].append(timer_id)
        out[-1] = (out[-1][0], fire_at)
    return out


def fire(task: Any, ids: list[int], token: str) -> dict[str, int]:
    """Fire timers claimed ahead by a sweep, at their time (an early wake-up waits the rest)."""
    runtime: Runtime = task.app.gridflow_runtime
    eta = task.request.eta
    if eta:  # an ETA is a time on the machine's clock (see on_machine_clock)
        early = (datetime.fromisoformat(eta).astimezone(UTC) - datetime.now(UTC)).total_seconds()
        if 0 < early < 5:
            _time.sleep(early)
    try:
        done = runtime.gridflow.fire_claimed_timers(ids, token)
    except ConcurrentUpdate as exc:  # a user step moved a case meanwhile: try again, the claim still holds
        raise task.retry(exc=exc, countdown=0.2, max_retries=10) from exc
    _log_fired(done["fired"], done["stale"])
    return {"fired": len(done["fired"]), "stale": done["stale"]}


def _log_fired(fired: list[dict], stale: int) -> None:
    if not fired and not stale:
        return
    kinds = Counter(f["event"] for f in fired)
    notices = sum(f["notices"] for f in fired)
    summary = ", ".join(f"{kind} ×{n}" for kind, n in sorted(kinds.items())) or "nothing"
    log.info("SLA fired %d timer(s): %s; %d notice(s) staged; %d stale", len(fired), summary, notices, stale)
    for f in fired[:10]:
        log.info("  %s %s (level %s) → %d notice(s)", f["case_code"], f["event"], f["level"], f["notices"])
    if len(fired) > 10:
        log.info("  … and %d more", len(fired) - 10)
