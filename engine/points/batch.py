"""A day's sheet of points (日记录表) recorded set-based: the checks and outcome of :func:`ledger.record`
for every item in order, in a handful of statements per batch instead of a handful per entry.

:func:`record_many` reads what the checks need in one query each — the keys already used, the
households (locked, in id order), their balance rows, the cases named, and the entries that count
against the limits, per household, rule and month — then decides every item in memory, in order, as
``record`` would one call after the other: the org snapshot answers the role checks, and each item
accepted counts against the limits and keys of the items after it. What is accepted is written with
one bulk ``INSERT`` of the entries and one ``UPDATE`` of the balances. On PostgreSQL every list travels
as one array parameter (``= ANY``, ``unnest``), so each statement stays short whatever the sheet's size;
elsewhere as ``IN`` lists, a multi-row ``INSERT`` and one ``UPDATE`` per household (executemany).

Every item's day obeys the dating window of :mod:`engine.points.ledger` (counted from ``now``, the
clock's time, default ``at``): an item dated before it is a bad item like any other, and a sheet recorded
at a time before it is refused as a whole (:class:`PointsRejected`, even with ``skip_bad``).

An item whose key was used before (by an entry, or by an earlier item of the batch) is a duplicate:
it records nothing and reports that entry, as ``record`` does. A bad item (no such household, rule
or case, a role the recorder does not hold, a day in the future, a limit reached, a key of another
household or rule) refuses the whole batch by default, with :class:`BatchRefused` listing every bad
item and nothing written; with ``skip_bad=True`` the good items are recorded and the bad ones
returned, each with the error ``record`` would have raised for it.

Keys are looked up as stored, cut to 100 characters (``record`` looks a longer key up whole and then
stores it cut, so its second submission fails on the unique key instead of being a duplicate).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import ARRAY, ColumnElement, and_, any_, bindparam, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from engine.errors import GridflowError, NotFound
from engine.jobs import period_of
from engine.points.ledger import PointsRejected, Window, check_time, derived_key, org, require_role, store_rules
from engine.points.rules import PointsRules, Rule
from engine.scope import OrgSnapshot
from engine.store.models import Case, Household, HouseholdBalance, PointsApproval, PointsEntry
from engine.timeutil import require_aware

KEY_LENGTH = 100  # PointsEntry.key
IN_CHUNK = 2_000  # ids per IN list: far below the drivers' limits on bound parameters

_ENTRY = PointsEntry.__table__
_BALANCE = HouseholdBalance.__table__


class Item(NamedTuple):
    """One line of the sheet: the arguments of :func:`ledger.record` that vary per entry."""

    household_id: str
    rule_code: str
    recorder_id: str
    on_date: date
    evidence: str | None = None
    case_code: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class Recorded:
    """An item that stands in the ledger: a new entry, or (``created`` False) the entry of its key."""

    index: int
    entry_id: int
    created: bool
    pending: bool  # waiting for a second person's approval


@dataclass(frozen=True)
class Refused:
    """An item ``record`` would have refused, and the error it would have raised."""

    index: int
    item: Item
    error: GridflowError

    @property
    def reason(self) -> str:
        return str(self.error)

    def __str__(self) -> str:
        return f"#{self.index} ({self.item.household_id}, {self.item.rule_code}, {self.item.on_date}): {self.error}"


@dataclass(frozen=True)
class BatchResult:
    recorded: tuple[Recorded, ...]  # in item order
    refused: tuple[Refused, ...]  # empty unless skip_bad

    @property
    def created(self) -> tuple[Recorded, ...]:
        return tuple(r for r in self.recorded if r.created)

    @property
    def duplicates(self) -> tuple[Recorded, ...]:
        return tuple(r for r in self.recorded if not r.created)


class BatchRefused(PointsRejected):
    """At least one item of a batch is bad, so nothing of the batch was recorded."""

    def __init__(self, refused: Sequence[Refused], total: int):
        self.refused = tuple(refused)
        head = (
            f"{len(self.refused)} of {total} item(s) refused, so nothing was recorded; correct them and submit the "
            "sheet again (or record the good items and get the bad ones back with skip_bad=True):"
        )
        super().__init__("\n".join([head, *(f"  {r}" for r in self.refused)]))


def record_many(
    session: Session,
    items: Iterable[Item | tuple],
    at: datetime,
    rules: PointsRules,
    tz: ZoneInfo,
    skip_bad: bool = False,
    now: datetime | None = None,
) -> BatchResult:
    """Record ``items`` at ``at``, in the caller's transaction, as ``record`` would one after the other;
    ``now`` (default ``at``) is the clock's time, which the dating window is counted from."""
    at = require_aware(at)
    sheet = [item if isinstance(item, Item) else Item(*item) for item in items]
    if not sheet:
        return BatchResult((), ())
    window = check_time(session, at, now, tz, rules, "the time the sheet is recorded (at)")
    sql = _Sql.of(session)
    known = _Known.read(sql, sheet, rules)
    decided = _Decider(known, rules, at.astimezone(tz).date(), window).decide(sheet)
    if (decided.refused or decided.key_of_another) and not skip_bad:
        raise BatchRefused(decided.all_refused(lambda i: f"item #{i} of this batch"), len(sheet))
    ids = _write(sql, decided, rules, at)
    return decided.result(ids)


# -- what the checks need, one query each ----------------------------------------------------------


@dataclass(frozen=True)
class _Home:
    id: str
    place_id: str  # the grid, or the village for a household outside every grid
    active: bool


@dataclass(frozen=True)
class _Existing:
    id: int
    household_id: str
    rule: str | None
    pending: bool


@dataclass
class _Known:
    """The database as the checks see it, before the batch writes anything."""

    keys: dict[str, _Existing]
    homes: dict[str, _Home]
    balances: set[str]
    cases: dict[str, int]
    used: Counter[tuple[str, str, str]]  # (household, rule, period key) -> entries that count against the limit
    org: OrgSnapshot

    @classmethod
    def read(cls, sql: _Sql, sheet: list[Item], rules: PointsRules) -> _Known:
        keys = _existing_keys(sql, {_key(item) for item in sheet})
        fresh = [item for item in sheet if _key(item) not in keys]
        households = {item.household_id for item in fresh}
        return cls(  # in this order: the households are locked before their entries are counted
            keys=keys,
            homes=_homes(sql, households),
            balances=_with_balance(sql, households),
            cases=_cases(sql, {item.case_code for item in fresh if item.case_code}),
            used=_used(sql, fresh, rules),
            org=org(sql.session),
        )


def _key(item: Item) -> str:
    key = item.key or derived_key(item.household_id, item.rule_code, item.on_date, item.recorder_id, item.evidence)
    return key[:KEY_LENGTH]


@dataclass(frozen=True)
class _Sql:
    """The statements whose size would grow with the sheet, kept short: on PostgreSQL a list travels as one
    array parameter (``= ANY``, ``unnest``); elsewhere as an ``IN`` list or a multi-row ``INSERT``."""

    session: Session
    postgres: bool

    @classmethod
    def of(cls, session: Session) -> _Sql:
        return cls(session, session.connection().dialect.name == "postgresql")

    def among(self, column: ColumnElement[Any], values: Iterable[Any]) -> Iterator[ColumnElement[bool]]:
        """``column IN values``, one condition per statement to run (several only past ``IN_CHUNK`` values)."""
        ordered = sorted(values)
        if self.postgres and ordered:
            yield column == any_(literal(ordered, ARRAY(column.type)))
            return
        for start in range(0, len(ordered), IN_CHUNK):
            yield column.in_(ordered[start : start + IN_CHUNK])

    def unnest(self, columns: dict[str, Any], rows: list[dict[str, Any]]) -> Any:
        """The rows as a PostgreSQL ``unnest`` of one array per column (``columns``: name -> type)."""
        arrays = (literal([row[name] for row in rows], ARRAY(kind)) for name, kind in columns.items())
        return func.unnest(*arrays).table_valued(*columns).render_derived()


def _existing_keys(sql: _Sql, keys: set[str]) -> dict[str, _Existing]:
    a = PointsApproval.__table__
    found = {}
    for among in sql.among(_ENTRY.c.key, keys):
        stmt = (
            select(
                _ENTRY.c.key, _ENTRY.c.id, _ENTRY.c.household_id, _ENTRY.c.rule, _ENTRY.c.needs_approval, a.c.entry_id
            )
            .select_from(_ENTRY.outerjoin(a, a.c.entry_id == _ENTRY.c.id))
            .where(among)
        )
        for key, id_, household_id, rule, needs_approval, decided in sql.session.execute(stmt):
            found[key] = _Existing(id_, household_id, rule, bool(needs_approval) and decided is None)
    return found


def _homes(sql: _Sql, households: set[str]) -> dict[str, _Home]:
    """The households, locked in id order (the lock ``record`` takes, so limit checks of one household queue)."""
    h = Household.__table__
    found = {}
    for among in sql.among(h.c.id, households):
        stmt = select(h.c.id, h.c.grid_id, h.c.village_id, h.c.active).where(among).order_by(h.c.id)
        for id_, grid_id, village_id, active in sql.session.execute(stmt.with_for_update()):
            found[id_] = _Home(id_, grid_id or village_id, bool(active))
    return found


def _with_balance(sql: _Sql, households: set[str]) -> set[str]:
    found: set[str] = set()
    for among in sql.among(_BALANCE.c.household_id, households):
        found.update(sql.session.scalars(select(_BALANCE.c.household_id).where(among)))
    return found


def _cases(sql: _Sql, codes: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for among in sql.among(Case.__table__.c.code, codes):
        found.update((code, id_) for code, id_ in sql.session.execute(select(Case.code, Case.id).where(among)))
    return found


def _used(sql: _Sql, sheet: list[Item], rules: PointsRules) -> Counter[tuple[str, str, str]]:
    """Entries counting against the limits, as ``record`` counts them (not corrected, not rejected), for the
    households and limited rules of the sheet over the periods its items fall in: one aggregate per month."""
    windows: dict[str, tuple[str, str]] = {}
    households: set[str] = set()
    for item in sheet:
        rule = rules.rules.get(item.rule_code)
        if rule is None or rule.limit is None:
            continue
        period = period_of(rule.limit.period, item.on_date)  # type: ignore[arg-type]
        low, high = windows.get(rule.code, (period.start.isoformat(), period.end.isoformat()))
        windows[rule.code] = (min(low, period.start.isoformat()), max(high, period.end.isoformat()))
        households.add(item.household_id)
    used: Counter[tuple[str, str, str]] = Counter()
    if not windows:
        return used
    month = func.substr(_ENTRY.c.on_date, 1, 7)
    # Probes of a unique index per entry (``record`` says ``NOT IN`` a subquery, which PostgreSQL may answer by
    # reading every correction or, with stale statistics, the whole ledger). Only an entry that needed approval
    # can have been rejected (``approve`` refuses the others): the approvals are probed for those alone, so a
    # plan made for few approvals (a scan of them per entry) stays cheap as they grow.
    correction, approval = _ENTRY.alias("correction"), PointsApproval.__table__
    corrected = select(correction.c.id).where(correction.c.reverses_id == _ENTRY.c.id).exists()
    rejected = (
        select(approval.c.entry_id).where(approval.c.entry_id == _ENTRY.c.id, approval.c.approved.is_(False)).exists()
    )
    in_window = or_(
        *(
            and_(_ENTRY.c.rule == code, _ENTRY.c.on_date >= lo, _ENTRY.c.on_date < hi)
            for code, (lo, hi) in windows.items()
        )
    )
    for among in sql.among(_ENTRY.c.household_id, households):
        stmt = (
            select(_ENTRY.c.household_id, _ENTRY.c.rule, month, func.count())
            .where(among, in_window)
            .where(_ENTRY.c.kind.in_(("award", "deduct")), ~corrected)
            .where(or_(_ENTRY.c.needs_approval.is_(False), ~rejected))
            .group_by(_ENTRY.c.household_id, _ENTRY.c.rule, month)
        )
        for household_id, code, yyyy_mm, n in sql.session.execute(stmt):
            kind = rules.rules[code].limit.period  # type: ignore[union-attr]
            first = date(int(yyyy_mm[:4]), int(yyyy_mm[5:7]), 1)
            used[(household_id, code, period_of(kind, first).key)] += n  # type: ignore[arg-type]
    return used


# -- deciding every item in order, in memory -------------------------------------------------------


@dataclass(frozen=True)
class _New:
    index: int
    item: Item
    rule: Rule
    key: str
    case_id: int | None


@dataclass(frozen=True)
class _Same:
    """A duplicate: of an entry already stored (``entry_id``), or of an earlier item (``of_index``)."""

    index: int
    entry_id: int | None = None
    of_index: int | None = None
    pending: bool = False


@dataclass(frozen=True)
class _KeyOfAnother:
    """The key of an earlier item of the batch for another household or rule: its entry id is known once written."""

    index: int
    item: Item
    key: str
    of_index: int


@dataclass
class _Decided:
    new: list[_New] = field(default_factory=list)
    same: list[_Same] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    key_of_another: list[_KeyOfAnother] = field(default_factory=list)
    missing_balances: set[str] = field(default_factory=set)

    def result(self, ids: dict[int, int]) -> BatchResult:
        """The outcome per item, now that the new entries have ids (``ids``: item index -> entry id)."""
        pending = {n.index: n.rule.approval for n in self.new}
        recorded = [Recorded(n.index, ids[n.index], True, n.rule.approval) for n in self.new]
        for s in self.same:
            if s.of_index is None:
                recorded.append(Recorded(s.index, s.entry_id, False, s.pending))  # type: ignore[arg-type]
            else:
                recorded.append(Recorded(s.index, ids[s.of_index], False, pending[s.of_index]))
        refused = self.all_refused(lambda i: f"entry #{ids[i]}")
        return BatchResult(tuple(sorted(recorded, key=lambda r: r.index)), refused)

    def all_refused(self, holder: Callable[[int], str]) -> tuple[Refused, ...]:
        """Every refusal in item order; ``holder(i)`` names what holds the key item ``i`` took."""
        taken = [Refused(k.index, k.item, _key_taken(k.key, holder(k.of_index))) for k in self.key_of_another]
        return tuple(sorted([*self.refused, *taken], key=lambda r: r.index))


def _key_taken(key: str, by: str) -> PointsRejected:
    return PointsRejected(f"key {key!r} was used for {by} of another household or rule")


class _Decider:
    def __init__(self, known: _Known, rules: PointsRules, today: date, window: Window):
        self.known = known
        self.rules = rules
        self.today = today
        self.window = window
        self.used = Counter(known.used)
        self.taken: dict[str, _New] = {}  # keys of the items accepted so far

    def decide(self, sheet: list[Item]) -> _Decided:
        decided = _Decided()
        for index, item in enumerate(sheet):
            try:
                self._one(decided, index, item)
            except GridflowError as exc:  # the error ``record`` raises for it; nothing of it is written
                decided.refused.append(Refused(index, item, exc))
        decided.missing_balances = {n.item.household_id for n in decided.new} - self.known.balances
        return decided

    def _one(self, decided: _Decided, index: int, item: Item) -> None:
        rule = self.rules.rule(item.rule_code)
        key = _key(item)
        if self._duplicate(decided, index, item, key):
            return
        home = self._home(item.household_id)
        require_role(self.known.org, item.recorder_id, home.place_id, rule.roles, f"record {rule.label}")
        if item.on_date > self.today:
            raise PointsRejected(
                f"{item.on_date} is in the future (today is {self.today}); record a deed on or after its day"
            )
        self.window.check(item.on_date, "the day of the deed (on)")
        counted = self._within_limit(home.id, rule, item.on_date)
        case_id = self._case(item.case_code)
        new = _New(index, item, rule, key, case_id)
        decided.new.append(new)
        self.taken[key] = new
        if counted is not None:
            self.used[counted] += 1

    def _duplicate(self, decided: _Decided, index: int, item: Item, key: str) -> bool:
        mine = (item.household_id, item.rule_code)
        stored = self.known.keys.get(key)
        if stored is not None:
            if (stored.household_id, stored.rule) != mine:
                raise _key_taken(key, f"entry #{stored.id}")
            decided.same.append(_Same(index, entry_id=stored.id, pending=stored.pending))
            return True
        earlier = self.taken.get(key)
        if earlier is None:
            return False
        if (earlier.item.household_id, earlier.rule.code) != mine:
            decided.key_of_another.append(_KeyOfAnother(index, item, key, earlier.index))
            return True
        decided.same.append(_Same(index, of_index=earlier.index))
        return True

    def _home(self, household_id: str) -> _Home:
        home = self.known.homes.get(household_id)
        if home is None:
            raise NotFound(f"no household {household_id!r}; `gridflow archive list` shows the households")
        if not home.active:
            raise PointsRejected(f"household {household_id} is no longer in the archive")
        return home

    def _within_limit(self, household_id: str, rule: Rule, on_date: date) -> tuple[str, str, str] | None:
        if rule.limit is None:
            return None
        period = period_of(rule.limit.period, on_date)  # type: ignore[arg-type]
        counted = (household_id, rule.code, period.key)
        used = self.used[counted]
        if used >= rule.limit.times:
            raise PointsRejected(
                f"{rule.label} ({rule.code}) may be recorded at most {rule.limit.times} time(s) per "
                f"{rule.limit.period} for a household; {household_id} has {used} in {period.key} already"
            )
        return counted

    def _case(self, case_code: str | None) -> int | None:
        if not case_code:
            return None
        case_id = self.known.cases.get(case_code)
        if case_id is None:
            raise NotFound(f"no case {case_code!r}; `gridflow case list` shows the cases")
        return case_id


# -- writing what was accepted -------------------------------------------------------------------


def _write(sql: _Sql, decided: _Decided, rules: PointsRules, at: datetime) -> dict[int, int]:
    """One INSERT of the entries, the missing balance rows, one UPDATE of the balances; item index -> entry id."""
    if not decided.new:
        return {}
    store_rules(sql.session, rules, at)
    stored = _insert_entries(sql, [_entry_row(new, rules, at) for new in decided.new])
    if decided.missing_balances:
        zero = {"earned": 0, "redeemed": 0, "refunded": 0, "balance": 0}
        rows = [{"household_id": h, **zero} for h in sorted(decided.missing_balances)]
        sql.session.execute(insert(_BALANCE), rows)
    _earn(sql, decided.new)
    return {new.index: stored[new.key] for new in decided.new}


def _insert_entries(sql: _Sql, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Key -> id of the entries inserted."""
    returning = (_ENTRY.c.key, _ENTRY.c.id)
    if not sql.postgres:
        return {key: id_ for key, id_ in sql.session.execute(insert(_ENTRY).returning(*returning), rows)}
    source = sql.unnest({name: _ENTRY.c[name].type for name in rows[0]}, rows)
    stmt = insert(_ENTRY).from_select(list(rows[0]), select(*source.c)).returning(*returning)
    return {key: id_ for key, id_ in sql.session.execute(stmt)}


def _entry_row(new: _New, rules: PointsRules, at: datetime) -> dict[str, Any]:
    rule, item = new.rule, new.item
    return {
        "household_id": item.household_id,
        "kind": "award" if rule.points > 0 else "deduct",
        "rule": rule.code,
        "rules_version": rules.version,
        "category": rule.category,
        "points": rule.points,
        "on_date": item.on_date.isoformat(),
        "recorded_at": at,
        "effective_at": None if rule.approval else at,
        "recorder_id": item.recorder_id,
        "evidence": (item.evidence or "").strip() or None,
        "case_id": new.case_id,
        "reverses_id": None,
        "redemption_id": None,
        "needs_approval": rule.approval,
        "key": new.key,
    }


def _earn(sql: _Sql, new: list[_New]) -> None:
    """Awards that count at once raise the redeemable balance (deductions and pending entries do not)."""
    earned: Counter[str] = Counter()
    for n in new:
        if n.rule.points > 0 and not n.rule.approval:
            earned[n.item.household_id] += n.rule.points
    if not earned:
        return
    rows = [{"household": h, "points": p} for h, p in sorted(earned.items())]
    b = _BALANCE.c
    if sql.postgres:
        source = sql.unnest({"household": b.household_id.type, "points": b.earned.type}, rows)
        stmt = update(_BALANCE).where(b.household_id == source.c.household)
        sql.session.execute(stmt.values(earned=b.earned + source.c.points, balance=b.balance + source.c.points))
        return
    points = bindparam("points")
    stmt = update(_BALANCE).where(b.household_id == bindparam("household"))
    sql.session.execute(stmt.values(earned=b.earned + points, balance=b.balance + points), rows)
