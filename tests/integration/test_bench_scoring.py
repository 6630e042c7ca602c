"""bench/scoring.py writes months the engine's two ways of scoring agree on.

The benchmark's generator fakes a month of cases, events and clocks with set-based SQL instead
of driving the engine; the SQL scoring (engine.scoring.facts) and the naive one
(engine.scoring.naive) agree on engine-made months, so a generated month they disagree on has
rows of the wrong shape.
"""

from __future__ import annotations

import pytest

from bench import scoring

pytestmark = pytest.mark.postgres


def test_a_tiny_generated_month_scores_the_same_both_ways(pg_db):
    made = scoring.generate(pg_db.url, 300, say=lambda _text: None)

    subjects, wrong = scoring.compare_ways(pg_db.url)
    _, wrong_exempt = scoring.compare_ways(pg_db.url, exempt=tuple(range(1, 301, 7)))

    assert (made.cases, wrong, wrong_exempt) == (300, [], [])
    assert made.events > 6 * 300 * 0.8 and made.clocks > 5 * 300 * 0.8
    assert subjects > 100  # the township, its villages, grids, reporters and handlers


def test_the_generator_fills_only_an_empty_ledger(pg_db):
    scoring.generate(pg_db.url, 20, say=lambda _text: None)

    with pytest.raises(scoring.BenchError, match="already holds cases"):
        scoring.generate(pg_db.url, 20, say=lambda _text: None)
