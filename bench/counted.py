"""The statement count the psycopg sides of ``bench/transitions.py`` keep: each statement a side sends,
counted under the step it belongs to (the plain sides and the BPMN side alike)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import psycopg


class CountedStatements:
    """``statements[step]``: how many statements were sent for each step; ``_step`` is the current one."""

    def __init__(self) -> None:
        self.statements: Counter[str] = Counter()
        self._step = ""

    def _run(self, cur: psycopg.Cursor, sql: str, params: tuple) -> None:
        self.statements[self._step] += 1
        cur.execute(sql, params)

    def _one(self, cur: psycopg.Cursor, sql: str, params: tuple) -> Any:
        self._run(cur, sql, params)
        row = cur.fetchone()
        assert row is not None
        return row[0]
