"""The quarterly posting (季公示) and the annual summary (年总结) of the fixture months, on both back
ends: figures, privacy, versions and hashes, the objection window, an upheld objection that
recomputes and republishes with the differences, notices, and the jobs keyed by period."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from engine import jobs
from engine.errors import NotFound
from engine.jobs import parse_period
from engine.periodic import bodies
from engine.publication import posting
from engine.publication.posting import PostingRejected
from engine.scoring import runs
from engine.scoring.config import load
from engine.store.models import Case, Objection, Outbox, Publication, RoleAssignment, ScoreRun
from tests.scoring_month import Month, sh
from tests.support import ROOT, calendars

SH = ZoneInfo("Asia/Shanghai")
Q4 = parse_period("quarter", "2026Q4")
RULES = load(ROOT / "config" / "scoring.yaml")
NEW_YEAR = sh(1, 1, 3, y=2027)
PHONE = re.compile(r"1[3-9]\d{9}")


@pytest.fixture
def quarter(db) -> Month:
    m = Month(db)
    m.november()
    m.december()
    m.sweep(sh(1, 1, 0, y=2027))
    return m


def publish(db, at=NEW_YEAR):
    with db.sessions.begin() as s:
        published = posting.publish(s, "quarterly", Q4, at, RULES, SH, "quarterly job", "https://gf.example.org/p")
        return published.publication.id, published.artefacts, published.notices


def test_the_quarterly_posting_shows_the_quarters_figures_and_the_monthly_trend(db, quarter):
    pub_id, art, notices = publish(db)
    doc = json.loads(art.json)
    with db.sessions.begin() as s:
        pub = s.get(Publication, pub_id)
        run = runs.current_run(s, "2026Q4")
        months = [runs.current_run(s, m) for m in ("2026-10", "2026-11", "2026-12")]
        assert pub.run_id == run.id and pub.version == 1 and pub.content_hash == art.content_hash
        assert pub.objection_until == NEW_YEAR + timedelta(days=7)
        secretaries_and_leaders = s.scalar(
            select(func.count(func.distinct(RoleAssignment.person_id))).where(
                RoleAssignment.role.in_(("village_secretary", "township_leader"))
            )
        )
        staged = list(s.scalars(select(Outbox).where(Outbox.template == "quarterly_posting")))
    assert all(months)
    assert notices == len(staged) == secretaries_and_leaders
    assert staged[0].params["url"] == "https://gf.example.org/p/quarterly/2026Q4/v1.html"
    assert doc["period_label"] == "2026年第四季度" and doc["objection_until"] == "2027-01-08 03:00"
    # the quarter: A–K all closed or open in it; closed A B D E F G H J (J's October steps count too)
    figures = {f["label"]: f for f in doc["key_figures"]}
    assert figures["结案数"]["value"] == "8"
    assert figures["上报数"]["value"] == "11"
    assert (
        figures["按期结案率"]["detail"] == f"{int(run.summary['closed_on_time']['value'])} / "
        f"{int(run.summary['due_to_close']['value'])}"
    )
    november = doc["trend"]["points"][1]
    assert november == {"label": "11月", "value": 71.43}  # 5 / 7, worked out by hand in test_scoring.py
    assert [p["label"] for p in doc["trend"]["points"]] == ["10月", "11月", "12月"]
    for f in doc["key_figures"]:
        assert f["value"] in art.html
    assert "马营台村" in art.html and "71.43" in art.html  # the chart's point label
    rows = list(csv.reader(io.StringIO(art.csv.lstrip("\ufeff"))))
    assert any("马营台村" in cell for row in rows for cell in row)


def test_no_residents_personal_data_in_a_posting(db, quarter):
    _, art, _ = publish(db)
    with db.sessions.begin() as s:
        titles = list(s.scalars(select(Case.title)))
    for text in (art.html, art.csv, art.json):
        assert not PHONE.search(text), "a phone number in a public posting"
        for title in titles:
            assert title not in text  # case titles name residents and places in their words: never posted
        assert "SL-" not in text  # nor case codes


def test_publishing_twice_by_the_job_publishes_once_and_hash_is_reproducible(db, quarter):
    spec = jobs.JOBS["quarterly_publication"]
    body = bodies(SH, calendars(), scoring=lambda: RULES)["quarterly_publication"]
    with db.sessions.begin() as s:
        assert [p.key for p in jobs.due_periods(s, spec, sh(1, 1, 2, y=2027), SH, 1)] == ["2026Q3"]  # Q4: 03:00
        assert [p.key for p in jobs.due_periods(s, spec, NEW_YEAR, SH, 1)] == ["2026Q4"]
    for _ in range(2):
        with db.sessions.begin() as s:
            jobs.run_period(s, spec, Q4, NEW_YEAR, SH, body, "test")
    with db.sessions.begin() as s:
        pubs = list(s.scalars(select(Publication)))
        assert len(pubs) == 1
        again = posting.document(
            s,
            "quarterly",
            Q4,
            s.get(ScoreRun, pubs[0].run_id),
            [(m, runs.current_run(s, m.key)) for m in posting.months_of(Q4)],
            RULES,
            SH,
            1,
            NEW_YEAR,
            pubs[0].objection_until,
            None,
            "",
        )
    from engine.publication.render import render

    assert render(again).content_hash == pubs[0].content_hash  # the same document, the same hash


def test_an_objection_outside_the_window_or_about_nothing_changes_nothing(db, quarter):
    publish(db)
    with db.sessions.begin() as s, pytest.raises(PostingRejected, match="closed at"):
        posting.lodge(s, "quarterly", "2026Q4", "grid:mayingtai-01", [], "马营台村委会", "有误", sh(1, 9, 4, y=2027))
    with db.sessions.begin() as s, pytest.raises(PostingRejected, match="not in the posting"):
        posting.lodge(s, "quarterly", "2026Q4", "grid:nowhere", [], "马营台村委会", "有误", sh(1, 2, 9, y=2027))
    with db.sessions.begin() as s, pytest.raises(PostingRejected, match="no case"):
        posting.lodge(
            s, "quarterly", "2026Q4", "grid:mayingtai-01", ["SL-1999-000001"], "村委会", "有误", sh(1, 2, 9, y=2027)
        )
    with db.sessions.begin() as s, pytest.raises(NotFound):
        posting.lodge(s, "quarterly", "2026Q3", "grid:mayingtai-01", [], "村委会", "有误", sh(1, 2, 9, y=2027))
    with db.sessions.begin() as s:
        assert s.scalar(select(func.count()).select_from(Objection)) == 0


def test_an_upheld_objection_recomputes_and_republishes_with_the_differences(db, quarter):
    first_id, first, _ = publish(db)
    j = quarter.ids["J"]  # carried over from October, closed late: the village says the delay was not theirs
    with db.sessions.begin() as s:
        code = s.get(Case, j).code
        objection = posting.lodge(
            s,
            "quarterly",
            "2026Q4",
            "grid:mayingtai-01",
            [code],
            "马营台村委会",
            "该件延误系上级审批所致",
            sh(1, 4, 10, y=2027),
        )
        oid = objection.id
    with db.sessions.begin() as s:
        published = posting.decide(s, oid, True, "乡网格管理中心", "经核实属实，予以核减", sh(1, 6, 9, y=2027), SH)
        second = published.publication
        assert (second.version, second.current) == (2, True)
        assert s.get(Publication, first_id).current is False  # v1 is kept
        assert second.objection_until == NEW_YEAR + timedelta(days=7)  # the window does not restart
        assert runs.current_run(s, "2026Q4").exempt == [j]
        assert runs.current_run(s, "2026-11").exempt == [j]  # its months too
        assert s.get(Objection, oid).republished_id == second.id
        v2_notices = s.scalar(
            select(func.count()).select_from(Outbox).where(Outbox.dedupe_key.like("posting:quarterly:2026Q4:v2:%"))
        )
    assert second.content_hash != first.content_hash
    doc = json.loads(second.json)
    assert doc["version"] == 2 and "异议第" in doc["change_reason"]
    assert any(
        c["subject"] == "马营台村1号网格" or "mayingtai" in c["subject"] or c["what"] == "综合得分"
        for c in doc["changes"]
    )
    assert doc["trend"]["points"][1]["value"] == 83.33  # November without J: 5 of the 6 left due closed on time
    assert "本版更正说明" in second.html
    assert v2_notices > 0
    with db.sessions.begin() as s, pytest.raises(PostingRejected, match="already decided"):
        posting.decide(s, oid, False, "中心", "再议", sh(1, 6, 10, y=2027), SH)


def test_a_rejected_objection_changes_no_figure(db, quarter):
    publish(db)
    with db.sessions.begin() as s:
        oid = posting.lodge(
            s, "quarterly", "2026Q4", "worker:p-an-yixuan", [], "安怡萱", "排名有误", sh(1, 2, 9, y=2027)
        ).id
    with db.sessions.begin() as s:
        assert posting.decide(s, oid, False, "中心", "经核实数据无误", sh(1, 3, 9, y=2027), SH) is None
        assert s.scalar(select(func.count()).select_from(Publication)) == 1
        assert s.get(Objection, oid).status == "rejected"


def test_the_annual_summary(db, quarter):
    year = parse_period("year", "2026")
    with db.sessions.begin() as s:
        published = posting.publish(s, "annual", year, sh(1, 2, 1, y=2027), RULES, SH, "annual job")
        pub = published.publication
        assert pub.objection_until is None
        assert runs.current_run(s, "2026-03") is not None  # every month of the year scored on the way
    doc = json.loads(pub.json)
    assert len(doc["trend"]["points"]) == 12
    assert [x["title"] for x in doc["extra_sections"]] == ["月度走势", "年度十佳网格"]
    assert doc["extra_sections"][0]["rows"][10][0] == "11月"
    assert "2026年度" in pub.html
    with db.sessions.begin() as s:
        assert s.scalar(select(func.count()).select_from(Outbox).where(Outbox.template == "annual_summary")) > 0


def test_the_fixture_posting_is_rendered_to_png_and_kept(pg_db, tmp_path):
    """Looked at, not only parsed: the real posting of the fixture quarter (v1, then v2 after an upheld
    objection) rendered by headless Chromium; the PNGs stay in test-artifacts/ after the run."""
    from tests.chromium import render_png, require_chromium, require_cjk_font

    require_chromium()
    require_cjk_font()
    pg_db.reset()
    m = Month(pg_db)
    m.november()
    m.december()
    m.sweep(sh(1, 1, 0, y=2027))
    first_id, first, _ = publish(pg_db)
    with pg_db.sessions.begin() as s:
        oid = posting.lodge(
            s,
            "quarterly",
            "2026Q4",
            "grid:mayingtai-01",
            [s.get(Case, m.ids["J"]).code],
            "马营台村委会",
            "延误系上级审批所致",
            sh(1, 4, 10, y=2027),
        ).id
    with pg_db.sessions.begin() as s:
        second = posting.decide(s, oid, True, "乡网格管理中心", "经核实属实，予以核减", sh(1, 6, 9, y=2027), SH)
        second_html = second.publication.html
    artefacts = ROOT / "test-artifacts"
    artefacts.mkdir(exist_ok=True)
    for name, html in (("fixture-2026Q4-v1", first.html), ("fixture-2026Q4-v2", second_html)):
        page = tmp_path / f"{name}.html"
        page.write_text(html, encoding="utf-8")
        png = artefacts / f"{name}.png"
        render_png(page, png, width=794, height=1600)
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert int.from_bytes(data[16:20], "big") == 794 and int.from_bytes(data[20:24], "big") == 1600
        assert len(data) > 60_000  # a page full of text, a chart and tables; a blank page is a few KB


def test_objections_name_cases_of_the_subject_and_the_period(db, quarter):
    publish(db)
    with db.sessions.begin() as s:
        h = s.get(Case, quarter.ids["H"]).code  # mayingtai-02's case
    with db.sessions.begin() as s, pytest.raises(PostingRejected, match="is not one of grid:mayingtai-01's cases"):
        posting.lodge(s, "quarterly", "2026Q4", "grid:mayingtai-01", [h], "村委会", "有误", sh(1, 2, 9, y=2027))
    with db.sessions.begin() as s:  # the village, and the worker who reported it, may dispute it
        posting.lodge(s, "quarterly", "2026Q4", "village:mayingtai", [h], "村委会", "有误", sh(1, 2, 9, y=2027))
        posting.lodge(s, "quarterly", "2026Q4", "worker:p-wang-hongmei", [h], "王红梅", "有误", sh(1, 2, 9, y=2027))


def test_a_second_upheld_objection_lists_the_changes_against_the_version_before_it(db, quarter):
    publish(db)
    codes = {}
    with db.sessions.begin() as s:
        for name in ("J", "E"):
            codes[name] = s.get(Case, quarter.ids[name]).code
        first = posting.lodge(
            s, "quarterly", "2026Q4", "grid:mayingtai-01", [codes["J"]], "村委会", "延误", sh(1, 2, 9, y=2027)
        ).id
        second = posting.lodge(
            s, "quarterly", "2026Q4", "grid:mayingtai-01", [codes["J"]], "村委会", "重复", sh(1, 2, 10, y=2027)
        ).id
    with db.sessions.begin() as s:
        v2 = posting.decide(s, first, True, "中心", "属实", sh(1, 3, 9, y=2027), SH).publication
        v2_changes = list(v2.changes)
    with db.sessions.begin() as s:  # the same case again: nothing moves between v2 and v3
        v3 = posting.decide(s, second, True, "中心", "属实", sh(1, 3, 10, y=2027), SH).publication
        assert v3.version == 3
        assert v3.changes == [] and v2_changes


def test_a_republished_posting_keeps_residents_and_masked_names_out(db, quarter):
    from engine.scoring.config import parse_text

    text = (ROOT / "config" / "scoring.yaml").read_text(encoding="utf-8")
    masked = parse_text(
        text.replace("version: 1", "version: 2").replace("show_worker_names: true", "show_worker_names: false")
    )
    with db.sessions.begin() as s:
        posting.publish(s, "quarterly", Q4, NEW_YEAR, masked, SH, "quarterly job")
        oid = posting.lodge(
            s,
            "quarterly",
            "2026Q4",
            "grid:mayingtai-01",
            [s.get(Case, quarter.ids["J"]).code],
            "村委会",
            "延误",
            sh(1, 2, 9, y=2027),
        ).id
    with db.sessions.begin() as s:
        v2 = posting.decide(s, oid, True, "中心", "居民张三(13912345678)反映属实", sh(1, 3, 9, y=2027), SH)
        html, data = v2.publication.html, v2.publication.json
    for text in (html, data):
        assert "13912345678" not in text and "张三" not in text  # the decision's note stays internal
        assert "安怡萱" not in text and "陈小琴" not in text  # masked in the rankings and in the changes
    assert "安**" in html
