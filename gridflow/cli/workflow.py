"""``gridflow workflow validate|publish|list|show|graph``: workflow definitions (流程定义)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from engine.errors import ConfigError
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
        checked = gf.validate_workflow(file)
        if not checked["valid"]:
            failed += 1
            problems = checked["problems"]
            err.print(f"[bold red]✗[/] {escape(str(file))}: {len(problems)} problem(s)", highlight=False)
            for problem in problems:
                err.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
            continue
        out.print(
            f"[bold green]✓[/] {escape(str(file))}: {checked['name']} {escape(checked['title'])} — "
            f"{checked['states']} states, {checked['triggers']} triggers",
            highlight=False,
        )
    if failed:
        raise typer.Exit(1)


@workflow_app.command("publish")
def workflow_publish(file: Annotated[Path, typer.Argument(help="Workflow YAML file.")]) -> None:
    """Publish a workflow file as a new version (cases already open stay on their version)."""
    with handled():
        pub = open_gridflow().publish_workflow(file)
        if pub["created"]:
            out.print(f"published {pub['name']} v{pub['version']} ({pub['title']}); new cases use it", markup=False)
        else:
            out.print(f"unchanged: {pub['name']} v{pub['version']} already has this exact text", markup=False)


@workflow_app.command("list")
def workflow_list(as_json: JsonOpt = False) -> None:
    """List published workflow versions."""
    with handled():
        gf = open_gridflow()
        data = gf.list_workflows()
        if as_json:
            emit_json(data)
            return
        table = Table(title="流程版本 workflow versions", title_justify="left")
        for column in ("name", "version", "标题 title", "发布 published", "hash"):
            table.add_column(column, no_wrap=column != "标题 title", overflow="fold")
        for d in data:
            when = present.local_text(datetime.fromisoformat(d["published_at"]), gf.tz)
            views.row(table, d["name"], str(d["version"]), d["title"], when, d["source_hash"])
        out.print(table)


def _file(name: str) -> Path | None:
    """NAME as a path to a workflow file (it ends in .yaml or .yml), or None for a published workflow's name."""
    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        return None
    if not path.exists():
        raise ConfigError(f"file not found: {name}; pass a workflow file, or the NAME of a published workflow")
    return path


def _summary(definition: dict[str, Any]) -> dict[str, Any]:
    """A file's definition (``WorkflowDef.to_dict()``) with its states and triggers listed as
    :meth:`Gridflow.show_workflow` lists a published one's."""
    triggers = [
        {**t, "from": t["sources"], "to": t["dest"], "fields": t["required"]} for t in definition["triggers"].values()
    ]
    return {**definition, "states": list(definition["states"].values()), "triggers": triggers}


@workflow_app.command("show")
def workflow_show(
    name: Annotated[str, typer.Argument(help="Workflow name (or a YAML file).")],
    version: Annotated[int | None, typer.Option(help="Version (default: latest).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a workflow's states and triggers."""
    with handled():
        file = _file(name)
        gf = open_gridflow()
        if file is not None:
            definition = gf.read_workflow_file(file)
            if as_json:
                emit_json(definition)
                return
            shown = _summary(definition)
        else:
            shown = gf.show_workflow(name, version)
            if as_json:
                emit_json(shown)
                return
            when = present.local_text(datetime.fromisoformat(shown["published_at"]), gf.tz)
            out.print(f"[bold]{escape(shown['title'])}[/] {shown['name']} v{shown['version']}, published {when}")
        out.print(views.states_table(shown))
        out.print(views.triggers_table(shown["triggers"]))


@workflow_app.command("graph")
def workflow_graph(
    name: Annotated[str, typer.Argument(help="Workflow name (or a YAML file).")],
    version: Annotated[int | None, typer.Option(help="Version (default: latest).")] = None,
) -> None:
    """Print the workflow as a mermaid state diagram."""
    with handled():
        file = _file(name)
        gf = open_gridflow()
        sys.stdout.write(gf.workflow_file_graph(file) if file is not None else gf.workflow_graph(name, version))
