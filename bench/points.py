"""Benchmark: a year of household points (户档积分) recorded sheet by sheet, then the households' periods.

One run on the real local PostgreSQL server, in throwaway databases (created, migrated and seeded
with the sample org chart and the default workflow here; dropped at the end, also after an error or
Ctrl-C):

1. **seed** ``--households`` households (1,881: all of them) from the sample archive generator
   (``engine.archive.sample.generate``), as many per grid cell as its ``households`` count in
   ``config/org/shengli.yaml`` (fewer: the same shares, rounded by largest remainder), inserted
   directly with zero balances; and the store's goods (``config/store.yaml``);
2. **record** ``--days`` days of 2026 from 1 January. Each household has 0–3 deeds a day (about one
   on average), drawn from ``config/points.yaml`` with fixed weights: small awards mostly, some
   deductions, about 1 % needing approval. The grid worker of the household's grid records them
   (the village secretary the rules only a secretary may record), one sheet per village per day,
   one transaction each, through ``engine.points.batch.record_many`` (``skip_bad``). The workers
   mostly keep to the limits; one deed in ten is drawn without looking, and the ledger refuses the
   ones over a limit (counted). Every morning the centre decides the day before's entries that
   need approval (9 in 10 approved, ``ledger.approve``); on the 15th, 马营台村's sheet is submitted
   a second time (all duplicates); on a month's last day ten households per village redeem goods
   (``store.redeem``) and the ledger is analysed, as autovacuum would. Only the sheets are timed;
3. **one by one**: the first ``--sample-days`` days again in a second database, each item through
   ``ledger.record`` in the same transactions; its rows must equal the batch's; the ratio of the
   two rates is printed;
4. **check** the ledger: every balance equals earned − redeemed + refunded and the ledger's sums,
   no limit is exceeded, no deed is dated after its recording, and the counts match;
5. **evaluate**, after ``VACUUM (ANALYZE)`` and one untimed warm-up: ``evaluation.compute`` for each
   month of 2026, the fourth quarter and the year as one period, and the whole
   ``scoring.runs.score_period`` of December (no cases: the points part is the work).

Targets (``--check`` exits 1 when one is missed): the year's sheets take at most 10 minutes (with
fewer ``--days``, their time × 365 / days), and no month's ``evaluation.compute`` takes more than 10 s.

    .venv/bin/python -m bench.points                  # a year, 1,881 households: about 700,000 entries
    .venv/bin/python -m bench.points --quick          # January, 200 households
    .venv/bin/python -m bench.points --smoke --json   # January, 20 households: every check (the test suite)
    .venv/bin/python -m bench.points --json --check

``--smoke`` (run by the test suite, ``tests/integration/test_bench_points.py``): 20 households, January
(so the resubmitted sheet of the 15th and the month's last day are in it), 2 days one by one; every
check of the rows runs, the targets are printed but not enforced (``--check`` is ignored). The
databases are dropped on any exit (an error, Ctrl-C, SIGTERM); the report lists them (``databases``).

Exit status: 0 done; 1 a target missed under ``--check`` (or a crash, with its traceback); 2 bad
arguments, no server, or a check of the rows failed; 130 interrupted.
"""

from __future__ import annotations

import argparse
import calendar
import json
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, bench/ would come first on sys.path and bench/transitions.py would be
# imported in place of the ``transitions`` library the engine uses.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy import Engine, insert, text  # noqa: E402
from sqlalchemy.engine import URL  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from bench.transitions import (  # noqa: E402
    ADMIN_URL_ENV,
    DEFAULT_ADMIN_URL,
    BenchError,
    admin_url,
    machine,
    psycopg_conninfo,
    sigterm_as_interrupt,
    throwaway_database,
)
from engine.archive.load import HouseholdSpec  # noqa: E402
from engine.archive.sample import generate  # noqa: E402
from engine.calendar import load_calendars  # noqa: E402
from engine.definitions.loader import load_workflow_file  # noqa: E402
from engine.errors import GridflowError  # noqa: E402
from engine.jobs import bounds, parse_period  # noqa: E402
from engine.org import OrgChart, load_org_file  # noqa: E402
from engine.points import batch, evaluation, ledger, store  # noqa: E402
from engine.points.batch import Item  # noqa: E402
from engine.points.rules import load as load_rules  # noqa: E402
from engine.scoring import config as scoring_config  # noqa: E402
from engine.scoring import runs  # noqa: E402
from engine.store import migrate, org_repo, workflow_repo  # noqa: E402
from engine.store.db import create_db_engine, session_factory  # noqa: E402
from engine.store.models import Household, HouseholdBalance  # noqa: E402
from engine.timeutil import DEFAULT_TZ as TZ  # noqa: E402

ORG_FILE = ROOT / "config" / "org" / "shengli.yaml"
WORKFLOW_FILE = ROOT / "workflows" / "grid_case.yaml"
CALENDAR_FILE = ROOT / "config" / "calendars.yaml"
STORE_FILE = ROOT / "config" / "store.yaml"
SCORING_FILE = ROOT / "config" / "scoring.yaml"
RULES = load_rules(ROOT / "config" / "points.yaml")

YEAR = 2026
FIRST_DAY = date(YEAR, 1, 1)
DAYS_IN_YEAR = 365
SEED_AT = datetime(YEAR - 1, 12, 31, 1, 0, tzinfo=UTC)
CENTER = "p-chen-jia"  # grid management centre: approves
SHEET_TIME = clock(20, 0)  # the day's sheets are entered in the evening
DECIDE_TIME = clock(9, 0)  # the centre decides the day before's entries the next morning
REDEEM_TIME = clock(21, 0)

DEFAULTS = {"days": 365, "households": 1881, "sample_days": 7, "seed": 2026}
QUICK = {"days": 31, "households": 200, "sample_days": 3}
SMOKE = {"days": 31, "households": 20, "sample_days": 2}
LIMITS = {"days": DAYS_IN_YEAR, "households": 1881, "sample_days": 31, "seed": 2**31}
TARGET_YEAR_S = 600.0  # the year's sheets (about 700,000 entries at full size) in at most 10 minutes
TARGET_MONTH_S = 10.0

RULE_WEIGHTS = {  # per deed: small awards mostly, some deductions, about 1 % needing approval
    "waste_sorting": 22,
    "public_service": 15,
    "reporting_problems": 12,
    "clean_courtyard": 11,
    "filial_piety": 10,
    "caring_elders": 10,
    "good_neighbour": 7,
    "dumping": 7,
    "illegal_burning": 2.5,
    "lavish_ceremony": 0.4,
    "enterprise": 0.35,
    "five_good_family": 0.25,
}
DEEDS_PER_DAY = {0: 24, 1: 54, 2: 18, 3: 4}  # 1.02 a household a day on average
KNOWS_THE_LIMITS = 0.9  # the rest are drawn without looking at what the month already holds
APPROVED_SHARE = 0.9  # the rest are rejected
RESUBMIT_DAY, RESUBMIT_VILLAGE = 15, "mayingtai"
REDEEMERS_PER_VILLAGE = 10
GOODS = ("salt", "soap", "vinegar", "toothpaste", "soy_sauce", "towel")
EVIDENCE = {
    "waste_sorting": "垃圾分类投放到位",
    "public_service": "参加村道清扫义务劳动",
    "reporting_problems": "反映路灯损坏",
    "clean_courtyard": "庭院整洁、门前三包落实",
    "filial_piety": "照顾卧病老人",
    "caring_elders": "帮助留守老人收玉米",
    "good_neighbour": "调解邻里宅基地纠纷",
    "dumping": "河沟乱倒生活垃圾",
    "illegal_burning": "田间焚烧秸秆",
    "lavish_ceremony": "大操大办寿宴",
    "enterprise": "发展花椒种植带动三户",
    "five_good_family": "评为村五好家庭",
}


def local(day: date, at: clock) -> datetime:
    return datetime.combine(day, at, TZ).astimezone(UTC)


# -- households and who records for them ---------------------------------------------------------


@dataclass(frozen=True)
class Home:
    id: str
    village: str
    grid: str
    worker: str  # the grid worker of its grid
    secretary: str  # the village secretary


def chosen_households(chart: OrgChart, n: int) -> list[HouseholdSpec]:
    """``n`` of the sample archive's households, each grid cell keeping its share (largest remainder)."""
    by_grid: dict[str, list[HouseholdSpec]] = defaultdict(list)
    for spec in generate(chart):
        by_grid[spec.grid_id].append(spec)
    total = sum(len(specs) for specs in by_grid.values())
    shares = {grid: n * len(specs) / total for grid, specs in by_grid.items()}
    quota = {grid: int(share) for grid, share in shares.items()}
    by_remainder = sorted(shares, key=lambda g: (-(shares[g] - quota[g]), g))
    for grid in by_remainder[: n - sum(quota.values())]:
        quota[grid] += 1
    return [spec for grid, specs in by_grid.items() for spec in specs[: quota[grid]]]


def seed(engine: Engine, sessions: sessionmaker[Session], chart: OrgChart, n: int) -> list[Home]:
    """Migrate; the org chart, the workflow, ``n`` households with zero balances, the store's goods."""
    migrate.upgrade(engine)
    specs = chosen_households(chart, n)
    with sessions.begin() as session:
        org_repo.apply_org_chart(session, chart, SEED_AT)
        workflow_repo.publish(session, load_workflow_file(WORKFLOW_FILE, load_calendars(CALENDAR_FILE)), SEED_AT)
    with sessions.begin() as session:
        session.execute(insert(Household.__table__), [household_row(spec) for spec in specs])
        zero = {"earned": 0, "redeemed": 0, "refunded": 0, "balance": 0}
        session.execute(insert(HouseholdBalance.__table__), [{"household_id": s.id, **zero} for s in specs])
        store.load_goods(session, STORE_FILE)
        return homes(session, specs)


def household_row(spec: HouseholdSpec) -> dict[str, Any]:
    return {
        "id": spec.id,
        "village_id": spec.village_id,
        "group_id": spec.group_id,
        "grid_id": spec.grid_id,
        "head_name": spec.head.name,
        "address": spec.address,
        "members": len(spec.members),
        "active": True,
        "updated_at": SEED_AT,
    }


def homes(session: Session, specs: list[HouseholdSpec]) -> list[Home]:
    """Who records for each household, as the org chart says."""
    org = ledger.org(session)
    found = []
    for spec in specs:
        grid = org.places[spec.grid_id]
        workers, secretaries = org.holders("grid_worker", grid), org.holders("village_secretary", grid)
        if not workers or not secretaries:
            raise BenchError(f"grid {spec.grid_id} has no grid worker or no village secretary in {ORG_FILE.name}")
        found.append(Home(spec.id, spec.village_id, spec.grid_id, workers[0], secretaries[0]))
    return found


# -- the sheets ----------------------------------------------------------------------------------


class Sheets:
    """Each day's items per village, drawn day after day from one seed: the same seed, the same year."""

    def __init__(self, households: list[Home], seed: int):
        self.households = households
        self.rng = random.Random(seed)
        self.offered: Counter[tuple[str, str, str]] = Counter()  # what the workers think a period holds

    def day(self, day: date) -> dict[str, list[Item]]:
        sheets: dict[str, list[Item]] = defaultdict(list)
        counts, weights = list(DEEDS_PER_DAY), list(DEEDS_PER_DAY.values())
        for home in self.households:
            for _ in range(self.rng.choices(counts, weights)[0]):
                rule = RULES.rules[self.rule(home.id, day)]
                recorder = home.worker if "grid_worker" in rule.roles else home.secretary
                sheet = sheets[home.village]
                key = f"sheet:{home.village}:{day.isoformat()}:{len(sheet) + 1:04d}"  # the form's row
                sheet.append(Item(home.id, rule.code, recorder, day, EVIDENCE[rule.code], None, key))
        return dict(sheets)

    def rule(self, household: str, day: date) -> str:
        looking = self.rng.random() < KNOWS_THE_LIMITS
        allowed = [code for code in RULE_WEIGHTS if not looking or self.room(household, code, day)]
        code = self.rng.choices(allowed, [RULE_WEIGHTS[c] for c in allowed])[0]
        limit = RULES.rules[code].limit
        if limit is not None:
            self.offered[(household, code, _period_key(limit.period, day))] += 1
        return code

    def room(self, household: str, code: str, day: date) -> bool:
        limit = RULES.rules[code].limit
        return limit is None or self.offered[(household, code, _period_key(limit.period, day))] < limit.times


def _period_key(kind: str, day: date) -> str:
    return {"month": f"{day:%Y-%m}", "quarter": f"{day.year}Q{(day.month - 1) // 3 + 1}", "year": str(day.year)}[kind]


# -- recording: the batch, or one by one -----------------------------------------------------------


@dataclass
class Outcome:
    created: int = 0
    duplicates: int = 0
    pending: list[int] = field(default_factory=list)  # entry ids waiting for approval
    refused: Counter[str] = field(default_factory=Counter)


def refusal(error: GridflowError) -> str:
    return "limit reached" if "at most" in str(error) else type(error).__name__


def by_batch(session: Session, items: list[Item], at: datetime) -> Outcome:
    result = batch.record_many(session, items, at, RULES, TZ, skip_bad=True)
    return Outcome(
        len(result.created),
        len(result.duplicates),
        [r.entry_id for r in result.created if r.pending],
        Counter(refusal(r.error) for r in result.refused),
    )


def one_by_one(session: Session, items: list[Item], at: datetime) -> Outcome:
    out = Outcome()
    for item in items:
        try:
            done = ledger.record(session, *item[:4], at, RULES, TZ, *item[4:])
        except GridflowError as exc:  # checked before anything is written: the transaction goes on
            out.refused[refusal(exc)] += 1
            continue
        out.created += done.created
        out.duplicates += not done.created
        if done.created and done.pending:
            out.pending.append(done.entry.id)
    return out


@dataclass
class Year:
    """What one database went through, and the time its sheets took."""

    offered: int = 0
    created: int = 0
    duplicates: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    sheets: int = 0
    sheet_seconds: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0
    approved: int = 0
    rejected: int = 0
    redeemed: int = 0
    redemptions_refused: int = 0
    other_seconds: float = 0.0  # approvals and redemptions, not timed as recording
    analyze_seconds: float = 0.0  # ANALYZE at each month's end, not timed as recording
    pending: list[int] = field(default_factory=list)

    def add(self, outcome: Outcome, offered: int, seconds: float, cpu: float) -> None:
        self.offered += offered
        self.created += outcome.created
        self.duplicates += outcome.duplicates
        self.refused.update(outcome.refused)
        self.pending += outcome.pending
        self.sheets += 1
        self.sheet_seconds.append(seconds)
        self.cpu_seconds += cpu

    @property
    def seconds(self) -> float:
        return sum(self.sheet_seconds)


Recorder = Callable[[Session, list[Item], datetime], Outcome]


def record_days(
    sessions: sessionmaker[Session],
    sheets: Sheets,
    days: range,
    record: Recorder,
    year: Year,
    seed: int,
    say: Callable[[str], None] = lambda _: None,
) -> None:
    """The days in order: the morning's decisions, every village's sheet, a resubmission, the month's visits."""
    for offset in days:
        day = FIRST_DAY + timedelta(days=offset)
        started = time.perf_counter()
        decide(sessions, year, day, random.Random(f"{seed}:{day}:decide"))
        year.other_seconds += time.perf_counter() - started
        drawn = sheets.day(day)
        for village in sorted(drawn):
            record_sheet(sessions, drawn[village], local(day, SHEET_TIME), record, year)
        if day.day == RESUBMIT_DAY and RESUBMIT_VILLAGE in drawn:
            record_sheet(sessions, drawn[RESUBMIT_VILLAGE], local(day, SHEET_TIME) + timedelta(hours=1), record, year)
        if day.day == calendar.monthrange(day.year, day.month)[1]:
            started = time.perf_counter()
            redeem(sessions, sheets.households, year, day, random.Random(f"{seed}:{day}:redeem"))
            year.other_seconds += time.perf_counter() - started
            analyze(sessions, year)
            say(f"  {day:%Y-%m}: {year.created:,} entries so far, sheets {year.seconds:.1f} s")


def record_sheet(
    sessions: sessionmaker[Session], items: list[Item], at: datetime, record: Recorder, year: Year
) -> None:
    started, cpu = time.perf_counter(), time.process_time()
    with sessions.begin() as session:
        outcome = record(session, items, at)
    year.add(outcome, len(items), time.perf_counter() - started, time.process_time() - cpu)


def analyze(sessions: sessionmaker[Session], year: Year) -> None:
    """What autovacuum would do as the ledger grows (this bench's server may run without it): fresh statistics,
    and with them fresh plans for the statements the driver has prepared."""
    started = time.perf_counter()
    with sessions.begin() as session:
        session.execute(text("ANALYZE points_entry, points_approval, household_balance"))
    year.analyze_seconds += time.perf_counter() - started


def decide(sessions: sessionmaker[Session], year: Year, day: date, rng: random.Random) -> None:
    """The centre approves (or rejects) the entries of the day before that wait for a second person."""
    waiting, year.pending = year.pending, []
    if not waiting:
        return
    with sessions.begin() as session:
        for entry_id in waiting:
            approved = rng.random() < APPROVED_SHARE
            note = "核实属实" if approved else "经核实不符合条件"
            ledger.approve(session, entry_id, CENTER, approved, local(day, DECIDE_TIME), RULES, note)
            year.approved += approved
            year.rejected += not approved


def redeem(sessions: sessionmaker[Session], households: list[Home], year: Year, day: date, rng: random.Random) -> None:
    """Ten households per village take goods at the store on the month's last day (refused when short)."""
    by_village: dict[str, list[Home]] = defaultdict(list)
    for home in households:
        by_village[home.village].append(home)
    for village in sorted(by_village):
        members = by_village[village]
        for home in rng.sample(members, min(REDEEMERS_PER_VILLAGE, len(members))):
            lines = [store.Line(rng.choice(GOODS), rng.randint(1, 2))]
            try:
                with sessions.begin() as session:
                    at = local(day, REDEEM_TIME)
                    store.redeem(session, home.id, lines, home.worker, at, key=f"redeem:{home.id}:{day}")
                year.redeemed += 1
            except GridflowError:
                year.redemptions_refused += 1


# -- the databases -------------------------------------------------------------------------------


@dataclass
class Db:
    name: str  # the throwaway database's name
    engine: Engine
    sessions: sessionmaker[Session]
    conn: psycopg.Connection  # checks and VACUUM, outside the timed code
    households: list[Home]

    def rows(self, sql: str, params: Any = None) -> list[tuple]:
        rows = self.conn.execute(sql, params).fetchall()
        self.conn.commit()
        return rows

    def one(self, sql: str, params: Any = None) -> Any:
        return self.rows(sql, params)[0][0]

    def vacuum(self) -> None:
        self.conn.autocommit = True
        try:
            self.conn.execute("VACUUM (ANALYZE) points_entry, points_approval, household, household_balance")
        finally:
            self.conn.autocommit = False


@contextmanager
def database(admin: URL, chart: OrgChart, n: int) -> Iterator[Db]:
    with throwaway_database(admin) as url:
        engine = create_db_engine(url.render_as_string(hide_password=False))
        try:
            with psycopg.connect(psycopg_conninfo(url)) as conn:
                sessions = session_factory(engine)
                yield Db(url.database or "", engine, sessions, conn, seed(engine, sessions, chart, n))
        finally:
            engine.dispose()


# -- checks --------------------------------------------------------------------------------------

BALANCES_OFF = """
WITH ledger AS (
    SELECT e.household_id,
           coalesce(sum(e.points) FILTER (WHERE e.kind = 'award' AND (NOT e.needs_approval OR a.approved)), 0) AS earned,
           coalesce(-sum(e.points) FILTER (WHERE e.kind = 'redeem'), 0) AS redeemed,
           coalesce(sum(e.points) FILTER (WHERE e.kind = 'refund'), 0) AS refunded
    FROM points_entry e LEFT JOIN points_approval a ON a.entry_id = e.id
    GROUP BY e.household_id)
SELECT count(*) FROM household_balance b LEFT JOIN ledger l USING (household_id)
WHERE b.balance <> b.earned - b.redeemed + b.refunded OR b.balance < 0
   OR b.earned <> coalesce(l.earned, 0) OR b.redeemed <> coalesce(l.redeemed, 0)
   OR b.refunded <> coalesce(l.refunded, 0)
"""
PERIOD_SQL = {
    "month": "substr(e.on_date, 1, 7)",
    "quarter": "substr(e.on_date, 1, 4) || 'Q' || ((substr(e.on_date, 6, 2)::int - 1) / 3 + 1)",
    "year": "substr(e.on_date, 1, 4)",
}
OVER_LIMIT = """
SELECT count(*) FROM (
    SELECT e.household_id, {period} FROM points_entry e
    LEFT JOIN points_approval a ON a.entry_id = e.id
    WHERE e.rule = %s AND e.reverses_id IS NULL AND a.approved IS DISTINCT FROM false
    GROUP BY e.household_id, {period} HAVING count(*) > %s) over_limit
"""
DATED_LATER = (
    "SELECT count(*) FROM points_entry WHERE on_date > to_char(recorded_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD')"
)
KINDS = "SELECT kind, count(*) FROM points_entry GROUP BY kind"


def check_ledger(db: Db, year: Year) -> dict[str, Any]:
    """Fail loudly unless the ledger, the balances and the tally agree; what was checked."""
    problems = []
    off = db.one(BALANCES_OFF)
    if off:
        problems.append(f"{off} balance(s) differ from earned − redeemed + refunded or from the ledger's sums")
    for rule in RULES.rules.values():
        if rule.limit is not None:
            sql = OVER_LIMIT.format(period=PERIOD_SQL[rule.limit.period])
            over = db.one(sql, (rule.code, rule.limit.times))
            if over:
                problems.append(f"{over} (household, {rule.limit.period}) over the limit of {rule.code}")
    if db.one(DATED_LATER):
        problems.append("entries dated after the day they were recorded")
    kinds = dict(db.rows(KINDS))
    if kinds.get("award", 0) + kinds.get("deduct", 0) != year.created or kinds.get("redeem", 0) != year.redeemed:
        problems.append(f"the ledger holds {kinds}, the tally says {year.created} entries, {year.redeemed} redemptions")
    decided = db.one("SELECT count(*) FROM points_approval")
    if decided != year.approved + year.rejected:
        problems.append(f"{decided} approval rows, the tally says {year.approved + year.rejected}")
    if problems:
        raise BenchError("the ledger is wrong: " + "; ".join(problems))
    return {"balances": len(db.households), "ledger_kinds": kinds, "approvals": decided}


SAME_ROWS = {
    "entries": "SELECT id, household_id, kind, rule, points, on_date, recorded_at, effective_at, recorder_id, evidence,"
    " needs_approval, key, redemption_id FROM points_entry ORDER BY id",
    "balances": "SELECT * FROM household_balance ORDER BY household_id",
    "approvals": "SELECT * FROM points_approval ORDER BY entry_id",
    "redemptions": "SELECT id, household_id, total, key FROM redemption ORDER BY id",
}


def rows_of(db: Db) -> dict[str, list[tuple]]:
    return {name: db.rows(sql) for name, sql in SAME_ROWS.items()}


def check_same(batch_rows: dict[str, list[tuple]], single_rows: dict[str, list[tuple]]) -> None:
    for name, rows in batch_rows.items():
        if rows != single_rows[name]:
            diff = next(((a, b) for a, b in zip(rows, single_rows[name], strict=False) if a != b), None)
            raise BenchError(
                f"record_many and ledger.record one by one wrote different {name} "
                f"({len(rows)} rows against {len(single_rows[name])}; first difference {diff})"
            )


# -- evaluation ----------------------------------------------------------------------------------


def timed_compute(db: Db, kind: str, key: str) -> dict[str, Any]:
    start, end = bounds(parse_period(kind, key), TZ)  # type: ignore[arg-type]
    with db.sessions.begin() as session:
        started = time.perf_counter()
        rows, participation = evaluation.compute(session, start, end, RULES)
        seconds = time.perf_counter() - started
    taking, _ = participation.get("*", (0, 0))
    starred = sum(1 for r in rows if r.stars)
    return {
        "period": key,
        "seconds": round(seconds, 3),
        "households": len(rows),
        "with_award": taking,
        "starred": starred,
    }


def evaluate(db: Db) -> dict[str, Any]:
    started = time.perf_counter()
    db.vacuum()
    vacuum_s = time.perf_counter() - started
    timed_compute(db, "month", f"{YEAR}-12")  # warm-up, not timed
    months = [timed_compute(db, "month", f"{YEAR}-{m:02d}") for m in range(1, 13)]
    quarter = timed_compute(db, "quarter", f"{YEAR}Q4")
    whole = timed_compute(db, "year", str(YEAR))
    config = scoring_config.load(SCORING_FILE)
    december = parse_period("month", f"{YEAR}-12")
    with db.sessions.begin() as session:
        started = time.perf_counter()
        run = runs.score_period(session, december, local(date(YEAR + 1, 1, 1), DECIDE_TIME), config, TZ, "bench", RULES)
        score_s = time.perf_counter() - started
        participation = (run.summary or {}).get("participation_rate", {})
    return {
        "vacuum_analyze_s": round(vacuum_s, 2),
        "months": months,
        "months_total_s": round(sum(m["seconds"] for m in months), 3),
        "quarter": quarter,
        "year": whole,
        "score_period_december": {"seconds": round(score_s, 3), "participation": participation},
    }


# -- the run ---------------------------------------------------------------------------------------


def year_dict(year: Year, days: int) -> dict[str, Any]:
    seconds = year.seconds
    ordered = sorted(year.sheet_seconds)
    return {
        "days": days,
        "sheets": year.sheets,
        "items_offered": year.offered,
        "entries_recorded": year.created,
        "duplicates": year.duplicates,
        "refused": dict(year.refused.most_common()),
        "seconds": round(seconds, 2),
        "entries_per_s": round(year.created / seconds, 1) if seconds else None,
        "items_per_s": round(year.offered / seconds, 1) if seconds else None,
        "sheet_ms_median": round(1000 * statistics.median(ordered), 1) if ordered else None,
        "sheet_ms_p95": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 1) if ordered else None,
        "client_cpu_s": round(year.cpu_seconds, 2),
        "approved": year.approved,
        "rejected": year.rejected,
        "redemptions": year.redeemed,
        "redemptions_refused": year.redemptions_refused,
        "approvals_and_redemptions_s": round(year.other_seconds, 2),
        "monthly_analyze_s": round(year.analyze_seconds, 2),
    }


def benchmark(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    started = time.perf_counter()
    admin = admin_url(args.admin_url)
    chart = load_org_file(ORG_FILE)
    result: dict[str, Any] = {"benchmark": "a year of household points: record_many, one by one, evaluation"}
    sample = range(min(args.sample_days, args.days))
    single = Year()
    result["smoke"] = args.smoke
    made: list[str] = []
    result["databases"] = made  # every one dropped by the end
    with database(admin, chart, args.households) as db:
        made.append(db.name)
        say(f"one by one: the first {len(sample)} day(s) through ledger.record")
        record_days(db.sessions, Sheets(db.households, args.seed), sample, one_by_one, single, args.seed)
        single_rows = rows_of(db)
    with database(admin, chart, args.households) as db:
        made.append(db.name)
        say(f"record_many: {args.days} day(s), {len(db.households):,} households")
        sheets, year = Sheets(db.households, args.seed), Year()
        record_days(db.sessions, sheets, sample, by_batch, year, args.seed)
        check_same(rows_of(db), single_rows)
        sample_batch = year_dict(year, len(sample))
        record_days(db.sessions, sheets, range(len(sample), args.days), by_batch, year, args.seed, say)
        say("checking the ledger")
        checked = check_ledger(db, year)
        say("evaluating the periods")
        result["evaluation"] = evaluate(db)
        result["machine"] = {**machine(db.conn), "autovacuum": db.one("SHOW autovacuum")}
    result["households"] = args.households
    result["seed"] = args.seed
    result["record_many"] = year_dict(year, args.days)
    result["sample"] = {"record_many": sample_batch, "one_by_one": year_dict(single, len(sample))}
    one, many = result["sample"]["one_by_one"]["entries_per_s"], sample_batch["entries_per_s"]
    result["sample"]["ratio_record_many_over_one_by_one"] = round(many / one, 2) if one and many else None
    result["checked"] = checked
    result["targets"] = {"year_s_at_most": TARGET_YEAR_S, "month_s_at_most": TARGET_MONTH_S}
    result["seconds_total"] = round(time.perf_counter() - started, 1)
    return result


# -- report ------------------------------------------------------------------------------------------


def verdicts(res: dict) -> list[tuple[str, bool]]:
    y = res["record_many"]
    year_s = y["seconds"] * DAYS_IN_YEAR / y["days"]
    projected = "" if y["days"] == DAYS_IN_YEAR else f", projected from {y['days']} day(s)"
    slowest = max(res["evaluation"]["months"], key=lambda m: m["seconds"])
    return [
        (
            f"the year's sheets for {res['households']:,} households recorded in {year_s:.0f} s{projected} "
            f"(target ≤ {TARGET_YEAR_S:.0f} s)",
            year_s <= TARGET_YEAR_S,
        ),
        (
            f"slowest month's evaluation {slowest['period']} {slowest['seconds']:.2f} s (target ≤ {TARGET_MONTH_S:.0f} s)",
            slowest["seconds"] <= TARGET_MONTH_S,
        ),
    ]


def print_report(res: dict) -> None:
    console = Console(width=max(Console().width, 110))
    m = res["machine"]
    console.print(f"[bold]gridflow bench: {res['benchmark']}[/bold]")
    console.print(f"date     {m['date']}", highlight=False)
    console.print(
        f"machine  {m['platform']}, {m['cpus']} CPUs ({m['cpu_model']}), Python {m['python']}", highlight=False
    )
    console.print(f"database PostgreSQL {m['postgresql']}, autovacuum {m['autovacuum']}", highlight=False)
    console.print(f"drivers  SQLAlchemy {m['sqlalchemy']}, psycopg {m['psycopg']}", highlight=False)
    y = res["record_many"]
    console.print(
        f"{res['households']:,} households, {y['days']} day(s) of {YEAR} from 1 January, seed {res['seed']}; "
        f"one transaction per village sheet",
        highlight=False,
    )
    console.print(recording_table(res))
    refused = ", ".join(f"{n:,} {why}" for why, n in y["refused"].items()) or "none"
    console.print(
        f"offered {y['items_offered']:,} items: {y['entries_recorded']:,} recorded, {y['duplicates']:,} duplicates "
        f"(a resubmitted sheet), refused {refused}; the centre approved {y['approved']:,} and rejected "
        f"{y['rejected']:,}; {y['redemptions']:,} redemptions ({y['redemptions_refused']:,} refused). Not counted "
        f"above: these decisions and visits, {y['approvals_and_redemptions_s']:.1f} s; ANALYZE of the ledger at "
        f"each month's end (as autovacuum would), {y['monthly_analyze_s']:.1f} s",
        highlight=False,
    )
    console.print(evaluation_table(res["evaluation"]))
    c = res["checked"]
    console.print(
        f"checked: {c['balances']:,} balances = earned − redeemed + refunded = the ledger's sums; no limit exceeded; "
        f"no deed dated after its recording; the one-by-one sample wrote the same rows",
        highlight=False,
    )
    for verdict, ok in verdicts(res):
        console.print(f"{verdict}: {'[green]met[/green]' if ok else '[red]MISSED[/red]'}", highlight=False)
    console.print(f"total run time {res['seconds_total']:.0f} s", highlight=False)


def recording_table(res: dict) -> Table:
    table = Table(title="recording the sheets (one transaction per village and day)")
    for col in ("how", "days", "sheets", "items", "entries", "seconds", "entries/s", "sheet ms (median, p95)", "CPU s"):
        table.add_column(col, justify="left" if col == "how" else "right")
    s = res["sample"]
    rows = (
        ("record_many, the year", res["record_many"]),
        ("record_many, the sample days", s["record_many"]),
        ("ledger.record one by one, same days", s["one_by_one"]),
    )
    for name, y in rows:
        table.add_row(
            name,
            str(y["days"]),
            f"{y['sheets']:,}",
            f"{y['items_offered']:,}",
            f"{y['entries_recorded']:,}",
            f"{y['seconds']:.1f}",
            f"{y['entries_per_s']:,.0f}" if y["entries_per_s"] else "-",
            f"{y['sheet_ms_median']:.0f}, {y['sheet_ms_p95']:.0f}" if y["sheet_ms_median"] else "-",
            f"{y['client_cpu_s']:.1f}",
        )
    ratio = s["ratio_record_many_over_one_by_one"]
    table.caption = f"record_many / one by one on the sample days: {ratio}×" if ratio else None
    return table


def evaluation_table(ev: dict) -> Table:
    table = Table(title=f"evaluation.compute per period (after VACUUM (ANALYZE), {ev['vacuum_analyze_s']:.1f} s)")
    for col in ("period", "seconds", "households", "with an award", "with a star"):
        table.add_column(col, justify="left" if col == "period" else "right")
    for p in [*ev["months"], ev["quarter"], ev["year"]]:
        table.add_row(
            p["period"], f"{p['seconds']:.3f}", f"{p['households']:,}", f"{p['with_award']:,}", f"{p['starred']:,}"
        )
    table.add_row("12 months", f"{ev['months_total_s']:.3f}", "", "", "", style="bold")
    score = ev["score_period_december"]
    table.add_row(f"score_period {YEAR}-12", f"{score['seconds']:.3f}", "", "", "", style="dim")
    return table


# -- main --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.points", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help=f"small sizes: {', '.join(f'{k}={v}' for k, v in QUICK.items())}"
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes, every check, no target enforced (the test suite): "
        + ", ".join(f"{k}={v}" for k, v in SMOKE.items()),
    )
    helps = {
        "days": f"days of {YEAR} recorded, from 1 January",
        "households": "households (all 1,881 of the sample township at most)",
        "sample_days": "the first days also recorded one by one with ledger.record, for the ratio",
        "seed": "the random seed of the sheets",
    }
    for key, default in DEFAULTS.items():
        p.add_argument(f"--{key.replace('_', '-')}", type=int, default=None, help=f"{helps[key]} (default {default:,})")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--admin-url", help=f"admin URL of the server (env {ADMIN_URL_ENV}; default {DEFAULT_ADMIN_URL})")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = p.parse_args(argv)
    base = {**DEFAULTS, **(QUICK if args.quick else {}), **(SMOKE if args.smoke else {})}
    for key in DEFAULTS:
        if getattr(args, key) is None:
            setattr(args, key, base[key])
        low = 0 if key == "seed" else 1
        if not low <= getattr(args, key) <= LIMITS[key]:
            p.error(f"--{key.replace('_', '-')} must be between {low} and {LIMITS[key]:,}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    err = Console(stderr=True)

    def say(text: str) -> None:
        err.print(f"[dim]{text}[/dim]", highlight=False)

    try:
        with sigterm_as_interrupt():
            res = benchmark(args, say)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; databases dropped", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(res, ensure_ascii=False, indent=2))
    else:
        print_report(res)
    missed = [verdict for verdict, ok in verdicts(res) if not ok]
    if missed and args.check and not args.smoke:
        print("bench: missed " + "; ".join(missed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
