"""``gridflow sla due|sweep|explain``: the SLA clocks (时限)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from engine.durations import parse_duration
from gridflow import present
from gridflow.app import Gridflow, not_after_now, parse_at
from gridflow.cli import sla_views
from gridflow.cli.common import (
    AtOpt,
    JsonOpt,
    emit_json,
    handled,
    open_gridflow,
    out,
    wrote,
)

app = typer.Typer()  # this module's commands; gridflow.cli.build merges them into the root
sla_app = typer.Typer(help="时限 SLA clocks: what is due, one sweep by hand, a case's timeline.", no_args_is_help=True)
app.add_typer(sla_app, name="sla")


# -- sla ----------------------------------------------------------------------------------


@sla_app.command("due")
def sla_due(
    at: AtOpt = None,
    within: Annotated[str, typer.Option(help="Also what falls due within this wall time, e.g. 8h, 2d.")] = "0m",
    as_json: JsonOpt = False,
) -> None:
    """What is overdue (or due soon), by grid."""
    with handled():
        gf = open_gridflow()
        when = parse_at(at, gf.tz, gf.clock())
        items = gf.sla_due(when, _wall(within))
        if as_json:
            emit_json(items)
            return
        out.print(sla_views.due_table(items, gf.tz))


def _wall(text: str):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    if text in ("0", "0m", "0h", "0d"):
        return timedelta(0)
    try:
        d = parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    unit = {"m": "minutes", "h": "hours", "d": "days"}[d.unit]
    return timedelta(**{unit: d.amount})


@sla_app.command("sweep")
def sla_sweep(
    at: AtOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would fire (then --at may be in the future).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fire every reminder, breach and escalation that is due (once; safe to repeat)."""
    with handled():
        gf = open_gridflow()
        now = gf.clock()
        when = parse_at(at, gf.tz, now)
        if dry_run:
            _sweep_plan(gf, when, as_json)
            return
        report = gf.sweep(not_after_now(when, now, gf.tz))
        if as_json:
            emit_json(
                {
                    "at": present.iso(when),
                    "claimed": report.claimed,
                    "fired": report.fired,
                    "stale": report.stale,
                    "retried": report.retried,
                }
            )
            return
        for fired in report.fired:
            label = sla_views.KIND_LABELS[fired["kind"]]
            level = f" {fired['level']}" if fired["kind"] != "breach" else ""
            out.print(f"{fired['case_code']}: {label}{level} → {fired['notices']} notice(s) staged", markup=False)
        out.print(
            f"sweep at {present.local_text(when, gf.tz)}: {len(report.fired)} fired, {report.stale} stale "
            f"(their clock had moved on), {report.retried} left for the next sweep",
            markup=False,
        )
        wrote(gf, as_json)


def _sweep_plan(gf: Gridflow, when: Any, as_json: bool) -> None:
    """``sla sweep --dry-run``: what would fire at ``when``; nothing is written."""
    plan = gf.sweep_plan(when)
    if as_json:
        emit_json(plan)
        return
    items = plan["would_fire"]
    out.print(sla_views.plan_table(items, gf.tz))
    live = sum(1 for i in items if not i["stale"])
    out.print(
        f"dry run at {present.local_text(when, gf.tz)}: {live} would fire, {len(items) - live} stale; nothing was written",
        markup=False,
    )


@sla_app.command("explain")
def sla_explain(case: Annotated[str, typer.Argument(help="Case code or id.")], as_json: JsonOpt = False) -> None:
    """Every clock of a case: started, paused, resumed, extended, stopped; deadlines and timers, with reasons."""
    with handled():
        gf = open_gridflow()
        explained = gf.explain_sla(case)
        if as_json:
            emit_json(explained)
            return
        code, clocks = explained["case"], explained["clocks"]
        if not clocks:
            out.print(f"{code} has no clocks (its workflow sets no time limits)", markup=False)
        for table in sla_views.timeline_tables(code, clocks, gf.tz):
            out.print(table)
