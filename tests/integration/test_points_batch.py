"""A day's sheet recorded set-based (``engine.points.batch.record_many``) on SQLite and PostgreSQL: the same
entries, balances and refusals as ``ledger.record`` one item at a time; every kind of bad item refused (the
whole batch by default, only it with ``skip_bad``); duplicates within and across batches; a fixed number of
statements whatever the size of the batch."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select

from engine import cases
from engine.errors import GridflowError, NotFound, PermissionDenied
from engine.points import batch, ledger
from engine.points.batch import BatchRefused, Item
from engine.points.ledger import PointsRejected
from engine.store.models import Household, HouseholdBalance, OrgMeta, PointsEntry
from tests.points_support import AN, CENTER, RULES, SH, WANG, XIONG, T, add_households
from tests.support import calendars

H1, H2, H3 = "MYT-01-0001", "MYT-01-0002", "MYT-01-0003"
B1 = "MYT-02-0001"  # mayingtai-02: AN may not record for it, WANG may
GONE = "MYT-01-0009"  # no longer active
NO_BALANCE = "MYT-01-0010"  # active, without a balance row yet
DAY = date(2026, 11, 9)
CASE = "<the case>"  # replaced by the code of the case seed() reports


def seed(db) -> str:
    """Empty the database; four households with balances, two without, one case; the case's code."""
    db.reset()
    with db.sessions.begin() as s:
        add_households(s, 3)
        add_households(s, 1, grid="mayingtai-02")
        for hid, active in ((GONE, False), (NO_BALANCE, True)):
            s.add(
                Household(
                    id=hid,
                    village_id="mayingtai",
                    group_id="mayingtai-1",
                    grid_id="mayingtai-01",
                    head_name="户主",
                    members=2,
                    active=active,
                    updated_at=T,
                )
            )
        reported = cases.report(
            s,
            grid_id="mayingtai-01",
            actor_id=AN,
            fields={"title": "垃圾乱堆"},
            at=T - timedelta(days=2),
            calendars=calendars(),
        )
        return reported.case.code


def sheet(db, items, at=T, skip_bad=False):
    with db.sessions.begin() as s:
        return batch.record_many(s, items, at, RULES, SH, skip_bad=skip_bad)


def balance(db, household: str) -> tuple[int, int, int, int] | None:
    with db.sessions.begin() as s:
        b = s.get(HouseholdBalance, household)
        return None if b is None else (b.earned, b.redeemed, b.refunded, b.balance)


def state(db) -> dict[str, list[tuple]]:
    """Every row of every table but the org chart's random token."""
    return {name: rows for name, rows in db.snapshot().items() if name != OrgMeta.__tablename__}


# -- the same as record, one by one ----------------------------------------------------------------------


@dataclass
class Run:
    """What one side saw: per item its outcome, and the ids of the entries it created, in order."""

    outcomes: list[tuple] = field(default_factory=list)
    created: list[int] = field(default_factory=list)


def one_by_one(db, steps: list[tuple], case_code: str) -> Run:
    run = Run()
    at = T
    for step in steps:
        if step[0] == "item":
            try:
                with db.sessions.begin() as s:
                    done = ledger.record(s, *_args(step[1], case_code, at))
                    outcome = ("recorded", done.entry.id, done.created, done.pending)
                if done.created:
                    run.created.append(done.entry.id)
            except GridflowError as exc:
                outcome = ("refused", type(exc).__name__, str(exc))
            run.outcomes.append(outcome)
        else:
            at = _between_batches(db, step, run, at)
    return run


def in_batches(db, steps: list[tuple], case_code: str) -> Run:
    run = Run()
    at = T
    pending: list[Item] = []
    for step in [*steps, ("end",)]:
        if step[0] == "item":
            pending.append(_item(step[1], case_code))
            continue
        _record_sheet(db, pending, at, run)
        pending = []
        at = _between_batches(db, step, run, at)
    return run


def _record_sheet(db, items: list[Item], at: datetime, run: Run) -> None:
    """By default the whole sheet or nothing; when refused, again with skip_bad: the same items refused."""
    if not items:
        return
    before = state(db)
    try:
        result = sheet(db, items, at)
        strict = []
    except BatchRefused as exc:
        strict = [r.index for r in exc.refused]
        assert state(db) == before  # nothing was written
        result = sheet(db, items, at, skip_bad=True)
        assert [r.index for r in result.refused] == strict
    assert strict or not result.refused
    outcomes: dict[int, tuple] = {r.index: ("recorded", r.entry_id, r.created, r.pending) for r in result.recorded}
    outcomes |= {r.index: ("refused", type(r.error).__name__, r.reason) for r in result.refused}
    assert sorted(outcomes) == list(range(len(items)))
    run.outcomes += [outcomes[i] for i in range(len(items))]
    run.created += [r.entry_id for r in result.created]


def _between_batches(db, step: tuple, run: Run, at: datetime) -> datetime:
    """Approve, reject or correct one of the entries made so far (the same one on both sides)."""
    if step[0] in ("approve", "reject", "correct") and run.created:
        entry_id = run.created[step[1] % len(run.created)]
        try:
            with db.sessions.begin() as s:
                if step[0] == "correct":
                    ledger.correct(s, entry_id, XIONG, "记错了", at, RULES)
                else:
                    ledger.approve(s, entry_id, CENTER, step[0] == "approve", at, RULES)
        except GridflowError:
            pass  # refused the same way on both sides; the states are compared at the end
    return at + timedelta(minutes=7)


def _item(drawn: tuple, case_code: str) -> Item:
    household, rule, recorder, on_date, evidence, case, key = drawn
    return Item(household, rule, recorder, on_date, evidence, case_code if case == CASE else case, key)


def _args(drawn: tuple, case_code: str, at: datetime) -> tuple:
    item = _item(drawn, case_code)
    return (
        item.household_id,
        item.rule_code,
        item.recorder_id,
        item.on_date,
        at,
        RULES,
        SH,
        item.evidence,
        item.case_code,
        item.key,
    )


ITEMS = st.tuples(
    st.sampled_from([H1, H1, H1, H2, H3, B1, NO_BALANCE, GONE, "MYT-99-9999"]),
    st.sampled_from([*RULES.rules, *["good_neighbour"] * 6, *["five_good_family"] * 2, "singing"]),  # limits reached
    st.sampled_from([AN, AN, AN, XIONG, XIONG, WANG, CENTER, "p-nobody"]),
    st.sampled_from([date(2026, 10, 31), date(2026, 11, 1), DAY, DAY, date(2026, 11, 10), date(2026, 11, 11)]),
    st.sampled_from([None, "扫院坝", " 扫院坝 ", "送老人看病", "调解邻里", "第二次"]),  # 2nd = 1st once trimmed
    st.sampled_from([None, None, None, None, CASE, "SL-NOPE"]),
    st.sampled_from([None, None, None, None, "form-1", "form-2"]),
)
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("items"), st.lists(ITEMS, min_size=1, max_size=8)),
        st.tuples(st.just("repeat"), ITEMS, st.integers(2, 6)),  # the same deed again: the limits
        st.tuples(st.just("next sheet")),
        st.tuples(st.sampled_from(["approve", "reject", "correct"]), st.integers(0, 20)),
    ),
    min_size=1,
    max_size=12,
)


def flat(steps: list[tuple]) -> list[tuple]:
    """One ``("item", drawn)`` per item; a repeat differs in its evidence each time (a new deed, a new key)."""
    out: list[tuple] = []
    for step in steps:
        if step[0] == "items":
            out += [("item", drawn) for drawn in step[1]]
        elif step[0] == "repeat":
            drawn, times = step[1], step[2]
            out += [("item", (*drawn[:4], f"{drawn[4] or ''}{i}", *drawn[5:])) for i in range(times)]
        else:
            out.append(step)
    return out


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_a_sheet_records_exactly_what_record_records_one_by_one(db, steps):
    steps = flat(steps)
    case_code = seed(db)
    expected = one_by_one(db, steps, case_code)
    wanted = state(db)
    assert seed(db) == case_code
    got = in_batches(db, steps, case_code)
    assert got.outcomes == expected.outcomes
    assert got.created == expected.created
    assert state(db) == wanted  # entries, balances, approvals, the stored rules: every row of every table


# -- bad items ------------------------------------------------------------------------------------------

GOOD = Item(H1, "public_service", AN, DAY, "打扫村道")
BAD = (
    (Item(H1, "singing", AN, DAY, "唱歌"), NotFound, "no points rule 'singing'"),
    (Item("MYT-99-9999", "public_service", AN, DAY), NotFound, "no household 'MYT-99-9999'"),
    (Item(GONE, "public_service", AN, DAY), PointsRejected, "no longer in the archive"),
    (Item(B1, "public_service", AN, DAY), PermissionDenied, "may not record 参加义务劳动"),  # another grid
    (Item(H2, "enterprise", AN, DAY), PermissionDenied, "needs village_secretary"),
    (Item(H2, "public_service", "p-nobody", DAY), NotFound, "no person 'p-nobody'"),
    (Item(H2, "public_service", AN, date(2026, 11, 11)), PointsRejected, "is in the future"),
    (Item(H2, "public_service", AN, DAY, case_code="SL-NOPE"), NotFound, "no case 'SL-NOPE'"),
    (Item(H3, "public_service", AN, DAY, key="form-of-h1"), PointsRejected, "was used for entry #"),
    (Item(H1, "good_neighbour", AN, DAY, "第四次"), PointsRejected, "at most 3 time(s) per month"),
)


@pytest.mark.parametrize(("bad", "error", "text"), BAD, ids=[b[2] for b in BAD])
def test_a_bad_item_refuses_the_sheet_or_alone_with_skip_bad(db, bad, error, text):
    seed(db)
    with db.sessions.begin() as s:  # an entry holds the key form-of-h1; H1 has its three good_neighbour
        ledger.record(s, H1, "clean_courtyard", AN, DAY, T, RULES, SH, key="form-of-h1")
        for i in range(3):
            ledger.record(s, H1, "good_neighbour", AN, DAY, T, RULES, SH, evidence=f"第{i + 1}次")
    before = state(db)
    items = [GOOD, bad, GOOD._replace(household_id=H2)]
    with pytest.raises(BatchRefused) as refused:
        sheet(db, items)
    assert [(r.index, type(r.error)) for r in refused.value.refused] == [(1, error)]
    assert text in str(refused.value) and "#1 (" in str(refused.value)
    assert state(db) == before
    result = sheet(db, items, skip_bad=True)
    assert [(r.index, r.created) for r in result.recorded] == [(0, True), (2, True)]
    assert [(r.index, type(r.error)) for r in result.refused] == [(1, error)]
    assert text in result.refused[0].reason
    with db.sessions.begin() as s, pytest.raises(error) as alone:  # what record says of the same item
        ledger.record(s, *bad[:4], T, RULES, SH, *bad[4:])
    assert str(alone.value) == result.refused[0].reason


def test_the_error_lists_every_bad_item_with_its_index(db):
    seed(db)
    items = [GOOD, *(bad for bad, _, _ in BAD[:8]), GOOD._replace(evidence="另一次")]
    with pytest.raises(BatchRefused) as refused:
        sheet(db, items)
    assert [r.index for r in refused.value.refused] == list(range(1, 9))
    message = str(refused.value)
    assert message.startswith("8 of 10 item(s) refused, so nothing was recorded")
    for index, (_, _, text) in enumerate(BAD[:8], start=1):
        assert f"  #{index} (" in message and text in message
    with db.sessions.begin() as s:
        assert s.scalar(select(func.count()).select_from(PointsEntry)) == 0


def test_the_limit_counts_the_sheet_in_order_and_frees_what_was_rejected_or_corrected(db):
    seed(db)
    with db.sessions.begin() as s:
        yearly = ledger.record(s, H1, "five_good_family", XIONG, DAY, T, RULES, SH).entry.id
        twice = [
            ledger.record(s, H2, "good_neighbour", AN, DAY, T, RULES, SH, evidence=str(i)).entry.id for i in (1, 2)
        ]
    with db.sessions.begin() as s:
        ledger.approve(s, yearly, CENTER, False, T, RULES, "不符合条件")
        ledger.correct(s, twice[0], XIONG, "记错户", T, RULES)
    items = [
        Item(H1, "five_good_family", XIONG, date(2026, 11, 8), "评为五好家庭"),  # the rejected one frees the year
        Item(H1, "five_good_family", XIONG, DAY, "又评一次"),  # refused: the year's one is the item above
        Item(H2, "good_neighbour", AN, DAY, "3"),  # 1 counted (the corrected one and its correction take none)
        Item(H2, "good_neighbour", AN, DAY, "4"),  # the third
        Item(H2, "good_neighbour", AN, DAY, "5"),  # refused: three this month
        Item(H2, "good_neighbour", AN, date(2026, 10, 31), "十月的"),  # October has its own three
    ]
    result = sheet(db, items, skip_bad=True)
    assert [r.index for r in result.created] == [0, 2, 3, 5]
    assert [(r.index, type(r.error)) for r in result.refused] == [(1, PointsRejected), (4, PointsRejected)]
    assert "has 1 in 2026 already" in result.refused[0].reason
    assert "has 3 in 2026-11 already" in result.refused[1].reason


# -- duplicates -----------------------------------------------------------------------------------------


def test_duplicates_within_a_sheet_are_the_first_item_entry(db):
    seed(db)
    items = [
        Item(H1, "filial_piety", AN, DAY, "照顾母亲"),
        Item(H1, "filial_piety", AN, DAY, " 照顾母亲 "),  # the same form: the same derived key
        Item(H2, "enterprise", XIONG, DAY, "花椒", key="form-9"),
        Item(H2, "enterprise", XIONG, DAY, "花椒种植", key="form-9"),  # the same key, other words
        Item(H3, "enterprise", XIONG, DAY, key="form-9"),  # the same key for another household
    ]
    result = sheet(db, items, skip_bad=True)
    first, again, pending, pending_again = result.recorded
    assert (first.created, again.created, again.entry_id, again.pending) == (True, False, first.entry_id, False)
    assert (pending.pending, pending_again.created, pending_again.entry_id) == (True, False, pending.entry_id)
    assert pending_again.pending
    assert [(r.index, r.reason) for r in result.refused] == [
        (4, f"key 'form-9' was used for entry #{pending.entry_id} of another household or rule")
    ]
    seed(db)
    with pytest.raises(BatchRefused, match="key 'form-9' was used for item #2 of this batch"):
        sheet(db, items)


def test_a_sheet_submitted_again_records_nothing_and_names_the_entries(db):
    seed(db)
    items = [
        Item(H1, "waste_sorting", AN, DAY, "分类"),
        Item(H2, "lavish_ceremony", AN, DAY, "大办寿宴"),
        Item(NO_BALANCE, "caring_elders", AN, DAY),
    ]
    with db.sessions.begin() as s:
        by_record = ledger.record(s, H3, "dumping", AN, DAY, T, RULES, SH, evidence="河边倒垃圾").entry.id
    first = sheet(db, items)
    assert [r.created for r in first.recorded] == [True, True, True]
    assert balance(db, NO_BALANCE) == (3, 0, 0, 3)  # the balance row made on the way
    after_first = state(db)
    again = sheet(db, [*items, Item(H3, "dumping", AN, DAY, "河边倒垃圾")], at=T + timedelta(hours=3))
    assert [(r.created, r.entry_id) for r in again.recorded] == [
        *((False, r.entry_id) for r in first.recorded),
        (False, by_record),
    ]
    assert [r.pending for r in again.recorded] == [False, True, False, False]
    assert state(db) == after_first
    with db.sessions.begin() as s:
        ledger.approve(s, first.recorded[1].entry_id, CENTER, True, T, RULES)
    assert sheet(db, items[1:2]).recorded[0].pending is False


def test_balances_move_with_awards_that_count_only(db):
    seed(db)
    sheet(
        db,
        [
            Item(H1, "filial_piety", AN, DAY, "1"),
            Item(H1, "caring_elders", AN, DAY, "2"),
            Item(H1, "dumping", AN, DAY, "3"),  # a deduction: standing, not balance
            Item(H1, "enterprise", XIONG, DAY, "4"),  # pending: counts once approved
            Item(H2, "waste_sorting", AN, DAY, "5"),
        ],
    )
    assert balance(db, H1) == (8, 0, 0, 8)
    assert balance(db, H2) == (1, 0, 0, 1)
    assert balance(db, H3) == (0, 0, 0, 0)


# -- set-based ------------------------------------------------------------------------------------------


def test_the_number_of_statements_does_not_grow_with_the_sheet(db):
    seed(db)
    with db.sessions.begin() as s:
        ids = [f"MYT-01-{i:04d}" for i in range(100, 400)]
        for hid in ids:
            s.add(Household(id=hid, village_id="mayingtai", grid_id="mayingtai-01", head_name="户", updated_at=T))
        s.flush()
        for hid in ids:
            ledger.ensure_balance(s, hid)
    rules = ["waste_sorting", "filial_piety", "dumping", "good_neighbour"]

    def statements(n: int, day: date) -> int:
        items = [Item(ids[i % len(ids)], rules[i % 4], AN, day, f"第{i}项") for i in range(n)]
        executed: list[str] = []
        listener = lambda *args: executed.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            result = sheet(db, items, at=datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert len(result.created) == n
        return len(executed)

    statements(1, date(2026, 10, 31))  # the first stores the rules' version and may load the org snapshot
    few, many = statements(8, date(2026, 11, 1)), statements(600, date(2026, 11, 2))
    assert few == many <= 12


def test_plain_tuples_are_items_and_an_empty_sheet_does_nothing(db):
    seed(db)
    assert sheet(db, []) == batch.BatchResult((), ())
    result = sheet(db, [(H1, "waste_sorting", AN, DAY, "分类", None, "t-1")])
    with db.sessions.begin() as s:
        entry = s.get(PointsEntry, result.recorded[0].entry_id)
        assert (entry.key, entry.evidence, entry.points, entry.kind) == ("t-1", "分类", 1, "award")


def test_two_sheets_at_once_never_pass_a_limit_together(pg_db):
    """On PostgreSQL, two clerks submit three 邻里和睦 (at most 3 a month) for the same households at once."""
    seed(pg_db)
    barrier = threading.Barrier(2)
    results: list[batch.BatchResult] = []

    def clerk(who: str) -> None:
        items = [Item(h, "good_neighbour", AN, DAY, f"{who}{i}") for h in (H1, H2) for i in range(3)]
        with pg_db.sessions.begin() as s:
            barrier.wait()
            results.append(batch.record_many(s, items, T, RULES, SH, skip_bad=True))

    threads = [threading.Thread(target=clerk, args=(who,)) for who in ("甲", "乙")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(len(r.created) for r in results) == [0, 6]
    assert sorted(len(r.refused) for r in results) == [0, 6]
    assert balance(pg_db, H1) == (9, 0, 0, 9) and balance(pg_db, H2) == (9, 0, 0, 9)
