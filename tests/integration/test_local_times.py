"""Times people read are local with their zone (``2026-03-01 09:00 CST``); JSON keeps ISO 8601 with the offset.

Before: ``workflow list`` printed ``2026-03-01T01:00:00+00:00`` under "published (UTC)" and
``score history`` printed the run's UTC instant with microseconds. On SQLite and PostgreSQL, in-process,
at a pinned time (2 December 2026, 10:00 in Shanghai).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

import gridflow.app
import gridflow.cli as cli
import gridflow.cli.common as common

NOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
UTC_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}|\+00:00|\d{2}:\d{2}:\d{2}\.\d+")


@pytest.fixture
def run(db, tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("GRIDFLOW_CONFIG_FILE", str(tmp_path / "absent.yaml"))
    monkeypatch.setenv("GRIDFLOW_DATABASE_URL", db.url)
    built: list[gridflow.app.Gridflow] = []

    def build(settings):  # type: ignore[no-untyped-def]
        built.append(gridflow.app.Gridflow(settings, clock=lambda: NOW))
        return built[-1]

    monkeypatch.setattr(common, "Gridflow", build)
    for console in (common.out, common.err):
        monkeypatch.setattr(console, "_width", 120)

    def invoke(*args: str) -> str:
        result = CliRunner().invoke(cli.app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    yield invoke
    for app in built:
        app.close()


def test_workflow_list_shows_when_it_was_published_in_local_time(run):
    table = run("workflow", "list")
    assert "2026-03-01 09:00 CST" in table and "发布 published" in table  # seeded at 01:00 UTC
    assert not UTC_TEXT.search(table), table
    (published,) = [w["published_at"] for w in json.loads(run("workflow", "list", "--json"))]
    assert published == "2026-03-01T01:00:00+00:00"


def test_score_history_shows_when_each_run_was_computed_in_local_time(run):
    run("score", "run", "--period", "2026-11")
    table = run("score", "history", "--period", "2026-11")
    assert "2026-12-02 10:00 CST" in table and "计算 computed" in table
    assert not UTC_TEXT.search(table), table
    (computed,) = [r["computed_at"] for r in json.loads(run("score", "history", "--period", "2026-11", "--json"))]
    assert datetime.fromisoformat(computed) == NOW
