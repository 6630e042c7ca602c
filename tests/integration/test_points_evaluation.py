"""The households' month (户积分月评比), worked out by hand, on SQLite and PostgreSQL; frozen against what
is recorded, approved and corrected after the month; and in the quarterly posting.

    MYT-01-0001  孝敬老人 ×2 (+10), 庭院整洁 ×2 (+4)                  → 14; October +5 → total 19
    MYT-01-0002  义务劳动 ×2 (+6), 乱倒垃圾 (−3)                      → 3
                 发展产业 (+10) recorded 20 Nov, approved 1 Dec        → counts in December
    MYT-01-0003  乱倒垃圾 (−3), 焚烧秸秆 (−5), the first corrected (+3) → −5
    MYT-02-0001  照顾孤寡老人 ×2 (+6)                                 → 6

Stars (minimum): 孝道之星 (5) 0001 with 10 in 孝道 (0201 has 6); 环境卫生之星 (4) 0001 with 4;
热心公益之星 (5) 0002 with 6. Ranks in 马营台村: 0001, 0201, 0002, 0003. Red (≥ 1 point): the first
three; black (< 0): 0003. Participation (an award in the month): 3 of 4.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from engine.jobs import bounds, parse_period
from engine.points import evaluation, ledger
from engine.scoring import runs
from engine.scoring.config import load
from engine.store.models import Household
from tests.points_support import AN, CENTER, RULES, SH, WANG, XIONG, add_households, award
from tests.support import ROOT

NOV = parse_period("month", "2026-11")


def at(day: int, month: int = 11) -> datetime:
    return datetime(2026, month, day, 2, 0, tzinfo=UTC)


def the_month(db) -> dict[str, str]:
    with db.sessions.begin() as s:
        one, two, three = add_households(s, 3)
        (b1,) = add_households(s, 1, grid="mayingtai-02", group="mayingtai-1")
        award(s, one, "filial_piety", day=date(2026, 10, 20), at=at(20, 10), evidence="十月")
        for d in (3, 10):
            award(s, one, "filial_piety", day=date(2026, 11, d), at=at(d), evidence=f"孝{d}")
            award(s, one, "clean_courtyard", day=date(2026, 11, d), at=at(d), evidence=f"净{d}")
            award(s, two, "public_service", day=date(2026, 11, d), at=at(d), evidence=f"公{d}")
            award(s, b1, "caring_elders", by=WANG, day=date(2026, 11, d), at=at(d), evidence=f"老{d}")
        award(s, two, "dumping", day=date(2026, 11, 12), at=at(12), evidence="倒垃圾")
        pending = award(s, two, "enterprise", by=XIONG, day=date(2026, 11, 20), at=at(20), evidence="花椒").entry.id
        wrong = award(s, three, "dumping", day=date(2026, 11, 5), at=at(5), evidence="倒垃圾").entry.id
        award(s, three, "illegal_burning", day=date(2026, 11, 6), at=at(6), evidence="烧秸秆")
        ledger.correct(s, wrong, XIONG, "认错了户", at(25), RULES)
    return {"one": one, "two": two, "three": three, "b1": b1, "pending": pending}


def month_rows(db, period=NOV):
    start, end = bounds(period, SH)
    with db.sessions.begin() as s:
        rows, participation = evaluation.compute(s, start, end, RULES)
    return {r.household_id: r for r in rows}, participation


def test_the_golden_month(db):
    ids = the_month(db)
    with db.sessions.begin() as s:
        ledger.approve(s, ids["pending"], CENTER, True, at(1, 12), RULES)
    rows, participation = month_rows(db)
    got = {h: (r.points, r.awarded, r.deducted, r.total, r.rank_village, r.stars, r.listed) for h, r in rows.items()}
    assert got == {
        ids["one"]: (14, 14, 0, 19, 1, ["孝道之星", "环境卫生之星"], "red"),
        ids["b1"]: (6, 6, 0, 6, 2, [], "red"),
        ids["two"]: (3, 6, -3, 3, 3, ["热心公益之星"], "red"),
        ids["three"]: (-5, 0, -8, -5, 4, [], "black"),
    }
    assert participation == {"mayingtai": (3, 4), "*": (3, 4)}
    december, _ = month_rows(db, parse_period("month", "2026-12"))
    assert december[ids["two"]].points == 10  # approved on 1 December: it counts then


def test_what_is_recorded_approved_or_corrected_later_does_not_change_the_month(db):
    ids = the_month(db)
    before, _ = month_rows(db)
    with db.sessions.begin() as s:
        ledger.approve(s, ids["pending"], CENTER, True, at(1, 12), RULES)
        first = s.scalars(select(ledger.PointsEntry).where(ledger.PointsEntry.household_id == ids["one"])).first()
        ledger.correct(s, first.id, XIONG, "十月那次记错", at(2, 12), RULES)
        award(s, ids["three"], "clean_courtyard", day=date(2026, 11, 30), at=at(3, 12), evidence="补录")
    after, _ = month_rows(db)
    assert {h: (r.points, r.total, r.rank_village, r.stars, r.listed) for h, r in after.items()} == {
        h: (r.points, r.total, r.rank_village, r.stars, r.listed) for h, r in before.items()
    }


def test_the_monthly_run_and_the_quarterly_posting_carry_the_households(db):
    ids = the_month(db)
    rules = load(ROOT / "config" / "scoring.yaml")
    with db.sessions.begin() as s:
        run = runs.score_period(s, NOV, at(1, 12) + timedelta(hours=1), rules, SH, "monthly job", RULES)
        stored = {r.household_id: (r.points, r.listed) for r in runs.household_scores(s, run)}
        assert run.summary["participation_rate"]["numerator"] == 3
    assert stored[ids["one"]] == (14, "red") and stored[ids["three"]] == (-5, "black")
    from engine.publication import posting

    with db.sessions.begin() as s:
        names = {h.id: h.head_name for h in s.scalars(select(Household))}
        pub = posting.publish(
            s,
            "quarterly",
            parse_period("quarter", "2026Q4"),
            datetime(2027, 1, 1, 3, tzinfo=SH),
            rules,
            SH,
            "quarterly job",
        ).publication
    assert "户积分红榜（各村）" in pub.html and "星级户（各村）" in pub.html and "孝道之星" in pub.html
    assert "积分参与率" in pub.html
    for name in names.values():
        assert name not in pub.html  # household names only where the township allows it (it does not)
    assert f"{ids['one']}号户" in pub.html
    assert AN not in pub.html


def test_an_upheld_household_objection_exempts_the_entry_and_republishes(db):
    ids = the_month(db)
    rules = load(ROOT / "config" / "scoring.yaml")
    from engine.publication import posting
    from engine.publication.posting import PostingRejected

    q4 = parse_period("quarter", "2026Q4")
    with db.sessions.begin() as s:
        posting.publish(s, "quarterly", q4, datetime(2027, 1, 1, 3, tzinfo=SH), rules, SH, "quarterly job")
        burning = s.scalars(select(ledger.PointsEntry).where(ledger.PointsEntry.rule == "illegal_burning")).one().id
        try:
            posting.lodge(
                s,
                "quarterly",
                "2026Q4",
                f"household:{ids['three']}",
                ["SL-2026-000001"],
                "户主",
                "x",
                datetime(2027, 1, 2, 9, tzinfo=SH),
                SH,
            )
            raise AssertionError("a household objection must name entries, not cases")
        except PostingRejected:
            pass
        oid = posting.lodge(
            s,
            "quarterly",
            "2026Q4",
            f"household:{ids['three']}",
            [],
            "户主",
            "秸秆不是我家烧的",
            datetime(2027, 1, 2, 9, tzinfo=SH),
            SH,
            [burning],
        ).id
    with db.sessions.begin() as s:
        v2 = posting.decide(s, oid, True, "乡网格管理中心", "经核实属实", datetime(2027, 1, 4, 9, tzinfo=SH), SH)
        changes = {(c["what"], c["before"], c["after"]) for c in v2.publication.changes}
        row = {h.household_id: h for h in runs.household_scores(s, runs.current_run(s, "2026Q4"))}[ids["three"]]
    assert ("本期积分", "-5", "0") in changes and ("榜单", "黑榜", "—") in changes
    assert (row.points, row.listed) == (0, None)  # −3 −5 +3, without the −5
