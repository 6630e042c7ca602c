"""The archive and points use cases of :class:`gridflow.app.Gridflow`, on both back ends: plain values out
(JSON-ready), a signed-in viewer sees the households of their scope only, and whole ID numbers and phones
only when asked, allowed by the setting and held by a role that sees personal data."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from config.settings import Settings
from engine import access
from engine.errors import NotFound, NotYet, PermissionDenied
from engine.points import ledger
from engine.store.models import Resident
from gridflow.app import Gridflow
from tests.points_support import AN, CENTER, WANG, XIONG, T, add_households
from tests.support import ROOT, Clock, Database

ID_NUMBER, PHONE = "51000019800101123X", "13800000011"


@pytest.fixture
def homes(db: Database) -> dict[str, list[str]]:
    with db.sessions.begin() as session:
        homes = {grid: add_households(session, 2, grid=grid) for grid in ("mayingtai-01", "mayingtai-02")}
        session.add(
            Resident(
                id="MYT-01-0001-1", household_id="MYT-01-0001", name="张三", relation="户主",
                gender="男", birth_year=1980, id_number=ID_NUMBER, phone=PHONE, active=True,
            )
        )  # fmt: skip
    return homes


def app(db: Database, tmp_path, show_full: bool = True) -> Gridflow:
    return Gridflow(
        Settings(home=tmp_path, database_url=db.url, archive_show_full=show_full), clock=Clock(T + timedelta(hours=1))
    )


def viewer(gf: Gridflow, person: str) -> access.Viewer:
    with gf.transaction() as session:
        found = access.viewer_of(ledger.org(session), person)
    assert found is not None
    return found


def test_households_by_viewer_scope_and_masked_by_role(db, homes, tmp_path):
    gf = app(db, tmp_path)
    try:
        assert gf.list_households()["total"] == 4
        an, xiong, center = (viewer(gf, p) for p in (AN, XIONG, CENTER))
        assert [h["id"] for h in gf.list_households(viewer=an)["households"]] == homes["mayingtai-01"]
        assert gf.list_households(viewer=xiong)["total"] == gf.list_households(viewer=center)["total"] == 4
        with pytest.raises(NotFound):
            gf.show_household(homes["mayingtai-01"][0], viewer=viewer(gf, WANG))  # another grid's: not there
        masked = gf.show_household("MYT-01-0001", viewer=an)
        assert masked["masked"] and masked["residents"][0]["id_number"] == "510000********123X"
        assert masked["residents"][0]["phone"] == "138****0011"
        with pytest.raises(PermissionDenied, match="may not see whole ID numbers"):
            gf.show_household("MYT-01-0001", viewer=xiong, full=True)
        whole = gf.show_household("MYT-01-0001", viewer=center, full=True)
        assert not whole["masked"] and whole["residents"][0]["id_number"] == ID_NUMBER
        json.dumps(whole)
    finally:
        gf.close()
    off = app(db, tmp_path, show_full=False)
    try:
        with pytest.raises(PermissionDenied, match="archive_show_full"):
            off.show_household("MYT-01-0001", viewer=viewer(off, CENTER), full=True)
    finally:
        off.close()


def test_points_use_cases_answer_plain_values(db, homes, tmp_path):
    gf = app(db, tmp_path)
    home = homes["mayingtai-01"][0]
    try:
        with pytest.raises(NotYet):
            gf.record_points(home, "clean_courtyard", actor=AN, at=gf.clock() + timedelta(days=1))
        done = gf.record_points(home, "five_good_family", actor=XIONG, evidence="村评议通过")
        assert done["created"] and done["pending"] and done["balance"] == 0
        entry = done["entry"]["id"]
        approved = gf.approve_points(entry, actor=CENTER, note="核实")
        assert approved["entry"]["approval"]["approved"] and approved["balance"] == 20
        assert gf.list_points(pending=True) == []
        gf.load_store_goods(ROOT / "config" / "store.yaml")
        redeemed = gf.redeem_points(home, {"salt": 2}, actor=AN, key="till-1")
        assert redeemed["created"] and redeemed["balance"] == 10 and redeemed["receipt"][0].startswith("积分超市")
        assert not gf.redeem_points(home, ["salt=2"], actor=AN, key="till-1")["created"]
        reversed_ = gf.reverse_redemption(redeemed["redemption"]["id"], actor=CENTER, reason="退货")
        assert reversed_["balance"] == 20 and reversed_["redemption"]["reversed_by"] == CENTER
        assert gf.points_balance(home) == {
            "household": home, "head": "户主1", "earned": 20, "redeemed": 10, "refunded": 10, "balance": 20,
        }  # fmt: skip
        report = gf.stock_report(village="mayingtai")
        assert report["redemptions"] == 1 and any(g["code"] == "salt" for g in report["goods"])
        json.dumps([done, approved, redeemed, reversed_, report, gf.list_points(household=home)])
    finally:
        gf.close()
