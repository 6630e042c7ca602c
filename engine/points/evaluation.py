"""The households' period (月评比 of 户档积分): points, running total, ranks, stars, red/black list.

Computed in SQL from the ledger as it stood at the period's end: an entry counts when it took
effect — when recorded, or when a second person approved it — and a correction counts when it
was made, so an old month never changes. Ranks are competition ranks by the period's net points,
within the village and the township; every active household is ranked (no entry: 0 points).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from engine.points.rules import PointsRules
from engine.store.models import Household, PointsApproval, PointsEntry
from engine.store.models import PointsRules as RulesRow

COUNTED = ("award", "deduct", "correct")


@dataclass
class HouseholdRow:
    household_id: str
    village_id: str
    points: int  # net: awards, deductions and the corrections made in the period
    awarded: int  # awards recorded (or approved) in the period
    deducted: int  # deductions
    total: int
    rank_village: int | None = None
    rank_township: int | None = None
    stars: list[str] = field(default_factory=list)
    listed: str | None = None


def latest_rules(session: Session) -> PointsRules | None:
    """The newest stored version of the points rules (stored when the first entry used it)."""
    from engine.points.rules import parse_text

    row = session.scalar(select(RulesRow).order_by(RulesRow.version.desc()).limit(1))
    return parse_text(row.source_text, f"<points rules v{row.version}>") if row else None


def _counted(exempt: tuple[int, ...] = ()):
    """Ledger entries that count for standing, with the instant each took effect (less those exempted)."""
    e, a = PointsEntry.__table__, PointsApproval.__table__
    effective = func.coalesce(e.c.effective_at, a.c.at).label("eff")
    return (
        select(e.c.household_id, e.c.kind, e.c.points, e.c.category, effective)
        .select_from(e.outerjoin(a, and_(a.c.entry_id == e.c.id, a.c.approved.is_(True))))
        .where(e.c.kind.in_(COUNTED), e.c.id.not_in(exempt or (-1,)))
        .subquery("counted")
    )


def compute(
    session: Session, start: datetime, end: datetime, rules: PointsRules | None, exempt: tuple[int, ...] = ()
) -> tuple[list[HouseholdRow], dict[str, tuple[int, int]]]:
    """The households' rows and the participation (households with an award / households) per village
    and ``"*"`` for the township."""
    counted = _counted(tuple(exempt))
    in_period = and_(counted.c.eff >= start, counted.c.eff < end)
    h = Household.__table__
    stmt = (
        select(
            h.c.id,
            h.c.village_id,
            func.coalesce(func.sum(case((in_period, counted.c.points), else_=0)), 0).label("points"),
            func.coalesce(func.sum(case((and_(in_period, counted.c.kind == "award"), counted.c.points), else_=0)), 0),
            func.coalesce(func.sum(case((and_(in_period, counted.c.kind == "deduct"), counted.c.points), else_=0)), 0),
            func.coalesce(func.sum(case((counted.c.eff < end, counted.c.points), else_=0)), 0),
        )
        .select_from(h.outerjoin(counted, counted.c.household_id == h.c.id))
        .where(h.c.active.is_(True))
        .group_by(h.c.id, h.c.village_id)
    )
    rows = [
        HouseholdRow(hid, village, int(p), int(aw), int(de), int(tot))
        for hid, village, p, aw, de, tot in session.execute(stmt)
    ]
    categories = _category_points(session, counted, in_period)
    _rank(rows)
    if rules is not None:
        _stars(rows, categories, rules)
        _lists(rows, rules)
    return rows, _participation(rows)


def _category_points(session: Session, counted: Any, in_period: Any) -> dict[tuple[str, str], int]:
    stmt = (
        select(counted.c.household_id, counted.c.category, func.sum(counted.c.points))
        .where(in_period, counted.c.category.is_not(None))
        .group_by(counted.c.household_id, counted.c.category)
    )
    return {(hid, cat): int(total) for hid, cat, total in session.execute(stmt)}


def _competition(rows: list[HouseholdRow]) -> dict[str, int]:
    ordered = sorted(rows, key=lambda r: (-r.points, r.household_id))
    ranks: dict[str, int] = {}
    for i, row in enumerate(ordered):
        ranks[row.household_id] = (
            ranks[ordered[i - 1].household_id] if i and ordered[i - 1].points == row.points else i + 1
        )
    return ranks


def _rank(rows: list[HouseholdRow]) -> None:
    township = _competition(rows)
    villages: dict[str, list[HouseholdRow]] = defaultdict(list)
    for row in rows:
        row.rank_township = township[row.household_id]
        villages[row.village_id].append(row)
    for members in villages.values():
        ranks = _competition(members)
        for row in members:
            row.rank_village = ranks[row.household_id]


def _stars(rows: list[HouseholdRow], categories: dict[tuple[str, str], int], rules: PointsRules) -> None:
    """Each star of each village goes to the household(s) with the most points in its category."""
    villages: dict[str, list[HouseholdRow]] = defaultdict(list)
    for row in rows:
        villages[row.village_id].append(row)
    for members in villages.values():
        for star in rules.stars:
            best = max((categories.get((r.household_id, star.category), 0) for r in members), default=0)
            if best < star.minimum:
                continue
            for row in members:
                if categories.get((row.household_id, star.category), 0) == best:
                    row.stars.append(star.name)


def _lists(rows: list[HouseholdRow], rules: PointsRules) -> None:
    villages: dict[str, list[HouseholdRow]] = defaultdict(list)
    for row in rows:
        villages[row.village_id].append(row)
    for members in villages.values():
        for row in members:
            if row.points >= 1 and row.rank_village is not None and row.rank_village <= rules.red:
                row.listed = "red"
        low = sorted((r for r in members if r.points < rules.black_below), key=lambda r: (r.points, r.household_id))
        for row in low[: rules.black]:
            row.listed = "black"


def _participation(rows: list[HouseholdRow]) -> dict[str, tuple[int, int]]:
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        for key in (row.village_id, "*"):
            out[key][0] += int(row.awarded > 0)
            out[key][1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}
