"""Open311 GeoReport v2 under /open311/v2/: discovery, services, definitions, form POSTs as the spec writes
them, GET requests with the spec's filters and paging, tokens, the error arrays, XML — on both back ends
in-process (Starlette's test client), and over real HTTP (uvicorn on loopback) driven by the ``georeport``
client from PyPI for the read side and by httpx for the POSTs. The clients are made by ``gridflow client``.

Every time is explicit: the application's clock is pinned to :data:`NOW` and moved by the tests.
"""

from __future__ import annotations

import itertools
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

import gridflow.cli as cli
import gridflow.cli.common as common
from config.settings import Settings
from engine.store.models import ApiClient, AuthEvent, Case, SlaClock
from gridflow.api import create_app
from gridflow.app import Gridflow

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
GRID = "mayingtai-01"
GRID_NAME = "马营台村第1单元格"
CENTRE = "p-chen-jia"
DESK = "p-yang-xiaodong"  # the centre's deputy: the person the county's 12345 platform reports as
INFO_OFFICER = "p-chen-xiaoqin"  # B岗信息员 of 马营台村 only
WORKER = "p-an-yixuan"  # grid worker of mayingtai-01
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
V2 = "/open311/v2"
CATEGORIES = {
    "water_supply": "供水",
    "power_supply": "用电",
    "road_traffic": "道路交通",
    "geological_hazard": "地质灾害",
    "dispute": "矛盾纠纷",
    "sanitation": "环境卫生",
    "public_security": "社会治安",
    "social_assistance": "社会救助",
    "safety_hazard": "安全隐患",
    "other": "其他",
}
_ids = itertools.count(1)


@dataclass
class Door:
    gf: Gridflow
    client: TestClient
    settings: Settings
    url: str
    now: list[datetime] = field(default_factory=lambda: [NOW])
    tokens: dict[str, str] = field(default_factory=dict)

    def new_client(self, person: str = DESK, name: str = "通江县12345热线") -> tuple[str, str]:
        made = self.gf.create_client(f"county-{next(_ids)}", name, person)
        return made["id"], made["api_key"]

    def post(self, key: str, fmt: str = "json", headers: dict[str, str] | None = None, **form: str) -> httpx.Response:
        body = urlencode({"api_key": key, **form})
        return self.client.post(f"{V2}/requests.{fmt}", content=body, headers={**FORM, **(headers or {})})

    def report(self, key: str, **form: str) -> str:
        answer = self.post(key, **{"service_code": "water_supply", "attribute[grid]": GRID, **form})
        assert answer.status_code == 201, answer.text
        return str(answer.json()[0]["service_request_id"])

    def get(self, path: str, key: str | None = None, **params: str) -> httpx.Response:
        return self.client.get(f"{V2}/{path}", params={**({"api_key": key} if key else {}), **params})

    def bearer(self, person: str) -> dict[str, str]:
        if person not in self.tokens:
            self.tokens[person] = self.gf.create_token(person, f"test {person}")["token"]
        return {"Authorization": f"Bearer {self.tokens[person]}"}

    def case(self, code: str) -> Case:
        with self.gf.transaction(write=False) as session:
            found = session.scalar(select(Case).where(Case.code == code))
            assert found is not None
            session.expunge(found)
            return found

    def count(self) -> int:
        with self.gf.transaction(write=False) as session:
            return int(session.scalar(select(func.count()).select_from(Case)) or 0)

    def close(self, code: str) -> None:
        """Walk a case to 核查结案 as the centre and the grid worker would."""
        steps = [
            ("classify", CENTRE, {"category": "water_supply", "priority": "normal"}),
            ("assign", CENTRE, {"assignee": WORKER}),
            ("accept", WORKER, {}),
            ("resolve", WORKER, {"resolution": "已更换水管"}),
            ("verify", CENTRE, {"satisfaction": "satisfied"}),
        ]
        for trigger, actor, fields in steps:
            self.gf.fire(code, trigger, actor_id=actor, fields=fields)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def door(request, tmp_path_factory) -> Iterator[Door]:
    home = tmp_path_factory.mktemp(f"open311-{request.param}")
    url = request.getfixturevalue("pg_server").create("gridflow_o311") if request.param == "postgresql" else ""
    settings = Settings(home=home, database_url=url, notices_file=home / "notices.log")
    now = [NOW]
    gf = Gridflow(settings, clock=lambda: now[0])
    gf.init()
    with TestClient(create_app(gf), raise_server_exceptions=False) as client:
        yield Door(gf, client, settings, url, now)
    gf.close()


@pytest.fixture
def o(door: Door) -> Iterator[Door]:
    """The module's door with the clock back at NOW afterwards."""
    door.now[0] = NOW
    yield door
    door.now[0] = NOW


def spec_errors(answer: httpx.Response, status: int, fmt: str = "json") -> list[dict]:
    """The spec's error array (or its XML), with the HTTP status in each code."""
    assert answer.status_code == status, answer.text
    if fmt == "xml":
        assert answer.headers["content-type"] == "text/xml; charset=utf-8"
        root = ET.fromstring(answer.content)
        assert root.tag == "errors" and all(e.tag == "error" for e in root)
        found = [{"code": int(e.findtext("code") or 0), "description": e.findtext("description")} for e in root]
    else:
        assert answer.headers["content-type"] == "application/json; charset=utf-8"
        found = answer.json()
    assert isinstance(found, list) and found and all(set(e) == {"code", "description"} for e in found)
    assert all(e["code"] == status and e["description"] for e in found)
    return found


def xml_items(answer: httpx.Response, root: str, item: str, status: int = 200) -> list[dict]:
    """The items of an XML answer as dicts of their child elements' text ('' for an empty element)."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "text/xml; charset=utf-8"
    assert answer.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    tree = ET.fromstring(answer.content)
    assert tree.tag == root and all(child.tag == item for child in tree)
    return [{child.tag: child.text or "" for child in element} for element in tree]


def as_text(value: object) -> str:
    return "" if value is None else ("true" if value is True else "false" if value is False else str(value))


# -- discovery, services, definitions --------------------------------------------------------------------------


def test_discovery_names_the_v2_endpoint_and_both_formats(o: Door) -> None:
    found = o.get("discovery.json").json()
    endpoint = found["endpoints"][0]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == "http://testserver/open311/v2" and endpoint["type"] == "production"
    assert endpoint["formats"] == ["text/xml", "application/json"]
    assert found["changeset"] == "2026-11-30T10:00:00+08:00"  # when the default workflow was published (init)
    assert "胜利乡" in found["contact"]
    tree = ET.fromstring(o.get("discovery.xml").content)
    assert tree.tag == "discovery"
    assert [f.text for f in tree.findall("endpoints/endpoint/formats/format")] == ["text/xml", "application/json"]


def test_services_are_the_default_workflows_categories_with_their_chinese_names(o: Door) -> None:
    answer = o.get("services.json")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json; charset=utf-8"
    services = answer.json()
    assert {s["service_code"]: s["service_name"] for s in services} == CATEGORIES
    by_code = {s["service_code"]: s for s in services}
    assert all(s["type"] == "realtime" and s["metadata"] is True for s in services)
    assert by_code["water_supply"]["group"] == by_code["road_traffic"]["group"] == "基础设施"
    assert by_code["dispute"]["group"] == by_code["public_security"]["group"] == "平安综治"
    assert by_code["other"]["group"] == "其他事项"
    assert "停水" in by_code["water_supply"]["keywords"].split(",")
    assert "承诺2个工作日内处置，10个工作日内办结" in by_code["water_supply"]["description"]
    assert "承诺10个工作日内处置" in by_code["dispute"]["description"]
    assert "承诺5个工作日内处置" in by_code["other"]["description"]
    # JSON and XML are drawn from the same dicts
    assert xml_items(o.get("services.xml"), "services", "service") == [
        {k: as_text(v) for k, v in s.items()} for s in services
    ]


def test_geological_hazards_in_the_flood_season_are_promised_around_the_clock(o: Door) -> None:
    o.now[0] = datetime(2026, 7, 6, 2, 0, tzinfo=UTC)  # July: 汛期, the 24x7 calendar
    summer = {s["service_code"]: s["description"] for s in o.get("services.json").json()}
    assert "承诺1天（全天候计时）内处置" in summer["geological_hazard"]
    o.now[0] = NOW  # November: the township's working days
    winter = {s["service_code"]: s["description"] for s in o.get("services.json").json()}
    assert "承诺1个工作日内处置" in winter["geological_hazard"]


def test_a_service_definition_lists_the_report_fields_and_the_grid_cells(o: Door) -> None:
    found = o.get("services/water_supply.json").json()
    assert found["service_code"] == "water_supply"
    attributes = {a["code"]: a for a in found["attributes"]}
    assert list(attributes) == ["grid", "title", "priority"]
    assert [a["order"] for a in found["attributes"]] == [1, 2, 3]
    grid = attributes["grid"]
    assert grid["datatype"] == "singlevaluelist" and grid["required"] is False and grid["variable"] is True
    assert {"key": GRID, "name": GRID_NAME} in grid["values"] and len(grid["values"]) == 69
    assert attributes["title"]["datatype"] == "string" and attributes["title"]["required"] is False
    priority = attributes["priority"]
    assert priority["description"] == "紧急程度" and priority["datatype"] == "singlevaluelist"
    assert priority["values"] == [
        {"key": "normal", "name": "一般"},
        {"key": "urgent", "name": "紧急"},
        {"key": "critical", "name": "特急"},
    ]
    tree = ET.fromstring(o.get("services/water_supply.xml").content)
    assert tree.tag == "service_definition" and tree.findtext("service_code") == "water_supply"
    xml_priority = tree.findall("attributes/attribute")[2]
    assert xml_priority.findtext("code") == "priority" and xml_priority.findtext("required") == "false"
    assert [(v.findtext("key"), v.findtext("name")) for v in xml_priority.findall("values/value")] == [
        ("normal", "一般"), ("urgent", "紧急"), ("critical", "特急"),
    ]  # fmt: skip


def test_an_unknown_service_or_path_or_format_is_404_in_the_spec_s_array(o: Door) -> None:
    assert "not found" in spec_errors(o.get("services/potholes.json"), 404)[0]["description"]
    spec_errors(o.get("services/potholes.xml"), 404, "xml")
    spec_errors(o.get("nothing/here.xml"), 404, "xml")
    spec_errors(o.get("services.csv"), 404)


# -- POST requests ---------------------------------------------------------------------------------------------


def test_a_form_post_as_the_spec_writes_it_makes_a_case_in_the_clients_name(o: Door) -> None:
    client_id, key = o.new_client()
    body = (
        f"api_key={key}&jurisdiction_id=tongjiang.gov.cn&service_code=water_supply&lat=32.06524078&long=107.2452043"
        "&address_string=%E7%8E%8B%E5%AE%B6%E6%B9%BE3%E5%8F%B7&email=zhang.san%40example.org&device_id=tt222111"
        "&account_id=123456&first_name=%E4%B8%89&last_name=%E5%BC%A0&phone=13912345678"
        "&description=%E7%8E%8B%E5%AE%B6%E6%B9%BE%E6%B0%B4%E7%AE%A1%E7%88%86%E8%A3%82%0A%E5%B7%B2%E5%81%9C%E6%B0%B4"
        "&media_url=http%3A%2F%2Fimg.example.org%2F2212426634_5ed477a060.jpg"
        f"&attribute[grid]={GRID}&attribute[priority]=urgent"
    )
    before = o.count()
    answer = o.client.post(f"{V2}/requests.json", content=body, headers=FORM)
    assert answer.status_code == 201, answer.text
    [made] = answer.json()
    code = made["service_request_id"]
    assert code.startswith("SL-2026-") and answer.headers["location"] == f"{V2}/requests/{code}.json"
    assert made["service_notice"] == "承诺1个工作日内处置，10个工作日内办结"  # urgent: 1d instead of 2d
    assert made["account_id"] is None and "token" not in made  # realtime: the id, never a token as well
    assert o.count() == before + 1
    case = o.case(code)
    assert (case.source_channel, case.source_client, case.reporter_id) == ("open311", client_id, DESK)
    assert (case.grid_id, case.category, case.priority, case.status) == (GRID, "water_supply", "urgent", "reported")
    assert case.title == "王家湾水管爆裂"
    assert case.description is not None and case.description.startswith("王家湾水管爆裂\n已停水\n\n【平台来件】\n")
    for line in ("地址：王家湾3号", "坐标：32.065241,107.245204", "反映人：张三", "电话：13912345678",
                 "邮箱：zhang.san@example.org", "图片：http://img.example.org/2212426634_5ed477a060.jpg"):  # fmt: skip
        assert line in case.description


def test_the_grid_comes_from_an_address_that_names_it_and_never_from_a_guess(o: Door) -> None:
    _, key = o.new_client()
    code = o.report(key, **{"attribute[grid]": "", "address_string": f"四川省通江县胜利乡{GRID_NAME}王家湾"})
    assert o.case(code).grid_id == GRID
    by_name = o.report(key, **{"attribute[grid]": "迪坪村第2单元格", "lat": "32.1", "long": "107.3"})
    assert o.case(by_name).grid_id == "diping-02"
    before = o.count()
    for form in (
        {"lat": "32.06", "long": "107.24"},  # no boundaries in the org chart: not placed
        {"address_string": "胜利乡马营台村"},  # a village holds 12 grid cells
        {"address_string": f"{GRID_NAME}与马营台村第2单元格交界"},
    ):
        found = spec_errors(o.post(key, service_code="water_supply", **form), 400)
        assert "attribute[grid]" in found[0]["description"]
    assert "not a grid cell" in spec_errors(o.post(key, service_code="water_supply", **{"attribute[grid]": "mars-01"}), 400)[0]["description"]  # fmt: skip
    assert o.count() == before


def test_bad_posts_are_400_with_every_problem_and_change_nothing(o: Door) -> None:
    _, key = o.new_client()
    before = o.count()
    found = spec_errors(
        o.post(
            key,
            service_code="water_supply",
            lat="91",
            long="107",
            media_url="javascript:alert(1)",
            email="not-an-address",
            **{"attribute[colour]": "red", "attribute[grid]": GRID},
        ),
        400,
    )
    text = found[0]["description"]
    assert all(part in text for part in ("attribute[colour]", "out of range", "media_url", "email"))
    assert "location is needed" in spec_errors(o.post(key, service_code="water_supply"), 400)[0]["description"]
    assert "service_code is missing" in spec_errors(o.post(key, description="x"), 400, "json")[0]["description"]
    spec_errors(o.post(key, "xml", service_code="potholes", lat="32", long="107"), 404, "xml")
    assert "priority" in spec_errors(o.post(key, service_code="dispute", **{"attribute[grid]": GRID, "attribute[priority]": "whenever"}), 400)[0]["description"]  # fmt: skip
    as_json = o.client.post(f"{V2}/requests.json", json={"api_key": key, "service_code": "water_supply"})
    assert "application/x-www-form-urlencoded" in spec_errors(as_json, 400)[0]["description"]
    assert o.count() == before


def test_a_missing_unknown_or_revoked_api_key_is_403(o: Door) -> None:
    client_id, key = o.new_client()
    for bad in ("", "o311_not-a-key"):
        spec_errors(o.post(bad, service_code="water_supply", **{"attribute[grid]": GRID}), 403)
        spec_errors(o.get("requests.json", bad), 403)
    spec_errors(o.get("requests.xml"), 403, "xml")
    code = o.report(key)
    o.gf.revoke_client(client_id)
    assert "revoked" in spec_errors(o.post(key, service_code="water_supply", lat="32", long="107"), 403)[0]["description"]  # fmt: skip
    spec_errors(o.get(f"requests/{code}.json", key), 403)
    assert o.gf.revoke_client(client_id)["active"] is False  # safe to repeat


def test_a_client_reports_only_where_its_person_may(o: Door) -> None:
    _, key = o.new_client(INFO_OFFICER, "综治平台（马营台村）")
    assert o.case(o.report(key)).reporter_id == INFO_OFFICER
    refused = o.post(key, service_code="dispute", **{"attribute[grid]": "diping-01"})
    assert "may not report a case in grid diping-01" in spec_errors(refused, 403)[0]["description"]


def test_an_idempotency_key_makes_a_retry_safe_and_is_the_token(o: Door) -> None:
    _, key = o.new_client()
    form = {"service_code": "sanitation", "attribute[grid]": GRID, "description": "垃圾堆放"}
    before = o.count()
    first = o.post(key, headers={"Idempotency-Key": "12345-0001"}, **form)
    again = o.post(key, "xml", headers={"Idempotency-Key": "12345-0001"}, **form)
    assert first.status_code == again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    code = first.json()[0]["service_request_id"]
    assert xml_items(again, "service_requests", "request", 201)[0]["service_request_id"] == code
    assert o.count() == before + 1
    assert o.get("tokens/12345-0001.json", key).json() == [{"service_request_id": code, "token": "12345-0001"}]
    assert o.get("tokens/12345-0001", key).json()[0]["service_request_id"] == code
    assert xml_items(o.get("tokens/12345-0001.xml", key), "service_requests", "request") == [
        {"service_request_id": code, "token": "12345-0001"}
    ]
    spec_errors(o.get("tokens/never-sent.json", key), 404)
    _, other = o.new_client()
    spec_errors(o.get("tokens/12345-0001.json", other), 404)  # one client's keys are not another's
    reused = o.post(key, headers={"Idempotency-Key": "12345-0001"}, **{**form, "description": "另一件事"})
    assert "different request" in spec_errors(reused, 400)[0]["description"]


# -- GET requests ------------------------------------------------------------------------------------------------


def test_a_request_reads_back_with_its_status_agency_promise_and_sla_due_time(o: Door) -> None:
    _, key = o.new_client()
    code = o.report(key, address_string="王家湾3号", lat="32.0652", long="107.2452",
                    media_url="https://img.example.org/a.jpg", description="水管破裂", phone="13912345678")  # fmt: skip
    [found] = o.get(f"requests/{code}.json", key).json()
    with o.gf.transaction(write=False) as session:
        due = session.scalar(
            select(SlaClock.due_at).where(SlaClock.case_id == o.case(code).id, SlaClock.scope == "case")
        )
    assert due == datetime(2026, 12, 14, 2, 0, tzinfo=UTC)  # 10 working days on the township's calendar
    assert found == {
        "service_request_id": code,
        "status": "open",
        "status_notes": "已上报（上报于2026-11-30 10:00 CST）",
        "service_name": "供水",
        "service_code": "water_supply",
        "description": "水管破裂",
        "agency_responsible": f"{GRID_NAME}，网格管理中心受理",
        "service_notice": "承诺2个工作日内处置，10个工作日内办结",
        "requested_datetime": "2026-11-30T10:00:00+08:00",
        "updated_datetime": "2026-11-30T10:00:00+08:00",
        "expected_datetime": "2026-12-14T10:00:00+08:00",
        "address": "王家湾3号",
        "address_id": None,
        "zipcode": None,
        "lat": 32.0652,
        "long": 107.2452,
        "media_url": "https://img.example.org/a.jpg",
    }
    assert "13912345678" not in o.get(f"requests/{code}.json", key).text  # Open311 never answers the contact
    assert xml_items(o.get(f"requests/{code}.xml", key), "service_requests", "request") == [
        {k: as_text(v) for k, v in found.items()}
    ]
    o.now[0] = NOW + timedelta(hours=1)
    o.gf.fire(code, "classify", actor_id=CENTRE, fields={"category": "water_supply", "priority": "normal"})
    o.gf.fire(code, "assign", actor_id=CENTRE, fields={"assignee": WORKER})
    [assigned] = o.get(f"requests/{code}.json", key).json()
    assert assigned["agency_responsible"] == f"{GRID_NAME}，处置人：安怡萱"
    assert assigned["status_notes"] == "已派遣（派遣于2026-11-30 11:00 CST）"
    assert assigned["updated_datetime"] == "2026-11-30T11:00:00+08:00"
    o.now[0] = NOW + timedelta(hours=2)
    for trigger, actor, fields in (("accept", WORKER, {}), ("resolve", WORKER, {"resolution": "已修复"}),
                                   ("verify", CENTRE, {"satisfaction": "satisfied"})):  # fmt: skip
        o.gf.fire(code, trigger, actor_id=actor, fields=fields)
    [closed] = o.get(f"requests/{code}.json", key).json()
    assert closed["status"] == "closed" and closed["expected_datetime"] is None
    assert closed["updated_datetime"] == "2026-11-30T12:00:00+08:00"
    assert closed["status_notes"].startswith("已核查结案（核查结案于")


def test_a_client_reads_only_its_own_requests(o: Door) -> None:
    _, mine = o.new_client()
    _, theirs = o.new_client()
    code = o.report(theirs)
    spec_errors(o.get(f"requests/{code}.json", mine), 404)
    spec_errors(o.get("requests/SL-2026-999999.xml", mine), 404, "xml")
    assert o.get("requests.json", mine, service_request_id=code).json() == []
    worker_case = o.client.post(
        "/api/v1/cases", headers=o.bearer(WORKER), json={"grid": GRID, "title": "网格员上报"}
    ).json()["code"]
    spec_errors(o.get(f"requests/{worker_case}.json", mine), 404)


def test_get_requests_filters_pages_and_keeps_to_the_spec_s_90_days(o: Door) -> None:
    _, key = o.new_client()
    made = {}
    for name, days, service in (("old", 100, "water_supply"), ("a", 10, "water_supply"), ("b", 5, "dispute"),
                                ("c", 1, "water_supply")):  # fmt: skip
        o.now[0] = NOW - timedelta(days=days)
        made[name] = o.report(key, service_code=service)
    o.now[0] = NOW - timedelta(days=9)
    o.close(made["a"])
    o.now[0] = NOW

    def ids(**params: str) -> list[str]:
        answer = o.get("requests.json", key, **params)
        assert answer.status_code == 200, answer.text
        return [r["service_request_id"] for r in answer.json()]

    assert ids() == [made["c"], made["b"], made["a"]]  # newest first, the most recent 90 days
    assert ids(service_code="water_supply") == [made["c"], made["a"]]
    assert ids(service_code="dispute,sanitation") == [made["b"]]
    assert ids(status="closed") == [made["a"]]
    assert ids(status="open") == [made["c"], made["b"]]
    assert ids(status="open,closed") == ids()
    start = (NOW - timedelta(days=6)).isoformat().replace("+00:00", "Z")
    end = (NOW - timedelta(days=2)).isoformat().replace("+00:00", "Z")
    assert ids(start_date=start, end_date=end) == [made["b"]]
    assert ids(start_date="2026-08-01T00:00:00+08:00", end_date="2026-09-01T00:00:00+08:00") == [made["old"]]
    # service_request_id overrides every other filter, and reaches past 90 days
    assert ids(service_request_id=f"{made['old']},{made['a']}", status="open", service_code="dispute") == [
        made["a"],
        made["old"],
    ]
    assert ids(page_size="2") == [made["c"], made["b"]]
    assert ids(page_size="2", page="2") == [made["a"]]
    assert ids(page_size="2", page="3") == []
    xml = xml_items(o.get("requests.xml", key, status="closed"), "service_requests", "request")
    assert [r["service_request_id"] for r in xml] == [made["a"]] and xml[0]["status"] == "closed"
    assert "90 days" in spec_errors(o.get("requests.json", key, start_date="2026-01-01T00:00:00Z",
                                          end_date="2026-11-01T00:00:00Z"), 400)[0]["description"]  # fmt: skip
    spec_errors(o.get("requests.json", key, start_date="yesterday"), 400)
    spec_errors(o.get("requests.xml", key, status="pending"), 400, "xml")
    spec_errors(o.get("requests.json", key, service_code="potholes"), 400)
    spec_errors(o.get("requests.json", key, page_size="0"), 400)
    spec_errors(o.get("requests.json", key, page_size="1001"), 400)
    spec_errors(o.get("requests.json", key, page="-1"), 400)


def test_xml_is_escaped_and_parses_back_to_the_words_sent(o: Door) -> None:
    _, key = o.new_client()
    words = "门口<script>alert('x')</script> & \"水\" ]]> 漏了"
    code = o.report(key, description=words, address_string="A&B <路>")
    [found] = xml_items(o.get(f"requests/{code}.xml", key), "service_requests", "request")
    assert found["description"] == words and found["address"] == "A&B <路>"
    assert b"<script>" not in o.get(f"requests/{code}.xml", key).content


# -- the resident's contact, masked by role -----------------------------------------------------------------------


def test_the_residents_contact_is_masked_for_roles_that_may_not_see_it(o: Door) -> None:
    _, key = o.new_client()
    code = o.report(key, description="请回电13912345678或发邮件 zs@example.org", first_name="三", last_name="张",
                    phone="13912345678", email="zhang.san@example.org")  # fmt: skip
    shown = o.client.get(f"/api/v1/cases/{code}", headers=o.bearer(WORKER)).json()
    assert shown["source"].startswith("county-")
    text = shown["description"]
    assert "13912345678" not in text and "zhang.san@" not in text and "zs@" not in text and "张三" not in text
    assert "反映人：张*" in text and "电话：139****5678" in text and "邮箱：***@example.org" in text
    assert "请回电139****5678" in text
    assert shown["title"] == "请回电139****5678或发邮件 ***@example.org"  # every role reads the title
    listed = o.client.get("/api/v1/cases", headers=o.bearer(WORKER), params={"source": "open311", "limit": 200})
    assert all("13912345678" not in (c["description"] or "") for c in listed.json()["items"])
    history = o.client.get(f"/api/v1/cases/{code}/history", headers=o.bearer(WORKER)).json()
    assert "13912345678" not in json.dumps(history, ensure_ascii=False)
    centre = o.client.get(f"/api/v1/cases/{code}", headers=o.bearer(CENTRE)).json()
    assert "电话：13912345678" in centre["description"] and "反映人：张三" in centre["description"]
    # a client whose person may not see personal data reads the resident's words masked too
    _, desk = o.new_client(INFO_OFFICER, "综治平台")
    other = o.report(desk, description="联系人电话13912345678")
    assert o.get(f"requests/{other}.json", desk).json()[0]["description"] == "联系人电话139****5678"


# -- the client commands -------------------------------------------------------------------------------------------


def test_client_commands_add_list_and_revoke_and_keep_only_the_keys_hash(o: Door, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("GRIDFLOW_HOME", str(o.settings.home))
    monkeypatch.setenv("GRIDFLOW_CONFIG_FILE", str(tmp_path / "absent.yaml"))
    if o.url:
        monkeypatch.setenv("GRIDFLOW_DATABASE_URL", o.url)
    built: list[Gridflow] = []
    monkeypatch.setattr(common, "Gridflow", lambda s: built.append(Gridflow(s, clock=lambda: o.now[0])) or built[-1])
    tree = cli.build("client")
    try:
        added = CliRunner().invoke(tree, ["client", "add", "zongzhi-tj", "--name", "通江县综治平台", "--person", DESK])
        assert added.exit_code == 0, added.output
        key = next(line for line in added.stdout.splitlines() if line.startswith("o311_"))
        with o.gf.transaction(write=False) as session:
            row = session.get(ApiClient, "zongzhi-tj")
            assert row is not None and row.person_id == DESK and row.key_hash != key and len(row.key_hash) == 64
            assert key not in json.dumps([e.detail for e in session.scalars(select(AuthEvent))], ensure_ascii=False)
        assert o.case(o.report(key)).source_client == "zongzhi-tj"
        listed = CliRunner().invoke(tree, ["client", "list", "--json"])
        assert listed.exit_code == 0 and key not in listed.stdout
        mine = next(r for r in json.loads(listed.stdout) if r["id"] == "zongzhi-tj")
        assert mine == {"id": "zongzhi-tj", "name": "通江县综治平台", "person": DESK, "active": True,
                        "created_at": NOW.isoformat()}  # fmt: skip
        again = CliRunner().invoke(tree, ["client", "add", "zongzhi-tj", "--name", "x", "--person", DESK])
        assert again.exit_code == 4 and "exists" in again.output
        nobody = CliRunner().invoke(tree, ["client", "add", "other-1", "--name", "x", "--person", "p-nobody"])
        assert nobody.exit_code == 3
        revoked = CliRunner().invoke(tree, ["client", "revoke", "zongzhi-tj"])
        assert revoked.exit_code == 0 and "revoked" in revoked.stdout
        spec_errors(o.post(key, service_code="water_supply", **{"attribute[grid]": GRID}), 403)
        table = CliRunner().invoke(tree, ["client", "list"])
        assert "zongzhi-tj" in table.stdout and "revoked" in table.stdout
    finally:
        for app in built:
            app.close()


# -- over real HTTP: uvicorn on loopback, the georeport client for the read side, httpx for the POSTs ----------


@pytest.fixture(scope="module")
def served(door: Door) -> Iterator[str]:
    from gridflow.api.embedded import EmbeddedApi

    server = EmbeddedApi(door.gf, "127.0.0.1", 0)  # what `gridflow up` runs: a bounded wait until it listens
    server.start()
    yield server.url
    server.stop()


def test_over_real_http_the_georeport_client_reads_what_a_form_post_made(
    o: Door, served: str, tmp_path: Path, monkeypatch
) -> None:
    from georeport import GeoReport

    _, key = o.new_client()
    with httpx.Client(base_url=served, timeout=30) as http:
        body = (
            f"api_key={quote(key)}&service_code=road_traffic&address_string={quote(GRID_NAME + '村道')}"
            f"&description={quote('山体落石堵路')}&phone=13912345678&attribute[priority]=urgent"
        )
        made = http.post(f"{V2}/requests.xml", content=body, headers=FORM)
        assert made.status_code == 201, made.text
        assert made.headers["x-content-type-options"] == "nosniff"
        code = ET.fromstring(made.content).findtext("request/service_request_id")
        assert code and o.case(code).category == "road_traffic"
        refused = http.post(f"{V2}/requests.json", content="api_key=wrong&service_code=road_traffic", headers=FORM)
        spec_errors(refused, 403)
    # the georeport client sends no api_key: reading requests takes it from .netrc (HTTP Basic), as requests does
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login 12345 password {key}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    for output in ("json", "xml"):
        client = GeoReport(f"{served}{V2}", output_format=output)
        services = client.get_service_list()
        assert {s["service_code"]: s["service_name"] for s in services} == CATEGORIES
        definition = client.get_service_definition("road_traffic")
        attributes = definition["attributes"] if output == "json" else definition["attributes"]["attribute"]
        assert [a["code"] for a in attributes] == ["grid", "title", "priority"]
        requests_found = client.get_service_requests(service_code="road_traffic")
        listed = requests_found if isinstance(requests_found, list) else [requests_found]  # xmltodict: one is a dict
        assert [r["service_request_id"] for r in listed] == [code]
        one = client.get_service_request(code)
        assert one["service_request_id"] == code and one["status"] == "open"
        assert one["service_notice"] == "承诺1个工作日内处置，10个工作日内办结"
        assert "13912345678" not in json.dumps(one, ensure_ascii=False)
    monkeypatch.delenv("NETRC")
    with pytest.raises(Exception, match="403"):
        GeoReport(f"{served}{V2}").get_service_request(code)
