"""What the `sla` and `calendar` commands read and show: due clocks, a case's timeline, a month."""

from __future__ import annotations

import calendar as monthcal
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from rich.table import Table
from rich.text import Text
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.durations import Duration
from engine.errors import NotFound
from engine.sla import business
from engine.store.models import Case, SlaClock
from gridflow.app.cases import timeline  # noqa: F401 - the CLI reads it here
from gridflow.cli.views import row
from gridflow.present import iso, local_text

if TYPE_CHECKING:  # the calendars load only for the commands that reckon with them
    from engine.calendar import DueBreakdown, WorkCalendar

KIND_LABELS = {"reminder": "提醒 reminder", "breach": "超时 breach", "escalation": "升级 escalation"}
MARK_LABELS = {"yellow_card": "黄牌", "red_card": "红牌", "supervision_order": "督办"}
DAY_MARKS = {"holiday": ("休", "bold red"), "makeup_workday": ("班", "bold blue"), "weekend": ("", "dim")}


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f}h"


# -- sla due ---------------------------------------------------------------------------


def due_clocks(session: Session, at: datetime, within: timedelta) -> list[dict[str, Any]]:
    """Running clocks whose deadline is before ``at + within``, by grid and deadline."""
    rows = session.execute(
        select(SlaClock, Case.code, Case.grid_id, Case.title, Case.status, Case.mark)
        .join(Case, Case.id == SlaClock.case_id)
        .where(SlaClock.status == "running", SlaClock.due_at <= at + within)
        .order_by(Case.grid_id, SlaClock.due_at)
    ).all()
    return [
        {
            "grid": grid,
            "case": code,
            "title": title,
            "status": status,
            "mark": mark,
            "clock": clock.scope if clock.scope == "case" else clock.state,
            "calendar": clock.calendar,
            "due_at": iso(clock.due_at),
            "overdue": clock.due_at <= at,
            "estimated": clock.estimated,
        }
        for clock, code, grid, title, status, mark in rows
    ]


def plan_table(items: list[dict[str, Any]], tz: ZoneInfo) -> Table:
    """``sla sweep --dry-run``: the timers a sweep would fire, in deadline order."""
    table = Table(title=f"将触发 would fire ({len(items)})", title_justify="left")
    for column in ("时间 fire at", "编号 case", "类型 kind", "时限 clock", "备注 note"):
        table.add_column(column, no_wrap=column in ("时间 fire at", "编号 case"))
    for item in items:
        level = f" {item['level']}" if item["kind"] != "breach" else ""
        note = "stale: its clock moved on, skipped" if item["stale"] else ""
        row(
            table,
            local_text(item["fire_at"], tz),
            item["case_code"],
            KIND_LABELS[item["kind"]] + level,
            item["clock"],
            note,
        )
    return table


def due_table(items: list[dict[str, Any]], tz: ZoneInfo) -> Table:
    table = Table(title=f"到期 due or overdue ({len(items)})", title_justify="left")
    for column in ("网格 grid", "编号 case", "时限 clock", "截止 due", "", "标记 mark", "标题 title"):
        table.add_column(column, no_wrap=column in ("网格 grid", "编号 case"))
    for item in items:
        due = local_text(datetime.fromisoformat(item["due_at"]), tz) + (" (估)" if item["estimated"] else "")
        flag = Text("超时 overdue", style="bold red") if item["overdue"] else Text("将到期 due soon", style="yellow")
        row(
            table,
            item["grid"],
            item["case"],
            item["clock"],
            due,
            flag,
            MARK_LABELS.get(item["mark"], ""),
            item["title"],
        )
    return table


# -- sla explain -----------------------------------------------------------------------------


def timeline_tables(code: str, clocks: list[dict[str, Any]], tz: ZoneInfo) -> list[Table]:
    tables = []
    for c in clocks:
        name = "整案 whole case" if c["scope"] == "case" else f"状态 {c['state']}"
        due = local_text(datetime.fromisoformat(c["due_at"]), tz) if c["due_at"] else "—"
        title = (
            f"{code} · {name} · {c['limit']} on {c['calendar']} · {c['status']}"
            f"{' · ' + c['outcome'] if c['outcome'] else ''} · used {hours(c['consumed_s'])} of "
            f"{hours(c['limit_s'])} · due {due}{' (estimated)' if c['estimated'] else ''}"
        )
        table = Table(title=title, title_justify="left")
        for column in ("时间 at", "事项 what", "说明 why"):
            table.add_column(column, overflow="fold")
        for entry in c["history"]:
            row(table, local_text(datetime.fromisoformat(entry["at"]), tz), entry["what"], entry["why"])
        for t in c["timers"]:
            when = local_text(datetime.fromisoformat(t["fired_at"] or t["fire_at"]), tz)
            what = f"{KIND_LABELS[t['kind']]}{' ' + str(t['level']) if t['kind'] != 'breach' else ''}"
            row(
                table,
                when,
                what,
                f"{t['status']}{': ' + t['note'] if t['note'] else ''}",
                style=None if t["status"] == "fired" else "dim",
            )
        tables.append(table)
    return tables


# -- calendar show -----------------------------------------------------------------------------


def month_table(cal: WorkCalendar, year: int, month: int) -> Table:
    kinds = dict(cal.month(year, month))
    table = Table(title=f"{cal.name} {year}-{month:02d} ({cal.tz.key})", title_justify="left")
    for day in ("一 Mon", "二 Tue", "三 Wed", "四 Thu", "五 Fri", "六 Sat", "日 Sun"):
        table.add_column(day, justify="right")
    for week in monthcal.Calendar().monthdatescalendar(year, month):
        cells = []
        for d in week:
            if d.month != month:
                cells.append(Text(""))
                continue
            mark, style = DAY_MARKS.get(kinds[d], ("", ""))
            estimated = "?" if cal.is_estimated(d) and kinds[d] in ("holiday", "makeup_workday") else ""
            cells.append(Text(f"{d.day}{mark}{estimated}", style=style))
        table.add_row(*cells)
    return table


def month_days(cal: WorkCalendar, year: int, month: int) -> list[dict[str, Any]]:
    return [
        {"date": d.isoformat(), "kind": kind, "working": cal.is_working_day(d), "estimated": cal.is_estimated(d)}
        for d, kind in cal.month(year, month)
    ]


def parse_month(text: str) -> tuple[int, int]:
    try:
        value = date.fromisoformat(f"{text}-01")
    except ValueError as exc:
        raise ValueError(f"bad month {text!r}: write it like 2026-02") from exc
    return value.year, value.month


# -- calendar due --------------------------------------------------------------------------------


class CalendarNotFound(NotFound):
    pass


WEEKDAYS = ("周一 Mon", "周二 Tue", "周三 Wed", "周四 Thu", "周五 Fri", "周六 Sat", "周日 Sun")
DAY_MARK_LEGEND = (
    "休 day off (statutory holiday)   班 make-up working day (调休上班)   ? estimated "
    "(the year's official notice is not loaded)"
)


def calendar_named(calendars: dict[str, WorkCalendar], name: str) -> WorkCalendar:
    cal = calendars.get(name)
    if cal is None:
        known = ", ".join(sorted(calendars)) or "none"
        raise CalendarNotFound(f"no calendar {name!r}; calendars: {known} (config/calendars.yaml)")
    return cal


def due_reckoning(cal: WorkCalendar, start: datetime, limit: Duration) -> DueBreakdown:
    """The deadline a clock started at ``start`` with ``limit`` gets: the SLA clocks' own conversion
    (:func:`engine.sla.business`) and arithmetic (:func:`engine.calendar.due_breakdown`)."""
    from engine.calendar import due_breakdown

    return due_breakdown(cal, start, timedelta(seconds=business(limit, cal)))


def _minutes(amount: timedelta) -> int | float:
    minutes = amount.total_seconds() / 60
    return int(minutes) if minutes.is_integer() else round(minutes, 2)


def _span(amount: timedelta) -> str:
    """``14h``, ``1h30m``, ``45m`` (seconds, if any, are left out)."""
    whole = int(amount.total_seconds() // 60)
    h, m = divmod(whole, 60)
    return f"{h}h{m}m" if h and m else f"{h}h" if h else f"{m}m"


def _mark(cal: WorkCalendar, day: date, kind: str) -> str:
    mark = DAY_MARKS.get(kind, ("", ""))[0]
    return mark + ("?" if mark and cal.is_estimated(day) else "")


def _estimated_years(b: DueBreakdown) -> list[int]:
    return sorted({d.day.year for d in b.days if d.estimated})


def due_dict(b: DueBreakdown, cal: WorkCalendar, limit: Duration, tz: ZoneInfo) -> dict[str, Any]:
    """``calendar due --json``: times in ISO 8601 with the local offset, amounts in minutes."""
    return {
        "calendar": cal.name,
        "calendar_label": cal.label,
        "always_open": cal.always_open,
        "start": b.start.astimezone(tz).isoformat(),
        "counting_from": b.begin.astimezone(tz).isoformat(),
        "duration": str(limit),
        "limit_minutes": _minutes(b.limit),
        "due_at": b.deadline.at.astimezone(tz).isoformat(),
        "estimated": b.deadline.estimated,
        "estimated_years": _estimated_years(b),
        "days": [
            {
                "date": d.day.isoformat(),
                "weekday": WEEKDAYS[d.day.weekday()].split()[0],  # 周三
                "kind": d.kind,
                "mark": _mark(cal, d.day, d.kind),
                "counted_minutes": _minutes(d.counted),
                "total_minutes": _minutes(d.total),
                "estimated": d.estimated,
            }
            for d in b.days
        ],
    }


def due_summary(b: DueBreakdown, cal: WorkCalendar, limit: Duration, tz: ZoneInfo) -> list[tuple[str, str]]:
    """The rows above the table: start, when counting starts, the limit, the due time, estimated or not."""
    label = f" {cal.label}" if cal.label else ""
    amount = str(limit) if _span(b.limit) == str(limit) else f"{limit} = {_span(b.limit)}"
    if cal.always_open:
        meaning = f"{amount} 全天计时 wall time on {cal.name}{label}"
    else:
        meaning = f"{amount} 工作时间 working time on {cal.name}{label} (1d = {_span(cal.day_length)})"
    due = b.deadline.at.astimezone(tz)
    rows = [("开始 start", local_text(b.start, tz)), ("时限 limit", meaning)]
    if b.begin != b.start:
        rows.insert(
            1, ("起算 counting from", f"{local_text(b.begin, tz)} (outside working time: the next working period)")
        )
    rows.append(("截止 due", f"{local_text(b.deadline.at, tz)} {WEEKDAYS[due.weekday()]}"))
    rows.append(("估算 estimated", _estimated_text(b, cal)))
    return rows


def _estimated_text(b: DueBreakdown, cal: WorkCalendar) -> str:
    if not b.deadline.estimated:
        return "否 no" + ("" if cal.china is None else ": the official holiday schedules of these days are loaded")
    years = ", ".join(str(y) for y in _estimated_years(b))
    return (
        f"是 yes: the official {years} holiday schedule is not loaded, so holidays are estimated and there are "
        f"no make-up working days; copy the State Council's notice under official_schedules in config/calendars.yaml"
    )


def due_days_table(b: DueBreakdown, cal: WorkCalendar) -> Table:
    table = Table(title=f"逐日计时 working time per day ({cal.name}, {cal.tz.key})", title_justify="left")
    table.add_column("日期 date", no_wrap=True)
    table.add_column("星期 weekday", no_wrap=True)
    table.add_column("标记 mark", no_wrap=True)
    table.add_column("计入 counted (min)", justify="right", no_wrap=True)
    table.add_column("累计 total (min)", justify="right", no_wrap=True)
    for d in b.days:
        style = None if d.counted else "dim"
        mark = _mark(cal, d.day, d.kind)
        row(
            table,
            d.day.isoformat(),
            WEEKDAYS[d.day.weekday()],
            mark,
            _minutes(d.counted),
            _minutes(d.total),
            style=style,
        )
    return table


# -- calendar check ---------------------------------------------------------------------------


def estimated_deadlines(session: Session) -> list[str]:
    count = session.scalar(
        select(func.count()).select_from(SlaClock).where(SlaClock.status == "running", SlaClock.estimated)
    )
    if not count:
        return []
    return [
        f"{count} running clock(s) have a deadline in a year whose official holiday notice is not loaded "
        "(marked 'estimated'); add it under official_schedules in config/calendars.yaml"
    ]


def unanswerable_deadlines(session: Session, calendars: dict[str, WorkCalendar]) -> list[str]:
    out = []
    for name, due in session.execute(
        select(SlaClock.calendar, SlaClock.due_at).where(SlaClock.status == "running", SlaClock.due_at.is_not(None))
    ):
        cal = calendars.get(name)
        if cal is None:
            out.append(f"a running clock uses calendar {name!r}, which config/calendars.yaml no longer defines")
        elif not cal.knows_year(due.astimezone(cal.tz).year):
            out.append(f"a running clock on {name} is due in {due.year}, a year the calendar cannot answer")
    return sorted(set(out))
