"""The ``gridflow`` console script: ``gridflow --help`` answers without loading the application.

A clerk's first command is ``gridflow --help`` (or ``gridflow`` alone). Loading the whole CLI
means loading SQLAlchemy, the ORM models, the calendars, Celery and the templates, which takes
seconds on a small machine; the list of commands needs none of it. So the root help is printed
from :data:`COMMANDS` here, and every other command line goes to :func:`gridflow.cli.main`, which loads only that command's module.
``tests/unit/test_entry.py`` holds :data:`COMMANDS` equal to the real command tree, so the two
cannot drift: a new command that is not listed here fails the suite.
"""

from __future__ import annotations

import sys

from gridflow.commands import COMMANDS, TITLE

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
    for name, _, text in COMMANDS:
        commands.add_row(f"[bold cyan]{name}[/]", text)
    console.print(Panel(commands, title="Commands", title_align="left", border_style="dim", box=box.ROUNDED))
    console.print(" [dim]gridflow COMMAND --help tells more, e.g. gridflow case --help[/]", highlight=False)
