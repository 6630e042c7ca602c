"""The application edge on both back ends: init is idempotent, bad files change nothing, the use cases
answer plain values."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from config.settings import Settings
from engine.errors import OrgChartInvalid, WorkflowInvalid
from gridflow.app import Gridflow
from tests.support import FIXTURES, ORG_FILE, Clock, Database

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(db: Database, tmp_path):
    clock = Clock()
    gf = Gridflow(Settings(home=tmp_path, database_url=db.url), clock=clock)
    yield gf
    gf.close()


def test_init_twice_changes_no_row(db, app):
    db.reset(seed=False)
    app.init()
    first = db.snapshot()
    assert len(first["place"]) == 99 and len(first["workflow_definition"]) == 1
    app.clock.tick(days=1)
    report = app.init()
    assert not report.org.changed and not any(w["created"] for w in report.workflows)
    assert db.snapshot() == first


@pytest.mark.parametrize(
    ("fixture", "problem"),
    [
        ("unclosed_bracket.yaml", "malformed YAML"),
        ("python_tags.yaml", "python/object:os.system' is not allowed"),
        ("unknown_guard_effect.yaml", "unknown guard 'os.system'"),
    ],
)
def test_bad_workflow_file_publishes_nothing(db, app, fixture, problem):
    before = db.snapshot()
    with pytest.raises(WorkflowInvalid, match=problem):
        app.publish_workflow(FIXTURES / "workflows" / "invalid" / fixture)
    assert db.snapshot() == before


def test_org_chart_naming_an_unknown_village_loads_nothing(db, app, tmp_path):
    text = ORG_FILE.read_text(encoding="utf-8")
    bad = tmp_path / "bad-org.yaml"
    bad.write_text(text.replace("scope: diping\n", "scope: atlantis\n", 1), encoding="utf-8")
    before = db.snapshot()
    with pytest.raises(
        OrgChartInvalid, match=r"bad-org\.yaml:\d+:\d+: \[people\[\d+\]\.roles\[0\]\.scope\] unknown place 'atlantis'"
    ):
        app.load_org(bad)
    assert db.snapshot() == before


def test_a_new_org_token_is_seen_at_the_next_step(db, app, tmp_path):
    """Deactivating a grid worker in the org chart takes effect at once (the in-memory copy is replaced)."""
    from engine.errors import PermissionDenied

    result = app.report(grid_id="mayingtai-01", actor_id="p-an-yixuan", fields={"title": "第一件"})
    assert result["case"]["code"].endswith("000001")
    text = ORG_FILE.read_text(encoding="utf-8")
    start = text.index("  - id: p-an-yixuan")
    end = text.index("  - id:", start + 10)
    smaller = tmp_path / "org.yaml"
    smaller.write_text(text[:start] + text[end:], encoding="utf-8")
    app.clock.tick(minutes=5)
    assert app.load_org(smaller).people.deactivated == 1
    with pytest.raises(PermissionDenied, match="no longer in the org chart"):
        app.report(grid_id="mayingtai-01", actor_id="p-an-yixuan", fields={"title": "第二件"})


def test_the_case_use_cases_answer_plain_values(db, app):
    """What a face gets is JSON-ready (no ORM row, no session); a step's case is the case as read back."""
    db.reset(seed=False)
    app.init()
    backfilled = app.clock() - timedelta(hours=1)
    reported = app.report(grid_id="mayingtai-01", actor_id="p-an-yixuan", fields={"title": "水管"}, at=backfilled)
    code = reported["case"]["code"]
    assert reported["case"] == app.show_case(code)
    assert reported["event"]["trigger"] == "report" and reported["event"]["received_at"] is not None
    fired = app.fire(code, "classify", actor_id="p-chen-jia", fields={"category": "供水", "priority": "urgent"})
    assert fired["case"] == app.show_case(code) and fired["case"]["version"] == 2
    assert (fired["event"]["from"], fired["event"]["to"]) == ("reported", "classified")
    history = app.case_history(code)
    assert [e["trigger"] for e in history["events"]] == ["report", "classify"]
    assert history["state_labels"] == {"classified": "已立案", "reported": "已上报"}
    answers = [
        reported,
        fired,
        history,
        app.case_card(code),
        app.list_cases(open_only=True),
        app.explain_sla(code),
        app.sla_due(app.clock(), timedelta(days=2)),
        app.sweep_plan(app.clock() + timedelta(days=7)),
        app.org_chart("mayingtai"),
        app.grid_cells("mayingtai"),
        app.list_workflows(),
        app.show_workflow("grid_case"),
        app.calendar_month(2026, 10).as_dict(),
        app.calendar_check().as_dict(),
    ]
    json.dumps(answers)  # raises on anything that is not a plain value
    assert app.workflow_graph("grid_case").startswith("---")


def _grid_case(tmp_path, name: str, **changes) -> Path:
    import yaml

    doc = yaml.safe_load((ROOT / "workflows" / "grid_case.yaml").read_text("utf-8"))
    doc.update(changes)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, width=10**9), encoding="utf-8")
    return path


def test_a_title_at_its_limit_publishes_on_both_back_ends_and_one_past_it_is_refused_before(db, app, tmp_path):
    """The schema's limits are the database's columns: what validates, publishes on SQLite and PostgreSQL."""
    at_limit = app.publish_workflow(_grid_case(tmp_path, "a.yaml", title="题" * 200))
    assert at_limit["created"]
    before = db.snapshot()
    with pytest.raises(WorkflowInvalid, match=r"\[title\].*201 characters\) is too long: at most 200"):
        app.publish_workflow(_grid_case(tmp_path, "b.yaml", title="题" * 201))
    with pytest.raises(WorkflowInvalid, match=r"too long: at most 32 characters"):
        app.publish_workflow(_grid_case(tmp_path, "c.yaml", workflow="w" * 33))
    assert db.snapshot() == before
