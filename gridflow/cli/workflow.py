"""``gridflow workflow validate|publish|list|show|graph``: workflow definitions (流程定义)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from engine.errors import ConfigError, WorkflowInvalid
from engine.machine import mermaid
from engine.store import workflow_repo
from gridflow import present
from gridflow.cli import views
from gridflow.cli.common import (
    JsonOpt,
    emit_json,
    err,
    handled,
    open_gridflow,
    out,
)

app = typer.Typer()  # this module's commands; gridflow.cli.build merges them into the root
workflow_app = typer.Typer(help="流程定义 workflow definitions in YAML.", no_args_is_help=True)
app.add_typer(workflow_app, name="workflow")


# -- workflow -------------------------------------------------------------------------


@workflow_app.command("validate")
def workflow_validate(files: Annotated[list[Path], typer.Argument(help="Workflow YAML files.")]) -> None:
    """Validate workflow files; list every problem with file:line:column. Exit 1 if any is invalid."""
    failed = 0
    with handled():
        gf = open_gridflow()
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
        result = open_gridflow().publish_workflow(file)
        row = result.row
        if result.created:
            out.print(f"published {row.name} v{row.version} ({row.title}); new cases use it", markup=False)
        else:
            out.print(f"unchanged: {row.name} v{row.version} already has this exact text", markup=False)


@workflow_app.command("list")
def workflow_list(as_json: JsonOpt = False) -> None:
    """List published workflow versions."""
    with handled():
        gf = open_gridflow()
        with gf.transaction(write=False) as session:
            rows = workflow_repo.list_versions(session)
            data = [
                {
                    "name": r.name,
                    "version": r.version,
                    "title": r.title,
                    "published_at": present.iso(r.published_at),
                    "source_hash": r.source_hash[:12],
                }
                for r in rows
            ]
            published = [present.local_text(r.published_at, gf.tz) for r in rows]
        if as_json:
            emit_json(data)
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
        return None, open_gridflow().load_workflow(path).definition
    gf = open_gridflow()
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
            emit_json(present.workflow_summary(row, d) if row else d.to_dict())
            return
        if row is not None:
            when = present.local_text(row.published_at, open_gridflow().tz)
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
