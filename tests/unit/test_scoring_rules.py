"""Scoring rules (config/scoring.yaml) and the composite, grade, rank and lists: pure, no database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.scoring.catalogue import Value, rate
from engine.scoring.composite import Who, composite, score_rows
from engine.scoring.config import ScoringInvalid, load, parse_text
from tests.support import ROOT

RULES = load(ROOT / "config" / "scoring.yaml")


def test_the_shipped_rules_load():
    assert RULES.version == 1
    assert RULES.grade(90) == "A" and RULES.grade(89.99) == "B" and RULES.grade(39.9) == "E"
    assert RULES.grade(None) is None
    assert sum(RULES.subjects["grid"].weights.values()) == 100


BAD = """\
version: 0
grades: {A: 90, B: 95}
lists: {red: -1}
subjects:
  grid:
    weights: {on_time_close_rate: 30, closed: 10, speed: 5, satisfaction_rate: -3}
    group_by: county
  worker:
    weights: {on_time_dispatch_rate: 5}
  town:
    weights: {close_rate: 1}
publication: {objection_days: seven}
colour: red
"""


def test_bad_rules_name_every_problem_with_its_line():
    with pytest.raises(ScoringInvalid) as caught:
        parse_text(BAD, "scoring.yaml")
    text = str(caught.value)
    for expected in (
        "scoring.yaml:1:10: [version] expected a whole number ≥ 1",
        "scoring.yaml:2:9: [grades] list the bands from the highest floor down",
        "scoring.yaml:3:14: [lists.red] expected a whole number ≥ 0",
        "[subjects.grid.weights.closed] unknown rate 'closed'; it is a count, not a rate",
        "[subjects.grid.weights.speed] unknown rate 'speed'",
        "[subjects.grid.weights.satisfaction_rate] the weight of satisfaction_rate must be a positive number",
        "[subjects.grid.group_by] grid can be grouped by: all, grid_kind, village",
        "[subjects.worker.weights.on_time_dispatch_rate] a worker never has a on_time_dispatch_rate",
        "[subjects.town] unknown subject 'town'",
        "subjects.village is missing",
        "[publication.objection_days] expected a whole number ≥ 0, not 'seven'",
        "[colour] unknown key 'colour'",
    ):
        assert expected in text, expected
    assert text.startswith("12 problem(s) in scoring rules:")


def values(**rates: tuple[int, int]) -> dict[str, Value]:
    return {name: rate(n, d) for name, (n, d) in rates.items()}


def test_composite_weights_inverts_and_names_the_missing_parts():
    got, parts, missing = composite(
        RULES,
        "grid",
        values(
            on_time_close_rate=(8, 10),
            close_rate=(9, 10),
            response_rate=(0, 0),
            satisfaction_rate=(1, 1),
            rework_rate=(1, 4),
        ),
    )
    # weights 30, 15, (15 missing), 25, 15 → (30×0.8 + 15×0.9 + 25×1 + 15×0.75) / 85
    assert got == round(100 * (24 + 13.5 + 25 + 11.25) / 85, 2)
    assert missing == ["response_rate"]
    assert parts["rework_rate"] == {"weight": 15.0, "rate": 0.25, "points": 0.75}
    assert composite(RULES, "grid", {}) == (None, {}, list(RULES.subjects["grid"].weights))


def who(grids: dict[str, str]) -> Who:
    return Who(
        names={g: g.upper() for g in grids},
        grid_kind=grids,
        grid_village=dict.fromkeys(grids, "v"),
        villages=(),
        workers=(),
    )


def grid_values(on_time: tuple[int, int], cases: int) -> dict[str, Value]:
    return {"cases": Value(cases, None, float(cases)), "on_time_close_rate": rate(*on_time)}


def test_ranks_ties_minimum_cases_groups_and_lists():
    rules = parse_text(
        (ROOT / "config" / "scoring.yaml").read_text().replace("lists: {red: 5, black: 5}", "lists: {red: 1, black: 2}")
    )
    grids = {
        "g1": "residential",
        "g2": "residential",
        "g3": "residential",
        "g4": "residential",
        "g5": "residential",
        "u1": "unit",
        "u2": "unit",
    }
    indicators = {
        ("grid", "g1"): grid_values((9, 10), 10),
        ("grid", "g2"): grid_values((9, 10), 10),  # tie with g1
        ("grid", "g3"): grid_values((5, 10), 10),
        ("grid", "g4"): grid_values((1, 10), 10),
        ("grid", "g5"): grid_values((0, 2), 2),  # too few cases: listed, not ranked, never on a list
        ("grid", "u1"): grid_values((7, 10), 10),
        ("grid", "u2"): grid_values((3, 10), 10),
    }
    rows = {r.subject_id: r for r in score_rows(rules, indicators, who(grids), previous={("grid", "g3"): (40.0, 4)})}
    assert [rows[g].rank for g in ("g1", "g2", "g3", "g4")] == [1, 1, 3, 4]  # competition ranking
    assert rows["g5"].ranked is False and rows["g5"].rank is None and rows["g5"].listed is None
    assert (rows["u1"].rank, rows["u2"].rank) == (1, 2)  # units are ranked apart (group_by: grid_kind)
    assert {g for g, r in rows.items() if r.listed == "red"} == {"g1", "g2", "u1"}  # top 1 of each group, ties in
    assert {g for g, r in rows.items() if r.listed == "black"} == {"g4", "u2"}  # bottom 2 overall
    assert (rows["g3"].previous, rows["g3"].change, rows["g3"].rank_change) == (40.0, 10.0, 1)
    assert rows["g1"].change is None  # no previous score: no change


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=12))
def test_ranks_follow_the_composites(pairs):
    grids = {f"g{i}": "residential" for i in range(len(pairs))}
    indicators = {("grid", f"g{i}"): grid_values((min(n, d), d), 10) for i, (n, d) in enumerate(pairs)}
    rows = [r for r in score_rows(RULES, indicators, who(grids)) if r.subject_kind == "grid"]
    ranked = [r for r in rows if r.ranked]
    assert all(r.composite is not None for r in ranked)
    assert all((r.composite is None) == (not r.ranked) for r in rows)  # 10 cases ≥ minimum: ranked iff data
    for a in ranked:
        for b in ranked:
            if a.composite > b.composite:
                assert a.rank < b.rank
            if a.composite == b.composite:
                assert a.rank == b.rank
    if ranked:
        assert min(r.rank for r in ranked) == 1
        assert all(0 <= r.composite <= 100 for r in ranked)


def test_a_small_group_does_not_put_everyone_on_the_red_list():
    two = {("grid", "g1"): grid_values((9, 10), 10), ("grid", "g2"): grid_values((5, 10), 10)}
    rows = {r.subject_id: r.listed for r in score_rows(RULES, two, who({"g1": "residential", "g2": "residential"}))}
    assert rows == {"g1": "red", "g2": "black"}  # k = 5, but at most half of the 2 ranked
    one = {("grid", "g1"): grid_values((9, 10), 10)}
    assert [r.listed for r in score_rows(RULES, one, who({"g1": "residential"}))] == [None]
