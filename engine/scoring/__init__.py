"""Scoring (月评比): indicators in SQL, composite scores, grades, ranks and lists, stored per run.

- :mod:`engine.scoring.catalogue` — the indicators: names, labels, formulas;
- :mod:`engine.scoring.config` — ``config/scoring.yaml``, validated and versioned;
- :mod:`engine.scoring.facts` — the indicators of a period as SQL aggregates (frozen at its end);
- :mod:`engine.scoring.naive` — the same in plain Python: the tests' oracle, the bench's baseline;
- :mod:`engine.scoring.composite` — composite score, grade, rank, red and black lists, changes;
- :mod:`engine.scoring.runs` — score a period and keep every run.
"""
