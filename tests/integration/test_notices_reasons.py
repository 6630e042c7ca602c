"""``gridflow notices list|show`` say why a pending notice waits, and until when — by the dispatcher's rule.

Before: a notice held by the digest window or quiet hours showed 待发送 with an empty note, and
looked stuck; at 100 columns the case codes were cut. Here the real dispatcher holds notices (a
digest window of 15 minutes, quiet hours 21:00–07:00, a retry after a provider's Retry-After), then
the CLI runs in-process at pinned times and must give the reason and the very instant the
dispatcher wrote (``next_attempt_at``): both come from ``notifications.dispatch.holds``.
On SQLite and PostgreSQL; every time is explicit (Asia/Shanghai, late November 2026).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import gridflow.app
import gridflow.cli as cli
import gridflow.cli.common as common
from engine import cases
from engine.store.models import Case, Outbox
from notifications.channels.base import SendResult
from notifications.config import load
from notifications.dispatch import dispatch
from notifications.render import Renderer
from tests.support import GRID, GRID_WORKER, calendars

SH = ZoneInfo("Asia/Shanghai")
SETTINGS = """\
channels:
  sms: {kind: memory}
order: [sms]
quiet_hours: 21:00-07:00
digest: {window: 15m}
hourly_cap: 100
retry: {max_attempts: 5, base: 1m, cap: 10m}
"""
LONG_ERROR = "gateway said: " + "服务繁忙 the service is busy, try again later; " * 6


def sh(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SH)


@pytest.fixture
def home(db, tmp_path, monkeypatch):
    """The CLI on ``db`` with the notification settings above, at a time the test sets."""
    path = tmp_path / "notifications.yaml"
    path.write_text(SETTINGS, encoding="utf-8")
    for name, value in {
        "GRIDFLOW_HOME": str(tmp_path),
        "GRIDFLOW_CONFIG_FILE": str(tmp_path / "absent.yaml"),
        "GRIDFLOW_DATABASE_URL": db.url,
        "GRIDFLOW_NOTIFICATIONS_FILE": str(path),
    }.items():
        monkeypatch.setenv(name, value)
    home = Home(db, load(path, tmp_path / "notices.log"))
    built: list[gridflow.app.Gridflow] = []

    def build(settings):  # type: ignore[no-untyped-def]
        built.append(gridflow.app.Gridflow(settings, clock=lambda: home.now))
        return built[-1]

    monkeypatch.setattr(common, "Gridflow", build)
    home.width = lambda n: [monkeypatch.setattr(c, "_width", n) for c in (common.out, common.err)]
    home.width(100)
    yield home
    for app in built:
        app.close()


class Home:
    def __init__(self, db, config):  # type: ignore[no-untyped-def]
        self.db, self.config, self.now = db, config, sh(24, 10)

    def report(self, at: datetime) -> str:
        with self.db.sessions.begin() as s:
            fields = {"title": f"马营台村{at:%H%M}水管破裂"}
            result = cases.report(s, grid_id=GRID, actor_id=GRID_WORKER, fields=fields, at=at, calendars=calendars())
            return result.case.code

    def dispatch(self, at: datetime):  # type: ignore[no-untyped-def]
        return dispatch(self.db.sessions.begin, lambda: at, "test", self.config, Renderer(SH))

    def cli(self, at: datetime, *args: str) -> str:
        self.now = at
        result = CliRunner().invoke(cli.app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    def notices(self, at: datetime) -> dict[str, dict]:
        """``notices list --json`` by case code."""
        return {n["case"]: n for n in json.loads(self.cli(at, "notices", "list", "--json"))["notices"]}

    def waiting_until(self, code: str) -> str:
        with self.db.session() as s:
            at = s.scalar(select(Outbox.next_attempt_at).join(Case, Case.id == Outbox.case_id).where(Case.code == code))
        return at.isoformat()


def note_of(table: str, code: str) -> str:
    """The note (last column) of ``code``'s row, its folded lines joined, blanks squeezed."""
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if f"│ {code} " in line)
    parts = []
    for i, line in enumerate(lines[start:]):
        cells = line.split("│")
        if len(cells) < 3 or (i and cells[1].strip()):  # a border, or the next row
            break
        parts.append(cells[-2].strip())
    return " ".join(p for p in parts if p)


def test_the_digest_window_and_quiet_hours_say_until_when(home):
    first = home.report(sh(24, 10, 20))
    assert home.dispatch(sh(24, 10, 20)).sent == 1
    second = home.report(sh(24, 10, 25))
    assert home.dispatch(sh(24, 10, 25)).deferred == 1  # a message went out 5 minutes ago

    listed = home.notices(sh(24, 10, 26))
    assert listed[first]["hold"] is None and listed[first]["status"] == "sent"
    assert listed[second]["hold"] == {"reason": "digest_window", "until": home.waiting_until(second)}
    assert listed[second]["hold"]["until"] == "2026-11-24T02:35:00+00:00"  # 10:35 in Shanghai
    table = home.cli(sh(24, 10, 26), "notices", "list")
    assert "汇总窗口至 10:35 CST digest window" in note_of(table, second)
    shown = " ".join(home.cli(sh(24, 10, 26), "notices", "show", str(listed[second]["id"])).split())
    assert "等待 waiting 汇总窗口至 10:35 CST digest window" in shown
    assert "状态 status 待发送 pending" in shown and "下次 next attempt 2026-11-24 10:35 CST" in shown

    night = home.report(sh(24, 23, 30))
    assert home.dispatch(sh(24, 23, 30)).deferred == 2  # the one from 10:25 too: quiet hours now
    late = home.report(sh(24, 23, 40))  # the dispatcher has not looked at it yet: the rule still says why
    listed = home.notices(sh(24, 23, 41))
    for code in (second, night, late):
        assert listed[code]["hold"] == {"reason": "quiet_hours", "until": "2026-11-24T23:00:00+00:00"}, code
    assert home.waiting_until(night) == "2026-11-24T23:00:00+00:00"  # what the dispatcher wrote
    assert "免打扰至 2026-11-25 07:00 CST quiet hours" in note_of(home.cli(sh(24, 23, 41), "notices", "list"), late)
    assert "免打扰至 07:00 CST quiet hours" in note_of(home.cli(sh(25, 5), "notices", "list"), night)


def test_a_retry_says_when_and_case_codes_are_never_cut(home):
    codes = [home.report(sh(25, 7, 0))]  # 07:00: quiet hours are over
    home.config.channels["sms"].will(SendResult.failed(LONG_ERROR, retry_after=600))
    assert home.dispatch(sh(25, 7, 0)).retried == 1
    listed = home.notices(sh(25, 7, 1))
    assert listed[codes[0]]["hold"] == {"reason": "retry", "until": home.waiting_until(codes[0])}
    assert listed[codes[0]]["hold"]["until"] == "2026-11-24T23:10:00+00:00"  # Retry-After: 10 minutes
    codes += [home.report(sh(25, 7, m)) for m in (2, 3)]
    for width in (100, 80):
        home.width(width)
        table = home.cli(sh(25, 7, 4), "notices", "list")
        for code in codes:
            assert re.search(rf"│ {code} +│", table), (width, code, table)  # whole, on one line
        assert len(re.findall(rf"│ {GRID_WORKER} +│", table)) == 3, table  # person ids neither
        note = note_of(table, codes[0])
        assert note.startswith("重试于 07:10 CST retry · sms: gateway said: 服务繁忙"), (width, note)  # folded
    listed = home.notices(sh(25, 7, 4))
    assert [listed[code]["hold"] for code in codes[1:]] == [None, None]  # a failed attempt holds no one else
