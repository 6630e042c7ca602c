"""``gridflow org load|show``: the org chart (组织架构)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gridflow.cli import views
from gridflow.cli.common import (
    JsonOpt,
    emit_json,
    handled,
    open_gridflow,
    out,
)

app = typer.Typer()  # this module's commands; gridflow.cli.build merges them into the root
org_app = typer.Typer(help="组织架构 org chart: villages, grid cells, people and roles.", no_args_is_help=True)
app.add_typer(org_app, name="org")


# -- org ----------------------------------------------------------------------------


@org_app.command("load")
def org_load(file: Annotated[Path, typer.Argument(help="Org chart YAML, e.g. config/org/shengli.yaml")]) -> None:
    """Validate an org chart and load it (idempotent: places and people not in the file are deactivated)."""
    with handled():
        result = open_gridflow().load_org(file)
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
        gf = open_gridflow()
        if as_json:
            emit_json(gf.org_chart(village))
            return
        grids = gf.grid_cells(village)
        table = Table(title=f"单元格 grid cells ({len(grids)})", title_justify="left")
        for column in ("id", "名称 name", "村 village", "户数 households", "网格员 grid worker"):
            table.add_column(column)
        for g in grids:
            views.row(
                table, g["id"], g["name"], g["village"] or "—", str(g["households"] or ""), g["grid_worker"] or "—"
            )
        out.print(table)
