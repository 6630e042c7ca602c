"""The indicators of a period, in SQL: per-case facts as they stood at the period's end, summed
per grid, village, township, reporter and handler.

Frozen by construction: the facts read only what cannot change after the period's end —

- events with ``at < end`` (``case_event`` is append-only);
- a case's ``reported_at``, grid and reporter (fixed at report), ``closed_at``, final status
  and satisfaction (fixed at close);
- a clock's ``started_at``, and, once it has stopped, ``stopped_at``, ``stopped_by``,
  ``outcome`` and ``consumed_s``; ``assignee_id`` (the handler when it started);
- ``breached_at``, which the sweep sets once to the deadline instant and never clears: a clock
  whose deadline passed before the end has ``breached_at < end`` whatever happened after.

So the same period computed today and in five years gives the same figures (a test does
exactly that), provided the sweep had fired the period's breaches (:func:`unswept`).

One fact row is either a case alive in the period (case-level flags; attributed to the case's
grid, reporter and its handler at the end), a dispatch or a return event, or a visit to the
dispatch, response or handling state (its clock; attributed to the handler it was assigned to).
On PostgreSQL the sums, means and percentiles come out of one ``GROUPING SETS`` query; on
SQLite from a temporary table, one ``GROUP BY`` per subject kind and a window query for the
percentiles. The tests hold both to the same figures, and to a plain-Python oracle
(:mod:`engine.scoring.naive`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from engine.scoring.catalogue import FACT_COLUMNS, SUBJECT_INDICATORS, Value, values_from_sums
from engine.scoring.config import ScoringConfig
from engine.store.models import UTCDateTime

Subject = tuple[str, str]  # (kind, id): ("grid", "g-01-01"), ("handler", "p-wang"), ("township", "*")
KEYS = {"grid": "grid_id", "village": "village_id", "reporter": "reporter_id", "handler": "handler_id"}
_LISTS = ("classify", "dispatch", "return", "resolve", "rework", "extension")
_STATE_LISTS = ("closed_states", "voided_states", "suspended_states", "handling_time")


def _case_rows(dialect: str) -> str:
    """One row per case alive in [s, e): reported before the end, not closed before the start.

    Two arg-max tricks keep it to one pass over each table, with no join back by key: a case was
    suspended at an instant when its last event before it entered a suspended state (the highest
    ``seq`` into one is above the highest into any other); its handler is the assignee of its
    latest clock, carried in the key the MAX picks (the id zero-padded, then the assignee)."""
    padded = "lpad(k.id::text, 20, '0') COLLATE \"C\"" if dialect == "postgresql" else "printf('%020d', k.id)"
    return f"""
    alive AS (
      SELECT c.id, c.grid_id, c.reporter_id, c.status, c.reported_at, c.closed_at, c.satisfaction
      FROM cases c
      WHERE c.reported_at < :e AND (c.closed_at IS NULL OR c.closed_at >= :s) AND c.id NOT IN :exempt
    ),
    ev AS (
      SELECT x.case_id,
        MAX(CASE WHEN x.trigger IN :classify AND x.at >= :s THEN 1 ELSE 0 END) AS classified_in,
        MAX(CASE WHEN x.trigger IN :classify THEN 1 ELSE 0 END) AS classified_by_end,
        MAX(CASE WHEN x.trigger IN :extension AND x.at >= :s THEN 1 ELSE 0 END) AS extended,
        MAX(CASE WHEN x.at >= :s AND x.to_state IN :suspended_states
                  AND (x.from_state IS NULL OR x.from_state NOT IN :suspended_states) THEN 1 ELSE 0 END)
          AS suspended_in,
        MAX(CASE WHEN x.trigger IN :rework THEN 1 ELSE 0 END) AS reworked,
        MAX(CASE WHEN x.at < :s AND x.to_state IN :suspended_states THEN x.seq END) AS suspended_seq_s,
        MAX(CASE WHEN x.at < :s AND x.to_state NOT IN :suspended_states THEN x.seq END) AS other_seq_s,
        MAX(CASE WHEN x.to_state IN :suspended_states THEN x.seq END) AS suspended_seq_e,
        MAX(CASE WHEN x.to_state NOT IN :suspended_states THEN x.seq END) AS other_seq_e
      FROM case_event x JOIN alive a ON a.id = x.case_id
      WHERE x.at < :e
      GROUP BY x.case_id
    ),
    cl AS (
      SELECT k.case_id,
        MAX(CASE WHEN k.scope = 'state' AND k.started_at < :e THEN {padded} || COALESCE(k.assignee_id, '') END)
          AS last_clock,
        MIN(CASE WHEN k.scope = 'state' AND k.state = :response_clock THEN k.id END) AS first_response,
        MAX(CASE WHEN k.scope = 'case' THEN k.breached_at END) AS case_breached_at,
        MAX(CASE WHEN k.scope = 'case' AND k.outcome = 'met' THEN 1 ELSE 0 END) AS case_met,
        MAX(CASE WHEN k.scope = 'case' THEN 1 ELSE 0 END) AS has_case_clock,
        SUM(CASE WHEN k.scope = 'state' AND k.state IN :handling_time AND k.stopped_at < :e
                 THEN k.consumed_s END) AS handling_s
      FROM sla_clock k JOIN alive a ON a.id = k.case_id
      GROUP BY k.case_id
    ),
    base AS (
      SELECT a.id AS case_id, a.grid_id, p.village_id, a.reporter_id,
        NULLIF(substr(cl.last_clock, 21), '') AS handler_id,
        cl.first_response,
        CASE WHEN a.reported_at >= :s THEN 1 ELSE 0 END AS reported,
        COALESCE(ev.classified_in, 0) AS classified,
        COALESCE(ev.classified_by_end, 0) AS classified_by_end,
        COALESCE(ev.extended, 0) AS extended,
        COALESCE(ev.reworked, 0) AS reworked_ever,
        CASE WHEN COALESCE(ev.suspended_in, 0) = 1 OR ev.suspended_seq_s > COALESCE(ev.other_seq_s, 0)
          THEN 1 ELSE 0 END AS suspended,
        CASE WHEN a.closed_at < :e THEN 1 ELSE 0 END AS final_by_end,
        CASE WHEN a.closed_at < :e AND a.status IN :closed_states THEN 1 ELSE 0 END AS closed,
        CASE WHEN a.closed_at < :e AND a.status IN :voided_states THEN 1 ELSE 0 END AS voided,
        CASE WHEN ev.suspended_seq_e > COALESCE(ev.other_seq_e, 0) THEN 1 ELSE 0 END AS suspended_at_end,
        cl.case_breached_at, COALESCE(cl.case_met, 0) AS case_met, COALESCE(cl.has_case_clock, 0) AS has_case_clock,
        cl.handling_s, a.satisfaction
      FROM alive a
      LEFT JOIN grid_villages p ON p.id = a.grid_id
      LEFT JOIN ev ON ev.case_id = a.id
      LEFT JOIN cl ON cl.case_id = a.id
    )"""


def _case_facts() -> dict[str, str]:
    breached_in = "b.case_breached_at >= :s AND b.case_breached_at < :e"
    return {
        "cases": "1",
        "reported": "b.reported",
        "classified": "b.classified",
        "voided": "b.voided",
        "valid_report": "CASE WHEN b.reported = 1 AND b.classified_by_end = 1 AND b.voided = 0 THEN 1 ELSE 0 END",
        "report_decided": "CASE WHEN b.reported = 1 AND (b.classified_by_end = 1 OR b.voided = 1) THEN 1 ELSE 0 END",
        "due_to_close": f"CASE WHEN b.closed = 1 OR (b.final_by_end = 0 AND {breached_in} AND b.suspended_at_end = 0)"
        " THEN 1 ELSE 0 END",
        "closed": "b.closed",
        "closed_on_time": "CASE WHEN b.closed = 1 AND (b.case_met = 1 OR b.has_case_clock = 0) THEN 1 ELSE 0 END",
        "overdue_open": "CASE WHEN b.final_by_end = 0 AND b.case_breached_at < :e THEN 1 ELSE 0 END",
        "reworked": "CASE WHEN b.closed = 1 AND b.reworked_ever = 1 THEN 1 ELSE 0 END",
        "extended": "b.extended",
        "suspended": "b.suspended",
        "rated": "CASE WHEN b.closed = 1 AND b.satisfaction IS NOT NULL THEN 1 ELSE 0 END",
        "satisfied": "CASE WHEN b.closed = 1 AND b.satisfaction IN :satisfied THEN 1 ELSE 0 END",
        "handling_s": "CASE WHEN b.closed = 1 THEN b.handling_s END",
    }


def _clock_facts() -> str:
    """Visits to the dispatch, response and handling states (their clocks), in one pass over
    sla_clock. Due: it ended in the period as counted (``stopped_by``), or its deadline fell in the
    period — however the visit ended (a return does not hide a missed deadline), unless it is still
    open at the end and the case is suspended then. On time: ended as counted, within the limit.
    The response counts only the case's first visit (its first response)."""
    cols, visits = {}, []
    for state, stopped_by, due, on_time in (
        ("dispatch_clock", "dispatch", "dispatch_due", "dispatched_on_time"),
        ("response_clock", None, "response_due", "responded_on_time"),
        ("handling_clock", "resolve", "handling_due", "handled_on_time"),
    ):
        visit = f"k.state = :{state}" + (" AND k.id = b.first_response" if state == "response_clock" else "")
        ended = "k.stopped_at >= :s AND k.stopped_at < :e" + (
            f" AND k.stopped_by IN :{stopped_by}" if stopped_by else ""
        )
        late = (
            "k.breached_at >= :s AND k.breached_at < :e"
            " AND NOT ((k.stopped_at IS NULL OR k.stopped_at >= :e) AND b.suspended_at_end = 1)"
        )
        cols[due] = f"CASE WHEN {visit} AND (({ended}) OR ({late})) THEN 1 ELSE 0 END"
        cols[on_time] = f"CASE WHEN {visit} AND ({ended}) AND k.outcome = 'met' THEN 1 ELSE 0 END"
        visits.append(f"({visit})")
    where = f"k.scope = 'state' AND k.started_at < :e AND ({' OR '.join(visits)})"
    return _select(cols, "sla_clock k JOIN base b ON b.case_id = k.case_id", where, handler="k.assignee_id")


def _event_facts(triggers: str, column: str, handler: str) -> str:
    return _select(
        {column: "1"},
        "case_event x JOIN base b ON b.case_id = x.case_id",
        f"x.trigger IN :{triggers} AND x.at >= :s AND x.at < :e",
        handler=handler,
    )


def _select(cols: dict[str, str], source: str, where: str, handler: str, reporter: str = "NULL") -> str:
    values = ", ".join(f"{cols.get(name, '0')} AS {name}" for name in FACT_COLUMNS)
    hours = cols.get("handling_s", "NULL")
    return (
        f"SELECT b.grid_id AS grid_id, b.village_id AS village_id, {reporter} AS reporter_id, "
        f"{handler} AS handler_id, {values}, {hours} AS handling_s FROM {source} WHERE {where}"
    )


def _grid_villages(grids: int) -> str:
    """The grid → village map of the run's org snapshot, as a derived table of bound values (so a
    grid moved to another village later does not move its old cases in a recomputation)."""
    rows = " UNION ALL ".join(f"SELECT :g{i} AS id, :v{i} AS village_id" for i in range(max(grids, 1)))
    return f"\n    grid_villages AS ({rows}),"


def facts_ctes(dialect: str, grids: int = 1) -> str:
    """``WITH grid_villages, alive, ev, cl, base`` (bind :s, :e, the name lists, the grid map)."""
    return "WITH" + _grid_villages(grids) + _case_rows(dialect)


def facts_union(dialect: str) -> str:
    """The fact rows: ``SELECT ... UNION ALL ...`` over the CTEs of :func:`facts_ctes`."""
    assignee = "x.payload ->> 'assignee'" if dialect == "postgresql" else "json_extract(x.payload, '$.assignee')"
    parts = [
        _select(_case_facts(), "base b", "1 = 1", handler="b.handler_id", reporter="b.reporter_id"),
        _clock_facts(),
        _event_facts("dispatch", "dispatched", assignee),
        _event_facts("return", "returned", "x.actor_id"),
    ]
    return "\nUNION ALL\n".join(parts)


def facts_sql(dialect: str, grids: int = 1) -> str:
    """The facts of a period: ``WITH ... SELECT ... UNION ALL ...``."""
    return facts_ctes(dialect, grids) + "\n" + facts_union(dialect)


def params(
    config: ScoringConfig, start: datetime, end: datetime, exempt: Iterable[int], villages: Mapping[str, str | None]
) -> dict[str, Any]:
    flow = config.workflow
    out: dict[str, Any] = {"s": start, "e": end, "exempt": sorted(exempt) or [-1], "satisfied": list(config.satisfied)}
    pairs = sorted(villages.items()) or [("\x00none", None)]
    for i, (grid, village) in enumerate(pairs):
        out[f"g{i}"], out[f"v{i}"] = grid, village
    for name in (*_LISTS, *_STATE_LISTS):
        out[name] = list(flow[name]) or ["\x00none"]
    for name in ("dispatch_clock", "response_clock", "handling_clock"):
        out[name] = flow[name]
    return out


def _bind(sql: str) -> Any:
    names = (*_LISTS, *_STATE_LISTS, "exempt", "satisfied")
    stmt = text(sql).bindparams(*(bindparam(n, expanding=True) for n in names))
    return stmt.bindparams(bindparam("s", type_=UTCDateTime()), bindparam("e", type_=UTCDateTime()))


# -- the sums ----------------------------------------------------------------------------------


def compute(
    conn: Connection,
    config: ScoringConfig,
    start: datetime,
    end: datetime,
    exempt: Iterable[int] = (),
    villages: Mapping[str, str | None] | None = None,
) -> dict[Subject, dict[str, Value]]:
    """Every subject's indicators for [start, end): {(kind, id): {indicator: Value}}. ``villages``:
    grid → village as the run's org snapshot has it (default: the org chart now)."""
    villages = grid_villages(conn) if villages is None else villages
    bound = params(config, start, end, exempt, villages)
    grids = max(len(villages), 1)
    if conn.dialect.name == "postgresql":
        rows = _grouping_sets(conn, bound, grids)
    else:
        rows = _temp_table(conn, bound, grids)
    out: dict[Subject, dict[str, Value]] = {}
    for (kind, subject), (sums, hours) in rows.items():
        values = values_from_sums(sums, hours)
        out[(kind, subject)] = {name: values[name] for name in SUBJECT_INDICATORS[kind]}
    return out


_SUMS = ", ".join(f"SUM({c}) AS {c}" for c in FACT_COLUMNS)
_HOURS_PG = (
    "COUNT(handling_s) AS n_hours, AVG(handling_s) AS mean_s, "
    "percentile_cont(0.5) WITHIN GROUP (ORDER BY handling_s) AS median_s, "
    "percentile_cont(0.9) WITHIN GROUP (ORDER BY handling_s) AS p90_s"
)


def grid_villages(conn: Connection) -> dict[str, str | None]:
    return {g: v for g, v in conn.execute(text("SELECT id, village_id FROM place WHERE kind = 'grid'"))}


def _grouping_sets(conn: Connection, bound: dict[str, Any], grids: int) -> dict:
    """Sum the facts per (grid, village, reporter, handler) first — a few thousand groups, hashed —
    and take the GROUPING SETS of those; the handling-time statistics (which need every value)
    come from the closed cases' rows of ``base`` alone. Rows ``part = 's'`` carry the sums, ``'h'``
    the hours."""
    keys = "grid_id, village_id, reporter_id, handler_id"
    grouping = (
        "GROUPING(grid_id) AS g_grid, GROUPING(village_id) AS g_village, GROUPING(reporter_id) AS g_rep, "
        "GROUPING(handler_id) AS g_handler"
    )
    sets = "GROUPING SETS ((grid_id), (village_id), (reporter_id), (handler_id), ())"
    no_sums = ", ".join(f"NULL::bigint AS {c}" for c in FACT_COLUMNS)
    no_hours = "NULL::bigint AS n_hours, NULL::numeric AS mean_s, NULL::float8 AS median_s, NULL::float8 AS p90_s"
    sql = (
        f"{facts_ctes('postgresql', grids)},\n"
        f"facts AS ({facts_union('postgresql')}),\n"
        f"keyed AS (SELECT {keys}, {_SUMS} FROM facts GROUP BY {keys}),\n"
        f"hours AS (SELECT {keys}, handling_s FROM base WHERE closed = 1 AND handling_s IS NOT NULL)\n"
        f"SELECT 's' AS part, {grouping}, {keys}, {_SUMS}, {no_hours} FROM keyed GROUP BY {sets}\n"
        f"UNION ALL\n"
        f"SELECT 'h' AS part, {grouping}, {keys}, {no_sums}, {_HOURS_PG} FROM hours GROUP BY {sets}"
    )
    sums, hours = {}, {}
    for row in conn.execute(_bind(sql), bound).mappings():
        kind, subject = _which(row)
        if subject is None:
            continue
        if row["part"] == "s":
            sums[(kind, subject)] = {c: row[c] for c in FACT_COLUMNS}
        else:
            hours[(kind, subject)] = (
                int(row["n_hours"] or 0),
                _float(row["mean_s"]),
                _float(row["median_s"]),
                _float(row["p90_s"]),
            )
    return {key: (values, hours.get(key, (0, None, None, None))) for key, values in sums.items()}


def _which(row: Any) -> tuple[str, str | None]:
    if not row["g_grid"]:
        return "grid", row["grid_id"]
    if not row["g_village"]:
        return "village", row["village_id"]
    if not row["g_rep"]:
        return "reporter", row["reporter_id"]
    if not row["g_handler"]:
        return "handler", row["handler_id"]
    return "township", "*"


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _temp_table(conn: Connection, bound: dict[str, Any], grids: int) -> dict:
    """SQLite: no GROUPING SETS, no percentile_cont — a temporary table, a GROUP BY per kind, and
    percentiles (linear interpolation, as percentile_cont) from a window query."""
    conn.exec_driver_sql("DROP TABLE IF EXISTS temp.score_facts")
    conn.execute(_bind(f"CREATE TEMP TABLE score_facts AS {facts_sql('sqlite', grids)}"), bound)
    try:
        out = {}
        for kind, key in (*KEYS.items(), ("township", "'*'")):
            sums = conn.execute(
                text(f"SELECT {key} AS k, {_SUMS} FROM score_facts WHERE {key} IS NOT NULL GROUP BY {key}")
            ).mappings()
            hours = _sqlite_hours(conn, key)
            for row in sums:
                out[(kind, row["k"])] = ({c: row[c] for c in FACT_COLUMNS}, hours.get(row["k"], (0, None, None, None)))
        return out
    finally:
        conn.exec_driver_sql("DROP TABLE IF EXISTS temp.score_facts")


def _sqlite_hours(conn: Connection, key: str) -> dict[str, tuple[int, float | None, float | None, float | None]]:
    def at(p: float) -> str:  # the value at fraction p, interpolated between ranks i and i + 1 (0-based)
        pos = f"(n - 1) * {p}"
        lo = f"CAST({pos} AS INTEGER)"
        return (
            f"MAX(CASE WHEN i = {lo} THEN v END) + ({pos} - {lo}) * "
            f"(COALESCE(MAX(CASE WHEN i = {lo} + 1 THEN v END), MAX(CASE WHEN i = {lo} THEN v END)) "
            f"- MAX(CASE WHEN i = {lo} THEN v END))"
        )

    sql = f"""
      WITH r AS (
        SELECT {key} AS k, handling_s AS v,
          ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY handling_s) - 1 AS i,
          COUNT(*) OVER (PARTITION BY {key}) AS n
        FROM score_facts WHERE handling_s IS NOT NULL AND {key} IS NOT NULL
      )
      SELECT k, MAX(n) AS n, AVG(v) AS mean_s, {at(0.5)} AS median_s, {at(0.9)} AS p90_s FROM r GROUP BY k"""
    return {
        row.k: (int(row.n), _float(row.mean_s), _float(row.median_s), _float(row.p90_s))
        for row in conn.execute(text(sql))
    }


def unswept(conn: Connection, end: datetime) -> int:
    """Timers due before the period's end that have not fired: the sweep has not caught up, and a
    breach it has yet to record would be missing from the figures. Scoring waits for it."""
    stmt = text("SELECT COUNT(*) FROM sla_timer WHERE status = 'pending' AND fire_at < :e").bindparams(
        bindparam("e", type_=UTCDateTime())
    )
    return int(conn.execute(stmt, {"e": end}).scalar_one())
