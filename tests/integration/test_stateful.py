"""Hypothesis fires random triggers at random cases and checks the invariants.

- the status is always a state of the case's own definition version;
- the version grows by exactly one per accepted step, and there is one event per step
  (events numbered 1..version);
- a rejected step changes nothing (the case row and its events are as before).
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from engine import cases
from engine.errors import GridflowError
from engine.store import workflow_repo
from engine.store.models import Case, CaseEvent
from tests.support import CENTER, GRID, GRID_WORKER, T0, calendars, seeded_workflow

OTHER_GRID = "mayingtai-02"
ACTORS = [CENTER, GRID_WORKER, "p-liu-zongbi", "p-ghost", "<assignee>"]
TRIGGERS = [
    "classify",
    "assign",
    "accept",
    "return",
    "suspend",
    "resume",
    "request_extension",
    "approve_extension",
    "reject_extension",
    "resolve",
    "verify",
    "rework",
    "void",
    "explode",
]
FIELD_VALUES = {  # the first value is good, the rest are bad
    "category": ["water_supply", "bogus"],
    "priority": ["urgent", "huge"],
    "assignee": [GRID_WORKER, "p-liu-zongbi", "p-nobody"],
    "reason": ["村民不在家", ""],
    "resolution": ["已处理"],
    "satisfaction": ["satisfied", "很好"],
    "extend_by": ["2d", "4x"],
    "note": ["备注"],
}
DEFINITION = seeded_workflow().definition


HAPPY_PATH = {
    "reported": "classify",
    "classified": "assign",
    "assigned": "accept",
    "in_progress": "resolve",
    "suspended": "resume",
    "resolved": "verify",
}


def trigger_actor_fields(rnd, status: str) -> tuple[str, str, dict[str, str]]:
    """Mostly a trigger allowed now, by someone entitled to it, with its fields, so walks go deep;
    now and then a wrong trigger, actor, missing field, bad value or stray field."""
    allowed = DEFINITION.allowed_triggers(status)
    if allowed and rnd.random() < 0.8:
        forward = HAPPY_PATH.get(status)
        trigger = forward if forward and rnd.random() < 0.5 else rnd.choice(allowed)
        entitled = "<assignee>" if "assignee" in DEFINITION.triggers[trigger].roles else CENTER
        actor = entitled if rnd.random() < 0.85 else rnd.choice(ACTORS)
    else:
        trigger, actor = rnd.choice(TRIGGERS), rnd.choice(ACTORS)
    spec = DEFINITION.triggers.get(trigger)
    fields = {}
    for name in (spec.required + spec.optional) if spec else ():
        if rnd.random() < (0.93 if name in spec.required else 0.3):
            good, *bad = FIELD_VALUES[name]
            fields[name] = good if rnd.random() < 0.85 else rnd.choice(bad or [good])
    if rnd.random() < 0.03:
        fields["colour"] = "red"
    return trigger, actor, fields


REACHED: set[str] = set()
REJECTED: list = []


def make_machine(db):
    class CaseMachine(RuleBasedStateMachine):
        open_cases = Bundle("cases")

        def __init__(self):
            super().__init__()
            self.expected: dict[int, int] = {}
            self.at = T0

        def _tick(self):
            self.at += timedelta(minutes=7)
            return self.at

        @precondition(lambda self: len(self.expected) < 4)  # few cases, long walks
        @rule(target=open_cases, grid=st.sampled_from([GRID, OTHER_GRID]), actor=st.sampled_from([GRID_WORKER, CENTER]))
        def report(self, grid, actor):
            try:
                with db.sessions.begin() as s:
                    case = cases.report(
                        s,
                        grid_id=grid,
                        calendars=calendars(),
                        actor_id=actor,
                        fields={"title": "随机"},
                        at=self._tick(),
                    ).case
            except GridflowError:
                assert actor == GRID_WORKER and grid == OTHER_GRID  # a grid worker only reports in their grid
                return None
            self.expected[case.id] = 1
            return case.id

        @rule(case_id=open_cases, data=st.data())
        def fire(self, case_id, data):
            if case_id is None:
                return
            before = self._row(case_id)
            trigger, actor, fields = trigger_actor_fields(data.draw(st.randoms()), before[0]["status"])
            if actor == "<assignee>":
                actor = before[0]["assignee_id"] or GRID_WORKER
            try:
                with db.sessions.begin() as s:
                    result = cases.fire(
                        s, case_id, trigger, calendars=calendars(), actor_id=actor, fields=dict(fields), at=self._tick()
                    )
                    version = result.case.version
                    REACHED.add(result.case.status)
            except GridflowError as exc:
                REJECTED.append((trigger, before[0]["status"], str(exc)[:90]))
                assert self._row(case_id) == before, "a rejected step changed something"
                return
            assert version == self.expected[case_id] + 1
            self.expected[case_id] = version

        def _row(self, case_id):
            with db.session() as s:
                case = s.get(Case, case_id)
                events = s.scalars(select(CaseEvent.seq).where(CaseEvent.case_id == case_id)).all()
                columns = {c.key: getattr(case, c.key) for c in Case.__table__.columns}
                return columns, sorted(events)

        @invariant()
        def every_case_is_consistent(self):
            with db.session() as s:
                for case_id, version in self.expected.items():
                    case = s.get(Case, case_id)
                    states = workflow_repo.compiled(s, case.workflow_id).definition.states
                    assert case.status in states
                    assert case.version == version
                    seqs = s.scalars(select(CaseEvent.seq).where(CaseEvent.case_id == case_id)).all()
                    assert sorted(seqs) == list(range(1, version + 1))

    return CaseMachine


def test_random_triggers_keep_the_invariants(db):
    REACHED.clear()
    run_state_machine_as_test(
        make_machine(db),
        settings=settings(
            max_examples=30,
            stateful_step_count=60,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.large_base_example],
        ),
    )
    # the random walk must get past the first steps, or it proves little
    assert {"classified", "assigned", "in_progress", "resolved", "verified", "voided"} <= REACHED, REACHED
