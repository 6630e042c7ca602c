"""Writing the org chart to SQLite and PostgreSQL: idempotent, deactivate never delete.

``db`` is already seeded with config/org/shengli.yaml and the default workflow.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from config.settings import Settings
from engine import cases
from engine.errors import OrgChartInvalid
from engine.org import load_org_file
from engine.store import org_repo
from engine.store.models import Case, Person, Place, RoleAssignment
from gridflow.app import Gridflow
from tests.support import GRID, GRID_WORKER, ORG_FILE, T0, calendars

UNTOUCHED_BY_ORG = ("workflow_definition", "case_counter", "cases", "case_event")


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected {old!r} once in the org chart"
    return text.replace(old, new)


def modified_chart(tmp_path: Path) -> Path:
    """shengli.yaml with a person and a unit grid removed, a grid renamed and a role moved."""
    text = ORG_FILE.read_text(encoding="utf-8")
    text = edit(text, "        name: 马营台村第2单元格\n", "        name: 马营台村第二单元格\n")
    text = edit(text, "  - id: unit-03\n    name: 卫生院单元格\n    unit: 胜利乡卫生院\n", "")
    text = edit(
        text,
        "      - role: grid_worker\n        scope: unit-03\n",
        "      - role: grid_worker\n        scope: unit-02\n",
    )
    text = edit(
        text,
        '  - id: p-yang-xiaodong\n    name: 杨晓东\n    phone: "13800000002"\n'
        "    email: yang.xiaodong@shengli.example.org\n    wecom: yangxiaodong\n    title: 网格管理中心副主任\n"
        "    roles:\n      - role: center\n        scope: shengli\n",
        "",
    )
    path = tmp_path / "shengli-modified.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def apply(db, path: Path, minutes: int = 0) -> org_repo.OrgLoadResult:
    chart = load_org_file(path)
    with db.sessions.begin() as session:
        return org_repo.apply_org_chart(session, chart, T0 + timedelta(minutes=minutes))


def roles_of(db, person_id: str) -> set[tuple[str, str]]:
    with db.session() as session:
        rows = session.scalars(select(RoleAssignment).where(RoleAssignment.person_id == person_id))
        return {(r.role, r.place_id) for r in rows}


def test_same_chart_again_changes_nothing(db):
    before = db.snapshot()
    result = apply(db, ORG_FILE)
    assert not result.changed
    assert (str(result.places), str(result.people)) == ("0 added, 0 updated, 0 deactivated",) * 2
    assert (result.roles_added, result.roles_removed) == (0, 0)
    assert db.snapshot() == before


def test_modified_chart_updates_deactivates_and_replaces_roles(db, tmp_path):
    before = db.snapshot()
    result = apply(db, modified_chart(tmp_path), minutes=1)

    assert result.changed
    assert (result.places.added, result.places.updated, result.places.deactivated) == (0, 1, 1)
    assert (result.people.added, result.people.updated, result.people.deactivated) == (0, 0, 1)
    assert (result.roles_added, result.roles_removed) == (1, 2)

    with db.session() as session:
        assert session.get(Place, "mayingtai-02").name == "马营台村第二单元格"
        gone_grid = session.get(Place, "unit-03")
        assert gone_grid is not None and gone_grid.active is False
        gone_person = session.get(Person, "p-yang-xiaodong")
        assert gone_person is not None and gone_person.active is False
        assert gone_person.phone == "13800000002"  # kept as it was, only deactivated
        assert session.get(Person, "p-tan-mingchao").active is True
    assert roles_of(db, "p-tan-mingchao") == {("grid_worker", "unit-02")}
    assert roles_of(db, "p-yang-xiaodong") == set()

    after = db.snapshot()
    assert len(after["place"]) == len(before["place"])  # never deleted
    assert len(after["person"]) == len(before["person"])
    assert len(after["role_assignment"]) == len(before["role_assignment"]) - 1
    for table in UNTOUCHED_BY_ORG:
        assert after[table] == before[table], table


def test_modified_chart_twice_is_idempotent(db, tmp_path):
    path = modified_chart(tmp_path)
    assert apply(db, path, minutes=1).changed
    settled = db.snapshot()
    again = apply(db, path, minutes=2)
    assert not again.changed
    assert db.snapshot() == settled


def test_original_chart_reactivates_and_restores_roles(db, tmp_path):
    seeded = db.snapshot()
    apply(db, modified_chart(tmp_path), minutes=1)
    result = apply(db, ORG_FILE, minutes=2)
    # places: mayingtai-02 renamed back, unit-03 active again; people: p-yang-xiaodong active again
    assert (result.places.updated, result.people.updated) == (2, 1)
    assert (result.places.added, result.people.added) == (0, 0)
    assert (result.roles_added, result.roles_removed) == (2, 1)
    after = db.snapshot()
    for table in ("place", "person"):
        assert after[table] == seeded[table], table
    key = lambda row: row[1:]  # noqa: E731 - role rows without their surrogate id
    assert sorted(map(key, after["role_assignment"])) == sorted(map(key, seeded["role_assignment"]))


def test_deactivating_a_person_keeps_their_cases(db, tmp_path):
    with db.sessions.begin() as session:
        case = cases.report(
            session, grid_id=GRID, actor_id=GRID_WORKER, fields={"title": "水管破裂"}, at=T0, calendars=calendars()
        ).case
        case_id = case.id
    text = ORG_FILE.read_text(encoding="utf-8")
    text = edit(
        text,
        '  - id: p-an-yixuan\n    name: 安怡萱\n    phone: "13800000011"\n'
        "    email: an.yixuan@shengli.example.org\n    wecom: anyixuan\n    title: 网格员\n"
        "    roles:\n      - role: grid_worker\n        scope: mayingtai-01\n",
        "",
    )
    path = tmp_path / "without-an-yixuan.yaml"
    path.write_text(text, encoding="utf-8")

    result = apply(db, path, minutes=1)

    assert (result.people.deactivated, result.roles_removed) == (1, 1)
    with db.session() as session:
        assert session.get(Case, case_id).reporter_id == GRID_WORKER
        assert session.get(Person, GRID_WORKER).active is False


@pytest.fixture
def bad_chart(tmp_path) -> Path:
    text = ORG_FILE.read_text(encoding="utf-8")
    text = edit(text, "        name: 马营台村第2单元格\n", "        name: 马营台村第二单元格\n")  # a valid change...
    text = edit(
        text, "      - role: grid_worker\n        scope: unit-03\n", "      - role: grid_boss\n        scope: unit-03\n"
    )  # ...and an invalid one
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_chart_raises_before_anything_changes(db, bad_chart):
    before = db.snapshot()
    with pytest.raises(OrgChartInvalid, match=r"bad\.yaml:\d+:15: \[people\[7\]\.roles\[0\]\.role\] unknown role"):
        apply(db, bad_chart, minutes=1)
    assert db.snapshot() == before


def test_bad_chart_through_the_app_changes_nothing(db, bad_chart, tmp_path):
    before = db.snapshot()
    gf = Gridflow(Settings(home=tmp_path, database_url=db.url), clock=lambda: T0)
    try:
        with pytest.raises(OrgChartInvalid, match="unknown role 'grid_boss'"):
            gf.load_org(bad_chart)
    finally:
        gf.close()
    assert db.snapshot() == before
