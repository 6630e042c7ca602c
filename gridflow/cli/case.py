"""``gridflow case report|fire|show|list|history``: cases (事件)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from gridflow import present, quick
from gridflow.cli import views
from gridflow.cli.common import (
    ActorOpt,
    EnteredByOpt,
    FieldOpt,
    JsonOpt,
    WhenOpt,
    emit_json,
    handled,
    open_gridflow,
    open_settings,
    out,
    parse_fields,
    wrote,
)

if TYPE_CHECKING:  # the application is loaded by the commands that need it; `case show` mostly does not
    from gridflow.app import Gridflow

app = typer.Typer()  # this module's commands; gridflow.cli.build merges them into the root
case_app = typer.Typer(help="事件 cases: report, move through the workflow, inspect.", no_args_is_help=True)
app.add_typer(case_app, name="case")


# -- case ------------------------------------------------------------------------------


@case_app.command("report")
def case_report(
    grid: Annotated[str, typer.Option("--grid", "-g", help="Grid cell id, e.g. mayingtai-01.")],
    actor: ActorOpt,
    title: Annotated[str, typer.Option("--title", "-t", help="Short title (事件标题).")],
    description: Annotated[str | None, typer.Option("--description", "-d", help="Details (事件描述).")] = None,
    field: FieldOpt = None,
    workflow: Annotated[str | None, typer.Option(help="Workflow name (default from settings).")] = None,
    at: WhenOpt = None,
    entered_by: EnteredByOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Report (上报) a new case in a grid cell; with --at, one that was reported earlier (补录)."""
    with handled():
        fields: dict[str, Any] = {"title": title, **parse_fields(field)}
        if description is not None:
            fields["description"] = description
        gf = open_gridflow()
        when = _past(gf, at, entered_by)
        result = gf.report(
            grid_id=grid, actor_id=actor, fields=fields, workflow=workflow, at=when, entered_by=entered_by
        )
        code = result["case"]["code"]
        _show_case(gf, code, as_json)
        if when is not None and not as_json:
            out.print(f"{code}: {_backfill_note(gf, result['event'])}", markup=False)
        wrote(gf, as_json)


def _backfill_note(gf: Gridflow, event: dict[str, Any]) -> str:
    """A backfilled step in one phrase: when it happened, when and by whom it was typed in."""
    by = f" by {event['entered_by']}" if event["entered_by"] else ""
    typed = present.local_text(_time(event["received_at"]), gf.tz) if event["received_at"] else ""
    return f"补录 backfilled: happened {present.local_text(_time(event['at']), gf.tz)}, typed in {typed}{by}"


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


@case_app.command("fire")
def case_fire(
    case: Annotated[str, typer.Argument(help="Case code or id.")],
    trigger: Annotated[str, typer.Argument(help="Trigger, e.g. classify, assign, accept, resolve, verify.")],
    actor: ActorOpt,
    field: FieldOpt = None,
    expect_version: Annotated[
        int | None,
        typer.Option("--expect-version", min=1, help="Refuse unless the case is still at this version."),
    ] = None,
    at: WhenOpt = None,
    entered_by: EnteredByOpt = None,
    show: Annotated[bool, typer.Option("--show", help="Also print the whole case card.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fire a trigger on a case (e.g. classify -f category=water_supply -f priority=urgent)."""
    with handled():
        gf = open_gridflow()
        when = _past(gf, at, entered_by)
        result = gf.fire(
            case,
            trigger,
            actor_id=actor,
            fields=parse_fields(field),
            expected_version=expect_version,
            at=when,
            entered_by=entered_by,
        )
        done, e = result["case"], result["event"]
        if as_json or show:
            _show_case(gf, done["code"], as_json)
        if not as_json:
            backfilled = f", {_backfill_note(gf, e)}" if when is not None else ""
            out.print(
                f"{done['code']}: {trigger} {e['from']} → {e['to']} (version {done['version']}{backfilled})",
                markup=False,
            )
        wrote(gf, as_json)


def _past(gf: Gridflow, at: str | None, entered_by: str | None) -> Any:
    """``--at`` of a step: a past time (the future is refused by the application), or None for now."""
    if at is None:
        if entered_by is not None:
            raise typer.BadParameter("--entered-by goes with --at (a step typed in later)")
        return None
    from gridflow.app import parse_at

    return parse_at(at, gf.tz, gf.clock())


def _show_case(gf: Gridflow, ref: str, as_json: bool) -> None:
    if as_json:
        emit_json(gf.show_case(ref))
        return
    _print_card(gf.case_card(ref), gf.tz)


def _print_card(card: dict[str, Any], tz: ZoneInfo) -> None:
    table = Table(show_header=False, box=None, padding=(0, 2))
    for label, value in views.case_panel_rows(card, tz):
        views.row(table, label, value)
    out.print(table)


@case_app.command("show")
def case_show(case: Annotated[str, typer.Argument(help="Case code or id.")], as_json: JsonOpt = False) -> None:
    """Show one case and what can be done with it now."""
    with handled():
        settings = open_settings()
        card = quick.case_card(settings, case)  # the embedded file read directly, else None: the application
        if card is None:
            _show_case(open_gridflow(settings), case, as_json)
        elif as_json:
            emit_json(card["case"])
        else:
            _print_card(card, ZoneInfo(settings.timezone))


@case_app.command("list")
def case_list(
    status: Annotated[str | None, typer.Option(help="Only cases in this state.")] = None,
    grid: Annotated[str | None, typer.Option(help="Only cases of this grid cell.")] = None,
    person: Annotated[str | None, typer.Option(help="Only cases this person reported or handles.")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only cases not yet closed.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="At most this many, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List cases (台账), newest first."""
    with handled():
        gf = open_gridflow()
        rows = gf.list_cases(status=status, grid_id=grid, person_id=person, open_only=open_only, limit=limit)
        if as_json:
            emit_json(rows)
            return
        out.print(views.cases_table(rows, gf.tz))


@case_app.command("history")
def case_history(case: Annotated[str, typer.Argument(help="Case code or id.")], as_json: JsonOpt = False) -> None:
    """The audit trail of a case: every step, who, when, from → to."""
    with handled():
        gf = open_gridflow()
        history = gf.case_history(case)
        if as_json:
            emit_json(history["events"])
            return
        out.print(views.history_table(history, gf.tz))
