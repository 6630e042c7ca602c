"""What the tasks do, in process, on both back ends: precise firing through a claim ahead of time,
the sweep as the safety net when a hand-off is lost, and the outbox dispatch to the console channel."""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select

from config.settings import Settings
from engine.store.models import Outbox, SlaTimer
from engine.sweep import claim_ahead, fire_batch, sweep
from notifications.channels.base import SendResult
from notifications.channels.console import ConsoleChannel
from notifications.config import NoticeConfig
from notifications.dispatch import dispatch
from notifications.render import Renderer
from tasks import sla
from tasks.runtime import Runtime
from tests.integration.test_sla import report
from tests.support import T0

SH = ZoneInfo("Asia/Shanghai")


def first_timer(db, case_id: int):
    with db.sessions.begin() as s:
        return s.execute(
            select(SlaTimer.id, SlaTimer.fire_at)
            .where(SlaTimer.case_id == case_id, SlaTimer.status == "pending")
            .order_by(SlaTimer.fire_at)
            .limit(1)
        ).one()


def status(db, timer_id: int) -> str:
    with db.sessions.begin() as s:
        return s.scalar(select(SlaTimer.status).where(SlaTimer.id == timer_id))


def test_precise_firing_claims_ahead_and_fires_once(db):
    with db.sessions.begin() as s:
        case = report(s)
    timer_id, fire_at = first_timer(db, case.id)
    with db.sessions.begin() as s:  # a sweep 3 s before: not due yet, but within the 5 s horizon
        assert claim_ahead(s, fire_at - timedelta(seconds=3), timedelta(seconds=5), "ahead-1") == [(timer_id, fire_at)]
    with db.sessions.begin() as s:  # a second sweep does not take it again
        assert claim_ahead(s, fire_at - timedelta(seconds=1), timedelta(seconds=5), "ahead-2") == []
    assert sweep(db.sessions.begin, fire_at, "sweeper").claimed == 0  # the safety net leaves it to the hand-off
    with db.sessions.begin() as s:
        fired = fire_batch(s, [timer_id], "ahead-1", fire_at)
    assert [f.event for f in fired] == ["sla.reminder"]
    with db.sessions.begin() as s:  # the same message delivered twice: nothing more
        assert fire_batch(s, [timer_id], "ahead-1", fire_at) == []
    assert status(db, timer_id) == "fired"


def test_a_lost_hand_off_is_fired_by_the_sweep_after_the_lease(db):
    with db.sessions.begin() as s:
        case = report(s)
    timer_id, fire_at = first_timer(db, case.id)
    lease = timedelta(seconds=30)
    with db.sessions.begin() as s:
        claim_ahead(s, fire_at - timedelta(seconds=3), timedelta(seconds=5), "lost", lease=lease)
    assert sweep(db.sessions.begin, fire_at + timedelta(seconds=10), "sweeper").claimed == 0
    late = sweep(db.sessions.begin, fire_at + timedelta(seconds=40), "sweeper")
    assert [f["timer_id"] for f in late.fired] == [timer_id]
    with db.sessions.begin() as s:  # the lost message turns up after all: nothing happens
        assert fire_batch(s, [timer_id], "lost", fire_at + timedelta(seconds=41)) == []


@dataclass
class Queued:
    """A Celery task's ``apply_async``, noted instead of sent."""

    calls: list[dict[str, Any]] = field(default_factory=list)

    def apply_async(self, **options: Any) -> None:
        self.calls.append(options)


@dataclass
class Request:
    id: str = "task-1"
    eta: str | None = None


@dataclass
class App:
    gridflow_runtime: Runtime
    tasks: dict[str, Queued]
    conf: dict[str, Any] = field(default_factory=dict)


@dataclass
class BoundTask:
    """What a bound Celery task hands the functions of tasks/sla.py: its app and its request."""

    app: App
    request: Request = field(default_factory=Request)


def runtime_reading(db, tmp_path, at: datetime) -> Runtime:
    """A runtime whose clock reads ``at`` now and runs on from there, as with clock_offset_s."""
    skew = at - datetime.now(UTC)
    settings = Settings(home=tmp_path, database_url=db.url, precise_horizon_s=5)
    return Runtime(settings, clock=lambda: datetime.now(UTC) + skew)


def test_a_hand_off_falls_due_when_the_timer_does_though_the_clock_is_offset(db, tmp_path):
    """Celery counts an ETA on the machine's clock; the runtime's clock may run elsewhere (clock_offset_s:
    drills and tests). The ETA is the timer's time on the machine's clock, not months away from it."""
    with db.sessions.begin() as s:
        case = report(s)
    timer_id, fire_at = first_timer(db, case.id)
    before = datetime.now(UTC)
    runtime = runtime_reading(db, tmp_path, fire_at - timedelta(seconds=3))  # the timer is due in 3 s
    after = datetime.now(UTC)
    fire, follow_up = Queued(), Queued()
    try:
        sla.sweep(BoundTask(App(runtime, {"gridflow.sla.fire": fire, "gridflow.sla.sweep": follow_up})))
    finally:
        runtime.close()
    assert [c["args"][0] for c in fire.calls] == [[timer_id]]
    eta = fire.calls[0]["eta"]
    assert before + timedelta(seconds=3) <= eta <= after + timedelta(seconds=3), (eta, before)
    assert fire.calls[0]["expires"] == eta + sla.PRECISE_LEASE


def test_an_early_hand_off_waits_for_the_timer_by_the_machines_clock(db, tmp_path):
    """Celery may deliver an ETA task a little early; ``fire`` waits the rest, reckoned on the clock the ETA
    was given on, so the timer never fires before its time though the runtime's clock is offset."""
    with db.sessions.begin() as s:
        case = report(s)
    timer_id, fire_at = first_timer(db, case.id)
    with db.sessions.begin() as s:
        assert claim_ahead(s, fire_at - timedelta(seconds=3), timedelta(seconds=5), "ahead-1") == [(timer_id, fire_at)]
    runtime = runtime_reading(db, tmp_path, fire_at - timedelta(seconds=1))
    eta = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()  # the timer's time on the machine's clock
    try:
        started = time.monotonic()
        done = sla.fire(BoundTask(App(runtime, {}), Request(eta=eta)), [timer_id], "ahead-1")
        waited = time.monotonic() - started
    finally:
        runtime.close()
    assert done == {"fired": 1, "stale": 0}
    with db.sessions.begin() as s:
        fired_at = s.scalar(select(SlaTimer.fired_at).where(SlaTimer.id == timer_id))
    assert fired_at >= fire_at, (fired_at, fire_at)
    assert 0.5 < waited < 3


def staged_notices(db) -> int:
    with db.sessions.begin() as s:
        case = report(s)
    _, fire_at = first_timer(db, case.id)
    sweep(db.sessions.begin, fire_at, "sweeper")
    with db.sessions.begin() as s:  # the sweep's notices and the report's receipt to the reporter
        return s.scalar(select(func.count()).select_from(Outbox))


class Broken:
    name = kind = "broken"
    urgent_only = False

    def address(self, recipient):
        return recipient.id

    def send(self, message) -> SendResult:
        raise ConnectionError("gateway down")


def console(path, stream=None) -> NoticeConfig:
    return NoticeConfig({"console": ConsoleChannel("console", path, stream)}, ("console",))


def test_dispatch_delivers_each_notice_once_to_the_console_and_file(db, tmp_path):
    staged = staged_notices(db)
    assert staged > 0
    path, stream = tmp_path / "notices.log", io.StringIO()
    config, renderer = console(path, stream), Renderer(SH)
    clock = lambda: T0 + timedelta(days=30)  # noqa: E731
    first = dispatch(db.sessions.begin, clock, "d-1", config, renderer)
    assert first.sent == first.delivered == staged and not first.failed
    again = dispatch(db.sessions.begin, clock, "d-2", config, renderer)
    assert again.claimed == 0
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == staged == len({line["key"] for line in lines})
    assert all("SL-2026-000001" in line["text"] and "【胜利乡网格中心】" in line["text"] for line in lines)
    assert "📨" in stream.getvalue()
    with db.sessions.begin() as s:
        rows = s.execute(select(Outbox.status, Outbox.channel, Outbox.provider_id)).all()
    assert {(r.status, r.channel) for r in rows} == {("sent", "console")}
    assert all(r.provider_id.startswith("console:") for r in rows)


def test_a_notice_that_cannot_render_fails_alone_and_a_channel_error_is_retried_later(db, tmp_path):
    staged = staged_notices(db)
    with db.sessions.begin() as s:
        s.execute(
            insert(Outbox).values(
                recipient_id="p-chen-jia",
                role="center",
                template="no_such_template",
                params={},
                urgent=False,
                status="pending",
                attempts=0,
                next_attempt_at=T0,
                created_at=T0,
                dedupe_key="test:broken",
            )
        )
    now = T0 + timedelta(days=30)
    renderer = Renderer(SH)
    broken = NoticeConfig({"sms": Broken()}, ("sms",))
    down = dispatch(db.sessions.begin, lambda: now, "d-1", broken, renderer)
    assert len(down.failed) == 1 and "no_such_template" in down.failed[0][1]
    with db.sessions.begin() as s:
        rows = s.execute(select(Outbox.status, Outbox.error, Outbox.next_attempt_at, Outbox.dedupe_key)).all()
    pending = [r for r in rows if r.status == "pending"]
    assert len(pending) == staged and all("gateway down" in r.error for r in pending)
    assert all(r.next_attempt_at > now for r in pending)  # retried later, not lost
    assert [r.status for r in rows if r.dedupe_key == "test:broken"] == ["failed"]
    later = dispatch(
        db.sessions.begin, lambda: now + timedelta(minutes=2), "d-2", console(tmp_path / "n.log"), renderer
    )
    assert later.delivered == staged


def test_a_sweep_with_a_budget_stops_taking_batches_and_stamps_each_batch(db):
    from sqlalchemy import update

    with db.sessions.begin() as s:
        ids = [report(s).id for _ in range(3)]
    due = [first_timer(db, i) for i in ids]
    with db.sessions.begin() as s:  # the three timers due at one instant
        s.execute(update(SlaTimer).where(SlaTimer.id.in_([t.id for t in due])).values(fire_at=due[0].fire_at))
    ticks = iter([due[0].fire_at + timedelta(seconds=n) for n in range(100)])
    clock = lambda: next(ticks)  # noqa: E731 - every reading one second later
    start = due[0].fire_at
    first = sweep(db.sessions.begin, start, "w", batch=1, clock=clock, until=start + timedelta(seconds=2))
    assert first.more and len(first.fired) == 2
    rest = sweep(db.sessions.begin, start, "w", batch=1, clock=clock, until=start + timedelta(seconds=100))
    assert not rest.more and len(rest.fired) == 1
    with db.sessions.begin() as s:
        fired_at = sorted(s.scalars(select(SlaTimer.fired_at).where(SlaTimer.id.in_([t.id for t in due]))))
    assert len(set(fired_at)) == 3  # each batch stamped with its own time, not the sweep's start


def test_a_dispatch_with_a_budget_leaves_the_rest_for_the_next_tick(db, tmp_path):
    staged = staged_notices(db)
    ticks = iter([T0 + timedelta(days=30, seconds=n) for n in range(100)])
    config, renderer = console(tmp_path / "n.log"), Renderer(SH)
    first = dispatch(
        db.sessions.begin, lambda: next(ticks), "d", config, renderer, batch=1, budget=timedelta(seconds=1)
    )
    assert first.more and 0 < first.delivered < staged
    rest = dispatch(db.sessions.begin, lambda: next(ticks), "d", config, renderer, batch=1)
    assert first.delivered + rest.delivered == staged
