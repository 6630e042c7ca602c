"""The dispatcher on both back ends, with in-memory channels: quiet hours, digests and storm
control, hourly caps, retries with backoff, fallback to the next channel, terminal failures,
suppression, and the delivery history. Real channels are tested against real servers in
test_sms_channels.py and test_email_wecom_channels.py.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select, update

from engine.store.models import Delivery, Outbox, Person
from notifications.channels import wecom as wecom_channel
from notifications.channels.base import SendResult
from notifications.channels.memory import MemoryChannel
from notifications.config import NoticeConfig, Retry
from notifications.dispatch import backoff, dispatch, in_quiet_hours, quiet_end
from notifications.render import Renderer
from tests.wecom_robot import WecomRobot

SH = ZoneInfo("Asia/Shanghai")
LEADER, CENTRE = "p-peng-li", "p-chen-jia"
NOON = datetime(2026, 12, 1, 12, 0, tzinfo=SH).astimezone(UTC)
DUE = "2026-12-01T01:00:00+00:00"


def config(*channels: MemoryChannel, **kwargs) -> NoticeConfig:
    kwargs.setdefault("retry", Retry(max_attempts=3, base=timedelta(seconds=30), cap=timedelta(minutes=10)))
    return NoticeConfig({c.name: c for c in channels}, tuple(c.name for c in channels), **kwargs)


def stage(db, n: int = 1, to: str = LEADER, at: datetime = NOON, urgent: bool = False, event: str = "sla_breach"):
    with db.sessions.begin() as s:
        first = s.scalar(select(Outbox.id).order_by(Outbox.id.desc()).limit(1)) or 0
        s.execute(
            insert(Outbox),
            [
                {
                    "recipient_id": to,
                    "role": "township_leader",
                    "template": event,
                    "params": {
                        "case": f"SL-2026-{first + i + 1:06d}",
                        "title": f"事件{first + i + 1}",
                        "due_at": DUE,
                        "limit": "2d",
                        "grid": "mayingtai-01",
                        "status": "in_progress",
                    },
                    "urgent": urgent,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": at,
                    "created_at": at,
                    "dedupe_key": f"test:{to}:{first + i + 1}",
                }
                for i in range(n)
            ],
        )


def run(db, cfg: NoticeConfig, at: datetime, worker: str = "d"):
    return dispatch(db.sessions.begin, lambda: at, worker, cfg, Renderer(SH))


def statuses(db) -> dict[str, int]:
    with db.sessions.begin() as s:
        rows = s.execute(select(Outbox.status)).scalars().all()
    return {status: rows.count(status) for status in set(rows)}


def test_one_notice_one_message_with_the_history_recorded(db):
    stage(db)
    sms = MemoryChannel("sms")
    report = run(db, config(sms), NOON)
    assert (report.sent, report.delivered, report.digests) == (1, 1, 0)
    assert sms.sent[0].recipient.name == "彭莉" and "SL-2026-000001" in sms.sent[0].text
    assert sms.sent[0].subject and sms.sent[0].html and sms.sent[0].markdown
    with db.sessions.begin() as s:
        delivery = s.execute(select(Delivery)).scalar_one()
    assert (delivery.outcome, delivery.channel, delivery.key) == ("sent", "sms", "test:p-peng-li:1")
    assert run(db, config(sms), NOON + timedelta(hours=1)).claimed == 0  # nothing twice


def test_a_ticks_deliveries_and_sent_notices_are_recorded_field_by_field(db):
    """The tick's writes go out together (on PostgreSQL as arrays, one statement each): a single notice,
    a digest of three and a failure, each delivery row with its own notices, outcome and provider id."""
    stage(db, 1, to=LEADER)
    stage(db, 3, to=CENTRE)
    stage(db, 1, to="p-an-yixuan")
    sms = MemoryChannel("sms").will(
        SendResult.sent("id-1"), SendResult.sent(None, parts=2), SendResult.failed("busy 13800138000")
    )
    report = run(db, config(sms), NOON)
    assert (report.sent, report.delivered, report.digests, report.retried) == (2, 4, 1, 1)
    with db.sessions.begin() as s:
        rows = s.execute(select(Delivery).order_by(Delivery.id)).scalars().all()
        got = [(d.recipient_id, d.key, d.notices, d.at, d.ok, d.outcome, d.provider_id, d.error, d.parts) for d in rows]
        outbox = s.execute(select(Outbox.id, Outbox.status, Outbox.provider_id, Outbox.sent_at, Outbox.attempts)).all()
    digest_key = sms.sent[1].idempotency_key
    assert got == [
        (LEADER, "test:p-peng-li:1", [1], NOON, True, "sent", "id-1", None, 1),
        (CENTRE, digest_key, [2, 3, 4], NOON, True, "sent", None, None, 2),
        ("p-an-yixuan", "test:p-an-yixuan:5", [5], NOON, False, "retry", None, "busy 138****8000", 1),
    ]
    assert sorted(outbox) == [
        (1, "sent", "id-1", NOON, 1),
        *((i, "sent", None, NOON, 1) for i in (2, 3, 4)),
        (5, "pending", None, None, 1),
    ]


def test_a_storm_for_one_leader_becomes_one_digest_per_window(db):
    sms = MemoryChannel("sms")
    cfg = config(sms, digest_window=timedelta(minutes=10), hourly_cap=100)
    stage(db, 1, at=NOON)
    run(db, cfg, NOON)  # the first breach goes out at once
    for minute in range(1, 10):  # then 200 more within the window
        stage(db, 20, at=NOON + timedelta(minutes=minute))
        assert run(db, cfg, NOON + timedelta(minutes=minute)).sent == 0
    assert len(sms.sent) == 1
    report = run(db, cfg, NOON + timedelta(minutes=10))
    assert (report.sent, report.delivered, report.digests) == (1, 180, 1)
    digest = sms.sent[-1]
    assert digest.event == "digest" and len(digest.notice_ids) == 180 and "180" in digest.text
    with db.sessions.begin() as s:
        folded = s.execute(select(Outbox.status, Outbox.digest_key).where(Outbox.id.in_(digest.notice_ids))).all()
    assert {row.status for row in folded} == {"sent"} and {row.digest_key for row in folded} == {digest.idempotency_key}


def test_quiet_hours_defer_and_urgent_goes_at_once(db):
    sms = MemoryChannel("sms")
    cfg = config(sms, quiet=(datetime.strptime("21:00", "%H:%M").time(), datetime.strptime("07:30", "%H:%M").time()))
    night = datetime(2026, 12, 1, 23, 0, tzinfo=SH).astimezone(UTC)
    stage(db, 1, at=night)
    stage(db, 1, at=night, urgent=True, to=CENTRE)
    report = run(db, cfg, night)
    assert (report.sent, report.deferred) == (1, 1)
    assert sms.sent[0].recipient.id == CENTRE
    with db.sessions.begin() as s:
        waiting = s.execute(select(Outbox.next_attempt_at).where(Outbox.status == "pending")).scalar_one()
    assert waiting == datetime(2026, 12, 2, 7, 30, tzinfo=SH).astimezone(UTC)
    assert run(db, cfg, waiting).sent == 1  # in the morning, never dropped


@pytest.mark.parametrize(
    ("local", "quiet"),
    [("22:00", True), ("06:59", True), ("07:30", False), ("12:00", False), ("21:00", True), ("20:59", False)],
)
def test_quiet_hours_wrap_midnight(local, quiet):
    window = (datetime.strptime("21:00", "%H:%M").time(), datetime.strptime("07:30", "%H:%M").time())
    assert in_quiet_hours(datetime.strptime(local, "%H:%M").time(), window) is quiet


def test_quiet_end_is_the_next_morning():
    window = (datetime.strptime("21:00", "%H:%M").time(), datetime.strptime("07:30", "%H:%M").time())
    late = datetime(2026, 12, 1, 23, 0, tzinfo=SH)
    assert quiet_end(late, window, SH) == datetime(2026, 12, 2, 7, 30, tzinfo=SH)
    early = datetime(2026, 12, 2, 5, 0, tzinfo=SH)
    assert quiet_end(early, window, SH) == datetime(2026, 12, 2, 7, 30, tzinfo=SH)


def test_the_hourly_cap_holds_the_rest(db):
    sms = MemoryChannel("sms")
    cfg = config(sms, digest_window=timedelta(seconds=1), hourly_cap=3)
    for minute in range(6):
        stage(db, 1, at=NOON + timedelta(minutes=minute))
        run(db, cfg, NOON + timedelta(minutes=minute))
    assert len(sms.sent) == 3
    assert run(db, cfg, NOON + timedelta(minutes=61)).sent == 1  # the oldest left the hour: the rest as one digest
    assert sms.sent[-1].event == "digest" and len(sms.sent[-1].notice_ids) == 3


def test_temporary_failures_back_off_then_succeed_with_the_same_key(db):
    sms = MemoryChannel("sms").will(SendResult.failed("timeout", unknown=True), SendResult.failed("HTTP 503"))
    cfg = config(sms)
    stage(db)
    at = NOON
    for _ in range(3):
        run(db, cfg, at)
        with db.sessions.begin() as s:
            at = max(at, s.scalar(select(Outbox.next_attempt_at)))
    assert len(sms.sent) == 1 and sms.sent[0].idempotency_key == "test:p-peng-li:1"
    with db.sessions.begin() as s:
        outcomes = [d.outcome for d in s.scalars(select(Delivery).order_by(Delivery.id))]
    assert outcomes == ["unknown", "retry", "sent"]


def test_retry_after_from_the_provider_is_honoured(db):
    sms = MemoryChannel("sms").will(SendResult.failed("HTTP 429", retry_after=120))
    stage(db)
    run(db, config(sms), NOON)
    with db.sessions.begin() as s:
        assert s.scalar(select(Outbox.next_attempt_at)) == NOON + timedelta(seconds=120)


def test_backoff_grows_with_jitter_and_a_cap():
    cfg = config(MemoryChannel())
    import random

    rng = random.Random(7)
    waits = [backoff(n, cfg, rng).total_seconds() for n in range(1, 8)]
    assert 15 <= waits[0] <= 30 and 30 <= waits[1] <= 60 and 60 <= waits[2] <= 120
    assert all(300 <= w <= 600 for w in waits[5:])  # capped at 10 minutes


def test_a_permanent_failure_falls_back_to_the_next_channel(db):
    wecom = MemoryChannel("wecom").will(SendResult.failed("invalid webhook key", permanent=True))
    sms = MemoryChannel("sms", needs="phone")
    stage(db)
    cfg = config(wecom, sms)
    run(db, cfg, NOON)
    run(db, cfg, NOON)  # the next tick takes the next channel
    assert [m.recipient.id for m in sms.sent] == [LEADER]
    with db.sessions.begin() as s:
        row = s.execute(select(Outbox.status, Outbox.channel, Outbox.exhausted)).one()
    assert (row.status, row.channel, row.exhausted) == ("sent", "sms", ["wecom"])


def test_after_the_last_attempt_on_the_last_channel_the_notice_fails(db):
    down = MemoryChannel("sms").will(*[SendResult.failed("HTTP 500")] * 10)
    stage(db)
    cfg = config(down)
    at = NOON
    for _ in range(5):
        run(db, cfg, at)
        at += timedelta(hours=1)
    assert statuses(db) == {"failed": 1}
    with db.sessions.begin() as s:
        error = s.scalar(select(Outbox.error))
    assert "no channel left" in error and "sms" in error


def test_a_channel_that_cannot_reach_the_person_is_skipped(db):
    email = MemoryChannel("email", needs="email")
    with db.sessions.begin() as s:
        s.execute(update(Person).where(Person.id == LEADER).values(email=None))
    stage(db)
    report = run(db, config(email), NOON)
    assert report.failed and "no channel left" in report.failed[0][1]


def test_inactive_people_are_not_notified(db):
    with db.sessions.begin() as s:
        s.execute(update(Person).where(Person.id == LEADER).values(notify=False))
    stage(db)
    sms = MemoryChannel("sms")
    assert run(db, config(sms), NOON).suppressed == 1 and not sms.sent
    assert statuses(db) == {"suppressed": 1}


def test_a_template_that_cannot_render_fails_its_notice_alone(db):
    stage(db, event="no_such_event")
    stage(db, to=CENTRE)
    sms = MemoryChannel("sms")
    report = run(db, config(sms), NOON)
    assert len(report.failed) == 1 and "no_such_event" in report.failed[0][1]
    assert [m.recipient.id for m in sms.sent] == [CENTRE]


@pytest.mark.parametrize(
    "bomb",
    [
        "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
        "{{ 'a' * 10**8 }}",
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
        "{{ title }}" + "超时" * 400,
    ],
    ids=["loops", "repeat", "recursion", "long-sms"],
)
def test_an_overridden_template_that_runs_away_fails_its_notices_and_the_others_go_out(db, tmp_path, bomb):
    (tmp_path / "zh-CN").mkdir()
    (tmp_path / "zh-CN" / "sla_breach.sms.txt").write_text(bomb, encoding="utf-8")
    stage(db)  # sla_breach: the overridden event
    stage(db, to=CENTRE, event="sla_reminder")
    sms = MemoryChannel("sms")
    start = time.perf_counter()
    report = dispatch(db.sessions.begin, lambda: NOON, "d", config(sms), Renderer(SH, override=tmp_path))
    took = time.perf_counter() - start
    assert took < 5, took
    assert [m.recipient.id for m in sms.sent] == [CENTRE]
    assert report.failed and all("template sla_breach.sms.txt" in why for _id, why in report.failed)
    assert statuses(db) == {"failed": 1, "sent": 1}
    with db.sessions.begin() as s:
        errors = s.scalars(select(Outbox.error).where(Outbox.status == "failed")).all()
    assert errors and all("sla_breach.sms.txt" in (e or "") and len(e or "") < 600 for e in errors)


def test_two_dispatchers_at_once_send_each_notice_once(pg_db):
    import threading

    stage(pg_db, 50, to=LEADER)
    stage(pg_db, 50, to=CENTRE)
    sms = MemoryChannel("sms")
    cfg = config(sms, digest_window=timedelta(seconds=1))
    threads = [threading.Thread(target=run, args=(pg_db, cfg, NOON, f"d{i}")) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    delivered = [n for m in sms.sent for n in m.notice_ids]
    assert len(delivered) == len(set(delivered)) == 100


def test_nothing_is_staged_for_a_step_that_rolled_back(db):
    from tests.integration.test_sla import report

    class Boom(Exception):
        pass

    with pytest.raises(Boom), db.sessions.begin() as s:
        report(s)  # stages the reporter's receipt in this transaction ...
        assert s.scalar(select(func.count()).select_from(Outbox)) == 1
        raise Boom  # ... which then rolls back
    assert statuses(db) == {}


def test_one_dedupe_key_is_one_notice(db):
    from sqlalchemy.exc import IntegrityError

    stage(db, 1)
    with pytest.raises(IntegrityError), db.sessions.begin() as s:
        row = s.execute(select(Outbox)).scalar_one()
        s.execute(
            insert(Outbox).values(
                recipient_id=row.recipient_id,
                role=row.role,
                template=row.template,
                params=row.params,
                urgent=False,
                status="pending",
                attempts=0,
                next_attempt_at=NOON,
                created_at=NOON,
                dedupe_key=row.dedupe_key,
            )
        )
    assert statuses(db) == {"pending": 1}


def test_a_persons_own_order_of_channels_wins(db):
    wecom, sms = MemoryChannel("wecom"), MemoryChannel("sms")
    cfg = NoticeConfig({"wecom": wecom, "sms": sms}, ("wecom", "sms"), preferences={LEADER: ("sms", "wecom")})
    stage(db, to=LEADER)
    stage(db, to=CENTRE)
    run(db, cfg, NOON)
    assert [m.recipient.id for m in sms.sent] == [LEADER]
    assert [m.recipient.id for m in wecom.sent] == [CENTRE]


def test_phone_numbers_in_a_providers_error_are_masked_in_the_history(db):
    sms = MemoryChannel("sms").will(
        SendResult.failed("isv.MOBILE_NUMBER_ILLEGAL: 13800000004 is not a mobile", permanent=True)
    )
    stage(db)
    run(db, config(sms), NOON)
    with db.sessions.begin() as s:
        errors = [s.scalar(select(Delivery.error)), s.scalar(select(Outbox.error))]
    assert all("138****0004" in e and "13800000004" not in e for e in errors)


def test_an_urgent_category_goes_out_in_quiet_hours(db):
    sms = MemoryChannel("sms")
    cfg = config(
        sms,
        quiet=(datetime.strptime("21:00", "%H:%M").time(), datetime.strptime("07:30", "%H:%M").time()),
        urgent_categories=frozenset({"geological_hazard"}),
    )
    night = datetime(2026, 7, 1, 2, 0, tzinfo=SH).astimezone(UTC)
    stage(db, at=night)
    with db.sessions.begin() as s:
        row = s.execute(select(Outbox)).scalar_one()
        s.execute(update(Outbox).values(params={**row.params, "category": "geological_hazard"}))
    stage(db, at=night, to=CENTRE)  # an ordinary one waits for the morning
    report = run(db, cfg, night)
    assert (report.sent, report.deferred) == (1, 1) and sms.sent[0].recipient.id == LEADER


def test_a_misconfigured_channel_is_reported_and_its_notices_fall_back(db):
    sms = MemoryChannel("sms").will(SendResult.failed("aliyun SignatureDoesNotMatch", config=True))
    email = MemoryChannel("email")
    stage(db)
    cfg = config(sms, email)
    first = run(db, cfg, NOON)
    assert first.misconfigured == {"sms": "aliyun SignatureDoesNotMatch"}
    run(db, cfg, NOON)
    assert [m.recipient.id for m in email.sent] == [LEADER]
    with db.sessions.begin() as s:
        assert [d.outcome for d in s.scalars(select(Delivery).order_by(Delivery.id))] == ["config", "sent"]


@pytest.mark.parametrize(
    ("errcode", "errmsg"),
    [
        (40058, "invalid parameter, url: {url}"),  # the webhook URL echoed: key=… in it
        (93000, "invalid webhook url, hint: [robot {key} removed], from ip: 127.0.0.1"),  # the bare key
        (-1, "system busy; retry robot key:{key} later"),  # a temporary failure, retried
    ],
)
def test_a_robot_key_in_a_providers_error_is_masked_in_the_history(db, errcode, errmsg):
    with WecomRobot() as robot:
        key = robot.keys["shengli"]
        channel = wecom_channel.from_config("wecom", {"webhook": robot.webhook("shengli"), "timeout_s": 5})
        robot.errcode(errcode, errmsg=errmsg)
        stage(db)
        report = run(db, NoticeConfig({"wecom": channel}, ("wecom",)), NOON)
        assert robot.requests == 1
    with db.sessions.begin() as s:
        errors = [s.scalar(select(Delivery.error)), s.scalar(select(Outbox.error))]
    shown = [*errors, repr(report)]
    assert all(e and str(errcode) in e for e in errors), errors
    assert all(key not in e and key[:8] not in e for e in shown), shown
    assert all("****" in e for e in errors), errors
