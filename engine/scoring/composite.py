"""Composite score, grade, rank, red and black lists, and the change against earlier periods.

Pure: takes the indicators of every subject and what the org chart says about them; returns
plain rows. The composite is a weighted mean, in percent, of the weighted rates that have data;
a rate where lower is better enters as (1 − rate); the parts without data are named in
``missing`` and their weight is left out. A subject with fewer cases than ``minimum_cases``
(or with no weighted rate at all) is listed but not ranked. Ranks are competition ranks
("1, 2, 2, 4") on the composite rounded to two decimals, within the subject's group. The red
and black lists take at most half of the ranked subjects each (see :func:`_lists`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.scoring.catalogue import RATES, Value
from engine.scoring.config import ScoringConfig

WORKER_ROLES = ("grid_worker", "info_officer")


@dataclass
class ScoreRow:
    subject_kind: str
    subject_id: str
    name: str
    group_key: str
    cases: int
    composite: float | None
    parts: dict[str, Any]
    missing: list[str]
    grade: str | None = None
    ranked: bool = False
    rank: int | None = None
    listed: str | None = None
    previous: float | None = None
    change: float | None = None
    year_ago: float | None = None
    change_year: float | None = None
    rank_change: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Who:
    """What the scores need from the org chart."""

    names: Mapping[str, str]  # place and person ids -> names
    grid_kind: Mapping[str, str]  # grid id -> residential | unit
    grid_village: Mapping[str, str | None]
    villages: tuple[str, ...]
    workers: tuple[str, ...]  # people who hold a grid worker's role


def composite(config: ScoringConfig, kind: str, values: Mapping[str, Value]) -> tuple[float | None, dict, list]:
    parts: dict[str, Any] = {}
    missing: list[str] = []
    for name, weight in config.subjects[kind].weights.items():
        value = values.get(name)
        if value is None or value.value is None:
            missing.append(name)
            continue
        points = 1 - value.value if RATES[name].better == "lower" else value.value
        parts[name] = {"weight": weight, "rate": value.value, "points": points}
    total = sum(p["weight"] for p in parts.values())
    if not total:
        return None, parts, missing
    return round(100 * sum(p["weight"] * p["points"] for p in parts.values()) / total, 2), parts, missing


def score_rows(
    config: ScoringConfig,
    indicators: Mapping[tuple[str, str], Mapping[str, Value]],
    who: Who,
    previous: Mapping[tuple[str, str], tuple[float | None, int | None]] | None = None,
    year_ago: Mapping[tuple[str, str], tuple[float | None, int | None]] | None = None,
) -> list[ScoreRow]:
    """Scores of every grid, village and grid worker, ranked and listed."""
    rows = [*_grids(config, indicators, who), *_villages(config, indicators, who), *_workers(config, indicators, who)]
    for row in rows:
        row.grade = config.grade(row.composite)
        row.ranked = row.composite is not None and row.cases >= config.minimum_cases
    _rank(rows)
    _lists(config, rows)
    _changes(rows, previous or {}, year_ago or {})
    return rows


def _row(config: ScoringConfig, kind: str, subject: str, name: str, group: str, cases: int, values) -> ScoreRow:  # noqa: ANN001
    value, parts, missing = composite(config, kind, values)
    return ScoreRow(kind, subject, name, group, cases, value, parts, missing)


def _cases(values: Mapping[str, Value] | None) -> int:
    return int(values["cases"].value or 0) if values and "cases" in values else 0


def _grids(config: ScoringConfig, indicators, who: Who) -> list[ScoreRow]:  # noqa: ANN001
    group_by = config.subjects["grid"].group_by
    out = []
    for grid in who.grid_kind:
        values = indicators.get(("grid", grid), {})
        group = {"grid_kind": who.grid_kind[grid], "village": who.grid_village.get(grid) or "-"}.get(group_by, "all")
        out.append(_row(config, "grid", grid, who.names.get(grid, grid), group, _cases(values), values))
    return out


def _villages(config: ScoringConfig, indicators, who: Who) -> list[ScoreRow]:  # noqa: ANN001
    out = []
    for village in who.villages:
        values = indicators.get(("village", village), {})
        out.append(_row(config, "village", village, who.names.get(village, village), "all", _cases(values), values))
    return out


def _workers(config: ScoringConfig, indicators, who: Who) -> list[ScoreRow]:  # noqa: ANN001
    out = []
    for person in who.workers:
        as_reporter = indicators.get(("reporter", person), {})
        as_handler = indicators.get(("handler", person), {})
        values = {**as_handler, **{k: v for k, v in as_reporter.items() if k != "cases"}}
        cases = _cases(as_reporter) + _cases(as_handler)
        out.append(_row(config, "worker", person, who.names.get(person, person), "all", cases, values))
    return out


def _rank(rows: list[ScoreRow]) -> None:
    groups: dict[tuple[str, str], list[ScoreRow]] = defaultdict(list)
    for row in rows:
        if row.ranked:
            groups[(row.subject_kind, row.group_key)].append(row)
    for members in groups.values():
        members.sort(key=lambda r: (-(r.composite or 0), r.subject_id))
        for index, row in enumerate(members):
            ahead = members[index - 1] if index else None
            row.rank = ahead.rank if ahead and ahead.composite == row.composite else index + 1


def _lists(config: ScoringConfig, rows: list[ScoreRow]) -> None:
    """Red (红榜): the top k of each group; black (黑榜): the bottom k of each kind overall. Neither
    takes more than half of the ranked subjects it is drawn from (with 3 ranked grids and k = 5, one
    is red and one black, not all three red), ties at the edge go in, and no subject is on both."""
    groups: dict[tuple[str, str], list[ScoreRow]] = defaultdict(list)
    by_kind: dict[str, list[ScoreRow]] = defaultdict(list)
    for row in rows:
        if row.ranked:
            groups[(row.subject_kind, row.group_key)].append(row)
            by_kind[row.subject_kind].append(row)
    for members in groups.values():
        k = min(config.red, len(members) // 2)
        for row in members:
            if row.rank is not None and row.rank <= k:
                row.listed = "red"
    for members in by_kind.values():
        k = min(config.black, len(members) // 2)
        if k <= 0:
            continue
        members.sort(key=lambda r: (r.composite or 0, r.subject_id))
        floor = members[k - 1].composite
        for row in members:
            if row.composite is not None and floor is not None and row.composite <= floor and row.listed is None:
                row.listed = "black"


def _changes(rows: list[ScoreRow], previous: Mapping, year_ago: Mapping) -> None:
    for row in rows:
        key = (row.subject_kind, row.subject_id)
        before, before_rank = previous.get(key, (None, None))
        then, _ = year_ago.get(key, (None, None))
        row.previous, row.year_ago = before, then
        if row.composite is not None and before is not None:
            row.change = round(row.composite - before, 2)
        if row.composite is not None and then is not None:
            row.change_year = round(row.composite - then, 2)
        if row.rank is not None and before_rank is not None:
            row.rank_change = before_rank - row.rank
