"""Benchmark: the HTTP API on PostgreSQL under 16 concurrent clients, side by side with plain FastAPI + psycopg.

One run on the local PostgreSQL server, in a throwaway database (created here, dropped at the end, also
after an error or Ctrl-C):

1. **Setup**: ``Gridflow(settings).init()`` (schema, the sample org chart: 6 villages, 69 grids; the
   default workflow), then ``--cases`` cases (default 100,000) spread over the 69 grids in every state
   of the workflow, with their whole history: case rows, every step's ``case_event``, every SLA clock
   (the case clock, one per state with a time limit; the running ones with their deadlines, the left
   ones stopped with their outcome) and every timer; timers already due are fired as the sweep does
   (``sla.*`` events, ``breached_at``, ``overdue``, escalation level and mark). How: each case's steps
   are planned (state mix, times in the weeks before now), then played in memory through the engine's
   own code — ``engine.cases`` (the case and event records), ``engine.sla.Clocks`` (clocks, deadlines on
   the business calendar, timers) and the sweep's ``_effect`` — against a stand-in connection that keeps
   the rows; the rows then go in with ``COPY``. Left out: outbox notices (no call here reads them).
   Before the load, a few planned cases of each state are played once through the real engine on the
   database (``cases.report``/``fire`` and ``sweep.sweep`` at each timer's time) and compared row by row
   with the generator's; then those rows are removed.
2. **Serve**: the real API, ``uvicorn --factory gridflow.api.asgi:create --workers W`` with
   ``GRIDFLOW_DATABASE_URL`` (the settings' defaults otherwise, as ``gridflow serve``), and the
   reference, ``uvicorn --factory bench.api_reference:create --workers W`` (plain psycopg, the same rows
   written; see that module), both on 127.0.0.1 with the same uvicorn options.
3. **Load**: ``--clients`` (16) concurrent keep-alive clients (``httpx.AsyncClient``) per side, each part
   ``--seconds`` per side per round after a warm-up, in ``--rounds`` rounds with the sides' order
   rotated: (1) ``POST /api/v1/cases/{code}/steps`` ``classify`` with the centre's tokens on distinct
   ``reported`` cases, against the reference's step; (2) ``GET /api/v1/cases?village=…&overdue=true
   &limit=50`` with the village secretary's token, against the reference's SELECT; (3) the Open311
   ``GET /open311/v2/requests.json?page_size=50`` (a page of the client's requests, as the list). Every answer is checked (status and body);
   afterwards one case stepped by each side is compared row by row, and the two lists item by item.

Targets: step throughput ≥ 0.5 × the reference's with p99 ≤ 100 ms; list p99 ≤ 50 ms; Open311 GET
p99 ≤ 50 ms. ``--check`` exits 1 on a miss. ``--smoke`` (the test suite): ~300 cases, a few requests
per side, checks only that everything answers correctly. ``--profile`` also runs a one-worker API
under cProfile (every thread) for a while of each part and prints where the time goes.

    .venv/bin/python -m bench.api                  # 100,000 cases, 3 rounds (a few minutes)
    .venv/bin/python -m bench.api --smoke --json
    .venv/bin/python -m bench.api --check --profile

Exit status: 0 done; 1 a check failed, or with ``--check`` a target was missed; 2 bad arguments or no
server.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import json
import math
import multiprocessing
import os
import pstats
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, bench/ would come first on sys.path and bench/transitions.py would be
# imported in place of the ``transitions`` library the engine uses.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.transitions import (  # noqa: E402
    BenchError,
    admin_url,
    machine,
    psycopg_conninfo,
    sigterm_as_interrupt,
    throwaway_database,
)
from config.settings import Settings  # noqa: E402
from engine import cases as engine_cases  # noqa: E402
from engine import sla  # noqa: E402
from engine import sweep as engine_sweep  # noqa: E402
from engine.machine import CompiledWorkflow  # noqa: E402
from engine.rules import StepContext  # noqa: E402
from engine.store import case_repo, workflow_repo  # noqa: E402
from engine.store.case_repo import CaseRecord, EventRecord  # noqa: E402
from engine.store.db import session_factory  # noqa: E402

DEFAULTS: dict[str, float] = {"cases": 100_000, "rounds": 3, "seconds": 8.0, "workers": 2, "clients": 16}
SMOKE: dict[str, float] = {"cases": 300, "rounds": 1, "seconds": 5.0}
LIMITS: dict[str, tuple[float, float]] = {
    "cases": (100, 1_000_000),
    "rounds": (1, 20),
    "seconds": (0.5, 600.0),
    "workers": (1, 16),
    "clients": (1, 256),
}
HELPS = {
    "cases": "cases loaded before the run",
    "rounds": "rounds; each runs every part on both sides, the order rotated",
    "seconds": "time budget of each side in each part and round",
    "workers": "uvicorn worker processes of each server",
    "clients": "concurrent keep-alive clients",
}
SMOKE_REQUESTS = 12  # per side and part in --smoke
LOAD_CHUNK = 5_000  # cases played and copied at a time
MAX_REQUESTS = 1_000_000  # per side, part and round: far above what a time budget lets through
WARM_REQUESTS = 3  # per client, untimed, before each timed run (full runs)
TARGETS = {"step_ratio": 0.5, "step_p99_ms": 100.0, "list_p99_ms": 50.0, "open311_p99_ms": 50.0}
SEED = 20261202
SWEEPER = "bench-sweeper"
LEASE = timedelta(seconds=120)  # the settings' sweep_lease_s default
SERVER_READY_S = 90.0
REQUEST_TIMEOUT_S = 60.0

# -- the cases: what happened to each -------------------------------------------------------------------

STATE_MIX = (
    ("reported", 15),
    ("classified", 4),
    ("assigned", 5),
    ("in_progress", 20),
    ("suspended", 2),
    ("resolved", 5),
    ("verified", 44),
    ("voided", 5),
)
_TO_PROGRESS = ("report", "classify", "assign", "accept")
PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "reported": (("report",),),
    "classified": (("report", "classify"),),
    "assigned": (("report", "classify", "assign"),),
    "in_progress": (_TO_PROGRESS,),
    "suspended": ((*_TO_PROGRESS, "suspend"),),
    "resolved": ((*_TO_PROGRESS, "resolve"),),
    "verified": ((*_TO_PROGRESS, "resolve", "verify"),),
    "voided": (("report", "void"), ("report", "classify", "void")),
}
AGE_S = {  # wall seconds since the last step, by the state the case is in now
    "reported": (60, 6 * 3600),
    "classified": (60, 8 * 3600),
    "assigned": (60, 12 * 3600),
    "in_progress": (600, 6 * 86400),
    "suspended": (3600, 12 * 86400),
    "resolved": (600, 5 * 86400),
    "verified": (3600, 60 * 86400),
    "voided": (3600, 60 * 86400),
}
GAP_S = {  # wall seconds before each step
    "classify": (300, 3 * 3600),
    "assign": (300, 6 * 3600),
    "accept": (300, 8 * 3600),
    "suspend": (3600, 3 * 86400),
    "resolve": (2 * 3600, 6 * 86400),
    "verify": (3600, 3 * 86400),
    "void": (300, 86400),
}
OPEN311_SHARE = 0.03  # of the cases, reported by the county's 12345 platform through Open311
OPEN311_CLIENT = ("county-12345", "通江县12345热线", "p-yang-xiaodong")  # id, name, the person it reports as
OPEN311_PAGE = 50
OPEN311_CHANNEL = "open311"  # gridflow.app.open311.CHANNEL
PRIORITY_MIX = (("normal", 80), ("urgent", 15), ("critical", 5))
TITLES = (
    "自来水管破裂",
    "路灯不亮",
    "道路塌方",
    "垃圾未清运",
    "邻里纠纷",
    "电线老化",
    "山体落石",
    "低保申请",
    "沟渠堵塞",
)
SATISFACTION = ("satisfied", "satisfied", "basically_satisfied", "dissatisfied")
CASE_COLUMNS = (
    "id", "code", "workflow_id", "workflow_name", "workflow_version", "status", "version", "title", "description",
    "category", "priority", "grid_id", "reporter_id", "assignee_id", "source_channel", "satisfaction", "rework_count",
    "extension_count", "pending_extension", "reported_at", "updated_at", "closed_at", "overdue", "escalation_level",
    "mark", "source_client",
)  # fmt: skip
EVENT_COLUMNS = (
    "case_id", "seq", "at", "actor_id", "trigger", "from_state", "to_state", "payload", "workflow_version",
    "received_at", "entered_by",
)  # fmt: skip
CLOCK_COLUMNS = (
    "id", "case_id", "scope", "state", "calendar", "limit_s", "consumed_s", "status", "generation", "segment_start",
    "started_at", "stopped_at", "due_at", "estimated", "breached_at", "outcome", "policy", "history", "assignee_id",
    "stopped_by",
)  # fmt: skip
TIMER_COLUMNS = (
    "id", "clock_id", "case_id", "kind", "level", "generation", "fire_at", "status", "lease_until", "claimed_by",
    "attempts", "fired_at", "note", "dedupe_key",
)  # fmt: skip
JSON_COLUMNS = {"pending_extension", "payload", "policy", "history"}


@dataclass(frozen=True)
class Org:
    grids: tuple[str, ...]
    village_of: dict[str, str | None]
    worker_of: dict[str, str]
    centre: tuple[str, ...]
    secretary_of: dict[str, str]

    @property
    def villages(self) -> list[str]:
        return sorted(self.secretary_of)


def read_org(conn: psycopg.Connection) -> Org:
    grids = conn.execute("SELECT id, village_id FROM place WHERE kind = 'grid' AND active ORDER BY id").fetchall()
    roles = conn.execute("SELECT role, place_id, person_id FROM role_assignment ORDER BY role, place_id, person_id")
    worker_of: dict[str, str] = {}
    secretary_of: dict[str, str] = {}
    centre: list[str] = []
    for role, place, person in roles.fetchall():
        if role == "grid_worker":
            worker_of.setdefault(place, person)
        elif role == "village_secretary":
            secretary_of.setdefault(place, person)
        elif role == "center":
            centre.append(person)
    conn.commit()
    missing = [g for g, _ in grids if g not in worker_of]
    if missing or not centre:
        raise BenchError(f"the org chart needs a grid worker in every grid and a centre: {missing or 'no centre'}")
    return Org(tuple(g for g, _ in grids), dict(grids), worker_of, tuple(centre), secretary_of)


@dataclass
class Plan:
    """One case: its grid and its steps (trigger, actor, fields, at), the report first."""

    grid: str
    steps: list[tuple[str, str, dict[str, Any], datetime]]
    code: str = ""
    client: str | None = None  # reported through Open311 by this client

    @property
    def state(self) -> str:
        return {
            "report": "reported", "classify": "classified", "assign": "assigned", "accept": "in_progress",
            "suspend": "suspended", "resolve": "resolved", "verify": "verified", "void": "voided",
        }[self.steps[-1][0]]  # fmt: skip

    @property
    def reported_at(self) -> datetime:
        return self.steps[0][3]


def plan_cases(n: int, org: Org, now: datetime, categories: list[str], tz: Any, seed: int = SEED,
               client: tuple[str, str] | None = None) -> list[Plan]:  # fmt: skip
    """``n`` cases, their steps dated backwards from ``now``; codes numbered by report time per local year.
    With ``client`` (Open311 client id, its person) a share of them is reported through Open311."""
    rng = random.Random(seed)
    states, weights = zip(*STATE_MIX, strict=True)
    prios, prio_weights = zip(*PRIORITY_MIX, strict=True)
    plans = []
    for i in range(n):
        state = rng.choices(states, weights)[0]
        path = rng.choice(PATHS[state])
        grid = rng.choice(org.grids)
        worker = org.worker_of[grid]
        times = [now - timedelta(seconds=rng.randint(*AGE_S[state]))]
        for trigger in reversed(path[1:]):
            times.append(times[-1] - timedelta(seconds=rng.randint(*GAP_S[trigger])))
        times.reverse()
        category, priority = rng.choice(categories), rng.choices(prios, prio_weights)[0]
        centre = rng.choice(org.centre)
        fields: dict[str, tuple[str, dict[str, Any]]] = {
            "report": (worker, {"title": f"{TITLES[i % len(TITLES)]}（{grid}）"}),
            "classify": (centre, {"category": category, "priority": priority}),
            "assign": (centre, {"assignee": worker}),
            "accept": (worker, {}),
            "suspend": (worker, {"reason": "等待上级部门协调"}),
            "resolve": (worker, {"resolution": "已处置完毕，现场恢复正常"}),
            "verify": (centre, {"satisfaction": rng.choice(SATISFACTION)}),
            "void": (centre, {"reason": "重复上报"}),
        }
        via = client if client is not None and rng.random() < OPEN311_SHARE else None
        if via is not None:  # as gridflow.app.open311 reports one: in the client's person's name
            description = f"{TITLES[i % len(TITLES)]}，请尽快处理\n\n来源：通江县12345热线（{via[0]}）"
            fields["report"] = (via[1], {"title": fields["report"][1]["title"], "description": description,
                                         "category": category})  # fmt: skip
        steps = [(t, *fields[t], at) for t, at in zip(path, times, strict=True)]
        plans.append(Plan(grid, steps, client=via[0] if via else None))
    plans.sort(key=lambda p: p.reported_at)
    counters: dict[int, int] = {}
    for plan in plans:
        year = plan.reported_at.astimezone(tz).year
        counters[year] = counters.get(year, 0) + 1
        plan.code = f"SL-{year}-{counters[year]:06d}"
    return plans


# -- playing the steps through the engine's code, in memory ----------------------------------------------


class _Rowcount:
    rowcount = 1

    def __init__(self, value: Any = None):
        self.value = value

    def scalar_one(self) -> Any:
        return self.value


class _Row:
    def __init__(self, mapping: dict[str, Any]):
        self._mapping = mapping


class _Conn:
    """Stands in for a session's connection under ``engine.sla.Clocks`` and ``engine.store.case_repo``:
    keeps one case's clock and timer rows in memory, numbered from the generator's counters."""

    dialect = SimpleNamespace(name="bench")  # not postgresql: case_repo takes its Core path, below

    def __init__(self, ids: Ids):
        self.ids = ids
        self.clocks: dict[int, dict[str, Any]] = {}
        self.timers: dict[int, dict[str, Any]] = {}

    def execute(self, stmt: Any, params: Any = None) -> Any:
        if stmt is sla._INSERT_CLOCK:
            clock_id = self.ids.clock()
            self.clocks[clock_id] = {"id": clock_id, **params}
            return _Rowcount(clock_id)
        if stmt is sla._OPEN:
            return [_Row(dict(c)) for _, c in sorted(self.clocks.items()) if c["status"] != "stopped"]
        if stmt is sla._CANCEL:
            for p in params:
                for timer in self.timers.values():
                    if timer["clock_id"] == p["_clock"] and timer["status"] == "pending":
                        timer["status"], timer["note"] = "cancelled", p["_why"]
        elif stmt is sla._SAVE_CLOCK:
            for p in params:
                self.clocks[p["_id"]].update({k: v for k, v in p.items() if k != "_id"})
        elif stmt is sla._INSERT_TIMER:
            for p in params:
                timer_id = self.ids.timer()
                self.timers[timer_id] = {"id": timer_id, "lease_until": None, "claimed_by": None, **p}
        elif stmt is case_repo._SAVE or stmt is case_repo._INSERT_EVENT:
            pass  # the case and its events are kept by the caller
        else:
            raise BenchError(f"the engine ran a statement the generator does not know: {stmt}")
        return _Rowcount()

    def fired(self, clock_id: int) -> list[tuple[str, int]]:
        return [
            (t["kind"], t["level"])
            for t in self.timers.values()
            if t["clock_id"] == clock_id and t["status"] == "fired"
        ]


class _Session:
    def __init__(self, conn: _Conn):
        self.conn = conn

    def connection(self) -> _Conn:
        return self.conn

    def execute(self, stmt: Any, params: Any = None) -> Any:  # Clocks._relay: the fired timers of a clock
        values = stmt.compile().params
        clock_id = next(v for k, v in values.items() if k.startswith("clock_id"))
        return self.conn.fired(clock_id)


@dataclass
class Ids:
    """Clock and timer ids; loaders working side by side take every ``step``-th one from their own start."""

    next_clock: int = 1
    next_timer: int = 1
    step: int = 1

    def clock(self) -> int:
        self.next_clock += self.step
        return self.next_clock - self.step

    def timer(self) -> int:
        self.next_timer += self.step
        return self.next_timer - self.step


@dataclass
class Played:
    case: CaseRecord
    events: list[EventRecord]
    clocks: list[dict[str, Any]]
    timers: list[dict[str, Any]]
    source_client: str | None = None


class Generator:
    """Plays planned cases through the engine's own step and clock code; the sweep fires each due timer
    at its ``fire_at``, as a sweep that keeps up does."""

    def __init__(self, flow: CompiledWorkflow, calendars: dict[str, Any], tz: Any, now: datetime, ids: Ids):
        self.flow, self.calendars, self.tz, self.now, self.ids = flow, calendars, tz, now, ids

    def play(self, case_id: int, plan: Plan) -> Played:
        conn = _Conn(self.ids)
        session = _Session(conn)
        d = self.flow.definition
        trigger, actor, fields, at = plan.steps[0]
        channel = OPEN311_CHANNEL if plan.client else "grid_worker"
        case = engine_cases._new_case(self.flow, plan.code, plan.grid, actor, channel, at)
        case.id = case_id
        engine_cases._apply_columns(case, fields)
        events = [engine_cases._event(case, engine_cases.REPORT, actor, None, fields, at)]
        clocks = engine_cases._clocks(session, case, d, self.calendars, self.tz)  # type: ignore[arg-type]
        clocks.on_report(d, at)
        clocks.finish()
        for trigger, actor, fields, at in plan.steps[1:]:
            self._sweep(conn, case, events, at)
            spec, dest = self.flow.step(case.status, trigger)
            ctx = StepContext(case, trigger, actor, dict(fields), at, d.extras)
            result = engine_cases._apply(session, self.flow, ctx, dest)  # type: ignore[arg-type]
            events.append(result.event)
            engine_cases._move_clocks(session, d, result, spec.effects, self.calendars, self.tz)  # type: ignore[arg-type]
        self._sweep(conn, case, events, self.now)
        clock_rows = [conn.clocks[k] for k in sorted(conn.clocks)]
        return Played(case, events, clock_rows, [conn.timers[k] for k in sorted(conn.timers)], plan.client)

    def _sweep(self, conn: _Conn, case: CaseRecord, events: list[EventRecord], until: datetime) -> None:
        """engine.sweep at each due timer's time: claim (lease), flip to fired, the effects, one event each."""
        for _ in range(10_000):
            due = [t for t in conn.timers.values() if t["status"] == "pending" and t["fire_at"] <= until]
            if not due:
                return
            at = min(t["fire_at"] for t in due)
            batch = sorted((t for t in due if t["fire_at"] <= at), key=lambda t: (t["fire_at"], t["id"]))
            for timer in batch:
                timer.update(claimed_by=SWEEPER, lease_until=at + LEASE, attempts=timer["attempts"] + 1)
                timer.update(status="fired", fired_at=at)
                clock = conn.clocks[timer["clock_id"]]
                if clock["status"] != "running" or clock["generation"] != timer["generation"]:
                    timer.update(status="cancelled", note="stale: its clock moved on before it fired")
                    continue
                item = SimpleNamespace(kind=timer["kind"], level=timer["level"])
                _roles, _template, payload = engine_sweep._effect(item, case, sla.Policy.from_json(clock["policy"]))
                if timer["kind"] == "breach":
                    clock["breached_at"] = timer["fire_at"]
                case.version, case.updated_at = case.version + 1, at
                due_at = clock["due_at"].astimezone(UTC).isoformat() if clock["due_at"] else None
                payload.update(
                    {"clock": clock["scope"], "state": clock["state"], "timer": timer["id"], "due_at": due_at}
                )
                events.append(
                    EventRecord(case.id, case.version, at, engine_sweep.SYSTEM, engine_sweep.EVENT[timer["kind"]],
                                case.status, case.status, payload, case.workflow_version)
                )  # fmt: skip
        raise BenchError(f"{case.code}: the sweep did not settle")


@contextmanager
def memoized_policies() -> Iterator[None]:
    """While playing: ``engine.sla.resolve`` and ``Policy.to_json`` remembered by their arguments (the same
    values, built once per state, category, priority and month instead of once per clock)."""
    real_resolve, real_to_json = sla.resolve, sla.Policy.to_json
    policies: dict[tuple, sla.Policy] = {}
    dumped: dict[sla.Policy, dict[str, Any]] = {}

    def resolve(definition: Any, spec: Any, case: Any, calendars: Any, local_month: int) -> sla.Policy:
        key = (id(definition), id(spec), id(calendars), case.category, case.priority, local_month)
        if key not in policies:
            policies[key] = real_resolve(definition, spec, case, calendars, local_month)
        return policies[key]

    def to_json(self: sla.Policy) -> dict[str, Any]:
        if self not in dumped:
            dumped[self] = real_to_json(self)
        return dumped[self]

    sla.resolve, sla.Policy.to_json = resolve, to_json  # type: ignore[method-assign]
    try:
        yield
    finally:
        sla.resolve, sla.Policy.to_json = real_resolve, real_to_json  # type: ignore[method-assign]


_DUMPED: dict[int, tuple[Any, str]] = {}


def _json(value: Any) -> Any:
    """JSON text for a jsonb column in COPY; a policy shared by many clocks is dumped once."""
    if value is None:
        return None
    kept = _DUMPED.get(id(value))
    if kept is not None and kept[0] is value:
        return kept[1]
    text = json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict) and "limit_text" in value:
        _DUMPED[id(value)] = (value, text)
    return text


def copy_rows(conn: psycopg.Connection, played: list[Played]) -> dict[str, int]:
    """Everything played, with COPY (one statement per table for this chunk)."""
    counts = {"cases": 0, "events": 0, "clocks": 0, "timers": 0}
    with conn.cursor() as cur:
        # The rows reference each other correctly by construction (and as checked against the engine):
        # no foreign-key triggers per row during the load (superuser; ends with the transaction).
        cur.execute("SET LOCAL session_replication_role = replica")
        with cur.copy(f"COPY cases ({', '.join(CASE_COLUMNS)}) FROM STDIN") as copy:
            for p in played:
                row = p.case.as_dict()
                row["source_client"] = p.source_client
                copy.write_row([_json(row[c]) if c in JSON_COLUMNS else row[c] for c in CASE_COLUMNS])
                counts["cases"] += 1
        with cur.copy(f"COPY case_event ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
            for p in played:
                for e in p.events:
                    copy.write_row(
                        [_json(getattr(e, c)) if c in JSON_COLUMNS else getattr(e, c) for c in EVENT_COLUMNS]
                    )
                    counts["events"] += 1
        with cur.copy(f"COPY sla_clock ({', '.join(CLOCK_COLUMNS)}) FROM STDIN") as copy:
            for p in played:
                for c in p.clocks:
                    copy.write_row([_json(c[k]) if k in JSON_COLUMNS else c[k] for k in CLOCK_COLUMNS])
                    counts["clocks"] += 1
        with cur.copy(f"COPY sla_timer ({', '.join(TIMER_COLUMNS)}) FROM STDIN") as copy:
            for p in played:
                for t in p.timers:
                    copy.write_row([t[k] for k in TIMER_COLUMNS])
                    counts["timers"] += 1
    return counts


_LOADING: tuple[list[Plan], Generator, str, int] | None = None  # what forked loaders inherit


def _load_share(k: int) -> tuple[dict[str, int], float]:
    """Loader ``k`` of ``n``: every ``n``-th chunk of the plans, on its own connection, ids ``k+1``, ``k+1+n``…"""
    assert _LOADING is not None
    plans, generator, conninfo, n = _LOADING
    generator.ids = Ids(k + 1, k + 1, n)
    totals = {"cases": 0, "events": 0, "clocks": 0, "timers": 0}
    play_s = 0.0
    with psycopg.connect(conninfo) as conn:
        for start in range(k * LOAD_CHUNK, len(plans), n * LOAD_CHUNK):
            began = time.perf_counter()
            played = [generator.play(start + i + 1, plan) for i, plan in enumerate(plans[start : start + LOAD_CHUNK])]
            play_s += time.perf_counter() - began
            for key, v in copy_rows(conn, played).items():
                totals[key] += v
            conn.commit()
    return totals, play_s


def load_cases(conninfo: str, plans: list[Plan], generator: Generator, loaders: int) -> tuple[dict[str, int], float]:
    """Play the plans a chunk at a time and COPY each chunk, ``loaders`` processes side by side (forked:
    each plays and copies its own chunks); the row counts and the seconds spent playing (summed)."""
    global _LOADING
    totals = {"cases": 0, "events": 0, "clocks": 0, "timers": 0}
    play_s = 0.0
    with memoized_policies():
        _LOADING = (plans, generator, conninfo, loaders)
        try:
            if loaders == 1:
                results = [_load_share(0)]
            else:
                with multiprocessing.get_context("fork").Pool(loaders) as pool:
                    results = pool.map(_load_share, range(loaders))
        finally:
            _LOADING = None
    for counts, seconds in results:
        play_s += seconds
        for key, v in counts.items():
            totals[key] += v
    return totals, play_s


def finish_load(conn: psycopg.Connection, plans: list[Plan], tz: Any) -> None:
    """Sequences past the ids used, the code counters past the codes used, then VACUUM ANALYZE."""
    for table in ("cases", "case_event", "sla_clock", "sla_timer"):
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST((SELECT max(id) FROM {table}), 1))"
        )
    last: dict[str, int] = {}
    for plan in plans:
        prefix, number = plan.code.rsplit("-", 1)
        last[prefix] = max(last.get(prefix, 0), int(number))
    for prefix, number in last.items():
        conn.execute(
            "INSERT INTO case_counter (prefix, last) VALUES (%s, %s) ON CONFLICT (prefix) DO UPDATE SET last = %s",
            (prefix, number, number),
        )
    conn.commit()
    conn.autocommit = True
    try:  # the local server runs without autovacuum: statistics and visibility as it would keep them
        conn.execute("VACUUM ANALYZE cases, case_event, sla_clock, sla_timer, place, role_assignment, api_token")
    finally:
        conn.autocommit = False


# -- the generator against the real engine ----------------------------------------------------------------


def _real_sweeps(sessions: Any, until: datetime) -> None:
    """engine.sweep.sweep at each pending timer's time, up to ``until``."""
    for _ in range(10_000):
        with sessions.begin() as session:
            at = (
                session.connection()
                .exec_driver_sql(
                    "SELECT min(fire_at) FROM sla_timer WHERE status = 'pending' AND fire_at <= %(u)s", {"u": until}
                )
                .scalar()
            )
        if at is None:
            return
        engine_sweep.sweep(sessions.begin, at, SWEEPER, batch=500, lease=LEASE)
    raise BenchError("the real sweep did not settle")


def _normalized(conn: psycopg.Connection, case_id: int) -> dict[str, Any]:
    """A case's rows as stored, ids replaced by their rank within the case (so two cases compare)."""
    case = conn.execute(f"SELECT {', '.join(CASE_COLUMNS)} FROM cases WHERE id = %s", (case_id,)).fetchone()
    clocks = conn.execute(
        f"SELECT {', '.join(CLOCK_COLUMNS)} FROM sla_clock WHERE case_id = %s ORDER BY id", (case_id,)
    )
    clocks = clocks.fetchall()
    timers = conn.execute(
        f"SELECT {', '.join(TIMER_COLUMNS)} FROM sla_timer WHERE case_id = %s ORDER BY id", (case_id,)
    )
    timers = timers.fetchall()
    events = conn.execute(
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM case_event WHERE case_id = %s ORDER BY seq", (case_id,)
    ).fetchall()
    conn.commit()
    clock_rank = {row[0]: i for i, row in enumerate(clocks)}
    timer_rank = {row[0]: i for i, row in enumerate(timers)}
    out_timers = []
    for row in timers:
        t = dict(zip(TIMER_COLUMNS, row, strict=True))
        t["clock_id"] = clock_rank[t["clock_id"]]
        t["dedupe_key"] = t["dedupe_key"].replace(f"{row[1]}:", f"c{t['clock_id']}:", 1)
        out_timers.append({k: v for k, v in t.items() if k not in ("id", "case_id")})
    out_events = []
    for row in events:
        e = dict(zip(EVENT_COLUMNS, row, strict=True))
        if "timer" in e["payload"]:
            e["payload"] = {**e["payload"], "timer": timer_rank[e["payload"]["timer"]]}
        out_events.append({k: v for k, v in e.items() if k != "case_id"})
    return {
        "case": {k: v for k, v in zip(CASE_COLUMNS, case, strict=True) if k != "id"},
        "events": out_events,
        "clocks": [
            {k: v for k, v in zip(CLOCK_COLUMNS, row, strict=True) if k not in ("id", "case_id")} for row in clocks
        ],
        "timers": out_timers,
    }


def _diff(a: Any, b: Any, path: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            found = _diff(a.get(key), b.get(key), f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} rows against {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = _diff(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{path}: {a!r} against {b!r}"


def check_generator(
    gf: Any, conn: psycopg.Connection, plans: list[Plan], generator: Generator, per_state: int
) -> dict[str, Any]:
    """Play ``per_state`` planned cases of each state through the real engine (and sweep) and through the
    generator into the same database; their rows must be equal. Removes them again."""
    from engine.cases import fire, report

    chosen: list[Plan] = []
    for state, _ in STATE_MIX:
        chosen += [p for p in plans if p.state == state][:per_state]
    chosen += [p for p in plans if p.client and p not in chosen][:1]
    chosen.sort(key=lambda p: p.reported_at)
    sessions = session_factory(gf.engine)
    real_ids, fake_ids = [], []
    for plan in chosen:
        trigger, actor, fields, at = plan.steps[0]
        with sessions.begin() as session:
            made = report(session, grid_id=plan.grid, actor_id=actor, fields=dict(fields), at=at, tz=gf.tz,
                          calendars=gf.calendars)  # fmt: skip
            case_id, code = made.case.id, made.case.code
        if plan.client:  # as ScopedCaseUseCases._mark_source marks a case Open311 reported
            with sessions.begin() as session:
                session.connection().exec_driver_sql(
                    "UPDATE cases SET source_channel = %(ch)s, source_client = %(cl)s WHERE id = %(id)s",
                    {"ch": OPEN311_CHANNEL, "cl": plan.client, "id": case_id},
                )
        for trigger, actor, fields, at in plan.steps[1:]:
            _real_sweeps(sessions, at)
            with sessions.begin() as session:
                fire(
                    session, code, trigger, actor_id=actor, fields=dict(fields), at=at, tz=gf.tz, calendars=gf.calendars
                )
        _real_sweeps(sessions, generator.now)
        real_ids.append(case_id)
    top = conn.execute("SELECT max(id) FROM cases").fetchone()[0]
    generator.ids.next_clock = conn.execute("SELECT max(id) FROM sla_clock").fetchone()[0] + 1
    generator.ids.next_timer = conn.execute("SELECT max(id) FROM sla_timer").fetchone()[0] + 1
    played = []
    with memoized_policies():
        for i, plan in enumerate(chosen):
            mine = Plan(plan.grid, plan.steps, code=f"BENCH-CHECK-{i:04d}", client=plan.client)
            played.append(generator.play(top + 1 + i, mine))
            fake_ids.append(top + 1 + i)
    copy_rows(conn, played)
    conn.commit()
    compared = {"cases": 0, "events": 0, "clocks": 0, "timers": 0}
    for real, fake in zip(real_ids, fake_ids, strict=True):
        a, b = _normalized(conn, real), _normalized(conn, fake)
        b["case"]["code"] = a["case"]["code"]
        problem = _diff(a, b)
        if problem:
            raise BenchError(f"the generator writes other rows than the engine for {a['case']['code']}: {problem}")
        for key in compared:
            compared[key] += 1 if key == "cases" else len(a[key])
    conn.execute("TRUNCATE cases, case_event, sla_clock, sla_timer, outbox, case_counter RESTART IDENTITY CASCADE")
    conn.commit()
    generator.ids.next_clock = generator.ids.next_timer = 1
    states = sorted({p.state for p in chosen})
    overdue = sum(1 for p in played if p.case.overdue)
    return {**compared, "states": states, "overdue": overdue}


# -- the servers ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A uvicorn process (and its workers) of ours on a loopback port; stopped with SIGTERM, then killed."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path, port: int):
        self.name, self.port, self.log = name, port, log
        self.base = f"http://127.0.0.1:{port}"
        self._log = log.open("w")
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # fmt: skip

    def wait(self, path: str) -> None:
        deadline = time.monotonic() + SERVER_READY_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                httpx.get(self.base + path, timeout=5)
                return
            except httpx.TransportError:
                time.sleep(0.2)
        raise BenchError(f"{self.name} did not answer within {SERVER_READY_S:g} s:\n{self.log.read_text()[-3000:]}")

    def cpu_s(self) -> float:
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0.0
        total = 0.0
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # our own child's group, by its id
                self.proc.wait(10)
        self._log.close()


def uvicorn_argv(factory: str, port: int, workers: int) -> list[str]:
    """``gridflow serve``'s uvicorn options (proxy headers from 127.0.0.1, no server header), without the
    per-request access log."""
    return [
        sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--log-level", "warning", "--no-access-log", "--proxy-headers",
        "--forwarded-allow-ips", "127.0.0.1", "--no-server-header",
    ]  # fmt: skip


def server_env(url: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
    env.update(
        GRIDFLOW_DATABASE_URL=url,
        GRIDFLOW_HOME=str(home),
        GRIDFLOW_CONFIG_FILE=str(home / "absent.yaml"),
        PYTHONPATH=str(ROOT),
    )
    return env


def open311_available() -> bool:
    return any((ROOT / "gridflow" / "api").glob("open311*.py"))


# -- the load ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: dict[str, Any] | None = None
    expect: Any = None  # what the check needs to know


@dataclass
class Run:
    latencies_s: list[float] = field(default_factory=list)
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    client_cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    done: list[Request] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.latencies_s) / self.seconds if self.seconds else 0.0


Check = Callable[[Request, httpx.Response], str | None]


async def _drive(base: str, warm: Iterable[Request], timed: Iterable[Request], clients: int, seconds: float, check: Check,
                 server: Server, rate: float | None = None) -> Run:  # fmt: skip
    """``clients`` keep-alive clients send the requests; flat out (each the next as soon as it is answered),
    or with ``rate`` paced: request k of client i is due at ``i / rate + k * clients / rate`` and its latency
    counts from when it was due, so a server that falls behind pays for the wait (no coordinated omission)."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    run = Run()
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=REQUEST_TIMEOUT_S) as client:

        async def one(req: Request, timed_run: bool, due: float | None = None) -> None:
            started = time.perf_counter()
            answer = await client.request(req.method, req.url, headers=req.headers, json=req.body)
            took = time.perf_counter() - (started if due is None else due)
            problem = check(req, answer)
            if problem:
                run.errors.append(problem)
            elif timed_run:
                run.latencies_s.append(took)
                run.done.append(req)

        async def worker(items: Iterator[Request], deadline: float, timed_run: bool) -> None:
            for req in items:  # shared by the clients; bounded by the list
                if time.perf_counter() >= deadline:
                    return
                await one(req, timed_run)

        async def paced(items: Iterator[Request], start: float, deadline: float, index: int, pace: float) -> None:
            due = start + index / pace
            for req in items:
                if due >= deadline:
                    return
                wait = due - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                await one(req, True, due)
                due += clients / pace

        shared = iter(warm)  # the warm-up: its requests, or half the time budget, whichever ends first
        warm_until = time.perf_counter() + seconds / 2
        await asyncio.gather(*(worker(shared, warm_until, False) for _ in range(clients)))
        shared = iter(timed)
        cpu, server_cpu = time.process_time(), server.cpu_s()
        started = time.perf_counter()
        deadline = started + seconds
        if rate:
            await asyncio.gather(*(paced(shared, started, deadline, i, rate) for i in range(clients)))
        else:
            await asyncio.gather(*(worker(shared, deadline, True) for _ in range(clients)))
        run.seconds = time.perf_counter() - started
        run.client_cpu_s, run.server_cpu_s = time.process_time() - cpu, server.cpu_s() - server_cpu
    return run


def drive(base: str, warm: Iterable[Request], timed: Iterable[Request], clients: int, seconds: float, check: Check,
          server: Server, rate: float | None = None) -> Run:  # fmt: skip
    return asyncio.run(_drive(base, warm, timed, clients, seconds, check, server, rate))


def percentile(values: list[float], q: float) -> float:
    """Nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def summary(runs: list[Run]) -> dict[str, Any]:
    lat = [x for r in runs for x in r.latencies_s]
    n = len(lat)
    seconds = sum(r.seconds for r in runs)
    return {
        "requests": n,
        "errors": sum(len(r.errors) for r in runs),
        "seconds": round(seconds, 2),
        "req_per_s": round(n / seconds, 1) if seconds else 0.0,
        "rounds_req_per_s": [round(r.rate, 1) for r in runs],
        "p50_ms": round(1000 * percentile(lat, 50), 2),
        "p95_ms": round(1000 * percentile(lat, 95), 2),
        "p99_ms": round(1000 * percentile(lat, 99), 2),
        "max_ms": round(1000 * max(lat), 2) if lat else None,
        "client_cpu_ms_per_req": round(1000 * sum(r.client_cpu_s for r in runs) / n, 3) if n else None,
        "server_cpu_ms_per_req": round(1000 * sum(r.server_cpu_s for r in runs) / n, 3) if n else None,
        "first_errors": [e for r in runs for e in r.errors][:5],
    }


# -- the parts -----------------------------------------------------------------------------------------------


@dataclass
class Setup:
    org: Org
    tokens: dict[str, str]  # person -> token
    reported: list[str]  # codes of reported cases, shuffled
    overdue: dict[str, int]  # village -> overdue cases
    village_grids: dict[str, frozenset[str]]
    counts: dict[str, Any]
    open311_key: str | None = None
    open311_note: str = ""
    open311_cases: int = 0


def _auth(setup: Setup, person: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {setup.tokens[person]}"}


def step_requests(setup: Setup, codes: list[str], side: str, salt: int) -> list[Request]:
    rng = random.Random(salt)
    centre = setup.org.centre
    out = []
    for i, code in enumerate(codes):
        person = centre[i % len(centre)]
        prio = rng.choices([p for p, _ in PRIORITY_MIX], [w for _, w in PRIORITY_MIX])[0]
        body = {"trigger": "classify", "fields": {"category": rng.choice(STEP_CATEGORIES), "priority": prio}}
        if side != "reference":
            out.append(Request("POST", f"/api/v1/cases/{code}/steps", _auth(setup, person), body, (code, body)))
        else:
            headers = {**_auth(setup, person), "X-Bench-Actor": person}
            out.append(Request("POST", f"/ref/cases/{code}/steps", headers, body, (code, body)))
    return out


STEP_CATEGORIES = ("water_supply", "power_supply", "road_traffic", "dispute", "sanitation", "other")


def check_step(req: Request, answer: httpx.Response) -> str | None:
    code, body = req.expect
    if answer.status_code != 200:
        return f"{req.url}: {answer.status_code} {answer.text[:200]}"
    data = answer.json()
    if (
        data.get("code") != code
        or data.get("status") != "classified"
        or data.get("priority") != body["fields"]["priority"]
    ):
        return f"{req.url}: answered {str(data)[:200]}"
    return None


def list_requests(setup: Setup, side: str) -> Iterator[Request]:
    """The villages in turn, each with its secretary's token (bounded by the caller)."""
    villages = setup.org.villages
    for i in range(MAX_REQUESTS):
        village = villages[i % len(villages)]
        if side != "reference":
            headers = _auth(setup, setup.org.secretary_of[village])
            url = f"/api/v1/cases?village={village}&overdue=true&limit=50"
        else:
            headers, url = {}, f"/ref/cases?village={village}&overdue=true&limit=50"
        yield Request("GET", url, headers, None, (village, min(50, setup.overdue[village])))


def list_checker(setup: Setup) -> Check:
    def check(req: Request, answer: httpx.Response) -> str | None:
        village, expect = req.expect
        if answer.status_code != 200:
            return f"{req.url}: {answer.status_code} {answer.text[:200]}"
        items = answer.json()["items"]
        grids = setup.village_grids[village]
        if len(items) != expect or any(item["grid"] not in grids for item in items):
            return f"{req.url}: {len(items)} items (expected {expect}) or outside {village}"
        return None

    return check


def open311_requests(setup: Setup) -> Iterator[Request]:
    """The client's requests of the last 90 days, newest first, a page of 50 (the common ``page_size``
    extension) as the REST list is measured; the spec's default page is up to 1,000."""
    url = f"/open311/v2/requests.json?api_key={setup.open311_key}&page_size={OPEN311_PAGE}"
    for _ in range(MAX_REQUESTS):
        yield Request("GET", url, {}, None, min(OPEN311_PAGE, setup.open311_cases))


def check_open311(req: Request, answer: httpx.Response) -> str | None:
    url = req.url.split("?")[0]
    if answer.status_code != 200:
        return f"{url}: {answer.status_code} {answer.text[:200]}"
    data = answer.json()
    if not isinstance(data, list) or len(data) != req.expect or (data and "service_request_id" not in data[0]):
        return (
            f"{url}: {len(data) if isinstance(data, list) else '?'} requests (expected {req.expect}): {str(data)[:200]}"
        )
    return None


# -- checks after the load ------------------------------------------------------------------------------------


@dataclass
class Checks:
    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, what: str, ok: bool, detail: str) -> None:
        self.items.append({"what": what, "pass": bool(ok), "detail": detail})


def stepped_rows(conn: psycopg.Connection, code: str) -> dict[str, Any]:
    """What a classify wrote on a case, without ids and times (they differ between two cases)."""
    case = conn.execute("SELECT id, status, version, category, priority FROM cases WHERE code = %s", (code,)).fetchone()
    event = conn.execute(
        "SELECT seq, actor_id, trigger, from_state, to_state, payload, workflow_version, received_at, entered_by"
        " FROM case_event WHERE case_id = %s ORDER BY seq DESC LIMIT 1",
        (case[0],),
    ).fetchone()
    clocks = conn.execute(
        "SELECT scope, state, calendar, limit_s, status, generation, outcome, stopped_by, policy,"
        " jsonb_array_length(history), history -> -1 ->> 'what', assignee_id, estimated,"
        " segment_start IS NULL, stopped_at IS NULL, due_at IS NULL FROM sla_clock WHERE case_id = %s ORDER BY id",
        (case[0],),
    ).fetchall()
    timers = conn.execute(
        "SELECT c.state, t.kind, t.level, t.generation, t.status, t.attempts, t.note IS NULL,"
        " t.dedupe_key = t.clock_id || ':' || t.generation || ':' || t.kind || ':' || t.level"
        " FROM sla_timer t JOIN sla_clock c ON c.id = t.clock_id WHERE t.case_id = %s ORDER BY t.id",
        (case[0],),
    ).fetchall()
    conn.commit()
    return {"case": case[1:], "event": event[1:], "clocks": clocks, "timers": timers}


# -- profiling one worker ----------------------------------------------------------------------------------------


PROFILED_SERVER = """
import cProfile, signal, sys, threading
profiles = []
armed = [False]
lock = threading.Lock()
def hook(frame, event, arg):  # in every thread started from now on; profiles it once armed
    if not armed[0]:
        return
    p = cProfile.Profile()
    with lock:
        profiles.append(p)
    p.enable()
threading.setprofile(hook)
main = cProfile.Profile()
def arm(*_):  # SIGUSR1, after the warm-up
    armed[0] = True
    profiles.append(main)
    main.enable()
signal.signal(signal.SIGUSR1, arm)
signal.signal(signal.SIGTERM, lambda *_: None)  # uvicorn raises the signal again when it has stopped: let it pass
import uvicorn
uvicorn.run("gridflow.api.asgi:create", factory=True, host="127.0.0.1", port=int(sys.argv[1]), workers=1,
            log_level="warning", access_log=False, proxy_headers=True, forwarded_allow_ips="127.0.0.1",
            server_header=False)
main.disable()
import pstats
stats = None
for p in profiles:
    try:
        p.create_stats()
    except Exception:
        continue
    if p.stats:
        stats = pstats.Stats(p) if stats is None else (stats.add(p) or stats)
if stats is not None:
    stats.dump_stats(sys.argv[2])
"""


def profile_api(setup: Setup, env: dict[str, str], tmp: Path, codes: list[str], clients: int, seconds: float,
                say: Callable[[str], None]) -> dict[str, str]:  # fmt: skip
    """One uvicorn worker of the API under cProfile on every thread; a part at a time; the top functions."""
    out: dict[str, str] = {}
    parts = {
        "step": (step_requests(setup, codes, "api", 7), check_step),
        "list": (list_requests(setup, "api"), list_checker(setup)),
    }
    for part, (requests, check) in parts.items():
        port = free_port()
        dump = tmp / f"profile-{part}.pstats"
        server = Server(f"profiled API ({part})", [sys.executable, "-c", PROFILED_SERVER, str(port), str(dump)], env,
                        tmp / f"profile-{part}.log", port)  # fmt: skip
        try:
            server.wait("/api/v1/openapi.json")
            items = iter(requests)
            drive(server.base, list(itertools.islice(items, 4 * clients)), [], clients, seconds, check, server)
            server.proc.send_signal(signal.SIGUSR1)  # profile from now on, warm
            time.sleep(0.2)
            run = drive(server.base, [], items, clients, seconds, check, server)
        finally:
            server.stop()
        say(f"profile {part}: {len(run.latencies_s)} requests in {run.seconds:.1f} s under cProfile")
        if not dump.exists():
            out[part] = f"no profile written:\n{server.log.read_text()[-2000:]}"
            continue
        text = io.StringIO()
        stats = pstats.Stats(str(dump), stream=text)
        stats.sort_stats("cumulative").print_stats(r"/(gridflow|engine)/", 40)
        text.write("\n--- by own time (every thread; idle waits included) ---\n")
        stats.sort_stats("tottime").print_stats(30)
        out[part] = text.getvalue()
    return out


# -- the run ---------------------------------------------------------------------------------------------------


def prepare(url: str, home: Path, args: argparse.Namespace, checks: Checks, say: Callable[[str], None]) -> Setup:
    settings = Settings(home=home, database_url=url, notices_file=home / "notices.log")
    from gridflow.app import Gridflow

    gf = Gridflow(settings)
    try:
        started = time.perf_counter()
        gf.init()
        conninfo = psycopg_conninfo_from(url)
        with psycopg.connect(conninfo) as conn:
            org = read_org(conn)
            now = datetime.now(UTC).replace(microsecond=0)
            wf = conn.execute(
                "SELECT id FROM workflow_definition WHERE name = 'grid_case' ORDER BY version DESC"
            ).fetchone()
            conn.commit()
            with gf.transaction(write=False) as session:
                flow = workflow_repo.compiled(session, wf[0])
            categories = sorted(flow.definition.fields["category"].values)
            client, open311_key, open311_note = open311_client(gf, org)
            plans = plan_cases(args.cases, org, now, categories, gf.tz, client=client)
            generator = Generator(flow, gf.calendars, gf.tz, now, Ids())
            t0 = time.perf_counter()
            compared = check_generator(gf, conn, plans, generator, 1 if args.smoke else 2)
            checks.add(
                "the generator writes the engine's rows",
                True,
                f"{compared['cases']} cases ({', '.join(compared['states'])}; {compared['overdue']} overdue) played "
                f"through the real engine and sweep and through the generator: {compared['events']} events, "
                f"{compared['clocks']} clocks, {compared['timers']} timers, all equal",
            )
            say(f"generator checked against the engine in {time.perf_counter() - t0:.1f} s")
            t0 = time.perf_counter()
            conn.commit()
            loaders = max(1, min(4, os.cpu_count() or 1)) if args.cases >= 4 * LOAD_CHUNK else 1
            say(f"loading with {loaders} process(es)")
            totals, play_s = load_cases(conninfo, plans, generator, loaders)
            load_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            finish_load(conn, plans, gf.tz)
            vacuum_s = time.perf_counter() - t0
            say(
                f"{args.cases:,} cases loaded in {load_s:.1f} s (playing {play_s:.1f} s), VACUUM ANALYZE {vacuum_s:.1f} s"
            )
            people = sorted(set(org.centre) | set(org.secretary_of.values()))
            tokens = {p: gf.create_token(p, "bench api")["token"] for p in people}
            reported = [row[0] for row in conn.execute("SELECT code FROM cases WHERE status = 'reported' ORDER BY id")]
            open311_cases = conn.execute(
                "SELECT count(*) FROM cases WHERE source_client = %s AND reported_at >= %s",
                (client[0] if client else None, now - timedelta(days=90)),
            ).fetchone()[0]
            random.Random(SEED).shuffle(reported)
            overdue = dict(
                conn.execute(
                    "SELECT p.village_id, count(c.id) FROM place p LEFT JOIN cases c ON c.grid_id = p.id AND c.overdue"
                    " WHERE p.kind = 'grid' AND p.village_id IS NOT NULL GROUP BY p.village_id"
                ).fetchall()
            )
            village_grids: dict[str, set[str]] = {}
            for grid, village in org.village_of.items():
                if village:
                    village_grids.setdefault(village, set()).add(grid)
            states = dict(conn.execute("SELECT status, count(*) FROM cases GROUP BY status ORDER BY 2 DESC").fetchall())
            counts = {
                **totals,
                "states": states,
                "overdue": conn.execute("SELECT count(*) FROM cases WHERE overdue").fetchone()[0],
                "overdue_open": conn.execute(
                    "SELECT count(*) FROM cases WHERE overdue AND closed_at IS NULL"
                ).fetchone()[0],
                "running_clocks": conn.execute("SELECT count(*) FROM sla_clock WHERE status = 'running'").fetchone()[0],
                "breaching_24h": conn.execute(
                    "SELECT count(DISTINCT case_id) FROM sla_clock WHERE status = 'running' AND breached_at IS NULL"
                    " AND due_at <= %s",
                    (now + timedelta(hours=24),),
                ).fetchone()[0],
                "overdue_by_village": overdue,
                "open311_cases_90d": open311_cases,
                "now": now.isoformat(),
                "setup_s": round(time.perf_counter() - started, 1),
                "load_s": round(load_s, 1),
                "play_s": round(play_s, 1),
                "vacuum_s": round(vacuum_s, 1),
            }
            conn.commit()
        grids = {v: frozenset(g) for v, g in village_grids.items()}
        return Setup(org, tokens, reported, overdue, grids, counts, open311_key, open311_note, open311_cases)
    finally:
        gf.close()


def open311_client(gf: Any, org: Org) -> tuple[tuple[str, str] | None, str | None, str]:
    """The county's 12345 platform as an Open311 client, if this gridflow has the Open311 door yet."""
    if not open311_available() or not hasattr(gf, "create_client"):
        return None, None, "skipped: gridflow/api/open311*.py is not there yet"
    client_id, name, person = OPEN311_CLIENT
    if person not in org.centre:
        person = org.centre[0]
    try:
        made = gf.create_client(client_id, name, person)
    except Exception as exc:  # the door is being built by others: say why and go on without it
        return None, None, f"skipped: creating its client failed: {type(exc).__name__}: {exc}"
    return (client_id, person), made["api_key"], "measured"


def psycopg_conninfo_from(url: str) -> str:
    from sqlalchemy.engine import make_url

    return psycopg_conninfo(make_url(url))


def benchmark(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    started = time.perf_counter()
    admin = admin_url(args.admin_url)
    checks = Checks()
    result: dict[str, Any] = {"benchmark": "the HTTP API on PostgreSQL against plain FastAPI + psycopg"}
    with ExitStack() as stack:
        url_obj = stack.enter_context(throwaway_database(admin))
        url = url_obj.render_as_string(hide_password=False)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gridflow-bench-api-")))
        say(f"database {url_obj.database}: init and {args.cases:,} cases")
        setup = prepare(url, tmp, args, checks, say)
        result["data"] = setup.counts
        env = server_env(url, tmp)
        env_ref = {**env, "GRIDFLOW_BENCH_REF_DSN": psycopg_conninfo(url_obj)}
        api_port, ref_port = free_port(), free_port()
        api = Server("the API", uvicorn_argv("gridflow.api.asgi:create", api_port, args.workers), env,
                     tmp / "api.log", api_port)  # fmt: skip
        stack.callback(api.stop)
        ref = Server("the reference", uvicorn_argv("bench.api_reference:create", ref_port, args.workers), env_ref,
                     tmp / "ref.log", ref_port)  # fmt: skip
        stack.callback(ref.stop)
        api.wait("/api/v1/openapi.json")
        ref.wait("/ref/health")
        say(f"servers up: API {api.base} and reference {ref.base}, {args.workers} worker(s) each")
        servers = {"api": api, "reference": ref}
        parts = ["step", "list"] + (["open311"] if setup.open311_key else [])
        result["open311"] = setup.open311_note
        warm = 0 if args.smoke else WARM_REQUESTS * args.clients
        cap = SMOKE_REQUESTS if args.smoke else MAX_REQUESTS
        # the reported cases: half for each side, a share per round (its warm-up included)
        kept = len(setup.reported) // 5 if args.profile else 0  # for the profiled worker, afterwards
        pool, profile_codes = setup.reported[kept:], setup.reported[:kept]
        held = len(pool) // 6 if args.paced else 0  # for the paced round, afterwards
        pool, paced_codes = pool[held:], pool[:held]
        names = ["api", "reference"]
        halves = {side: pool[i :: len(names)] for i, side in enumerate(names)}
        per_round = {side: len(codes) // args.rounds for side, codes in halves.items()}
        if min(per_round.values()) <= warm:
            raise BenchError(f"too few reported cases for the step part: {per_round} a round; load more (--cases)")
        runs: dict[str, dict[str, list[Run]]] = {p: {side: [] for side in names} for p in parts}
        checkers: dict[str, Check] = {"step": check_step, "list": list_checker(setup), "open311": check_open311}

        def one_run(part: str, side: str, codes: list[str], seed: int, rate: float | None, label: str) -> Run:
            if part == "step":
                requests: Iterator[Request] = iter(step_requests(setup, codes, side, seed))
            elif part == "list":
                requests = list_requests(setup, side)
            else:
                requests = open311_requests(setup)
            warm_up = list(itertools.islice(requests, warm))
            run = drive(servers[side].base, warm_up, itertools.islice(requests, cap), args.clients, args.seconds,
                        checkers[part], servers[side], rate)  # fmt: skip
            say(
                f"{label} {part:7} {side:9}: {len(run.latencies_s):6,} requests in "
                f"{run.seconds:5.1f} s = {run.rate:7.1f}/s, p99 {1000 * percentile(run.latencies_s, 99):6.1f} ms"
                + (f", {len(run.errors)} WRONG: {run.errors[0]}" if run.errors else "")
            )
            return run

        for r in range(args.rounds):
            for part in parts:
                sides = [n for n in names if n != "reference"] if part == "open311" else names
                for side in sides[r % len(sides) :] + sides[: r % len(sides)]:
                    share = halves[side][r * per_round[side] : (r + 1) * per_round[side]]
                    runs[part][side].append(one_run(part, side, share, SEED + r, None, f"round {r + 1}/{args.rounds}"))
        if args.paced:  # one more round per part and side at a fixed rate: latency below capacity
            for part in parts:
                sides = ["api"] if part == "open311" else names
                for i, side in enumerate(sides):
                    run = one_run(
                        part, side, paced_codes[i :: len(sides)], SEED + 99, args.paced, f"paced {args.paced:g}/s"
                    )
                    runs[part].setdefault(f"{side}_paced", []).append(run)
        parts_out: dict[str, Any] = {}
        for part in parts:
            parts_out[part] = {side: summary(rs) for side, rs in runs[part].items() if rs}
        result["parts"] = parts_out
        after_checks(url_obj, setup, runs, parts_out, checks, api, ref)
        if args.profile:
            result["profile"] = profile_api(setup, env, tmp, profile_codes, args.clients, min(args.seconds, 10.0), say)
        with psycopg.connect(psycopg_conninfo(admin)) as conn:
            result["machine"] = machine(conn)
    result["machine"]["load"] = os.getloadavg()
    result["sizes"] = {k: getattr(args, k) for k in DEFAULTS}
    result["smoke"] = args.smoke
    result["paced"] = args.paced
    result["targets"] = verdicts(result["parts"], args.paced)
    result["checks"] = checks.items
    result["seconds_total"] = round(time.perf_counter() - started, 1)
    return result


def after_checks(url_obj: Any, setup: Setup, runs: dict[str, dict[str, list[Run]]], parts: dict, checks: Checks,
                 api: Server, ref: Server) -> None:  # fmt: skip
    for part, sides in parts.items():
        for side, s in sides.items():
            checks.add(
                f"{part} on the {side}: every answer right",
                s["errors"] == 0 and s["requests"] > 0,
                f"{s['requests']:,} timed answers checked, {s['errors']} wrong"
                + (f": {s['first_errors'][0]}" if s["errors"] else ""),
            )
    with psycopg.connect(psycopg_conninfo(url_obj)) as conn:
        stepped = {side: [req.expect[0] for run in rs for req in run.done] for side, rs in runs["step"].items()}
        for side, codes in stepped.items():
            found = conn.execute(
                "SELECT count(*) FROM cases c JOIN case_event e ON e.case_id = c.id AND e.seq = c.version"
                " AND e.trigger = 'classify' WHERE c.code = ANY(%s) AND c.status = 'classified'"
                " AND EXISTS (SELECT 1 FROM sla_clock k WHERE k.case_id = c.id AND k.state = 'classified'"
                " AND k.status = 'running')",
                (codes,),
            ).fetchone()[0]
            conn.commit()
            checks.add(f"step on the {side}: every case stepped once, with its event and new clock", found == len(codes),
                       f"{found:,} of {len(codes):,} stepped cases classified with a classify event and a running clock")  # fmt: skip
        if stepped["api"] and stepped["reference"]:
            a, b = stepped_rows(conn, stepped["api"][0]), stepped_rows(conn, stepped["reference"][0])
            same_shape = _diff(_masked(a), _masked(b))
            checks.add(
                "step: the API and the reference write the same rows",
                same_shape is None,
                f"{stepped['api'][0]} (API) against {stepped['reference'][0]} (reference): case, event, clocks, timers"
                + (f" differ at {same_shape}" if same_shape else " alike (ids, times and the fields chosen aside)"),
            )
    mismatches = []
    with httpx.Client(timeout=30) as client:
        for village in setup.org.villages:
            token = setup.tokens[setup.org.secretary_of[village]]
            one = client.get(f"{api.base}/api/v1/cases?village={village}&overdue=true&limit=50",
                             headers={"Authorization": f"Bearer {token}"}).json()["items"]  # fmt: skip
            two = client.get(f"{ref.base}/ref/cases?village={village}&overdue=true&limit=50").json()["items"]
            if [c["code"] for c in one] != [c["code"] for c in two]:
                mismatches.append(village)
    checks.add("list: the API and the reference answer the same cases in the same order", not mismatches,
               f"first pages of {len(setup.org.villages)} villages compared" + (f"; differ: {mismatches}" if mismatches else ""))  # fmt: skip


def _masked(rows: dict[str, Any]) -> dict[str, Any]:
    """A stepped case's rows without what differs between two cases by design: the fields chosen
    (category, priority: they set the new clock's limit and policy), the actor, and counts that
    depend on the case's own past (version, the case clock's history)."""
    case = rows["case"]
    event = rows["event"]
    return {
        "case": (case[0],),
        "event": (event[1], event[2], event[3], sorted(event[4]), *event[5:]),
        "clocks": [(c[0], c[1], c[2], c[4], c[5], c[7], c[10], c[11], c[13], c[14], c[15]) for c in rows["clocks"]],
        "new_timers": [t for t in rows["timers"] if t[0] == "classified"],
        "left_pending": [t for t in rows["timers"] if t[0] == "reported" and t[4] == "pending"],
    }


def verdicts(parts: dict[str, Any], paced: float | None = None) -> list[dict[str, Any]]:
    out = []
    step = parts.get("step", {})
    if step.get("api") and step.get("reference"):
        ratio = step["api"]["req_per_s"] / step["reference"]["req_per_s"] if step["reference"]["req_per_s"] else 0.0
        step["ratio_throughput"] = round(ratio, 3)
        step["ratio_p99"] = round(step["api"]["p99_ms"] / step["reference"]["p99_ms"], 2)
        out.append({"target": "step throughput ≥ 0.5 × reference", "value": round(ratio, 3), "limit": TARGETS["step_ratio"],
                    "met": ratio >= TARGETS["step_ratio"]})  # fmt: skip
        out.append({"target": "step p99 ≤ 100 ms", "value": step["api"]["p99_ms"], "limit": TARGETS["step_p99_ms"],
                    "met": step["api"]["p99_ms"] <= TARGETS["step_p99_ms"]})  # fmt: skip
    lst = parts.get("list", {})
    if lst.get("api"):
        if lst.get("reference"):
            lst["ratio_throughput"] = round(lst["api"]["req_per_s"] / lst["reference"]["req_per_s"], 3)
            lst["ratio_p99"] = round(lst["api"]["p99_ms"] / lst["reference"]["p99_ms"], 2)
        out.append({"target": "list p99 ≤ 50 ms", "value": lst["api"]["p99_ms"], "limit": TARGETS["list_p99_ms"],
                    "met": lst["api"]["p99_ms"] <= TARGETS["list_p99_ms"]})  # fmt: skip
    o311 = parts.get("open311", {})
    if o311.get("api"):
        out.append({"target": "Open311 GET p99 ≤ 50 ms", "value": o311["api"]["p99_ms"], "limit": TARGETS["open311_p99_ms"],
                    "met": o311["api"]["p99_ms"] <= TARGETS["open311_p99_ms"]})  # fmt: skip
    for part, key, name in (("step", "step_p99_ms", "step"), ("list", "list_p99_ms", "list"),
                            ("open311", "open311_p99_ms", "Open311 GET")):  # fmt: skip
        x = parts.get(part, {}).get("api_paced")
        if x:
            out.append({"target": f"{name} p99 ≤ {TARGETS[key]:g} ms, paced at {paced:g} req/s", "value": x["p99_ms"],
                        "limit": TARGETS[key], "met": x["p99_ms"] <= TARGETS[key]})  # fmt: skip
    return out


# -- report --------------------------------------------------------------------------------------------------------

ROW_NAMES = {
    ("step", "api"): "step: POST /api/v1/cases/{code}/steps",
    ("step", "reference"): "step: reference (plain psycopg)",
    ("list", "api"): "list: GET /api/v1/cases?village&overdue",
    ("list", "reference"): "list: reference (plain SELECT)",
    ("open311", "api"): "Open311: GET /open311/v2/requests.json",
    ("step", "api_paced"): "step: API, paced",
    ("step", "reference_paced"): "step: reference, paced",
    ("list", "api_paced"): "list: API, paced",
    ("list", "reference_paced"): "list: reference, paced",
    ("open311", "api_paced"): "Open311: API, paced",
}


def print_report(res: dict[str, Any]) -> None:
    console = Console(width=max(Console().width, 140))
    m = res["machine"]
    console.print(f"[bold]gridflow bench: {res['benchmark']}[/bold]")
    console.print(
        f"machine  {m['platform']}, {m['cpus']} CPUs ({m['cpu_model']}), Python {m['python']}, PostgreSQL "
        f"{m['postgresql']}; load average {', '.join(f'{x:.2f}' for x in m['load'])}; {m['date']}",
        highlight=False,
    )
    d = res["data"]
    console.print(
        f"data     {d['cases']:,} cases ({', '.join(f'{k} {v:,}' for k, v in d['states'].items())}); {d['events']:,} "
        f"events, {d['clocks']:,} clocks ({d['running_clocks']:,} running), {d['timers']:,} timers; overdue "
        f"{d['overdue']:,} ({d['overdue_open']:,} open), breaching within 24 h {d['breaching_24h']:,}; loaded in "
        f"{d['load_s']:.1f} s",
        highlight=False,
    )
    s = res["sizes"]
    table = Table(
        title=f"{s['clients']} concurrent clients, {s['workers']} uvicorn worker(s) per server, {s['rounds']} round(s) "
        f"of {s['seconds']:g} s per side" + (" (smoke: a few requests)" if res["smoke"] else "")
    )
    for col in ("side", "req/s", "p50 ms", "p95 ms", "p99 ms", "requests", "wrong", "client CPU ms/req",
                "server CPU ms/req", "rounds req/s"):  # fmt: skip
        table.add_column(col, justify="left" if col == "side" else "right")
    for part, sides in res["parts"].items():
        for side in ("api", "reference", "api_paced", "reference_paced"):
            x = sides.get(side)
            if not isinstance(x, dict):
                continue
            table.add_row(
                ROW_NAMES[(part, side)], f"{x['req_per_s']:,.1f}", f"{x['p50_ms']:.1f}", f"{x['p95_ms']:.1f}",
                f"{x['p99_ms']:.1f}", f"{x['requests']:,}", str(x["errors"]), f"{x['client_cpu_ms_per_req']}",
                f"{x['server_cpu_ms_per_req']}", ", ".join(f"{v:,.0f}" for v in x["rounds_req_per_s"]),
            )  # fmt: skip
    console.print(table)
    for part in ("step", "list"):
        p = res["parts"].get(part, {})
        if "ratio_throughput" in p:
            console.print(
                f"  {part}: API / reference throughput = [bold]{p['ratio_throughput']:.3f}[/bold], p99 "
                f"API / reference = {p['ratio_p99']:.2f}",
                highlight=False,
            )
    console.print(f"  Open311: {res['open311']}", highlight=False)
    for t in res["targets"]:
        mark = "[green]met[/green]" if t["met"] else "[red]MISSED[/red]"
        console.print(f"  target {t['target']}: {t['value']} — {mark}", highlight=False)
    for c in res["checks"]:
        mark = "[green]PASS[/green]" if c["pass"] else "[red]FAIL[/red]"
        console.print(f"{mark} {c['what']} — {c['detail']}", highlight=False)
    for part, text in res.get("profile", {}).items():
        console.print(f"[bold]profile of one API worker, {part}[/bold]")
        console.print(text, highlight=False, markup=False)
    console.print(f"total run time {res['seconds_total']:.0f} s", highlight=False)


# -- main -----------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.split("\n\n")[0])
    for key, default in DEFAULTS.items():
        lo, hi = LIMITS[key]
        kind = float if isinstance(default, float) and key == "seconds" else int
        p.add_argument(
            f"--{key}", type=kind, default=None, help=f"{HELPS[key]} (default {default:g}, {lo:g} to {hi:g})"
        )
    p.add_argument("--smoke", action="store_true", help="tiny: everything answers correctly (the test suite)")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--profile", action="store_true", help="also profile one API worker (cProfile) per part")
    p.add_argument(
        "--paced",
        type=float,
        default=None,
        metavar="R",
        help="also one round per part at R requests/s in all (latency below capacity; counted from when due)",
    )
    p.add_argument("--admin-url", help="admin URL of the PostgreSQL server (default: local postgres)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    p.add_argument("--json-out", type=Path, help="also write the JSON object to this file")
    args = p.parse_args(argv)
    base = {**DEFAULTS, **(SMOKE if args.smoke else {})}
    for key in DEFAULTS:
        if getattr(args, key) is None:
            setattr(args, key, type(base[key])(base[key]) if key == "seconds" else int(base[key]))
        lo, hi = LIMITS[key]
        if not lo <= getattr(args, key) <= hi:
            p.error(f"--{key} must be between {lo:g} and {hi:g}")
    if args.paced is not None and not 1 <= args.paced <= 10_000:
        p.error("--paced must be between 1 and 10000 requests/s")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    err = Console(stderr=True)

    def say(text: str) -> None:
        err.print(f"[dim]{time.strftime('%H:%M:%S')} {text}[/dim]", highlight=False)

    try:
        with sigterm_as_interrupt():  # a kill cleans up like Ctrl-C does, also when Python swallowed it
            res = benchmark(args, say)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped, database dropped", file=sys.stderr)
        return 130
    if args.json_out:
        args.json_out.write_text(json.dumps(res, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    if args.json:
        print(json.dumps(res, ensure_ascii=False, indent=2, default=str))
    else:
        print_report(res)
    failed = [c["what"] for c in res["checks"] if not c["pass"]]
    if failed:
        print("bench: failed: " + "; ".join(failed), file=sys.stderr)
        return 1
    missed = [t["target"] for t in res["targets"] if not t["met"]]
    if args.check and not args.smoke and missed:
        print("bench: targets missed: " + "; ".join(missed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
