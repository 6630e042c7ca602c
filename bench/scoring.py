"""Benchmark: a month's scores in SQL against the same indicators computed the naive way.

One run on the real local PostgreSQL server, in throwaway databases (created, migrated and
seeded with the sample org chart and the default workflow here; dropped at the end, also
after an error or Ctrl-C):

1. **generate** November 2026 with ``--cases`` cases, with set-based SQL (``INSERT … SELECT``
   over ``generate_series``, no engine calls): the rows the engine writes — ``cases``,
   ``case_event`` (the steps, and the ``sla.*`` events the sweep writes for the reminders,
   breaches and escalations that fell due) and ``sla_clock`` (the case clock and one clock per
   state visit). Working time is the engine's own ``WorkCalendar`` (a table of its working
   minutes), limits and policies the workflow's own (``engine.sla.resolve``). No ``sla_timer``
   rows: every timer of the month has fired, so scoring has nothing to wait for;
2. **validate** the generator: on a small month (``--validate-cases``) ``facts.compute`` must
   equal ``naive.compute`` for every subject and indicator, also with some cases exempt (they
   agree on engine-made months, so a difference means the synthetic rows are wrong);
3. **measure**, each in a child process of its own (so its peak RSS is its own), on a month of
   ``--cases`` and one ten times smaller: ``engine.scoring.facts.compute`` (one warm-up, then the
   median of ``--repeat`` runs) and ``engine.scoring.naive.compute`` (once). Where both ran, their
   results are compared too. Targets: the SQL scores the month in ≤ 30 s, and its peak RSS grows
   by less than 1.5× from the small month to the big one.

Run it from the project root::

    .venv/bin/python -m bench.scoring                   # 1,000,000 cases (and 100,000)
    .venv/bin/python -m bench.scoring --quick           # 20,000 cases, under 2 minutes
    .venv/bin/python -m bench.scoring --json --check --explain

Exit status: 0 done; 1 a target missed under ``--check`` (or a crash, with its traceback);
2 bad arguments, no server, or the SQL and the naive results differ.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
from psycopg.types.json import Jsonb  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy import Engine, event  # noqa: E402
from sqlalchemy.engine import URL, make_url  # noqa: E402
from sqlalchemy.exc import DBAPIError  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from bench.transitions import (  # noqa: E402
    ADMIN_URL_ENV,
    DEFAULT_ADMIN_URL,
    BenchError,
    admin_url,
    machine,
    psycopg_conninfo,
    throwaway_database,
)
from engine.calendar import WorkCalendar, load_calendars  # noqa: E402
from engine.definitions.loader import load_workflow_file  # noqa: E402
from engine.definitions.model import WorkflowDef  # noqa: E402
from engine.jobs import bounds, parse_period  # noqa: E402
from engine.org import load_org_file  # noqa: E402
from engine.scoring import config as scoring_config  # noqa: E402
from engine.scoring import facts, naive  # noqa: E402
from engine.scoring.catalogue import Value  # noqa: E402
from engine.sla import CaseFacts, resolve  # noqa: E402
from engine.store import migrate, org_repo, workflow_repo  # noqa: E402
from engine.store.db import create_db_engine, session_factory  # noqa: E402
from engine.sweep import MARK_ORDER  # noqa: E402
from engine.timeutil import DEFAULT_TZ  # noqa: E402

ORG_FILE = ROOT / "config" / "org" / "shengli.yaml"
WORKFLOW_FILE = ROOT / "workflows" / "grid_case.yaml"
CALENDAR_FILE = ROOT / "config" / "calendars.yaml"
SCORING_FILE = ROOT / "config" / "scoring.yaml"

PERIOD = "2026-11"
START, END = bounds(parse_period("month", PERIOD), DEFAULT_TZ)
SEED_AT = datetime(2026, 9, 1, tzinfo=UTC)  # org chart and workflow published
CALENDAR = "township"  # every clock of the month runs on it (see draw_sql: no 24x7 clock in October)
MINUTES_FROM = datetime(2026, 9, 1, tzinfo=DEFAULT_TZ)  # working minute 0 is the first one after this
MINUTES_TO = datetime(2027, 7, 1, tzinfo=DEFAULT_TZ)  # beyond any deadline of the month's clocks (checked)
CARRY_FROM = datetime(2026, 10, 26, tzinfo=DEFAULT_TZ)  # October's cases were reported from here on

TARGET_SECONDS = 30.0
TARGET_RSS_GROWTH = 1.5
DEFAULT_CASES, QUICK_CASES, MAX_CASES = 1_000_000, 20_000, 5_000_000
DEFAULT_VALIDATE, MAX_VALIDATE = 3_000, 100_000
DEFAULT_REPEAT, MAX_REPEAT = 3, 20
DEFAULT_NAIVE_MEMORY_GB = 16.0
DEFAULT_SEED = 2026_11
GENERATION_SETTINGS = {  # the generating connection only; the measured ones keep the server's settings
    "work_mem": "256MB",
    "maintenance_work_mem": "512MB",
    "synchronous_commit": "off",
}


@dataclass(frozen=True)
class Mix:
    """Shares of the generated month (each case draws each independently)."""

    carried: float = 0.08  # reported in the last week of October (some still open on 1 November)
    voided_reported: float = 0.02  # void straight from reported
    voided_classified: float = 0.01  # classified, then voided
    returned: float = 0.04  # the first assignee returns it, the centre assigns someone else
    extension: float = 0.04  # extension requested in progress …
    extension_rejected: float = 0.2  # … and rejected (else approved)
    suspended: float = 0.02  # suspended in progress, resumed later (often after the month)
    reworked: float = 0.04  # verified as not done: rework, resolve again


MIX = Mix()
PRIORITIES = (("normal", 0.80), ("urgent", 0.15), ("critical", 0.05))
CATEGORIES = (
    ("sanitation", 0.25, ("村道垃圾堆放", "沟渠堵塞", "公厕损坏")),
    ("road_traffic", 0.12, ("村道塌方", "路灯不亮", "桥面破损")),
    ("water_supply", 0.10, ("自来水管破裂", "停水", "水压不足")),
    ("power_supply", 0.08, ("线路老化", "电杆倾斜", "停电")),
    ("dispute", 0.12, ("邻里宅基地纠纷", "土地承包纠纷", "婚姻家庭纠纷")),
    ("public_security", 0.06, ("可疑人员", "夜间噪音扰民")),
    ("social_assistance", 0.08, ("低保户房屋漏雨", "独居老人求助")),
    ("safety_hazard", 0.07, ("危房", "燃气泄漏隐患")),
    ("geological_hazard", 0.02, ("山体滑坡隐患", "地面裂缝")),
    ("other", 0.10, ("其他事项",)),
)
SATISFACTION = (("satisfied", 0.70), ("basically_satisfied", 0.20), ("dissatisfied", 0.10))
HANDLERS = (0.70, 0.20, 0.10)  # the grid's worker, the village's info officer, its secretary


# -- reference tables: working minutes, policies, timers (built in Python, loaded with COPY) --------


@dataclass(frozen=True)
class Minutes:
    """Working minute k of the township calendar: ``at`` is where ``calendar.add(origin, k min)``
    lands (the end of a working period at its boundary), ``begin`` the next working instant."""

    at: list[datetime]
    begin: list[datetime]
    estimated: list[bool]

    def index(self, when: datetime) -> int:
        """The first working minute at or after ``when``."""
        return bisect.bisect_left(self.at, when)

    def last_before(self, when: datetime) -> int:
        return bisect.bisect_left(self.at, when) - 1


def working_minutes(calendar: WorkCalendar) -> Minutes:
    at, begin, estimated = [], [], []
    origin = calendar.next_working_instant(MINUTES_FROM)
    k = 0
    while True:
        deadline = calendar.add(origin, timedelta(minutes=k))
        if deadline.at >= MINUTES_TO:
            return Minutes(at, begin, estimated)
        at.append(deadline.at)
        begin.append(calendar.next_working_instant(deadline.at))
        estimated.append(deadline.estimated)
        k += 1


def policy_rows(definition: WorkflowDef, calendars: dict[str, WorkCalendar]) -> tuple[list[tuple], list[tuple]]:
    """(policies, timers) for every clock the month can have, resolved by the engine itself.

    Key: (state, category, priority), '' for none; the case clock is state 'case', the reported
    clock has neither category nor priority (they are set later, at classify). Timers: when each
    falls due, as ``limit * num // den + offset`` business seconds into the clock."""
    categories = list(definition.fields["category"].values)
    priorities = list(definition.fields["priority"].values)
    keys = [("case", "", ""), ("reported", "", "")]
    for state, spec in definition.states.items():
        if spec.sla and state != "reported":
            keys += [(state, c, p) for c in categories for p in priorities]
    month = START.astimezone(DEFAULT_TZ).month
    policies, timers = [], []
    for state, category, priority in keys:
        spec = definition.extras["case_sla"] if state == "case" else definition.states[state].sla
        policy = resolve(definition, spec, CaseFacts(0, category or None, priority or None), calendars, month)
        if policy.calendar != CALENDAR:
            raise BenchError(f"the {state} clock of {category or '-'} runs on {policy.calendar}, not {CALENDAR}")
        policies.append((state, category, priority, policy.limit_s, policy.limit_text, Jsonb(policy.to_json())))
        for level, reminder in enumerate(policy.reminders, start=1):
            share = f"{reminder.percent}%" if reminder.percent is not None else None
            if reminder.percent is not None:
                timers.append((state, category, priority, "reminder", level, reminder.percent, 100, 0, share, None, 0))
            else:
                timers.append(
                    (state, category, priority, "reminder", level, 1, 1, -(reminder.before_s or 0), None, None, 0)
                )
        timers.append((state, category, priority, "breach", 0, 1, 1, 0, None, None, 0))
        for level, step in enumerate(policy.ladder, start=1):
            rank = MARK_ORDER.get(step.mark, 0)
            timers.append((state, category, priority, "escalation", level, 1, 1, step.after_s, None, step.mark, rank))
    return policies, timers


REFERENCE_DDL = (
    "DROP TABLE IF EXISTS bench_minute, bench_policy, bench_timer, bench_grid, bench_center, bench_draw, bench_plan,"
    " bench_visit, bench_clock, bench_ev, bench_event, bench_agg",
    "CREATE UNLOGGED TABLE bench_minute (k int PRIMARY KEY, at timestamptz NOT NULL, begin_at timestamptz NOT NULL,"
    " estimated bool NOT NULL, at_iso text NOT NULL)",
    "CREATE UNLOGGED TABLE bench_policy (state text, category text, priority text, limit_s int, limit_text text,"
    " policy jsonb, PRIMARY KEY (state, category, priority))",
    "CREATE UNLOGGED TABLE bench_timer (state text, category text, priority text, kind text, level int, num int,"
    " den int, off_s int, share text, mark text, mark_rank int)",
    # The org chart as the month uses it: each grid's worker (the reporter), and the people a case
    # of that grid may be assigned to (a unit grid has no village: its worker handles it all); the
    # centre, which classifies, assigns and verifies.
    "CREATE UNLOGGED TABLE bench_grid AS SELECT no, grid_id, village_id, worker, COALESCE(officer, worker) AS officer,"
    " COALESCE(secretary, worker) AS secretary FROM (SELECT (row_number() OVER (ORDER BY g.id))::int AS no,"
    " g.id AS grid_id, g.village_id, (SELECT r.person_id FROM role_assignment r WHERE r.place_id = g.id"
    " AND r.role = 'grid_worker' ORDER BY r.person_id LIMIT 1) AS worker, (SELECT r.person_id FROM role_assignment r"
    " WHERE r.place_id = g.village_id AND r.role = 'info_officer' ORDER BY r.person_id LIMIT 1) AS officer,"
    " (SELECT r.person_id FROM role_assignment r WHERE r.place_id = g.village_id AND r.role = 'village_secretary'"
    " ORDER BY r.person_id LIMIT 1) AS secretary FROM place g WHERE g.kind = 'grid' AND g.active) g",
    "CREATE UNLOGGED TABLE bench_center AS SELECT (row_number() OVER (ORDER BY person_id))::int AS no, person_id"
    " FROM role_assignment WHERE role = 'center'",
)


def load_reference(conn: psycopg.Connection, minutes: Minutes, policies: list[tuple], timers: list[tuple]) -> None:
    for sql in REFERENCE_DDL:
        conn.execute(sql)
    with conn.cursor() as cur:
        with cur.copy("COPY bench_minute FROM STDIN") as copy:
            for k, row in enumerate(zip(minutes.at, minutes.begin, minutes.estimated, strict=True)):
                copy.write_row((k, *row, row[0].astimezone(UTC).isoformat()))
        with cur.copy("COPY bench_policy FROM STDIN") as copy:
            for row in policies:
                copy.write_row(row)
        with cur.copy("COPY bench_timer FROM STDIN") as copy:
            for row in timers:
                copy.write_row(row)
    missing = conn.execute(
        "SELECT count(*) FROM bench_grid WHERE worker IS NULL OR officer IS NULL OR secretary IS NULL"
    ).fetchone()
    grids = conn.execute("SELECT count(*) FROM bench_grid").fetchone()
    if missing[0] or not grids[0] or not conn.execute("SELECT count(*) FROM bench_center").fetchone()[0]:
        raise BenchError("the org chart lacks a grid worker, info officer, village secretary or centre")
    conn.execute("ANALYZE bench_minute, bench_policy, bench_timer, bench_grid, bench_center")


# -- the month, set-based --------------------------------------------------------------------------
#
# Positions are business seconds on the township calendar, counted from working minute 0; the
# steps fall on whole working minutes. A position happened in the month when it is at most
# ``end_s`` (the last working minute before 1 December 00:00); instants come from bench_minute.


def u(salt: int) -> str:
    """A uniform draw in [0, 1) for case ``n``, reproducible (a hash of n and the salt)."""
    return f"((hashint8extended(n::bigint, {salt}) & 2147483647)::float8 / 2147483648.0)"


def delay(salt: int, mean_minutes: str) -> str:
    """An exponential delay in whole working minutes (in seconds), capped at five means."""
    return f"(60 * LEAST(floor(-ln(1.0 - {u(salt)}) * ({mean_minutes})), floor(5 * ({mean_minutes}))))::int"


def pick(draw: str, choices: tuple[tuple[str, float], ...]) -> str:
    """A CASE choosing among ``(literal, share)`` with the draw ``draw``."""
    parts, edge = [], 0.0
    for value, share in choices[:-1]:
        edge += share
        parts.append(f"WHEN {draw} < {edge:.6f} THEN '{value}'")
    return f"CASE {' '.join(parts)} ELSE '{choices[-1][0]}' END"


def instant(alias: str, pos: str) -> str:
    """The instant of position ``pos`` (seconds), given ``bench_minute {alias}`` joined on ``k = pos / 60``."""
    return (
        f"(CASE WHEN ({pos}) % 60 = 0 THEN {alias}.at ELSE {alias}.begin_at + (({pos}) % 60) * interval '1 second' END)"
    )


def iso_at(alias: str, pos: str) -> str:
    """``instant(alias, pos)`` as ``datetime.isoformat()`` writes it (in UTC), as the engine's JSON holds instants."""
    exact = f"to_char({instant(alias, pos)} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || '+00:00'"
    return f"(CASE WHEN ({pos}) % 60 = 0 THEN {alias}.at_iso ELSE {exact} END)"


def quoted(texts: tuple[str, ...]) -> str:
    return ", ".join(f"'{t}'" for t in texts)


def draw_sql(n: int, seed: int) -> str:
    """One row per case: its draws (kind of path, flags, category, priority, people, title).

    A case reported in October is never a geological hazard: in October that category's clocks run
    on the 24x7 calendar, which bench_minute does not cover (``policy_rows`` checks the rest)."""
    s = seed * 1000
    cats = tuple((c, share) for c, share, _ in CATEGORIES)
    titles = " ".join(
        f"WHEN '{c}' THEN (ARRAY[{quoted(ts)}])[1 + floor(u17 * {len(ts)})::int]" for c, _, ts in CATEGORIES
    )
    m = MIX
    draws = ", ".join(f"{u(s + i)} AS u{i}" for i in range(1, 18))
    return f"""
    CREATE UNLOGGED TABLE bench_draw AS
    SELECT d.*, CASE d.category {titles} END AS title
    FROM (
      SELECT n, u17, u1 < {m.carried} AS october, u2 AS u_report,
        1 + floor(u3 * (SELECT count(*) FROM bench_grid))::int AS grid_no,
        CASE WHEN u1 < {m.carried} AND {pick("u4", cats)} = 'geological_hazard' THEN 'other'
          ELSE {pick("u4", cats)} END AS category,
        {pick("u5", PRIORITIES)} AS priority,
        CASE WHEN u6 < {m.voided_reported} THEN 'void_r'
             WHEN u6 < {m.voided_reported + m.voided_classified} THEN 'void_c' ELSE 'full' END AS kind,
        u7 < {m.returned} AS f_ret, u8 < {m.extension} AS f_ext, u9 < {m.extension_rejected} AS f_rejected,
        u10 < {m.suspended} AS f_susp, u11 < {m.reworked} AS f_rework,
        CASE WHEN u12 < 0.6 THEN 1 ELSE 2 END AS ext_days,
        CASE WHEN u13 < {HANDLERS[0]} THEN 1 WHEN u13 < {HANDLERS[0] + HANDLERS[1]} THEN 2 ELSE 3 END AS handler_no,
        1 + floor(u14 * 2)::int AS first_shift,
        1 + floor(u15 * (SELECT count(*) FROM bench_center))::int AS center_no,
        {pick("u16", SATISFACTION)} AS satisfaction
      FROM (SELECT n, {draws} FROM generate_series(1, {n}) AS n) r
    ) d
    """


def plan_sql(seed: int, minutes: Minutes, day_s: int) -> str:
    """One row per case: its people and limits, the positions of all its steps (NULL off its path),
    and its id (cases are numbered in the order they were reported, as the engine numbers them).
    Extension and suspension fall in the first in_progress visit, an extension before the
    suspension and before the limit's half (so before its deadline); resolving follows both."""
    s = seed * 1000
    oct_lo, nov_lo = minutes.index(CARRY_FROM), minutes.index(START)
    end_k = minutes.last_before(END)
    report = (
        f"60 * (CASE WHEN october THEN {oct_lo} + floor(u_report * {nov_lo - oct_lo})"
        f" ELSE {nov_lo} + floor(u_report * {end_k + 1 - nov_lo}) END)::int"
    )
    full = "l.kind = 'full'"
    return f"""
    CREATE UNLOGGED TABLE bench_plan AS
    SELECT (row_number() OVER (ORDER BY l.r, l.n))::int AS id, l.kind, l.category, l.priority, l.grid_id,
      l.worker, l.center, l.handler, CASE WHEN l.f_ret THEN l.other_handler ELSE l.handler END AS first_handler,
      l.satisfaction, l.f_rejected, l.ext_days || 'd' AS ext_text, l.ext_days * {day_s} AS ext_s, l.title,
      l.r, l.c,
      CASE WHEN l.kind <> 'void_r' THEN l.a1 END AS a1,
      CASE WHEN {full} THEN p.ret_at END AS ret_at, CASE WHEN {full} THEN p.a2 END AS a2,
      CASE WHEN {full} THEN p.acc END AS acc,
      CASE WHEN {full} THEN p.acc + l.xq_off END AS xq, CASE WHEN {full} THEN p.acc + l.xa_off END AS xa,
      CASE WHEN {full} THEN p.acc + l.sp_off END AS sp,
      CASE WHEN {full} THEN p.acc + l.sp_off + l.pause END AS rs,
      CASE WHEN {full} THEN p.res1 END AS res1, CASE WHEN {full} THEN p.rw END AS rw,
      CASE WHEN {full} THEN p.res2 END AS res2, CASE WHEN {full} THEN p.v END AS v
    FROM (
      SELECT d.*, d.r + d.d_cls AS c, d.r + d.d_cls + d.d_a1 AS a1
      FROM (
        SELECT d.*, {report} AS r, {delay(s + 20, "40")} AS d_cls,
          CASE WHEN kind = 'void_c' THEN {delay(s + 21, "60")} ELSE {delay(s + 21, "0.35 * l_cls")} END AS d_a1,
          CASE WHEN f_ret THEN {delay(s + 22, "60")} END AS d_ret,
          CASE WHEN f_ret THEN {delay(s + 23, "0.35 * l_cls")} END AS d_a2,
          {delay(s + 24, "0.3 * l_asg")} AS d_acc,
          x.xq_off, y.xa_off,
          CASE WHEN f_susp THEN COALESCE(y.xa_off + 60, 0) + 60 * floor({u(s + 27)} * 0.5 * l_ip)::int END AS sp_off,
          CASE WHEN f_susp THEN 60 + {delay(s + 28, "2400")} ELSE 0 END AS pause,
          {delay(s + 29, "0.45 * (l_ip + ext_min)")} AS d_act,
          CASE WHEN f_rework THEN {delay(s + 30, "240")} END AS d_rw,
          {delay(s + 31, "300")} AS d_res2, {delay(s + 32, "300")} AS d_ver
        FROM (
          SELECT d.*, g.worker, c.person_id AS center, g.grid_id,
            (ARRAY[g.worker, g.officer, g.secretary])[d.handler_no] AS handler,
            (ARRAY[g.worker, g.officer, g.secretary])[1 + (d.handler_no - 1 + d.first_shift) % 3] AS other_handler,
            cl.limit_s / 60 AS l_cls, asg.limit_s / 60 AS l_asg, ip.limit_s / 60 AS l_ip,
            CASE WHEN d.f_ext AND NOT d.f_rejected THEN d.ext_days * {day_s // 60} ELSE 0 END AS ext_min
          FROM bench_draw d
          JOIN bench_grid g ON g.no = d.grid_no
          JOIN bench_center c ON c.no = d.center_no
          JOIN bench_policy cl ON (cl.state, cl.category, cl.priority) = ('classified', d.category, d.priority)
          JOIN bench_policy asg ON (asg.state, asg.category, asg.priority) = ('assigned', d.category, d.priority)
          JOIN bench_policy ip ON (ip.state, ip.category, ip.priority) = ('in_progress', d.category, d.priority)
        ) d
        CROSS JOIN LATERAL (SELECT CASE WHEN f_ext THEN 60 * floor({u(s + 25)} * 0.35 * l_ip)::int END AS xq_off) x
        CROSS JOIN LATERAL (SELECT x.xq_off + 60 * floor({u(s + 26)} * 0.1 * l_ip)::int AS xa_off) y
        OFFSET 0
      ) d
      OFFSET 0
    ) l
    CROSS JOIN LATERAL (SELECT l.a1 + l.d_ret AS ret_at, l.a1 + l.d_ret + l.d_a2 AS a2,
      COALESCE(l.a1 + l.d_ret + l.d_a2, l.a1) + l.d_acc AS acc) q
    CROSS JOIN LATERAL (SELECT q.ret_at, q.a2, q.acc,
      q.acc + l.pause + GREATEST(l.d_act, COALESCE(l.sp_off + 60, 0), COALESCE(l.xa_off + 60, 0)) AS res1) q2
    CROSS JOIN LATERAL (SELECT q2.*, q2.res1 + l.d_rw AS rw, q2.res1 + l.d_rw + l.d_res2 AS res2,
      COALESCE(q2.res1 + l.d_rw + l.d_res2, q2.res1) + l.d_ver AS v) p
    """


def lit(value: dict[str, Any]) -> str:
    """A constant JSON payload, folded once by the planner."""
    return f"'{json.dumps(value, ensure_ascii=False)}'::jsonb"


def steps_sql(end_s: int) -> str:
    """The steps people took (``case_event`` rows without seq), those that happened in the month."""
    voided_r, voided_c = "p.kind = 'void_r'", "p.kind = 'void_c'"
    return f"""
    CREATE UNLOGGED TABLE bench_ev AS
    SELECT p.id AS case_id, s.pos, 1 AS cls, s.ord AS ord1, 0 AS ord2, s.trig AS trigger, s.from_state,
      s.to_state, s.actor, s.payload, 0 AS level, 0 AS mark_rank
    FROM bench_plan p CROSS JOIN LATERAL (VALUES
      (1, 'report', NULL, 'reported', p.r, p.worker, jsonb_build_object('title', p.title)),
      (2, CASE WHEN {voided_r} THEN 'void' ELSE 'classify' END, 'reported',
        CASE WHEN {voided_r} THEN 'voided' ELSE 'classified' END, p.c, p.center,
        CASE WHEN {voided_r} THEN {lit({"reason": "重复上报"})}
          ELSE jsonb_build_object('category', p.category, 'priority', p.priority) END),
      (3, CASE WHEN {voided_c} THEN 'void' ELSE 'assign' END, 'classified',
        CASE WHEN {voided_c} THEN 'voided' ELSE 'assigned' END, p.a1, p.center,
        CASE WHEN {voided_c} THEN {lit({"reason": "不属于网格事项"})}
          ELSE jsonb_build_object('assignee', p.first_handler) END),
      (4, 'return', 'assigned', 'classified', p.ret_at, p.first_handler,
        {lit({"reason": "非本人负责片区"})}),
      (5, 'assign', 'classified', 'assigned', p.a2, p.center, jsonb_build_object('assignee', p.handler)),
      (6, 'accept', 'assigned', 'in_progress', p.acc, p.handler, {lit({})}),
      (7, 'request_extension', 'in_progress', 'in_progress', p.xq, p.handler,
        jsonb_build_object('extend_by', p.ext_text, 'reason', '等待相关部门配合')),
      (8, CASE WHEN p.f_rejected THEN 'reject_extension' ELSE 'approve_extension' END, 'in_progress',
        'in_progress', p.xa, p.center,
        CASE WHEN p.f_rejected THEN {lit({"reason": "理由不充分，请按期办结"})}
          ELSE jsonb_build_object('extend_by', p.ext_text) END),
      (9, 'suspend', 'in_progress', 'suspended', p.sp, p.handler, {lit({"reason": "等待双方协商"})}),
      (10, 'resume', 'suspended', 'in_progress', p.rs, p.handler, {lit({})}),
      (11, 'resolve', 'in_progress', 'resolved', p.res1, p.handler, {lit({"resolution": "已处理完毕"})}),
      (12, 'rework', 'resolved', 'in_progress', p.rw, p.center, {lit({"reason": "回访发现问题未解决"})}),
      (13, 'resolve', 'in_progress', 'resolved', p.res2, p.handler, {lit({"resolution": "已返工处理"})}),
      (14, 'verify', 'resolved', 'verified', p.v, p.center, jsonb_build_object('satisfaction', p.satisfaction))
    ) AS s(ord, trig, from_state, to_state, pos, actor, payload)
    WHERE s.pos <= {end_s}
    """


def visits_sql(end_s: int) -> str:
    """The clocks: the case clock and one per state visit begun in the month, with the suspension that
    pauses (and the extension that lengthens) the case clock and the first in_progress clock."""
    close = "CASE WHEN p.kind = 'full' THEN 'verify' ELSE 'void' END"
    return f"""
    CREATE UNLOGGED TABLE bench_visit AS
    SELECT p.id AS case_id, v.ord, v.scope, v.state, v.s, v.t, v.stopped_by, v.assignee,
      pol.limit_s AS l0, pol.limit_text, pol.state AS pstate, pol.category AS pcategory,
      pol.priority AS ppriority,
      CASE WHEN v.shared AND p.sp <= {end_s} THEN p.sp END AS pz,
      CASE WHEN v.shared AND p.sp <= {end_s} THEN p.rs END AS qz,
      CASE WHEN v.shared AND p.xa <= {end_s} AND NOT p.f_rejected THEN p.xa END AS x,
      CASE WHEN v.shared AND p.xa <= {end_s} AND NOT p.f_rejected THEN p.ext_s ELSE 0 END AS e
    FROM bench_plan p CROSS JOIN LATERAL (VALUES
      (0, 'case', NULL, p.r, COALESCE(p.v, p.a1, p.c), {close}, NULL, true),
      (1, 'state', 'reported', p.r, p.c, CASE WHEN p.kind = 'void_r' THEN 'void' ELSE 'classify' END, NULL, false),
      (2, 'state', 'classified', CASE WHEN p.kind <> 'void_r' THEN p.c END, p.a1,
        CASE WHEN p.kind = 'void_c' THEN 'void' ELSE 'assign' END, NULL, false),
      (3, 'state', 'assigned', CASE WHEN p.kind = 'full' THEN p.a1 END, COALESCE(p.ret_at, p.acc),
        CASE WHEN p.ret_at IS NULL THEN 'accept' ELSE 'return' END, p.first_handler, false),
      (4, 'state', 'classified', p.ret_at, p.a2, 'assign', NULL, false),
      (5, 'state', 'assigned', p.a2, p.acc, 'accept', p.handler, false),
      (6, 'state', 'in_progress', p.acc, p.res1, 'resolve', p.handler, true),
      (7, 'state', 'suspended', p.sp, p.rs, 'resume', p.handler, false),
      (8, 'state', 'resolved', p.res1, COALESCE(p.rw, p.v), CASE WHEN p.rw IS NULL THEN 'verify' ELSE 'rework' END,
        p.handler, false),
      (9, 'state', 'in_progress', p.rw, p.res2, 'resolve', p.handler, false),
      (10, 'state', 'resolved', p.res2, p.v, 'verify', p.handler, false)
    ) AS v(ord, scope, state, s, t, stopped_by, assignee, shared)
    JOIN bench_policy pol ON pol.state = COALESCE(v.state, 'case')
      AND pol.category = CASE WHEN v.state IS NULL OR v.state = 'reported' THEN '' ELSE p.category END
      AND pol.priority = CASE WHEN v.state IS NULL OR v.state = 'reported' THEN '' ELSE p.priority END
    WHERE v.s <= {end_s}
    """


def position_at(point: str, alias: str = "k") -> str:
    """Where a clock has used ``point`` business seconds: its start plus the point, after a pause moved on."""
    a = alias
    return (
        f"(CASE WHEN {a}.pz IS NULL OR {a}.s + ({point}) < {a}.pz THEN {a}.s + ({point})"
        f" ELSE {a}.qz + ({point}) - ({a}.pz - {a}.s) END)"
    )


def clocks_sql(end_s: int) -> str:
    """Each clock's state at the end of the month, as the engine and the sweep leave it.

    ``b0``/``bf``: where its deadline falls with the limit before / after an approved extension
    (``x``). A deadline passed before the extension fired its breach; the breach fires at the
    deadline (the sweep runs on time), while the clock still runs, and before 1 December."""
    return f"""
    CREATE UNLOGGED TABLE bench_clock AS
    SELECT k.*, c.fire_b, c.status, d.breached, d.consumed_s, d.due_pos, d.outcome,
      1 + (k.x IS NOT NULL)::int + (k.pz IS NOT NULL AND k.qz <= {end_s})::int AS generation,
      CASE WHEN c.status = 'running' THEN COALESCE(k.qz, k.s) END AS seg_pos
    FROM (
      SELECT v.*, v.l0 + v.e AS lf, {position_at("v.l0", "v")} AS b0, {position_at("v.l0 + v.e", "v")} AS bf
      FROM bench_visit v
    ) k
    CROSS JOIN LATERAL (SELECT CASE WHEN k.x IS NOT NULL AND k.b0 < k.x THEN k.b0 ELSE k.bf END AS fire_b,
      CASE WHEN k.t <= {end_s} THEN 'stopped' WHEN k.pz IS NOT NULL AND k.qz > {end_s} THEN 'paused'
        ELSE 'running' END AS status,
      CASE WHEN k.pz IS NULL THEN k.t - k.s ELSE (k.pz - k.s) + (k.t - k.qz) END AS used) c
    CROSS JOIN LATERAL (SELECT c.fire_b <= {end_s} AND c.fire_b < k.t AS breached,
      CASE c.status WHEN 'stopped' THEN c.used WHEN 'paused' THEN k.pz - k.s
        ELSE COALESCE(k.pz - k.s, 0) END AS consumed_s,
      CASE WHEN c.status <> 'paused' THEN
        CASE WHEN k.x IS NOT NULL AND k.b0 < k.x AND k.bf <= k.x THEN k.b0 ELSE k.bf END END AS due_pos,
      CASE WHEN c.status = 'stopped' THEN
        CASE WHEN (c.fire_b <= {end_s} AND c.fire_b < k.t) OR c.used > k.l0 + k.e THEN 'breached' ELSE 'met' END
      END AS outcome) d
    ORDER BY k.s, k.case_id, k.ord
    """


def timers_sql(end_s: int) -> str:
    """The ``sla.*`` events: every reminder, breach and escalation that fell due while its clock ran,
    before 1 December (re-laid after an extension unless fired before it). Their state is filled in
    with the case's later (``EVENTS_SQL``)."""
    common = f"'clock', k.scope, 'state', k.state, 'timer', NULL, 'due_at', {iso_at('md', 'f.due')}"
    return f"""
    INSERT INTO bench_ev (case_id, pos, cls, ord1, ord2, trigger, from_state, to_state, actor, payload, level,
      mark_rank)
    SELECT k.case_id, f.fire, 0, k.ord, CASE t.kind WHEN 'reminder' THEN t.level WHEN 'breach' THEN 10
        ELSE 20 + t.level END,
      CASE t.kind WHEN 'reminder' THEN 'sla.reminder' WHEN 'breach' THEN 'sla.breach' ELSE 'sla.escalated' END,
      NULL, NULL, 'system',
      CASE t.kind
        WHEN 'reminder' THEN jsonb_build_object('level', t.level, 'share', t.share, {common})
        WHEN 'breach' THEN jsonb_build_object('limit', k.limit_text, {common})
        ELSE jsonb_build_object('level', t.level, 'mark', t.mark, {common}) END,
      CASE WHEN t.kind = 'escalation' THEN t.level ELSE 0 END, t.mark_rank
    FROM bench_clock k
    JOIN bench_timer t ON (t.state, t.category, t.priority) = (k.pstate, k.pcategory, k.ppriority)
    CROSS JOIN LATERAL (SELECT GREATEST(0, k.l0 * t.num / t.den + t.off_s) AS p0,
      GREATEST(0, (k.l0 + k.e) * t.num / t.den + t.off_s) AS pf) p
    CROSS JOIN LATERAL (SELECT CASE WHEN k.x IS NOT NULL AND {position_at("p.p0")} < k.x THEN p.p0 ELSE p.pf END
      AS point) pt
    CROSS JOIN LATERAL (SELECT {position_at("pt.point")} AS fire) f0
    CROSS JOIN LATERAL (SELECT f0.fire, CASE WHEN k.x IS NOT NULL AND f0.fire < k.x THEN k.b0 ELSE k.bf END AS due) f
    JOIN bench_minute md ON md.k = f.due / 60
    WHERE f.fire <= {end_s} AND f.fire < k.t AND (t.kind <> 'reminder' OR pt.point > 0)
    """


EVENTS_SQL = """
    CREATE UNLOGGED TABLE bench_event AS
    SELECT e.case_id, e.seq, e.pos, e.trigger, e.actor, e.payload, e.level, e.mark_rank,
      CASE WHEN e.cls = 1 THEN e.from_state ELSE substr(e.last_human, 14) END AS from_state,
      CASE WHEN e.cls = 1 THEN e.to_state ELSE substr(e.last_human, 14) END AS to_state
    FROM (
      SELECT x.*, (row_number() OVER w)::int AS seq,
        max(CASE WHEN x.cls = 1 THEN lpad(x.pos::text, 11, '0') || lpad(x.ord1::text, 2, '0') || x.to_state END)
          OVER w AS last_human
      FROM bench_ev x
      WINDOW w AS (PARTITION BY x.case_id ORDER BY x.pos, x.cls, x.ord1, x.ord2 ROWS UNBOUNDED PRECEDING)
    ) e
    """

AGG_SQL = """
    CREATE UNLOGGED TABLE bench_agg AS
    SELECT case_id, count(*)::int AS version, max(pos) AS last_pos,
      (array_agg(to_state ORDER BY seq DESC))[1] AS status,
      bool_or(trigger = 'sla.breach') AS overdue,
      COALESCE(max(level) FILTER (WHERE trigger = 'sla.escalated'), 0) AS escalation_level,
      max(mark_rank) AS mark_rank
    FROM bench_event GROUP BY case_id
    """


def cases_sql(end_s: int, prefix: str) -> str:
    e = end_s
    closing = "COALESCE(p.v, p.a1, p.c)"
    marks = " ".join(f"WHEN {rank} THEN '{mark}'" for mark, rank in MARK_ORDER.items() if mark)
    return f"""
    INSERT INTO cases (id, code, workflow_id, workflow_name, workflow_version, status, version, title, description,
      category, priority, grid_id, reporter_id, assignee_id, source_channel, satisfaction, rework_count,
      extension_count, pending_extension, reported_at, updated_at, closed_at, overdue, escalation_level, mark)
    SELECT p.id, '{prefix}-' || lpad(p.id::text, GREATEST(6, length(p.id::text)), '0'), wf.id, wf.name,
      wf.version, a.status, a.version, p.title, NULL,
      CASE WHEN p.kind <> 'void_r' AND p.c <= {e} THEN p.category END,
      CASE WHEN p.kind <> 'void_r' AND p.c <= {e} THEN p.priority END,
      p.grid_id, p.worker,
      CASE WHEN p.kind <> 'full' OR p.a1 > {e} THEN NULL WHEN p.ret_at IS NULL THEN p.handler
        WHEN p.ret_at > {e} THEN p.first_handler WHEN p.a2 > {e} THEN NULL ELSE p.handler END,
      'grid_worker', CASE WHEN p.v <= {e} THEN p.satisfaction END,
      CASE WHEN p.rw <= {e} THEN 1 ELSE 0 END,
      CASE WHEN p.xa <= {e} AND NOT p.f_rejected THEN 1 ELSE 0 END,
      CASE WHEN p.xq <= {e} AND p.xa > {e} THEN jsonb_build_object('extend_by', p.ext_text, 'requested_by',
        p.handler, 'requested_at', {iso_at("mq", "p.xq")}) END,
      {instant("mr", "p.r")}, {instant("mu", "a.last_pos")},
      CASE WHEN {closing} <= {e} THEN {instant("mc", closing)} END,
      a.overdue, a.escalation_level, CASE a.mark_rank {marks} END
    FROM bench_plan p
    JOIN bench_agg a ON a.case_id = p.id
    JOIN bench_minute mr ON mr.k = p.r / 60
    JOIN bench_minute mu ON mu.k = a.last_pos / 60
    JOIN bench_minute mc ON mc.k = {closing} / 60
    LEFT JOIN bench_minute mq ON mq.k = p.xq / 60
    CROSS JOIN (SELECT id, name, version FROM workflow_definition WHERE name = 'grid_case'
      ORDER BY version DESC LIMIT 1) wf
    ORDER BY p.id
    """


def case_events_sql() -> str:
    return f"""
    INSERT INTO case_event (case_id, seq, at, actor_id, trigger, from_state, to_state, payload, workflow_version)
    SELECT e.case_id, e.seq, {instant("m", "e.pos")}, e.actor, e.trigger, e.from_state, e.to_state, e.payload, 1
    FROM bench_event e JOIN bench_minute m ON m.k = e.pos / 60
    ORDER BY e.pos, e.case_id, e.seq
    """


def sla_clocks_sql(end_s: int) -> str:
    """``sla_clock`` rows, in the order the engine creates them (by start: bench_clock is stored in
    that order, and the hash joins on the small tables keep it; ``check_generated`` makes sure).
    History: started, extended, paused, resumed and stopped entries, as ``engine.sla.Clocks`` notes them."""

    def entry(alias: str, pos: str, what: str, why: str, consumed: str) -> str:
        return (
            f"jsonb_build_object('at', {iso_at(alias, pos)}, 'what', '{what}', 'why', {why}, 'consumed_s', {consumed},"
            f" 'limit_s', k.lf, 'due_at', {iso_at('md', 'k.due_pos')}, 'estimated', false)"
        )

    started = entry("ms", "k.s", "started", "COALESCE(k.state, 'the case') || ': limit ' || k.limit_text", "0")
    extended = entry("mx", "k.x", "extended", "'approve_extension (批准延期): +' || k.e / 3600 || 'h'", "0")
    paused = entry("mp", "k.pz", "paused", "'suspend (挂起): suspended pauses the clock'", "k.pz - k.s")
    resumed = entry("mq", "k.qz", "resumed", "'resume (恢复处置)'", "k.pz - k.s")
    stopped = entry("mt", "k.t", "stopped", "k.stopped_by || '; ' || k.outcome", "k.consumed_s")
    plain = (  # most clocks: neither extended nor paused
        f"CASE WHEN k.status = 'stopped' THEN jsonb_build_array({started}, {stopped}) ELSE jsonb_build_array({started}) END"
    )
    history = (
        f"CASE WHEN k.x IS NULL AND k.pz IS NULL THEN {plain} ELSE jsonb_build_array({started})"
        f" || CASE WHEN k.x IS NOT NULL THEN jsonb_build_array({extended}) ELSE '[]'::jsonb END"
        f" || CASE WHEN k.pz IS NOT NULL THEN jsonb_build_array({paused}) ELSE '[]'::jsonb END"
        f" || CASE WHEN k.pz IS NOT NULL AND mq.k IS NOT NULL THEN jsonb_build_array({resumed}) ELSE '[]'::jsonb END"
        f" || CASE WHEN k.status = 'stopped' THEN jsonb_build_array({stopped}) ELSE '[]'::jsonb END END"
    )
    return f"""
    INSERT INTO sla_clock (case_id, scope, state, calendar, limit_s, consumed_s, status, generation, segment_start,
      started_at, stopped_at, due_at, estimated, breached_at, outcome, policy, history, assignee_id, stopped_by)
    SELECT k.case_id, k.scope, k.state, '{CALENDAR}', k.lf, k.consumed_s, k.status, k.generation,
      CASE WHEN k.seg_pos IS NOT NULL THEN mg.begin_at + (k.seg_pos % 60) * interval '1 second' END,
      {instant("ms", "k.s")}, CASE WHEN k.status = 'stopped' THEN {instant("mt", "k.t")} END,
      CASE WHEN k.due_pos IS NOT NULL THEN {instant("md", "k.due_pos")} END, COALESCE(md.estimated, false),
      CASE WHEN k.breached THEN {instant("mb", "k.fire_b")} END, k.outcome, pol.policy, {history},
      k.assignee, CASE WHEN k.status = 'stopped' THEN k.stopped_by END
    FROM bench_clock k
    JOIN bench_policy pol ON (pol.state, pol.category, pol.priority) = (k.pstate, k.pcategory, k.ppriority)
    JOIN bench_minute ms ON ms.k = k.s / 60
    LEFT JOIN bench_minute mt ON mt.k = k.t / 60 AND k.status = 'stopped'
    LEFT JOIN bench_minute md ON md.k = k.due_pos / 60
    LEFT JOIN bench_minute mb ON mb.k = k.fire_b / 60 AND k.breached
    LEFT JOIN bench_minute mg ON mg.k = k.seg_pos / 60
    LEFT JOIN bench_minute mx ON mx.k = k.x / 60
    LEFT JOIN bench_minute mp ON mp.k = k.pz / 60
    LEFT JOIN bench_minute mq ON mq.k = k.qz / 60 AND k.qz <= {end_s}
    """


# -- generating a month ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Generated:
    cases: int
    events: int
    clocks: int
    seconds: float
    steps: dict[str, float]  # seconds per statement


_REFERENCE: dict[str, Any] = {}


def reference() -> dict[str, Any]:
    """The calendar's working minutes, the workflow's policies and timers (built once per process)."""
    if not _REFERENCE:
        calendars = load_calendars(CALENDAR_FILE)
        definition = load_workflow_file(WORKFLOW_FILE, calendars).definition
        calendar = calendars[CALENDAR]
        policies, timers = policy_rows(definition, calendars)
        minutes = working_minutes(calendar)
        _REFERENCE.update(
            minutes=minutes,
            policies=policies,
            timers=timers,
            end_s=60 * minutes.last_before(END),
            day_s=int(calendar.day_length.total_seconds()),
        )
    return _REFERENCE


def statements(n: int, seed: int, prefix: str) -> list[tuple[str, str]]:
    """The generator's statements, in order. (The two big inserts side by side on two connections
    were slower on 2 CPUs: they contend for the WAL.)"""
    ref = reference()
    end_s = ref["end_s"]
    return [
        ("draw", draw_sql(n, seed)),
        ("analyze", "ANALYZE bench_draw"),
        ("plan", plan_sql(seed, ref["minutes"], ref["day_s"])),
        ("analyze", "ANALYZE bench_plan"),
        ("steps", steps_sql(end_s)),
        ("visits", visits_sql(end_s)),
        ("clocks", clocks_sql(end_s)),
        ("timers", timers_sql(end_s)),
        ("analyze", "ANALYZE bench_clock, bench_ev"),
        ("sequence", EVENTS_SQL),
        ("aggregate", AGG_SQL),
        ("insert cases", cases_sql(end_s, prefix)),
        ("insert events", case_events_sql()),
        ("insert clocks", sla_clocks_sql(end_s)),
        ("counter", "SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases))"),
        (
            "counter",
            f"INSERT INTO case_counter (prefix, last) VALUES ('{prefix}', {n})"
            " ON CONFLICT (prefix) DO UPDATE SET last = EXCLUDED.last",
        ),
    ]


def code_prefix(conn: psycopg.Connection) -> str:
    """``SL-2026``: the township's case-code prefix and the year, as ``engine.cases.report`` makes it."""
    row = conn.execute("SELECT id, attributes ->> 'code' FROM place WHERE kind = 'township' ORDER BY id").fetchone()
    if row is None:
        raise BenchError("no township in the org chart: seed the database first")
    return f"{(row[1] or row[0][:2]).upper()}-{START.astimezone(DEFAULT_TZ).year}"


def loader(conninfo: str) -> psycopg.Connection:
    """A connection for the generator: its settings, and no per-row foreign-key checks (they hold by
    construction) where the user may switch them off."""
    conn = psycopg.connect(conninfo)
    for name, value in GENERATION_SETTINGS.items():
        conn.execute(f"SET {name} = '{value}'")
    try:
        conn.execute("SET session_replication_role = replica")
    except psycopg.errors.InsufficientPrivilege:
        conn.rollback()
    conn.commit()
    return conn


def generate(url: URL | str, n: int, seed: int = DEFAULT_SEED, say: Callable[[str], None] = print) -> Generated:
    """Write a month of ``n`` cases into an empty, migrated and seeded database (set-based SQL)."""
    started = time.perf_counter()
    conninfo = psycopg_conninfo(make_url(url) if isinstance(url, str) else url)
    steps: dict[str, float] = {}
    with loader(conninfo) as conn:
        if conn.execute("SELECT count(*) FROM cases").fetchone()[0]:
            raise BenchError("the database already holds cases; the generator fills an empty ledger")
        ref = reference()
        load_reference(conn, ref["minutes"], ref["policies"], ref["timers"])
        conn.commit()
        try:
            for label, sql in statements(n, seed, code_prefix(conn)):
                t0 = time.perf_counter()
                conn.execute(sql)
                conn.commit()
                steps[label] = steps.get(label, 0.0) + time.perf_counter() - t0
            generated = check_generated(conn, n, time.perf_counter() - started, steps)
        finally:
            conn.rollback()
            conn.execute(REFERENCE_DDL[0])
            conn.commit()
        conn.autocommit = True
        t0 = time.perf_counter()
        conn.execute("VACUUM (ANALYZE) cases, case_event, sla_clock")
        steps["vacuum"] = time.perf_counter() - t0
    seconds = time.perf_counter() - started
    say(
        f"generated {n:,} cases, {generated.events:,} events, {generated.clocks:,} clocks in {seconds:.1f} s"
        f" ({', '.join(f'{k} {v:.1f}' for k, v in steps.items())})"
    )
    return Generated(generated.cases, generated.events, generated.clocks, seconds, steps)


def check_generated(conn: psycopg.Connection, n: int, seconds: float, steps: dict[str, float]) -> Generated:
    """Every staged row made it in (no position fell off the minute table), and each case's
    version is its event count, as the engine keeps it."""
    one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
    counts = {
        "cases": (one("SELECT count(*) FROM cases"), n),
        "events": (one("SELECT count(*) FROM case_event"), one("SELECT count(*) FROM bench_event")),
        "clocks": (one("SELECT count(*) FROM sla_clock"), one("SELECT count(*) FROM bench_clock")),
    }
    wrong = [f"{k}: {got:,} written, {want:,} planned" for k, (got, want) in counts.items() if got != want]
    if one("SELECT count(*) FROM sla_clock WHERE (status <> 'paused' AND due_at IS NULL) OR history IS NULL"):
        wrong.append("clocks without a deadline or history")
    if one(
        "SELECT count(*) FROM cases c WHERE c.version <> (SELECT max(seq) FROM case_event e WHERE e.case_id = c.id)"
    ):
        wrong.append("cases whose version is not their last event's seq")
    if one("SELECT max(GREATEST(s, t, due_pos, fire_b, qz)) / 60 FROM bench_clock") > one(
        "SELECT max(k) FROM bench_minute"
    ):
        wrong.append(f"a clock's deadline falls after {MINUTES_TO:%Y-%m-%d}, the end of bench_minute")
    if one(
        "SELECT count(*) FROM (SELECT started_at < lag(started_at) OVER (ORDER BY id) AS back FROM sla_clock) x"
        " WHERE back"
    ):
        wrong.append("clocks not numbered in the order they started")
    if wrong:
        raise BenchError("the generator went wrong: " + "; ".join(wrong))
    conn.commit()
    return Generated(n, counts["events"][0], counts["clocks"][0], seconds, steps)


def seed_database(url: URL) -> None:
    """Migrate, load the sample org chart and publish the default workflow, as the tests seed."""
    engine = create_db_engine(url.render_as_string(hide_password=False))
    try:
        migrate.upgrade(engine)
        calendars = load_calendars(CALENDAR_FILE)
        with session_factory(engine).begin() as session:
            org_repo.apply_org_chart(session, load_org_file(ORG_FILE), SEED_AT)
            workflow_repo.publish(session, load_workflow_file(WORKFLOW_FILE, calendars), SEED_AT)
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Month:
    url: URL
    cases: int
    generated: Generated
    size_bytes: int


@contextmanager
def month_database(admin: URL, n: int, seed: int, say: Callable[[str], None]) -> Iterator[Month]:
    """A throwaway database holding a generated month of ``n`` cases; dropped on the way out."""
    with throwaway_database(admin) as url:
        seed_database(url)
        generated = generate(url, n, seed, say)
        with psycopg.connect(psycopg_conninfo(url)) as conn:
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        yield Month(url, n, generated, size)


# -- the two ways of scoring, and comparing them -----------------------------------------------------

Result = dict[tuple[str, str], dict[str, Value]]


def score_sql(engine: Engine, config: scoring_config.ScoringConfig, exempt: tuple[int, ...] = ()) -> Result:
    with engine.connect() as conn:
        try:
            return facts.compute(conn, config, START, END, exempt)
        finally:
            conn.rollback()


def score_naive(engine: Engine, config: scoring_config.ScoringConfig, exempt: tuple[int, ...] = ()) -> Result:
    with Session(engine) as session:
        return naive.compute(session, config, START, END, exempt)


def compare_ways(url: URL | str, exempt: tuple[int, ...] = ()) -> tuple[int, list[str]]:
    """Score the month both ways (in this process): (subjects, differences)."""
    config = scoring_config.load(SCORING_FILE)
    engine = create_db_engine(url if isinstance(url, str) else url.render_as_string(hide_password=False))
    try:
        sql = score_sql(engine, config, exempt)
        return len(sql), differences(sql, score_naive(engine, config, exempt))
    finally:
        engine.dispose()


def same_number(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def differences(sql: Result, slow: Result, limit: int = 20) -> list[str]:
    """Where the SQL and the naive results differ (floats to 1e-9): subjects, then indicators."""
    out = []
    for key in sorted(set(sql) | set(slow)):
        if key not in sql or key not in slow:
            out.append(f"{key[0]} {key[1]}: only in the {'SQL' if key in sql else 'naive'} result")
            continue
        for name in sorted(set(sql[key]) | set(slow[key])):
            a, b = sql[key].get(name), slow[key].get(name)
            if a is None or b is None or not all(map(same_number, a.__dict__.values(), b.__dict__.values())):
                out.append(f"{key[0]} {key[1]} {name}: SQL {a}, naive {b}")
    return out[:limit] + ([f"… and {len(out) - limit} more"] if len(out) > limit else [])


def validate(admin: URL, n: int, seed: int, say: Callable[[str], None]) -> dict[str, Any]:
    """Generate a small month and require the SQL and the naive way to agree on every figure, also
    with some cases left out (核减, ``exempt``)."""
    with month_database(admin, n, seed, say) as month:
        subjects, wrong = compare_ways(month.url)
        exempt = tuple(range(1, n + 1, 37))
        wrong += [f"(with {len(exempt)} cases exempt) {d}" for d in compare_ways(month.url, exempt)[1]]
    if wrong:
        raise BenchError(
            f"on a generated month of {n:,} cases the SQL and the naive results differ:\n  " + "\n  ".join(wrong)
        )
    say(f"validated: SQL = naive for all {subjects} subjects on a month of {n:,} cases (and with cases exempt)")
    return {"cases": n, "subjects": subjects, "agree": True}


# -- measuring each way in a child process of its own ----------------------------------------------

CHILD_URL_ENV = "GRIDFLOW_BENCH_SCORING_URL"  # the database, passed to the child (not on its command line)


def proc_status_kb(field: str, pid: int | str = "self") -> int | None:
    """A memory figure (VmRSS, VmHWM) of a process from /proc, in kB; None where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def result_json(result: Result) -> dict[str, dict[str, list]]:
    return {
        f"{kind}\t{subject}": {name: [v.numerator, v.denominator, v.value] for name, v in values.items()}
        for (kind, subject), values in result.items()
    }


def result_from_json(data: dict[str, dict[str, list]]) -> Result:
    out: Result = {}
    for key, values in data.items():
        kind, subject = key.split("\t", 1)
        out[(kind, subject)] = {name: Value(*v) for name, v in values.items()}
    return out


def child_sql(engine: Engine, config: scoring_config.ScoringConfig, repeat: int) -> tuple[dict[str, Any], Result]:
    """One warm-up (the server's caches), then ``repeat`` timed runs, each in its own transaction."""
    with engine.connect() as conn:
        backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        conn.rollback()
        seconds, result = [], {}
        for _ in range(repeat + 1):
            started = time.perf_counter()
            result = facts.compute(conn, config, START, END)
            conn.rollback()
            seconds.append(time.perf_counter() - started)
        server_peak = proc_status_kb("VmHWM", backend)
    return {"warmup_s": seconds[0], "seconds": seconds[1:], "server_peak_kb": server_peak}, result


def child_naive(engine: Engine, config: scoring_config.ScoringConfig) -> tuple[dict[str, Any], Result]:
    with Session(engine) as session:
        started = time.perf_counter()
        result = naive.compute(session, config, START, END)
        return {"seconds": [time.perf_counter() - started]}, result


def out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or "out of memory" in str(exc).lower()


def child_main(args: argparse.Namespace) -> int:
    """The child: score the month one way, write timings, peak RSS and the result to ``--child-out``."""
    report: dict[str, Any] = {"way": args.child, "rss_start_kb": proc_status_kb("VmRSS")}
    if args.child_memory_gb:
        limit = int(args.child_memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        report["memory_limit_gb"] = args.child_memory_gb
    engine = create_db_engine(os.environ[CHILD_URL_ENV])
    config = scoring_config.load(SCORING_FILE)
    report["rss_ready_kb"] = proc_status_kb("VmRSS")
    started = time.perf_counter()
    try:
        if args.child == "sql":
            timing, result = child_sql(engine, config, args.repeat)
        else:
            timing, result = child_naive(engine, config)
        report.update(timing, result=result_json(result))
        del result
    except (MemoryError, DBAPIError, psycopg.Error) as exc:
        if not out_of_memory(exc):
            raise
        report["error"] = f"out of memory after {time.perf_counter() - started:.0f} s"
        if args.child_memory_gb:
            report["error"] += f" (address space limited to {args.child_memory_gb:g} GB)"
    finally:
        engine.dispose()
    # VmHWM, not ru_maxrss: Linux carries the parent's peak over into ru_maxrss across exec.
    report["peak_rss_kb"] = proc_status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    Path(args.child_out).write_text(json.dumps(report))
    return 0


def measure(url: URL, way: str, repeat: int, memory_gb: float | None) -> dict[str, Any]:
    """Run one way in a child process; its report, or {"error": …} if it died."""
    with tempfile.TemporaryDirectory(prefix="gridflow-bench-scoring-") as tmp:
        out = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "bench.scoring", "--child", way, "--child-out", str(out), "--repeat", str(repeat)]
        if memory_gb:
            cmd += ["--child-memory-gb", str(memory_gb)]
        env = {**os.environ, CHILD_URL_ENV: url.render_as_string(hide_password=False)}
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if out.exists():
            return json.loads(out.read_text())
    how = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit status {proc.returncode}"
    if proc.returncode == -9:
        how += " (the kernel's out-of-memory killer?)"
    tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
    return {"way": way, "error": f"{how} after {time.perf_counter() - started:.0f} s", "stderr": tail}


def explain(url: URL, config: scoring_config.ScoringConfig) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the engine's own scoring statement (caught on its way to the server)."""
    engine = create_db_engine(url.render_as_string(hide_password=False))
    lines: list[str] = []

    def rewrite(_conn, _cursor, statement, params, _context, _many):  # type: ignore[no-untyped-def]
        if "GROUPING SETS" in statement:
            statement = "EXPLAIN (ANALYZE, BUFFERS) " + statement
        return statement, params

    def grab(_conn, cursor, statement, _params, _context, _many):  # type: ignore[no-untyped-def]
        if statement.startswith("EXPLAIN"):
            lines.extend(str(row[0]) for row in cursor.fetchall())  # facts.compute then sees no rows

    event.listen(engine, "before_cursor_execute", rewrite, retval=True)
    event.listen(engine, "after_cursor_execute", grab)
    try:
        score_sql(engine, config)
    finally:
        engine.dispose()
    return lines or ["(no GROUPING SETS statement was sent: has engine.scoring.facts changed?)"]


# -- the run ----------------------------------------------------------------------------------------


def month_profile(result: Result) -> dict[str, int]:
    """The month as the township's figures tell it."""
    town = result.get(("township", "*"), {})
    count = {
        name: int(v.numerator or 0) for name, v in town.items() if v.denominator is None and v.numerator is not None
    }
    alive = count.get("cases", 0)
    return {
        "alive": alive,
        "reported_in_month": count.get("reported", 0),
        "carried_in": alive - count.get("reported", 0),
        "closed": count.get("closed", 0),
        "voided": count.get("voided", 0),
        "open_at_end": alive - count.get("closed", 0) - count.get("voided", 0),
        "overdue_open": count.get("overdue_open", 0),
        "suspended": int(town["suspension_rate"].numerator or 0) if "suspension_rate" in town else 0,
    }


def summary(run: dict[str, Any]) -> dict[str, Any]:
    """A child's report without its result, with its median."""
    out = {k: v for k, v in run.items() if k != "result"}
    if run.get("seconds"):
        out["median_s"] = statistics.median(run["seconds"])
    return out


def measure_month(admin: URL, n: int, args: argparse.Namespace, say: Callable[[str], None], plan: bool) -> dict:
    config = scoring_config.load(SCORING_FILE)
    with month_database(admin, n, args.seed, say) as month:
        say(f"{n:,} cases: scoring in SQL, {args.repeat} runs after a warm-up")
        sql = measure(month.url, "sql", args.repeat, None)
        if "error" in sql:
            raise BenchError(f"the SQL way failed on {n:,} cases: {sql['error']}\n{sql.get('stderr', '')}")
        say(
            f"{n:,} cases: SQL median {statistics.median(sql['seconds']):.2f} s, peak RSS {sql['peak_rss_kb'] / 1024:.0f} MB"
        )
        lines = explain(month.url, config) if plan else None
        if n > args.naive_max_cases:
            slow = {"way": "naive", "skipped": f"{n:,} cases is over --naive-max-cases {args.naive_max_cases:,}"}
        else:
            say(f"{n:,} cases: scoring the naive way (once)")
            slow = measure(month.url, "naive", 1, args.naive_memory_gb)
            say(f"{n:,} cases: naive " + (slow["error"] if "error" in slow else f"{slow['seconds'][0]:.1f} s"))
    sql_result = result_from_json(sql["result"])
    wrong = differences(sql_result, result_from_json(slow["result"])) if "result" in slow else None
    return {
        "cases": n,
        "month": month_profile(sql_result),
        "generated": {
            "seconds": round(month.generated.seconds, 1),
            "events": month.generated.events,
            "clocks": month.generated.clocks,
            "steps_s": {k: round(v, 1) for k, v in month.generated.steps.items()},
        },
        "database_bytes": month.size_bytes,
        "sql": summary(sql),
        "naive": summary(slow),
        "agree": None if wrong is None else not wrong,
        "differences": wrong or [],
        "plan": lines,
    }


def benchmark(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    started = time.perf_counter()
    admin = admin_url(args.admin_url)
    result: dict[str, Any] = {
        "benchmark": f"monthly scoring ({PERIOD}): SQL (engine.scoring.facts) against the naive way",
        "period": {"month": PERIOD, "start": START.isoformat(), "end": END.isoformat()},
        "targets": {"sql_seconds_at_most": TARGET_SECONDS, "rss_growth_at_most": TARGET_RSS_GROWTH},
        "settings": {"generation_session": GENERATION_SETTINGS, "measured_sessions": "server defaults"},
    }
    result["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    if args.validate_cases:
        result["validation"] = validate(admin, args.validate_cases, args.seed, say)
    small = max(1, args.cases // 10)
    result["small"] = measure_month(admin, small, args, say, plan=False)
    result["big"] = measure_month(admin, args.cases, args, say, plan=args.explain)
    with psycopg.connect(psycopg_conninfo(admin)) as conn:
        result["machine"] = machine(conn)
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["naive_estimate_s"] = naive_estimate(result)
    result["seconds_total"] = round(time.perf_counter() - started, 1)
    return result


def rss_growth(res: dict, way: str) -> float | None:
    a, b = res["small"][way].get("peak_rss_kb"), res["big"][way].get("peak_rss_kb")
    return b / a if a and b and "error" not in res["big"][way] else None


def verdicts(res: dict) -> list[tuple[str, bool]]:
    big = res["big"]
    growth = rss_growth(res, "sql")
    return [
        (
            f"SQL scores {big['cases']:,} cases in {big['sql']['median_s']:.1f} s (target ≤ {TARGET_SECONDS:.0f} s)",
            big["sql"]["median_s"] <= TARGET_SECONDS,
        ),
        (
            f"SQL peak RSS grows {growth:.2f}× from {res['small']['cases']:,} to {big['cases']:,} cases "
            f"(target ≤ {TARGET_RSS_GROWTH})",
            growth is not None and growth <= TARGET_RSS_GROWTH,
        ),
    ]


def disagreements(res: dict) -> list[str]:
    return [f"{res[k]['cases']:,} cases: {d}" for k in ("small", "big") for d in res[k]["differences"]]


# -- report -----------------------------------------------------------------------------------------


def mb(kb: int | None) -> str:
    return "?" if kb is None else f"{kb / 1024:,.0f}"


def naive_estimate(res: dict) -> float | None:
    """The naive way's time on the big month, from the small one, where it did not run on the big one:
    it loads and walks every case, so its time grows with the cases (linearly, at best)."""
    small, big = res["small"], res["big"]
    if "median_s" in big["naive"] or "median_s" not in small["naive"] or not small["month"]["alive"]:
        return None
    return small["naive"]["median_s"] * big["month"]["alive"] / small["month"]["alive"]


def naive_cells(run: dict[str, Any], sql_s: float, estimate: float | None) -> tuple[str, str, str]:
    if "median_s" in run:
        return f"{run['median_s']:.1f}", mb(run["peak_rss_kb"]), f"{run['median_s'] / sql_s:.1f}"
    rss = mb(run.get("peak_rss_kb")) if "error" in run else "—"
    if estimate is None:
        return "failed" if "error" in run else "not run", rss, "—"
    return f"≈{estimate:.0f}*", rss, f"≈{estimate / sql_s:.0f}*"


def print_machine(console: Console, res: dict) -> None:
    m = res["machine"]
    console.print(f"[bold]gridflow bench: {res['benchmark']}[/bold]")
    console.print(f"date     {m['date']}", highlight=False)
    console.print(
        f"machine  {m['cpu_model']}, {m['cpus']} CPUs, {m['platform']}, Python {m['python']}", highlight=False
    )
    console.print(f"database PostgreSQL {m['postgresql']}; the measured sessions keep the server's settings")
    console.print(f"drivers  SQLAlchemy {m['sqlalchemy']}, psycopg {m['psycopg']}", highlight=False)
    load = ", ".join(f"{x:.1f}" for x in res["load_average_at_start"])
    console.print(
        f"load     {load} at the start (1, 5, 15 min; other work on the machine skews the times)", highlight=False
    )
    if "validation" in res:
        v = res["validation"]
        console.print(
            f"checked  SQL = naive for all {v['subjects']} subjects on a generated month of {v['cases']:,} cases"
        )


def months_table(res: dict) -> Table:
    table = Table(title=f"the generated months ({res['period']['month']}, as of 1 December 00:00 in Shanghai)")
    for col in ("cases", "alive", "from Oct", "closed", "voided", "open", "overdue", "suspended", "events", "clocks"):
        table.add_column(col, justify="right")
    table.add_column("database", justify="right")
    table.add_column("made in", justify="right")
    for key in ("small", "big"):
        r, p = res[key], res[key]["month"]
        table.add_row(
            *(f"{x:,}" for x in (r["cases"], p["alive"], p["carried_in"], p["closed"], p["voided"], p["open_at_end"])),
            *(
                f"{x:,}"
                for x in (p["overdue_open"], p["suspended"], r["generated"]["events"], r["generated"]["clocks"])
            ),
            f"{r['database_bytes'] / 2**30:.1f} GB",
            f"{r['generated']['seconds']:.0f} s",
        )
    return table


def scoring_table(res: dict) -> Table:
    table = Table(title="scoring the month: SQL (engine.scoring.facts) against the naive way (engine.scoring.naive)")
    for col in ("cases", "SQL s", "SQL runs s", "SQL RSS MB", "server MB", "naive s", "naive RSS MB", "naive / SQL"):
        table.add_column(col, justify="right")
    table.add_column("same figures", justify="center")
    for key in ("small", "big"):
        r, sql = res[key], res[key]["sql"]
        estimate = naive_estimate(res) if key == "big" else None
        table.add_row(
            f"{r['cases']:,}",
            f"{sql['median_s']:.2f}",
            " ".join(f"{x:.1f}" for x in sql["seconds"]),
            mb(sql["peak_rss_kb"]),
            mb(sql.get("server_peak_kb")),
            *naive_cells(r["naive"], sql["median_s"], estimate),
            {None: "—", True: "yes", False: "NO"}[r["agree"]],
        )
    return table


def print_report(res: dict, show_plan: bool) -> None:
    console = Console(width=max(Console().width, 140))
    print_machine(console, res)
    console.print(months_table(res))
    console.print(
        "alive: reported before 1 Dec and not closed before 1 Nov; from Oct: of those, reported in October; "
        "open / overdue / suspended: at the end of the month (suspended: at some time in it)",
        style="dim",
    )
    console.print(scoring_table(res))
    console.print(
        "SQL s: median of the timed runs after one warm-up; RSS: peak (VmHWM) of the child process that scored; "
        "server MB: peak RSS of the PostgreSQL backend that ran the SQL (shared buffers included)",
        style="dim",
    )
    for key in ("small", "big"):
        run = res[key]["naive"]
        if "median_s" not in run:
            console.print(
                f"[yellow]naive way on {res[key]['cases']:,} cases: {run.get('skipped') or run['error']}[/yellow]"
            )
    if naive_estimate(res) is not None:
        console.print(
            f"[yellow]* estimated: the naive time on {res['small']['cases']:,} cases scaled by the cases alive[/yellow]"
        )
    for way in ("sql", "naive"):
        growth = rss_growth(res, way)
        if growth is not None:
            console.print(
                f"peak RSS of the {way} way: ×{growth:.2f} from {res['small']['cases']:,} to {res['big']['cases']:,} cases",
                highlight=False,
            )
    for text, ok in verdicts(res):
        console.print(f"{text}: {'[green]met[/green]' if ok else '[red]MISSED[/red]'}", highlight=False)
    for line in disagreements(res):
        console.print(f"[red]differ[/red] {line}", highlight=False)
    if show_plan and res["big"]["plan"]:
        console.print(f"\nEXPLAIN (ANALYZE, BUFFERS) of the scoring statement, {res['big']['cases']:,} cases:")
        console.print("\n".join(res["big"]["plan"]), markup=False, highlight=False, soft_wrap=True)
    console.print(f"total run time {res['seconds_total']:.0f} s", highlight=False)


# -- main -------------------------------------------------------------------------------------------


def bounded(low: float, high: float, kind: type = int) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text.replace("_", "").replace(",", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:,} and {high:,}")
        return value

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.scoring", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--cases",
        type=bounded(10, MAX_CASES),
        help=f"cases in the big month (default {DEFAULT_CASES:,}; a month ten times smaller runs too)",
    )
    p.add_argument("--quick", action="store_true", help=f"{QUICK_CASES:,} cases (and {QUICK_CASES // 10:,})")
    p.add_argument(
        "--validate-cases",
        type=bounded(0, MAX_VALIDATE),
        default=DEFAULT_VALIDATE,
        help=f"first check SQL = naive on a month this big; 0 skips it (default {DEFAULT_VALIDATE:,})",
    )
    p.add_argument(
        "--repeat",
        type=bounded(1, MAX_REPEAT),
        default=DEFAULT_REPEAT,
        help=f"timed SQL runs after the warm-up; the median is reported (default {DEFAULT_REPEAT})",
    )
    p.add_argument(
        "--naive-max-cases",
        type=bounded(0, MAX_CASES),
        default=MAX_CASES,
        help="do not run the naive way on a bigger month (default: always run it)",
    )
    p.add_argument(
        "--naive-memory-gb",
        type=bounded(0.5, 1024, float),
        default=DEFAULT_NAIVE_MEMORY_GB,
        help="address-space limit of the naive child, so that running out of memory is reported "
        f"instead of waking the kernel's OOM killer (default {DEFAULT_NAIVE_MEMORY_GB:g})",
    )
    p.add_argument("--seed", type=bounded(0, 2**31), default=DEFAULT_SEED, help="seed of the generated month")
    p.add_argument(
        "--explain", action="store_true", help="print the EXPLAIN (ANALYZE, BUFFERS) of the SQL on the big month"
    )
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--admin-url", help=f"admin URL of the server (env {ADMIN_URL_ENV}; default {DEFAULT_ADMIN_URL})")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--child", choices=("sql", "naive"), help=argparse.SUPPRESS)
    p.add_argument("--child-out", help=argparse.SUPPRESS)
    p.add_argument("--child-memory-gb", type=float, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.cases is None:
        args.cases = QUICK_CASES if args.quick else DEFAULT_CASES
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    err = Console(stderr=True)

    def say(text: str) -> None:
        err.print(f"[dim]{text}[/dim]", highlight=False)

    try:
        res = benchmark(args, say)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(res, ensure_ascii=False, indent=2))
    else:
        print_report(res, args.explain)
    if disagreements(res):
        print("bench: the SQL and the naive results differ", file=sys.stderr)
        return 2
    missed = [text for text, ok in verdicts(res) if not ok]
    if missed and args.check:
        print("bench: missed " + "; ".join(missed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
