"""CLI commands of the household archive (户档): ``archive import|list|show``. Registered by :mod:`gridflow.cli`.

ID numbers and phones are shown masked (510000********123X, 138****0011); ``show --full`` prints
them whole only where the setting ``archive_show_full`` allows it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, or_, select

from engine.archive.load import Archive, load_archive
from engine.archive.mask import mask_id_number, mask_phone
from engine.archive.store import ArchiveImport, HouseholdNotFound, apply_archive, known_places
from engine.errors import NotFound, PermissionDenied
from engine.store.models import Household, Place, Resident
from gridflow import present
from gridflow.app import Gridflow
from gridflow.cli import views
from gridflow.cli.common import emit_json, handled, open_gridflow, out

app = typer.Typer()  # this module's commands; gridflow.cli.build merges them into the root

archive_app = typer.Typer(
    help="户档 household archive: households and residents, imported from CSV or YAML.", no_args_is_help=True
)
app.add_typer(archive_app, name="archive")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


# -- import ------------------------------------------------------------------------------------


@archive_app.command("import")
def archive_import(
    file: Annotated[Path, typer.Argument(help="Archive CSV or YAML, e.g. config/archive/shengli.csv")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the file only; write nothing.")] = False,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Only when the archive has no household yet (first setup).")
    ] = False,
) -> None:
    """Check a household archive against the org chart and import it (idempotent; any problem: nothing changes)."""
    with handled():
        gf = open_gridflow()
        year = gf.clock().astimezone(gf.tz).year
        with gf.transaction(write=not dry_run) as session:
            if if_empty and (held := session.scalar(select(func.count()).select_from(Household))):
                out.print(f"the archive holds {held} households already; {file} left alone", markup=False)
                return
            archive = load_archive(file, known_places(session), year)
            if dry_run:
                out.print(f"{_summary(archive)}: valid; nothing written (--dry-run)", markup=False, soft_wrap=True)
                return
            with _progress() as progress:
                task = progress.add_task("importing", total=len(archive.households))
                result = apply_archive(session, archive, gf.clock(), lambda n: progress.advance(task, n))
        _report(archive, result)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("households"),
        TimeElapsedColumn(),
        console=out,
        transient=True,
        disable=not out.is_terminal,
    )


def _summary(archive: Archive) -> str:
    return (
        f"{archive.source}: {len(archive.households)} households, {archive.residents} residents "
        f"in {len(archive.villages)} village(s)"
    )


def _report(archive: Archive, result: ArchiveImport) -> None:
    out.print(_summary(archive), markup=False, soft_wrap=True)
    out.print(f"户 households  {result.households}", markup=False, soft_wrap=True)
    out.print(f"人 residents   {result.residents}", markup=False, soft_wrap=True)
    if result.balances_added:
        out.print(f"积分账户 balances  {result.balances_added} opened at 0", markup=False, soft_wrap=True)
    if not result.changed:
        out.print("nothing changed", markup=False, soft_wrap=True)


# -- list --------------------------------------------------------------------------------------


@archive_app.command("list")
def archive_list(
    village: Annotated[str | None, typer.Option("--village", help="Only this village (id or name).")] = None,
    grid: Annotated[str | None, typer.Option("--grid", help="Only this grid cell (id).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="How many, by household id; 0 for all.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Households with their head (户主) and number of members."""
    with handled():
        gf = open_gridflow()
        with gf.transaction(write=False) as session:
            where = _filters(session, village, grid)
            total = session.scalar(select(func.count()).select_from(Household).where(*where)) or 0
            stmt = select(Household).where(*where).order_by(Household.id)
            rows = list(session.scalars(stmt.limit(limit) if limit else stmt))
            names = dict(session.execute(select(Place.id, Place.name)).all())
        data = [_household_dict(h, names) for h in rows]
        if as_json:
            emit_json({"households": data, "total": total})
            return
        table = Table(title=f"户档 households ({len(data)} of {total})", title_justify="left")
        table.add_column("户号 household", no_wrap=True)
        for column in ("村 village", "社 group"):
            table.add_column(column)
        table.add_column("网格 grid", no_wrap=True)
        table.add_column("户主 head")
        table.add_column("人数", justify="right")
        table.add_column("地址 address", overflow="ellipsis", no_wrap=True)
        for d in data:
            views.row(
                table, d["id"], d["village"], d["group"], d["grid"], d["head"], str(d["members"]), d["address"] or "—"
            )
        out.print(table)
        if len(data) < total:
            out.print(
                f"{total - len(data)} more: --limit 0 lists all; --village or --grid narrows",
                markup=False,
                soft_wrap=True,
            )


def _filters(session: Any, village: str | None, grid: str | None) -> list[Any]:
    where: list[Any] = [Household.active]
    if village is not None:
        found = session.scalar(
            select(Place.id).where(Place.kind == "village", or_(Place.id == village, Place.name == village))
        )
        if found is None:
            raise NotFound(f"no village {village!r}; `gridflow org show` lists them")
        where.append(Household.village_id == found)
    if grid is not None:
        if session.get(Place, grid) is None:
            raise NotFound(f"no grid cell {grid!r}; `gridflow org show` lists them")
        where.append(Household.grid_id == grid)
    return where


def _household_dict(h: Household, names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": h.id,
        "village_id": h.village_id,
        "village": names.get(h.village_id, h.village_id),
        "group_id": h.group_id,
        "group": names.get(h.group_id or "", h.group_id),
        "grid": h.grid_id,
        "head": h.head_name,
        "members": h.members,
        "address": h.address,
        "active": h.active,
        "updated_at": present.iso(h.updated_at),
    }


# -- show --------------------------------------------------------------------------------------


@archive_app.command("show")
def archive_show(
    household: Annotated[str, typer.Argument(help="Household id (户号), e.g. MYT-1-0001.")],
    full: Annotated[
        bool, typer.Option("--full", help="Whole ID numbers and phones (needs the setting archive_show_full).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """One household and its members; ID numbers and phones masked unless --full is allowed."""
    with handled():
        gf = open_gridflow()
        if full and not gf.settings.archive_show_full:
            raise PermissionDenied(
                "--full is off: the setting archive_show_full is false, so ID numbers and phones are shown "
                "masked only; an administrator may set GRIDFLOW_ARCHIVE_SHOW_FULL=true "
                "(or archive_show_full: true in config/gridflow.yaml)"
            )
        data, updated_at = _household_with_members(gf, household, full)
        if as_json:
            emit_json(data)
            return
        _print_household(data, present.local_text(updated_at, gf.tz))


def _household_with_members(gf: Gridflow, ident: str, full: bool) -> tuple[dict[str, Any], datetime]:
    with gf.transaction(write=False) as session:
        row = session.get(Household, ident)
        if row is None:
            raise HouseholdNotFound(f"no household {ident!r}; `gridflow archive list` lists them")
        names = dict(session.execute(select(Place.id, Place.name)).all())
        residents = list(
            session.scalars(
                select(Resident).where(Resident.household_id == ident).order_by(Resident.active.desc(), Resident.id)
            )
        )
    data = _household_dict(row, names)
    data["residents"] = [_resident_dict(r, full) for r in residents]
    data["masked"] = not full
    return data, row.updated_at


def _resident_dict(r: Resident, full: bool) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "relation": r.relation,
        "gender": r.gender,
        "birth_year": r.birth_year,
        "id_number": r.id_number if full else mask_id_number(r.id_number),
        "phone": r.phone if full else mask_phone(r.phone),
        "active": r.active,
    }


def _print_household(data: dict[str, Any], updated: str) -> None:
    panel = Table(show_header=False, box=None, padding=(0, 2))
    for label, value in (
        ("户号 household", data["id"]),
        ("村 village", f"{data['village']} ({data['village_id']})"),
        ("社 group", data["group"] or "—"),
        ("网格 grid", data["grid"] or "—"),
        ("户主 head", data["head"]),
        ("人数 members", data["members"]),
        ("地址 address", data["address"] or "—"),
        ("更新 updated", updated),
    ):
        views.row(panel, label, value)
    out.print(panel)
    table = Table("姓名 name", "关系", "性别", "出生 born")
    table.add_column("身份证号 ID number", no_wrap=True)
    table.add_column("电话 phone", no_wrap=True)
    table.add_column("状态")
    for r in data["residents"]:
        state = "在册" if r["active"] else "注销 inactive"
        views.row(
            table,
            r["name"],
            r["relation"],
            r["gender"] or "—",
            r["birth_year"] or "—",
            r["id_number"] or "—",
            r["phone"] or "—",
            state,
            style=None if r["active"] else "dim",
        )
    out.print(table)
    if data["masked"]:
        out.print("ID numbers and phones masked; --full shows them where archive_show_full allows", style="dim")
    else:
        out.print(f"[bold yellow]full ID numbers and phones shown[/] for {escape(data['id'])}")
