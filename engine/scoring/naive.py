"""The same indicators computed the naive way: load the period's cases, events and clocks into
Python and walk each case's history. Slow and memory-hungry on purpose — it is the oracle the
SQL is tested against (:mod:`engine.scoring.facts`) and the baseline of ``bench/scoring.py``.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.scoring.catalogue import FACT_COLUMNS, SUBJECT_INDICATORS, Value, values_from_sums
from engine.scoring.config import ScoringConfig
from engine.store.models import Case, CaseEvent, Place, SlaClock


def compute(
    session: Session,
    config: ScoringConfig,
    start: datetime,
    end: datetime,
    exempt: Iterable[int] = (),
    villages: Mapping[str, str | None] | None = None,
) -> dict[tuple[str, str], dict[str, Value]]:
    flow = config.workflow
    skip = set(exempt)
    if villages is None:
        villages = {p.id: p.village_id for p in session.execute(select(Place.id, Place.village_id))}
    cases = [
        c
        for c in session.execute(select(Case.__table__).where(Case.reported_at < end))
        if (c.closed_at is None or c.closed_at >= start) and c.id not in skip
    ]
    ids = {c.id for c in cases}
    events: dict[int, list[Any]] = defaultdict(list)
    ev_table = CaseEvent.__table__
    for ev in session.execute(select(ev_table).where(ev_table.c.at < end).order_by(ev_table.c.case_id, ev_table.c.seq)):
        if ev.case_id in ids:
            events[ev.case_id].append(ev)
    clocks: dict[int, list[Any]] = defaultdict(list)
    clock_table = SlaClock.__table__
    for k in session.execute(select(clock_table).order_by(clock_table.c.id)):
        if k.case_id in ids:
            clocks[k.case_id].append(k)

    rows: list[dict[str, Any]] = []
    for case in cases:
        rows.extend(_case(case, events[case.id], clocks[case.id], villages, flow, config, start, end))

    sums: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(FACT_COLUMNS, 0))
    hours: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in rows:
        keys = [("grid", row["grid"]), ("township", "*")]
        if row["village"]:
            keys.append(("village", row["village"]))
        if row["reporter"]:
            keys.append(("reporter", row["reporter"]))
        if row["handler"]:
            keys.append(("handler", row["handler"]))
        for key in keys:
            target = sums[key]
            for column in FACT_COLUMNS:
                target[column] += row.get(column, 0)
            if row.get("handling_s") is not None:
                hours[key].append(row["handling_s"])
    out = {}
    for key, total in sums.items():
        values = values_from_sums(total, _stats(hours.get(key, [])))
        out[key] = {name: values[name] for name in SUBJECT_INDICATORS[key[0]]}
    return out


def _stats(values: list[float]) -> tuple[int, float | None, float | None, float | None]:
    if not values:
        return (0, None, None, None)
    ordered = sorted(values)
    return (len(ordered), statistics.fmean(ordered), _percentile(ordered, 0.5), _percentile(ordered, 0.9))


def _percentile(ordered: list[float], p: float) -> float:
    pos = (len(ordered) - 1) * p
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (pos - lo) * (ordered[hi] - ordered[lo])


def _state_at(history: list[Any], instant: datetime) -> str | None:
    state = None
    for ev in history:
        if ev.at < instant:
            state = ev.to_state
    return state


def _case(case, history, clocks, villages, flow, config, start, end) -> list[dict[str, Any]]:  # noqa: ANN001
    in_period = lambda t: t is not None and start <= t < end  # noqa: E731
    suspended_states = set(flow["suspended_states"])
    final = case.closed_at is not None and case.closed_at < end
    closed = final and case.status in flow["closed_states"]
    voided = final and case.status in flow["voided_states"]
    at_start, at_end = _state_at(history, start), _state_at(history, end)
    suspended_at_end = at_end in suspended_states
    triggers_in = {ev.trigger for ev in history if ev.at >= start}
    triggers_ever = {ev.trigger for ev in history}
    entered_suspension = any(
        ev.at >= start and ev.to_state in suspended_states and ev.from_state not in suspended_states for ev in history
    )
    case_clock = next((k for k in clocks if k.scope == "case"), None)
    state_clocks = [k for k in clocks if k.scope == "state"]
    started = [k for k in state_clocks if k.started_at < end]
    handler = max(started, key=lambda k: k.id).assignee_id if started else None
    breached = case_clock.breached_at if case_clock else None
    classified_by_end = bool(triggers_ever & set(flow["classify"]))
    reported = int(case.reported_at >= start)
    handling = sum(
        k.consumed_s
        for k in state_clocks
        if k.state in flow["handling_time"] and k.stopped_at is not None and k.stopped_at < end
    )
    base = {"grid": case.grid_id, "village": villages.get(case.grid_id)}
    row = {
        **base,
        "reporter": case.reporter_id,
        "handler": handler,
        "cases": 1,
        "reported": reported,
        "classified": int(bool(triggers_in & set(flow["classify"]))),
        "voided": int(voided),
        "valid_report": int(bool(reported and classified_by_end and not voided)),
        "report_decided": int(bool(reported and (classified_by_end or voided))),
        "closed": int(closed),
        "due_to_close": int(closed or (not final and in_period(breached) and not suspended_at_end)),
        "closed_on_time": int(closed and (case_clock is None or case_clock.outcome == "met")),
        "overdue_open": int(not final and breached is not None and breached < end),
        "reworked": int(closed and bool(triggers_ever & set(flow["rework"]))),
        "extended": int(bool(triggers_in & set(flow["extension"]))),
        "suspended": int(entered_suspension or at_start in suspended_states),
        "rated": int(closed and case.satisfaction is not None),
        "satisfied": int(closed and case.satisfaction in config.satisfied),
        "handling_s": handling if closed else None,
    }
    rows = [row]
    visits = (
        ("dispatch_clock", flow["dispatch"], "dispatch_due", "dispatched_on_time", False),
        ("response_clock", None, "response_due", "responded_on_time", True),  # the first response of a case
        ("handling_clock", flow["resolve"], "handling_due", "handled_on_time", False),
    )
    for state_key, stoppers, due, on_time, first_only in visits:
        of_state = [k for k in state_clocks if k.state == flow[state_key]]
        for k in of_state[:1] if first_only else of_state:
            if k.started_at >= end:
                continue
            ended = in_period(k.stopped_at) and (stoppers is None or k.stopped_by in stoppers)
            still_open = k.stopped_at is None or k.stopped_at >= end
            late = in_period(k.breached_at) and not (still_open and suspended_at_end)
            rows.append(
                {
                    **base,
                    "reporter": None,
                    "handler": k.assignee_id,
                    due: int(ended or late),
                    on_time: int(ended and k.outcome == "met"),
                }
            )
    for ev in history:
        if not in_period(ev.at):
            continue
        if ev.trigger in flow["dispatch"]:
            rows.append({**base, "reporter": None, "handler": (ev.payload or {}).get("assignee"), "dispatched": 1})
        if ev.trigger in flow["return"]:
            rows.append({**base, "reporter": None, "handler": ev.actor_id, "returned": 1})
    return rows
