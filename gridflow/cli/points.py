"""CLI commands of the household points (户档积分): ``points record|approve|correct|list|balance|redeem|
reverse|households`` and ``points store load|restock|report``. Registered by :mod:`gridflow.cli`.

What a person types is checked by the application (texts, numbers, the dating window); what a table shows
from the ledger goes through :func:`gridflow.cli.views.row`, which writes out control characters."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from engine.errors import InputError
from gridflow.app import Gridflow, parse_at
from gridflow.cli import views
from gridflow.cli.common import emit_json, handled, open_gridflow, out

app = typer.Typer()  # this module's commands; gridflow.cli.build merges them into the root

points_app = typer.Typer(help="户档积分 household points: record, approve, correct, redeem.", no_args_is_help=True)
store_app = typer.Typer(help="积分超市 the points store: goods, restocking, the stock report.", no_args_is_help=True)
points_app.add_typer(store_app, name="store")
app.add_typer(points_app, name="points")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
AtOpt = Annotated[str | None, typer.Option("--at", help="As if it were this time (local ISO, not in the future).")]
ActorOpt = Annotated[str, typer.Option("--actor", "-a", help="Person id of who acts, e.g. p-an-yixuan.")]
KIND_LABELS = {"award": "加分", "deduct": "扣分", "correct": "更正", "redeem": "兑换", "refund": "撤销兑换"}


def _day(text: str | None) -> date | None:
    """``--on``: a date like 2026-11-27, or None (the day of ``--at``)."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"bad date {text!r}: write it like 2026-11-27") from exc


def _at(gf: Gridflow, text: str | None) -> datetime | None:
    """``--at`` of a write, or None for now (the application refuses a time in the future)."""
    return parse_at(text, gf.tz, gf.clock()) if text else None


@points_app.command("record")
def points_record(
    household: Annotated[str, typer.Argument(help="户号, e.g. MYT-01-0012.")],
    rule: Annotated[str, typer.Argument(help="A rule of config/points.yaml, e.g. filial_piety.")],
    actor: ActorOpt,
    on: Annotated[str | None, typer.Option("--on", help="The day of the deed (default today).")] = None,
    evidence: Annotated[str | None, typer.Option("--evidence", "-e", help="What happened, who saw it.")] = None,
    case: Annotated[str | None, typer.Option("--case", help="A case code this entry belongs to.")] = None,
    key: Annotated[str | None, typer.Option("--key", help="The form's id: the same key records once.")] = None,
    at: AtOpt = None,
) -> None:
    """Record points for a household (日记录); a rule that needs approval waits for a second person."""
    with handled():
        gf = open_gridflow()
        when = _at(gf, at)
        done = gf.record_points(
            household, rule, actor=actor, on=_day(on), evidence=evidence, case=case, key=key, at=when
        )
        entry = done["entry"]
        if not done["created"]:
            out.print(f"already recorded as entry #{entry['id']} (the same form); nothing added", markup=False)
            return
        state = "待审核 pending approval" if done["pending"] else f"余额 balance {done['balance']}"
        out.print(f"entry #{entry['id']}: {household} {done['label']} {entry['points']:+d} 分  ({state})", markup=False)


@points_app.command("approve")
def points_approve(
    entry: Annotated[int, typer.Argument(help="The entry's number.")],
    actor: ActorOpt,
    reject: Annotated[bool, typer.Option("--reject", help="Reject instead of approving.")] = False,
    note: Annotated[str | None, typer.Option("--note", help="Why.")] = None,
    at: AtOpt = None,
) -> None:
    """A second person approves (or rejects) an entry whose rule needs it."""
    with handled():
        gf = open_gridflow()
        done = gf.approve_points(entry, actor=actor, approved=not reject, note=note, at=_at(gf, at))
        decided = done["entry"]
        verb = "rejected" if reject else f"approved: {decided['points']:+d} 分 count for {decided['household']}"
        out.print(f"entry #{entry} {verb} (balance {done['balance']})", markup=False)


@points_app.command("correct")
def points_correct(
    entry: Annotated[int, typer.Argument(help="The mistaken entry's number.")],
    actor: ActorOpt,
    reason: Annotated[str, typer.Option("--reason", help="Why it was wrong.")],
    at: AtOpt = None,
) -> None:
    """Correct a mistaken entry with a reversing entry (the ledger is never edited)."""
    with handled():
        gf = open_gridflow()
        done = gf.correct_points(entry, actor=actor, reason=reason, at=_at(gf, at))
        reversing = done["entry"]
        out.print(
            f"entry #{reversing['id']} reverses #{entry} ({reversing['points']:+d} 分); balance {done['balance']}",
            markup=False,
        )


@points_app.command("list")
def points_list(
    household: Annotated[str | None, typer.Option("--household", "-H", help="Only this household.")] = None,
    pending: Annotated[bool, typer.Option("--pending", help="Only entries waiting for approval.")] = False,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Ledger entries, newest first."""
    with handled():
        rows = open_gridflow().list_points(household=household, pending=pending, limit=limit)
        if as_json:
            emit_json(rows)
            return
        table = Table(title="积分台账 points ledger", title_justify="left")
        for col in ("#", "户 household", "类 kind", "规则 rule", "分", "日期 on", "记录 by", "状态", "说明 evidence"):
            table.add_column(col, overflow="fold")
        for r in rows:
            status = (
                ("待审核" if r["approval"] is None else ("已通过" if r["approval"]["approved"] else "未通过"))
                if r["needs_approval"]
                else ""
            )
            views.row(
                table,
                str(r["id"]),
                r["household"],
                KIND_LABELS.get(r["kind"], r["kind"]),
                r["rule"] or "",
                f"{r['points']:+d}",
                r["on"],
                r["by"],
                status,
                r["evidence"] or "",
            )
        out.print(table)


@points_app.command("balance")
def points_balance(
    household: Annotated[str, typer.Argument(help="户号.")],
    as_json: JsonOpt = False,
) -> None:
    """A household's redeemable balance: earned − redeemed + refunded."""
    with handled():
        data = open_gridflow().points_balance(household)
        if as_json:
            emit_json(data)
            return
        out.print(
            f"{household} {escape(data['head'])}户  余额 balance [bold]{data['balance']}[/] 分 = 获得 earned "
            f"{data['earned']} − 兑换 redeemed {data['redeemed']} + 撤销 refunded {data['refunded']}"
        )


@points_app.command("redeem")
def points_redeem(
    household: Annotated[str, typer.Argument(help="户号.")],
    items: Annotated[list[str], typer.Argument(help="Goods as code=quantity, e.g. salt=2 soy_sauce=1.")],
    actor: ActorOpt,
    key: Annotated[str | None, typer.Option("--key", help="The till's id for this visit: redeems once.")] = None,
    at: AtOpt = None,
) -> None:
    """Take goods from the village's points store for points, and print the receipt (兑换凭证)."""
    with handled():
        gf = open_gridflow()
        done = gf.redeem_points(household, items, actor=actor, key=key, at=_at(gf, at))
        if not done["created"]:
            out.print(
                f"already redeemed as #{done['redemption']['id']} (the same key); nothing taken again", markup=False
            )
        for line in done["receipt"]:
            out.print(line, markup=False)


@points_app.command("reverse")
def points_reverse(
    redemption: Annotated[int, typer.Argument(help="The redemption's number (on the receipt).")],
    actor: ActorOpt,
    reason: Annotated[str, typer.Option("--reason", help="Why.")],
    at: AtOpt = None,
) -> None:
    """Reverse a redemption: the goods go back on the shelf, the points back to the household."""
    with handled():
        gf = open_gridflow()
        done = gf.reverse_redemption(redemption, actor=actor, reason=reason, at=_at(gf, at))
        undone = done["redemption"]
        out.print(
            f"redemption #{redemption} reversed: {undone['total']} 分 back to {undone['household']} (balance "
            f"{done['balance']}); goods back on the shelf",
            markup=False,
        )


@points_app.command("households")
def points_households(
    period: Annotated[str, typer.Option("--period", "-p", help="A scored month, quarter or year.")],
    village: Annotated[str | None, typer.Option("--village", help="Only this village.")] = None,
    limit: Annotated[int, typer.Option(help="Rows per village.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """The households' period: points, ranks, stars, red and black list (from `gridflow score run`)."""
    with handled():
        data = open_gridflow().households_period(period, village=village)
        if as_json:
            emit_json(data)
            return
        table = Table(title=f"{period} 户积分 households", title_justify="left")
        for col in ("村", "村内名次", "全乡名次", "户号", "户主", "本期", "加分", "扣分", "累计", "星级", "榜"):
            table.add_column(col, overflow="fold")
        shown: dict[str, int] = {}
        for d in data:
            if shown.get(d["village"], 0) >= limit and not d["listed"]:
                continue
            shown[d["village"]] = shown.get(d["village"], 0) + 1
            table.add_row(
                d["village"],
                str(d["rank_village"]),
                str(d["rank_township"]),
                d["household"],
                escape(d["head"] or ""),
                str(d["points"]),
                str(d["awarded"]),
                str(d["deducted"]),
                str(d["total"]),
                escape("、".join(d["stars"])),
                {"red": "[red]红榜[/]", "black": "[bold]黑榜[/]"}.get(d["listed"] or "", ""),
            )
        out.print(table)


# -- the store ---------------------------------------------------------------------------------------


@store_app.command("load")
def store_load(file: Annotated[Path, typer.Argument(help="Goods per village store (config/store.yaml).")]) -> None:
    """Add goods and update names and prices (stock is set only for new goods)."""
    with handled():
        counts = open_gridflow().load_store_goods(file)
        out.print(f"goods: {counts['added']} added, {counts['updated']} updated", markup=False)


@store_app.command("restock")
def store_restock(
    village: Annotated[str, typer.Argument(help="The village (its store).")],
    item: Annotated[str, typer.Argument(help="The good's code, e.g. salt.")],
    quantity: Annotated[int, typer.Argument(help="How many were put on the shelf.")],
    actor: ActorOpt,
) -> None:
    """Put goods on a store's shelf."""
    with handled():
        good = open_gridflow().restock(village, item, quantity, actor=actor)
        out.print(f"{village} {good['name']}: {good['stock']} {good['unit']} on the shelf", markup=False)


@store_app.command("report")
def store_report(
    village: Annotated[str | None, typer.Option("--village", help="Only this village's store.")] = None,
    month: Annotated[
        str | None, typer.Option("--month", help="Redemptions of this month (default this month).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Stock on the shelf and what was redeemed in a month, per store."""
    with handled():
        report = open_gridflow().stock_report(village=village, month=month)
        if as_json:
            emit_json(report)
            return
        rows = report["goods"]
        table = Table(
            title=f"积分超市库存 stock report {report['period']} ({report['redemptions']} redemptions)",
            title_justify="left",
        )
        for col in ("村 store", "商品", "单位", "积分价", "库存", "本月兑换", "兑换积分"):
            table.add_column(col)
        for r in rows:
            low = " [red](low)[/]" if r["stock"] < 10 else ""
            table.add_row(
                r["village"],
                escape(r["name"]),
                r["unit"],
                str(r["price"]),
                f"{r['stock']}{low}",
                str(r["redeemed"]),
                str(r["points"]),
            )
        out.print(table)
