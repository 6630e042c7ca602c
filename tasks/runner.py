"""`gridflow up`, `gridflow worker`, `gridflow beat`: the runtime started from settings.

``up`` is the embedded default: one OS process holding a Celery worker (thread pool) and
beat (a thread), on the SQLite database and the SQLite broker — or, with production
settings, the same one process against Redis and PostgreSQL for a small install. ``worker``
and ``beat`` are ``celery -A tasks worker|beat`` with the settings already applied.
"""

from __future__ import annotations

import socket
from typing import Any

from celery import Celery
from celery.beat import EmbeddedService
from celery.signals import worker_shutting_down

from tasks.factory import QUEUE


def up(app: Celery, concurrency: int, loglevel: str = "INFO") -> int:
    app.conf.gridflow_in_process = True  # tasks may watch the worker's stop flag (tasks/sla.py)
    beat = EmbeddedService(
        app,
        thread=True,
        scheduler_cls=app.conf.beat_scheduler,
        schedule_filename=app.conf.beat_schedule_filename,
    )
    worker = app.Worker(
        pool="threads",
        concurrency=concurrency,
        loglevel=loglevel,
        hostname=f"gridflow-up@{socket.gethostname()}",
        queues=[QUEUE],
        quiet=True,
    )
    stopped_by: dict[str, str] = {}

    def on_shutdown(sig: str = "", **_: Any) -> None:
        stopped_by["signal"] = sig

    worker_shutting_down.connect(on_shutdown, weak=False)
    beat.start()
    try:
        worker.start()
    finally:
        beat.stop()
        app.gridflow_runtime.close()  # type: ignore[attr-defined]
        worker_shutting_down.disconnect(on_shutdown)
    if stopped_by.get("signal") in ("SIGINT", "SIGTERM"):
        return 0  # Ctrl-C or a service manager's stop is how `up` ends; Celery counts SIGINT as a failure
    return int(worker.exitcode or 0)


def worker(app: Celery, concurrency: int, pool: str, loglevel: str = "INFO", extra: list[str] | None = None) -> Any:
    argv = ["worker", f"--loglevel={loglevel}", f"--concurrency={concurrency}", f"--pool={pool}", f"--queues={QUEUE}"]
    return app.worker_main(argv + list(extra or []))


def beat(app: Celery, loglevel: str = "INFO", extra: list[str] | None = None) -> Any:
    argv = ["beat", f"--loglevel={loglevel}", f"--schedule={app.conf.beat_schedule_filename}"]
    return app.start(argv + list(extra or []))
