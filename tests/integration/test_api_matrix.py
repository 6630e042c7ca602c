"""Role × endpoint × scope: every operation of the API, called by every role of the org chart on a target
inside and outside their scope, on both back ends.

The table :data:`OPERATIONS` must name every operation the API publishes (a new endpoint without a row
fails :func:`test_the_matrix_covers_every_operation`). For each row and each caller:

- outside the caller's scope a case, a household or a notice does not exist: 404, never 403 or 200;
- a list holds only what the caller sees: the target inside is listed, the one outside is not;
- a write the caller may not make (outside scope, or a role that may not) changes nothing: the rows of
  cases, events, outbox, points, objections, workflows and postings are the same before and after;
- no answer to anyone but the centre carries a whole phone number or ID number;
- without a token every operation but sign-in is 401 and changes nothing.

Every time is explicit: the application's clock is pinned to :data:`NOW`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from config.settings import Settings
from engine.store import models as m
from gridflow.api import create_app
from gridflow.app import Gridflow

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
ROOT = Path(__file__).resolve().parents[2]

# One person per role of the org chart, and the grid cells each sees (None: the whole township).
WORKER, OFFICER, SECRETARY, LEADER, CENTRE = (
    "p-an-yixuan",  # grid_worker of mayingtai-01
    "p-chen-xiaoqin",  # info_officer of mayingtai
    "p-xiong-chenglin",  # village_secretary of mayingtai
    "p-peng-li",  # township_leader
    "p-chen-jia",  # center
)
GRIDS = ("mayingtai-01", "mayingtai-02", "diping-01")  # the targets: my grid, my village's other grid, elsewhere
SEES: dict[str, set[str]] = {
    WORKER: {"mayingtai-01"},
    OFFICER: {"mayingtai-01", "mayingtai-02"},
    SECRETARY: {"mayingtai-01", "mayingtai-02"},
    LEADER: set(GRIDS),
    CENTRE: set(GRIDS),
}
ROLES = {WORKER: "grid_worker", OFFICER: "info_officer", SECRETARY: "village_secretary",
         LEADER: "township_leader", CENTRE: "center"}  # fmt: skip
REPORTERS = {WORKER, OFFICER, CENTRE}  # the workflow's report roles: 网格员, B岗信息员, the centre
PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
ID_NUMBER = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")
QUICK_WORKFLOW = (ROOT / "workflows" / "grid_case.yaml").read_text(encoding="utf-8")


@dataclass
class World:
    gf: Gridflow
    client: TestClient
    tokens: dict[str, str] = field(default_factory=dict)
    cases: dict[str, str] = field(default_factory=dict)  # grid -> case code
    households: dict[str, str] = field(default_factory=dict)  # grid -> household id
    notices: dict[str, int] = field(default_factory=dict)  # "mine" (to WORKER), "other" (to CENTRE)
    objection: int = 0

    def auth(self, person: str) -> dict[str, str]:
        if person not in self.tokens:
            self.tokens[person] = self.gf.create_token(person, f"matrix {person}")["token"]
        return {"Authorization": f"Bearer {self.tokens[person]}"}

    def fingerprint(self) -> tuple[Any, ...]:
        """What a write would change: row counts, case versions, objection decisions, balances."""
        with self.gf.transaction(write=False) as session:
            counts = tuple(
                session.scalar(select(func.count()).select_from(model))
                for model in (
                    m.Case,
                    m.CaseEvent,
                    m.Outbox,
                    m.PointsEntry,
                    m.Redemption,
                    m.Objection,
                    m.WorkflowDefinition,
                    m.Publication,
                    m.ScoreRun,
                    m.Delivery,
                )
            )
            versions = tuple(session.execute(select(m.Case.code, m.Case.version).order_by(m.Case.code)))
            decided = tuple(session.execute(select(m.Objection.id, m.Objection.status).order_by(m.Objection.id)))
            outbox = tuple(
                session.execute(select(m.Outbox.id, m.Outbox.status, m.Outbox.attempts).order_by(m.Outbox.id))
            )
        return counts, versions, decided, outbox


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory) -> Iterator[World]:
    home = tmp_path_factory.mktemp(f"matrix-{request.param}")
    url = request.getfixturevalue("pg_server").create("gridflow_matrix") if request.param == "postgresql" else ""
    settings = Settings(home=home, database_url=url, notices_file=home / "notices.log")
    gf = Gridflow(settings, clock=lambda: NOW)
    gf.init()
    gf.import_archive(ROOT / "config" / "archive" / "shengli.csv", if_empty=True)
    gf.load_store_goods(ROOT / "config" / "store.yaml")
    gf.publish("quarterly", "2026Q3")
    with TestClient(create_app(gf), raise_server_exceptions=False) as client:
        w = World(gf, client)
        reporter = {"mayingtai-01": WORKER, "mayingtai-02": "p-wang-hongmei", "diping-01": CENTRE}
        for grid in GRIDS:
            made = client.post(
                "/api/v1/cases", headers=w.auth(reporter[grid]), json={"grid": grid, "title": f"矩阵 {grid}"}
            )
            assert made.status_code == 201, made.text
            w.cases[grid] = made.json()["code"]
            with gf.transaction(write=False) as session:
                w.households[grid] = session.scalar(
                    select(m.Household.id).where(m.Household.grid_id == grid).order_by(m.Household.id).limit(1)
                )
        with gf.transaction(write=False) as session:
            w.notices["mine"] = session.scalar(select(func.min(m.Outbox.id)).where(m.Outbox.recipient_id == WORKER))
            w.notices["other"] = session.scalar(select(func.min(m.Outbox.id)).where(m.Outbox.recipient_id == CENTRE))
        assert all(w.households.values()) and all(w.notices.values()), (w.households, w.notices)
        lodged = client.post(
            "/api/v1/postings/quarterly/2026Q3/objections",
            headers=w.auth(SECRETARY),
            json={"subject": "grid:mayingtai-01", "reason": "数据有误"},
        )
        assert lodged.status_code == 201, lodged.text
        w.objection = lodged.json()["id"]
        yield w
    gf.close()


# -- the table -------------------------------------------------------------------------------------------

# Scope kinds: "case", "household", "notice" (a path naming one), "cases", "households", "notices" (lists),
# "anyone" (any signed-in person, township-wide public record), "centre" (the centre only), "report"
# (a new case in a grid), "sign-in" (no token at all).


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    scope: str
    body: Callable[[World], dict[str, Any]] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    writes: bool = False


def _step(w: World) -> dict[str, Any]:
    return {"trigger": "classify", "fields": {"category": "water_supply"}}


# fmt: off
OPERATIONS = [
    Op("POST", "/api/v1/auth/password", "sign-in", lambda w: {"phone": "13800000011", "password": "不对的密码123"}),
    Op("POST", "/api/v1/auth/code", "sign-in", lambda w: {"phone": "13900000000"}),
    Op("POST", "/api/v1/auth/code/verify", "sign-in", lambda w: {"phone": "13900000000", "code": "000000"}),
    Op("GET", "/api/v1/me", "anyone"),
    Op("GET", "/api/v1/cases", "cases", params={"limit": 200}),
    Op("POST", "/api/v1/cases", "report", writes=True),
    Op("GET", "/api/v1/cases/{code}", "case"),
    Op("POST", "/api/v1/cases/{code}/steps", "case", _step, writes=True),
    Op("GET", "/api/v1/cases/{code}/history", "case"),
    Op("GET", "/api/v1/cases/{code}/sla", "case"),
    Op("GET", "/api/v1/cases/{code}/allowed", "case"),
    Op("GET", "/api/v1/org", "anyone"),
    Op("GET", "/api/v1/workflows", "anyone"),
    Op("POST", "/api/v1/workflows", "centre", lambda w: {"yaml": QUICK_WORKFLOW.replace("网格", "网格 ", 1)},
       writes=True),
    Op("GET", "/api/v1/workflows/{name}", "anyone"),
    Op("POST", "/api/v1/workflows/validate", "anyone", lambda w: {"yaml": QUICK_WORKFLOW}),
    Op("GET", "/api/v1/notices", "notices", params={"limit": 500}),
    Op("GET", "/api/v1/notices/{notice_id}", "notice"),
    Op("POST", "/api/v1/notices/{notice_id}/retry", "centre", writes=True),
    Op("GET", "/api/v1/scores/{period}", "anyone", params={"by": "grid"}),
    Op("GET", "/api/v1/scores/{period}/history", "anyone"),
    Op("GET", "/api/v1/postings", "anyone"),
    Op("GET", "/api/v1/postings/{kind}/{period}", "anyone"),
    Op("POST", "/api/v1/postings/{kind}/{period}/objections", "anyone",
       lambda w: {"subject": "grid:diping-01", "reason": "数据有误"}, writes=True),
    Op("POST", "/api/v1/objections/{objection_id}/decision", "centre",
       lambda w: {"uphold": False, "note": "经核实无误"}, writes=True),
    Op("GET", "/api/v1/households", "households", params={"limit": 500}),
    Op("GET", "/api/v1/households/{household}", "household"),
    Op("GET", "/api/v1/households/{household}/points", "household"),
    Op("POST", "/api/v1/households/{household}/points", "household",
       lambda w: {"rule": "clean_courtyard", "on": "2026-11-30", "evidence": "照片"}, writes=True),
    Op("POST", "/api/v1/households/{household}/redemptions", "household",
       lambda w: {"items": {"soap": 1}}, writes=True),
]
# fmt: on


def _path(op: Op, w: World, target: str) -> str:
    """The op's path for a target: a grid (cases, households) or "mine"/"other" (notices)."""
    values = {
        "code": w.cases.get(target, ""),
        "household": w.households.get(target, ""),
        "notice_id": w.notices.get(target, 0),
        "name": "grid_case",
        "period": "2026Q3" if "postings" in op.path else "2026-09",
        "kind": "quarterly",
        "objection_id": w.objection,
    }
    return op.path.format(**values)


def _call(w: World, op: Op, person: str | None, target: str) -> httpx.Response:
    headers = w.auth(person) if person else {}
    body = op.body(w) if op.body else None
    if op.path == "/api/v1/cases" and op.method == "POST":
        body = {"grid": target, "title": f"矩阵上报 {target}"}
    params = dict(op.params)
    if op.scope == "households":  # asking for a grid outside one's scope by name must not reach it either
        params["grid"] = target
    return w.client.request(op.method, _path(op, w, target), headers=headers, json=body, params=params)


def _targets(op: Op) -> tuple[str, ...]:
    if op.scope in ("notice", "notices") or "{notice_id}" in op.path:
        return ("mine", "other")
    if op.scope in ("case", "household", "cases", "households", "report"):
        return GRIDS
    return ("",)


def _sees(op: Op, person: str, target: str) -> bool:
    if op.scope in ("notice", "notices"):
        return person == CENTRE or target == "mine" and person == WORKER
    if op.scope == "centre":
        return person == CENTRE
    if target in GRIDS:
        return target in SEES[person]
    return True


def _label(op: Op) -> str:
    return f"{op.method} {op.path}"


# -- the tests -------------------------------------------------------------------------------------------


def test_the_matrix_covers_every_operation(world: World) -> None:
    published = {
        f"{method.upper()} {path}"
        for path, item in world.client.get("/api/v1/openapi.json").json()["paths"].items()
        for method in item
    }
    assert published == {_label(op) for op in OPERATIONS}, "add a row to OPERATIONS for each new operation"


@pytest.mark.parametrize("person", list(ROLES), ids=list(ROLES.values()))
def test_every_role_on_every_operation_inside_and_outside_its_scope(world: World, person: str) -> None:
    wrong: list[str] = []
    for op in OPERATIONS:
        if op.scope == "sign-in":
            continue
        for target in _targets(op):
            before = world.fingerprint() if op.writes else None
            answer = _call(world, op, person, target)
            sees, where = _sees(op, person, target), f"{_label(op)} [{target or '-'}] as {ROLES[person]}"
            status = answer.status_code
            if status >= 500:
                wrong.append(f"{where}: {status} {answer.text[:200]}")
                continue
            if op.scope in ("case", "household", "notice"):
                if not sees and status != 404:
                    wrong.append(f"{where}: outside scope must be 404, got {status} {answer.text[:200]}")
                if sees and status == 404:
                    wrong.append(f"{where}: inside scope got 404 {answer.text[:200]}")
                if sees and op.method == "GET" and status != 200:
                    wrong.append(f"{where}: a read inside scope got {status} {answer.text[:200]}")
            elif op.scope in ("cases", "households", "notices"):
                wrong += _listed(world, op, answer, target, sees, where)
            elif op.scope == "report":
                expected = {201} if sees and person in REPORTERS else {403, 404}
                if status not in expected:
                    wrong.append(f"{where}: expected {sorted(expected)}, got {status} {answer.text[:200]}")
            elif op.scope == "centre":
                if not sees and status not in (403, 404):
                    wrong.append(f"{where}: the centre only, got {status} for another role")
                if sees and status in (401, 403, 404):
                    wrong.append(f"{where}: the centre was refused: {status} {answer.text[:200]}")
            elif op.scope == "anyone" and status >= 400:
                wrong.append(f"{where}: anyone signed in may, got {status} {answer.text[:200]}")
            if op.writes and not (200 <= status < 300) and world.fingerprint() != before:
                wrong.append(f"{where}: refused with {status} but changed something")
            if person != CENTRE and (PHONE.search(answer.text) or ID_NUMBER.search(answer.text)):
                found = (PHONE.search(answer.text) or ID_NUMBER.search(answer.text)).group()  # type: ignore[union-attr]
                wrong.append(f"{where}: personal data unmasked for {ROLES[person]}: {found}")
    assert not wrong, "\n".join(wrong)


def _listed(w: World, op: Op, answer: httpx.Response, target: str, sees: bool, where: str) -> list[str]:
    if answer.status_code != 200:
        return [f"{where}: a list got {answer.status_code} {answer.text[:200]}"]
    body = answer.json()
    if op.scope == "cases":
        listed, wanted = {c["code"] for c in body["items"]}, w.cases[target]
    elif op.scope == "households":
        listed, wanted = {h["id"] for h in body["households"]}, w.households[target]
    else:
        listed, wanted = {n["id"] for n in body["notices"]}, w.notices[target]
    if (wanted in listed) != sees:
        return [f"{where}: {wanted} {'missing from' if sees else 'leaked into'} the list"]
    return []


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op.scope != "sign-in"], ids=_label)
def test_without_a_token_every_operation_is_401_and_changes_nothing(world: World, op: Op) -> None:
    target = _targets(op)[-1]
    before = world.fingerprint() if op.writes else None
    answer = _call(world, op, None, target)
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    if op.writes:
        assert world.fingerprint() == before


def test_sign_in_needs_no_token_and_a_wrong_secret_signs_no_one_in(world: World) -> None:
    for op in (op for op in OPERATIONS if op.scope == "sign-in"):
        answer = _call(world, op, None, "")
        assert answer.status_code in (202, 401), (_label(op), answer.text)
        assert "token" not in answer.json() or answer.status_code == 202, answer.text
