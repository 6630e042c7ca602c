"""The ``gridflow`` command line (Typer + Rich): one module per command group, all calling the application
(:class:`gridflow.app.Gridflow`); :mod:`gridflow.cli.common` holds what they share.

A command line loads only the module of its command (:func:`main`): ``gridflow case show`` does not
import the scoring, the points or Celery. :func:`build` with no name makes the whole tree (the tests
and ``python -m gridflow`` use it).

Exit codes, one per branch of the error tree (:mod:`engine.errors`):

====  ======================  ==============================================================
code  error                   meaning
====  ======================  ==============================================================
0                             done
1     SourceError             an input file is invalid (workflow, org chart, calendars, rules…)
2     (click usage)           usage error: unknown option, missing argument, bad key=value
3     NotFound                no such case, person, workflow, household, notice, event, job…
4     CommandRejected         refused, nothing changed: not allowed, fields, role, guard
5     ConcurrentUpdate        the case changed meanwhile (stale --expect-version)
6     DatabaseError           the database failed or is at the wrong schema
7     ConfigError             settings or another configuration cannot be used
8     InputError              a value given is malformed or not one of its choices
9     NotYet                  not yet: the period is not over, --at is in the future, timers
                              have not fired; the same command works later
10    ContractError           a bug in gridflow (please report it with the message)
====  ======================  ==============================================================
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

from gridflow.commands import COMMANDS, TITLE


def _root() -> typer.Typer:
    root = typer.Typer(
        name="gridflow",
        help=TITLE,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    root.callback()(_no_options)  # a group even when it holds one command (``gridflow init``)
    return root


def _no_options() -> None:
    """gridflow — 网格化治理事件流转与时限引擎."""


def _name(info: Any) -> str:
    if info.name:
        return str(info.name)
    callback = info.callback if hasattr(info, "callback") else None
    return callback.__name__.replace("_", "-") if callback else ""


def build(*names: str) -> typer.Typer:
    """The command tree with the commands ``names`` (default: all), in the order of ``COMMANDS``."""
    root = _root()
    wanted = names or tuple(name for name, _, _ in COMMANDS)
    for name, module, _ in COMMANDS:
        if name not in wanted:
            continue
        local = importlib.import_module(f"gridflow.cli.{module}").app
        root.registered_commands += [c for c in local.registered_commands if _name(c) == name]
        root.registered_groups += [g for g in local.registered_groups if g.name == name]
    return root


def main() -> None:
    """Run the command line, loading only the module of the command asked for."""
    known = {name for name, _, _ in COMMANDS}
    first = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    (build(first) if first in known else build())(prog_name="gridflow")


def __getattr__(name: str) -> Any:
    if name == "app":  # the whole tree, built once when asked for
        globals()["app"] = tree = build()
        return tree
    raise AttributeError(name)
