"""`gridflow points …` as a village clerk runs it (embedded SQLite home): record, approve, correct, redeem
with a receipt, reverse, the stock report and the households' month; bad input exits non-zero and
changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from engine.store.db import create_db_engine, session_factory
from tests import runtime_support as rt
from tests.points_support import AN, CENTER, XIONG, add_households
from tests.support import ROOT, T0


@pytest.fixture
def home(tmp_path) -> dict[str, str]:
    now = datetime(2026, 12, 1, 3, tzinfo=UTC)  # 1 December, 11:00 local
    env = rt.environment(tmp_path / "home", "", "", now=now, COLUMNS="200")
    rt.init(env, at=datetime(2026, 10, 30, 1, tzinfo=UTC))  # set up before the clerk's November
    engine = create_db_engine(f"sqlite:///{tmp_path / 'home' / 'gridflow.db'}")
    with session_factory(engine).begin() as s:
        add_households(s, 2)
    engine.dispose()
    return env


def ok(args: list[str], env: dict[str, str]) -> str:
    done = rt.cli(args, env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_clerks_month(home):
    assert "goods: 54 added" in ok(["points", "store", "load", str(ROOT / "config" / "store.yaml")], home)
    h = "MYT-01-0001"
    for day in ("2026-11-03", "2026-11-10", "2026-11-17"):
        out = ok(
            [
                "points",
                "record",
                h,
                "filial_piety",
                "-a",
                AN,
                "--on",
                day,
                "-e",
                f"照顾母亲 {day}",
                "--at",
                f"{day}T10:00",
            ],
            home,
        )
        assert "+5 分" in out
    again = ok(
        [
            "points",
            "record",
            h,
            "filial_piety",
            "-a",
            AN,
            "--on",
            "2026-11-17",
            "-e",
            "照顾母亲 2026-11-17",
            "--at",
            "2026-11-17T10:05",
        ],
        home,
    )
    assert "already recorded" in again  # the same form, submitted twice
    pending = ok(
        [
            "points",
            "record",
            h,
            "enterprise",
            "-a",
            XIONG,
            "--on",
            "2026-11-20",
            "-e",
            "花椒种植",
            "--at",
            "2026-11-20T10:00",
        ],
        home,
    )
    assert "待审核" in pending
    entry = pending.split(":")[0].split("#")[1]
    assert "approved" in ok(["points", "approve", entry, "-a", CENTER, "--at", "2026-11-21T09:00"], home)
    assert json.loads(ok(["points", "balance", h, "--json"], home))["balance"] == 25
    receipt = ok(
        ["points", "redeem", h, "salt=2", "soy_sauce", "-a", AN, "--key", "till-1", "--at", "2026-11-25T10:00"], home
    )
    assert "积分超市兑换凭证" in receipt and "合计 18 分   余额 7 分" in receipt
    assert "already redeemed" in ok(["points", "redeem", h, "salt=2", "soy_sauce", "-a", AN, "--key", "till-1"], home)
    report = json.loads(
        ok(["points", "store", "report", "--village", "mayingtai", "--month", "2026-11", "--json"], home)
    )
    salt = next(g for g in report["goods"] if g["code"] == "salt")
    assert (salt["stock"], salt["redeemed"], report["redemptions"]) == (198, 2, 1)
    assert "reversed" in ok(
        ["points", "reverse", "1", "-a", XIONG, "--reason", "拿错了", "--at", "2026-11-26T10:00"], home
    )
    assert json.loads(ok(["points", "balance", h, "--json"], home))["balance"] == 25
    ledger = json.loads(ok(["points", "list", "--household", h, "--json"], home))
    assert [e["kind"] for e in ledger][:2] == ["refund", "redeem"]
    ok(["score", "run", "--period", "2026-11"], home)
    month = json.loads(ok(["points", "households", "--period", "2026-11", "--json"], home))
    top = next(r for r in month if r["household"] == h)
    assert (top["points"], top["rank_village"], top["listed"]) == (25, 1, "red")
    assert "孝道之星" in top["stars"]


def test_bad_input_changes_nothing(home):
    ok(["points", "store", "load", str(ROOT / "config" / "store.yaml")], home)
    h = "MYT-01-0001"
    ok(["points", "record", h, "filial_piety", "-a", AN, "--on", "2026-11-03", "--at", "2026-11-03T10:00"], home)
    for args, code, text in (
        (["points", "record", "MYT-99-0001", "filial_piety", "-a", AN], 3, "no household"),
        (["points", "record", h, "karaoke", "-a", AN], 3, "no points rule 'karaoke'"),
        (["points", "record", h, "enterprise", "-a", AN], 4, "needs village_secretary"),
        (["points", "record", h, "filial_piety", "-a", AN, "--on", "2026-12-24"], 4, "is in the future"),
        (["points", "record", h, "filial_piety", "-a", AN, "--on", "27/11"], 8, "2026-11-27"),
        (["points", "redeem", h, "salt=-2", "-a", AN], 4, "whole number"),
        (["points", "redeem", h, "salt=1.5", "-a", AN], 4, "whole number"),
        (["points", "redeem", h, "cooking_oil", "-a", AN], 4, "has 5 points; these goods cost 40"),
        (["points", "redeem", h, "caviar", "-a", AN], 3, "has no 'caviar'"),
        (["points", "correct", "999", "-a", XIONG, "--reason", "x"], 3, "no points entry #999"),
        (["points", "reverse", "5", "-a", XIONG, "--reason", "x"], 3, "no redemption #5"),
        (["points", "record", h, "filial_piety", "-a", AN, "--at", "2027-01-01T10:00"], 9, "is in the future"),
    ):
        done = rt.cli(args, home)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        assert text in done.stderr, (args, done.stderr)
    assert json.loads(ok(["points", "balance", h, "--json"], home)) == {
        "household": h,
        "head": "户主1",
        "earned": 5,
        "redeemed": 0,
        "refunded": 0,
        "balance": 5,
    }


def test_make_run_imports_the_sample_archive_only_into_an_empty_one(home, tmp_path):
    left = ok(["archive", "import", "--if-empty", str(ROOT / "config" / "archive" / "shengli.csv")], home)
    assert "holds 2 households already" in left  # the clerk's own archive is never overwritten
    fresh = rt.environment(tmp_path / "fresh", "", "", now=T0)
    rt.init(fresh)
    loaded = ok(["archive", "import", "--if-empty", str(ROOT / "config" / "archive" / "shengli.csv")], fresh)
    assert "1881 added" in loaded
