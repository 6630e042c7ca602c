"""Outbox dispatch: deliver the notices that are ready (console and file on the embedded default)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from notifications.dispatch import dispatch as dispatch_outbox
from tasks.runtime import Runtime, log


def dispatch(task: Any) -> dict[str, int]:
    runtime: Runtime = task.app.gridflow_runtime
    gf, settings = runtime.gridflow, runtime.settings
    report = dispatch_outbox(
        gf.transaction,
        runtime.clock,
        gf.worker_id,
        runtime.channel,
        runtime.renderer,
        batch=settings.dispatch_batch,
        lease=timedelta(seconds=max(60, settings.task_time_limit_s)),
        budget=timedelta(seconds=settings.dispatch_budget_s),
    )
    if report.sent or report.failed:
        log.info("notices: %d sent on %s, %d failed", len(report.sent), runtime.channel.name, len(report.failed))
    for notice_id, error in report.failed:
        log.warning("notice %d failed: %s", notice_id, error)
    return {"claimed": report.claimed, "sent": len(report.sent), "failed": len(report.failed)}
