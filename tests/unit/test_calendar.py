"""Business calendars: table tests written from the official 2026 schedule, round-trip properties, bad files.

The 2026 schedule (国务院办公厅关于2026年部分节假日安排的通知), as used below:

    元旦     Jan 1–3 off (Thu–Sat); Sun Jan 4 worked
    春节     Feb 15–23 off (Sun–Mon); Sat Feb 14 and Sat Feb 28 worked
    清明节   Apr 4–6 off (Sat–Mon)
    劳动节   May 1–5 off (Fri–Tue); Sat May 9 worked
    端午节   Jun 19–21 off (Fri–Sun)
    中秋节   Sep 25–27 off (Fri–Sun)
    国庆节   Oct 1–7 off (Thu–Wed); Sun Sep 20 and Sat Oct 10 worked

The township works 08:30–12:00 and 14:00–17:30 (7 hours; ``1d`` = 7h).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.calendar import (
    CalendarError,
    CalendarInvalid,
    Deadline,
    Discrepancy,
    UnknownYear,
    WorkCalendar,
    check_calendars,
    load_calendars,
)
from engine.durations import Duration
from engine.errors import ConfigError, NaiveDatetime, SourceError
from tests.support import Expected

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "calendars"
SH = ZoneInfo("Asia/Shanghai")

CONFIG = load_calendars(ROOT / "config" / "calendars.yaml")
TOWNSHIP = CONFIG["township"]
ALWAYS = CONFIG["24x7"]
WITH_2027 = load_calendars(FIXTURES / "good_2027.yaml")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


def dur(text: str) -> Duration:
    return Duration(int(text[:-1]), text[-1])


# -- the configured calendars ----------------------------------------------------------


def test_config_holds_township_and_24x7():
    assert set(CONFIG) == {"township", "24x7"}
    assert TOWNSHIP.tz == SH and not TOWNSHIP.always_open
    assert TOWNSHIP.day_length == timedelta(hours=7)
    assert [str(p) for p in TOWNSHIP.week_hours[0]] == ["08:30-12:00", "14:00-17:30"]
    assert TOWNSHIP.week_hours[5] == TOWNSHIP.week_hours[6] == ()
    assert ALWAYS.always_open and ALWAYS.day_length == timedelta(hours=24)


# -- add: table written from the official 2026 schedule ------------------------------------

ADD_CASES = [
    # Fri 16:00–17:30 = 1.5h, Mon 08:30–11:00 = 2.5h
    ("friday afternoon + 4h", local(2026, 3, 6, 16, 0), "4h", local(2026, 3, 9, 11, 0)),
    ("same instant given in UTC", datetime(2026, 3, 6, 8, 0, tzinfo=UTC), "4h", local(2026, 3, 9, 11, 0)),
    ("30m inside the morning", local(2026, 3, 9, 9, 0), "30m", local(2026, 3, 9, 9, 30)),
    ("a day ending exactly at 17:30", local(2026, 3, 9, 8, 30), "1d", local(2026, 3, 9, 17, 30)),
    # Sat 14 Feb is worked: 10:00–12:00 + 14:00–17:30 = 5.5h; 15–23 Feb off; Tue 24 Feb 7h (12.5h);
    # Wed 25 Feb 08:30 + 1.5h
    ("make-up Saturday 14 Feb + 2d", local(2026, 2, 14, 10, 0), "2d", local(2026, 2, 25, 10, 0)),
    # the break has begun: counting starts Tue 24 Feb 08:30; 14h = all of 24 and 25 Feb
    ("Spring Festival Sunday 15 Feb + 2d", local(2026, 2, 15, 10, 0), "2d", local(2026, 2, 25, 17, 30)),
    ("Friday 13 Feb before the break + 1h", local(2026, 2, 13, 17, 0), "1h", local(2026, 2, 14, 9, 0)),
    ("last make-up Saturday 28 Feb", local(2026, 2, 27, 17, 0), "1h", local(2026, 2, 28, 9, 0)),
    # end of a working day
    ("17:29:59 + 1s ends the day", local(2026, 3, 5, 17, 29, 59), timedelta(seconds=1), local(2026, 3, 5, 17, 30)),
    ("17:29:59 + 2s spills over", local(2026, 3, 5, 17, 29, 59), timedelta(seconds=2), local(2026, 3, 6, 8, 30, 1)),
    ("17:30:00 counts from tomorrow", local(2026, 3, 5, 17, 30), timedelta(seconds=1), local(2026, 3, 6, 8, 30, 1)),
    ("17:30:00 + 1m", local(2026, 3, 5, 17, 30), "1m", local(2026, 3, 6, 8, 31)),
    # lunch
    ("11:59 + 1m ends the morning", local(2026, 3, 5, 11, 59), "1m", local(2026, 3, 5, 12, 0)),
    ("11:59 + 2m", local(2026, 3, 5, 11, 59), "2m", local(2026, 3, 5, 14, 1)),
    ("12:00 + 1m", local(2026, 3, 5, 12, 0), "1m", local(2026, 3, 5, 14, 1)),
    ("13:59 + 30m", local(2026, 3, 5, 13, 59), "30m", local(2026, 3, 5, 14, 30)),
    ("14:00 + 30m", local(2026, 3, 5, 14, 0), "30m", local(2026, 3, 5, 14, 30)),
    # turn of the year: Wed 31 Dec 1.5h; 1–3 Jan off; Sun 4 Jan worked
    ("31 Dec 2025 16:00 + 4h", local(2025, 12, 31, 16, 0), "4h", local(2026, 1, 4, 11, 0)),
    # 1.5h + Sun 4 Jan 7h = 8.5h; Mon 5 Jan 3.5h (12h) + 2h from 14:00
    ("31 Dec 2025 16:00 + 2d", local(2025, 12, 31, 16, 0), "2d", local(2026, 1, 5, 16, 0)),
    ("New Year's Day 2026 + 1h", local(2026, 1, 1, 9, 0), "1h", local(2026, 1, 4, 9, 30)),
    # National Day golden week: Wed 30 Sep 15:00–17:30 = 2.5h; 1–7 Oct off; Thu 8 Oct 3.5h + 1h
    ("30 Sep 15:00 + 1d", local(2026, 9, 30, 15, 0), "1d", local(2026, 10, 8, 15, 0)),
    # 30 Sep 6.5h, 8 Oct 7h, 9 Oct 7h (20.5h), Sat 10 Oct worked: 08:30 + 0.5h
    ("30 Sep 09:00 + 3d", local(2026, 9, 30, 9, 0), "3d", local(2026, 10, 10, 9, 0)),
    # Fri 18 Sep 0.5h, Sat 19 off, Sun 20 Sep worked: 08:30–12:00 + 14:00–17:00
    ("Friday before the make-up Sunday 20 Sep", local(2026, 9, 18, 17, 0), "1d", local(2026, 9, 20, 17, 0)),
    # Mid-Autumn Fri 25 – Sun 27 Sep off
    ("Thursday 24 Sep + 1d", local(2026, 9, 24, 17, 0), "1d", local(2026, 9, 28, 17, 0)),
    # Labour Day 1–5 May off; Sat 9 May worked
    ("30 Apr 17:00 + 4h", local(2026, 4, 30, 17, 0), "4h", local(2026, 5, 6, 12, 0)),
]


@pytest.mark.parametrize(("start", "duration", "expected"), [c[1:] for c in ADD_CASES], ids=[c[0] for c in ADD_CASES])
def test_add_on_the_2026_schedule(start, duration, expected):
    deadline = TOWNSHIP.add(start, dur(duration) if isinstance(duration, str) else duration)
    assert deadline == Deadline(expected, estimated=False)
    assert deadline.at.tzinfo is UTC


NEXT_CASES = [
    ("inside the morning", local(2026, 3, 5, 11, 59), local(2026, 3, 5, 11, 59)),
    ("noon", local(2026, 3, 5, 12, 0), local(2026, 3, 5, 14, 0)),
    ("13:59", local(2026, 3, 5, 13, 59), local(2026, 3, 5, 14, 0)),
    ("14:00", local(2026, 3, 5, 14, 0), local(2026, 3, 5, 14, 0)),
    ("17:29:59", local(2026, 3, 5, 17, 29, 59), local(2026, 3, 5, 17, 29, 59)),
    ("17:30:00", local(2026, 3, 5, 17, 30), local(2026, 3, 6, 8, 30)),
    ("early morning", local(2026, 3, 5, 6, 0), local(2026, 3, 5, 8, 30)),
    ("Spring Festival Sunday", local(2026, 2, 15, 9, 0), local(2026, 2, 24, 8, 30)),
    ("Saturday before make-up Sunday 4 Jan", local(2026, 1, 3, 10, 0), local(2026, 1, 4, 8, 30)),
    ("National Day", local(2026, 10, 1, 9, 0), local(2026, 10, 8, 8, 30)),
]


@pytest.mark.parametrize(("at", "expected"), [c[1:] for c in NEXT_CASES], ids=[c[0] for c in NEXT_CASES])
def test_next_working_instant(at, expected):
    result = TOWNSHIP.next_working_instant(at)
    assert result == expected and result.tzinfo is UTC


BETWEEN_CASES = [
    ("same morning", local(2026, 3, 5, 9, 0), local(2026, 3, 5, 10, 15), timedelta(minutes=75)),
    ("across lunch", local(2026, 3, 5, 11, 59), local(2026, 3, 5, 14, 1), timedelta(minutes=2)),
    ("whole working day", local(2026, 3, 5, 0, 0), local(2026, 3, 6, 0, 0), timedelta(hours=7)),
    ("end of day to next morning", local(2026, 3, 5, 17, 29, 59), local(2026, 3, 6, 8, 30), timedelta(seconds=1)),
    # Qingming 4–6 Apr off: Fri 3 Apr 09:00–17:30 = 6.5h, Tue 7 Apr 08:30–09:00 = 0.5h
    ("across Qingming", local(2026, 4, 3, 9, 0), local(2026, 4, 7, 9, 0), timedelta(hours=7)),
    # Fri 13 Feb 1.5h + make-up Sat 14 Feb 7h + Tue 24 Feb 0.5h
    ("across the Spring Festival", local(2026, 2, 13, 16, 0), local(2026, 2, 24, 9, 0), timedelta(hours=9)),
    # Wed 31 Dec 1.5h + Sun 4 Jan 7h + Mon 5 Jan 08:30–09:00
    ("across the turn of the year", local(2025, 12, 31, 16, 0), local(2026, 1, 5, 9, 0), timedelta(hours=9)),
    ("a whole break", local(2026, 10, 1, 0, 0), local(2026, 10, 8, 0, 0), timedelta(0)),
    ("end before start", local(2026, 3, 6, 9, 0), local(2026, 3, 5, 9, 0), timedelta(0)),
]


@pytest.mark.parametrize(
    ("start", "end", "expected"), [c[1:] for c in BETWEEN_CASES], ids=[c[0] for c in BETWEEN_CASES]
)
def test_between_on_the_2026_schedule(start, end, expected):
    assert TOWNSHIP.between(start, end) == expected


def test_february_2026_month_view():
    kinds = dict(TOWNSHIP.month(2026, 2))
    assert len(kinds) == 28
    expected = {day: "workday" for day in range(1, 29)}
    expected.update(dict.fromkeys([1, 7, 8], "weekend"))
    expected.update(dict.fromkeys(range(15, 24), "holiday"))
    expected.update({14: "makeup_workday", 28: "makeup_workday"})
    assert {d.day: kind for d, kind in kinds.items()} == expected


@pytest.mark.parametrize(
    ("day", "kind"),
    [
        (date(2025, 12, 31), "workday"),
        (date(2026, 1, 1), "holiday"),
        (date(2026, 1, 2), "holiday"),
        (date(2026, 1, 3), "holiday"),
        (date(2026, 1, 4), "makeup_workday"),
        (date(2026, 1, 10), "weekend"),
        (date(2026, 5, 9), "makeup_workday"),
        (date(2026, 6, 19), "holiday"),
        (date(2026, 9, 20), "makeup_workday"),
        (date(2026, 10, 7), "holiday"),
        (date(2026, 10, 10), "makeup_workday"),
    ],
)
def test_day_kinds(day, kind):
    assert TOWNSHIP.day_kind(day) == kind
    assert TOWNSHIP.is_working_day(day) == (kind in ("workday", "makeup_workday"))


def test_duration_units():
    start = local(2026, 3, 9, 8, 30)
    assert TOWNSHIP.business_time(dur("30m")) == timedelta(minutes=30)
    assert TOWNSHIP.business_time(dur("2d")) == timedelta(hours=14)
    assert TOWNSHIP.add(start, timedelta(hours=7)) == TOWNSHIP.add(start, dur("1d"))
    with pytest.raises(ValueError, match="negative"):
        TOWNSHIP.add(start, timedelta(seconds=-1))


def test_naive_datetimes_are_refused():
    with pytest.raises(NaiveDatetime):
        TOWNSHIP.add(datetime(2026, 3, 9, 9, 0), dur("1h"))
    with pytest.raises(NaiveDatetime):
        TOWNSHIP.between(local(2026, 3, 9, 9, 0), datetime(2026, 3, 9, 10, 0))
    with pytest.raises(NaiveDatetime):
        ALWAYS.next_working_instant(datetime(2026, 3, 9, 9, 0))


# -- 24x7 ----------------------------------------------------------------------------


def test_24x7_is_wall_time():
    saturday = local(2026, 2, 14, 10, 0)
    assert ALWAYS.add(saturday, dur("2d")) == Deadline(local(2026, 2, 16, 10, 0), False)
    assert ALWAYS.add(saturday, dur("4h")).at == local(2026, 2, 14, 14, 0)
    assert ALWAYS.add(saturday, dur("30m")).at.tzinfo is UTC
    assert ALWAYS.between(local(2026, 2, 15, 22, 0), local(2026, 2, 17, 1, 30)) == timedelta(hours=27, minutes=30)
    assert ALWAYS.next_working_instant(local(2026, 10, 1, 3, 0)) == local(2026, 10, 1, 3, 0)
    assert ALWAYS.day_kind(date(2026, 2, 17)) == "workday"
    assert ALWAYS.add(local(2200, 1, 1), dur("1d")) == Deadline(local(2200, 1, 2), False)


# -- official and estimated years -----------------------------------------------------------


def test_official_and_estimated_years():
    assert not TOWNSHIP.is_estimated(date(2026, 12, 31))
    assert not TOWNSHIP.is_estimated(date(2004, 1, 1))  # chinese_calendar's first year
    assert TOWNSHIP.is_estimated(date(2003, 6, 1))  # holidays only
    assert TOWNSHIP.is_estimated(date(2027, 1, 1))
    assert not ALWAYS.is_estimated(date(2030, 1, 1))


def test_a_deadline_that_reaches_an_estimated_year_is_flagged():
    # Thu 31 Dec 2026 1.5h; 2027 on the estimate: Fri 1 Jan off, weekend, Mon 4 Jan 08:30 + 5.5h
    deadline = TOWNSHIP.add(local(2026, 12, 31, 16, 0), dur("1d"))
    assert deadline == Deadline(local(2027, 1, 4, 16, 0), estimated=True)
    assert TOWNSHIP.add(local(2026, 12, 31, 16, 0), dur("1h")).estimated is False
    assert TOWNSHIP.add(local(2027, 3, 1, 9, 0), dur("1h")).estimated is True


@pytest.mark.parametrize("year", [1990, 2200])
def test_unknown_year_is_an_error_that_says_what_to_do(year):
    with pytest.raises(UnknownYear) as caught:
        TOWNSHIP.add(local(year, 6, 1, 9, 0), dur("1h"))
    message = str(caught.value)
    assert f"cannot answer for {year}" in message
    assert "2001–2100" in message and "2004–2026" in message
    assert f"official_schedules: {year}:" in message and "config/calendars.yaml" in message
    assert isinstance(caught.value, CalendarError) and isinstance(caught.value, ConfigError)
    with pytest.raises(UnknownYear):
        TOWNSHIP.day_kind(date(year, 1, 1))
    with pytest.raises(UnknownYear):
        TOWNSHIP.is_estimated(date(year, 1, 1))


def test_a_deadline_running_past_the_last_known_year_is_an_error():
    with pytest.raises(UnknownYear, match="2101"):
        TOWNSHIP.add(local(2100, 12, 31, 17, 0), dur("1d"))


def test_an_official_schedule_in_the_file_makes_2027_official():
    township = WITH_2027["township"]
    assert not township.is_estimated(date(2027, 2, 8))
    assert township.day_kind(date(2027, 2, 8)) == "holiday"
    assert township.day_kind(date(2027, 2, 20)) == "makeup_workday"
    assert township.day_kind(date(2027, 2, 14)) == "weekend"  # the Sunday after the break
    assert township.day_kind(date(2027, 2, 15)) == "workday"
    # Thu 4 Feb 16:00–17:30 = 1.5h; 5–13 Feb off; Sun 14 Feb rest; Mon 15 Feb 3.5h + 2h
    assert township.add(local(2027, 2, 4, 16, 0), dur("1d")) == Deadline(local(2027, 2, 15, 16, 0), False)
    assert check_calendars(WITH_2027, date(2026, 11, 2)) == []


def test_local_days_off_and_working_days():
    township = WITH_2027["township"]
    assert township.day_kind(date(2026, 7, 15)) == "holiday"  # a Wednesday given off
    assert township.day_kind(date(2026, 8, 8)) == "makeup_workday"  # a Saturday worked
    assert township.add(local(2026, 7, 14, 17, 0), dur("1h")).at == local(2026, 7, 16, 9, 0)
    assert township.add(local(2026, 8, 7, 17, 0), dur("1h")).at == local(2026, 8, 8, 9, 0)


def test_a_calendar_without_the_china_schedule():
    plain = WITH_2027["plain"]
    assert plain.day_length == timedelta(hours=3)
    assert plain.day_kind(date(2026, 2, 17)) == "workday"  # Spring Festival is not on this calendar
    assert plain.day_kind(date(2026, 2, 20)) == "weekend"  # closed on Fridays
    assert not plain.is_estimated(date(1990, 1, 1))
    # Mon 9 Mar 11:00–12:00, Tue 09:00–17:00 (8h) → 3h = Tue 11:00
    assert plain.add(local(2026, 3, 9, 11, 0), dur("1d")) == Deadline(local(2026, 3, 10, 11, 0), False)
    assert plain.discrepancies == ()


# -- holidays vs chinese_calendar --------------------------------------------------------------


def test_disagreements_between_the_libraries_follow_chinese_calendar():
    found = TOWNSHIP.discrepancies
    # holidays: Sat 31 Dec 2005 worked for the 2006 New Year break; chinese_calendar: a rest day
    assert Discrepancy(date(2005, 12, 31), holidays_working=True, chinese_calendar_working=False) in found
    for item in found:
        assert TOWNSHIP.is_working_day(item.day) == item.chinese_calendar_working
    assert "using chinese_calendar" in str(found[0])


# -- check ---------------------------------------------------------------------------


def test_check_warns_from_november_when_next_year_is_missing():
    assert check_calendars(CONFIG, date(2026, 10, 31)) == []
    warnings = check_calendars(CONFIG, date(2026, 11, 1))
    assert len(warnings) == 1
    assert "'township'" in warnings[0] and "2027" in warnings[0] and "official_schedules: 2027:" in warnings[0]
    assert any("2027" in w for w in check_calendars(CONFIG, date(2027, 3, 1)))  # this year on the estimate


# -- bad files -------------------------------------------------------------------------

BAD_FILES = {
    "bad_both.yaml": [
        Expected(10, 9, "calendars.township.extra_working_days[1]", "2026-07-15 is both a day off"),
        Expected(16, 9, "official_schedules.2027.makeup_workdays[0]", "2027-02-13 is both a day off"),
    ],
    "bad_times.yaml": [
        Expected(5, 30, "calendars.township.hours.mon-fri[1]", "bad time 25:00"),
        Expected(6, 13, "calendars.township.hours.sat[0]", "ends before it starts"),
        Expected(7, 26, "calendars.township.hours.sun[1]", "11:00-13:00 overlaps 09:00-12:00"),
        Expected(8, 7, "calendars.township.hours.fri", "Friday is already given by 'mon-fri' at line 5"),
        Expected(9, 7, "calendars.township.hours.funday", "unknown weekday 'funday'"),
        Expected(10, 27, "calendars.township.makeup_workday_hours", "write a period as HH:MM-HH:MM"),
    ],
    "bad_keys.yaml": [
        Expected(3, 15, "calendars.township.timezone", "unknown time zone 'Asia/Shangai'"),
        Expected(7, 5, "calendars.township.lunch_break", "unknown key 'lunch_break'"),
        Expected(9, 15, "calendars.village.holidays", "unknown holidays 'hongkong'"),
        Expected(12, 3, "calendars.office", "missing key 'holidays'"),
        Expected(17, 5, "calendars.24x7.hours", "unknown key 'hours'; an always-open calendar"),
        Expected(19, 1, "colour", "unknown key 'colour'"),
    ],
    "bad_dates.yaml": [
        Expected(7, 9, "calendars.township.extra_days_off[0]", "'2026-02-30' is not a real date"),
        Expected(8, 9, "calendars.township.extra_days_off[1]", "bad date '2026/07/15'"),
        Expected(9, 9, "calendars.township.extra_days_off[2]", "the last day must follow the first"),
        Expected(11, 9, "calendars.township.extra_days_off[4]", "2026-07-01 is already listed at line 10"),
        Expected(15, 9, "official_schedules.2027.days_off[0]", "2026-11-30 is not in 2027"),
        Expected(18, 9, "official_schedules.2027.makeup_workdays[0]", "2027-02-10 is a Wednesday"),
        Expected(19, 3, "official_schedules.27", "bad year '27'"),
    ],
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_report_every_problem_with_its_place(name):
    path = FIXTURES / name
    with pytest.raises(CalendarInvalid) as caught:
        load_calendars(path)
    problems = caught.value.problems
    assert isinstance(caught.value, SourceError)
    assert all(p.file == str(path) for p in problems)
    expected = BAD_FILES[name]
    assert len(problems) == len(expected), "\n".join(map(str, problems))
    for want, got in zip(expected, problems, strict=True):
        assert want.matches(got), f"wanted {want}, got {got}"
    assert f"{path}:{expected[0].line}:{expected[0].column}:" in str(caught.value)


def test_a_missing_file_is_a_located_error(tmp_path):
    with pytest.raises(CalendarInvalid, match="file not found"):
        load_calendars(tmp_path / "calendars.yaml")


def test_a_calendar_cannot_be_built_without_hours():
    with pytest.raises(CalendarError):
        WorkCalendar("empty")


# -- properties ------------------------------------------------------------------------

CALENDARS = [TOWNSHIP, WITH_2027["plain"], ALWAYS]
EDGES = [(0, 0, 0), (8, 30, 0), (11, 59, 59), (12, 0, 0), (14, 0, 0), (17, 29, 59), (17, 30, 0), (23, 59, 59)]

any_instant = st.datetimes(
    min_value=datetime(2025, 6, 1), max_value=datetime(2027, 6, 30), timezones=st.sampled_from([UTC, SH])
)
edge_instant = st.builds(
    lambda day, hms: datetime.combine(day, time(*hms), SH),
    st.dates(min_value=date(2025, 12, 20), max_value=date(2027, 1, 10)),
    st.sampled_from(EDGES),
)
instants = st.one_of(any_instant, edge_instant)
business = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=20))
durations = st.one_of(business, st.builds(Duration, st.integers(1, 120), st.sampled_from("mhd")))
quick = settings(max_examples=60, deadline=None)


@pytest.mark.parametrize("cal", CALENDARS, ids=lambda c: c.name)
@quick
@given(t=instants, d=durations)
def test_between_measures_what_add_added(cal, t, d):
    deadline = cal.add(t, d)
    assert cal.between(t, deadline.at) == cal.business_time(d)
    if cal.business_time(d):  # and the deadline is the earliest such instant
        assert cal.between(t, deadline.at - timedelta(microseconds=1)) < cal.business_time(d)


@pytest.mark.parametrize("cal", CALENDARS, ids=lambda c: c.name)
@quick
@given(t=instants, d1=business, d2=business)
def test_add_is_monotonic(cal, t, d1, d2):
    short, long = sorted([d1, d2])
    assert cal.add(t, short).at <= cal.add(t, long).at


@pytest.mark.parametrize("cal", CALENDARS, ids=lambda c: c.name)
@quick
@given(points=st.lists(instants, min_size=3, max_size=3))
def test_between_is_additive(cal, points):
    a, b, c = sorted(points)
    assert cal.between(a, b) + cal.between(b, c) == cal.between(a, c)


@pytest.mark.parametrize("cal", CALENDARS, ids=lambda c: c.name)
@quick
@given(t=instants)
def test_next_working_instant_is_idempotent_and_never_earlier(cal, t):
    n = cal.next_working_instant(t)
    assert n >= t and n.tzinfo is UTC
    assert cal.next_working_instant(n) == n
    assert cal.between(t, n) == timedelta(0)
    assert cal.add(t, timedelta(0)).at == n
    assert cal.is_working_day(n.astimezone(cal.tz).date())
