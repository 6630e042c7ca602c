"""CLI commands of the scores and postings: ``score run|show|history`` and
``publish run|show|object|decide``. Registered by :mod:`gridflow.cli`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from engine import jobs as engine_jobs
from engine.errors import InputError
from engine.jobs import Period
from engine.scoring.catalogue import INDICATORS, SUBJECT_INDICATORS, SUBJECT_LABELS
from gridflow import present
from gridflow.app import Gridflow, parse_at
from gridflow.app.scoring import SCORE_BY, PostingView, check_score_by
from gridflow.cli.common import emit_json, handled, open_gridflow, out

app = typer.Typer()  # this module's commands; gridflow.cli.build merges them into the root

score_app = typer.Typer(help="月评比 scores: indicators, composite scores, grades and ranks.", no_args_is_help=True)
publish_app = typer.Typer(help="季公示 / 年总结 postings: publish, show, objections.", no_args_is_help=True)
app.add_typer(score_app, name="score")
app.add_typer(publish_app, name="publish")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
AtOpt = Annotated[str | None, typer.Option("--at", help="As if it were this time (local ISO); default now.")]
PeriodOpt = Annotated[str, typer.Option("--period", "-p", help="A month 2026-11, a quarter 2026Q4 or a year 2026.")]
GRADE_STYLE = {"A": "green", "B": "cyan", "C": "yellow", "D": "magenta", "E": "red"}
LIST_LABEL = {"red": "[red]红榜[/]", "black": "[bold]黑榜[/]"}
TOWNSHIP_FIGURES = (
    "reported",
    "classified",
    "closed",
    "close_rate",
    "on_time_close_rate",
    "on_time_dispatch_rate",
    "on_time_handling_rate",
    "response_rate",
    "satisfaction_rate",
    "rework_rate",
    "overdue_open",
    "handling_hours_median",
)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f}%"


def _at(gf: Gridflow, text: str | None) -> datetime | None:
    """``--at`` as an aware time; None for now (the application then reads its clock)."""
    return parse_at(text, gf.tz, gf.clock()) if text else None


def _local(gf: Gridflow, iso: str | None) -> str:
    """An ISO time of the application's answer, as people read it."""
    return present.local_text(datetime.fromisoformat(iso), gf.tz) if iso else ""


def _swept(fired: int) -> None:
    out.print(f"fired {fired} due SLA timer(s) first, so every breach is counted", markup=False)


# -- score -----------------------------------------------------------------------------------


@score_app.command("run")
def score_run(
    period: PeriodOpt,
    force: Annotated[bool, typer.Option("--force", help="Recompute; the earlier run stays in the history.")] = False,
    rules: Annotated[
        int | None, typer.Option("--rules-version", help="With --force: use this stored version of the rules.")
    ] = None,
    at: AtOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score a period (what the monthly job does); a period already scored is left as it is without --force."""
    with handled():
        gf = open_gridflow()
        with out.status(f"scoring {period.upper()} …"):
            sheet = gf.score_run(period, at=_at(gf, at), force=force, rules_version=rules, on_swept=_swept)
        run = sheet.data
        if as_json:
            emit_json(run)
            return
        if not run["fresh"]:
            out.print(
                f"{run['period']} was scored already (run #{run['run']}, {_local(gf, run['computed_at'])}, "
                f"rules v{run['rules_version']}); --force recomputes and keeps that run in the history",
                markup=False,
            )
        else:
            out.print(
                f"[bold]{run['period']}[/] scored: run #{run['run']} with rules v{run['rules_version']} "
                f"in {sheet.duration_ms} ms ({escape(run['reason'])})"
            )
        out.print(_run_table(run))
        out.print(
            f"more: gridflow score show --period {run['period']} [--by grid|worker|village] [--json]", markup=False
        )


def _run_table(run: dict[str, Any]) -> Table:
    table = Table(title=f"{run['period']} 全乡关键指标 township", title_justify="left")
    for col in ("指标 indicator", "值 value", "分子/分母"):
        table.add_column(col)
    for name in TOWNSHIP_FIGURES:
        item = run["township"].get(name)
        if item is None:
            continue
        ind = INDICATORS[name]
        if ind.kind == "rate":
            table.add_row(
                f"{ind.label} {name}", _pct(item["value"]), f"{int(item['numerator'])}/{int(item['denominator'])}"
            )
        elif ind.kind == "hours":
            value = "—" if item["value"] is None else f"{item['value']:.1f} h"
            table.add_row(f"{ind.label} {name}", value, f"n={item['denominator']}")
        else:
            table.add_row(f"{ind.label} {name}", str(int(item["value"])), "")
    return table


@score_app.command("show")
def score_show(
    period: PeriodOpt,
    by: Annotated[str, typer.Option("--by", help=f"One of {', '.join(SCORE_BY)}.")] = "grid",
    seq: Annotated[int | None, typer.Option("--run", help="An earlier run (its #), default the current one.")] = None,
    everyone: Annotated[bool, typer.Option("--all", help="Also the subjects with no case in the period.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Scores and ranks of a period by grid, worker or village; indicators by any subject."""
    with handled():
        check_score_by(by)
        gf = open_gridflow()
        sheet = gf.score_show(period, run=seq, by=by)
        run = sheet.data
        if as_json:
            emit_json(run)
            return
        if by in ("grid", "worker", "village"):
            table, hidden = _score_table(run, by, gf.score_weights(by), everyone)
            out.print(table)
            if hidden:
                out.print(f"{hidden} with no case in {run['period']} not shown (--all shows them)", markup=False)
        else:
            out.print(_indicator_table(run, by))
        out.print(
            f"run #{run['run']} of {run['period']} ({'current' if run['current'] else 'earlier run'}), "
            f"rules v{run['rules_version']}, computed {_local(gf, run['computed_at'])}; "
            f"`gridflow score history --period {run['period']}`",
            markup=False,
        )
        if sheet.note:
            out.print(f"[bold red]{escape(sheet.note)}[/]", highlight=False)


def _indicators(run: dict[str, Any]) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    return {(i["subject_kind"], i["subject_id"]): i["indicators"] for i in run["indicators"]}


def _score_table(run: dict[str, Any], by: str, weights: tuple[str, ...], everyone: bool) -> tuple[Table, int]:
    rows = run["scores"]
    hidden = 0 if everyone else sum(1 for r in rows if not r["cases"])
    rows = rows if everyone else [r for r in rows if r["cases"]]
    values = _indicators(run)
    table = Table(
        title=f"{run['period']} {SUBJECT_LABELS.get(by, by) if by != 'worker' else '网格员'} 排名", title_justify="left"
    )
    for col in (
        "组 group",
        "名次",
        "名称 name",
        "案件",
        "综合 score",
        "等级",
        "榜",
        "较上期",
        "较去年",
        *(INDICATORS[w].label for w in weights),
    ):
        table.add_column(col, overflow="fold")
    for row in rows:
        own = values.get(("reporter" if by == "worker" else by, row["subject_id"]), {})
        if by == "worker":
            own = {**values.get(("handler", row["subject_id"]), {}), **own}
        grade = f"[{GRADE_STYLE.get(row['grade'] or '', 'white')}]{row['grade']}[/]" if row["grade"] else "—"
        table.add_row(
            escape(row["group_key"]),
            str(row["rank"]) if row["rank"] else "[dim]未排名[/]",
            escape(row["name"]),
            str(row["cases"]),
            "—" if row["composite"] is None else f"{row['composite']:.2f}",
            grade,
            LIST_LABEL.get(row["listed"] or "", ""),
            "—" if row["change"] is None else f"{row['change']:+.2f}",
            "—" if row["change_year"] is None else f"{row['change_year']:+.2f}",
            *(_rate_cell(own.get(w)) for w in weights),
        )
    return table, hidden


def _rate_cell(value: dict[str, Any] | None) -> str:
    if value is None or value["value"] is None:
        return "[dim]—[/]" if value is None else f"[dim]—[/] {int(value['numerator'] or 0)}/{value['denominator']}"
    return f"{value['value'] * 100:.1f}% {int(value['numerator'])}/{value['denominator']}"


def _indicator_table(run: dict[str, Any], by: str) -> Table:
    names = SUBJECT_INDICATORS[by]
    table = Table(title=f"{run['period']} 指标 indicators by {by}", title_justify="left")
    table.add_column("subject")
    for name in names:
        table.add_column(INDICATORS[name].label, overflow="fold")
    for (kind, subject), named in _indicators(run).items():  # sorted by the application
        if kind != by:
            continue
        cells = []
        for name in names:
            v = named.get(name)
            if v is None or v["value"] is None:
                cells.append("—" if v is None or v["denominator"] is None else f"— 0/{v['denominator']}")
            elif INDICATORS[name].kind == "rate":
                cells.append(f"{v['value'] * 100:.1f}% {int(v['numerator'])}/{v['denominator']}")
            elif INDICATORS[name].kind == "hours":
                cells.append(f"{v['value']:.1f}")
            else:
                cells.append(str(int(v["value"])))
        table.add_row(escape(subject), *cells)
    return table


@score_app.command("history")
def score_history(period: PeriodOpt, as_json: JsonOpt = False) -> None:
    """Every run of a period: the current one and the earlier ones it replaced."""
    with handled():
        gf = open_gridflow()
        rows = gf.score_history(period)
        if as_json:
            emit_json(rows)
            return
        if not rows:
            out.print(f"{period} has not been scored", markup=False)
            return
        table = Table(title=f"{period} 评分记录 runs", title_justify="left")
        for col in (
            "#",
            "当前 current",
            "规则 rules",
            "计算 computed",
            "原因 reason",
            "核减 exempt",
            "按期结案率 on time",
            "ms",
        ):
            table.add_column(col, no_wrap=col == "计算 computed", overflow="fold")
        for r in rows:
            table.add_row(
                str(r["run"]),
                "✓" if r["current"] else "",
                f"v{r['rules_version']}",
                _local(gf, r["computed_at"]),
                escape(r["reason"]),
                str(r["exempt_cases"]),
                _pct(r["on_time_close_rate"]),
                str(r["ms"]),
            )
        out.print(table)


# -- publish ---------------------------------------------------------------------------------------


def _which(quarter: str | None, year: str | None) -> tuple[str, Period]:
    if bool(quarter) == bool(year):
        raise InputError("name one posting: --quarter 2026Q4 (季公示) or --year 2026 (年总结)")
    if quarter:
        return "quarterly", engine_jobs.parse_period("quarter", quarter)
    return "annual", engine_jobs.parse_period("year", year or "")


QuarterOpt = Annotated[str | None, typer.Option("--quarter", "-q", help="A quarter, e.g. 2026Q4 (季公示).")]
YearOpt = Annotated[str | None, typer.Option("--year", "-y", help="A year, e.g. 2026 (年总结).")]


@publish_app.command("run")
def publish_run(quarter: QuarterOpt = None, year: YearOpt = None, at: AtOpt = None) -> None:
    """Publish the posting of a quarter or a year (what the quarterly and annual jobs do), once."""
    with handled():
        gf = open_gridflow()
        kind, period = _which(quarter, year)
        with out.status(f"publishing {period.key} …"):
            posted = gf.publish(kind, period.key, at=_at(gf, at), on_swept=_swept)
        if not posted.fresh:
            out.print(
                f"{period.key} was published already (v{posted.posting.data['version']}); objections lead to a new "
                "version (`gridflow publish object`)",
                markup=False,
            )
        out.print(_posting_summary(posted.posting, gf))
        for path in posted.written:
            out.print(f"written: {path}", markup=False)


def _posting_summary(view: PostingView, gf: Gridflow) -> Table:
    pub, doc = view.data, view.data["document"]
    table = Table(title=doc["title"], title_justify="left", show_header=False)
    table.add_column("k")
    table.add_column("v", overflow="fold")
    table.add_row(
        "版本 version", f"v{pub['version']}{'（现行）' if pub['current'] else '（已被替代）'}  {escape(pub['reason'])}"
    )
    table.add_row("发布 published", _local(gf, pub["published_at"]))
    if pub["objection_until"]:
        table.add_row("公示期至 objections until", _local(gf, pub["objection_until"]))
    table.add_row("校验码 sha256", pub["content_hash"])
    table.add_row("红榜 red", escape("、".join(f"{r['name']}({r['group']})" for r in doc["red_list"]) or "无"))
    table.add_row("黑榜 black", escape("、".join(f"{r['name']}({r['group']})" for r in doc["black_list"]) or "无"))
    for item in doc["key_figures"]:
        table.add_row(escape(item["label"]), escape(f"{item['value']}  {item['detail']}".strip()))
    for change in pub["changes"]:
        table.add_row(
            "更正 change", escape(f"{change['subject']} {change['what']}: {change['before']} → {change['after']}")
        )
    table.add_row("文件 file", view.file)
    if view.link:
        table.add_row("链接 link", view.link)
    return table


@publish_app.command("show")
def publish_show(
    quarter: QuarterOpt = None,
    year: YearOpt = None,
    version: Annotated[int | None, typer.Option("--version", help="An earlier version; default the current.")] = None,
    to: Annotated[
        Path | None, typer.Option("--out", help="Also write its HTML, CSV and JSON into this folder.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every posting; or one posting with its figures, lists, objections and files."""
    with handled():
        gf = open_gridflow()
        if not quarter and not year:
            _list_postings(gf, as_json)
            return
        kind, period = _which(quarter, year)
        view = gf.show_posting(kind, period.key, version)
        if to is not None:
            to.mkdir(parents=True, exist_ok=True)
            for suffix in ("html", "csv", "json"):
                (to / f"{kind}-{period.key}-v{view.data['version']}.{suffix}").write_text(view.texts[suffix], "utf-8")
        if as_json:
            emit_json(view.data)
            return
        out.print(_posting_summary(view, gf))
        if view.note:
            out.print(f"[bold red]{escape(view.note)}[/]", highlight=False)
        if view.data["objections"]:
            out.print(_objection_table(view.data["objections"], gf))
        if to is not None:
            out.print(f"written to {to}", markup=False)


def _list_postings(gf: Gridflow, as_json: bool) -> None:
    pubs = gf.list_postings()
    if as_json:
        emit_json(pubs)
        return
    if not pubs:
        out.print("nothing published yet; `gridflow publish run --quarter 2026Q4`", markup=False)
        return
    table = Table(title="公示 postings", title_justify="left")
    for col in ("kind", "period", "version", "published", "objections until", "sha256", "reason"):
        table.add_column(col)
    for p in pubs:
        table.add_row(
            p["kind"],
            p["period"],
            f"v{p['version']}{' ✓' if p['current'] else ''}",
            _local(gf, p["published_at"]),
            _local(gf, p["objection_until"]) if p["objection_until"] else "—",
            p["content_hash"][:16],
            escape(p["reason"]),
        )
    out.print(table)


def _objection_table(objections: list[dict[str, Any]], gf: Gridflow) -> Table:
    table = Table(title="异议 objections", title_justify="left")
    for col in ("#", "subject", "by", "lodged", "reason", "status", "decision"):
        table.add_column(col, overflow="fold")
    for o in objections:
        table.add_row(
            str(o["id"]),
            o["subject"],
            escape(o["by"]),
            _local(gf, o["lodged_at"]),
            escape(o["reason"]),
            o["status"],
            escape(o["decision"] or ""),
        )
    return table


@publish_app.command("object")
def publish_object(
    subject: Annotated[
        str, typer.Option("--subject", help="What is disputed: grid:ID, worker:ID, village:ID or household:ID.")
    ],
    by: Annotated[str, typer.Option("--by", help="Who objects (a name or a unit).")],
    reason: Annotated[str, typer.Option("--reason", help="Why.")],
    quarter: QuarterOpt = None,
    case: Annotated[list[str] | None, typer.Option("--case", help="A disputed case code; repeatable.")] = None,
    entry: Annotated[
        list[int] | None, typer.Option("--entry", help="A disputed points entry (household:ID); repeatable.")
    ] = None,
    at: AtOpt = None,
) -> None:
    """Record an objection (异议) to a quarterly posting, within its window (公示期)."""
    with handled():
        gf = open_gridflow()
        kind, period = _which(quarter, None)
        objection = gf.lodge_objection(
            kind, period.key, subject, by, reason, cases=case or [], entries=entry or [], at=_at(gf, at)
        )
        oid = objection["id"]
        out.print(
            f"objection #{oid} recorded against {subject} in {period.key}; the centre decides with "
            f"`gridflow publish decide {oid} --uphold|--reject --by NAME --note TEXT`",
            markup=False,
        )


@publish_app.command("decide")
def publish_decide(
    objection: Annotated[int, typer.Argument(help="The objection's number.")],
    by: Annotated[str, typer.Option("--by", help="Who decides.")],
    note: Annotated[str, typer.Option("--note", help="The grounds of the decision.")],
    uphold: Annotated[
        bool | None, typer.Option("--uphold/--reject", help="Uphold (recompute, republish) or reject: say which.")
    ] = None,
    at: AtOpt = None,
) -> None:
    """Decide an objection: --reject records it; --uphold leaves its cases out (核减), recomputes and republishes."""
    with handled():
        if uphold is None:
            raise InputError("say --uphold or --reject")
        gf = open_gridflow()
        posted = gf.decide_objection(objection, uphold=uphold, by=by, note=note, at=_at(gf, at))
        if posted is None:
            out.print(f"objection #{objection} rejected", markup=False)
            return
        out.print(
            f"objection #{objection} upheld: recomputed and republished; {posted.notices} notice(s) staged",
            markup=False,
        )
        out.print(_posting_summary(posted.posting, gf))
        for path in posted.written:
            out.print(f"written: {path}", markup=False)
