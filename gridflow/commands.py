"""The command tree's table of contents: each command, the module of :mod:`gridflow.cli` that holds it,
and the first line of its help. The root help prints it without loading the CLI, and
:func:`gridflow.cli.main` loads only the module of the command asked for."""

from __future__ import annotations

TITLE = "gridflow — 网格化治理事件流转与时限引擎 (workflow and SLA engine for grid governance)."

# (name, its module in gridflow.cli, first line of its help), in the order of the root help.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("init", "setup", "Create or upgrade the database, load the org chart, publish the workflows. Safe to run again."),
    ("demo", "demo", "演示数据: load the sample township's last full quarter, marked as demo data everywhere."),
    (
        "up",
        "runtime",
        "Run gridflow: a worker and beat in one process (embedded default: SQLite, no server to install).",
    ),
    ("worker", "runtime", "A Celery worker (same as `celery -A tasks worker`); more options are passed to Celery."),
    (
        "beat",
        "runtime",
        "Celery beat (same as `celery -A tasks beat`); GRIDFLOW_BEAT_SCHEDULER=redbeat for several beats.",
    ),
    ("serve", "serve", "Serve the HTTP API with uvicorn (production: several workers behind a reverse proxy)."),
    ("org", "org", "组织架构 org chart: villages, grid cells, people and roles."),
    ("sla", "sla", "时限 SLA clocks: what is due, one sweep by hand, a case's timeline."),
    ("calendar", "calendar", "工作日历 business calendars: a month, a deadline day by day, a check of the schedules."),
    ("workflow", "workflow", "流程定义 workflow definitions in YAML."),
    ("case", "case", "事件 cases: report, move through the workflow, inspect."),
    ("archive", "archive", "户档 household archive: households and residents, imported from CSV or YAML."),
    ("notices", "notices", "通知 notices: what was sent to whom, failures, retries, previews."),
    ("points", "points", "户档积分 household points: record, approve, correct, redeem."),
    ("token", "access", "令牌 API tokens for machines and scripts: create, list, revoke."),
    ("account", "access", "账号 accounts: set a person's sign-in password."),
    ("webhook", "webhooks", "推送 webhooks to the county's platform: signed events to a URL; add, list, remove."),
    ("client", "clients", "接入平台 Open311 clients (12345, 综治): add one with its api_key, list, revoke."),
    ("jobs", "runtime", "周期任务 period jobs: monthly scoring, quarterly posting, calendar check."),
    ("score", "scoring", "月评比 scores: indicators, composite scores, grades and ranks."),
    ("publish", "scoring", "季公示 / 年总结 postings: publish, show, objections."),
)
