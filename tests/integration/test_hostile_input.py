"""The security drill of issue 19, on both back ends: points backdated around their limits (finding 2),
control characters in free text and on the terminal (5), and numbers and dates that ended in a traceback
(6) — through the application, the CLI and the API. Each test failed before its fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from config.settings import Settings
from engine.errors import FieldError, GridflowError, InputError, SourceError
from engine.points import batch
from engine.points.ledger import PointsRejected
from engine.store.models import Objection, PointsEntry, StoreItem
from gridflow.api import create_app
from gridflow.app import Gridflow
from gridflow.app.open311 import Open311Report
from tests.points_support import AN, CENTER, RULES, SH, XIONG, add_households
from tests.support import GRID, ROOT, Database, clock_offset

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # Monday 30 November, 10:00 in Shanghai; October is the month before
H1, H2, H3 = "MYT-01-0001", "MYT-01-0002", "MYT-01-0003"
STORE = ROOT / "config" / "store.yaml"

HOSTILE = {
    "ESC clear screen": "清屏\x1b[2J",
    "BEL": "响铃\x07",
    "NUL": "空\x00字",
    "DEL": "删\x7f",
    "C1 CSI": "x\u009b2J",
    "bidi override": "发票\u202egnp.exe",
    "bidi isolate": "\u2066隔离\u2069",
    "zero-width space": "零\u200b宽",
    "lone surrogate": "乱码 \udcff",
}


def app(db: Database, tmp_path: Path, clock: list[datetime] | None = None, **settings: Any) -> Gridflow:
    now = clock or [NOW]
    return Gridflow(
        Settings(home=tmp_path, database_url=db.url, notices_file=tmp_path / "notices.log", **settings),
        clock=lambda: now[0],
    )


@pytest.fixture
def gf(db: Database, tmp_path: Path) -> Iterator[Gridflow]:
    application = app(db, tmp_path)
    with application.transaction() as session:
        add_households(session, 3)
    yield application
    application.close()


# -- 5. one text check for every free-text input ----------------------------------------------------------


@dataclass
class Made:
    """What the entry points below act on."""

    pending: int  # a points entry waiting for approval
    award: int  # a points entry that counts
    redemption: int
    case: str
    objection: int
    api_key: str


def _made(gf: Gridflow) -> Made:
    pending = gf.record_points(H1, "five_good_family", actor=XIONG, evidence="村评议")["entry"]["id"]
    award = gf.record_points(H1, "filial_piety", actor=AN, evidence="照顾母亲")["entry"]["id"]
    gf.load_store_goods(STORE)
    redemption = gf.redeem_points(H1, {"salt": 1}, actor=AN)["redemption"]["id"]
    case = gf.report(grid_id=GRID, actor_id=AN, fields={"title": "水管破裂"})["case"]["code"]
    gf.publish("quarterly", "2026Q3")
    objection = gf.lodge_objection("quarterly", "2026Q3", f"grid:{GRID}", "张三", "数据有误")["id"]
    api_key = gf.create_client("county-1", "通江县12345热线", AN)["api_key"]
    return Made(pending, award, redemption, case, objection, api_key)


def _open311(**sent: Any) -> Open311Report:
    return Open311Report(
        **{"service_code": "water_supply", "description": "停水了", "attributes": {"grid": [GRID]}, **sent}
    )


# entry point -> a call with the text in one of its free-text inputs
ENTRY_POINTS: dict[str, Callable[[Gridflow, Made, str], Any]] = {
    "points evidence": lambda gf, m, s: gf.record_points(H2, "clean_courtyard", actor=AN, evidence=s),
    "points form key": lambda gf, m, s: gf.record_points(H2, "clean_courtyard", actor=AN, key=s),
    "approval note": lambda gf, m, s: gf.approve_points(m.pending, actor=CENTER, note=s),
    "correction reason": lambda gf, m, s: gf.correct_points(m.award, actor=XIONG, reason=s),
    "redemption key": lambda gf, m, s: gf.redeem_points(H1, {"salt": 1}, actor=AN, key=s),
    "reversal reason": lambda gf, m, s: gf.reverse_redemption(m.redemption, actor=XIONG, reason=s),
    "case title": lambda gf, m, s: gf.report(grid_id=GRID, actor_id=AN, fields={"title": s}),
    "case description": lambda gf, m, s: gf.report(
        grid_id=GRID, actor_id=AN, fields={"title": "水管破裂", "description": s}
    ),
    "step text field": lambda gf, m, s: gf.fire(m.case, "void", actor_id=CENTER, fields={"reason": s}),
    "objection reason": lambda gf, m, s: gf.lodge_objection("quarterly", "2026Q3", f"grid:{GRID}", "张三", s),
    "objection by": lambda gf, m, s: gf.lodge_objection("quarterly", "2026Q3", f"grid:{GRID}", s, "数据有误"),
    "decision note": lambda gf, m, s: gf.decide_objection(m.objection, uphold=False, by="网格中心", note=s),
    "decision by": lambda gf, m, s: gf.decide_objection(m.objection, uphold=False, by=s, note="经核实无误"),
    "token name": lambda gf, m, s: gf.create_token(CENTER, s),
    "Open311 client name": lambda gf, m, s: gf.create_client("county-2", s, AN),
    "webhook name": lambda gf, m, s: gf.add_subscription(s, "https://example.org/hook", ["case.reported"]),
    "Open311 description": lambda gf, m, s: gf.open311_report(m.api_key, _open311(description=s)),
    "Open311 address": lambda gf, m, s: gf.open311_report(m.api_key, _open311(address_string=s)),
    "Open311 resident's name": lambda gf, m, s: gf.open311_report(m.api_key, _open311(first_name=s)),
}


def test_every_free_text_input_refuses_hostile_characters_and_writes_nothing(db, gf):
    made = _made(gf)
    before = db.snapshot()
    accepted = []
    for point, call in ENTRY_POINTS.items():
        for name, value in HOSTILE.items():
            try:
                call(gf, made, value)
            except (InputError, FieldError) as exc:
                message = str(exc)
                assert "U+" in message and "position" in message, (point, name, message)
                assert not any(c in message for c in "\x1b\x07\x00\u009b\u202e\u2066\u200b"), (point, name)
            except Exception as exc:  # noqa: BLE001 - refused for another reason, or a crash: not the text check
                accepted.append((point, name, f"{type(exc).__name__}: {str(exc)[:60]}"))
            else:
                accepted.append((point, name, "accepted"))
    assert accepted == []
    assert db.snapshot() == before


# entry point -> (a text one character too long for its column, or for its documented maximum)
TOO_LONG = {
    "objection by": "张" * 101,  # objection.lodged_by varchar(100): PostgreSQL failed, SQLite stored it
    "decision by": "张" * 101,
    "token name": "令" * 101,  # api_token.name varchar(100)
    "points evidence": "证" * 501,
    "points form key": "k" * 201,
}


def test_too_long_texts_are_refused_alike_on_both_back_ends(db, gf):
    made = _made(gf)
    before = db.snapshot()
    for point, value in TOO_LONG.items():
        with pytest.raises(InputError, match="characters long; at most"):
            ENTRY_POINTS[point](gf, made, value)
    assert db.snapshot() == before


def test_a_single_line_field_refuses_a_line_break_a_multi_line_one_keeps_it(db, gf):
    with pytest.raises(FieldError, match="title .* is one line"):
        gf.report(grid_id=GRID, actor_id=AN, fields={"title": "第一行\n第二行"})
    with pytest.raises(InputError, match="token name is one line"):
        gf.create_token(CENTER, "第一行\n第二行")
    done = gf.record_points(H2, "clean_courtyard", actor=AN, evidence="庭院整洁\r\n门前三包")
    assert done["entry"]["evidence"] == "庭院整洁\n门前三包"
    emoji = gf.report(
        grid_id=GRID, actor_id=AN, fields={"title": "👨\u200d👩\u200d👧 一家三口", "description": "一\n二"}
    )
    assert emoji["case"]["title"] == "👨\u200d👩\u200d👧 一家三口"


# -- 2. backdating --------------------------------------------------------------------------------------


def test_points_are_dated_in_the_open_month_and_never_in_a_scored_one(db, gf):
    for day in (3, 10, 17, 24):
        gf.record_points(H1, "filial_piety", actor=AN, on=date(2026, 11, day))
    with pytest.raises(PointsRejected, match="at most 4 time"):
        gf.record_points(H1, "filial_piety", actor=AN, on=date(2026, 11, 25))
    # each past month had a fresh limit: the drill earned unlimited points this way
    for day in (date(1, 1, 20), date(2026, 9, 30), date(2025, 11, 25)):
        with pytest.raises(PointsRejected) as refused:
            gf.record_points(H1, "filial_piety", actor=AN, on=day)
        message = str(refused.value)
        assert day.isoformat() in message and "2026-10-01 to 2026-11-30" in message
        assert "backdate: open_month" in message and "evidence" in message  # the window, and what to do
    october = gf.record_points(H1, "filial_piety", actor=AN, on=date(2026, 10, 31))  # not scored yet: open
    assert october["entry"]["on"] == "2026-10-31"
    gf.score_run("2026-10")
    for kwargs in (
        {"on": date(2026, 10, 30)},
        {"on": date(2026, 10, 31), "at": datetime(2026, 10, 31, 12, tzinfo=SH)},
    ):
        with pytest.raises(PointsRejected, match=r"2026-10 has been scored.*2026-11-01 to 2026-11-30"):
            gf.record_points(H2, "filial_piety", actor=AN, **kwargs)
    pending = gf.record_points(H2, "five_good_family", actor=XIONG)["entry"]["id"]
    with pytest.raises(PointsRejected, match="2026-10 has been scored"):
        gf.approve_points(pending, actor=CENTER, at=datetime(2026, 10, 31, 12, tzinfo=SH))
    with pytest.raises(PointsRejected, match="2026-10 has been scored"):
        gf.correct_points(october["entry"]["id"], actor=XIONG, reason="记错", at=datetime(2026, 10, 31, 13, tzinfo=SH))
    assert gf.approve_points(pending, actor=CENTER)["approved"]  # now: fine


def test_the_window_is_a_setting_of_the_points_rules(db, tmp_path):
    strict = tmp_path / "points.yaml"
    text = (ROOT / "config" / "points.yaml").read_text(encoding="utf-8")
    strict.write_text(
        text.replace("backdate: open_month", "backdate: current_month").replace("version: 2", "version: 3"),
        encoding="utf-8",
    )
    gf = app(db, tmp_path, points_file=strict)
    try:
        with gf.transaction() as session:
            add_households(session, 1)
        with pytest.raises(PointsRejected, match=r"2026-10-31 .*2026-11-01 to 2026-11-30 .*backdate: current_month"):
            gf.record_points(H1, "filial_piety", actor=AN, on=date(2026, 10, 31))
        assert gf.record_points(H1, "filial_piety", actor=AN, on=date(2026, 11, 1))["created"]
    finally:
        gf.close()
    strict.write_text(text.replace("backdate: open_month", "backdate: last_year"), encoding="utf-8")
    from engine.points.rules import load

    with pytest.raises(SourceError, match=r"points.yaml:\d+:\d+: \[backdate\] .*open_month, current_month"):
        load(strict)


def test_a_days_sheet_obeys_the_same_window(db):
    with db.sessions.begin() as session:
        add_households(session, 2)
    items = [(H1, "filial_piety", AN, date(2026, 11, 2)), (H2, "filial_piety", AN, date(2026, 8, 2))]
    with pytest.raises(batch.BatchRefused, match=r"#1 .*2026-08-02 is outside .*2026-10-01 to 2026-11-30"):
        with db.sessions.begin() as session:
            batch.record_many(session, items, NOW, RULES, SH, now=NOW)
    with db.sessions.begin() as session:
        done = batch.record_many(session, items, NOW, RULES, SH, skip_bad=True, now=NOW)
    assert len(done.created) == 1 and "outside" in done.refused[0].reason


# -- 6. numbers and dates that ended in a traceback -------------------------------------------------------


def test_numbers_a_person_types_are_bounded_with_a_message(db, gf):
    gf.load_store_goods(STORE)
    gf.record_points(H1, "filial_piety", actor=AN)
    before = db.snapshot()
    refusals: list[tuple[Callable[[], Any], type[GridflowError], str]] = [
        (lambda: gf.restock("mayingtai", "salt", 10**20, actor=AN), PointsRejected, "1 to 1,000,000"),
        (lambda: gf.restock("mayingtai", "salt", 0, actor=AN), PointsRejected, "1 to 1,000,000"),
        (lambda: gf.approve_points(10**20, actor=CENTER), InputError, "entry 100,000,000,000,000,000,000 is out of"),
        (lambda: gf.correct_points(10**20, actor=XIONG, reason="x"), InputError, "out of range"),
        (lambda: gf.reverse_redemption(10**20, actor=XIONG, reason="x"), InputError, "out of range"),
        (lambda: gf.redeem_points(H1, ["salt=²"], actor=AN), PointsRejected, "digits 0–9"),
        (lambda: gf.redeem_points(H1, ["salt=١"], actor=AN), PointsRejected, "digits 0–9"),
        (lambda: gf.redeem_points(H1, ["salt=1001"], actor=AN), PointsRejected, "at most 1,000"),
        (lambda: gf.redeem_points(H1, {"salt": 10**20}, actor=AN), PointsRejected, "at most 1,000"),
        (lambda: gf.list_points(limit=10**20), InputError, "limit"),
        (
            lambda: gf.lodge_objection("quarterly", "2026Q3", f"household:{H1}", "户主1", "x", entries=[10**20]),
            InputError,
            "entry",
        ),
    ]
    for call, kind, text in refusals:
        with pytest.raises(kind, match=text):
            call()
    assert db.snapshot() == before


def test_a_shelf_never_holds_more_than_its_bound(db, gf):
    gf.load_store_goods(STORE)
    with gf.transaction() as session:
        session.execute(update(StoreItem).where(StoreItem.code == "salt").values(stock=10**9 - 5))
    with pytest.raises(PointsRejected, match="at most 1,000,000,000"):
        gf.restock("mayingtai", "salt", 10, actor=AN)
    assert gf.restock("mayingtai", "salt", 5, actor=AN)["stock"] == 10**9  # an int, never a REAL


def test_a_store_file_with_huge_numbers_is_refused_with_located_problems(db, gf, tmp_path):
    huge = tmp_path / "store.yaml"
    huge.write_text(
        "stores:\n  mayingtai:\n    - {code: salt, name: 食盐, unit: 袋, price: 99999999999999999999, stock: 5}\n"
        "    - {code: oil, name: 油, unit: 桶, price: 5, stock: 99999999999999999999}\n",
        encoding="utf-8",
    )
    with pytest.raises(SourceError) as refused:
        gf.load_store_goods(huge)
    assert "store.yaml:3:" in str(refused.value) and "store.yaml:4:" in str(refused.value)


def test_a_value_the_database_cannot_hold_is_an_input_error_on_both_back_ends(db, gf):
    gf.load_store_goods(STORE)
    with pytest.raises(InputError, match="too large"):  # was OverflowError on SQLite, DatabaseError on PostgreSQL
        with gf.transaction() as session:
            session.execute(update(StoreItem).where(StoreItem.code == "salt").values(stock=10**20))


# -- the faces: the CLI and the API ---------------------------------------------------------------------


@dataclass
class Ran:
    exit_code: int
    output: str


def cli(db: Database, tmp_path: Path, *args: str) -> Ran:
    """``gridflow ARGS`` in its own process (as a clerk runs it; a process of its own also closes its
    connections), on the test's database with the clock at :data:`NOW`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
    env.update(
        GRIDFLOW_HOME=str(tmp_path),
        GRIDFLOW_DATABASE_URL=db.url,
        GRIDFLOW_CONFIG_FILE=str(tmp_path / "absent.yaml"),
        GRIDFLOW_CLOCK_OFFSET_S=clock_offset(NOW),
        GRIDFLOW_NOTICES_FILE=str(tmp_path / "notices.log"),
        COLUMNS="200",
        NO_COLOR="1",
    )
    done = subprocess.run(
        [sys.executable, "-m", "gridflow", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    return Ran(done.returncode, done.stdout + done.stderr)


def test_the_cli_answers_the_drill_with_messages_and_exit_codes(db, gf, tmp_path):
    gf.load_store_goods(STORE)
    gf.record_points(H1, "filial_piety", actor=AN)
    before = db.snapshot()
    for args, code, text in (
        (["points", "record", H1, "caring_elders", "-a", AN, "-e", "清屏\x1b[2J"], 8, "U+001B (ESC"),
        (["points", "record", H1, "caring_elders", "-a", AN, "-e", "x\u009b"], 8, "U+009B (CSI"),
        (["points", "record", H1, "caring_elders", "-a", AN, "--on", "0001-01-20"], 4, "2026-10-01 to 2026-11-30"),
        (["points", "record", H1, "caring_elders", "-a", AN, "--at", "0001-01-01T00:00"], 8, "check the year"),
        (["points", "redeem", H1, "salt=²", "-a", AN], 4, "digits 0–9"),
        (["points", "store", "restock", "mayingtai", "salt", "99999999999999999999", "-a", AN], 4, "1 to 1,000,000"),
        (["points", "approve", "99999999999999999999", "-a", CENTER], 8, "out of range"),
        (["points", "list", "--limit", "99999999999999999999"], 8, "limit"),
        (["case", "report", "-g", GRID, "-a", AN, "-t", "发票\u202egnp.exe"], 4, "U+202E (RIGHT-TO-LEFT OVERRIDE"),
    ):
        done = cli(db, tmp_path, *args)
        assert done.exit_code == code, (args, done.output)
        assert text in done.output and "Traceback" not in done.output, (args, done.output)
    assert db.snapshot() == before


def test_rows_stored_before_the_check_are_printed_escaped(db, gf, tmp_path):
    gf.record_points(H1, "filial_piety", actor=AN, evidence="旧的")
    gf.publish("quarterly", "2026Q3")
    objection = gf.lodge_objection("quarterly", "2026Q3", f"grid:{GRID}", "张三", "旧的")["id"]
    with gf.transaction() as session:  # as a row typed in before this check, or by hand
        session.execute(update(PointsEntry).values(evidence="旧\x1b[2J\u202e的"))
        session.execute(update(Objection).where(Objection.id == objection).values(reason="异\x1b]0;pwned\x07议"))
    listed = cli(db, tmp_path, "points", "list")
    assert listed.exit_code == 0, listed.output
    assert "\x1b" not in listed.output and "\u202e" not in listed.output
    assert "旧\\x1b[2J\\u202e的" in listed.output
    as_json = cli(db, tmp_path, "points", "list", "--json")
    assert as_json.exit_code == 0 and "\u202e" not in as_json.output
    assert json.loads(as_json.output)[0]["evidence"] == "旧\x1b[2J\u202e的"  # the same data, escaped
    shown = cli(db, tmp_path, "publish", "show", "--quarter", "2026Q3")
    assert shown.exit_code == 0, shown.output
    assert "\x1b" not in shown.output and "\x07" not in shown.output and "\\x1b]0;pwned" in shown.output


def test_the_api_answers_the_drill_with_problems(db, gf):
    token = gf.create_token(AN, "drill")["token"]
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(gf), raise_server_exceptions=False) as client:

        def post(path: str, body: dict) -> Any:
            return client.post(path, headers=headers, json=body)

        hostile = post(f"/api/v1/households/{H1}/points", {"rule": "filial_piety", "evidence": "清屏\x1b[2J"})
        assert hostile.status_code == 422 and "U+001B (ESC" in hostile.json()["detail"], hostile.text
        old = post(f"/api/v1/households/{H1}/points", {"rule": "filial_piety", "on": "0001-01-20"})
        assert old.status_code == 409 and "2026-10-01 to 2026-11-30" in old.json()["detail"], old.text
        no_day = post(f"/api/v1/households/{H1}/points", {"rule": "filial_piety", "on": "2026-02-30"})
        assert no_day.status_code == 422 and "on" in no_day.json()["errors"][0]["field"], no_day.text  # was 500
        title = post("/api/v1/cases", {"grid": GRID, "title": "发票\u202egnp.exe"})
        assert title.status_code == 422 and "U+202E" in title.json()["detail"], title.text
        gf.publish("quarterly", "2026Q3")
        huge = post(
            "/api/v1/postings/quarterly/2026Q3/objections",
            {"subject": f"household:{H1}", "reason": "记错了", "entries": [10**20]},
        )
        assert huge.status_code == 422, huge.text  # was 500 (OverflowError on SQLite)
    assert gf.list_points() == []


def test_the_open_month_moves_with_the_clock(db, tmp_path):
    """On 1 December (before the monthly run) November is still open, October no longer."""
    clock = [datetime(2026, 12, 1, 0, 30, tzinfo=SH)]
    gf = app(db, tmp_path, clock)
    try:
        with gf.transaction() as session:
            add_households(session, 1)
        assert gf.record_points(H1, "filial_piety", actor=AN, on=date(2026, 11, 30))["created"]
        with pytest.raises(PointsRejected, match="2026-11-01 to 2026-12-01"):
            gf.record_points(H1, "filial_piety", actor=AN, on=date(2026, 10, 31))
        clock[0] += timedelta(days=40)
        with pytest.raises(PointsRejected, match="2026-12-01 to 2027-01-10"):
            gf.record_points(H1, "filial_piety", actor=AN, on=date(2026, 11, 30), evidence="another form")
        again = gf.record_points(H1, "filial_piety", actor=AN, on=date(2026, 11, 30))  # the same form: no new entry
        assert not again["created"]
    finally:
        gf.close()
