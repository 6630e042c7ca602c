"""The points store (积分超市): goods per village store, redemption and its reversal, stock report.

A redemption is one transaction: the household's balance row is locked (``FOR UPDATE`` on
PostgreSQL; SQLite's write transaction is exclusive), the balance checked, each item's stock taken
with a conditional ``UPDATE … WHERE stock >= quantity``, and the redemption, its negative ledger
entry and the new balance written together — so concurrent redemptions queue on the balance and
can never overdraw it or the shelf. A redemption is reversed once: stock back, points refunded.

Every number a person types or a store file holds is bounded (the columns are 32-bit integers on
PostgreSQL, and SQLite turns an integer past 2⁶³ into a REAL): a line of a redemption takes 1 to
:data:`MAX_QUANTITY` of a good, a visit at most :data:`MAX_LINES` goods, a restock adds 1 to
:data:`MAX_RESTOCK`, a shelf holds at most :data:`MAX_STOCK` and a price is 1 to :data:`MAX_PRICE` points.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.errors import NotFound, SourceError
from engine.points.ledger import PointsRejected, ensure_balance, household, org, require_role
from engine.store.models import HouseholdBalance, Place, PointsEntry, Redemption, StoreItem
from engine.timeutil import require_aware
from engine.yamlsrc import load_file

CLERK_ROLES = ("village_secretary", "grid_worker", "info_officer", "center")
MAX_QUANTITY = 1_000  # of one good in one redemption (the API's bound too)
MAX_LINES = 50  # goods in one redemption
MAX_RESTOCK = 1_000_000  # put on a shelf at once
MAX_STOCK = 1_000_000_000  # on one shelf: far inside the 32-bit stock column
MAX_PRICE = 1_000_000  # points for one good


class StoreFileInvalid(SourceError):
    what = "points store file"


@dataclass(frozen=True)
class Line:
    code: str
    quantity: int


def parse_lines(items: list[str]) -> list[Line]:
    """``salt=2 soy_sauce=1`` (or ``salt`` for one); quantities are whole numbers of 1 to :data:`MAX_QUANTITY`,
    written with the digits 0–9."""
    if not items:
        raise PointsRejected("name what is taken, e.g. salt=2 soy_sauce=1")
    out: dict[str, int] = {}
    for item in items:
        code, sep, qty = item.partition("=")
        code = code.strip()
        text = qty.strip() if sep else "1"
        if not code:
            raise PointsRejected(f"{item!r}: write an item as code=quantity, e.g. salt=2")
        if not (text.isascii() and text.isdigit()) or int(text) < 1:
            raise PointsRejected(
                f"{item!r}: the quantity must be a whole number of at least 1, written with the digits 0–9 "
                f"(half-width), e.g. {code}=2; not {text!r}"
            )
        out[code] = out.get(code, 0) + (int(text) if len(text) < 20 else MAX_QUANTITY + 1)
        if out[code] > MAX_QUANTITY:
            raise PointsRejected(
                f"{item!r}: at most {MAX_QUANTITY:,} of one good are taken in one redemption; nothing was taken"
            )
    if len(out) > MAX_LINES:
        raise PointsRejected(f"{len(out)} goods in one redemption; at most {MAX_LINES}: redeem the rest separately")
    return [Line(code, qty) for code, qty in out.items()]


def check_lines(lines: dict[str, int]) -> list[Line]:
    """Goods as code → quantity (the API's body), bounded as :func:`parse_lines` bounds them."""
    for code, qty in lines.items():
        if isinstance(qty, bool) or not isinstance(qty, int) or not 1 <= qty <= MAX_QUANTITY:
            raise PointsRejected(
                f"{code}: the quantity must be a whole number of 1 to at most {MAX_QUANTITY:,}, not {qty!r}"
            )
    return parse_lines([f"{code}={qty}" for code, qty in lines.items()])


# -- goods ---------------------------------------------------------------------------------------


def load_goods(session: Session, path: str | Path) -> dict[str, int]:
    """Add new goods, update names, units and prices; stock is set only when a good is new."""
    src = load_file(path)
    data = src.data if isinstance(src.data, dict) else {}
    stores = data.get("stores")
    if not isinstance(stores, dict) or not stores:
        src.problem(("stores",), "stores: a mapping of village id to its goods")
        stores = {}
    villages = set(session.scalars(select(Place.id).where(Place.kind == "village")))
    specs = []
    for village, goods in stores.items():
        if village not in villages:
            src.problem(
                ("stores", village), f"unknown village {village!r}; villages are: {', '.join(sorted(villages))}"
            )
            continue
        for i, good in enumerate(goods if isinstance(goods, list) else []):
            path_ = ("stores", village, i)
            if not isinstance(good, dict) or not all(k in good for k in ("code", "name", "unit", "price")):
                src.problem(path_, "a good needs code, name, unit, price (and stock)")
                continue
            price, stock = good.get("price"), good.get("stock", 0)
            if isinstance(price, bool) or not isinstance(price, int) or not 1 <= price <= MAX_PRICE:
                src.problem(
                    (*path_, "price"), f"price is a whole number of points from 1 to {MAX_PRICE:,}, not {price!r}"
                )
            if isinstance(stock, bool) or not isinstance(stock, int) or not 0 <= stock <= MAX_STOCK:
                src.problem((*path_, "stock"), f"stock is a whole number from 0 to {MAX_STOCK:,}, not {stock!r}")
            specs.append((village, good))
    if src.problems:
        raise StoreFileInvalid(src.problems)
    counts = {"added": 0, "updated": 0}
    for village, good in specs:
        item = session.scalar(select(StoreItem).where(StoreItem.village_id == village, StoreItem.code == good["code"]))
        if item is None:
            session.add(
                StoreItem(
                    village_id=village,
                    code=good["code"],
                    name=good["name"],
                    unit=good["unit"],
                    price=good["price"],
                    stock=good.get("stock", 0),
                    active=True,
                )
            )
            counts["added"] += 1
        elif (item.name, item.unit, item.price) != (good["name"], good["unit"], good["price"]):
            item.name, item.unit, item.price = good["name"], good["unit"], good["price"]
            counts["updated"] += 1
    session.flush()
    return counts


def item(session: Session, village_id: str, code: str) -> StoreItem:
    found = session.scalar(
        select(StoreItem).where(StoreItem.village_id == village_id, StoreItem.code == code, StoreItem.active.is_(True))
    )
    if found is None:
        known = ", ".join(session.scalars(select(StoreItem.code).where(StoreItem.village_id == village_id)))
        raise NotFound(f"the {village_id} store has no {code!r}; it has: {known or 'nothing yet (points store load)'}")
    return found


def restock(session: Session, village_id: str, code: str, quantity: int, by_id: str) -> StoreItem:
    """Add ``quantity`` (1 to :data:`MAX_RESTOCK`) to a shelf, which never holds more than :data:`MAX_STOCK`."""
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_RESTOCK:
        shown = f"{quantity:,}" if isinstance(quantity, int) and abs(quantity) < 10**30 else repr(quantity)[:40]
        raise PointsRejected(
            f"restock adds a whole number of goods from 1 to {MAX_RESTOCK:,}, not {shown}; "
            "a larger delivery is restocked in parts"
        )
    require_role(org(session), by_id, village_id, CLERK_ROLES, "restock the store", within=True)
    good = item(session, village_id, code)
    added = session.execute(
        update(StoreItem)
        .where(StoreItem.id == good.id, StoreItem.stock <= MAX_STOCK - quantity)
        .values(stock=StoreItem.stock + quantity)
    ).rowcount
    session.refresh(good)
    if added != 1:
        raise PointsRejected(
            f"the {village_id} store has {good.stock:,} {good.unit} of {good.name}; with {quantity:,} more it would "
            f"hold more than that: a shelf holds at most {MAX_STOCK:,}; check the number, nothing was added"
        )
    return good


# -- redemption -------------------------------------------------------------------------------------


def redeem(
    session: Session, household_id: str, lines: list[Line], operator_id: str, at: datetime, key: str | None = None
) -> tuple[Redemption, bool]:
    """Take goods for points; (the redemption, created). The same key twice redeems once."""
    at = require_aware(at)
    if key:
        done = session.scalar(select(Redemption).where(Redemption.key == key))
        if done is not None:
            if done.household_id != household_id:
                raise PointsRejected(f"key {key!r} was used for redemption #{done.id} of another household")
            return done, False
    home = household(session, household_id)
    village = home.village_id
    require_role(org(session), operator_id, village, CLERK_ROLES, "hand out goods at the points store", within=True)
    goods = [(item(session, village, line.code), line.quantity) for line in lines]
    total = sum(good.price * qty for good, qty in goods)
    ensure_balance(session, home.id)
    balance = session.scalar(  # the lock every redemption of this household queues on
        select(HouseholdBalance).where(HouseholdBalance.household_id == home.id).with_for_update()
    )
    assert balance is not None
    session.refresh(balance)
    if balance.balance < total:
        raise PointsRejected(
            f"household {home.id} has {balance.balance} points; these goods cost {total}; nothing was taken"
        )
    with session.begin_nested():  # a shelf that runs short puts back what was already taken, whoever catches
        for good, qty in goods:
            taken = session.execute(
                update(StoreItem)
                .where(StoreItem.id == good.id, StoreItem.stock >= qty)
                .values(stock=StoreItem.stock - qty)
            ).rowcount
            if taken != 1:
                left = session.scalar(select(StoreItem.stock).where(StoreItem.id == good.id))
                raise PointsRejected(
                    f"the {village} store has {left} {good.unit} of {good.name} left, not {qty}; nothing was taken"
                )
    redemption = Redemption(
        household_id=home.id,
        village_id=village,
        at=at,
        operator_id=operator_id,
        total=total,
        lines=[
            {"item": g.id, "code": g.code, "name": g.name, "unit": g.unit, "quantity": q, "price": g.price}
            for g, q in goods
        ],
        key=(key or f"redeem:{home.id}:{at.isoformat()}:{operator_id}")[:100],
    )
    session.add(redemption)
    session.flush()
    _ledger(session, home.id, "redeem", -total, at, operator_id, redemption, f"积分超市兑换 #{redemption.id}")
    spent = session.execute(
        update(HouseholdBalance)
        .where(HouseholdBalance.household_id == home.id, HouseholdBalance.balance >= total)
        .values(redeemed=HouseholdBalance.redeemed + total, balance=HouseholdBalance.balance - total)
    ).rowcount
    if spent != 1:  # cannot happen behind the lock; refuse rather than overdraw
        raise PointsRejected(f"household {home.id}'s balance changed meanwhile; try again")
    return redemption, True


def _ledger(
    session: Session,
    household_id: str,
    kind: str,
    points: int,
    at: datetime,
    by: str,
    redemption: Redemption,
    note: str,
) -> None:
    session.add(
        PointsEntry(
            household_id=household_id,
            kind=kind,
            rule=None,
            rules_version=None,
            category=None,
            points=points,
            on_date=at.date().isoformat(),
            recorded_at=at,
            effective_at=at,
            recorder_id=by,
            evidence=note,
            redemption_id=redemption.id,
            needs_approval=False,
            key=f"{kind}:{redemption.id}",
        )
    )
    session.flush()


def reverse(session: Session, redemption_id: int, by_id: str, reason: str, at: datetime) -> Redemption:
    """Undo a redemption once: the goods go back on the shelf, the points back to the household."""
    at = require_aware(at)
    if not reason.strip():
        raise PointsRejected("say why (--reason): a reversal needs a reason")
    redemption = session.get(Redemption, redemption_id)
    if redemption is None:
        raise NotFound(f"no redemption #{redemption_id}; `gridflow points list --household H` shows them")
    require_role(org(session), by_id, redemption.village_id, CLERK_ROLES, "reverse a redemption", within=True)
    undone = session.execute(
        update(Redemption)
        .where(Redemption.id == redemption_id, Redemption.reversed_at.is_(None))
        .values(reversed_at=at, reversed_by=by_id, reverse_reason=reason.strip())
        .execution_options(synchronize_session=False)
    ).rowcount
    if undone != 1:
        raise PointsRejected(f"redemption #{redemption_id} was reversed already")
    for line in redemption.lines:
        session.execute(
            update(StoreItem).where(StoreItem.id == line["item"]).values(stock=StoreItem.stock + line["quantity"])
        )
    _ledger(
        session,
        redemption.household_id,
        "refund",
        redemption.total,
        at,
        by_id,
        redemption,
        f"撤销兑换 #{redemption.id}: {reason.strip()}",
    )
    session.execute(
        update(HouseholdBalance)
        .where(HouseholdBalance.household_id == redemption.household_id)
        .values(
            refunded=HouseholdBalance.refunded + redemption.total, balance=HouseholdBalance.balance + redemption.total
        )
    )
    session.refresh(redemption)
    return redemption


def receipt(redemption: Redemption, balance: int, household_name: str, tz: Any, operator: str = "") -> list[str]:
    """The printed receipt (兑换凭证)."""
    lines = [
        f"积分超市兑换凭证  No.{redemption.id}",
        f"户号 {redemption.household_id}  户主 {household_name}",
        f"时间 {redemption.at.astimezone(tz):%Y-%m-%d %H:%M}  经办 {operator or redemption.operator_id}",
    ]
    for line in redemption.lines:
        lines.append(f"  {line['name']} × {line['quantity']}{line['unit']}  {line['price'] * line['quantity']} 分")
    lines += [f"合计 {redemption.total} 分   余额 {balance} 分"]
    if redemption.reversed_at is not None:
        lines.append(f"已撤销 {redemption.reversed_at.astimezone(tz):%Y-%m-%d %H:%M}: {redemption.reverse_reason}")
    return lines


def stock_report(session: Session, village_id: str | None, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Goods per store: stock on the shelf, and how many were redeemed (net of reversals) in [start, end)."""
    taken: dict[int, int] = defaultdict(int)
    stmt = select(Redemption).where(Redemption.at >= start, Redemption.at < end)
    if village_id:
        stmt = stmt.where(Redemption.village_id == village_id)
    for redemption in session.scalars(stmt):
        if redemption.reversed_at is not None:
            continue
        for line in redemption.lines:
            taken[line["item"]] += line["quantity"]
    items = select(StoreItem).order_by(StoreItem.village_id, StoreItem.code)
    if village_id:
        items = items.where(StoreItem.village_id == village_id)
    return [
        {
            "village": g.village_id,
            "code": g.code,
            "name": g.name,
            "unit": g.unit,
            "price": g.price,
            "stock": g.stock,
            "redeemed": taken.get(g.id, 0),
            "points": taken.get(g.id, 0) * g.price,
        }
        for g in session.scalars(items)
    ]
