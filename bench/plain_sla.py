"""The PLAIN_SLA side of ``bench/transitions.py``: hand-written SQL laying exactly the rows the engine
writes for a lifecycle on the default workflow — the case and its events, and also its SLA clocks
(started, then stopped with their history), their timers (laid, then cancelled) and the outbox rows of
its notices — one transaction per step, nothing read that a client already knows.

A hand-written client does not compute business-time deadlines; it knows them. So the rows come from
one case the engine walked through first (every case of the bench has the same times, so the same
deadlines): :meth:`Script.learn` reads that case's final rows and turns them into what each step
writes. Per step, in one transaction:

- the case update and its event, as one statement (the CTE of ``plain_cte``);
- the outbox rows of its notices, one multi-row INSERT;
- the timers of the clocks it stops, cancelled in one UPDATE, and those clocks set to their final
  values, one UPDATE per clock;
- the clocks it starts, one multi-row INSERT returning their ids, and their timers, one multi-row
  INSERT (their dedupe keys name the clock ids just returned).

The report also counts up the case-code counter (one upsert) and inserts the case and its event.

:func:`sla_rows` reads a case's clocks, timers and outbox rows with the ids taken out (clock ids as
their order within the case, case ids and codes as placeholders), so an engine case and a plain case
compare column by column.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from bench.counted import CountedStatements

CLOCK_COLUMNS = (
    "scope",
    "state",
    "calendar",
    "limit_s",
    "consumed_s",
    "status",
    "generation",
    "segment_start",
    "started_at",
    "stopped_at",
    "due_at",
    "estimated",
    "breached_at",
    "outcome",
    "policy",
    "history",
    "assignee_id",
    "stopped_by",
)
CLOCK_FINAL = (
    "consumed_s",
    "status",
    "segment_start",
    "stopped_at",
    "due_at",
    "breached_at",
    "outcome",
    "history",
    "stopped_by",
)
TIMER_COLUMNS = (
    "kind",
    "level",
    "generation",
    "fire_at",
    "status",
    "lease_until",
    "claimed_by",
    "attempts",
    "fired_at",
    "note",
)
OUTBOX_COLUMNS = (
    "recipient_id",
    "role",
    "template",
    "params",
    "urgent",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "claimed_by",
    "lease_until",
    "channel",
    "sent_at",
    "provider_id",
    "error",
    "channel_attempts",
    "exhausted",
    "digest_key",
)
JSON_COLUMNS = {"policy", "history", "params", "exhausted"}

COUNTER = (
    "INSERT INTO case_counter (prefix, last) VALUES (%s, 1)"
    " ON CONFLICT (prefix) DO UPDATE SET last = case_counter.last + 1 RETURNING last"
)
INSERT_CASE = (
    "INSERT INTO cases (code, workflow_id, workflow_name, workflow_version, status, version, title, grid_id,"
    " reporter_id, source_channel, rework_count, extension_count, reported_at, updated_at)"
    " VALUES (%s, %s, %s, %s, %s, 1, %s, %s, %s, 'grid_worker', 0, 0, %s, %s) RETURNING id"
)
INSERT_EVENT = (
    "INSERT INTO case_event (case_id, seq, at, actor_id, trigger, from_state, to_state, payload, workflow_version)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
EVENT_COLUMNS = "case_id, seq, at, actor_id, trigger, from_state, to_state, payload, workflow_version"
OUTBOX_INSERTED = (
    "case_id",
    "recipient_id",
    "role",
    "template",
    "params",
    "urgent",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "dedupe_key",
    "channel_attempts",
    "exhausted",
)
TIMER_INSERTED = ("clock_id", "case_id", "kind", "level", "generation", "fire_at", "status", "attempts", "dedupe_key")
CANCEL = "UPDATE sla_timer SET status = 'cancelled', note = %s WHERE clock_id = ANY(%s) AND status = 'pending'"
STOP_CLOCK = f"UPDATE sla_clock SET {', '.join(f'{c} = %s' for c in CLOCK_FINAL)} WHERE id = %s"


def _values(rows: int, columns: int) -> str:
    one = "(" + ", ".join(["%s"] * columns) + ")"
    return ", ".join([one] * rows)


class PlainSlaError(Exception):
    """The reference case cannot be turned into a script (a lifecycle this side does not model)."""


@dataclass
class Clock:
    """One clock of the reference case: its row when started, and its final values when stopped."""

    start: dict[str, Any]
    final: dict[str, Any]
    timers: list[dict[str, Any]]  # as laid (pending); their cancel note is ``cancel_note``
    cancel_note: str | None
    started_in: int  # step index
    stopped_in: int | None


@dataclass
class StepWrites:
    """What one step writes besides the case and its event."""

    outbox: list[dict[str, Any]] = field(default_factory=list)  # dedupe key without the ``step:<case>:`` head
    starts: list[int] = field(default_factory=list)  # indexes into Script.clocks
    stops: list[int] = field(default_factory=list)


@dataclass
class Script:
    clocks: list[Clock]
    steps: list[StepWrites]

    @classmethod
    def learn(cls, conn: psycopg.Connection, case_id: int, times: Sequence[datetime]) -> Script:
        """The writes of each step (at ``times[i]``), from the final rows of the engine's case ``case_id``."""
        index = {t: i for i, t in enumerate(times)}

        def step_of(at: datetime | None, what: str) -> int:
            if at not in index:
                raise PlainSlaError(f"the reference case {what} at {at}, not at a step of the lifecycle")
            return index[at]

        clocks_read = conn.execute(
            f"SELECT id, {', '.join(CLOCK_COLUMNS)} FROM sla_clock WHERE case_id = %s ORDER BY id", (case_id,)
        ).fetchall()
        timers_read = conn.execute(
            f"SELECT clock_id, {', '.join(TIMER_COLUMNS)} FROM sla_timer WHERE case_id = %s ORDER BY id", (case_id,)
        ).fetchall()
        outbox_read = conn.execute(
            f"SELECT dedupe_key, {', '.join(OUTBOX_INSERTED[1:])} FROM outbox WHERE case_id = %s ORDER BY id",
            (case_id,),
        ).fetchall()
        conn.commit()
        steps = [StepWrites() for _ in times]
        clocks: list[Clock] = []
        for number, (clock_id, *values) in enumerate(clocks_read):
            row = dict(zip(CLOCK_COLUMNS, values, strict=True))
            if row["generation"] != 1 or row["status"] != "stopped" or len(row["history"]) != 2:
                raise PlainSlaError(f"clock {clock_id} was paused, extended or left open: not modelled here")
            first = row["history"][0]
            start = {
                **row,
                "consumed_s": 0,
                "status": "running",
                "segment_start": row["started_at"],  # the bench's steps are all in working time
                "stopped_at": None,
                "breached_at": None,
                "outcome": None,
                "history": [first],
                "stopped_by": None,
            }
            timers = []
            notes = set()
            for timer_clock, *tv in timers_read:
                if timer_clock == clock_id:
                    timer = dict(zip(TIMER_COLUMNS, tv, strict=True))
                    notes.add(timer.pop("note"))
                    timers.append({**timer, "status": "pending"})
            if len(notes) > 1:
                raise PlainSlaError(f"the timers of clock {clock_id} were cancelled with different notes")
            clock = Clock(
                start,
                {name: row[name] for name in CLOCK_FINAL},
                timers,
                notes.pop() if notes else None,
                step_of(row["started_at"], f"started clock {clock_id}"),
                step_of(row["stopped_at"], f"stopped clock {clock_id}"),
            )
            clocks.append(clock)
            steps[clock.started_in].starts.append(number)
            if clock.stopped_in is not None:
                steps[clock.stopped_in].stops.append(number)
        head = f"step:{case_id}:"
        for key, *values in outbox_read:
            row = dict(zip(OUTBOX_INSERTED[1:], values, strict=True))
            if not key.startswith(head):
                raise PlainSlaError(f"outbox row {key!r} is not a step's notice")
            steps[step_of(row["created_at"], f"staged notice {key}")].outbox.append(
                {**row, "dedupe_key": key[len(head) :]}
            )
        return cls(clocks, steps)


class PlainSlaClient(CountedStatements):
    """The default workflow's writes, hand-written (see the module's docstring)."""

    def __init__(
        self,
        conn: psycopg.Connection,
        target: Any,
        script: Script,
        lifecycle: Sequence[Any],
        times: Callable[[int], datetime],
        grid: str,
    ):
        self.conn = conn
        self.target = target
        self.script = script
        self.lifecycle_steps = lifecycle
        self.times = times
        self.grid = grid
        super().__init__()

    def lifecycle(self) -> int:
        ids: dict[int, int] = {}  # clock number -> id
        case_id, code = self.report(ids)
        for index, step in enumerate(self.lifecycle_steps[1:], start=1):
            self.fire(case_id, code, index, step, ids)
        return case_id

    def report(self, ids: dict[int, int]) -> tuple[int, str]:
        t, step, at = self.target, self.lifecycle_steps[0], self.times(0)
        with self.conn.cursor() as cur:
            self._step = step.trigger
            number = self._one(cur, COUNTER, (t.counter_key,))
            code = f"{t.counter_key}-{number:06d}"
            values = (code, t.workflow_id, t.workflow_name, t.workflow_version, step.to_state, step.fields["title"])
            case_id = self._one(cur, INSERT_CASE, (*values, self.grid, step.actor, at, at))
            self._run(cur, INSERT_EVENT, self._event(case_id, 1, step, None, at))
            self._writes(cur, case_id, code, 0, ids)
        self.conn.commit()
        return case_id, code

    def fire(self, case_id: int, code: str, index: int, step: Any, ids: dict[int, int]) -> None:
        at, version = self.times(index), index
        sets = ["status = %s", "version = version + 1", "updated_at = %s", *(f"{n} = %s" for n in step.columns)]
        params: list[Any] = [step.to_state, at, *step.columns.values()]
        if step.closes:
            sets.append("closed_at = %s")
            params.append(at)
        sql = (
            f"WITH moved AS (UPDATE cases SET {', '.join(sets)} WHERE id = %s AND version = %s RETURNING id)"
            f" INSERT INTO case_event ({EVENT_COLUMNS}) SELECT moved.id, %s, %s, %s, %s, %s, %s, %s, %s FROM moved"
            " RETURNING seq"
        )
        event = self._event(case_id, version + 1, step, self.lifecycle_steps[index - 1].to_state, at)
        with self.conn.cursor() as cur:
            self._step = step.trigger
            self._run(cur, sql, (*params, case_id, version, *event[1:]))
            if len(cur.fetchall()) != 1:
                raise PlainSlaError(f"plain_sla {step.trigger} of case {case_id}: compare-and-set lost")
            self._writes(cur, case_id, code, index, ids)
        self.conn.commit()

    def _writes(self, cur: psycopg.Cursor, case_id: int, code: str, index: int, ids: dict[int, int]) -> None:
        writes = self.script.steps[index]
        if writes.outbox:
            rows = []
            for row in writes.outbox:
                params = {**row["params"], "case": code}
                values = {
                    **row,
                    "case_id": case_id,
                    "params": params,
                    "dedupe_key": f"step:{case_id}:{row['dedupe_key']}",
                }
                rows += [self._json(name, values[name]) for name in OUTBOX_INSERTED]
            sql = f"INSERT INTO outbox ({', '.join(OUTBOX_INSERTED)}) VALUES {_values(len(writes.outbox), len(OUTBOX_INSERTED))}"
            self._run(cur, sql, tuple(rows))
        if writes.stops:
            clocks = [self.script.clocks[n] for n in writes.stops]
            self._run(cur, CANCEL, (clocks[0].cancel_note, [ids[n] for n in writes.stops]))
            for number, clock in zip(writes.stops, clocks, strict=True):
                self._run(cur, STOP_CLOCK, (*(self._json(c, clock.final[c]) for c in CLOCK_FINAL), ids[number]))
        if writes.starts:
            starts = [self.script.clocks[n] for n in writes.starts]
            columns = ("case_id", *CLOCK_COLUMNS)
            values = [self._json(c, case_id if c == "case_id" else clock.start[c]) for clock in starts for c in columns]
            sql = (
                f"INSERT INTO sla_clock ({', '.join(columns)}) VALUES {_values(len(starts), len(columns))} RETURNING id"
            )
            self._run(cur, sql, tuple(values))
            returned = [row[0] for row in cur.fetchall()]  # in VALUES order: one statement, one sequence
            for number, clock_id in zip(writes.starts, sorted(returned), strict=True):
                ids[number] = clock_id
            timers = [
                (
                    ids[n],
                    case_id,
                    t["kind"],
                    t["level"],
                    t["generation"],
                    t["fire_at"],
                    "pending",
                    0,
                    f"{ids[n]}:{t['generation']}:{t['kind']}:{t['level']}",
                )
                for n in writes.starts
                for t in self.script.clocks[n].timers
            ]
            if timers:
                sql = f"INSERT INTO sla_timer ({', '.join(TIMER_INSERTED)}) VALUES {_values(len(timers), len(TIMER_INSERTED))}"
                self._run(cur, sql, tuple(v for row in timers for v in row))

    @staticmethod
    def _json(column: str, value: Any) -> Any:
        return Jsonb(value) if column in JSON_COLUMNS and value is not None else value

    def _event(self, case_id: int, seq: int, step: Any, source: str | None, at: datetime) -> tuple:
        return (
            case_id,
            seq,
            at,
            step.actor,
            step.trigger,
            source,
            step.to_state,
            Jsonb(dict(step.fields)),
            self.target.workflow_version,
        )


def sla_rows(conn: psycopg.Connection, case_id: int) -> dict[str, list[tuple]]:
    """A case's clocks, timers and outbox rows, ids replaced: clock ids by their order within the case,
    the case id and code by placeholders (in dedupe keys and notice parameters too)."""
    code = conn.execute("SELECT code FROM cases WHERE id = %s", (case_id,)).fetchone()
    clocks = conn.execute(
        f"SELECT id, {', '.join(CLOCK_COLUMNS)} FROM sla_clock WHERE case_id = %s ORDER BY id", (case_id,)
    ).fetchall()
    timers = conn.execute(
        f"SELECT clock_id, dedupe_key, {', '.join(TIMER_COLUMNS)} FROM sla_timer WHERE case_id = %s ORDER BY id",
        (case_id,),
    ).fetchall()
    outbox = conn.execute(
        f"SELECT dedupe_key, {', '.join(OUTBOX_COLUMNS)} FROM outbox WHERE case_id = %s ORDER BY id", (case_id,)
    ).fetchall()
    conn.commit()
    number = {row[0]: n for n, row in enumerate(clocks)}
    case_code = code[0] if code else None
    params_at = 1 + OUTBOX_COLUMNS.index("params")
    return {
        "sla_clock": [tuple(row[1:]) for row in clocks],
        "sla_timer": [
            (number.get(clock_id), key.replace(f"{clock_id}:", f"#{number.get(clock_id)}:", 1), *rest)
            for clock_id, key, *rest in timers
        ],
        "outbox": [
            (
                key.replace(f"step:{case_id}:", "step:#:", 1),
                *(
                    {**value, "case": "#"} if i == params_at - 1 and value.get("case") == case_code else value
                    for i, value in enumerate(rest)
                ),
            )
            for key, *rest in outbox
        ],
    }
