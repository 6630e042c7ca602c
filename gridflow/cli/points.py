"""CLI commands of the household points (户档积分): ``points record|approve|correct|list|balance|redeem|
reverse|households`` and ``points store load|restock|report``. Registered by :mod:`gridflow.cli`."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from engine.errors import InputError, NotFound
from engine.jobs import period_of
from engine.points import ledger, store
from engine.store.models import Household, Person, PointsApproval, Redemption
from gridflow import present
from gridflow.app import not_after_now, parse_at
from gridflow.cli.common import emit_json, handled, open_gridflow, out
from gridflow.lazy import lazy_module

app = typer.Typer()  # this module's commands; gridflow.cli.build merges them into the root

jobs = lazy_module("engine.jobs")
runs = lazy_module("engine.scoring.runs")

points_app = typer.Typer(help="户档积分 household points: record, approve, correct, redeem.", no_args_is_help=True)
store_app = typer.Typer(help="积分超市 the points store: goods, restocking, the stock report.", no_args_is_help=True)
points_app.add_typer(store_app, name="store")
app.add_typer(points_app, name="points")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
AtOpt = Annotated[str | None, typer.Option("--at", help="As if it were this time (local ISO, not in the future).")]
ActorOpt = Annotated[str, typer.Option("--actor", "-a", help="Person id of who acts, e.g. p-an-yixuan.")]
KIND_LABELS = {"award": "加分", "deduct": "扣分", "correct": "更正", "redeem": "兑换", "refund": "撤销兑换"}


def _day(text: str | None, today: date) -> date:
    if not text:
        return today
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"bad date {text!r}: write it like 2026-11-27") from exc


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
        when = not_after_now(parse_at(at, gf.tz, gf.clock()), gf.clock(), gf.tz)
        rules = gf.points_rules()
        with gf.transaction() as session:
            done = ledger.record(
                session,
                household,
                rule,
                actor,
                _day(on, when.astimezone(gf.tz).date()),
                when,
                rules,
                gf.tz,
                evidence,
                case,
                key,
            )
            entry, balance = done.entry, ledger.balance_of(session, household).balance
        r = rules.rules[rule]
        if not done.created:
            out.print(f"already recorded as entry #{entry.id} (the same form); nothing added", markup=False)
            return
        state = "待审核 pending approval" if done.pending else f"余额 balance {balance}"
        out.print(f"entry #{entry.id}: {household} {r.label} {entry.points:+d} 分  ({state})", markup=False)


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
        when = not_after_now(parse_at(at, gf.tz, gf.clock()), gf.clock(), gf.tz)
        with gf.transaction() as session:
            done = ledger.approve(session, entry, actor, not reject, when, gf.points_rules(), note)
            balance = ledger.balance_of(session, done.household_id).balance
        verb = "rejected" if reject else f"approved: {done.points:+d} 分 count for {done.household_id}"
        out.print(f"entry #{entry} {verb} (balance {balance})", markup=False)


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
        when = not_after_now(parse_at(at, gf.tz, gf.clock()), gf.clock(), gf.tz)
        with gf.transaction() as session:
            reversing = ledger.correct(session, entry, actor, reason, when, gf.points_rules())
            balance = ledger.balance_of(session, reversing.household_id).balance
        out.print(
            f"entry #{reversing.id} reverses #{entry} ({reversing.points:+d} 分); balance {balance}", markup=False
        )


def _entry_json(e: Any, approval: Any) -> dict[str, Any]:
    return {
        "id": e.id,
        "household": e.household_id,
        "kind": e.kind,
        "rule": e.rule,
        "category": e.category,
        "points": e.points,
        "on": e.on_date,
        "recorded_at": present.iso(e.recorded_at),
        "by": e.recorder_id,
        "evidence": e.evidence,
        "needs_approval": e.needs_approval,
        "approval": None
        if approval is None
        else {"approved": approval.approved, "by": approval.by_id, "at": present.iso(approval.at)},
        "reverses": e.reverses_id,
        "redemption": e.redemption_id,
        "key": e.key,
    }


@points_app.command("list")
def points_list(
    household: Annotated[str | None, typer.Option("--household", "-H", help="Only this household.")] = None,
    pending: Annotated[bool, typer.Option("--pending", help="Only entries waiting for approval.")] = False,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Ledger entries, newest first."""
    with handled():
        gf = open_gridflow()
        with gf.transaction(write=False) as session:
            found = ledger.entries(session, household, limit if not pending else 10_000)
            approvals = {
                a.entry_id: a
                for a in session.scalars(
                    select(PointsApproval).where(PointsApproval.entry_id.in_([e.id for e in found]))
                )
            }
            if pending:
                found = [e for e in found if e.needs_approval and e.id not in approvals][:limit]
            rows = [_entry_json(e, approvals.get(e.id)) for e in found]
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
            table.add_row(
                str(r["id"]),
                r["household"],
                KIND_LABELS.get(r["kind"], r["kind"]),
                r["rule"] or "",
                f"{r['points']:+d}",
                r["on"],
                r["by"],
                status,
                escape(r["evidence"] or ""),
            )
        out.print(table)


@points_app.command("balance")
def points_balance(
    household: Annotated[str, typer.Argument(help="户号.")],
    as_json: JsonOpt = False,
) -> None:
    """A household's redeemable balance: earned − redeemed + refunded."""
    with handled():
        gf = open_gridflow()
        with gf.transaction() as session:
            b = ledger.balance_of(session, household)
            home = session.get(Household, household)
            data = {
                "household": household,
                "head": home.head_name,
                "earned": b.earned,
                "redeemed": b.redeemed,
                "refunded": b.refunded,
                "balance": b.balance,
            }
        if as_json:
            emit_json(data)
            return
        out.print(
            f"{household} {escape(data['head'])}户  余额 balance [bold]{b.balance}[/] 分 = 获得 earned "
            f"{b.earned} − 兑换 redeemed {b.redeemed} + 撤销 refunded {b.refunded}"
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
        when = not_after_now(parse_at(at, gf.tz, gf.clock()), gf.clock(), gf.tz)
        lines = store.parse_lines(items)
        with gf.transaction() as session:
            done, created = store.redeem(session, household, lines, actor, when, key)
            balance = ledger.balance_of(session, household).balance
            clerk = session.get(Person, done.operator_id)
            receipt = store.receipt(
                done, balance, session.get(Household, household).head_name, gf.tz, clerk.name if clerk else ""
            )
        if not created:
            out.print(f"already redeemed as #{done.id} (the same key); nothing taken again", markup=False)
        for line in receipt:
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
        when = not_after_now(parse_at(at, gf.tz, gf.clock()), gf.clock(), gf.tz)
        with gf.transaction() as session:
            done = store.reverse(session, redemption, actor, reason, when)
            balance = ledger.balance_of(session, done.household_id).balance
        out.print(
            f"redemption #{redemption} reversed: {done.total} 分 back to {done.household_id} (balance "
            f"{balance}); goods back on the shelf",
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
        gf = open_gridflow()
        with gf.transaction(write=False) as session:
            run = runs.current_run(session, runs.period_from_key(period).key)
            if run is None:
                raise NotFound(f"{period} has not been scored; `gridflow score run --period {period}`")
            rows = [r for r in runs.household_scores(session, run) if not village or r.village_id == village]
            names = {h.id: h.head_name for h in session.scalars(select(Household))}
        data = [
            {
                "household": r.household_id,
                "head": names.get(r.household_id),
                "village": r.village_id,
                "points": r.points,
                "awarded": r.awarded,
                "deducted": r.deducted,
                "total": r.total,
                "rank_village": r.rank_village,
                "rank_township": r.rank_township,
                "stars": r.stars,
                "listed": r.listed,
            }
            for r in rows
        ]
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
        gf = open_gridflow()
        with gf.transaction() as session:
            counts = store.load_goods(session, file)
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
        gf = open_gridflow()
        with gf.transaction() as session:
            good = store.restock(session, village, item, quantity, actor)
        out.print(f"{village} {good.name}: {good.stock} {good.unit} on the shelf", markup=False)


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
        gf = open_gridflow()
        today = gf.clock().astimezone(gf.tz).date()
        period = runs.period_from_key(month) if month else period_of("month", today)
        start, end = jobs.bounds(period, gf.tz)
        with gf.transaction(write=False) as session:
            rows = store.stock_report(session, village, start, end)
            count = len(list(session.scalars(select(Redemption.id).where(Redemption.at >= start, Redemption.at < end))))
        if as_json:
            emit_json({"period": period.key, "redemptions": count, "goods": rows})
            return
        table = Table(title=f"积分超市库存 stock report {period.key} ({count} redemptions)", title_justify="left")
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
