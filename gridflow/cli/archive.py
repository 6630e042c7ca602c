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
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from gridflow import present
from gridflow.app.points import ArchiveReport
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
        bar = _Bar()
        try:
            report = gf.import_archive(file, dry_run=dry_run, if_empty=if_empty, on_progress=bar)
        finally:
            bar.stop()
        if report.held:
            out.print(f"the archive holds {report.held} households already; {file} left alone", markup=False)
        elif not report.written:
            out.print(f"{_summary(report)}: valid; nothing written (--dry-run)", markup=False, soft_wrap=True)
        else:
            _report(report)


class _Bar:
    """The import's progress bar, shown from the first household written (on a terminal only)."""

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def __call__(self, written: int, total: int) -> None:
        if self.progress is None:
            self.progress = Progress(
                TextColumn("[bold]{task.description}[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("households"),
                TimeElapsedColumn(),
                console=out,
                transient=True,
                disable=not out.is_terminal,
            )
            self.progress.start()
            self.task = self.progress.add_task("importing", total=total)
        assert self.task is not None
        self.progress.advance(self.task, written)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _summary(report: ArchiveReport) -> str:
    return (
        f"{report.source}: {report.households} households, {report.residents} residents in {report.villages} village(s)"
    )


def _counts(changes: dict[str, int]) -> str:
    return f"{changes['added']} added, {changes['updated']} updated, {changes['deactivated']} deactivated"


def _report(report: ArchiveReport) -> None:
    out.print(_summary(report), markup=False, soft_wrap=True)
    out.print(f"户 households  {_counts(report.changes['households'])}", markup=False, soft_wrap=True)
    out.print(f"人 residents   {_counts(report.changes['residents'])}", markup=False, soft_wrap=True)
    if report.changes["balances_added"]:
        out.print(f"积分账户 balances  {report.changes['balances_added']} opened at 0", markup=False, soft_wrap=True)
    if not report.changed:
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
        found = open_gridflow().list_households(village=village, grid=grid, limit=limit)
        if as_json:
            emit_json(found)
            return
        data, total = found["households"], found["total"]
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
        data = gf.show_household(household, full=full)
        if as_json:
            emit_json(data)
            return
        updated = data["updated_at"]
        _print_household(data, present.local_text(datetime.fromisoformat(updated) if updated else None, gf.tz))


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
