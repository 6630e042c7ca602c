"""``gridflow init``: create or upgrade the database, load the org chart, publish the workflows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gridflow.app import Gridflow
from gridflow.cli import views
from gridflow.cli.common import (
    handled,
    open_gridflow,
    out,
)

app = typer.Typer()  # this module's commands; gridflow.cli.build merges them into the root


# -- init ----------------------------------------------------------------------------


@app.command()
def init(
    org: Annotated[Path | None, typer.Option(help="Org chart YAML (default: settings.org_file).")] = None,
    workflow: Annotated[list[Path] | None, typer.Option(help="Workflow YAML to publish; repeatable.")] = None,
) -> None:
    """Create or upgrade the database, load the org chart, publish the workflows. Safe to run again."""
    with handled():
        gf = open_gridflow()
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
            verb = "published" if pub["created"] else "unchanged"
            out.print(f"[bold]流程 workflow[/]  {pub['name']} v{pub['version']} {escape(pub['title'])} ({verb})")
        out.print("[bold]现有 now[/]  " + ", ".join(f"{v} {k}" for k, v in report.counts.items()))
        _where(gf)
        out.print(NEXT_STEPS, highlight=False, soft_wrap=True)
        _warn_exposed(gf)  # last, where it is seen


NEXT_STEPS = """[bold]next[/]
  .venv/bin/gridflow workflow graph grid_case          # the default workflow as a mermaid diagram
  .venv/bin/gridflow case report -g mayingtai-01 -a p-an-yixuan -t "马营台村1社水管破裂"
  .venv/bin/gridflow case fire SL-2026-000001 classify -a p-chen-jia -f category=water_supply -f priority=urgent
  .venv/bin/gridflow case list
  .venv/bin/gridflow up                                  # run it: deadlines fire, notices go out (Ctrl-C stops)
  .venv/bin/gridflow notices list
  .venv/bin/gridflow --help"""


def _warn_exposed(gf: Gridflow) -> None:
    """A home (or a file of gridflow's) made before, or widened since, that other users can read: say which,
    and the ``chmod`` that closes it. Not an error: the operator decides (a group may be meant to read)."""
    found = gf.exposed_files()
    if not found:
        return
    shown = "; ".join(f"{f['path']} ({f['mode']})" for f in found[:MAX_EXPOSED_SHOWN])
    more = f"; and {len(found) - MAX_EXPOSED_SHOWN} more" if len(found) > MAX_EXPOSED_SHOWN else ""
    home = gf.settings.home
    outside = sorted({f["path"] for f in found if not Path(f["path"]).is_relative_to(home)})
    fix = f"chmod -R go-rwx {home}" + "".join(f" && chmod go-rwx {p}" for p in outside)
    out.print(
        f"[yellow]warning:[/] 家目录可被其他用户读取 the home can be read by other users of this machine "
        f"(residents' ID numbers and phones are in the database): {escape(shown)}{more}. "
        f"gridflow creates its files 0600 and directories 0700; close these with: {escape(fix)}",
        highlight=False,
        soft_wrap=True,
    )


MAX_EXPOSED_SHOWN = 8


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
