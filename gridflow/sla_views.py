"""What the `sla` and `calendar` commands read and show: due clocks, a case's timeline, a month."""

from __future__ import annotations

import calendar as monthcal
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rich.table import Table
from rich.text import Text
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.calendar import WorkCalendar
from engine.store.models import Case, SlaClock, SlaTimer
from gridflow.views import iso, local_text, row

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


def timeline(session: Session, case_id: int) -> list[dict[str, Any]]:
    clocks = session.scalars(select(SlaClock).where(SlaClock.case_id == case_id).order_by(SlaClock.id)).all()
    timers = session.scalars(select(SlaTimer).where(SlaTimer.case_id == case_id).order_by(SlaTimer.id)).all()
    out = []
    for clock in clocks:
        out.append(
            {
                "clock": clock.id,
                "scope": clock.scope,
                "state": clock.state,
                "calendar": clock.calendar,
                "limit": clock.policy.get("limit_text"),
                "limit_s": clock.limit_s,
                "consumed_s": clock.consumed_s,
                "status": clock.status,
                "due_at": iso(clock.due_at),
                "estimated": clock.estimated,
                "breached_at": iso(clock.breached_at),
                "outcome": clock.outcome,
                "history": clock.history,
                "timers": [
                    {
                        "kind": t.kind,
                        "level": t.level,
                        "generation": t.generation,
                        "fire_at": iso(t.fire_at),
                        "status": t.status,
                        "fired_at": iso(t.fired_at),
                        "note": t.note,
                    }
                    for t in timers
                    if t.clock_id == clock.id
                ],
            }
        )
    return out


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
