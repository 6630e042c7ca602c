"""The HTTP API under /api/v1/: sign-in, tokens, scope, ETags, idempotency, problems — on both back ends,
in-process (Starlette's test client) and over real HTTP (uvicorn on loopback, httpx).

Every time is explicit: the application's clock is pinned to :data:`NOW` and moved by the tests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from config.settings import Settings
from engine.store.models import AuthEvent, Case, Person, PointsEntry
from gridflow.api import create_app
from gridflow.app import Gridflow

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
GRID = "mayingtai-01"
WORKER = "p-an-yixuan"  # grid worker of mayingtai-01
OTHER_WORKER = "p-wang-hongmei"  # grid worker of mayingtai-02
SECRETARY = "p-xiong-chenglin"  # village secretary of mayingtai
OTHER_SECRETARY = "p-ran-yuhang"  # village secretary of diping
CENTRE = "p-chen-jia"
LEADER = "p-peng-li"
WORKER_PHONE = "13800000011"


@dataclass
class Api:
    gf: Gridflow
    client: TestClient
    settings: Settings
    now: list[datetime] = field(default_factory=lambda: [NOW])
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, person: str) -> str:
        if person not in self.tokens:
            self.tokens[person] = self.gf.create_token(person, f"test {person}")["token"]
        return self.tokens[person]

    def auth(self, person: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(person)}", **extra}

    def report(self, person: str = WORKER, grid: str = GRID, title: str = "水管破裂", **extra: object) -> dict:
        answer = self.client.post(
            "/api/v1/cases", headers=self.auth(person), json={"grid": grid, "title": title, **extra}
        )
        assert answer.status_code == 201, answer.text
        return answer.json()

    def count(self, model: object, *where: object) -> int:
        with self.gf.transaction(write=False) as session:
            return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)  # type: ignore[arg-type]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request, tmp_path_factory) -> Iterator[Api]:
    home = tmp_path_factory.mktemp(f"api-{request.param}")
    url = request.getfixturevalue("pg_server").create("gridflow_api") if request.param == "postgresql" else ""
    settings = Settings(home=home, database_url=url, notices_file=home / "notices.log")
    now = [NOW]
    gf = Gridflow(settings, clock=lambda: now[0])
    gf.init()
    with TestClient(create_app(gf), raise_server_exceptions=False) as client:
        yield Api(gf, client, settings, now)
    gf.close()


@pytest.fixture
def fresh(api: Api) -> Iterator[Api]:
    """The module's API with the clock back at NOW afterwards."""
    yield api
    api.now[0] = NOW


def problem(answer: httpx.Response, status: int) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert {"type", "title", "status", "detail", "code"} <= body.keys() and body["status"] == status
    return body


# -- sign-in ---------------------------------------------------------------------------------------------


def test_a_password_signs_in_and_the_session_says_who_it_is(fresh: Api) -> None:
    fresh.gf.set_password(WORKER, "山里的信号不好123")
    answer = fresh.client.post("/api/v1/auth/password", json={"phone": WORKER_PHONE, "password": "山里的信号不好123"})
    assert answer.status_code == 200, answer.text
    session = answer.json()
    assert session["token"].startswith("gfs_") and session["kind"] == "session" and session["person"] == WORKER
    me = fresh.client.get("/api/v1/me", headers={"Authorization": f"Bearer {session['token']}"}).json()
    assert me == {
        "person": WORKER,
        "name": "安怡萱",
        "roles": [{"role": "grid_worker", "place": GRID}],
        "township_wide": False,
    }


def test_wrong_passwords_are_refused_alike_then_rate_limited_and_every_attempt_is_audited(fresh: Api) -> None:
    fresh.gf.set_password(OTHER_WORKER, "correct horse battery")
    fresh.now[0] = NOW + timedelta(hours=1)
    phone = "13800000012"
    before = fresh.count(AuthEvent, AuthEvent.kind == "sign_in.failed")
    for _ in range(5):
        body = problem(fresh.client.post("/api/v1/auth/password", json={"phone": phone, "password": "wrong"}), 401)
        assert body["code"] == "NotSignedIn" and "wrong phone number or password" in body["detail"]
    unknown = problem(fresh.client.post("/api/v1/auth/password", json={"phone": "13999999999", "password": "x"}), 401)
    assert unknown["detail"] == body["detail"]  # nobody learns which phones have accounts
    limited = fresh.client.post("/api/v1/auth/password", json={"phone": phone, "password": "correct horse battery"})
    assert problem(limited, 429)["code"] == "TooManyAttempts" and int(limited.headers["retry-after"]) > 0
    assert fresh.count(AuthEvent, AuthEvent.kind == "sign_in.failed") == before + 6
    assert fresh.count(AuthEvent, AuthEvent.kind == "sign_in.refused") >= 1
    fresh.now[0] = NOW + timedelta(hours=2)  # the window has passed
    assert (
        fresh.client.post(
            "/api/v1/auth/password", json={"phone": phone, "password": "correct horse battery"}
        ).status_code
        == 200
    )


def test_an_sms_code_signs_in_once(fresh: Api) -> None:
    fresh.now[0] = NOW + timedelta(hours=3)
    sent = fresh.client.post("/api/v1/auth/code", json={"phone": "13800000013"})
    assert sent.status_code == 202 and sent.json()["expires_in_s"] == 300
    log = Path(fresh.settings.notices_path).read_text(encoding="utf-8")
    code = log.rsplit("验证码为 ", 1)[1][:6]
    assert code.isdigit()
    again = fresh.client.post("/api/v1/auth/code", json={"phone": "13800000013"})
    assert problem(again, 429)["code"] == "TooManyAttempts"  # one code a minute
    signed = fresh.client.post("/api/v1/auth/code/verify", json={"phone": "13800000013", "code": code})
    assert signed.status_code == 200, signed.text
    reused = fresh.client.post("/api/v1/auth/code/verify", json={"phone": "13800000013", "code": code})
    assert problem(reused, 401)["code"] == "NotSignedIn"
    assert code not in json.dumps([e for e in _audit(fresh)])  # the audit never holds the code


def _audit(api: Api) -> list[dict]:
    with api.gf.transaction(write=False) as session:
        return [
            {"kind": e.kind, "subject": e.subject, "detail": e.detail}
            for e in session.scalars(select(AuthEvent).order_by(AuthEvent.id))
        ]


def test_expired_revoked_unknown_and_deactivated_tokens_get_401(fresh: Api) -> None:
    short = fresh.gf.create_token(CENTRE, "short", timedelta(minutes=5))
    revoked = fresh.gf.create_token(CENTRE, "revoked")
    fresh.gf.revoke_token(revoked["id"])
    fresh.now[0] = NOW + timedelta(minutes=10)
    for token, why in ((short["token"], "expired"), (revoked["token"], "revoked"), ("gft_nope", "unknown")):
        body = problem(fresh.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}), 401)
        assert why in body["detail"]
    assert problem(fresh.client.get("/api/v1/me"), 401)["code"] == "NotSignedIn"
    person = fresh.gf.create_token("p-tang-lijuan", "to be deactivated")
    with fresh.gf.transaction() as session:
        session.execute(update(Person).where(Person.id == "p-tang-lijuan").values(active=False))
    try:
        body = problem(fresh.client.get("/api/v1/me", headers={"Authorization": f"Bearer {person['token']}"}), 401)
        assert "not active" in body["detail"]
    finally:
        with fresh.gf.transaction() as session:
            session.execute(update(Person).where(Person.id == "p-tang-lijuan").values(active=True))


# -- scope -----------------------------------------------------------------------------------------------

SEES = {WORKER: True, OTHER_WORKER: False, SECRETARY: True, OTHER_SECRETARY: False, CENTRE: True, LEADER: True}


@pytest.mark.parametrize("person", sorted(SEES))
def test_outside_ones_scope_a_case_does_not_exist(api: Api, person: str) -> None:
    case = api.report(title=f"scope {person}")
    code, sees = case["code"], SEES[person]
    reads = [f"/api/v1/cases/{code}", f"/api/v1/cases/{code}/history", f"/api/v1/cases/{code}/allowed"]
    for path in reads:
        answer = api.client.get(path, headers=api.auth(person))
        if sees:
            assert answer.status_code == 200, (path, answer.text)
        else:
            assert problem(answer, 404)["code"] == "CaseNotFound", path
    listed = api.client.get("/api/v1/cases", headers=api.auth(person), params={"limit": 200}).json()["items"]
    assert (code in {c["code"] for c in listed}) is sees
    step = api.client.post(
        f"/api/v1/cases/{code}/steps",
        headers=api.auth(person),
        json={"trigger": "classify", "fields": {"category": "water_supply"}},
    )
    if not sees:
        assert problem(step, 404)["code"] == "CaseNotFound"  # never "forbidden but here"
        assert api.client.get(f"/api/v1/cases/{code}", headers=api.auth(CENTRE)).json()["version"] == 1


def test_the_allowed_steps_are_those_of_the_callers_roles(api: Api) -> None:
    code = api.report(title="allowed")["code"]
    worker = api.client.get(f"/api/v1/cases/{code}/allowed", headers=api.auth(WORKER)).json()["allowed"]
    centre = api.client.get(f"/api/v1/cases/{code}/allowed", headers=api.auth(CENTRE)).json()["allowed"]
    assert "classify" not in {a["trigger"] for a in worker}
    assert "classify" in {a["trigger"] for a in centre}


# -- ETag, If-Match, idempotency -------------------------------------------------------------------------


def test_a_step_with_a_stale_if_match_gets_412_and_the_case_as_it_is(api: Api) -> None:
    code = api.report(title="etag")["code"]
    shown = api.client.get(f"/api/v1/cases/{code}", headers=api.auth(CENTRE))
    assert shown.headers["etag"] == '"v1"'
    body = {"trigger": "classify", "fields": {"category": "water_supply", "priority": "normal"}}
    first = api.client.post(f"/api/v1/cases/{code}/steps", headers=api.auth(CENTRE, **{"If-Match": '"v1"'}), json=body)
    assert first.status_code == 200, first.text
    assert first.headers["etag"] == '"v2"' and first.json()["status"] == "classified"
    stale = api.client.post(f"/api/v1/cases/{code}/steps", headers=api.auth(CENTRE, **{"If-Match": '"v1"'}), json=body)
    found = problem(stale, 412)
    assert found["current"]["version"] == 2 and found["current"]["status"] == "classified"
    assert stale.headers["etag"] == '"v2"'
    bad = api.client.post(f"/api/v1/cases/{code}/steps", headers=api.auth(CENTRE, **{"If-Match": "v2"}), json=body)
    assert "If-Match" in problem(bad, 422)["detail"]


def test_a_retried_report_creates_one_case_and_gets_the_first_answer(api: Api) -> None:
    before = api.count(Case)
    body = {"grid": GRID, "title": "弱信号重试"}
    headers = api.auth(WORKER, **{"Idempotency-Key": "phone-7f3a-0001"})
    answers = [api.client.post("/api/v1/cases", headers=headers, json=body) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert len({a.json()["code"] for a in answers}) == 1
    assert answers[1].headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in answers[0].headers
    assert answers[1].headers["location"] == answers[0].headers["location"]
    assert api.count(Case) == before + 1
    other = api.client.post("/api/v1/cases", headers=headers, json={**body, "title": "另一件事"})
    assert problem(other, 422)["code"] == "KeyReused"
    assert api.count(Case) == before + 1


def test_concurrent_copies_of_one_request_do_the_work_once(api: Api) -> None:
    before = api.count(Case)
    headers = api.auth(WORKER, **{"Idempotency-Key": "phone-7f3a-0002"})
    results: list[int] = []

    def send() -> None:
        results.append(
            api.client.post("/api/v1/cases", headers=headers, json={"grid": GRID, "title": "并发"}).status_code
        )

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert api.count(Case) == before + 1
    assert set(results) <= {201, 409} and 201 in results


def test_a_retried_step_is_taken_once(api: Api) -> None:
    code = api.report(title="step retry")["code"]
    headers = api.auth(CENTRE, **{"Idempotency-Key": f"step-{code}"})
    body = {"trigger": "classify", "fields": {"category": "water_supply", "priority": "normal"}}
    first = api.client.post(f"/api/v1/cases/{code}/steps", headers=headers, json=body)
    second = api.client.post(f"/api/v1/cases/{code}/steps", headers=headers, json=body)
    assert first.status_code == second.status_code == 200
    assert second.json()["version"] == 2
    history = api.client.get(f"/api/v1/cases/{code}/history", headers=api.auth(CENTRE)).json()["events"]
    assert [e["trigger"] for e in history] == ["report", "classify"]


# -- bad input -------------------------------------------------------------------------------------------


def test_bad_bodies_get_clear_problems_and_change_nothing(api: Api) -> None:
    before = api.count(Case)
    headers = api.auth(WORKER)
    invalid = problem(
        api.client.post("/api/v1/cases", headers=headers, json={"grid": GRID, "title": "", "colour": "red"}), 422
    )
    assert {e["field"] for e in invalid["errors"]} == {"body.title", "body.colour"}  # every problem at once
    assert (
        problem(
            api.client.post(
                "/api/v1/cases",
                headers=headers,
                content=b"{not json",
            ),
            415,
        )["code"]
        == "UnsupportedMediaType"
    )
    broken = api.client.post(
        "/api/v1/cases", headers={**headers, "Content-Type": "application/json"}, content=b"{not json"
    )
    assert problem(broken, 422)["code"] == "RequestInvalid"
    huge = api.client.post(
        "/api/v1/cases", headers={**headers, "Content-Type": "application/json"}, content=b"[" + b"1," * 600_000 + b"1]"
    )
    assert problem(huge, 413)["code"] == "BodyTooLarge"
    wrong_grid = problem(
        api.client.post("/api/v1/cases", headers=headers, json={"grid": "mayingtai-02", "title": "x"}), 403
    )
    assert "mayingtai-02" in wrong_grid["detail"]
    assert (
        problem(api.client.get("/api/v1/cases", headers=headers, params={"cursor": "garbage"}), 422)["code"]
        == "InputError"
    )
    assert problem(api.client.get("/api/v1/nothing", headers=headers), 404)["code"] == "NoSuchPath"
    assert api.count(Case) == before


@pytest.mark.parametrize(
    "text", ["'; DROP TABLE cases; --", "{{ 7*7 }}{% raw %}", "<script>alert(1)</script>", "x' OR '1'='1"]
)
def test_hostile_strings_are_kept_as_text(api: Api, text: str) -> None:
    case = api.report(title=text, description=text)
    shown = api.client.get(f"/api/v1/cases/{case['code']}", headers=api.auth(WORKER)).json()
    assert shown["title"] == text and shown["description"] == text
    assert api.count(Case) > 0


@pytest.mark.parametrize("text", ["\u202e反向", "清屏\x1b[2J", "\x9b31m", "响铃\x07"])
def test_control_and_bidi_characters_are_refused_with_the_field_and_change_nothing(api: Api, text: str) -> None:
    before = api.count(Case)
    answer = api.client.post("/api/v1/cases", headers=api.auth(WORKER), json={"grid": GRID, "title": text})
    body = problem(answer, 422)
    assert "title (事件标题) contains an unprintable character U+" in body["detail"], body
    assert api.count(Case) == before


# -- listing ---------------------------------------------------------------------------------------------


def test_lists_filter_and_page_with_a_cursor_without_repeats(api: Api) -> None:
    for i in range(7):
        api.report(title=f"page {i}")
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        params = {"limit": 3, "grid": GRID, **({"cursor": cursor} if cursor else {})}
        page = api.client.get("/api/v1/cases", headers=api.auth(CENTRE), params=params).json()
        seen += [c["code"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) >= 7
    assert seen == sorted(seen, reverse=True)  # newest first, as reported
    village = api.client.get("/api/v1/cases", headers=api.auth(CENTRE), params={"village": "diping"}).json()
    assert village["items"] == []
    month = api.client.get("/api/v1/cases", headers=api.auth(CENTRE), params={"period": "2026-11", "limit": 200})
    assert month.status_code == 200 and len(month.json()["items"]) >= 7  # reported 2026-11-30 (the clock)
    assert api.client.get("/api/v1/cases", headers=api.auth(CENTRE), params={"period": "2026-12"}).json()["items"] == []
    for year_or_quarter in ("2026", "2026Q4"):
        params = {"period": year_or_quarter}
        assert api.client.get("/api/v1/cases", headers=api.auth(CENTRE), params=params).status_code == 200
    assert (
        "period"
        in problem(api.client.get("/api/v1/cases", headers=api.auth(CENTRE), params={"period": "26-x"}), 422)["detail"]
    )
    by_status = api.client.get("/api/v1/cases", headers=api.auth(CENTRE), params={"status": "reported", "limit": 200})
    assert all(c["status"] == "reported" for c in by_status.json()["items"])


# -- documentation -----------------------------------------------------------------------------------------


def test_the_openapi_and_its_page_are_served_without_the_internet(api: Api) -> None:
    spec = api.client.get("/api/v1/openapi.json").json()
    assert "/api/v1/cases/{code}/steps" in spec["paths"]
    page = api.client.get("/api/v1/docs").text
    assert "cdn." not in page and "unpkg" not in page and "/api/v1/docs/assets/swagger-ui-bundle.js" in page
    script = api.client.get("/api/v1/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000


# -- real HTTP ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(api: Api) -> Iterator[str]:
    """The same application under a real uvicorn on a loopback port."""
    from gridflow.api.embedded import EmbeddedApi

    server = EmbeddedApi(api.gf, "127.0.0.1", 0)  # what `gridflow up` runs: a bounded wait until it listens
    server.start()
    yield server.url
    server.stop()


def test_over_real_http_a_worker_reports_and_the_centre_classifies(api: Api, served: str) -> None:
    with httpx.Client(base_url=served, timeout=30) as http:
        made = http.post(
            "/api/v1/cases",
            headers=api.auth(WORKER, **{"Idempotency-Key": "real-1"}),
            json={"grid": GRID, "title": "真HTTP"},
        )
        assert made.status_code == 201 and made.headers["location"].startswith("/api/v1/cases/")
        assert made.headers["x-content-type-options"] == "nosniff"
        code = made.json()["code"]
        step = http.post(
            f"/api/v1/cases/{code}/steps",
            headers=api.auth(CENTRE, **{"If-Match": made.headers["etag"]}),
            json={"trigger": "classify", "fields": {"category": "water_supply", "priority": "urgent"}},
        )
        assert step.status_code == 200, step.text
        assert step.json()["status"] == "classified" and step.headers["etag"] == '"v2"'
        listed = http.get("/api/v1/cases", headers=api.auth(SECRETARY), params={"status": "classified"}).json()
        assert code in {c["code"] for c in listed["items"]}


# -- workflows -------------------------------------------------------------------------------------------

QUICK = (Path(__file__).resolve().parents[2] / "workflows" / "grid_case.yaml").read_text(encoding="utf-8")


def test_an_uploaded_workflow_is_validated_with_located_problems_and_published_by_the_centre(api: Api) -> None:
    broken = QUICK.replace("initial: true", "initial: maybe", 1)
    checked = api.client.post(
        "/api/v1/workflows/validate", headers=api.auth(WORKER), json={"yaml": broken, "file": "mine.yaml"}
    )
    assert checked.status_code == 200 and checked.json()["valid"] is False
    assert any(p.startswith("mine.yaml:") for p in checked.json()["problems"])
    fine = api.client.post("/api/v1/workflows/validate", headers=api.auth(WORKER), json={"yaml": QUICK})
    assert fine.json()["valid"] is True and fine.json()["name"] == "grid_case"
    refused = api.client.post("/api/v1/workflows", headers=api.auth(WORKER), json={"yaml": QUICK})
    assert problem(refused, 403)["code"] == "PermissionDenied"
    invalid = problem(api.client.post("/api/v1/workflows", headers=api.auth(CENTRE), json={"yaml": broken}), 422)
    assert invalid["code"] == "WorkflowInvalid" and invalid["errors"]
    same = api.client.post("/api/v1/workflows", headers=api.auth(CENTRE), json={"yaml": QUICK})
    assert same.status_code == 201 and same.json()["created"] is False  # the same text is the same version


# -- scores and postings -----------------------------------------------------------------------------------


def test_scores_and_postings_are_read_objected_to_and_decided_by_the_centre(api: Api) -> None:
    api.gf.publish("quarterly", "2026Q3")
    listed = api.client.get("/api/v1/postings", headers=api.auth(WORKER)).json()
    assert any(p["kind"] == "quarterly" and p["period"] == "2026Q3" for p in listed)
    shown = api.client.get("/api/v1/postings/quarterly/2026Q3", headers=api.auth(WORKER))
    assert shown.status_code == 200, shown.text
    scores = api.client.get("/api/v1/scores/2026-09", headers=api.auth(SECRETARY), params={"by": "grid"})
    assert scores.status_code == 200, scores.text
    history = api.client.get("/api/v1/scores/2026-09/history", headers=api.auth(SECRETARY)).json()
    assert history and history[0]["current"] is True
    assert problem(api.client.get("/api/v1/scores/2026-13", headers=api.auth(WORKER)), 422)
    lodged = api.client.post(
        "/api/v1/postings/quarterly/2026Q3/objections",
        headers=api.auth(WORKER),
        json={"subject": f"grid:{GRID}", "reason": "数据有误"},
    )
    assert lodged.status_code == 201, lodged.text
    objection = lodged.json()["id"]
    decision = {"uphold": False, "note": "经核实无误"}
    refused = api.client.post(f"/api/v1/objections/{objection}/decision", headers=api.auth(WORKER), json=decision)
    assert problem(refused, 403)["code"] == "PermissionDenied"
    decided = api.client.post(f"/api/v1/objections/{objection}/decision", headers=api.auth(CENTRE), json=decision)
    assert decided.status_code == 200 and decided.json() == {"objection": objection, "upheld": False}


# -- households and points ---------------------------------------------------------------------------------


def test_households_are_scoped_masked_and_their_points_recorded_once(api: Api) -> None:
    api.gf.import_archive(Path(__file__).resolve().parents[2] / "config" / "archive" / "shengli.csv", if_empty=True)
    mine = api.client.get("/api/v1/households", headers=api.auth(WORKER), params={"limit": 500}).json()
    ids = [h["id"] for h in mine["households"]]
    assert ids and all(h.startswith("MYT-") for h in ids)
    other = api.client.get("/api/v1/households", headers=api.auth(OTHER_WORKER), params={"limit": 500}).json()
    outside = next(h["id"] for h in other["households"] if h["id"] not in ids)
    assert problem(api.client.get(f"/api/v1/households/{outside}", headers=api.auth(WORKER)), 404)
    shown = api.client.get(f"/api/v1/households/{ids[0]}", headers=api.auth(WORKER)).json()
    assert "****" in json.dumps(shown, ensure_ascii=False)  # phones and ID numbers masked for a grid worker
    body = {"rule": "clean_courtyard", "on": "2026-11-30", "evidence": "照片"}
    headers = api.auth(WORKER, **{"Idempotency-Key": f"points-{ids[0]}"})
    first = api.client.post(f"/api/v1/households/{ids[0]}/points", headers=headers, json=body)
    again = api.client.post(f"/api/v1/households/{ids[0]}/points", headers=headers, json=body)
    assert first.status_code == again.status_code == 201, first.text
    assert first.json() == again.json() and again.headers["idempotent-replayed"] == "true"
    points = api.client.get(f"/api/v1/households/{ids[0]}/points", headers=api.auth(WORKER)).json()
    assert points["balance"]["balance"] == 2 and len(points["entries"]) == 1
    assert problem(api.client.post(f"/api/v1/households/{outside}/points", headers=api.auth(WORKER), json=body), 404)
    # a case as evidence: one in the caller's grid is linked; another grid's does not exist for them
    theirs = api.report(person=OTHER_WORKER, grid="mayingtai-02", title="别的网格")["code"]
    ours = api.report(title="本网格的事件")["code"]
    before = api.count(PointsEntry)
    refused = api.client.post(
        f"/api/v1/households/{ids[1]}/points", headers=api.auth(WORKER), json={**body, "case": theirs}
    )
    assert theirs in problem(refused, 404)["detail"] and api.count(PointsEntry) == before
    linked = api.client.post(
        f"/api/v1/households/{ids[1]}/points", headers=api.auth(WORKER), json={**body, "case": ours}
    )
    assert linked.status_code == 201, linked.text


def test_the_org_chart_masks_contacts_except_for_the_centre_and_workflows_and_clocks_read(api: Api) -> None:
    worker = api.client.get("/api/v1/org", headers=api.auth(WORKER)).json()
    centre = api.client.get("/api/v1/org", headers=api.auth(CENTRE)).json()
    chen = {p["id"]: p for p in centre["people"]}["p-chen-jia"]
    masked = {p["id"]: p for p in worker["people"]}["p-chen-jia"]
    assert chen["phone"] == "13800000001" and masked["phone"] == "138****0001"
    listed = api.client.get("/api/v1/workflows", headers=api.auth(WORKER)).json()
    assert listed[0]["name"] == "grid_case"
    shown = api.client.get("/api/v1/workflows/grid_case", headers=api.auth(WORKER)).json()
    assert shown["initial"] == "reported" and shown["triggers"]
    assert problem(api.client.get("/api/v1/workflows/nope", headers=api.auth(WORKER)), 404)
    code = api.report(title="clocks")["code"]
    clocks = api.client.get(f"/api/v1/cases/{code}/sla", headers=api.auth(WORKER)).json()
    assert clocks["case"] == code and clocks["clocks"] and clocks["clocks"][0]["due_at"]
    assert problem(api.client.get(f"/api/v1/cases/{code}/sla", headers=api.auth(OTHER_WORKER)), 404)


def test_notices_the_centre_sees_all_and_retries_others_see_their_own(api: Api) -> None:
    code = api.report(person=CENTRE, title="notice me")["code"]  # its receipt goes to the centre
    assert code
    every = api.client.get("/api/v1/notices", headers=api.auth(CENTRE), params={"limit": 500}).json()["notices"]
    mine = api.client.get("/api/v1/notices", headers=api.auth(WORKER), params={"limit": 500}).json()["notices"]
    assert every and {n["to"] for n in mine} <= {WORKER}
    someone_elses = next(n for n in every if n["to"] != WORKER)
    assert problem(api.client.get(f"/api/v1/notices/{someone_elses['id']}", headers=api.auth(WORKER)), 404)
    shown = api.client.get(f"/api/v1/notices/{someone_elses['id']}", headers=api.auth(CENTRE)).json()
    assert shown["id"] == someone_elses["id"] and "history" in shown
    assert problem(api.client.post(f"/api/v1/notices/{someone_elses['id']}/retry", headers=api.auth(WORKER)), 403)
    assert problem(api.client.get("/api/v1/notices", headers=api.auth(CENTRE), params={"status": "nope"}), 422)


# -- round trips ------------------------------------------------------------------------------------------


class Statements:
    """Counts the SQL statements the application sends while the block runs (both engines)."""

    def __init__(self, gf: Gridflow):
        self.engines = {gf.engine, gf._read_engine}
        self.seen: list[str] = []  # the statements, and "BEGIN" for each transaction begun

    def _count(self, conn, cursor, statement, *args) -> None:  # noqa: ANN001 - SQLAlchemy's event signature
        self.seen.append(statement)

    def _begin(self, conn) -> None:  # noqa: ANN001
        self.seen.append("BEGIN")

    def __enter__(self) -> list[str]:
        from sqlalchemy import event

        for engine in self.engines:
            event.listen(engine, "before_cursor_execute", self._count)
            event.listen(engine, "begin", self._begin)
        return self.seen

    def __exit__(self, *exc: object) -> None:
        from sqlalchemy import event

        for engine in self.engines:
            event.remove(engine, "before_cursor_execute", self._count)
            event.remove(engine, "begin", self._begin)


def test_a_page_of_cases_costs_the_same_statements_whatever_its_length(api: Api) -> None:
    for n in range(12):
        api.report(title=f"page {n}")
    headers = api.auth(CENTRE)
    api.client.get("/api/v1/cases", headers=headers, params={"limit": 1})  # warm: token audited, org read
    counts = {}
    for limit in (1, 12):
        with Statements(api.gf) as seen:
            answer = api.client.get("/api/v1/cases", headers=headers, params={"limit": limit})
        assert answer.status_code == 200 and len(answer.json()["items"]) == limit
        counts[limit] = len(seen)
    assert counts[1] == counts[12], counts  # no statement per listed case (it was one SELECT each)


def test_a_step_is_one_transaction_and_its_answer_is_the_case_after_it(api: Api) -> None:
    case = api.report(title="one transaction")
    headers = api.auth(CENTRE)
    api.client.get("/api/v1/me", headers=headers)  # warm: the token's use audited once a minute
    with Statements(api.gf) as seen:
        answer = api.client.post(
            f"/api/v1/cases/{case['code']}/steps",
            headers={**headers, "If-Match": f'"v{case["version"]}"'},
            json={"trigger": "classify", "fields": {"category": "water_supply", "priority": "normal"}},
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == case["version"] + 1 and answer.json()["status"] == "classified"
    assert answer.headers["etag"] == f'"v{case["version"] + 1}"'
    transactions = seen.count("BEGIN")
    assert transactions == 2, seen  # the token (its use audited), then scope, version, step and answer in one
    assert len(seen) <= 30, "\n".join(seen)
    clean = [s for s in seen if not s.startswith("BEGIN IMMEDIATE")]  # SQLite's own BEGIN statement
    second = clean.index("BEGIN", 1)
    # the token's transaction: one SELECT for the token, its person and the org chart's token
    assert clean[0] == "BEGIN" and len(clean[1:second]) == 1, clean[:second]
    flat = [" ".join(s.split()) for s in seen]
    # the case read for scope (and, on SQLite, by the engine: PostgreSQL's step runs on psycopg directly),
    # never again for the answer, which is what the step wrote
    read_back = api.client.get(f"/api/v1/cases/{case['code']}", headers=headers)
    assert read_back.json() == answer.json()  # the answer built from what was written is the row as read
    reads = 1 if api.gf.engine.dialect.name == "postgresql" else 2
    assert sum(s.startswith("SELECT cases.id") for s in flat) == reads, flat
    asked_again = ("SELECT (SELECT org_meta.token", "SELECT workflow_definition.source_hash")
    assert not [s for s in flat if s.startswith(asked_again)]
