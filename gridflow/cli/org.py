"""``gridflow org load|show``: the org chart (组织架构)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from engine.store.models import Person, Place, RoleAssignment
from gridflow import present
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
        with gf.transaction(write=False) as session:
            places = session.query(Place).filter(Place.active).order_by(Place.id).all()
            people = {p.id: p for p in session.query(Person).order_by(Person.id)}
            roles = session.query(RoleAssignment).order_by(RoleAssignment.person_id).all()
        by_person: dict[str, list[tuple[str, str]]] = {}
        for r in roles:
            by_person.setdefault(r.person_id, []).append((r.role, r.place_id))
        grids = [p for p in places if p.kind == "grid" and (village is None or p.village_id == village)]
        if as_json:
            emit_json(
                {
                    "places": [present.place_dict(p) for p in places if village is None or p.village_id == village],
                    "people": [present.person_dict(p, by_person.get(p.id, [])) for p in people.values()],
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
