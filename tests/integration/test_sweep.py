"""The sweep on SQLite and PostgreSQL: due timers become reminders, breaches and escalations, once each.

Expected instants are worked out by hand (see test_sla.py for the calendar and the limits). The
recipients come from config/org/shengli.yaml: for grid mayingtai-01 the grid worker is 安怡萱
(p-an-yixuan), the village secretary of 马营台村 is 熊成林 (p-xiong-chenglin), the centre is 陈佳,
杨晓东 and 任开学, the township leaders 彭莉, 杨光明 and 冉俊杰. The assignee in these tests is 陈小琴
(p-chen-xiaoqin), the village's B岗信息员, so that "assignee" and "grid worker" are different people.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, select, text, update

from engine import sweep as sweep_module
from engine.errors import ConcurrentUpdate, NaiveDatetime
from engine.store import org_repo
from engine.store.models import Case, CaseEvent, Outbox, SlaTimer
from engine.sweep import claim, fire_one, sweep
from tests.integration.test_sla import (
    ASSIGNEE,
    CENTER_STAFF,
    CLASSIFY,
    TOWNSHIP_LEADERS,
    VILLAGE_SECRETARY,
    assert_events_numbered,
    clock_of,
    events,
    publish_fixture,
    report,
    sh,
    step,
    timers,
    to_in_progress,
)
from tests.support import CENTER, GRID, GRID_WORKER, T0, seeded_org

CENTRE = dict.fromkeys(CENTER_STAFF, "center")
LEADERS = dict.fromkeys(TOWNSHIP_LEADERS, "township_leader")
LEASE = timedelta(minutes=2)  # engine.sweep.DEFAULT_LEASE
TIMER_NOTICE = Outbox.dedupe_key.like("timer:%")  # the sweep's notices (steps stage their own)


def run(db, at: datetime, worker: str = "sweeper-1", **kwargs):
    return sweep(db.sessions.begin, at, worker, **kwargs)


def fired(result) -> list[tuple[str, int]]:
    return sorted((f["kind"], f["level"]) for f in result.fired)


def outbox(s, timer_id: int) -> dict[str, str]:
    """Recipients of one timer's notices: person -> the role they got it for."""
    rows = s.scalars(select(Outbox).where(Outbox.dedupe_key.like(f"timer:{timer_id}:%"))).all()
    assert len(rows) == len({r.recipient_id for r in rows})
    return {r.recipient_id: r.role for r in rows}


def timer_row(s, case_id: int, state: str | None, kind: str, level: int, status: str | None = None) -> SlaTimer:
    clock = clock_of(s, case_id, state)
    query = select(SlaTimer).where(SlaTimer.clock_id == clock.id, SlaTimer.kind == kind, SlaTimer.level == level)
    if status:
        query = query.where(SlaTimer.status == status)
    return s.scalars(query.order_by(SlaTimer.id.desc())).first()


def sla_events(s, case_id: int) -> list[CaseEvent]:
    return [e for e in events(s, case_id) if e.trigger.startswith("sla.")]


def assert_fired_once(s) -> None:
    """No timer has two events or two notices to the same person; every fired timer has its event."""
    sla = s.scalars(select(CaseEvent).where(CaseEvent.trigger.like("sla.%"))).all()
    by_timer = [e.payload["timer"] for e in sla]
    assert len(by_timer) == len(set(by_timer))
    fired_ids = set(s.scalars(select(SlaTimer.id).where(SlaTimer.status == "fired")))
    assert set(by_timer) == fired_ids
    keys = s.scalars(select(Outbox.dedupe_key).where(TIMER_NOTICE)).all()
    assert len(keys) == len(set(keys))
    assert {int(k.split(":")[1]) for k in keys} <= fired_ids


# -- nothing due, a reminder, a breach ---------------------------------------------------------


def test_nothing_due_does_nothing(db):
    with db.sessions.begin() as s:
        report(s, T0)
    before = db.snapshot()
    for at in (T0, sh(2026, 3, 2, 9, 59, 59)):  # the first timer is the reminder at 10:00
        result = run(db, at)
        assert (result.claimed, result.fired, result.stale, result.retried, bool(result)) == (0, [], 0, 0, False)
    assert db.snapshot() == before


def test_a_due_reminder_notifies_the_centre(db):
    with db.sessions.begin() as s:
        case_id = report(s, T0).id
    result = run(db, sh(2026, 3, 2, 10), worker="sweeper-a")
    assert (result.claimed, fired(result), result.stale) == (1, [("reminder", 1)], 0)
    assert result.fired[0]["event"] == "sla.reminder" and result.fired[0]["notices"] == 3
    with db.session() as s:
        case = s.get(Case, case_id)
        assert (case.status, case.version, case.overdue, case.mark) == ("reported", 2, False, None)
        assert case.updated_at == sh(2026, 3, 2, 10)
        event = events(s, case_id)[-1]
        assert (event.seq, event.trigger, event.actor_id, event.from_state, event.to_state) == (
            2,
            "sla.reminder",
            "system",
            "reported",
            "reported",
        )
        assert event.at == sh(2026, 3, 2, 10)
        timer = timer_row(s, case_id, "reported", "reminder", 1)
        payload = dict(event.payload)
        assert datetime.fromisoformat(payload.pop("due_at")) == sh(2026, 3, 2, 11)
        assert payload == {"level": 1, "share": "50%", "clock": "state", "state": "reported", "timer": timer.id}
        assert (timer.status, timer.fired_at, timer.claimed_by, timer.attempts) == (
            "fired",
            sh(2026, 3, 2, 10),
            "sweeper-a",
            1,
        )
        assert outbox(s, timer.id) == CENTRE
        notice = s.scalars(select(Outbox).where(Outbox.recipient_id == CENTER, TIMER_NOTICE)).one()
        assert (notice.template, notice.status, notice.urgent, notice.case_id) == (
            "sla_reminder",
            "pending",
            False,
            case_id,
        )
        assert notice.params["case"] == case.code and notice.params["grid"] == GRID
        assert notice.params["share"] == "50%" and notice.params["state"] == "reported"
        # the breach is still to come
        assert timers(s, clock_of(s, case_id, "reported")) == {("breach", 0): sh(2026, 3, 2, 11)}


def test_a_breach_marks_the_case_overdue_and_the_clock_breached(db):
    with db.sessions.begin() as s:
        case_id = report(s, T0).id
    result = run(db, sh(2026, 3, 2, 11))
    assert fired(result) == [("breach", 0), ("reminder", 1)]
    with db.session() as s:
        case = s.get(Case, case_id)
        assert (case.version, case.overdue) == (3, True)
        clock = clock_of(s, case_id, "reported")
        assert (clock.status, clock.breached_at) == ("running", sh(2026, 3, 2, 11))
        breach = timer_row(s, case_id, "reported", "breach", 0)
        by_timer = {e.payload["timer"]: e for e in sla_events(s, case_id)}
        assert (by_timer[breach.id].trigger, by_timer[breach.id].payload["limit"]) == ("sla.breach", "2h")
        assert outbox(s, breach.id) == CENTRE
    with db.sessions.begin() as s:
        step(s, case_id, "classify", CENTER, sh(2026, 3, 2, 11, 30), **CLASSIFY)
    with db.session() as s:
        assert clock_of(s, case_id, "reported").outcome == "breached"
        assert_events_numbered(s)


# -- the ladder and the recipients ---------------------------------------------------------------


def test_handling_reminders_breach_and_ladder_reach_the_right_people(db):
    with db.sessions.begin() as s:
        case_id = to_in_progress(s, T0, "water_supply", "urgent")  # 7 h, due Tuesday 3 March 09:00

    def sweep_at(at, expected):
        result = run(db, at)
        assert fired(result) == sorted(expected)
        return result

    sweep_at(sh(2026, 3, 2, 11, 59, 59), [])
    sweep_at(sh(2026, 3, 2, 12), [("reminder", 2)])  # 4 h before
    sweep_at(sh(2026, 3, 2, 14, 30), [("reminder", 1)])  # 50 %
    sweep_at(sh(2026, 3, 3, 9), [("breach", 0), ("escalation", 1)])
    with db.session() as s:
        case = s.get(Case, case_id)
        assert (case.overdue, case.mark, case.escalation_level) == (True, "yellow_card", 1)
        assert clock_of(s, case_id, "in_progress").breached_at == sh(2026, 3, 3, 9)
    sweep_at(sh(2026, 3, 4, 8, 59), [])
    sweep_at(sh(2026, 3, 4, 9), [("escalation", 2)])
    with db.session() as s:
        assert (s.get(Case, case_id).mark, s.get(Case, case_id).escalation_level) == ("red_card", 2)
    sweep_at(sh(2026, 3, 5, 9), [("escalation", 3)])

    with db.session() as s:
        case = s.get(Case, case_id)
        assert (case.mark, case.escalation_level, case.status) == ("supervision_order", 3, "in_progress")
        assert case.version == 4 + 6
        recipients = {
            (kind, level): outbox(s, timer_row(s, case_id, "in_progress", kind, level).id)
            for kind, level in [
                ("reminder", 1),
                ("reminder", 2),
                ("breach", 0),
                ("escalation", 1),
                ("escalation", 2),
                ("escalation", 3),
            ]
        }
        assert recipients == {
            ("reminder", 1): {ASSIGNEE: "assignee"},
            ("reminder", 2): {ASSIGNEE: "assignee", GRID_WORKER: "grid_worker"},
            ("breach", 0): {ASSIGNEE: "assignee", GRID_WORKER: "grid_worker"},
            ("escalation", 1): {ASSIGNEE: "assignee", VILLAGE_SECRETARY: "village_secretary"},
            ("escalation", 2): {VILLAGE_SECRETARY: "village_secretary", **CENTRE},
            ("escalation", 3): {**LEADERS, **CENTRE},
        }
        assert set(s.scalars(select(Outbox.urgent).where(TIMER_NOTICE))) == {True}  # an urgent case
        ladder = [e for e in sla_events(s, case_id) if e.trigger == "sla.escalated"]
        assert [(e.payload["level"], e.payload["mark"]) for e in ladder] == [
            (1, "yellow_card"),
            (2, "red_card"),
            (3, "supervision_order"),
        ]
        assert all(e.payload["state"] == "in_progress" for e in ladder)
        assert {datetime.fromisoformat(e.payload["due_at"]) for e in ladder} == {sh(2026, 3, 3, 9)}
        templates = {(o.template) for o in s.scalars(select(Outbox).where(TIMER_NOTICE))}
        assert templates == {"sla_reminder", "sla_breach", "sla_escalated", "supervision_order"}  # 督办: its own

    # resolved (and the handling clock stopped, breached); the verification clock's yellow card
    # and the case clock's reminder fire later, and the mark does not go back down from 督办
    with db.sessions.begin() as s:
        step(s, case_id, "resolve", ASSIGNEE, sh(2026, 3, 5, 10), resolution="已更换水管")
    with db.session() as s:
        assert clock_of(s, case_id, "in_progress").outcome == "breached"
        resolved = clock_of(s, case_id, "resolved")
        assert timers(s, resolved) == {("breach", 0): sh(2026, 3, 10, 10), ("escalation", 1): sh(2026, 3, 12, 10)}
    sweep_at(sh(2026, 3, 12, 10), [("breach", 0), ("escalation", 1), ("reminder", 1)])
    with db.session() as s:
        case = s.get(Case, case_id)
        assert (case.mark, case.escalation_level) == ("supervision_order", 3)
        assert outbox(s, timer_row(s, case_id, "resolved", "escalation", 1).id) == LEADERS
        assert outbox(s, timer_row(s, case_id, None, "reminder", 1).id) == CENTRE
    with db.sessions.begin() as s:
        step(s, case_id, "verify", CENTER, sh(2026, 3, 12, 11), satisfaction="satisfied")
    sweep_at(sh(2026, 4, 30), [])  # every clock stopped: the case clock's breach and 督办 never come
    with db.session() as s:
        whole = clock_of(s, case_id, None)
        assert (whole.status, whole.outcome) == ("stopped", "met")
        assert_events_numbered(s)
        assert_fired_once(s)


def test_the_whole_case_clock_breach_and_supervision_order(db):
    with db.sessions.begin() as s:
        case_id = report(s, T0).id
        step(s, case_id, "classify", CENTER, sh(2026, 3, 2, 10), category="sanitation", priority="normal")
        step(s, case_id, "assign", CENTER, sh(2026, 3, 2, 10), assignee=ASSIGNEE)
        step(s, case_id, "accept", ASSIGNEE, sh(2026, 3, 2, 10))
        step(s, case_id, "suspend", ASSIGNEE, sh(2026, 3, 2, 10), reason="等待村民回家")
    # the case and handling clocks are paused: however late the sweep, only the suspended state's own
    # limit (10 working days from Monday 10:00: Monday 16 March 10:00) tells the centre to look again
    late = run(db, sh(2026, 3, 30))
    assert fired(late) == [("breach", 0)]
    with db.session() as s:
        suspended = clock_of(s, case_id, "suspended")
        assert suspended.breached_at == sh(2026, 3, 16, 10)
        assert outbox(s, late.fired[0]["timer_id"]) == CENTRE
    with db.sessions.begin() as s:
        step(s, case_id, "resume", CENTER, sh(2026, 3, 30, 9))  # 1 h used before the pause: 69 h left
    result = run(db, sh(2026, 4, 30))
    # the case clock (reminder, breach, 督办) and the handling clock (5d: reminders, breach, ladder)
    assert fired(result).count(("escalation", 1)) == 2
    with db.session() as s:
        case = s.get(Case, case_id)
        assert (case.mark, case.overdue) == ("supervision_order", True)
        whole = clock_of(s, case_id, None)
        # 69 h from Monday 30 March 09:00; Qingming (4–6 April) and 劳动节 are not in the way:
        # 30 Mar 6.5, 31 Mar–3 Apr 28 (34.5), 7–10 Apr 28 (62.5), 13 Apr 08:30 + 6.5 h -> 17:00
        assert whole.breached_at == sh(2026, 4, 13, 17)
        escalated = timer_row(s, case_id, None, "escalation", 1)
        assert escalated.fire_at == sh(2026, 4, 15, 17)  # 14 working hours after the breach
        assert outbox(s, escalated.id) == {**LEADERS, **CENTRE}
        assert outbox(s, timer_row(s, case_id, None, "breach", 0, "fired").id) == {
            VILLAGE_SECRETARY: "village_secretary",
            **CENTRE,
        }
        assert_events_numbered(s)
        assert_fired_once(s)


def test_a_breached_clock_paused_and_resumed_climbs_the_rest_of_the_ladder_on_time(db):
    """Breach and 黄牌 fired on Tuesday 09:00; suspended at 11:00 (2 working hours over), resumed on
    Wednesday 09:00: 红牌 comes 1d = 7 h after the breach in running time, 5 h after resuming
    (Wednesday 16:00), 督办 12 h after resuming (Thursday 16:00). Nothing fires twice."""
    with db.sessions.begin() as s:
        case_id = to_in_progress(s, T0, "water_supply", "urgent")  # due Tuesday 09:00
    assert fired(run(db, sh(2026, 3, 3, 9))) == [("breach", 0), ("escalation", 1), ("reminder", 1), ("reminder", 2)]
    with db.sessions.begin() as s:
        step(s, case_id, "suspend", ASSIGNEE, sh(2026, 3, 3, 11), reason="等待配件")
        step(s, case_id, "resume", CENTER, sh(2026, 3, 4, 9))
    with db.session() as s:
        handling = clock_of(s, case_id, "in_progress")
        assert (handling.consumed_s, handling.breached_at) == (9 * 3600, sh(2026, 3, 3, 9))
        assert timers(s, handling) == {("escalation", 2): sh(2026, 3, 4, 16), ("escalation", 3): sh(2026, 3, 5, 16)}
    assert fired(run(db, sh(2026, 3, 4, 16))) == [("escalation", 2)]
    assert fired(run(db, sh(2026, 3, 5, 16))) == [("escalation", 3)]
    with db.session() as s:
        assert s.get(Case, case_id).mark == "supervision_order"
        assert_events_numbered(s)
        assert_fired_once(s)


def test_recipients_are_resolved_from_the_org_chart_when_the_timer_fires(db):
    with db.sessions.begin() as s:
        case_id = to_in_progress(s, T0, "water_supply", "urgent")
    # 熊成林 steps down; 王红梅 (grid worker of mayingtai-02) becomes village secretary of 马营台村
    chart = seeded_org()
    people = []
    for person in chart.people:
        if person.id == VILLAGE_SECRETARY:
            person = dataclasses.replace(person, roles=())
        elif person.id == "p-wang-hongmei":
            person = dataclasses.replace(person, roles=(*person.roles, ("village_secretary", "mayingtai")))
        people.append(person)
    with db.sessions.begin() as s:
        org_repo.apply_org_chart(s, dataclasses.replace(chart, people=tuple(people)), sh(2026, 3, 2, 10))
    run(db, sh(2026, 3, 3, 9))
    with db.session() as s:
        assert outbox(s, timer_row(s, case_id, "in_progress", "escalation", 1).id) == {
            ASSIGNEE: "assignee",
            "p-wang-hongmei": "village_secretary",
        }


def test_a_late_sweep_records_the_events_in_deadline_order(db):
    with db.sessions.begin() as s:
        case_id = to_in_progress(s, T0, "water_supply", "urgent")
    result = run(db, sh(2026, 3, 3, 9))  # reminders at 12:00 and 14:30 the day before, breach and 黄牌 now
    assert fired(result) == [("breach", 0), ("escalation", 1), ("reminder", 1), ("reminder", 2)]
    with db.session() as s:
        fire_times = [s.get(SlaTimer, e.payload["timer"]).fire_at for e in sla_events(s, case_id)]
        assert fire_times == sorted(fire_times)
        assert_events_numbered(s)


# -- exactly once ---------------------------------------------------------------------------------


def test_each_timer_fires_once_whatever_the_sweeps(db):
    with db.sessions.begin() as s:
        case_ids = [report(s, T0).id for _ in range(3)]
    first = run(db, sh(2026, 3, 2, 10, 30), worker="a")
    assert fired(first) == [("reminder", 1)] * 3
    assert run(db, sh(2026, 3, 2, 10, 30), worker="a").claimed == 0  # the same sweep again
    assert run(db, sh(2026, 3, 2, 10, 45), worker="b").claimed == 0  # overlapping, another sweeper
    second = run(db, sh(2026, 3, 2, 11), worker="b")
    assert fired(second) == [("breach", 0)] * 3
    assert run(db, sh(2026, 3, 2, 10), worker="c").claimed == 0  # an earlier instant, after the fact
    assert run(db, sh(2026, 3, 2, 11), worker="c").claimed == 0
    with db.session() as s:
        assert {s.get(Case, i).version for i in case_ids} == {3}
        assert_events_numbered(s)
        assert_fired_once(s)


def test_a_sweep_works_through_the_due_timers_a_batch_at_a_time(db):
    with db.sessions.begin() as s:
        for _ in range(3):
            report(s, T0)
    result = run(db, sh(2026, 3, 2, 11), batch=2)
    assert (result.claimed, len(result.fired)) == (6, 6)
    with db.session() as s:
        assert_fired_once(s)
        assert (
            s.scalar(select(SlaTimer.id).where(SlaTimer.status == "pending", SlaTimer.fire_at <= sh(2026, 3, 2, 11)))
            is None
        )


def test_concurrent_sweeps_fire_each_timer_once(db):
    """Four sweepers in threads, at overlapping instants; one due timer per case."""
    with db.sessions.begin() as s:
        case_ids = [report(s, T0).id for _ in range(12)]
    barrier = threading.Barrier(4)
    results, errors = [], []

    def sweeper(i: int) -> None:
        barrier.wait(timeout=10)
        try:
            results.append(run(db, sh(2026, 3, 2, 10, 10 * i), worker=f"thread-{i}", batch=3))
        except Exception as exc:  # asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=sweeper, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sum(len(r.fired) for r in results) == 12
    with db.session() as s:
        assert {s.get(Case, i).version for i in case_ids} == {2}
        assert_events_numbered(s)
        assert_fired_once(s)


def test_naive_sweep_time_is_refused(db):
    with pytest.raises(NaiveDatetime):
        run(db, datetime(2026, 3, 2, 10))


# -- stale timers -----------------------------------------------------------------------------------


def _revive(db, timer_id: int) -> None:
    """A timer that escaped its cancellation (as if it had been read before the clock moved)."""
    with db.sessions.begin() as s:
        s.execute(
            update(SlaTimer)
            .where(SlaTimer.id == timer_id)
            .values(status="pending", note=None, claimed_by=None, lease_until=None)
        )


def _assert_stale(db, case_id: int, version: int, timer_id: int) -> None:
    with db.session() as s:
        assert s.get(Case, case_id).version == version
        assert sla_events(s, case_id) == []
        assert s.scalars(select(Outbox).where(TIMER_NOTICE)).all() == []
        timer = s.get(SlaTimer, timer_id)
        assert timer.status == "cancelled" and timer.note.startswith("stale")


def test_a_stale_timer_of_a_stopped_clock_does_nothing(db):
    with db.sessions.begin() as s:
        case_id = report(s, T0).id
        step(s, case_id, "classify", CENTER, sh(2026, 3, 2, 9, 30), **CLASSIFY)  # classified: due 13:30
    with db.session() as s:
        reminder = timer_row(s, case_id, "reported", "reminder", 1)
        assert reminder.status == "cancelled"
    _revive(db, reminder.id)
    result = run(db, sh(2026, 3, 2, 10))
    assert (result.claimed, result.stale, result.fired) == (1, 1, [])
    _assert_stale(db, case_id, 2, reminder.id)


def test_a_stale_timer_of_a_paused_or_relaid_clock_does_nothing(db):
    with db.sessions.begin() as s:
        case_id = to_in_progress(s, T0, "water_supply", "urgent")
        step(s, case_id, "suspend", ASSIGNEE, sh(2026, 3, 2, 10), reason="等待村民回家")
    with db.session() as s:
        old = timer_row(s, case_id, "in_progress", "reminder", 2)  # generation 1, at 12:00
        assert (old.generation, old.status, old.fire_at) == (1, "cancelled", sh(2026, 3, 2, 12))
    _revive(db, old.id)
    assert run(db, sh(2026, 3, 2, 12)).stale == 1  # the clock is paused
    _assert_stale(db, case_id, 5, old.id)

    with db.sessions.begin() as s:
        step(s, case_id, "resume", CENTER, sh(2026, 3, 2, 11))  # 1 h used: 6 h left
    with db.session() as s:
        new = timer_row(s, case_id, "in_progress", "reminder", 2, "pending")
        assert (new.generation, new.fire_at) == (2, sh(2026, 3, 2, 15))  # 3 h in: 2 h after resuming
    _revive(db, old.id)
    assert run(db, sh(2026, 3, 2, 12)).stale == 1  # the clock runs, but at generation 2
    _assert_stale(db, case_id, 6, old.id)
    result = run(db, sh(2026, 3, 2, 15))
    assert fired(result) == [("reminder", 2)] and result.fired[0]["timer_id"] == new.id
    with db.session() as s:
        assert [e.payload["timer"] for e in sla_events(s, case_id)] == [new.id]


# -- leases: a sweeper that died after claiming ----------------------------------------------------


def test_the_claim_of_a_dead_sweeper_is_taken_over_when_its_lease_runs_out(db):
    with db.sessions.begin() as s:
        case_id = report(s, T0).id
    at = sh(2026, 3, 2, 10)
    with db.sessions.begin() as s:
        claimed = claim(s, at, "dead-sweeper")  # ... and the process dies before firing
    assert len(claimed) == 1
    with db.session() as s:
        timer = s.get(SlaTimer, claimed[0])
        assert (timer.status, timer.claimed_by, timer.lease_until, timer.attempts) == (
            "pending",
            "dead-sweeper",
            at + LEASE,
            1,
        )
    before = db.snapshot()
    assert run(db, at + timedelta(minutes=1), worker="alive").claimed == 0
    assert run(db, at + LEASE, worker="alive").claimed == 0  # the lease still holds at its last instant
    assert db.snapshot() == before
    result = run(db, at + LEASE + timedelta(seconds=1), worker="alive")
    assert (result.claimed, fired(result)) == (1, [("reminder", 1)])
    # the dead sweeper wakes up: the timer is no longer its own
    with db.sessions.begin() as s:
        assert fire_one(s, claimed[0], "dead-sweeper", at + timedelta(minutes=5)) is None
    with db.session() as s:
        timer = s.get(SlaTimer, claimed[0])
        assert (timer.status, timer.claimed_by, timer.attempts) == ("fired", "alive", 2)
        assert s.get(Case, case_id).version == 2
        assert_fired_once(s)


# -- a sweep racing a user step on the same case ------------------------------------------------------


def _case_with_due_case_reminder(db) -> tuple[int, datetime]:
    """A reported case whose reported clock already fired; its case clock's reminder is due."""
    with db.sessions.begin() as s:
        case_id = report(s, T0).id
    run(db, sh(2026, 3, 2, 11))  # reported clock: reminder and breach, version 3
    return case_id, sh(2026, 3, 12, 9)  # 80 % of the case clock


def test_a_user_step_between_claim_and_fire_loses_nothing(db):
    case_id, at = _case_with_due_case_reminder(db)
    calls = []

    def transaction():
        calls.append(1)
        if len(calls) == 2:  # the claims are committed; before the fire transaction, the user steps in
            with db.sessions.begin() as s:
                step(s, case_id, "classify", CENTER, at, **CLASSIFY)
        return db.sessions.begin()

    result = sweep(transaction, at, "sweeper-1")
    assert fired(result) == [("reminder", 1)]
    with db.session() as s:
        case = s.get(Case, case_id)
        assert (case.status, case.version) == ("classified", 5)
        assert [e.trigger for e in events(s, case_id)][-2:] == ["classify", "sla.reminder"]
        assert_events_numbered(s)
        assert_fired_once(s)


def test_a_user_step_that_stops_the_clock_after_the_claim_cancels_the_timer(db):
    with db.sessions.begin() as s:
        case_id = report(s, T0).id
    calls = []

    def transaction():
        calls.append(1)
        if len(calls) == 2:
            with db.sessions.begin() as s:
                step(s, case_id, "classify", CENTER, sh(2026, 3, 2, 10), **CLASSIFY)
        return db.sessions.begin()

    result = sweep(transaction, sh(2026, 3, 2, 10), "sweeper-1")
    assert (result.claimed, result.fired) == (1, [])
    with db.session() as s:
        assert s.get(Case, case_id).version == 2
        assert timer_row(s, case_id, "reported", "reminder", 1).status == "cancelled"
        assert s.scalars(select(Outbox).where(TIMER_NOTICE)).all() == []


class Interleave:
    """Let another thread act while a sweep is inside its fire transaction.

    Implementation-neutral: the sweep's fire transaction is the second one it asks of its
    ``transaction`` factory (the first takes the claims); after its ``after``-th SQL statement
    (or just before it commits, if it has fewer), ``action`` starts in its own thread and the
    sweep goes on once that thread has finished or waits for a lock the sweep holds.
    """

    def __init__(self, db, action, after: int | None):
        self.db, self.action, self.after = db, action, after
        self.calls = self.statements = 0
        self.armed, self.thread, self.outcome = False, None, None
        self.sweeper = threading.current_thread()

    def transaction(self):
        self.calls += 1
        self.armed = self.calls == 2 and self.thread is None
        return self.db.sessions.begin()

    def _run(self) -> None:
        try:
            self.action()
            self.outcome = "committed"
        except Exception as exc:  # asserted on by the test
            self.outcome = exc

    def _go(self) -> None:
        self.armed = False
        self.thread = threading.Thread(target=self._run)
        self.thread.start()
        _wait_until_blocked_or_done(self.db, self.thread)

    def after_execute(self, *args) -> None:
        if self.armed and threading.current_thread() is self.sweeper:
            self.statements += 1
            if self.after is not None and self.statements >= self.after:
                self._go()

    def before_commit(self, *args) -> None:
        if self.armed and threading.current_thread() is self.sweeper:
            self._go()

    def sweep(self, at, worker="sweeper-1", **kwargs):
        event.listen(self.db.engine, "after_cursor_execute", self.after_execute)
        event.listen(self.db.engine, "commit", self.before_commit)
        try:
            return sweep(self.transaction, at, worker, **kwargs)
        finally:
            event.remove(self.db.engine, "after_cursor_execute", self.after_execute)
            event.remove(self.db.engine, "commit", self.before_commit)
            if self.thread is not None:
                self.thread.join(timeout=60)


def _wait_until_blocked_or_done(db, thread: threading.Thread, timeout: float = 5.0) -> None:
    if db.backend == "sqlite":  # the other writer waits on the database lock (busy timeout)
        thread.join(timeout=0.5)
        return
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and thread.is_alive():
        with db.engine.connect() as conn:
            if conn.execute(query).scalar():
                return
        time.sleep(0.02)


RACE_POINTS = [1, 2, 3, 4, 5, 6, None]  # after the n-th statement of the fire transaction; None: at its commit


def _classify(db, case_id: int, at: datetime):
    def action():
        with db.sessions.begin() as s:
            step(s, case_id, "classify", CENTER, at, **CLASSIFY)

    return action


def _race(db, after, case_id, at):
    """Sweep at ``at`` while the centre classifies the case; a refused step is retried once, as the app does."""
    race = Interleave(db, _classify(db, case_id, at), after)
    try:
        result = race.sweep(at)
    except Exception as exc:  # asserted on below
        result = exc
    assert not isinstance(result, Exception), f"the sweep failed: {result!r}"
    assert race.outcome == "committed" or isinstance(race.outcome, ConcurrentUpdate), (
        f"the user step failed: {race.outcome!r}"
    )
    if race.outcome != "committed":
        _classify(db, case_id, at)()
    run(db, at + LEASE + timedelta(seconds=1), worker="later")  # whatever was left to retry
    return result


@pytest.mark.parametrize("after", RACE_POINTS, ids=[f"after-{n}" if n else "at-commit" for n in RACE_POINTS])
def test_a_sweep_racing_a_user_step_loses_neither(pg_db, after):
    """The timer is the case clock's reminder; the user step (classify) leaves that clock running."""
    db = pg_db
    case_id, at = _case_with_due_case_reminder(db)
    _race(db, after, case_id, at)
    with db.session() as s:
        case = s.get(Case, case_id)
        assert (case.status, case.version) == ("classified", 5)
        assert timer_row(s, case_id, None, "reminder", 1).status == "fired"
        assert sorted(e.trigger for e in events(s, case_id)[3:]) == ["classify", "sla.reminder"]
        assert_events_numbered(s)
        assert_fired_once(s)


@pytest.mark.parametrize("after", RACE_POINTS, ids=[f"after-{n}" if n else "at-commit" for n in RACE_POINTS])
def test_a_sweep_racing_a_user_step_that_stops_the_timers_clock(pg_db, after):
    """The timer is the reported clock's breach; the user step (classify) stops that clock. Either the
    breach fires first (and the clock stops breached) or the step comes first (and the timer is void)."""
    db = pg_db
    with db.sessions.begin() as s:
        case_id = report(s, T0).id
    run(db, sh(2026, 3, 2, 10))  # the reminder; the breach at 11:00 is left
    at = sh(2026, 3, 2, 11)
    _race(db, after, case_id, at)
    with db.session() as s:
        case = s.get(Case, case_id)
        breach = timer_row(s, case_id, "reported", "breach", 0)
        reported = clock_of(s, case_id, "reported")
        assert case.status == "classified" and reported.status == "stopped"
        if breach.status == "fired":
            assert (reported.outcome, case.overdue, case.version) == ("breached", True, 4)
        else:
            assert breach.status == "cancelled" and case.version == 3
        assert_events_numbered(s)
        assert_fired_once(s)


def test_a_sweep_racing_a_user_step_on_either_back_end(db):
    """On SQLite (one writer at a time) the user step waits for the sweep's transaction, then goes on."""
    case_id, at = _case_with_due_case_reminder(db)
    _race(db, 1, case_id, at)
    with db.session() as s:
        assert (s.get(Case, case_id).status, s.get(Case, case_id).version) == ("classified", 5)
        assert_events_numbered(s)
        assert_fired_once(s)


@pytest.mark.parametrize("after", RACE_POINTS, ids=[f"after-{n}" if n else "at-commit" for n in RACE_POINTS])
def test_two_sweepers_firing_timers_of_the_same_cases_in_opposite_order(pg_db, monkeypatch, after):
    """Cases X and Y each have two due timers; sweeper A claims one of each, sweeper B the others, and
    claim() hands them out in opposite case order (the order of a claim is unspecified; by chance it
    happens with several sweeper processes). B sweeps while A is inside its fire transaction. Neither
    sweeper may fail; every timer fires once (a lost race is retried after the lease)."""
    db = pg_db
    with db.sessions.begin() as s:
        x, y = report(s, T0).id, report(s, T0).id
    at = sh(2026, 3, 2, 11)  # each case: the reported clock's reminder (10:00) and breach (11:00)
    real_claim = sweep_module.claim

    def claim_in_opposite_orders(session, at, worker, batch=500, lease=LEASE):
        ids = real_claim(session, at, worker, batch, lease)
        cases_of = dict(session.execute(select(SlaTimer.id, SlaTimer.case_id).where(SlaTimer.id.in_(ids))).all())
        return sorted(ids, key=lambda i: cases_of[i], reverse=worker == "B")

    monkeypatch.setattr(sweep_module, "claim", claim_in_opposite_orders)
    outcome: dict[str, object] = {}

    def sweeper_b():
        outcome["B"] = sweep(db.sessions.begin, at, "B", batch=2)

    race = Interleave(db, sweeper_b, after)
    try:  # A claims the two reminders, B then the two breaches
        outcome["A"] = race.sweep(at, "A", batch=2)
    except Exception as exc:  # asserted on below
        outcome["A"] = exc
    monkeypatch.setattr(sweep_module, "claim", real_claim)
    if isinstance(race.outcome, Exception):
        outcome["B"] = race.outcome
    run(db, at + LEASE + timedelta(seconds=1), worker="later")  # whatever was rolled back
    with db.session() as s:
        assert s.scalar(select(SlaTimer.id).where(SlaTimer.status == "pending", SlaTimer.fire_at <= at)) is None
        assert {s.get(Case, x).version, s.get(Case, y).version} == {3}
        assert_events_numbered(s)
        assert_fired_once(s)
    assert not any(isinstance(o, Exception) for o in outcome.values()), outcome


# -- special workflows ----------------------------------------------------------------------------


def test_a_reminder_at_57_percent(db):
    publish_fixture(db, "reminder_share.yaml")
    with db.sessions.begin() as s:
        case_id = report(s, T0, workflow="sla_reminder_share").id
    with db.session() as s:
        clock = clock_of(s, case_id, "open")
        # 57 % of 7 h = 3 h 59 min 24 s: 09:00–12:00, then 14:00 + 59 min 24 s
        reminder_at = timers(s, clock)[("reminder", 1)]
    run(db, sh(2026, 3, 2, 15))
    with db.session() as s:
        share = sla_events(s, case_id)[0].payload["share"]
    assert (reminder_at, share) == (sh(2026, 3, 2, 14, 59, 24), "57%")


def test_a_rung_whose_role_nobody_holds_for_the_grid_tells_the_centre_and_says_so(db, tmp_path):
    """A unit grid (乡机关单元格) has no village: its yellow card would reach the handler alone and its
    red card only the centre; the centre is told in the village secretary's place, and the notice,
    ``sla explain`` and ``notices list`` say so (issue 19, finding 8)."""
    from config.settings import Settings
    from engine import cases
    from gridflow.app import Gridflow
    from tests.integration.test_sla import calendars
    from tests.support import Clock

    worker = "p-ren-kaixue"  # the centre's staff member who is also the grid worker of unit-01
    with db.sessions.begin() as s:
        case = cases.report(
            s, grid_id="unit-01", actor_id=worker, fields={"title": "乡机关门前路灯不亮"}, at=T0, calendars=calendars()
        ).case
        step(s, case.id, "classify", CENTER, T0, category="water_supply", priority="urgent")
        step(s, case.id, "assign", CENTER, T0, assignee=worker)
        step(s, case.id, "accept", worker, T0)
    run(db, sh(2026, 3, 3, 9))  # breach and the yellow card
    with db.session() as s:
        yellow = timer_row(s, case.id, "in_progress", "escalation", 1)
        assert outbox(s, yellow.id) == {**CENTRE, worker: "assignee"}
        rows = s.scalars(select(Outbox).where(Outbox.dedupe_key.like(f"timer:{yellow.id}:%"))).all()
        assert {tuple(r.params["instead_of"]) for r in rows} == {("village_secretary",)}
    gf = Gridflow(Settings(home=tmp_path, database_url=db.url), clock=Clock())
    try:
        explained = gf.explain_sla(case.code)
        handling = next(c for c in explained["clocks"] if c["state"] == "in_progress")
        rung = next(t for t in handling["timers"] if (t["kind"], t["level"]) == ("escalation", 1))
        assert rung["instead_of"] == ["village_secretary"] and {p["as"] for p in rung["to"]} == {"assignee", "center"}
        red = next(t for t in handling["timers"] if (t["kind"], t["level"]) == ("escalation", 2))
        assert red["status"] == "pending" and red["instead_of"] == ["village_secretary"]
        listed = gf.list_notices(to=CENTER).data["notices"]
        assert any(n["instead_of"] == ["village_secretary"] for n in listed)
    finally:
        gf.close()


def test_a_timer_fired_between_a_steps_read_and_its_write_fails_the_step_and_keeps_the_breach(pg_db, monkeypatch):
    """On PostgreSQL a step reads the case's open clocks with the case, before its compare-and-set. A sweep
    that fires a timer in between changes a clock (the breach) and the case's version, so the step must
    lose its compare-and-set and write nothing; retried, it stops the clock as breached."""
    from engine.store import case_repo

    db = pg_db
    with db.sessions.begin() as s:
        case_id = report(s, T0).id
    run(db, sh(2026, 3, 2, 10))  # the reminder; the reported clock's breach is due at 11:00
    at = sh(2026, 3, 2, 11)
    real = case_repo.save_step
    swept = []

    def sweep_first(*args, **kwargs):
        if not swept:
            swept.append(run(db, at, worker="in-between"))  # commits in its own transaction
        return real(*args, **kwargs)

    monkeypatch.setattr(case_repo, "save_step", sweep_first)
    with pytest.raises(ConcurrentUpdate), db.sessions.begin() as s:
        step(s, case_id, "classify", CENTER, at, **CLASSIFY)
    assert fired(swept[0]) == [("breach", 0)]
    monkeypatch.setattr(case_repo, "save_step", real)
    with db.sessions.begin() as s:
        step(s, case_id, "classify", CENTER, at, **CLASSIFY)
    with db.session() as s:
        reported = clock_of(s, case_id, "reported")
        assert (reported.status, reported.outcome, reported.breached_at) == ("stopped", "breached", at)
        assert s.get(Case, case_id).version == 4  # report, reminder, breach, classify
        assert_events_numbered(s)
        assert_fired_once(s)
