"""``gridflow calendar show|due|check``: the business calendars (工作日历)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from engine.durations import parse_duration
from gridflow.app import parse_at
from gridflow.cli import sla_views, views
from gridflow.cli.common import (
    JsonOpt,
    emit_json,
    err,
    handled,
    open_gridflow,
    out,
)

app = typer.Typer()  # this module's commands; gridflow.cli.build merges them into the root
calendar_app = typer.Typer(
    help="工作日历 business calendars: a month, a deadline day by day, a check of the schedules.",
    no_args_is_help=True,
)
app.add_typer(calendar_app, name="calendar")


# -- calendar ---------------------------------------------------------------------------------


@calendar_app.command("show")
def calendar_show(
    month: Annotated[str, typer.Argument(help="A month, e.g. 2026-02.")],
    name: Annotated[str, typer.Option("--calendar", help="Calendar name.")] = "township",
    as_json: JsonOpt = False,
) -> None:
    """A month with statutory holidays (休) and make-up working days (班) marked."""
    with handled():
        gf = open_gridflow()
        try:
            year, number = sla_views.parse_month(month)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        days = gf.calendar_month(year, number, name)
        if as_json:
            emit_json(days.as_dict())
            return
        out.print(sla_views.month_table(days))
        out.print(sla_views.DAY_MARK_LEGEND, markup=False)


@calendar_app.command("due")
def calendar_due(
    start: Annotated[str, typer.Argument(help="When it is dispatched: a local time, e.g. 2026-09-30T16:00.")],
    duration: Annotated[str, typer.Argument(help="A time limit as in the workflow YAML: 30m, 4h, 2d.")],
    name: Annotated[str, typer.Option("--calendar", help="Calendar name.")] = "township",
    as_json: JsonOpt = False,
) -> None:
    """When a time limit started at START falls due (截止时间), and the working time counted each day.

    The SLA clocks' own arithmetic: on a working calendar 2d is two working days, on 24x7 wall time.
    """
    with handled():
        gf = open_gridflow()
        if not start.strip():
            raise typer.BadParameter("give START, a local time like 2026-09-30T16:00")
        try:
            limit = parse_duration(duration)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        when = parse_at(start, gf.tz, gf.clock(), what="START")
        reckoning = gf.calendar_due(when, limit, name)
        if as_json:
            emit_json(reckoning.as_dict())
            return
        table = Table(show_header=False, box=None, padding=(0, 2))
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")
        for label, value in sla_views.due_summary(reckoning, gf.tz):
            views.row(table, label, value)
        out.print(table)
        out.print(sla_views.due_days_table(reckoning))
        if not reckoning.due["always_open"]:
            out.print(sla_views.DAY_MARK_LEGEND, markup=False)


@calendar_app.command("check")
def calendar_check(as_json: JsonOpt = False) -> None:
    """Warn when next year's schedule is missing (from November on); fail when a deadline is unanswerable."""
    with handled():
        check = open_gridflow().calendar_check()
        warnings, errors = check.warnings, check.errors
        if as_json:
            emit_json(check.as_dict())
        else:
            for line in errors:
                err.print(f"[bold red]error:[/] {escape(line)}")
            for line in warnings:
                out.print(f"[yellow]warning:[/] {escape(line)}")
            if not warnings and not errors:
                out.print("calendars ok: " + ", ".join(check.calendars), markup=False)
        if errors:
            raise typer.Exit(1)
