"""``gridflow case show`` answered from the embedded file without the application (:mod:`gridflow.quick`).

The quick answer must be the application's answer, value for value, for cases of every course (the small
demo plays each at least once: returned, reworked, extended, suspended, voided, rated); and wherever it
cannot be sure — another database, another schema revision, no such case, a damaged file — it must step
aside (None) so that the application answers or explains, never answer differently.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from config.settings import Settings
from engine.jobs import parse_period
from engine.store.models import Case
from engine.store.revision import HEAD
from engine.store.sqlite_read import case_with_workflow, plain_file
from gridflow import demo, quick
from gridflow.app import Gridflow
from tests import support
from tests.support import CENTER, GRID, GRID_WORKER

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Settings:
    """An embedded home of its own (the file is the point), migrated and seeded like the suite's databases."""
    monkeypatch.setenv("GRIDFLOW_CONFIG_FILE", str(tmp_path / "absent.yaml"))
    db = support.sqlite_database(tmp_path / "gridflow.db")
    db.reset()
    db.engine.dispose()
    return Settings(home=tmp_path)


def _codes(gf: Gridflow) -> list[tuple[int, str]]:
    with gf.transaction(write=False) as s:
        return [(r.id, r.code) for r in s.execute(select(Case.id, Case.code).order_by(Case.id))]


def test_every_case_of_the_demo_reads_the_same_both_ways(home: Settings) -> None:
    gf = Gridflow(home, clock=lambda: NOW)
    try:
        demo.load(gf, quarter=parse_period("quarter", "2026Q3"), now=NOW, size=40)
        found = _codes(gf)
        assert len(found) == 40
        statuses = set()
        for case_id, code in found:
            full = gf.case_card(code)
            assert quick.case_card(home, code) == full, code
            assert quick.case_card(home, str(case_id)) == full, case_id
            statuses.add(full["case"]["status"])
        assert len(statuses) >= 3, statuses  # closed, voided and open ones at least
    finally:
        gf.close()


def test_a_case_with_every_optional_value_reads_the_same(home: Settings) -> None:
    gf = Gridflow(home, clock=lambda: NOW)
    try:
        code = gf.report(grid_id=GRID, actor_id=GRID_WORKER, at=NOW,
                         fields={"title": "马营台村1社水管破裂", "description": "第二行\n描述"})["case"]["code"]  # fmt: skip
        for trigger, actor, fields in [
            ("classify", CENTER, {"category": "water_supply", "priority": "urgent"}),
            ("assign", CENTER, {"assignee": GRID_WORKER}),
            ("accept", GRID_WORKER, {}),
            ("request_extension", GRID_WORKER, {"reason": "等配件", "extend_by": "1d"}),
        ]:
            gf.fire(code, trigger, actor_id=actor, fields=fields, at=NOW)
        card = gf.case_card(code)
        assert card["case"]["pending_extension"], card
        assert quick.case_card(home, code) == card
    finally:
        gf.close()


def test_it_steps_aside_where_it_cannot_be_sure(home: Settings, tmp_path: Path) -> None:
    gf = Gridflow(home, clock=lambda: NOW)
    try:
        code = gf.report(grid_id=GRID, actor_id=GRID_WORKER, fields={"title": "水管"}, at=NOW)["case"]["code"]
    finally:
        gf.close()
    url = home.db_url
    assert case_with_workflow(url, code, HEAD) is not None
    assert case_with_workflow(url, "SL-2026-999999", HEAD) is None  # the application says "no case …"
    assert case_with_workflow(url, "999999", HEAD) is None
    assert case_with_workflow(url, code, "0001") is None  # another schema: the application says to upgrade
    assert case_with_workflow(f"sqlite:///{tmp_path / 'absent.db'}", code, HEAD) is None
    assert not (tmp_path / "absent.db").exists()  # never created
    for other in ("postgresql://gf@127.0.0.1/gf", f"{url}?mode=ro", "sqlite://", "sqlite:///:memory:"):
        assert plain_file(other) is None and case_with_workflow(other, code, HEAD) is None
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"not a database" * 100)
    assert case_with_workflow(f"sqlite:///{damaged}", code, HEAD) is None
    with sqlite3.connect(Path(plain_file(url))) as conn:  # a row the card cannot read: the application decides
        conn.execute("UPDATE cases SET reported_at = 'yesterday' WHERE code = ?", (code,))
    assert case_with_workflow(url, code, HEAD) is None


def test_case_show_loads_neither_sqlalchemy_nor_the_application(home: Settings) -> None:
    gf = Gridflow(home, clock=lambda: NOW)
    try:
        code = gf.report(grid_id=GRID, actor_id=GRID_WORKER, fields={"title": "水管"}, at=NOW)["case"]["code"]
    finally:
        gf.close()
    probe = (
        "import sys; from gridflow.entry import main; sys.argv = ['gridflow', 'case', 'show', sys.argv[1]]\n"
        "try:\n    main()\nfinally:\n"
        "    print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] == 'sqlalchemy' or m == 'gridflow.app'))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
    env.update(GRIDFLOW_HOME=str(home.home), GRIDFLOW_CONFIG_FILE=str(home.home / "absent.yaml"), COLUMNS="100")
    done = subprocess.run([sys.executable, "-c", probe, code], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert code in done.stdout and "可执行操作 next" in done.stdout
    assert "LOADED []" in done.stdout
