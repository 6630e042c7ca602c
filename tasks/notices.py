"""Outbox dispatch: deliver the notices that are ready (console and file on the embedded default)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from notifications.channels.base import mask_phones
from tasks.runtime import Runtime, log


def dispatch(task: Any) -> dict[str, int]:
    runtime: Runtime = task.app.gridflow_runtime
    settings = runtime.settings
    report = runtime.gridflow.dispatch_notices(
        batch=settings.dispatch_batch,
        lease=timedelta(seconds=max(60, settings.task_time_limit_s)),
        budget=timedelta(seconds=settings.dispatch_budget_s),
    )
    if report["messages"] or report["failed"] or report["retrying"]:
        log.info(
            "notices: %d message(s) sent (%d notice(s), %d digest(s)), %d deferred, %d to retry, %d failed",
            report["messages"],
            report["delivered"],
            report["digests"],
            report["deferred"],
            report["retrying"],
            report["failed"],
        )
    # No follow-up task when the budget runs out (unlike the sweep): the next tick, two seconds on,
    # carries on, so a storm of notices never multiplies into chains that crowd out the firing.
    for channel, error in report["misconfigured"].items():
        log.error(
            "channel %r is misconfigured: %s. Its notices go to each person's next channel; fix "
            "config/notifications.yaml or its secrets, then `gridflow notices retry --all-failed`",
            channel,
            mask_phones(error),
        )
    for failure in report["failures"]:
        log.warning("notice %d failed: %s", failure["id"], failure["error"])
    return {
        "claimed": report["claimed"],
        "sent": report["messages"],
        "delivered": report["delivered"],
        "failed": report["failed"],
    }
