"""Households for the points tests (the archive import has its own tests)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from engine.points import ledger
from engine.points.rules import load
from engine.store.models import Household
from tests.support import ROOT

SH = ZoneInfo("Asia/Shanghai")
RULES = load(ROOT / "config" / "points.yaml")
AN = "p-an-yixuan"  # grid worker of mayingtai-01
XIONG = "p-xiong-chenglin"  # village secretary of mayingtai
CENTER = "p-chen-jia"
WANG = "p-wang-hongmei"  # grid worker of mayingtai-02
T = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def add_households(session, n: int = 3, grid: str = "mayingtai-01", group: str = "mayingtai-1") -> list[str]:
    ids = []
    for i in range(1, n + 1):
        hid = f"MYT-{grid[-2:]}-{i:04d}"
        session.add(
            Household(
                id=hid,
                village_id="mayingtai",
                group_id=group,
                grid_id=grid,
                head_name=f"户主{i}",
                members=3,
                active=True,
                updated_at=T,
            )
        )
        ids.append(hid)
    session.flush()
    for hid in ids:
        ledger.ensure_balance(session, hid)  # as the archive import does
    return ids


def award(
    session,
    household: str,
    rule: str = "filial_piety",
    by: str = AN,
    day: date = date(2026, 11, 9),
    at: datetime = T,
    **kw,
):
    return ledger.record(session, household, rule, by, day, at, RULES, SH, **kw)
