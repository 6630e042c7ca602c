"""The points ledger and the points store on SQLite and PostgreSQL: recording with roles, limits,
approval and idempotency; corrections; redemption that never overdraws a balance or a shelf."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from engine.errors import NotFound, PermissionDenied
from engine.points import ledger, store
from engine.points.ledger import PointsRejected
from engine.store.models import HouseholdBalance, PointsEntry, Redemption, StoreItem
from tests.points_support import AN, CENTER, RULES, SH, WANG, XIONG, T, add_households, award
from tests.support import ROOT


@pytest.fixture
def homes(db) -> list[str]:
    with db.sessions.begin() as s:
        ids = add_households(s)
        store.load_goods(s, ROOT / "config" / "store.yaml")
    return ids


def balance(db, household: str) -> tuple[int, int, int, int]:
    with db.sessions.begin() as s:
        b = s.get(HouseholdBalance, household)
        return (b.earned, b.redeemed, b.refunded, b.balance)


def test_recording_checks_the_household_the_rule_the_role_the_day_and_the_limit(db, homes):
    h = homes[0]
    with db.sessions.begin() as s:
        recorded = award(s, h, evidence="照顾卧病在床的母亲")
        assert recorded.created and not recorded.pending and recorded.entry.points == 5
    assert balance(db, h) == (5, 0, 0, 5)
    for kwargs, error, text in (
        ({"household": "MYT-99-9999"}, NotFound, "no household"),
        ({"rule": "singing"}, NotFound, "no points rule 'singing'"),
        ({"by": WANG}, PermissionDenied, "may not record"),  # the grid worker of another grid
        ({"rule": "enterprise"}, PermissionDenied, "needs village_secretary"),
        ({"day": date(2026, 11, 11)}, PointsRejected, "is in the future"),
    ):
        args = {"household": h, **kwargs}
        with db.sessions.begin() as s, pytest.raises(error, match=text):
            award(s, args.pop("household"), **args, evidence=str(kwargs))
    for i in range(3):  # filial_piety: at most 4 a month
        with db.sessions.begin() as s:
            award(s, h, evidence=f"第{i + 2}次")
    with db.sessions.begin() as s, pytest.raises(PointsRejected, match="at most 4 time"):
        award(s, h, evidence="第5次")
    with db.sessions.begin() as s:
        award(s, h, day=date(2026, 10, 30), evidence="上月的")  # October has its own four
        assert s.scalar(select(func.count()).select_from(PointsEntry)) == 5
    assert balance(db, h) == (25, 0, 0, 25)


def test_a_double_submitted_form_records_once(db, homes):
    with db.sessions.begin() as s:
        first = award(s, homes[0], evidence="打扫公共区域", rule="public_service")
    with db.sessions.begin() as s:
        again = award(s, homes[0], evidence="打扫公共区域", rule="public_service")
    assert (again.created, again.entry.id) == (False, first.entry.id)
    with db.sessions.begin() as s:
        keyed = award(s, homes[1], key="form-7f3a", evidence="x")
        assert award(s, homes[1], key="form-7f3a", evidence="another text").entry.id == keyed.entry.id
        with pytest.raises(PointsRejected, match="another household"):
            award(s, homes[2], key="form-7f3a")
    assert balance(db, homes[0])[3] == 3


def test_an_entry_that_needs_approval_counts_once_a_second_person_approves(db, homes):
    h = homes[0]
    with db.sessions.begin() as s:
        pending = award(s, h, rule="enterprise", by=XIONG, evidence="发展花椒种植")
        assert pending.pending
        entry_id = pending.entry.id
    assert balance(db, h)[3] == 0
    with db.sessions.begin() as s, pytest.raises(PointsRejected, match="needs a second person"):
        ledger.approve(s, entry_id, XIONG, True, T, RULES)
    with db.sessions.begin() as s, pytest.raises(PermissionDenied):
        ledger.approve(s, entry_id, AN, True, T, RULES)  # a grid worker is not an approver
    with db.sessions.begin() as s:
        ledger.approve(s, entry_id, CENTER, True, T + timedelta(hours=1), RULES, "核实属实")
    assert balance(db, h)[3] == 10
    with db.sessions.begin() as s, pytest.raises(PointsRejected, match="already decided"):
        ledger.approve(s, entry_id, CENTER, False, T, RULES)


def test_corrections_reverse_never_edit(db, homes):
    h = homes[0]
    with db.sessions.begin() as s:
        wrong = award(s, h, rule="clean_courtyard", evidence="记错户").entry.id
        fine = award(s, h, rule="dumping", evidence="河边倒垃圾").entry.id  # −3: standing, not balance
    with db.sessions.begin() as s:
        reversing = ledger.correct(s, wrong, XIONG, "记错户了", T + timedelta(hours=2), RULES)
        assert (reversing.points, reversing.reverses_id, reversing.kind) == (-2, wrong, "correct")
        original = s.get(PointsEntry, wrong)
        assert original.points == 2  # unchanged
    assert balance(db, h) == (0, 0, 0, 0)
    with db.sessions.begin() as s, pytest.raises(PointsRejected, match="corrected already"):
        ledger.correct(s, wrong, XIONG, "再改", T, RULES)
    with db.sessions.begin() as s, pytest.raises(NotFound, match="no points entry #999"):
        ledger.correct(s, 999, XIONG, "不存在", T, RULES)
    with db.sessions.begin() as s:
        ledger.correct(s, fine, XIONG, "不是他家倒的", T, RULES)
    assert balance(db, h) == (0, 0, 0, 0)


def test_redemption_checks_balance_and_stock_and_is_reversible_once(db, homes):
    h = homes[0]
    with db.sessions.begin() as s:
        for i in range(4):
            award(s, h, evidence=str(i))  # 20 points
    with db.sessions.begin() as s:
        done, created = store.redeem(s, h, store.parse_lines(["salt=2", "soy_sauce"]), AN, T, key="r-1")
        assert created and done.total == 18
        receipt = "\n".join(store.receipt(done, 2, "户主1", SH))
    assert "合计 18 分   余额 2 分" in receipt and "食盐 × 2袋" in receipt
    assert balance(db, h) == (20, 18, 0, 2)
    with db.sessions.begin() as s:
        assert store.redeem(s, h, store.parse_lines(["salt=2", "soy_sauce"]), AN, T, key="r-1")[1] is False
    with db.sessions.begin() as s, pytest.raises(PointsRejected, match="has 2 points; these goods cost 5"):
        store.redeem(s, h, store.parse_lines(["salt"]), AN, T)
    for bad in (["salt=-1"], ["salt=1.5"], ["salt=0"], ["=2"], []):
        with pytest.raises(PointsRejected):
            store.parse_lines(bad)
    with db.sessions.begin() as s:
        store.reverse(s, done.id, XIONG, "拿错了", T + timedelta(hours=1))
    assert balance(db, h) == (20, 18, 18, 20)
    with db.sessions.begin() as s, pytest.raises(PointsRejected, match="reversed already"):
        store.reverse(s, done.id, XIONG, "再撤", T)
    with db.sessions.begin() as s:
        vinegar = store.item(s, "mayingtai", "vinegar")
        s.execute(StoreItem.__table__.update().where(StoreItem.id == vinegar.id).values(stock=1))
    with db.sessions.begin() as s, pytest.raises(PointsRejected, match="has 1 瓶 of 食醋 left, not 2"):
        store.redeem(s, h, store.parse_lines(["salt", "vinegar=2"]), AN, T)
    with db.sessions.begin() as s:
        assert store.item(s, "mayingtai", "salt").stock == 200  # the refused redemption took nothing
        report = {
            r["code"]: r for r in store.stock_report(s, "mayingtai", T - timedelta(days=1), T + timedelta(days=1))
        }
    assert report["salt"]["redeemed"] == 0  # reversed


def test_twenty_parallel_redemptions_never_overdraw(pg_db):
    """On PostgreSQL, 20 clerks at once against one household's 50 points: 5 can be served."""
    pg_db.reset()
    with pg_db.sessions.begin() as s:
        h = add_households(s, 1)[0]
        store.load_goods(s, ROOT / "config" / "store.yaml")
        for i in range(10):
            award(s, h, rule="waste_sorting" if i < 8 else "public_service", evidence=str(i))  # 8×1 + 2×3 = 14
        for i in range(4):
            award(s, h, rule="filial_piety", evidence=f"f{i}")  # + 20
        for i in range(4):
            award(s, h, rule="caring_elders", evidence=f"c{i}")  # + 12 = 46
        for i in range(2):
            award(s, h, rule="clean_courtyard", evidence=f"k{i}")  # + 4 = 50
    assert balance(pg_db, h)[3] == 50
    results: list = []
    barrier = threading.Barrier(20)

    def clerk(i: int) -> None:
        barrier.wait()
        try:
            with pg_db.sessions.begin() as s:
                store.redeem(s, h, store.parse_lines(["detergent"]), AN, T + timedelta(seconds=i), key=f"p-{i}")
            results.append("ok")
        except PointsRejected as exc:
            results.append(str(exc))

    threads = [threading.Thread(target=clerk, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 5
    assert balance(pg_db, h) == (50, 50, 0, 0)
    with pg_db.sessions.begin() as s:
        assert s.scalar(select(func.count()).select_from(Redemption)) == 5
        assert store.item(s, "mayingtai", "detergent").stock == 95
        assert (
            s.scalar(
                select(func.sum(PointsEntry.points)).where(PointsEntry.household_id == h, PointsEntry.kind == "redeem")
            )
            == -50
        )


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("award"), st.sampled_from(["waste_sorting", "public_service", "filial_piety"])),
        st.tuples(st.just("deduct"), st.sampled_from(["dumping", "illegal_burning"])),
        st.tuples(st.just("correct"), st.integers(0, 30)),
        st.tuples(st.just("redeem"), st.sampled_from(["salt", "soap", "detergent", "cooking_oil"])),
        st.tuples(st.just("reverse"), st.integers(0, 10)),
    ),
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_the_balance_is_earned_minus_redeemed_plus_refunded_and_never_negative(db, ops):
    db.reset()
    with db.sessions.begin() as s:
        h = add_households(s, 1)[0]
        store.load_goods(s, ROOT / "config" / "store.yaml")
    entries: list[int] = []
    redemptions: list[int] = []
    for i, (op, arg) in enumerate(ops):
        at = T + timedelta(minutes=i)
        try:
            with db.sessions.begin() as s:
                if op in ("award", "deduct"):
                    entries.append(award(s, h, rule=arg, evidence=f"{i}", at=at).entry.id)
                elif op == "correct" and entries:
                    ledger.correct(s, entries[arg % len(entries)], XIONG, "更正", at, RULES)
                elif op == "redeem":
                    redemptions.append(store.redeem(s, h, store.parse_lines([arg]), AN, at)[0].id)
                elif op == "reverse" and redemptions:
                    store.reverse(s, redemptions[arg % len(redemptions)], XIONG, "撤销", at)
        except PointsRejected:
            pass  # refused: changed nothing
        with db.sessions.begin() as s:
            b = s.get(HouseholdBalance, h)
            sums = dict(
                s.execute(
                    select(PointsEntry.kind, func.sum(PointsEntry.points))
                    .where(PointsEntry.household_id == h)
                    .group_by(PointsEntry.kind)
                ).all()
            )
            corrected_awards = s.scalar(
                select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
                    PointsEntry.kind == "correct", PointsEntry.points < 0
                )
            )
            assert b.balance == b.earned - b.redeemed + b.refunded >= 0
            assert b.earned == (sums.get("award") or 0) + corrected_awards
            assert b.redeemed == -(sums.get("redeem") or 0) and b.refunded == (sums.get("refund") or 0)


def test_a_correction_frees_its_limit_slot_and_a_long_key_still_records_once(db, homes):
    h = homes[0]
    with db.sessions.begin() as s:
        first = award(s, h, rule="good_neighbour", evidence="1").entry.id  # at most 3 a month
        award(s, h, rule="good_neighbour", evidence="2")
        award(s, h, rule="good_neighbour", evidence="3")
    with db.sessions.begin() as s:
        ledger.correct(s, first, XIONG, "记错了", T, RULES)
    with db.sessions.begin() as s:
        award(s, h, rule="good_neighbour", evidence="4")  # the corrected one freed its slot
    key = "表单-" + "x" * 150
    with db.sessions.begin() as s:
        once = award(s, homes[1], key=key, evidence="a").entry.id
    with db.sessions.begin() as s:
        again = award(s, homes[1], key=key, evidence="a")
    assert (again.created, again.entry.id) == (False, once)
