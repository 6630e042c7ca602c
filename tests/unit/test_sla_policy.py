"""A clock's policy as stored on it: ``Policy.to_json`` is what ``dataclasses.asdict`` gives (it is built by
hand for speed), and ``from_json`` reads it back, for any policy."""

from __future__ import annotations

import dataclasses
import json

from hypothesis import given
from hypothesis import strategies as st

from engine.sla import Level, Policy, Reminder

roles = st.lists(st.sampled_from(["assignee", "grid_worker", "center", "village_secretary"]), max_size=3).map(tuple)
reminders = st.builds(
    Reminder,
    st.one_of(st.none(), st.integers(1, 99)),
    st.one_of(st.none(), st.integers(0, 10**6)),
    roles,
    st.sampled_from(["sla_reminder", "custom_reminder"]),
)
levels = st.builds(
    Level, st.integers(0, 10**6), roles, st.sampled_from([None, "yellow_card", "red_card", "supervision_order"])
)
policies = st.builds(
    Policy,
    st.sampled_from(["township", "flood_season"]),
    st.integers(1, 10**7),
    st.sampled_from(["2h", "1d", "10d"]),
    st.lists(reminders, max_size=3).map(tuple),
    roles,
    st.lists(levels, max_size=3).map(tuple),
)


@given(policies)
def test_to_json_is_asdict_and_reads_back(policy):
    stored = policy.to_json()
    assert stored == dataclasses.asdict(policy)
    assert json.dumps(stored) == json.dumps(dataclasses.asdict(policy))  # the very JSONB written
    assert Policy.from_json(json.loads(json.dumps(stored))) == policy
