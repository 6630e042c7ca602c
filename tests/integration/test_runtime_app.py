"""The notices, period-job and demo use cases of :class:`gridflow.app.Gridflow`, on both back ends: plain
values out (JSON-ready, ISO times), the same refusals the CLI shows, and each write by its own rule."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from config.settings import Settings
from engine.errors import CommandRejected, InputError, NotFound, NotYet
from engine.store.models import Outbox
from gridflow.app import Gridflow
from gridflow.app.notices import NoticeNotFound
from tests.support import GRID, GRID_WORKER, T0, Clock, Database


@pytest.fixture
def gf(db: Database, tmp_path):
    app = Gridflow(Settings(home=tmp_path, database_url=db.url), clock=Clock(T0 + timedelta(minutes=5)))
    yield app
    app.close()


def plain(value):  # type: ignore[no-untyped-def]
    """The value, once through JSON: a use case answers nothing JSON cannot carry."""
    assert json.loads(json.dumps(value, ensure_ascii=False)) == value
    return value


def reported(gf: Gridflow) -> int:
    gf.report(grid_id=GRID, actor_id=GRID_WORKER, fields={"title": "马营台村1社水管破裂"}, at=T0)
    (notice,) = plain(gf.list_notices().data)["notices"]
    return notice["id"]


def test_a_receipt_is_listed_dispatched_shown_and_retried_only_when_failed(db, gf):
    notice = reported(gf)
    listed = gf.list_notices(status="pending", to=GRID_WORKER)
    assert [(n["status"], n["event"], n["to"]) for n in listed.data["notices"]] == [
        ("pending", "case_received", GRID_WORKER)
    ]
    assert listed.data["counts"] == {"pending": 1} and listed.data["misconfigured"] == {} and not listed.warning
    assert gf.list_notices(status="failed").data["notices"] == []
    with pytest.raises(InputError, match="unknown status"):
        gf.list_notices(status="lost")
    assert plain(gf.show_notice(notice).data)["history"] == []

    sent = plain(gf.dispatch_notices())
    assert (sent["claimed"], sent["messages"], sent["delivered"], sent["failed"]) == (1, 1, 1, 0)
    shown = plain(gf.show_notice(notice).data)
    assert shown["status"] == "sent" and [h["outcome"] for h in shown["history"]] == ["sent"]
    with pytest.raises(CommandRejected, match="only failed notices"):
        gf.retry_notice(notice)
    with pytest.raises(NoticeNotFound):
        gf.show_notice(notice + 100)
    with pytest.raises(NoticeNotFound):
        gf.retry_notice(notice + 100)

    with db.sessions.begin() as s:  # as if every channel had given up on it
        s.execute(update(Outbox).values(status="failed", exhausted=["console"], channel="console", channel_attempts=3))
    assert gf.retry_notice(notice) == {"queued": 1}
    with db.sessions.begin() as s:
        row = s.scalars(select(Outbox)).one()
        assert (row.status, row.exhausted, row.channel, row.channel_attempts) == ("pending", [], None, 0)
        assert row.next_attempt_at == gf.clock()  # ready at once
    assert gf.retry_failed_notices() == {"queued": 0}


def test_a_preview_renders_sample_values_for_each_channel_or_one(gf):
    assert {"sla_breach", "digest", "case_received"} <= set(gf.notice_events())
    every = plain(gf.preview_notice("sla_breach"))
    assert list(every["channels"]) == ["text", "sms", "email", "wecom"]
    assert every["channels"]["sms"]["chars"] == len(every["channels"]["sms"]["text"])
    assert list(gf.preview_notice("sla_breach", "sms")["channels"]) == ["sms"]
    with pytest.raises(InputError, match="unknown channel 'fax'"):
        gf.preview_notice("sla_breach", "fax")
    with pytest.raises(NotFound, match="did you mean 'sla_breach'"):
        gf.preview_notice("sla_breech")


def test_jobs_run_each_due_period_once_and_are_listed(gf):
    before = plain(gf.list_jobs())
    assert before["runs"] == [] and before["due"]["calendar_check"] == ["2026-03-01", "2026-03-02"]
    with pytest.raises(NotFound, match="unknown job"):
        gf.list_jobs("nightly")
    with pytest.raises(NotYet):
        gf.run_jobs("calendar_check", at=T0 + timedelta(days=1))
    done = plain(gf.run_jobs("calendar_check", at=gf.clock()))
    assert [(d["job"], d["period"]) for d in done] == [
        ("calendar_check", "2026-03-01"),
        ("calendar_check", "2026-03-02"),
    ]
    assert gf.run_jobs("calendar_check") == []
    after = plain(gf.list_jobs("calendar_check"))
    assert [(r["period"], r["status"]) for r in after["runs"]] == [("2026-03-02", "done"), ("2026-03-01", "done")]
    assert after["due"] == {"calendar_check": []}


def test_the_demo_use_cases_say_what_is_here_and_load_only_where_allowed(db, gf, tmp_path):
    status = plain(gf.demo_status())
    assert (status["loaded"], status["enabled"], status["quarter"], status["cases"]) == (False, True, None, 0)
    assert plain(gf.clear_demo()) == {"quarter": None, "removed": {}, "files": []}
    assert gf.demo_labels()["states"]["reported"]
    reported(gf)
    assert gf.load_demo(if_empty=True) == {"outcome": "not_empty", "cases_here": 1}
    off = Gridflow(Settings(home=tmp_path, database_url=db.url, demo=False), clock=gf.clock)
    try:
        assert off.load_demo(if_empty=True) == {"outcome": "off"}
        assert off.demo_status()["enabled"] is False
    finally:
        off.close()
    with pytest.raises(NotYet):
        gf.load_demo(at=T0 + timedelta(days=1))
