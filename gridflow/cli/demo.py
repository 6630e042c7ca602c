"""CLI command of the demo township (演示数据): ``gridflow demo [--status | --clear]``. Registered by
:mod:`gridflow.cli`; the work is done by :mod:`gridflow.demo`."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine.errors import InputError
from engine.jobs import Period, parse_period
from engine.store.demo_repo import LABEL
from gridflow import present
from gridflow.app import Gridflow, not_after_now, parse_at
from gridflow.cli import views
from gridflow.cli.common import emit_json, handled, open_gridflow, out
from gridflow.demo_plan import DEFAULT_SIZE
from gridflow.lazy import lazy_module

app = typer.Typer()  # this module's commands; gridflow.cli.build merges them into the root

demo = lazy_module("gridflow.demo")  # loaded when a demo command runs, not for every command

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
            _print_status(gf, demo.status(gf), as_json)
        elif clear:
            _clear(gf)
        else:
            _load(gf, quarter, at, cases, if_empty)


def _load(gf: Gridflow, quarter: str | None, at: str | None, size: int, if_empty: bool) -> None:
    if if_empty and not gf.settings.demo:
        out.print(f"demo data is off here (setting {demo.SETTING} is false); no demo loaded", markup=False)
        return
    if if_empty and (held := demo.cases_here(gf)):
        found = demo.status(gf)
        if not found.loaded:
            out.print(f"the database holds {held} case(s); no demo loaded (`gridflow demo` says why)", markup=False)
            return
    now = gf.clock()
    when = not_after_now(parse_at(at, gf.tz, now), now)
    target = parse_period("quarter", quarter) if quarter else None
    demo.require_enabled(gf)
    with _progress() as progress:
        task = progress.add_task("演示数据 loading", total=None)
        result = demo.load(
            gf,
            quarter=target,
            now=when,
            size=size,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    if not result.fresh:
        _already(gf, result.status)
        return
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


def _period_text(period: Period) -> str:
    last = period.end.toordinal() - 1
    return f"{period.key} ({period.start:%Y-%m-%d} – {date.fromordinal(last):%Y-%m-%d})"


def _already(gf: Gridflow, found: demo.Status) -> None:
    assert found.quarter is not None
    state = "loaded" if found.complete else "loaded only in part (stopped before the posting)"
    out.print(
        f"{LABEL} demo: {_period_text(found.quarter)} is {state} already, {found.holdings.cases} cases; "
        "nothing changed. `gridflow demo --status` shows it, `gridflow demo --clear` removes it",
        markup=False,
        soft_wrap=True,
    )


def _print_loaded(gf: Gridflow, result: demo.Loaded) -> None:
    plan = result.plan
    assert plan is not None
    states, categories = demo.labels(gf)
    fired = ", ".join(f"{result.fired.get(k, 0)} {label}" for k, label in FIRED)
    out.print(
        f"{LABEL} demo: {_period_text(plan.quarter)} loaded in {result.seconds:.1f} s — {len(plan.cases)} cases "
        f"(seed {plan.seed}), {plan.steps} steps through the engine at their past times; "
        f"SLA timers fired: {fired}",
        markup=False,
        soft_wrap=True,
    )
    out.print(_months_table(result.months))
    _print_holdings(result.status, states, categories, brief=True)
    if result.posting:
        period, version = result.posting
        out.print(f"公示 posting   quarterly {period} v{version} (演示数据 watermark)", markup=False, soft_wrap=True)
    for path in result.files:
        out.print(f"  written: {path}", markup=False, soft_wrap=True)
    last = plan.quarter.key
    month = result.months[-1][0] if result.months else last
    out.print(
        f"look: gridflow case list · gridflow sla due · gridflow score show --period {month} · "
        f"gridflow publish show --quarter {last} · gridflow notices list · gridflow jobs list",
        markup=False,
        soft_wrap=True,
    )


def _months_table(months: list[tuple[str, dict[str, Any]]]) -> Table:
    table = Table(title="全乡关键指标 township (演示数据)", title_justify="left")
    table.add_column("指标 indicator")
    for key, _ in months:
        table.add_column(key, justify="right")
    for name, label in FIGURES:
        views.row(table, label, *(_figure(summary.get(name) or {}, name) for _, summary in months))
    return table


def _figure(item: dict[str, Any], name: str) -> str:
    if not name.endswith("_rate"):
        return str(int(item.get("value") or 0))
    if item.get("value") is None:
        return "—"
    return f"{item['value'] * 100:.2f}% {int(item['numerator'])}/{item['denominator']}"


def _print_holdings(found: demo.Status, states: dict[str, str], categories: dict[str, str], brief: bool) -> None:
    h = found.holdings
    by_state = " · ".join(f"{states.get(s, s)} {s} {n}" for s, n in _largest(h.by_status))
    out.print(f"状态 states    {by_state}", markup=False, soft_wrap=True)
    if not brief:
        by_category = " · ".join(f"{categories.get(c, c)} {n}" for c, n in _largest(h.by_category))
        out.print(f"类别 categories {by_category}", markup=False, soft_wrap=True)
        timers = ", ".join(f"{n} {s}" for s, n in _largest(h.timers))
        out.print(f"时限 SLA       {h.events} events, {h.clocks} clocks; timers {timers}", markup=False, soft_wrap=True)
    notices = ", ".join(f"{n} {s}" for s, n in _largest(h.notices)) or "none"
    out.print(
        f"通知 notices   {notices} (演示: never sent to anyone; `gridflow notices list`)", markup=False, soft_wrap=True
    )
    if not brief:
        out.print(f"评分 scores    {', '.join(h.score_runs) or 'none'}", markup=False, soft_wrap=True)
        pubs = ", ".join(f"{k} {p} v{v}" for k, p, v in h.postings) or "none"
        out.print(f"公示 postings  {pubs}", markup=False, soft_wrap=True)
        out.print(f"任务 jobs      {', '.join(h.job_runs) or 'none'}", markup=False, soft_wrap=True)


def _largest(counts: dict[str, int]) -> list[tuple[str, int]]:
    return Counter(counts).most_common()


def _print_status(gf: Gridflow, found: demo.Status, as_json: bool) -> None:
    if as_json:
        emit_json(_status_json(found, gf))
        return
    if not found.loaded:
        enabled = "" if gf.settings.demo else f"; demo data is off here (setting {demo.SETTING} is false)"
        out.print(f"no demo data here{enabled}", markup=False, soft_wrap=True)
        return
    assert found.quarter is not None
    h = found.holdings
    state = (
        "complete" if found.complete else "incomplete: stopped before the posting; `gridflow demo --clear` and again"
    )
    out.print(
        f"{LABEL} demo: {_period_text(found.quarter)}, {h.cases} cases reported "
        f"{present.local_text(h.first_reported, gf.tz)} – {present.local_text(h.last_reported, gf.tz)}; {state}",
        markup=False,
        soft_wrap=True,
    )
    states, categories = demo.labels(gf)
    _print_holdings(found, states, categories, brief=False)
    out.print(
        "demo cases: source_channel demo, titles 【演示】…; remove all of it: gridflow demo --clear",
        markup=False,
        soft_wrap=True,
    )


def _status_json(found: demo.Status, gf: Gridflow) -> dict[str, Any]:
    h = found.holdings
    return {
        "loaded": found.loaded,
        "complete": found.complete,
        "enabled": gf.settings.demo,
        "quarter": found.quarter.key if found.quarter else None,
        "cases": h.cases,
        "first_reported": present.iso(h.first_reported),
        "last_reported": present.iso(h.last_reported),
        "by_status": h.by_status,
        "by_category": h.by_category,
        "events": h.events,
        "clocks": h.clocks,
        "timers": h.timers,
        "notices": h.notices,
        "deliveries": h.deliveries,
        "score_runs": h.score_runs,
        "postings": [{"kind": k, "period": p, "version": v} for k, p, v in h.postings],
        "job_runs": h.job_runs,
        "objections": h.objections,
    }


def _clear(gf: Gridflow) -> None:
    result = demo.clear(gf)
    if result.quarter is None:
        out.print("no demo data here; nothing changed", markup=False)
        return
    removed = ", ".join(f"{n} {what}" for what, n in result.removed.items() if n)
    out.print(
        f"{LABEL} demo of {_period_text(result.quarter)} removed: {removed}; {len(result.files)} posting file(s)",
        markup=False,
        soft_wrap=True,
    )
    for path in result.files:
        out.print(f"  deleted: {path}", markup=False, soft_wrap=True)
