"""The demo township (演示数据, ``gridflow demo``) on SQLite and PostgreSQL, at a pinned time.

Its figures are checked against what they must be: every month's township and village indicators
against the plain-Python oracle (:mod:`engine.scoring.naive`), and the cases by state, category
and month against the plan they were made from. Loading twice changes nothing; a quarter with a
real case is refused; ``--clear`` leaves every other row as it was; the setting turns it off;
demo data is labelled in the posting, in the CLI's outputs, and its notices are never sent.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

import gridflow.app
import gridflow.cli as cli
import gridflow.cli.common as common
from config.settings import Settings
from engine import cases
from engine.errors import CommandRejected, ConfigError, PeriodNotOver
from engine.jobs import bounds, parse_period
from engine.publication import posting
from engine.scoring import naive, runs
from engine.store.demo_repo import DEMO_CHANNEL, TITLE_PREFIX
from engine.store.models import Case, CaseEvent, Delivery, JobRun, Outbox
from gridflow import demo
from gridflow.app import Gridflow
from notifications.channels.memory import MemoryChannel
from notifications.config import NoticeConfig
from notifications.dispatch import DEMO_NOTE, dispatch
from notifications.render import Renderer
from tests.support import CENTER, GRID, GRID_WORKER, calendars

QUARTER = parse_period("quarter", "2026Q3")
NOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai: the "today"
SMALL = 40  # a quick demo, every course of a case at least once


@pytest.fixture
def gf(db, tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDFLOW_CONFIG_FILE", str(tmp_path / "absent.yaml"))
    app = Gridflow(Settings(home=tmp_path, database_url=db.url), clock=lambda: NOW)
    yield app
    app.close()


def load(gf: Gridflow, size: int = SMALL) -> demo.Loaded:
    return demo.load(gf, quarter=QUARTER, now=NOW, size=size)


def real_case(gf: Gridflow, at: datetime) -> str:
    """A case of a real grid worker, classified by the centre."""
    with gf.transaction() as s:
        code = cases.report(
            s, grid_id=GRID, actor_id=GRID_WORKER, fields={"title": "水管破裂"}, at=at, tz=gf.tz, calendars=calendars()
        ).case.code
        fields = {"category": "water_supply", "priority": "normal"}
        cases.fire(s, code, "classify", actor_id=CENTER, fields=fields, at=at, tz=gf.tz, calendars=calendars())
    return code


# -- the figures --------------------------------------------------------------------------------


def check_against_the_oracle(gf: Gridflow, plan) -> None:  # type: ignore[no-untyped-def]
    """Each month's stored township and village indicators = the naive computation; the counts = the plan."""
    with gf.transaction(write=False) as s:
        for month in posting.months_of(QUARTER):
            run = runs.current_run(s, month.key)
            assert run is not None, month.key
            stored = runs.indicator_table(s, run)
            start, end = bounds(month, gf.tz)
            oracle = naive.compute(s, gf.scoring_rules(), start, end, villages=run.org["grid_village"])
            keys = {k for k in oracle if k[0] in ("township", "village")}
            assert keys == {k for k in stored if k[0] in ("township", "village") and k in oracle}
            assert ("township", "*") in keys and len(keys) > 3
            for key in keys:
                for name, want in oracle[key].items():
                    got = stored[key][name]
                    assert (got.numerator, got.denominator) == pytest.approx((want.numerator, want.denominator)), (
                        month.key,
                        key,
                        name,
                    )
                    assert got.value == pytest.approx(want.value), (month.key, key, name)
            township = stored[("township", "*")]
            for indicator, count in counted_from_plan(plan, start, end).items():
                assert township[indicator].value == count, (month.key, indicator)


def counted_from_plan(plan, start: datetime, end: datetime) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """What a month's counts must be, from the plan alone: reports, classifications, closes, voids in it."""
    steps = Counter(step.trigger for case in plan.cases for step in case.steps if start <= step.at < end)
    return {
        "reported": steps["report"],
        "classified": steps["classify"],
        "closed": steps["verify"],
        "voided": steps["void"],
    }


def test_the_demo_quarter_matches_the_oracle_and_its_plan(db, gf):
    result = load(gf)
    plan = result.plan
    assert result.fresh and plan is not None and len(plan.cases) == SMALL
    assert {c.story for c in plan.cases} >= {"voided", "returned", "reworked", "extended", "suspended", "stuck"}
    check_against_the_oracle(gf, plan)
    with gf.transaction(write=False) as s:
        by_state = dict(s.execute(select(Case.status, func.count()).group_by(Case.status)).all())
        by_category = dict(s.execute(select(Case.category, func.count()).group_by(Case.category)).all())
        labelled = s.scalars(select(Case.title).where(Case.source_channel == DEMO_CHANNEL)).all()
        triggers = set(s.scalars(select(CaseEvent.trigger)))
        jobs = s.execute(select(JobRun.job, JobRun.period, JobRun.status, JobRun.worker)).all()
        results = s.scalars(select(JobRun.result)).all()
    assert by_state == dict(plan.states()) and by_category == dict(plan.categories())
    assert len(labelled) == SMALL and all(t.startswith(TITLE_PREFIX) for t in labelled)
    assert {
        "sla.reminder",
        "sla.breach",
        "sla.escalated",
        "return",
        "rework",
        "approve_extension",
        "suspend",
    } <= triggers
    assert sorted(jobs) == sorted(
        [("monthly_scoring", m, "done", demo.WORKER) for m in ("2026-07", "2026-08", "2026-09")]
        + [("quarterly_publication", "2026Q3", "done", demo.WORKER)]
    )
    assert all(r["demo"] == "演示数据" for r in results)  # what `gridflow jobs list` shows


# -- idempotent, refusing, clearing ----------------------------------------------------------------


def test_loading_again_changes_nothing_and_says_so_and_the_plan_is_the_same(db, gf):
    first = load(gf).plan
    before = db.snapshot()
    again = load(gf)
    assert not again.fresh and again.status.loaded and again.status.complete
    assert db.snapshot() == before
    with gf.transaction(write=False) as s:
        definition, org = demo._workflow(s, "grid_case")
    limits = demo.limits(definition, calendars(), gf.tz)
    plan = demo.make_plan(demo.township(org), limits, calendars()["township"], QUARTER, NOW, gf.tz, SMALL)
    assert plan == first  # seeded: the same township, quarter and size give the same cases, steps and times


def test_a_quarter_with_a_real_case_is_refused_and_nothing_changes(db, gf):
    real_case(gf, datetime(2026, 8, 3, 2, 0, tzinfo=UTC))
    before = db.snapshot()
    with pytest.raises(CommandRejected, match=r"1 real case\(s\) in 2026Q3"):
        load(gf)
    assert db.snapshot() == before


def test_a_quarter_not_over_is_refused(db, gf):
    with pytest.raises(PeriodNotOver, match="2026Q4 is not over"):
        demo.load(gf, quarter=parse_period("quarter", "2026Q4"), now=NOW, size=SMALL)
    assert demo.last_quarter(NOW, gf.tz) == QUARTER
    assert (
        demo.last_quarter(datetime(2026, 9, 30, 18, 0, tzinfo=UTC), gf.tz).key == "2026Q2"
    )  # 10-01 02:00 local: not yet


def test_clear_removes_every_demo_row_and_nothing_else(db, gf):
    code = real_case(gf, datetime(2026, 11, 20, 2, 0, tzinfo=UTC))
    gf.sweep(NOW)  # the real case's timers have fired: the demo's sweeps find none of it
    with gf.transaction() as s:  # a real month scored, before the demo came
        runs.score_period(s, parse_period("month", "2026-11"), NOW, gf.scoring_rules(), gf.tz, "real")
    before = db.snapshot()
    result = load(gf)
    files = result.files
    assert len(files) == 3 and all(p.exists() for p in files)
    cleared = demo.clear(gf)
    assert cleared.quarter == QUARTER and cleared.removed["cases"] == SMALL and cleared.removed["postings"] == 1
    assert sorted(cleared.files) == sorted(files) and not any(p.exists() for p in files)
    assert db.snapshot() == before  # the real case, its notices, the real score run; the case counter too
    assert demo.clear(gf).quarter is None  # nothing left to clear
    assert demo.status(gf).loaded is False
    with gf.transaction(write=False) as s:
        assert s.scalar(select(Case.code)) == code
    again = load(gf)  # and the same demo loads again, with the same case codes
    assert again.fresh and again.plan == result.plan


def test_the_setting_turns_it_off(db, tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDFLOW_CONFIG_FILE", str(tmp_path / "absent.yaml"))
    off = Gridflow(Settings(home=tmp_path, database_url=db.url, demo=False), clock=lambda: NOW)
    before = db.snapshot()
    with pytest.raises(ConfigError, match="GRIDFLOW_DEMO"):
        demo.load(off, quarter=QUARTER, now=NOW, size=SMALL)
    assert db.snapshot() == before
    off.close()


# -- notices and labels ------------------------------------------------------------------------------


def test_the_dispatcher_never_sends_a_demo_notice(db, gf):
    """A demo case's notice and a demo posting's notice end suppressed, undelivered; a real one goes out."""
    at = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
    with gf.transaction() as s:
        for channel in (DEMO_CHANNEL, "grid_worker"):
            fields = {"title": f"{channel} case"}
            cases.report(
                s, grid_id=GRID, actor_id=GRID_WORKER, fields=fields, at=at, channel=channel, calendars=calendars()
            )
        posting_notice = {"quarter": "2026Q3", "demo": True}
        s.add(
            Outbox(
                recipient_id=CENTER,
                role="center",
                template="quarterly_posting",
                params=posting_notice,
                status="pending",
                attempts=0,
                next_attempt_at=at,
                created_at=at,
                dedupe_key="posting:demo",
            )
        )
    sms = MemoryChannel("sms")
    report = dispatch(gf._sessions.begin, lambda: at, "d", NoticeConfig({"sms": sms}, ("sms",)), Renderer(gf.tz))
    assert report.suppressed == 2 and report.sent == 1 and len(sms.sent) == 1
    assert "grid_worker case" in sms.sent[0].text
    with gf.transaction(write=False) as s:
        rows = s.execute(select(Outbox.status, Outbox.error, Outbox.dedupe_key)).all()
        delivered = s.scalars(select(Delivery.key)).all()
    demo_rows = [r for r in rows if r.status == "suppressed"]
    assert len(demo_rows) == 2 and all(r.error == DEMO_NOTE for r in demo_rows)
    assert "posting:demo" not in delivered and len(delivered) == 1


def test_demo_notices_are_suppressed_and_the_posting_is_watermarked(db, gf):
    result = load(gf)
    with gf.transaction(write=False) as s:
        statuses = dict(s.execute(select(Outbox.status, func.count()).group_by(Outbox.status)).all())
        assert s.scalar(select(func.count()).select_from(Delivery)) == 0
        pub = posting.current(s, "quarterly", "2026Q3")
        note = demo.posting_note(s, pub)
    assert list(statuses) == ["suppressed"] and result.suppressed == statuses["suppressed"]
    document = json.loads(pub.json)
    assert document["title"].startswith("【演示数据】") and document["watermark"].startswith("演示数据")
    assert 'class="watermark"' in pub.html and "演示数据 · 非真实考评结果" in pub.html
    assert pub.csv.lstrip("\ufeff").startswith("说明\r\n演示数据")
    assert note is not None and f"{SMALL} demo case(s)" in note
    for path in result.files:
        assert "演示数据" in path.read_text(encoding="utf-8")


# -- the command ---------------------------------------------------------------------------------


@pytest.fixture
def run(db, tmp_path, monkeypatch):
    """``gridflow …`` in-process on this database, at ``NOW``."""
    monkeypatch.setenv("GRIDFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("GRIDFLOW_CONFIG_FILE", str(tmp_path / "absent.yaml"))
    monkeypatch.setenv("GRIDFLOW_DATABASE_URL", db.url)
    built: list[Gridflow] = []

    def build(settings):  # type: ignore[no-untyped-def]
        built.append(gridflow.app.Gridflow(settings, clock=lambda: NOW))
        return built[-1]

    monkeypatch.setattr(common, "Gridflow", build)
    for console in (common.out, common.err):
        monkeypatch.setattr(console, "_width", 120)

    def invoke(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(cli.app, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    yield invoke
    for app in built:
        app.close()


def test_the_command_loads_says_what_it_holds_labels_it_and_clears_it(db, run, tmp_path):
    loaded = run("demo", "--cases", str(SMALL))
    assert "演示数据 demo: 2026Q3 (2026-07-01 – 2026-09-30) loaded" in loaded and "结案率" in loaded
    assert "quarterly 2026Q3 v1 (演示数据 watermark)" in loaded
    assert "already" in run("demo")
    status = run("demo", "--status")
    assert f"{SMALL} cases" in status and "complete" in status and "suppressed" in status
    data = json.loads(run("demo", "--status", "--json"))
    assert data["quarter"] == "2026Q3" and data["cases"] == SMALL and list(data["notices"]) == ["suppressed"]
    assert "演示数据 demo data" in run("score", "show", "--period", "2026-08")
    assert "【演示数据】" in run("publish", "show", "--quarter", "2026Q3")
    assert TITLE_PREFIX in run("case", "list")
    assert "演示数据 demo" in run("notices", "list")
    jobs = json.loads(run("jobs", "list", "--json"))["runs"]
    assert len(jobs) == 4 and all(r["result"]["demo"] == "演示数据" for r in jobs)
    cleared = run("demo", "--clear")
    assert f"{SMALL} cases" in cleared and "3 posting file(s)" in cleared
    assert "no demo data here" in run("demo", "--status")
    assert not (tmp_path / "postings" / "quarterly" / "2026Q3").exists()


def test_the_command_where_demo_is_off(db, run, monkeypatch):
    monkeypatch.setenv("GRIDFLOW_DEMO", "false")
    assert "demo data is off here" in run("demo", "--if-empty")
    refused = run("demo", code=7)
    assert "GRIDFLOW_DEMO" in refused and "nothing was loaded" in refused


def test_if_empty_leaves_a_database_with_cases_alone(db, run, gf):
    real_case(gf, datetime(2026, 11, 20, 2, 0, tzinfo=UTC))
    assert "holds 1 case(s); no demo loaded" in run("demo", "--if-empty")


# -- the full size, once -------------------------------------------------------------------------


@pytest.fixture
def sqlite_gf(_sqlite_db, tmp_path, monkeypatch):
    """The embedded database alone: the full size runs once."""
    _sqlite_db.reset()
    monkeypatch.setenv("GRIDFLOW_CONFIG_FILE", str(tmp_path / "absent.yaml"))
    app = Gridflow(Settings(home=tmp_path, database_url=_sqlite_db.url), clock=lambda: NOW)
    yield app
    app.close()


def test_the_full_demo_on_sqlite(sqlite_gf):
    gf = sqlite_gf
    started = time.perf_counter()
    result = load(gf, demo.DEFAULT_SIZE)
    seconds = time.perf_counter() - started
    plan = result.plan
    assert plan is not None and 300 <= len(plan.cases) <= 600
    checked = time.perf_counter()
    check_against_the_oracle(gf, plan)
    print(f"checked against the oracle in {time.perf_counter() - checked:.1f} s")
    states = plan.states()
    assert (
        states["verified"] > 350 and states["voided"] >= 10 and states["suspended"] >= 3 and states["in_progress"] >= 5
    )
    assert result.fired["sla.breach"] > 100 and result.fired["sla.escalated"] > 100
    for _, summary in result.months:
        assert 0.85 < summary["close_rate"]["value"] <= 1 and 0.7 < summary["on_time_close_rate"]["value"] < 1
    print(f"full demo: {len(plan.cases)} cases, {plan.steps} steps loaded in {seconds:.1f} s")
    assert seconds < 120  # about 16 s of CPU; the bound only catches a pathological slowdown on a busy machine
