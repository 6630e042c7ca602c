"""CLI commands of the runtime: ``up``, ``worker``, ``beat`` and ``jobs list|run``.

Merged into the root by :func:`gridflow.cli.build`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from kombu.utils.url import maybe_sanitize_url
from rich.markup import escape
from rich.table import Table

from gridflow import present
from gridflow.app import parse_at
from gridflow.cli import views
from gridflow.cli.common import emit_json, handled, open_gridflow, out

app = typer.Typer()  # this module's commands; gridflow.cli.build merges them into the root

jobs_app = typer.Typer(
    help="周期任务 period jobs: monthly scoring, quarterly posting, calendar check.", no_args_is_help=True
)
app.add_typer(jobs_app, name="jobs")

LogOpt = Annotated[str, typer.Option("--loglevel", "-l", help="DEBUG shows every task; INFO what fired and was sent.")]
QUIET_LOGGERS = ("celery.app.trace", "celery.worker.strategy", "celery.beat", "redbeat.schedulers", "alembic")


def _celery_app():  # type: ignore[no-untyped-def]
    from celery.signals import after_setup_logger, after_setup_task_logger

    from tasks.factory import create_app
    from tasks.logs import LOG_FORMAT, use_local_time

    gf = open_gridflow()  # settings are read and checked here, with the CLI's clear errors
    settings = gf.settings
    gf.require_current_schema()  # else: run `gridflow init`
    gf.close()
    celery_app = create_app(settings)

    tz = gf.tz

    def quiet(logger: Any = None, loglevel: int | None = None, **_: Any) -> None:
        if (loglevel or logging.INFO) > logging.DEBUG:  # a sweep every two seconds is not news
            for name in QUIET_LOGGERS:
                logging.getLogger(name).setLevel(logging.WARNING)
        local_time(logger)

    def local_time(logger: Any = None, **_: Any) -> None:
        if logger is not None:  # the log tells the time as the tables do: local, with its zone
            use_local_time(logger, tz)

    after_setup_logger.connect(quiet, weak=False)
    after_setup_task_logger.connect(local_time, weak=False)
    celery_app.conf.worker_log_format = LOG_FORMAT
    celery_app.conf.worker_task_log_format = LOG_FORMAT
    return celery_app


def _banner(mode: str, celery_app: Any, api: Any = None) -> None:
    rt = celery_app.gridflow_runtime
    s, channels = rt.settings, rt.gridflow.notice_channels()
    table = Table(show_header=False, box=None, padding=(0, 2))
    broker = maybe_sanitize_url(s.broker)
    for label, value in (
        ("运行 mode", mode),
        ("数据库 database", rt.gridflow.database_label),
        ("消息 broker", broker),
        (
            "定时 beat",
            f"{s.beat_scheduler}; SLA sweep every {s.sweep_interval_s:g} s, precise firing {s.precise_horizon_s:g} s ahead",
        ),
        ("通知 notices", f"{', '.join(channels['order'])} ({channels['source']}); console log {s.notices_path}"),
    ):
        views.row(table, label, str(value))
    out.print(table)
    if api is not None:
        out.print(
            f"接口 API  {api.url}/api/v1/  (docs {api.url}/api/v1/docs; sign in with a token from "
            "`gridflow token create`, or a phone number and password)",
            markup=False,
            soft_wrap=True,
        )
        out.print(
            f"网页 pages  {api.url}/workbench  (the centre's workbench; a password from `gridflow account password`)",
            markup=False,
            soft_wrap=True,
        )
    for problem in rt.gridflow.notice_template_problems():
        out.print(f"通知模板 template refused: {problem}; notices that use it fail until it is fixed", markup=False)
    out.print("Ctrl-C stops (running tasks get a moment to finish). Report cases from another terminal.", markup=False)


@app.command()
def up(
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-c", help="Task threads.")] = None,
    loglevel: LogOpt = "INFO",
) -> None:
    """Run gridflow: a worker and beat in one process (embedded default: SQLite, no server to install)."""
    from tasks import runner

    with handled():
        celery_app = _celery_app()
        settings = celery_app.gridflow_runtime.settings
        mode = "embedded (SQLite)" if settings.embedded_broker else "one process"
        api = _api(celery_app) if settings.api_port else None
        _banner(mode, celery_app, api)
        try:
            code = runner.up(celery_app, concurrency or settings.worker_concurrency, loglevel)
        except KeyboardInterrupt:  # Ctrl-C before the worker's own handler is in place (the API answers first)
            out.print("stopped while starting: nothing had run yet", markup=False)
            code = 0
        finally:
            if api is not None:
                api.stop()
        raise typer.Exit(code)


def _api(celery_app: Any) -> Any:
    """The HTTP API on a thread of this process (``api_port`` 0: none), listening before the worker starts."""
    from gridflow.api.embedded import EmbeddedApi
    from gridflow.app import Gridflow

    rt = celery_app.gridflow_runtime
    s = rt.settings
    api = EmbeddedApi(Gridflow(s, rt.clock), s.api_host, s.api_port)
    api.start()
    return api


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(
    ctx: typer.Context,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-c", help="Worker processes.")] = None,
    pool: Annotated[str, typer.Option(help="prefork (production), threads or solo.")] = "prefork",
    loglevel: LogOpt = "INFO",
) -> None:
    """A Celery worker (same as `celery -A tasks worker`); more options are passed to Celery."""
    from tasks import runner

    with handled():
        celery_app = _celery_app()
        runner.worker(
            celery_app, concurrency or celery_app.gridflow_runtime.settings.worker_concurrency, pool, loglevel, ctx.args
        )


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def beat(ctx: typer.Context, loglevel: LogOpt = "INFO") -> None:
    """Celery beat (same as `celery -A tasks beat`); GRIDFLOW_BEAT_SCHEDULER=redbeat for several beats."""
    from tasks import runner

    with handled():
        runner.beat(_celery_app(), loglevel, ctx.args)


# -- jobs ----------------------------------------------------------------------------------


@jobs_app.command("list")
def jobs_list(
    job: Annotated[str | None, typer.Option("--job", help="Only this job.")] = None,
    limit: Annotated[int, typer.Option(help="How many runs.")] = 50,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """The runs of the period jobs, newest first, and what is due and not done."""
    with handled():
        gf = open_gridflow()
        listed = gf.list_jobs(job, limit)
        if as_json:
            emit_json(listed)
            return
        runs, due = listed["runs"], listed["due"]
        table = Table(
            "任务 job", "周期 period", "状态 status", "次数 attempts", "应运行 due", "完成 finished", "结果 result"
        )
        for r in runs:
            result = ", ".join(f"{k}={v}" for k, v in (r["result"] or {}).items() if k not in ("from", "to"))
            table.add_row(
                r["job"],
                r["period"],
                r["status"],
                str(r["attempts"]),
                _local(r["due_at"], gf.tz),
                _local(r["finished_at"], gf.tz),
                escape(result or (r["error"] or "")[:80]),
            )
        out.print(table if runs else "no job has run yet")
        pending = {n: p for n, p in due.items() if p}
        out.print(
            "due and not done: " + (", ".join(f"{n} {' '.join(p)}" for n, p in pending.items()) or "nothing"),
            markup=False,
        )


def _local(iso: str | None, tz: ZoneInfo) -> str:
    return present.local_text(datetime.fromisoformat(iso), tz) if iso else ""


@jobs_app.command("run")
def jobs_run(
    job: Annotated[str | None, typer.Argument(help="A job; all of them if left out.")] = None,
    at: Annotated[str | None, typer.Option(help="As if it were this time (local ISO).")] = None,
) -> None:
    """Run what is due and not done now (what beat does); each period runs once."""
    with handled():
        gf = open_gridflow()
        done = gf.run_jobs(job, at=parse_at(at, gf.tz, gf.clock()))
        for item in done:
            out.print(f"{item['job']} {item['period']}: done", markup=False)
        if not done:
            out.print("nothing due: every due period has run", markup=False)
