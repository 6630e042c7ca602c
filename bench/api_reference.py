"""The reference side of ``bench/api.py``: the same two endpoints as plain FastAPI on plain psycopg.

Served by its own uvicorn, as the API is (``uvicorn --factory bench.api_reference:create``), with the
connection string in ``GRIDFLOW_BENCH_REF_DSN``. It is the floor of what the API's two calls can cost
on this schema through the same HTTP stack (uvicorn, FastAPI, JSON): no sign-in, no scope or rule
check, no ORM, one transaction per request.

- ``POST /ref/cases/{code}/steps`` takes ``classify`` on a ``reported`` case and writes the rows the
  engine writes for it: the case (status, category, priority, version + 1, updated_at) and its
  ``case_event`` in one statement (a CTE, as the engine does on PostgreSQL); the case's open clocks
  read; the ``reported`` clock stopped (business time consumed, outcome, history entry); its pending
  timers cancelled; the ``classified`` clock started (deadline on the business calendar) and its
  timers laid. Six statements; the actor is the ``X-Bench-Actor`` header.
- ``GET /ref/cases?village=…&overdue=true&limit=50``: one village's overdue cases, newest first, as
  one plain SELECT (keyset order ``reported_at DESC, id DESC``), and the next page's cursor.
"""

from __future__ import annotations

import base64
import json
import os
import queue
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse
from psycopg.types.json import Jsonb

DSN_ENV = "GRIDFLOW_BENCH_REF_DSN"
ROOT = Path(__file__).resolve().parent.parent
TZ_NAME = "Asia/Shanghai"

ANSWER = (
    "id, code, workflow_name, workflow_version, status, version, title, description, category, priority, "
    "grid_id, reporter_id, assignee_id, satisfaction, rework_count, extension_count, pending_extension, "
    "reported_at, updated_at, closed_at, source_channel, source_client"
)
STEP = f"""
WITH moved AS (
    UPDATE cases SET status = 'classified', version = version + 1, category = %(category)s,
           priority = %(priority)s, updated_at = %(at)s
     WHERE code = %(code)s AND status = 'reported'
    RETURNING {ANSWER}
), event AS (
    INSERT INTO case_event (case_id, seq, at, actor_id, trigger, from_state, to_state, payload, workflow_version)
    SELECT id, version, %(at)s, %(actor)s, 'classify', 'reported', 'classified', %(payload)s, workflow_version
      FROM moved
)
SELECT {ANSWER} FROM moved
"""
OPEN_CLOCKS = (
    "SELECT id, scope, state, calendar, limit_s, consumed_s, status, segment_start, due_at, estimated, breached_at"
    " FROM sla_clock WHERE case_id = %s AND status <> 'stopped' ORDER BY id"
)
STOP_CLOCK = (
    "UPDATE sla_clock SET status = 'stopped', stopped_at = %(at)s, segment_start = NULL, consumed_s = %(consumed)s,"
    " breached_at = %(breached)s, outcome = %(outcome)s, stopped_by = 'classify', history = history || %(entry)s"
    " WHERE id = %(id)s"
)
CANCEL_TIMERS = "UPDATE sla_timer SET status = 'cancelled', note = %s WHERE clock_id = %s AND status = 'pending'"
START_CLOCK = (
    "INSERT INTO sla_clock (case_id, scope, state, calendar, limit_s, consumed_s, status, generation, segment_start,"
    " started_at, stopped_at, due_at, estimated, breached_at, outcome, policy, history, assignee_id, stopped_by)"
    " VALUES (%(case)s, 'state', 'classified', %(calendar)s, %(limit)s, 0, 'running', 1, %(begin)s, %(at)s, NULL,"
    " %(due)s, %(estimated)s, NULL, NULL, %(policy)s, %(history)s, %(assignee)s, NULL) RETURNING id"
)
LAY_TIMER = (
    "INSERT INTO sla_timer (clock_id, case_id, kind, level, generation, fire_at, status, attempts, dedupe_key)"
    " VALUES (%s, %s, %s, %s, 1, %s, 'pending', 0, %s)"
)
LIST = (
    f"SELECT {ANSWER} FROM cases"
    " WHERE grid_id IN (SELECT id FROM place WHERE village_id = %(village)s AND kind = 'grid') AND overdue"
    " ORDER BY reported_at DESC, id DESC LIMIT %(limit)s"
)
LIST_AFTER = (
    f"SELECT {ANSWER} FROM cases"
    " WHERE grid_id IN (SELECT id FROM place WHERE village_id = %(village)s AND kind = 'grid') AND overdue"
    " AND (reported_at, id) < (%(key)s, %(last)s) ORDER BY reported_at DESC, id DESC LIMIT %(limit)s"
)


class Pool:
    """Idle connections, last in first out; a request takes one or opens one (the threadpool bounds them). At
    most ``keep`` stay open when idle, as SQLAlchemy's pool (size 5) keeps them for the API."""

    def __init__(self, dsn: str, keep: int = 5):
        self.dsn, self.keep = dsn, keep
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()

    def _give_back(self, conn: psycopg.Connection) -> None:
        if self._idle.qsize() >= self.keep:
            conn.close()
        else:
            self._idle.put(conn)

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = psycopg.connect(self.dsn, autocommit=True)
        try:
            with conn.transaction():
                yield conn
        except BaseException:
            if conn.broken:
                conn.close()
                raise
            self._give_back(conn)
            raise
        self._give_back(conn)


class Rules:
    """The ``classified`` state's time limit by priority, resolved once (the engine's own resolution)."""

    def __init__(self) -> None:
        from zoneinfo import ZoneInfo

        from engine.calendar import load_calendars
        from engine.definitions.loader import load_workflow_file

        self.tz = ZoneInfo(TZ_NAME)
        self.calendars = load_calendars(ROOT / "config" / "calendars.yaml")
        self.definition = load_workflow_file(ROOT / "workflows" / "grid_case.yaml", self.calendars).definition
        self._policies: dict[tuple[str | None, str | None, int], Any] = {}

    def policy(self, category: str | None, priority: str | None, at: datetime) -> Any:
        from engine.sla import CaseFacts, resolve

        month = at.astimezone(self.tz).month
        key = (category, priority, month)
        if key not in self._policies:
            spec = self.definition.states["classified"].sla
            self._policies[key] = resolve(
                self.definition, spec, CaseFacts(0, category, priority), self.calendars, month
            )
        return self._policies[key]


def _iso(value: Any) -> Any:
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value


def _case(row: tuple, names: list[str]) -> dict[str, Any]:
    data = {name: _iso(value) for name, value in zip(names, row, strict=True)}
    data["grid"], data["reporter"], data["assignee"] = (
        data.pop("grid_id"),
        data.pop("reporter_id"),
        data.pop("assignee_id"),
    )
    data["workflow"] = data.pop("workflow_name")
    data["source"] = data.pop("source_client") or data.pop("source_channel")
    data.pop("source_channel", None)
    return data


NAMES = [n.strip() for n in ANSWER.split(",")]


def _entry(at: datetime, what: str, why: str, consumed: int, limit: int, due: Any, estimated: bool) -> dict[str, Any]:
    return {
        "at": at.isoformat(),
        "what": what,
        "why": why,
        "consumed_s": consumed,
        "limit_s": limit,
        "due_at": due.isoformat() if due else None,
        "estimated": estimated,
    }


def create() -> FastAPI:
    app = FastAPI(title="gridflow bench reference", docs_url=None, redoc_url=None, openapi_url=None)
    pool = Pool(os.environ[DSN_ENV])
    rules = Rules()

    @app.get("/ref/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/ref/cases/{code}/steps")
    def step(code: str, body: dict[str, Any], x_bench_actor: str = Header()) -> JSONResponse:
        if body.get("trigger") != "classify":
            return JSONResponse({"detail": "the reference takes classify only"}, status_code=422)
        fields = body.get("fields") or {}
        category, priority = fields.get("category"), fields.get("priority")
        at = datetime.now(UTC)
        payload = {"category": category, "priority": priority}
        why = f"classify (立案分类) by {x_bench_actor}"
        with pool.transaction() as conn:
            row = conn.execute(
                STEP,
                {"category": category, "priority": priority, "at": at, "code": code, "actor": x_bench_actor,
                 "payload": Jsonb(payload)},
            ).fetchone()  # fmt: skip
            if row is None:
                return JSONResponse({"detail": f"no reported case {code}"}, status_code=409)
            case = _case(row, NAMES)
            for clock in conn.execute(OPEN_CLOCKS, (case["id"],)).fetchall():
                cid, scope, state, calendar_name, limit, consumed, status, begin, due, estimated, breached = clock
                if scope != "state" or status != "running":
                    continue
                calendar = rules.calendars[calendar_name]
                if breached is None and due is not None and due < at:
                    breached = due
                if begin is not None and at > begin:
                    consumed += int(calendar.between(begin, at).total_seconds())
                outcome = "breached" if breached is not None or consumed > limit else "met"
                entry = _entry(at, "stopped", f"{why}; {outcome}", consumed, limit, due, estimated)
                conn.execute(
                    STOP_CLOCK,
                    {"at": at, "consumed": consumed, "breached": breached, "outcome": outcome,
                     "entry": Jsonb([entry]), "id": cid},
                )  # fmt: skip
                conn.execute(CANCEL_TIMERS, (f"stopped: {why}", cid))
            policy = rules.policy(category, priority, at)
            calendar = rules.calendars[policy.calendar]
            begin = calendar.next_working_instant(at)
            deadline = calendar.add(begin, timedelta(seconds=policy.limit_s))
            note = f"{why}; limit {policy.limit_text} on the {policy.calendar} calendar"
            if begin != at:
                note += f"; outside working time, counting from {begin.astimezone(rules.tz):%Y-%m-%d %H:%M}"
            started = _entry(at, "started", note, 0, policy.limit_s, deadline.at, deadline.estimated)
            new_id = conn.execute(
                START_CLOCK,
                {"case": case["id"], "calendar": policy.calendar, "limit": policy.limit_s, "begin": begin, "at": at,
                 "due": deadline.at, "estimated": deadline.estimated, "policy": Jsonb(policy.to_json()),
                 "history": Jsonb([started]), "assignee": case["assignee"]},
            ).fetchone()[0]  # fmt: skip
            timers = [
                ("reminder", i, calendar.add(begin, timedelta(seconds=r.consumed_at(policy.limit_s))).at)
                for i, r in enumerate(policy.reminders, start=1)
                if r.consumed_at(policy.limit_s) > 0
            ]
            timers.append(("breach", 0, deadline.at))
            timers += [
                ("escalation", i, calendar.add(begin, timedelta(seconds=policy.limit_s + lv.after_s)).at)
                for i, lv in enumerate(policy.ladder, start=1)
            ]
            with conn.cursor() as cur:
                cur.executemany(
                    LAY_TIMER, [(new_id, case["id"], k, lv, t, f"{new_id}:1:{k}:{lv}") for k, lv, t in timers]
                )
        return JSONResponse(case, headers={"ETag": f'"v{case["version"]}"'})

    @app.get("/ref/cases")
    def cases(
        request: Request,
        village: str,
        overdue: bool = True,
        cursor: str | None = None,
        limit: int = Query(50, ge=1, le=200),
    ) -> JSONResponse:
        if not overdue:
            return JSONResponse({"detail": "the reference lists overdue cases only"}, status_code=422)
        params: dict[str, Any] = {"village": village, "limit": limit + 1}
        sql = LIST
        if cursor:
            data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            params.update(key=datetime.fromisoformat(data["k"]), last=int(data["i"]))
            sql = LIST_AFTER
        with pool.transaction() as conn:
            rows = conn.execute(sql, params).fetchall()
        items = [_case(row, NAMES) for row in rows[:limit]]
        following = None
        if len(rows) > limit:
            last = items[-1]
            raw = json.dumps({"s": "-reported_at", "k": last["reported_at"], "i": last["id"]}, separators=(",", ":"))
            following = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        return JSONResponse({"items": items, "next_cursor": following})

    return app
