"""The ``gridflow`` command line (Typer + Rich).

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

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from config.settings import Settings
from engine import cases
from engine.durations import parse_duration
from engine.errors import (
    CommandRejected,
    ConcurrentUpdate,
    ConfigError,
    ContractError,
    DatabaseError,
    GridflowError,
    InputError,
    NotFound,
    NotYet,
    SourceError,
    WorkflowInvalid,
)
from engine.machine import mermaid
from engine.store import workflow_repo
from engine.store.models import Person, Place, RoleAssignment
from gridflow import sla_views, views
from gridflow.app import Gridflow, not_after_now, parse_at

EXIT_CODES: list[tuple[type[GridflowError], int]] = [  # most specific first: the first match wins
    (SourceError, 1),
    (NotFound, 3),
    (CommandRejected, 4),
    (ConcurrentUpdate, 5),
    (DatabaseError, 6),
    (ConfigError, 7),
    (InputError, 8),
    (NotYet, 9),
    (ContractError, 10),
]
UNMAPPED_EXIT_CODE = 10  # a GridflowError outside every branch above is a bug too

out = Console()
err = Console(stderr=True)

app = typer.Typer(
    name="gridflow",
    help="gridflow — 网格化治理事件流转与时限引擎 (workflow and SLA engine for grid governance).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
org_app = typer.Typer(help="组织架构 org chart: villages, grid cells, people and roles.", no_args_is_help=True)
workflow_app = typer.Typer(help="流程定义 workflow definitions in YAML.", no_args_is_help=True)
case_app = typer.Typer(help="事件 cases: report, move through the workflow, inspect.", no_args_is_help=True)
sla_app = typer.Typer(help="时限 SLA clocks: what is due, one sweep by hand, a case's timeline.", no_args_is_help=True)
calendar_app = typer.Typer(
    help="工作日历 business calendars: a month, a deadline day by day, a check of the schedules.",
    no_args_is_help=True,
)
app.add_typer(org_app, name="org")
app.add_typer(sla_app, name="sla")
app.add_typer(calendar_app, name="calendar")
app.add_typer(workflow_app, name="workflow")
app.add_typer(case_app, name="case")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ActorOpt = Annotated[str, typer.Option("--actor", "-a", help="Person id of who acts, e.g. p-chen-jia.")]
FieldOpt = Annotated[list[str] | None, typer.Option("--field", "-f", help="A field as key=value; repeat for more.")]
AtOpt = Annotated[str | None, typer.Option("--at", help="Instead of now: 2026-03-02T10:00 (local) or with offset.")]
WhenOpt = Annotated[
    str | None,
    typer.Option(
        "--at",
        help="When it happened, if not now: a past time, 2026-11-27T09:30 (local) or with offset. For typing in a "
        "paper register later; the time limits run from then, and the history records when it was typed in.",
    ),
]
EnteredByOpt = Annotated[
    str | None,
    typer.Option("--entered-by", help="With --at: the person id of who types it in (default: the actor)."),
]


def main() -> None:
    app()


@contextmanager
def handled() -> Iterator[None]:
    """Print a GridflowError for people and exit with its code."""
    try:
        yield
    except GridflowError as exc:
        code = exit_code(type(exc))
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code) from None


def exit_code(kind: type[GridflowError]) -> int:
    """The exit code of an error class: that of the first branch of ``EXIT_CODES`` it belongs to."""
    return next((code for branch, code in EXIT_CODES if issubclass(kind, branch)), UNMAPPED_EXIT_CODE)


def _gridflow() -> Gridflow:
    try:
        return Gridflow(Settings())
    except (ImportError, OSError) as exc:
        raise ConfigError(f"cannot open the database: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"bad settings (GRIDFLOW_* or config/gridflow.yaml): {problems}") from exc


def _emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def _fields(pairs: list[str] | None) -> dict[str, str]:
    fields: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r}: write a field as key=value, e.g. -f priority=urgent")
        fields[key.strip()] = value
    return fields


# -- init ----------------------------------------------------------------------------


@app.command()
def init(
    org: Annotated[Path | None, typer.Option(help="Org chart YAML (default: settings.org_file).")] = None,
    workflow: Annotated[list[Path] | None, typer.Option(help="Workflow YAML to publish; repeatable.")] = None,
) -> None:
    """Create or upgrade the database, load the org chart, publish the workflows. Safe to run again."""
    with handled():
        gf = _gridflow()
        report = gf.init(org, workflow)
        schema = (
            f"created at {report.schema_after}"
            if report.schema_before is None
            else "up to date"
            if report.schema_before == report.schema_after
            else f"upgraded {report.schema_before} → {report.schema_after}"
        )
        out.print(f"[bold]数据库 database[/]  {escape(report.database)}  (schema {schema})")
        out.print(
            f"[bold]组织架构 org[/]  places {report.org.places}; people {report.org.people}; "
            f"roles +{report.org.roles_added} −{report.org.roles_removed}",
            soft_wrap=True,
        )
        for pub in report.workflows:
            verb = "published" if pub.created else "unchanged"
            out.print(f"[bold]流程 workflow[/]  {pub.row.name} v{pub.row.version} {escape(pub.row.title)} ({verb})")
        out.print("[bold]现有 now[/]  " + ", ".join(f"{v} {k}" for k, v in report.counts.items()))
        _where(gf)
        out.print(NEXT_STEPS, highlight=False, soft_wrap=True)


NEXT_STEPS = """[bold]next[/]
  .venv/bin/gridflow workflow graph grid_case          # the default workflow as a mermaid diagram
  .venv/bin/gridflow case report -g mayingtai-01 -a p-an-yixuan -t "马营台村1社水管破裂"
  .venv/bin/gridflow case fire SL-2026-000001 classify -a p-chen-jia -f category=water_supply -f priority=urgent
  .venv/bin/gridflow case list
  .venv/bin/gridflow up                                  # run it: deadlines fire, notices go out (Ctrl-C stops)
  .venv/bin/gridflow notices list
  .venv/bin/gridflow --help"""


def _where(gf: Gridflow) -> None:
    s = gf.settings
    table = Table(show_header=False, box=None, padding=(0, 2))
    for label, value in (
        ("home", s.home),
        ("org chart", s.org_file),
        ("workflows", ", ".join(str(p) for p in s.workflow_files)),
        ("settings", "GRIDFLOW_* environment variables, config/gridflow.yaml (see config/gridflow.yaml.sample)"),
    ):
        views.row(table, label, str(value))
    out.print(table)


# -- org ----------------------------------------------------------------------------


@org_app.command("load")
def org_load(file: Annotated[Path, typer.Argument(help="Org chart YAML, e.g. config/org/shengli.yaml")]) -> None:
    """Validate an org chart and load it (idempotent: places and people not in the file are deactivated)."""
    with handled():
        result = _gridflow().load_org(file)
        out.print(
            f"places {result.places}; people {result.people}; roles +{result.roles_added} −{result.roles_removed}"
        )
        if not result.changed:
            out.print("nothing changed")


@org_app.command("show")
def org_show(
    village: Annotated[str | None, typer.Option(help="Only this village id.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the grid cells with their grid workers, and the people by role."""
    with handled():
        gf = _gridflow()
        with gf.transaction(write=False) as session:
            places = session.query(Place).filter(Place.active).order_by(Place.id).all()
            people = {p.id: p for p in session.query(Person).order_by(Person.id)}
            roles = session.query(RoleAssignment).order_by(RoleAssignment.person_id).all()
        by_person: dict[str, list[tuple[str, str]]] = {}
        for r in roles:
            by_person.setdefault(r.person_id, []).append((r.role, r.place_id))
        grids = [p for p in places if p.kind == "grid" and (village is None or p.village_id == village)]
        if as_json:
            _emit_json(
                {
                    "places": [views.place_dict(p) for p in places if village is None or p.village_id == village],
                    "people": [views.person_dict(p, by_person.get(p.id, [])) for p in people.values()],
                }
            )
            return
        workers = {r.place_id: people[r.person_id].name for r in roles if r.role == "grid_worker"}
        names = {p.id: p.name for p in places}
        table = Table(title=f"单元格 grid cells ({len(grids)})", title_justify="left")
        for column in ("id", "名称 name", "村 village", "户数 households", "网格员 grid worker"):
            table.add_column(column)
        for g in grids:
            views.row(
                table, g.id, g.name, names.get(g.village_id or "", "—"), str(g.households or ""), workers.get(g.id, "—")
            )
        out.print(table)


# -- workflow -------------------------------------------------------------------------


@workflow_app.command("validate")
def workflow_validate(files: Annotated[list[Path], typer.Argument(help="Workflow YAML files.")]) -> None:
    """Validate workflow files; list every problem with file:line:column. Exit 1 if any is invalid."""
    failed = 0
    with handled():
        gf = _gridflow()
        gf.calendars  # noqa: B018 - a broken calendars file is reported before any workflow
    for file in files:
        try:
            loaded = gf.load_workflow(file)
        except WorkflowInvalid as exc:
            failed += 1
            err.print(f"[bold red]✗[/] {escape(str(file))}: {len(exc.problems)} problem(s)", highlight=False)
            for problem in exc.problems:
                err.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
            continue
        d = loaded.definition
        out.print(
            f"[bold green]✓[/] {escape(str(file))}: {d.name} {escape(d.title)} — {len(d.states)} states, "
            f"{len(d.triggers)} triggers",
            highlight=False,
        )
    if failed:
        raise typer.Exit(1)


@workflow_app.command("publish")
def workflow_publish(file: Annotated[Path, typer.Argument(help="Workflow YAML file.")]) -> None:
    """Publish a workflow file as a new version (cases already open stay on their version)."""
    with handled():
        result = _gridflow().publish_workflow(file)
        row = result.row
        if result.created:
            out.print(f"published {row.name} v{row.version} ({row.title}); new cases use it", markup=False)
        else:
            out.print(f"unchanged: {row.name} v{row.version} already has this exact text", markup=False)


@workflow_app.command("list")
def workflow_list(as_json: JsonOpt = False) -> None:
    """List published workflow versions."""
    with handled():
        gf = _gridflow()
        with gf.transaction(write=False) as session:
            rows = workflow_repo.list_versions(session)
            data = [
                {
                    "name": r.name,
                    "version": r.version,
                    "title": r.title,
                    "published_at": views.iso(r.published_at),
                    "source_hash": r.source_hash[:12],
                }
                for r in rows
            ]
            published = [views.local_text(r.published_at, gf.tz) for r in rows]
        if as_json:
            _emit_json(data)
            return
        table = Table(title="流程版本 workflow versions", title_justify="left")
        for column in ("name", "version", "标题 title", "发布 published", "hash"):
            table.add_column(column, no_wrap=column != "标题 title", overflow="fold")
        for d, when in zip(data, published, strict=True):
            views.row(table, d["name"], str(d["version"]), d["title"], when, d["source_hash"])
        out.print(table)


def _definition(name: str, version: int | None) -> tuple[Any, Any]:
    """A published version by name, or a file's definition when NAME is a path to YAML."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.exists():
            raise ConfigError(f"file not found: {name}; pass a workflow file, or the NAME of a published workflow")
        return None, _gridflow().load_workflow(path).definition
    gf = _gridflow()
    with gf.transaction(write=False) as session:
        row = workflow_repo.get_version(session, name, version)
        return row, workflow_repo.compiled(session, row.id).definition


@workflow_app.command("show")
def workflow_show(
    name: Annotated[str, typer.Argument(help="Workflow name (or a YAML file).")],
    version: Annotated[int | None, typer.Option(help="Version (default: latest).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a workflow's states and triggers."""
    with handled():
        row, d = _definition(name, version)
        if as_json:
            _emit_json(views.workflow_summary(row, d) if row else d.to_dict())
            return
        if row is not None:
            when = views.local_text(row.published_at, _gridflow().tz)
            out.print(f"[bold]{escape(d.title)}[/] {row.name} v{row.version}, published {when}")
        out.print(views.states_table(d))
        out.print(views.triggers_table(d))


@workflow_app.command("graph")
def workflow_graph(
    name: Annotated[str, typer.Argument(help="Workflow name (or a YAML file).")],
    version: Annotated[int | None, typer.Option(help="Version (default: latest).")] = None,
) -> None:
    """Print the workflow as a mermaid state diagram."""
    with handled():
        _, d = _definition(name, version)
        sys.stdout.write(mermaid(d))


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
        fields: dict[str, Any] = {"title": title, **_fields(field)}
        if description is not None:
            fields["description"] = description
        gf = _gridflow()
        when = _past(gf, at, entered_by)
        result = gf.report(
            grid_id=grid, actor_id=actor, fields=fields, workflow=workflow, at=when, entered_by=entered_by
        )
        _show_case(gf, result.case.code, as_json)
        if when is not None and not as_json:
            out.print(f"{result.case.code}: {_backfill_note(gf, result.event)}", markup=False)
        _wrote(gf, as_json)


def _backfill_note(gf: Gridflow, event: Any) -> str:
    """A backfilled step in one phrase: when it happened, when and by whom it was typed in."""
    by = f" by {event.entered_by}" if event.entered_by else ""
    typed = views.local_text(event.received_at, gf.tz) if event.received_at else ""
    return f"补录 backfilled: happened {views.local_text(event.at, gf.tz)}, typed in {typed}{by}"


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
        gf = _gridflow()
        when = _past(gf, at, entered_by)
        result = gf.fire(
            case,
            trigger,
            actor_id=actor,
            fields=_fields(field),
            expected_version=expect_version,
            at=when,
            entered_by=entered_by,
        )
        if as_json or show:
            _show_case(gf, result.case.code, as_json)
        if not as_json:
            e = result.event
            backfilled = f", {_backfill_note(gf, e)}" if when is not None else ""
            out.print(
                f"{result.case.code}: {trigger} {e.from_state} → {e.to_state} (version {result.case.version}{backfilled})",
                markup=False,
            )
        _wrote(gf, as_json)


def _past(gf: Gridflow, at: str | None, entered_by: str | None) -> Any:
    """``--at`` of a step: a past time (the future is refused by the application), or None for now."""
    if at is None:
        if entered_by is not None:
            raise typer.BadParameter("--entered-by goes with --at (a step typed in later)")
        return None
    return parse_at(at, gf.tz, gf.clock())


def _wrote(gf: Gridflow, as_json: bool) -> None:
    """Say which database a write went to: a clerk who forgot the production settings sees it at once."""
    if not as_json:
        out.print(f"[dim]数据库 database  {escape(gf.database_label)}[/]", highlight=False, soft_wrap=True)


def _show_case(gf: Gridflow, ref: str, as_json: bool) -> None:
    with gf.transaction(write=False) as session:
        case = cases.get_case(session, ref)
        flow = workflow_repo.compiled(session, case.workflow_id)
        allowed = flow.allowed(case.status)
        if as_json:
            _emit_json(views.case_dict(case, flow.definition, allowed))
            return
        table = Table(show_header=False, box=None, padding=(0, 2))
        for label, value in views.case_panel_rows(case, flow.definition, allowed, gf.tz):
            views.row(table, label, value)
        out.print(table)


@case_app.command("show")
def case_show(case: Annotated[str, typer.Argument(help="Case code or id.")], as_json: JsonOpt = False) -> None:
    """Show one case and what can be done with it now."""
    with handled():
        _show_case(_gridflow(), case, as_json)


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
        gf = _gridflow()
        with gf.transaction(write=False) as session:
            rows = cases.list_cases(
                session, status=status, grid_id=grid, person_id=person, open_only=open_only, limit=limit
            )
            pairs = [(c, workflow_repo.compiled(session, c.workflow_id).definition) for c in rows]
            if as_json:
                _emit_json([views.case_dict(c, d) for c, d in pairs])
                return
            out.print(views.cases_table(pairs, gf.tz))


@case_app.command("history")
def case_history(case: Annotated[str, typer.Argument(help="Case code or id.")], as_json: JsonOpt = False) -> None:
    """The audit trail of a case: every step, who, when, from → to."""
    with handled():
        gf = _gridflow()
        with gf.transaction(write=False) as session:
            found = cases.get_case(session, case)
            d = workflow_repo.compiled(session, found.workflow_id).definition
            events = cases.history(session, found)
            if as_json:
                _emit_json([views.event_dict(e, d) for e in events])
                return
            out.print(views.history_table(found, events, d, gf.tz))


if __name__ == "__main__":
    main()


# -- sla ----------------------------------------------------------------------------------


@sla_app.command("due")
def sla_due(
    at: AtOpt = None,
    within: Annotated[str, typer.Option(help="Also what falls due within this wall time, e.g. 8h, 2d.")] = "0m",
    as_json: JsonOpt = False,
) -> None:
    """What is overdue (or due soon), by grid."""
    with handled():
        gf = _gridflow()
        when = parse_at(at, gf.tz, gf.clock())
        ahead = _wall(within)
        with gf.transaction(write=False) as session:
            items = sla_views.due_clocks(session, when, ahead)
        if as_json:
            _emit_json(items)
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
        gf = _gridflow()
        now = gf.clock()
        when = parse_at(at, gf.tz, now)
        if dry_run:
            _sweep_plan(gf, when, as_json)
            return
        report = gf.sweep(not_after_now(when, now, gf.tz))
        if as_json:
            _emit_json(
                {
                    "at": views.iso(when),
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
            f"sweep at {views.local_text(when, gf.tz)}: {len(report.fired)} fired, {report.stale} stale "
            f"(their clock had moved on), {report.retried} left for the next sweep",
            markup=False,
        )
        _wrote(gf, as_json)


def _sweep_plan(gf: Gridflow, when: Any, as_json: bool) -> None:
    """``sla sweep --dry-run``: what would fire at ``when``; nothing is written."""
    from engine import sweep

    with gf.transaction(write=False) as session:
        items = sweep.plan(session, when)
    if as_json:
        _emit_json(
            {
                "at": views.iso(when),
                "dry_run": True,
                "would_fire": [{**i, "fire_at": views.iso(i["fire_at"])} for i in items],
            }
        )
        return
    out.print(sla_views.plan_table(items, gf.tz))
    live = sum(1 for i in items if not i["stale"])
    out.print(
        f"dry run at {views.local_text(when, gf.tz)}: {live} would fire, {len(items) - live} stale; nothing was written",
        markup=False,
    )


@sla_app.command("explain")
def sla_explain(case: Annotated[str, typer.Argument(help="Case code or id.")], as_json: JsonOpt = False) -> None:
    """Every clock of a case: started, paused, resumed, extended, stopped; deadlines and timers, with reasons."""
    with handled():
        gf = _gridflow()
        with gf.transaction(write=False) as session:
            found = cases.get_case(session, case)
            clocks = sla_views.timeline(session, found.id)
        if as_json:
            _emit_json({"case": found.code, "clocks": clocks})
            return
        if not clocks:
            out.print(f"{found.code} has no clocks (its workflow sets no time limits)", markup=False)
        for table in sla_views.timeline_tables(found.code, clocks, gf.tz):
            out.print(table)


# -- calendar ---------------------------------------------------------------------------------


@calendar_app.command("show")
def calendar_show(
    month: Annotated[str, typer.Argument(help="A month, e.g. 2026-02.")],
    name: Annotated[str, typer.Option("--calendar", help="Calendar name.")] = "township",
    as_json: JsonOpt = False,
) -> None:
    """A month with statutory holidays (休) and make-up working days (班) marked."""
    with handled():
        gf = _gridflow()
        try:
            year, number = sla_views.parse_month(month)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        cal = sla_views.calendar_named(gf.calendars, name)
        if as_json:
            _emit_json({"calendar": name, "month": month, "days": sla_views.month_days(cal, year, number)})
            return
        out.print(sla_views.month_table(cal, year, number))
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
        gf = _gridflow()
        if not start.strip():
            raise typer.BadParameter("give START, a local time like 2026-09-30T16:00")
        try:
            limit = parse_duration(duration)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        when = parse_at(start, gf.tz, gf.clock())
        cal = sla_views.calendar_named(gf.calendars, name)
        reckoning = sla_views.due_reckoning(cal, when, limit)
        if as_json:
            _emit_json(sla_views.due_dict(reckoning, cal, limit, gf.tz))
            return
        table = Table(show_header=False, box=None, padding=(0, 2))
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")
        for label, value in sla_views.due_summary(reckoning, cal, limit, gf.tz):
            views.row(table, label, value)
        out.print(table)
        out.print(sla_views.due_days_table(reckoning, cal))
        if not cal.always_open:
            out.print(sla_views.DAY_MARK_LEGEND, markup=False)


@calendar_app.command("check")
def calendar_check(as_json: JsonOpt = False) -> None:
    """Warn when next year's schedule is missing (from November on); fail when a deadline is unanswerable."""
    with handled():
        gf = _gridflow()
        today = gf.clock().astimezone(gf.tz).date()
        from engine.calendar import check_calendars

        warnings = check_calendars(gf.calendars, today)
        errors = [
            f"{name}: the years {today.year} and {today.year + 1} must be answerable"
            for name, cal in gf.calendars.items()
            if not (cal.knows_year(today.year) and cal.knows_year(today.year + 1))
        ]
        if not sqlite_missing(gf):
            with gf.transaction(write=False) as session:
                warnings += sla_views.estimated_deadlines(session)
                errors += sla_views.unanswerable_deadlines(session, gf.calendars)
        if as_json:
            _emit_json({"warnings": warnings, "errors": errors})
        else:
            for line in errors:
                err.print(f"[bold red]error:[/] {escape(line)}")
            for line in warnings:
                out.print(f"[yellow]warning:[/] {escape(line)}")
            if not warnings and not errors:
                out.print("calendars ok: " + ", ".join(sorted(gf.calendars)), markup=False)
        if errors:
            raise typer.Exit(1)


def sqlite_missing(gf: Gridflow) -> bool:
    from engine.store.db import sqlite_file_missing

    return sqlite_file_missing(gf.settings.db_url)


from gridflow import cli_archive, cli_demo, cli_notices, cli_points, cli_runtime, cli_scoring  # noqa: E402,F401 - registers archive, demo, up, jobs, notices, score
