"""``gridflow --help`` is printed without loading the application; its list is the real one."""

from __future__ import annotations

import subprocess
import sys

import typer.main

from gridflow import entry


def _real_commands() -> list[tuple[str, str]]:
    from gridflow.cli import app

    root = typer.main.get_command(app)
    return [(name, (command.help or "").strip().splitlines()[0]) for name, command in root.commands.items()]


def test_the_root_help_lists_every_command_in_order():
    real = _real_commands()
    assert [name for name, _, _ in entry.COMMANDS] == [name for name, _ in real], (
        "gridflow/entry.py COMMANDS must list the commands of gridflow.cli.app in order"
    )
    for (name, _, text), (_, help_line) in zip(entry.COMMANDS, real, strict=True):
        assert text[:12] == help_line[:12], f"{name}: entry says {text!r}, the command says {help_line!r}"


def test_the_root_help_loads_neither_the_database_nor_the_application():
    probe = (
        "import sys; sys.argv = ['gridflow', '--help']\n"
        "from gridflow import entry\n"
        "try:\n    entry.main()\nexcept SystemExit as exc:\n    code = exc.code\n"
        "heavy = sorted(m for m in ('sqlalchemy', 'gridflow.cli', 'engine.store.models', 'celery', 'holidays', "
        "'jinja2', 'pydantic_settings') if m in sys.modules)\n"
        "print('HEAVY', heavy, code, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert "HEAVY [] 0" in done.stderr, done.stderr
    for name, _, _ in entry.COMMANDS:
        assert name in done.stdout
