"""``due_breakdown``: a deadline and the business time each local day contributes to it.

Worked by hand from the State Council's 2026 schedule (国庆节 1–7 Oct off, Sat 10 Oct worked) and
the township calendar (Mon–Fri 08:30–12:00, 14:00–17:30; ``1d`` = 7 h). The properties hold for
any start and limit on every configured calendar: the days add up to the limit, and the deadline
is the one an SLA clock computes (the clock's arithmetic: next working instant, then ``add``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.calendar import UnknownYear, due_breakdown, load_calendars

ROOT = Path(__file__).resolve().parents[2]
SH = ZoneInfo("Asia/Shanghai")
CONFIG = load_calendars(ROOT / "config" / "calendars.yaml")
TOWNSHIP, ALWAYS = CONFIG["township"], CONFIG["24x7"]
WITH_2027 = load_calendars(ROOT / "tests" / "fixtures" / "calendars" / "good_2027.yaml")
H, M = timedelta(hours=1), timedelta(minutes=1)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


def test_national_day_2026_two_working_days_from_the_last_afternoon_of_september():
    b = due_breakdown(TOWNSHIP, local(2026, 9, 30, 16), 14 * H)
    assert b.deadline.at == local(2026, 10, 9, 16) and not b.deadline.estimated
    assert b.begin == b.start == local(2026, 9, 30, 16)
    assert [(d.day.isoformat(), d.kind, d.counted // M, d.total // M) for d in b.days] == [
        ("2026-09-30", "workday", 90, 90),  # 16:00–17:30
        *((f"2026-10-0{n}", "holiday", 0, 90) for n in range(1, 8)),  # 国庆节
        ("2026-10-08", "workday", 420, 510),
        ("2026-10-09", "workday", 330, 840),  # 08:30–12:00 and 14:00–16:00
    ]


def test_a_start_on_a_holiday_counts_from_the_first_working_morning():
    b = due_breakdown(TOWNSHIP, local(2026, 10, 3, 10), 4 * H)
    assert b.begin == local(2026, 10, 8, 8, 30) and b.deadline.at == local(2026, 10, 8, 14, 30)
    assert [d.day.day for d in b.days] == [3, 4, 5, 6, 7, 8] and b.days[-1].total == 4 * H


def test_a_make_up_saturday_counts():
    b = due_breakdown(TOWNSHIP, local(2026, 10, 9, 16), 1 * 7 * H)  # Fri 1.5 h, Sat 10 Oct worked (班)
    assert [(d.day.day, d.kind, d.counted // M) for d in b.days] == [(9, "workday", 90), (10, "makeup_workday", 330)]
    assert b.deadline.at == local(2026, 10, 10, 16)


def test_24x7_is_wall_time_and_a_deadline_at_midnight_lists_no_extra_day():
    b = due_breakdown(ALWAYS, local(2026, 9, 30, 16), 48 * H)
    assert b.deadline.at == local(2026, 10, 2, 16)
    assert [(d.day.day, d.counted // M) for d in b.days] == [(30, 480), (1, 1440), (2, 960)]
    midnight = due_breakdown(ALWAYS, local(2026, 10, 1), 24 * H)
    assert midnight.deadline.at == local(2026, 10, 2) and [d.day.day for d in midnight.days] == [1]


def test_a_deadline_in_an_estimated_year_is_flagged_on_its_days():
    b = due_breakdown(TOWNSHIP, local(2026, 12, 31, 16), 7 * H)
    assert b.deadline.estimated and b.deadline.at == local(2027, 1, 4, 16)  # 2027's New Year is estimated
    assert [(d.day, d.estimated) for d in b.days][0] == (date(2026, 12, 31), False)
    assert all(d.estimated for d in b.days[1:])
    official = due_breakdown(WITH_2027["township"], local(2026, 12, 31, 16), 7 * H)
    assert not official.deadline.estimated


def test_a_year_no_schedule_covers_is_an_error():
    with pytest.raises(UnknownYear, match="2101"):
        due_breakdown(TOWNSHIP, local(2100, 12, 31, 16), 14 * H)


# -- properties -----------------------------------------------------------------------------------

CALENDARS = [TOWNSHIP, ALWAYS, WITH_2027["township"]]
starts = st.integers(0, 2 * 365 * 24 * 60).map(lambda m: datetime(2026, 1, 1, tzinfo=UTC) + m * M)
limits = st.one_of(
    st.integers(1, 9999).map(lambda n: n * M), st.integers(1, 200).map(lambda n: n * H), st.integers(1, 60)
)


@pytest.mark.parametrize("cal", CALENDARS, ids=lambda c: c.name)
@settings(max_examples=150, deadline=None)
@given(start=starts, amount=limits)
def test_the_days_add_up_to_the_limit_and_the_deadline_is_the_clocks(cal, start, amount):
    limit = amount * cal.day_length if isinstance(amount, int) else amount  # an int is a number of days
    b = due_breakdown(cal, start, limit)
    assert b.deadline == cal.add(cal.next_working_instant(start), limit)  # what engine.sla's start computes
    assert sum((d.counted for d in b.days), timedelta(0)) == limit == b.days[-1].total
    assert [d.day for d in b.days] == _consecutive(b.days[0].day, len(b.days))
    assert b.days[0].day == start.astimezone(cal.tz).date()
    assert b.days[-1].day == (b.deadline.at - timedelta(microseconds=1)).astimezone(cal.tz).date()
    assert all(d.counted == timedelta(0) or cal.is_working_day(d.day) for d in b.days)
    assert b.deadline.estimated == any(d.estimated for d in b.days) or cal.china is None


def _consecutive(first: date, n: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(n)]
