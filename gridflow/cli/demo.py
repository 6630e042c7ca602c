"""CLI command of the demo township (演示数据): ``gridflow demo [--status | --clear]``. Registered by
:mod:`gridflow.cli`; the work is done by :mod:`gridflow.demo`."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine.errors import InputError
from engine.jobs import parse_period
from gridflow import present
from gridflow.app import Gridflow, parse_at
from gridflow.cli import views
from gridflow.cli.common import emit_json, handled, open_gridflow, out
from gridflow.demo_plan import DEFAULT_SIZE
from gridflow.lazy import lazy_module

app = typer.Typer()  # this module's commands; gridflow.cli.build merges them into the root

demo = lazy_module("gridflow.demo")  # its LABEL and SETTING, read when a demo command prints them

FIGURES = (  # each month's township figures printed after loading
    ("reported", "上报数 reported"),
    ("closed", "结案数 closed"),
    ("close_rate", "结案率 close"),
    ("on_time_close_rate", "按期结案率 on time"),
    ("on_time_handling_rate", "按期处置率 handled"),
    ("satisfaction_rate", "满意率 satisfied"),
    ("overdue_open", "超期未结 overdue"),
)
FIRED = (("sla.reminder", "reminders 提醒"), ("sla.breach", "breaches 超时"), ("sla.escalated", "escalations 升级"))


@app.command("demo")
def demo_command(
    show_status: Annotated[
        bool, typer.Option("--status", help="Say what demo data is loaded; change nothing.")
    ] = False,
    clear: Annotated[
        bool, typer.Option("--clear", help="Remove every demo row and posting file, and nothing else.")
    ] = False,
    if_empty: Annotated[
        bool,
        typer.Option("--if-empty", help="Only into a database without any case, and quietly skip where demo is off."),
    ] = False,
    quarter: Annotated[
        str | None, typer.Option("--quarter", "-q", help="A past quarter, e.g. 2026Q3; default the last full one.")
    ] = None,
    at: Annotated[str | None, typer.Option("--at", help="As if it were this time (local ISO); default now.")] = None,
    cases: Annotated[int, typer.Option("--cases", min=20, max=5000, help="How many demo cases.")] = DEFAULT_SIZE,
    as_json: Annotated[bool, typer.Option("--json", help="With --status: print JSON.")] = False,
) -> None:
    """演示数据: load the sample township's last full quarter — cases driven through the engine at their
    past times, SLA timers swept, each month scored, the quarter published — marked as demo data
    everywhere, its notices never sent. Safe to repeat; refuses a quarter with real cases."""
    with handled():
        if show_status and clear:
            raise InputError("--status or --clear, not both")
        if as_json and not show_status:
            raise InputError("--json goes with --status")
        gf = open_gridflow()
        if show_status:
            _print_status(gf, gf.demo_status(), as_json)
        elif clear:
            _clear(gf.clear_demo())
        else:
            _load(gf, quarter, at, cases, if_empty)


def _load(gf: Gridflow, quarter: str | None, at: str | None, size: int, if_empty: bool) -> None:
    when = parse_at(at, gf.tz, gf.clock()) if at else None
    progress, tasks = _progress(), []

    def tick(done: int, total: int) -> None:  # the bar shows once loading begins (after the checks)
        if not tasks:
            progress.start()
            tasks.append(progress.add_task("演示数据 loading", total=None))
        progress.update(tasks[0], completed=done, total=total or None)

    try:
        result = gf.load_demo(quarter=quarter, at=when, size=size, if_empty=if_empty, progress=tick)
    finally:
        progress.stop()
    if result["outcome"] == "off":
        out.print(f"demo data is off here (setting {demo.SETTING} is false); no demo loaded", markup=False)
    elif result["outcome"] == "not_empty":
        held = result["cases_here"]
        out.print(f"the database holds {held} case(s); no demo loaded (`gridflow demo` says why)", markup=False)
    elif result["outcome"] == "already":
        _already(result["status"])
    else:
        _print_loaded(gf, result)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps"),
        TimeElapsedColumn(),
        console=out,
        transient=True,
        disable=not out.is_terminal,
    )


def _period_text(key: str) -> str:
    period = parse_period("quarter", key)
    last = period.end.toordinal() - 1
    return f"{period.key} ({period.start:%Y-%m-%d} – {date.fromordinal(last):%Y-%m-%d})"


def _already(found: dict[str, Any]) -> None:
    state = "loaded" if found["complete"] else "loaded only in part (stopped before the posting)"
    out.print(
        f"{demo.LABEL} demo: {_period_text(found['quarter'])} is {state} already, {found['cases']} cases; "
        "nothing changed. `gridflow demo --status` shows it, `gridflow demo --clear` removes it",
        markup=False,
        soft_wrap=True,
    )


def _print_loaded(gf: Gridflow, result: dict[str, Any]) -> None:
    labels = gf.demo_labels()
    fired = ", ".join(f"{result['fired'].get(k, 0)} {label}" for k, label in FIRED)
    out.print(
        f"{demo.LABEL} demo: {_period_text(result['quarter'])} loaded in {result['seconds']:.1f} s — "
        f"{result['cases']} cases (seed {result['seed']}), {result['steps']} steps through the engine at their "
        f"past times; SLA timers fired: {fired}",
        markup=False,
        soft_wrap=True,
    )
    months = result["months"]
    out.print(_months_table(months))
    _print_holdings(result["status"], labels["states"], labels["categories"], brief=True)
    if result["posting"]:
        period, version = result["posting"]["period"], result["posting"]["version"]
        out.print(f"公示 posting   quarterly {period} v{version} (演示数据 watermark)", markup=False, soft_wrap=True)
    for path in result["files"]:
        out.print(f"  written: {path}", markup=False, soft_wrap=True)
    last = result["quarter"]
    month = months[-1]["period"] if months else last
    out.print(
        f"look: gridflow case list · gridflow sla due · gridflow score show --period {month} · "
        f"gridflow publish show --quarter {last} · gridflow notices list · gridflow jobs list",
        markup=False,
        soft_wrap=True,
    )


def _months_table(months: list[dict[str, Any]]) -> Table:
    table = Table(title="全乡关键指标 township (演示数据)", title_justify="left")
    table.add_column("指标 indicator")
    for month in months:
        table.add_column(month["period"], justify="right")
    for name, label in FIGURES:
        views.row(table, label, *(_figure(month["summary"].get(name) or {}, name) for month in months))
    return table


def _figure(item: dict[str, Any], name: str) -> str:
    if not name.endswith("_rate"):
        return str(int(item.get("value") or 0))
    if item.get("value") is None:
        return "—"
    return f"{item['value'] * 100:.2f}% {int(item['numerator'])}/{item['denominator']}"


def _print_holdings(found: dict[str, Any], states: dict[str, str], categories: dict[str, str], brief: bool) -> None:
    by_state = " · ".join(f"{states.get(s, s)} {s} {n}" for s, n in _largest(found["by_status"]))
    out.print(f"状态 states    {by_state}", markup=False, soft_wrap=True)
    if not brief:
        by_category = " · ".join(f"{categories.get(c, c)} {n}" for c, n in _largest(found["by_category"]))
        out.print(f"类别 categories {by_category}", markup=False, soft_wrap=True)
        timers = ", ".join(f"{n} {s}" for s, n in _largest(found["timers"]))
        out.print(
            f"时限 SLA       {found['events']} events, {found['clocks']} clocks; timers {timers}",
            markup=False,
            soft_wrap=True,
        )
    notices = ", ".join(f"{n} {s}" for s, n in _largest(found["notices"])) or "none"
    out.print(
        f"通知 notices   {notices} (演示: never sent to anyone; `gridflow notices list`)", markup=False, soft_wrap=True
    )
    if not brief:
        out.print(f"评分 scores    {', '.join(found['score_runs']) or 'none'}", markup=False, soft_wrap=True)
        pubs = ", ".join(f"{p['kind']} {p['period']} v{p['version']}" for p in found["postings"]) or "none"
        out.print(f"公示 postings  {pubs}", markup=False, soft_wrap=True)
        out.print(f"任务 jobs      {', '.join(found['job_runs']) or 'none'}", markup=False, soft_wrap=True)


def _largest(counts: dict[str, int]) -> list[tuple[str, int]]:
    return Counter(counts).most_common()


def _local(iso: str | None, gf: Gridflow) -> str:
    return present.local_text(datetime.fromisoformat(iso), gf.tz) if iso else ""


def _print_status(gf: Gridflow, found: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(found)
        return
    if not found["loaded"]:
        enabled = "" if found["enabled"] else f"; demo data is off here (setting {demo.SETTING} is false)"
        out.print(f"no demo data here{enabled}", markup=False, soft_wrap=True)
        return
    state = (
        "complete" if found["complete"] else "incomplete: stopped before the posting; `gridflow demo --clear` and again"
    )
    out.print(
        f"{demo.LABEL} demo: {_period_text(found['quarter'])}, {found['cases']} cases reported "
        f"{_local(found['first_reported'], gf)} – {_local(found['last_reported'], gf)}; {state}",
        markup=False,
        soft_wrap=True,
    )
    labels = gf.demo_labels()
    _print_holdings(found, labels["states"], labels["categories"], brief=False)
    out.print(
        "demo cases: source_channel demo, titles 【演示】…; remove all of it: gridflow demo --clear",
        markup=False,
        soft_wrap=True,
    )


def _clear(result: dict[str, Any]) -> None:
    if result["quarter"] is None:
        out.print("no demo data here; nothing changed", markup=False)
        return
    removed = ", ".join(f"{n} {what}" for what, n in result["removed"].items() if n)
    out.print(
        f"{demo.LABEL} demo of {_period_text(result['quarter'])} removed: {removed}; "
        f"{len(result['files'])} posting file(s)",
        markup=False,
        soft_wrap=True,
    )
    for path in result["files"]:
        out.print(f"  deleted: {path}", markup=False, soft_wrap=True)
