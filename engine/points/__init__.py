"""Household points (户档积分制): rules, the append-only ledger, the points store, the evaluation.

- :mod:`engine.points.rules` — ``config/points.yaml``, validated and versioned;
- :mod:`engine.points.ledger` — record, approve, correct; the redeemable balance;
- :mod:`engine.points.store` — goods, redemption and its reversal, the stock report;
- :mod:`engine.points.evaluation` — the households' month: points, ranks, stars, red/black list.
"""
