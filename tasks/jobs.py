"""Period jobs: run each period that is due and not done, once (:meth:`Gridflow.run_jobs`)."""

from __future__ import annotations

from typing import Any

from tasks.runtime import Runtime


def run_due(task: Any, job: str | None = None) -> list[dict[str, Any]]:
    runtime: Runtime = task.app.gridflow_runtime
    return runtime.gridflow.run_jobs(job)
