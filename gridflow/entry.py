"""The ``gridflow`` console script: ``gridflow --help`` answers without loading the application.

A clerk's first command is ``gridflow --help`` (or ``gridflow`` alone). Loading the whole CLI
means loading SQLAlchemy, the ORM models, the calendars, Celery and the templates, which takes
seconds on a small machine; the list of commands needs none of it. So the root help is printed
from :data:`COMMANDS` here, and every other command line goes to :func:`gridflow.cli.main`.
``tests/unit/test_entry.py`` holds :data:`COMMANDS` equal to the real command tree, so the two
cannot drift: a new command that is not listed here fails the suite.
"""

from __future__ import annotations

import sys

TITLE = "gridflow — 网格化治理事件流转与时限引擎 (workflow and SLA engine for grid governance)."

# (name, first line of its help), in the order ``gridflow.cli.app`` registers them.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("init", "Create or upgrade the database, load the org chart, publish the workflows. Safe to run again."),
    ("demo", "演示数据: load the sample township's last full quarter, marked as demo data everywhere."),
    ("up", "Run gridflow: a worker and beat in one process (embedded default: SQLite, no server to install)."),
    ("worker", "A Celery worker (same as `celery -A tasks worker`); more options are passed to Celery."),
    ("beat", "Celery beat (same as `celery -A tasks beat`); GRIDFLOW_BEAT_SCHEDULER=redbeat for several beats."),
    ("org", "组织架构 org chart: villages, grid cells, people and roles."),
    ("sla", "时限 SLA clocks: what is due, one sweep by hand, a case's timeline."),
    ("calendar", "工作日历 business calendars: a month, a deadline day by day, a check of the schedules."),
    ("workflow", "流程定义 workflow definitions in YAML."),
    ("case", "事件 cases: report, move through the workflow, inspect."),
    ("archive", "户档 household archive: households and residents, imported from CSV or YAML."),
    ("notices", "通知 notices: what was sent to whom, failures, retries, previews."),
    ("points", "户档积分 household points: record, approve, correct, redeem."),
    ("jobs", "周期任务 period jobs: monthly scoring, quarterly posting, calendar check."),
    ("score", "月评比 scores: indicators, composite scores, grades and ranks."),
    ("publish", "季公示 / 年总结 postings: publish, show, objections."),
)
ROOT_HELP = ("--help", "-h")


def main() -> None:
    args = sys.argv[1:]
    if not args or (len(args) == 1 and args[0] in ROOT_HELP):
        print_root_help()
        sys.exit(0 if args else 2)  # as the full CLI does: no command at all is a usage error
    from gridflow.cli import main as cli_main

    cli_main()


def print_root_help() -> None:
    from rich import box
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table

    console = Console()
    console.print()
    console.print(" [bold]Usage:[/] gridflow [OPTIONS] COMMAND [ARGS]...", highlight=False)
    console.print()
    console.print(f" {TITLE}", highlight=False)
    console.print()
    options = Table.grid(padding=(0, 2))
    options.add_row("[bold cyan]--help[/]", "Show this message and exit.")
    console.print(Panel(options, title="Options", title_align="left", border_style="dim", box=box.ROUNDED))
    commands = Table.grid(padding=(0, 2))
    for name, text in COMMANDS:
        commands.add_row(f"[bold cyan]{name}[/]", text)
    console.print(Panel(commands, title="Commands", title_align="left", border_style="dim", box=box.ROUNDED))
    console.print(" [dim]gridflow COMMAND --help tells more, e.g. gridflow case --help[/]", highlight=False)
