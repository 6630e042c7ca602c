"""What the `sla` and `calendar` commands show: due clocks, what a sweep would fire, a case's timeline, a
month, a deadline day by day — tables drawn from the plain values of :mod:`gridflow.app.sla`."""

from __future__ import annotations

import calendar as monthcal
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from rich.table import Table
from rich.text import Text

from gridflow.cli.views import row
from gridflow.present import local_text

if TYPE_CHECKING:
    from gridflow.app.sla import CalendarDue, CalendarMonth

KIND_LABELS = {"reminder": "提醒 reminder", "breach": "超时 breach", "escalation": "升级 escalation"}
MARK_LABELS = {"yellow_card": "黄牌", "red_card": "红牌", "supervision_order": "督办"}
DAY_MARKS = {"holiday": ("休", "bold red"), "makeup_workday": ("班", "bold blue"), "weekend": ("", "dim")}
WEEKDAYS = ("周一 Mon", "周二 Tue", "周三 Wed", "周四 Thu", "周五 Fri", "周六 Sat", "周日 Sun")
DAY_MARK_LEGEND = (
    "休 day off (statutory holiday)   班 make-up working day (调休上班)   ? estimated "
    "(the year's official notice is not loaded)"
)


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f}h"


# -- sla due, sla sweep --dry-run --------------------------------------------------------------


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
            local_text(datetime.fromisoformat(item["fire_at"]), tz),
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


# -- sla explain ---------------------------------------------------------------------------


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
                f"{t['status']}{': ' + t['note'] if t['note'] else ''}{_told(t)}",
                style=None if t["status"] == "fired" else "dim",
            )
        tables.append(table)
    return tables


def _told(timer: dict[str, Any]) -> str:
    """`` → 张三, 李四`` and, when the centre stands in for a role nobody holds, which role."""
    if "to" not in timer:
        return ""
    names = ", ".join(p["name"] for p in timer["to"]) or "无人 no one"
    instead = (
        f" (中心代 centre told instead of {', '.join(timer['instead_of'])}: nobody holds it for this grid)"
        if timer.get("instead_of")
        else ""
    )
    return f" → {names}{instead}"


# -- calendar show -----------------------------------------------------------------------------


def month_table(month: CalendarMonth) -> Table:
    """``calendar show``: the weeks of :meth:`Gridflow.calendar_month`, its days marked."""
    year, number = parse_month(month.month)
    days = {date.fromisoformat(d["date"]): d for d in month.days}
    table = Table(title=f"{month.calendar} {year}-{number:02d} ({month.timezone})", title_justify="left")
    for day in ("一 Mon", "二 Tue", "三 Wed", "四 Thu", "五 Fri", "六 Sat", "日 Sun"):
        table.add_column(day, justify="right")
    for week in monthcal.Calendar().monthdatescalendar(year, number):
        cells = []
        for d in week:
            if d.month != number:
                cells.append(Text(""))
                continue
            kind = days[d]["kind"]
            mark, style = DAY_MARKS.get(kind, ("", ""))
            estimated = "?" if days[d]["estimated"] and kind in ("holiday", "makeup_workday") else ""
            cells.append(Text(f"{d.day}{mark}{estimated}", style=style))
        table.add_row(*cells)
    return table


def parse_month(text: str) -> tuple[int, int]:
    try:
        value = date.fromisoformat(f"{text}-01")
    except ValueError as exc:
        raise ValueError(f"bad month {text!r}: write it like 2026-02") from exc
    return value.year, value.month


# -- calendar due --------------------------------------------------------------------------------


def _span(amount: timedelta) -> str:
    """``14h``, ``1h30m``, ``45m`` (seconds, if any, are left out)."""
    whole = int(amount.total_seconds() // 60)
    h, m = divmod(whole, 60)
    return f"{h}h{m}m" if h and m else f"{h}h" if h else f"{m}m"


def due_summary(reckoning: CalendarDue, tz: ZoneInfo) -> list[tuple[str, str]]:
    """The rows above the table: start, when counting starts, the limit, the due time, estimated or not."""
    due = reckoning.due
    label = f" {due['calendar_label']}" if due["calendar_label"] else ""
    limit, span = due["duration"], _span(timedelta(seconds=reckoning.limit_s))
    amount = limit if span == limit else f"{limit} = {span}"
    if due["always_open"]:
        meaning = f"{amount} 全天计时 wall time on {due['calendar']}{label}"
    else:
        day = _span(timedelta(seconds=reckoning.day_length_s))
        meaning = f"{amount} 工作时间 working time on {due['calendar']}{label} (1d = {day})"
    start, deadline = datetime.fromisoformat(due["start"]), datetime.fromisoformat(due["due_at"])
    rows = [("开始 start", local_text(start, tz)), ("时限 limit", meaning)]
    if due["counting_from"] != due["start"]:
        begin = local_text(datetime.fromisoformat(due["counting_from"]), tz)
        rows.insert(1, ("起算 counting from", f"{begin} (outside working time: the next working period)"))
    rows.append(("截止 due", f"{local_text(deadline, tz)} {WEEKDAYS[deadline.astimezone(tz).weekday()]}"))
    rows.append(("估算 estimated", _estimated_text(reckoning)))
    return rows


def _estimated_text(reckoning: CalendarDue) -> str:
    if not reckoning.due["estimated"]:
        return "否 no" + (": the official holiday schedules of these days are loaded" if reckoning.official else "")
    years = ", ".join(str(y) for y in reckoning.due["estimated_years"])
    return (
        f"是 yes: the official {years} holiday schedule is not loaded, so holidays are estimated and there are "
        f"no make-up working days; copy the State Council's notice under official_schedules in config/calendars.yaml"
    )


def due_days_table(reckoning: CalendarDue) -> Table:
    """The working time each day counts, from the start's day to the deadline's."""
    name = reckoning.due["calendar"]
    table = Table(title=f"逐日计时 working time per day ({name}, {reckoning.timezone})", title_justify="left")
    table.add_column("日期 date", no_wrap=True)
    table.add_column("星期 weekday", no_wrap=True)
    table.add_column("标记 mark", no_wrap=True)
    table.add_column("计入 counted (min)", justify="right", no_wrap=True)
    table.add_column("累计 total (min)", justify="right", no_wrap=True)
    for d in reckoning.due["days"]:
        row(
            table,
            d["date"],
            WEEKDAYS[date.fromisoformat(d["date"]).weekday()],
            d["mark"],
            d["counted_minutes"],
            d["total_minutes"],
            style=None if d["counted_minutes"] else "dim",
        )
    return table
