"""`gridflow score …` and `gridflow publish …` as a user runs them, on an embedded (SQLite) home and on
PostgreSQL: the fixture months, scored and posted; bad input exits non-zero and changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.store.db import create_db_engine, session_factory
from tests import runtime_support as rt
from tests.scoring_month import Month, sh
from tests.support import Database


@pytest.fixture(params=["sqlite", "postgresql"])
def home(request, tmp_path) -> dict[str, str]:
    url = "" if request.param == "sqlite" else request.getfixturevalue("pg_server").create("gridflow_score_cli")
    env = rt.environment(
        tmp_path / "home",
        url,
        "",
        now=datetime(2027, 1, 10, tzinfo=UTC),
        GRIDFLOW_PUBLIC_URL="https://gf.example.org/p",
        COLUMNS="200",
    )
    rt.init(env, at=sh(10, 30, 9))  # set up before the months the fixture fills
    db_url = url or f"sqlite:///{tmp_path / 'home' / 'gridflow.db'}"
    engine = create_db_engine(db_url)
    month = Month(Database(request.param, db_url, engine, session_factory(engine)))
    month.november()
    month.december()
    month.sweep(sh(1, 1, 0, y=2027))
    engine.dispose()
    return env


def ok(args: list[str], env: dict[str, str]) -> str:
    done = rt.cli(args, env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_score_run_show_force_and_history(home):
    first = json.loads(ok(["score", "run", "--period", "2026-11", "--at", "2026-12-01T01:00", "--json"], home))
    assert first["fresh"] and first["run"] == 1
    assert first["township"]["on_time_close_rate"] == {"numerator": 5, "denominator": 7, "value": 5 / 7}
    again = ok(["score", "run", "--period", "2026-11", "--at", "2026-12-01T01:05"], home)
    assert "scored already (run #1" in again and "--force" in again
    forced = ok(["score", "run", "--period", "2026-11", "--force", "--at", "2026-12-03T09:00"], home)
    assert "run #2" in forced
    history = json.loads(ok(["score", "history", "--period", "2026-11", "--json"], home))
    assert [(r["run"], r["current"]) for r in history] == [(1, False), (2, True)]
    assert history[0]["on_time_close_rate"] == history[1]["on_time_close_rate"]  # frozen: December changed nothing
    grids = json.loads(ok(["score", "show", "--period", "2026-11", "--by", "grid", "--json"], home))
    top = next(s for s in grids["scores"] if s["subject_id"] == "mayingtai-01")
    assert top["rank"] == 1 and top["grade"] and top["cases"] == 9
    table = ok(["score", "show", "--period", "2026-11", "--by", "worker"], home)
    assert "安怡萱" in table and "未排名" in table and "--all" in table
    jobs = json.loads(ok(["jobs", "list", "--json"], home))
    assert [(r["job"], r["period"], r["attempts"]) for r in jobs["runs"] if r["job"] == "monthly_scoring"] == [
        ("monthly_scoring", "2026-11", 2)
    ]


def test_score_bad_input(home):
    for args, code, text in (
        (["score", "run", "--period", "2026-13"], 8, "2026-11"),
        (["score", "run", "--period", "2026-11", "--rules-version", "1"], 8, "add --force"),
        (["score", "run", "--period", "2026-12", "--at", "2026-12-20T10:00"], 9, "not over yet"),
        (["score", "show", "--period", "2026-10"], 3, "has not been scored"),
        (["score", "run", "--period", "2027-01", "--at", "2027-02-01T02:00"], 9, "is in the future"),
        (["score", "show", "--period", "2026-11", "--by", "county"], 8, "grid, worker"),
        (
            ["score", "run", "--period", "2026-11", "--force", "--rules-version", "9", "--at", "2026-12-02T01:00"],
            3,
            "no scoring rules of version 9",
        ),
    ):
        done = rt.cli(args, home)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        assert text in done.stderr, (args, done.stderr)
    history = json.loads(ok(["score", "history", "--period", "2026-11", "--json"], home))
    assert history == []


def test_publish_object_decide_and_show(home, tmp_path):
    out = ok(["publish", "run", "--quarter", "2026Q4", "--at", "2027-01-01T03:00"], home)
    assert "v1" in out and "2027-01-08 03:00" in out and "https://gf.example.org/p/quarterly/2026Q4/v1.html" in out
    folder = Path(home["GRIDFLOW_HOME"]) / "postings" / "quarterly" / "2026Q4"
    assert sorted(p.name for p in folder.iterdir()) == ["v1.csv", "v1.html", "v1.json"]
    assert "published already" in ok(["publish", "run", "--quarter", "2026Q4", "--at", "2027-01-01T04:00"], home)
    late = rt.cli(
        [
            "publish",
            "object",
            "--quarter",
            "2026Q4",
            "--subject",
            "grid:mayingtai-01",
            "--by",
            "村委会",
            "--reason",
            "有误",
            "--at",
            "2027-01-09T10:00",
        ],
        home,
    )
    assert late.returncode == 4 and "closed at 2027-01-08 03:00" in late.stderr
    nobody = rt.cli(
        [
            "publish",
            "object",
            "--quarter",
            "2026Q4",
            "--subject",
            "mayingtai-01",
            "--by",
            "村委会",
            "--reason",
            "有误",
            "--at",
            "2027-01-02T10:00",
        ],
        home,
    )
    assert nobody.returncode == 4 and "kind:id" in nobody.stderr
    lodged = ok(
        [
            "publish",
            "object",
            "--quarter",
            "2026Q4",
            "--subject",
            "grid:mayingtai-01",
            "--case",
            "SL-2026-000001",
            "--by",
            "马营台村委会",
            "--reason",
            "延误系上级审批所致",
            "--at",
            "2027-01-04T10:00",
        ],
        home,
    )
    assert "objection #1 recorded" in lodged
    decided = ok(
        [
            "publish",
            "decide",
            "1",
            "--uphold",
            "--by",
            "乡网格管理中心",
            "--note",
            "经核实属实，予以核减",
            "--at",
            "2027-01-06T09:00",
        ],
        home,
    )
    assert "republished" in decided and "v2" in decided and "综合得分" in decided
    shown = json.loads(ok(["publish", "show", "--quarter", "2026Q4", "--json"], home))
    assert shown["version"] == 2 and shown["objections"][0]["status"] == "upheld"
    assert shown["document"]["changes"]
    first = json.loads(ok(["publish", "show", "--quarter", "2026Q4", "--version", "1", "--json"], home))
    assert first["current"] is False and first["document"]["changes"] == []
    listing = json.loads(ok(["publish", "show", "--json"], home))
    assert [(p["period"], p["version"], p["current"]) for p in listing] == [("2026Q4", 1, False), ("2026Q4", 2, True)]
    ok(["publish", "show", "--quarter", "2026Q4", "--out", str(tmp_path / "print")], home)
    assert (
        (tmp_path / "print" / "quarterly-2026Q4-v2.html")
        .read_text(encoding="utf-8")
        .lower()
        .startswith("<!doctype html>")
    )
    undecided = rt.cli(["publish", "decide", "1", "--by", "中心", "--note", "x"], home)
    assert undecided.returncode == 8 and "--uphold or --reject" in undecided.stderr
    again = rt.cli(["publish", "decide", "1", "--reject", "--by", "中心", "--note", "x"], home)
    assert again.returncode == 4 and "already decided" in again.stderr
    notices = json.loads(ok(["notices", "list", "--json", "--limit", "200"], home))
    events = [n["event"] for n in (notices["notices"] if isinstance(notices, dict) else notices)]
    assert events.count("quarterly_posting") >= 2 * 6  # every village secretary and leader, for v1 and for v2
