"""The Celery app factory: settings in, an app with gridflow's tasks, worker settings and beat schedule out.

Worker settings are chosen so that a crash loses nothing and doubles nothing (the database
makes every task's effect happen at most once; these make it happen at least once):

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged after its
  task ran; a worker killed mid-task gives the message back (every task here is idempotent);
- ``worker_prefetch_multiplier = 1``: a worker holds one message per slot, not a backlog;
- Redis ``visibility_timeout`` above the longest task (checked in Settings), so Redis never
  hands a running task to a second worker;
- JSON only, ids only in messages; no result backend (results live in the database);
- a warm stop (SIGTERM, Ctrl-C) waits for the running tasks, and sweeps and dispatches work to a
  time budget (``task_budget_s``) so that is seconds; a cold stop gives them ``soft_shutdown_s``;
- the broker is retried forever on start and on loss (the database keeps the work meanwhile).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import Celery
from celery.schedules import crontab, schedule
from celery.signals import worker_ready

from config.settings import Settings
from engine.errors import DatabaseError
from engine.store.db import ensure_sqlite_directory
from engine.store.private import private_dir
from tasks import beat, jobs, notices, sla
from tasks.runtime import Runtime

SWEEP, FIRE, DISPATCH, RUN_DUE = (
    "gridflow.sla.sweep",
    "gridflow.sla.fire",
    "gridflow.notices.dispatch",
    "gridflow.jobs.run_due",
)
QUEUE = "gridflow"


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Celery:
    """A new app; nothing global is touched (``set_as_current=False``)."""
    settings = settings or Settings()
    app = Celery("gridflow", set_as_current=False)
    app.conf.update(celery_config(settings))
    app.gridflow_runtime = runtime or Runtime(settings)  # type: ignore[attr-defined]
    _register(app)
    _catch_up_when_ready(app)
    return app


def celery_config(settings: Settings) -> dict[str, Any]:
    transport: dict[str, Any] = {"visibility_timeout": settings.visibility_timeout_s}
    broker, transport_cls = settings.broker, None
    if settings.embedded_broker:  # kombu's sqla transport, minus its polling_interval bug (tasks/broker.py)
        broker, transport_cls = broker.removeprefix("sqla+"), "tasks.broker:Transport"
        transport = {"polling_interval": 0.2}
    config: dict[str, Any] = {
        "broker_url": broker,
        "broker_transport": transport_cls,
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "broker_heartbeat": 0 if settings.embedded_broker else 10,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_ignore_result": True,
        "result_backend": None,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_concurrency": settings.worker_concurrency,
        "task_time_limit": settings.task_time_limit_s,
        "task_soft_time_limit": max(5, settings.task_time_limit_s - 10),
        "worker_soft_shutdown_timeout": settings.soft_shutdown_s,
        "worker_enable_soft_shutdown_on_idle": False,  # idle: stop at once (held ETA messages go back)
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_hijack_root_logger": True,
        "worker_redirect_stdouts": False,
        "task_default_queue": QUEUE,
        "task_publish_retry": True,
        "task_publish_retry_policy": {"max_retries": 5, "interval_start": 0.2, "interval_step": 0.5},
        "timezone": settings.timezone,
        "enable_utc": True,
        "beat_schedule": beat_schedule(settings),
        "beat_max_loop_interval": 5,
        "beat_schedule_filename": str(settings.home / "celerybeat-schedule"),
    }
    if settings.beat_scheduler == "default":  # beat keeps its last-run times in a file under home, 0600
        private_dir(settings.home)
        config["beat_scheduler"] = beat.NAME
    if settings.embedded_broker:  # kombu's SQLite file, made 0600 before SQLite would make it 0644
        ensure_sqlite_directory(settings.broker)
    if settings.beat_scheduler == "redbeat":
        config.update(
            {
                "beat_scheduler": "redbeat.RedBeatScheduler",
                "redbeat_redis_url": settings.redbeat_url,
                "redbeat_key_prefix": "gridflow:redbeat:",
                "redbeat_lock_timeout": 30,  # a dead beat's lock passes to a standby within 30 s
            }
        )
    return config


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Crontabs are evaluated in ``settings.timezone`` (Asia/Shanghai by default)."""

    def every(seconds: float, task: str) -> dict[str, Any]:
        # a tick that waited longer than two intervals in the queue is dropped: a newer one does the same work
        return {"task": task, "schedule": schedule(timedelta(seconds=seconds)), "options": {"expires": 2 * seconds}}

    def job(name: str, cron: crontab) -> dict[str, Any]:
        return {"task": RUN_DUE, "schedule": cron, "kwargs": {"job": name}, "options": {"expires": 3600}}

    return {
        "sla-sweep": every(settings.sweep_interval_s, SWEEP),
        "notices-dispatch": every(settings.dispatch_interval_s, DISPATCH),
        "monthly-scoring": job("monthly_scoring", crontab(minute=0, hour=1, day_of_month=1)),
        "quarterly-publication": job(
            "quarterly_publication", crontab(minute=0, hour=3, day_of_month=1, month_of_year="1,4,7,10")
        ),
        "annual-summary": job("annual_summary", crontab(minute=0, hour=1, day_of_month=2, month_of_year=1)),
        "calendar-check": job("calendar_check", crontab(minute=0, hour=6)),
        # the net under the crontabs: whatever is due and not done (a beat that was down) runs once
        "jobs-catch-up": {
            "task": RUN_DUE,
            "schedule": schedule(timedelta(seconds=settings.jobs_catch_up_s)),
            "options": {"expires": settings.jobs_catch_up_s},
        },
    }


def _register(app: Celery) -> None:
    # A sweep or a dispatch that fails is not retried: the next tick, seconds later, does the same work.
    retry = {"autoretry_for": (DatabaseError,), "retry_backoff": 1, "retry_backoff_max": 30}
    app.task(name=SWEEP, bind=True)(sla.sweep)
    app.task(name=FIRE, bind=True, max_retries=10, **retry)(sla.fire)
    app.task(name=DISPATCH, bind=True)(notices.dispatch)
    app.task(name=RUN_DUE, bind=True, max_retries=5, **retry)(jobs.run_due)


def _catch_up_when_ready(app: Celery) -> None:
    """When a worker is up, look once for due jobs (a beat that was down may have missed a crontab)."""

    def on_ready(sender: Any = None, **_: Any) -> None:
        if sender is not None and getattr(sender, "app", None) is app:
            app.tasks[RUN_DUE].apply_async(expires=600)

    worker_ready.connect(on_ready, weak=False)
