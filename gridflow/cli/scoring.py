"""CLI commands of the scores and postings: ``score run|show|history`` and
``publish run|show|object|decide``. Registered by :mod:`gridflow.cli`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from engine import jobs as engine_jobs
from engine.errors import InputError, NotFound
from engine.jobs import Period
from engine.scoring.catalogue import INDICATORS, SUBJECT_INDICATORS, SUBJECT_LABELS
from engine.store.models import JobRun, Publication, ScoreRun
from gridflow import present
from gridflow.app import Gridflow, not_after_now, parse_at
from gridflow.cli.common import emit_json, handled, open_gridflow, out
from gridflow.lazy import lazy_module

app = typer.Typer()  # this module's commands; gridflow.cli.build merges them into the root

# Loaded by the commands that use them (calendars, templates, the demo), not by every gridflow command.
demo = lazy_module("gridflow.demo")
periodic = lazy_module("engine.periodic")
runs = lazy_module("engine.scoring.runs")
posting = lazy_module("engine.publication.posting")

score_app = typer.Typer(help="月评比 scores: indicators, composite scores, grades and ranks.", no_args_is_help=True)
publish_app = typer.Typer(help="季公示 / 年总结 postings: publish, show, objections.", no_args_is_help=True)
app.add_typer(score_app, name="score")
app.add_typer(publish_app, name="publish")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
AtOpt = Annotated[str | None, typer.Option("--at", help="As if it were this time (local ISO); default now.")]
PeriodOpt = Annotated[str, typer.Option("--period", "-p", help="A month 2026-11, a quarter 2026Q4 or a year 2026.")]
BY = ("grid", "worker", "village", "township", "reporter", "handler")
GRADE_STYLE = {"A": "green", "B": "cyan", "C": "yellow", "D": "magenta", "E": "red"}
LIST_LABEL = {"red": "[red]红榜[/]", "black": "[bold]黑榜[/]"}
JOB_OF_KIND = {"month": "monthly_scoring", "quarter": "quarterly_publication", "year": "annual_summary"}


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f}%"


def _ensure_swept(gf: Gridflow, at: Any) -> None:
    """Fire the timers due by ``at`` first (the runtime may not be running), so every breach is counted."""
    report = gf.sweep(at)
    if report.fired:
        out.print(f"fired {len(report.fired)} due SLA timer(s) first, so every breach is counted", markup=False)


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
        when = not_after_now(parse_at(at, gf.tz, gf.clock()), gf.clock(), gf.tz)
        target = runs.period_from_key(period)
        if rules is not None and not force:
            raise InputError("--rules-version recomputes a scored period: add --force")
        _ensure_swept(gf, when)
        with out.status(f"scoring {target.key} …"), gf.transaction() as session:
            run, fresh = _score(gf, session, target, when, force, rules)
            result = periodic.run_result(run)
            if fresh:
                _record_job(session, target, when, gf, result, forced=force)
            payload = _run_json(session, run, gf) if as_json else None
            table = None if as_json else _run_table(session, run, gf)
        if as_json:
            emit_json({"fresh": fresh, **payload})
            return
        if not fresh:
            out.print(
                f"{target.key} was scored already (run #{run.seq}, {present.local_text(run.computed_at, gf.tz)}, "
                f"rules v{run.config_version}); --force recomputes and keeps that run in the history",
                markup=False,
            )
        else:
            out.print(
                f"[bold]{target.key}[/] scored: run #{run.seq} with rules v{run.config_version} "
                f"in {run.duration_ms} ms ({escape(run.reason)})"
            )
        out.print(table)
        out.print(f"more: gridflow score show --period {target.key} [--by grid|worker|village] [--json]", markup=False)


def _score(gf: Gridflow, session: Any, target: Period, when: Any, force: bool, rules: int | None) -> tuple:
    existing = runs.current_run(session, target.key)
    if existing is not None and not force:
        return existing, False
    config = runs.config_for(session, rules) if rules is not None else gf.scoring_rules()
    reason = "forced by `gridflow score run --force`" if existing is not None else "`gridflow score run`"
    return runs.score_period(session, target, when, config, gf.tz, reason), True


def _record_job(session: Any, period: Period, at: Any, gf: Gridflow, result: dict, forced: bool) -> None:
    """A month scored by hand counts as the monthly job's run; --force updates that record."""
    if period.kind != "month":
        return
    spec = engine_jobs.JOBS["monthly_scoring"]
    outcome = engine_jobs.run_period(session, spec, period, at, gf.tz, lambda s, p, a: result, gf.worker_id)
    if not outcome.ran and forced:
        row = session.scalar(select(JobRun).where(JobRun.job == spec.name, JobRun.period == period.key))
        row.result, row.attempts, row.finished_at = result, row.attempts + 1, at


def _run_table(session: Any, run: ScoreRun, gf: Gridflow) -> Table:
    table = Table(title=f"{run.period} 全乡关键指标 township", title_justify="left")
    for col in ("指标 indicator", "值 value", "分子/分母"):
        table.add_column(col)
    for name in (
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
    ):
        item = run.summary.get(name)
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
    by: Annotated[str, typer.Option("--by", help=f"One of {', '.join(BY)}.")] = "grid",
    seq: Annotated[int | None, typer.Option("--run", help="An earlier run (its #), default the current one.")] = None,
    everyone: Annotated[bool, typer.Option("--all", help="Also the subjects with no case in the period.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Scores and ranks of a period by grid, worker or village; indicators by any subject."""
    with handled():
        if by not in BY:
            raise InputError(f"unknown --by {by!r}; one of {', '.join(BY)}")
        gf = open_gridflow()
        target = runs.period_from_key(period)
        with gf.transaction(write=False) as session:
            run = _run_of(session, target.key, seq)
            if as_json:
                emit_json(_run_json(session, run, gf, by))
                return
            if by in ("grid", "worker", "village"):
                table, hidden = _score_table(session, run, by, gf, everyone)
                out.print(table)
                if hidden:
                    out.print(f"{hidden} with no case in {run.period} not shown (--all shows them)", markup=False)
            else:
                out.print(_indicator_table(session, run, by))
            note = demo.note(session, run.period_start, run.period_end)
        out.print(
            f"run #{run.seq} of {run.period} ({'current' if run.current else 'earlier run'}), rules v{run.config_version}, "
            f"computed {present.local_text(run.computed_at, gf.tz)}; `gridflow score history --period {run.period}`",
            markup=False,
        )
        if note:
            out.print(f"[bold red]{escape(note)}[/]", highlight=False)


def _run_of(session: Any, period: str, seq: int | None) -> ScoreRun:
    if seq is None:
        run = runs.current_run(session, period)
    else:
        run = session.scalar(select(ScoreRun).where(ScoreRun.period == period, ScoreRun.seq == seq))
    if run is None:
        raise NotFound(
            f"{period} has not been scored{'' if seq is None else f' (no run #{seq})'}; "
            f"`gridflow score run --period {period}` scores it"
        )
    return run


def _score_table(session: Any, run: ScoreRun, by: str, gf: Gridflow, everyone: bool) -> tuple[Table, int]:
    rows = runs.scores(session, run, by)
    hidden = 0 if everyone else sum(1 for r in rows if not r.cases)
    rows = rows if everyone else [r for r in rows if r.cases]
    values = runs.indicator_table(session, run)
    weights = list(gf.scoring_rules().subjects[by].weights) if by in ("grid", "worker", "village") else []
    table = Table(
        title=f"{run.period} {SUBJECT_LABELS.get(by, by) if by != 'worker' else '网格员'} 排名", title_justify="left"
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
        own = values.get(("reporter" if by == "worker" else by, row.subject_id), {})
        if by == "worker":
            own = {**values.get(("handler", row.subject_id), {}), **own}
        grade = f"[{GRADE_STYLE.get(row.grade or '', 'white')}]{row.grade}[/]" if row.grade else "—"
        table.add_row(
            escape(row.group_key),
            str(row.rank) if row.rank else "[dim]未排名[/]",
            escape(row.name),
            str(row.cases),
            "—" if row.composite is None else f"{row.composite:.2f}",
            grade,
            LIST_LABEL.get(row.listed or "", ""),
            "—" if row.change is None else f"{row.change:+.2f}",
            "—" if row.change_year is None else f"{row.change_year:+.2f}",
            *(_rate_cell(own.get(w)) for w in weights),
        )
    return table, hidden


def _rate_cell(value: Any) -> str:
    if value is None or value.value is None:
        return "[dim]—[/]" if value is None else f"[dim]—[/] {int(value.numerator or 0)}/{value.denominator}"
    return f"{value.value * 100:.1f}% {int(value.numerator)}/{value.denominator}"


def _indicator_table(session: Any, run: ScoreRun, by: str) -> Table:
    values = {k: v for k, v in runs.indicator_table(session, run).items() if k[0] == by}
    names = SUBJECT_INDICATORS[by]
    table = Table(title=f"{run.period} 指标 indicators by {by}", title_justify="left")
    table.add_column("subject")
    for name in names:
        table.add_column(INDICATORS[name].label, overflow="fold")
    for (_, subject), named in sorted(values.items()):
        cells = []
        for name in names:
            v = named.get(name)
            if v is None or v.value is None:
                cells.append("—" if v is None or v.denominator is None else f"— 0/{v.denominator}")
            elif INDICATORS[name].kind == "rate":
                cells.append(f"{v.value * 100:.1f}% {int(v.numerator)}/{v.denominator}")
            elif INDICATORS[name].kind == "hours":
                cells.append(f"{v.value:.1f}")
            else:
                cells.append(str(int(v.value)))
        table.add_row(escape(subject), *cells)
    return table


def _run_json(session: Any, run: ScoreRun, gf: Gridflow, by: str | None = None) -> dict[str, Any]:
    values = runs.indicator_table(session, run)
    subjects = []
    kinds = [by] if by else ["grid", "worker", "village"]
    for row in runs.scores(session, run):
        if row.subject_kind not in kinds:
            continue
        subjects.append(
            {
                k: getattr(row, k)
                for k in (
                    "subject_kind",
                    "subject_id",
                    "name",
                    "group_key",
                    "cases",
                    "composite",
                    "grade",
                    "ranked",
                    "rank",
                    "listed",
                    "previous",
                    "change",
                    "year_ago",
                    "change_year",
                    "rank_change",
                    "missing",
                    "parts",
                )
            }
        )
    indicators = [
        {
            "subject_kind": k,
            "subject_id": s,
            "indicators": {
                n: {"numerator": v.numerator, "denominator": v.denominator, "value": v.value} for n, v in named.items()
            },
        }
        for (k, s), named in sorted(values.items())
        if by is None or k == by or (by == "worker" and k in ("reporter", "handler"))
    ]
    return {
        "period": run.period,
        "run": run.seq,
        "current": run.current,
        "rules_version": run.config_version,
        "computed_at": present.iso(run.computed_at),
        "reason": run.reason,
        "exempt_cases": run.exempt,
        "township": run.summary,
        "scores": subjects,
        "indicators": indicators,
    }


@score_app.command("history")
def score_history(period: PeriodOpt, as_json: JsonOpt = False) -> None:
    """Every run of a period: the current one and the earlier ones it replaced."""
    with handled():
        gf = open_gridflow()
        with gf.transaction(write=False) as session:
            found = runs.runs_of(session, runs.period_from_key(period).key)
            rows = [
                {
                    "run": r.seq,
                    "current": r.current,
                    "rules_version": r.config_version,
                    "computed_at": present.iso(r.computed_at),
                    "reason": r.reason,
                    "exempt_cases": len(r.exempt),
                    "ms": r.duration_ms,
                    "on_time_close_rate": (r.summary.get("on_time_close_rate") or {}).get("value"),
                }
                for r in found
            ]
            computed = [present.local_text(r.computed_at, gf.tz) for r in found]
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
        for r, when in zip(rows, computed, strict=True):
            table.add_row(
                str(r["run"]),
                "✓" if r["current"] else "",
                f"v{r['rules_version']}",
                when,
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
        when = not_after_now(parse_at(at, gf.tz, gf.clock()), gf.clock(), gf.tz)
        _ensure_swept(gf, when)
        spec = engine_jobs.JOBS[JOB_OF_KIND[period.kind]]
        body = periodic.bodies(gf.tz, gf.calendars, scoring=gf.scoring_rules, base_url=gf.settings.public_url)[
            spec.name
        ]
        with out.status(f"publishing {period.key} …"), gf.transaction() as session:
            outcome = engine_jobs.run_period(session, spec, period, when, gf.tz, body, gf.worker_id)
        with gf.transaction(write=False) as session:
            pub = posting.current(session, kind, period.key)
            written = gf.export_postings(session)
            if pub is None:  # the job ran before this posting existed? never: the body publishes
                raise NotFound(f"no {kind} posting of {period.key}")
            summary = _posting_summary(session, pub, gf)
        if not outcome.ran:
            out.print(
                f"{period.key} was published already (v{pub.version}); objections lead to a new version "
                "(`gridflow publish object`)",
                markup=False,
            )
        out.print(summary)
        for path in written:
            out.print(f"written: {path}", markup=False)


def _posting_summary(session: Any, pub: Publication, gf: Gridflow) -> Table:
    doc = posting.document_of(pub)
    table = Table(title=doc["title"], title_justify="left", show_header=False)
    table.add_column("k")
    table.add_column("v", overflow="fold")
    table.add_row(
        "版本 version", f"v{pub.version}{'（现行）' if pub.current else '（已被替代）'}  {escape(pub.reason)}"
    )
    table.add_row("发布 published", present.local_text(pub.published_at, gf.tz))
    if pub.objection_until:
        table.add_row("公示期至 objections until", present.local_text(pub.objection_until, gf.tz))
    table.add_row("校验码 sha256", pub.content_hash)
    table.add_row("红榜 red", escape("、".join(f"{r['name']}({r['group']})" for r in doc["red_list"]) or "无"))
    table.add_row("黑榜 black", escape("、".join(f"{r['name']}({r['group']})" for r in doc["black_list"]) or "无"))
    for item in doc["key_figures"]:
        table.add_row(escape(item["label"]), escape(f"{item['value']}  {item['detail']}".strip()))
    for change in pub.changes or []:
        table.add_row(
            "更正 change", escape(f"{change['subject']} {change['what']}: {change['before']} → {change['after']}")
        )
    path = gf.settings.postings_path / pub.kind / pub.period / f"v{pub.version}.html"
    table.add_row("文件 file", str(path))
    if gf.settings.public_url:
        table.add_row("链接 link", posting.link(gf.settings.public_url, pub))
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
        with gf.transaction(write=False) as session:
            if not quarter and not year:
                _list_postings(session, gf, as_json)
                return
            kind, period = _which(quarter, year)
            pub = _version(session, kind, period.key, version)
            objections = posting.objections(session, kind, period.key)
            if to is not None:
                to.mkdir(parents=True, exist_ok=True)
                for suffix in ("html", "csv", "json"):
                    (to / f"{kind}-{period.key}-v{pub.version}.{suffix}").write_text(getattr(pub, suffix), "utf-8")
            if as_json:
                emit_json(
                    {
                        **_pub_json(pub),
                        "document": posting.document_of(pub),
                        "objections": [_objection_json(o) for o in objections],
                    }
                )
                return
            out.print(_posting_summary(session, pub, gf))
            if note := demo.posting_note(session, pub):
                out.print(f"[bold red]{escape(note)}[/]", highlight=False)
            if objections:
                out.print(_objection_table(objections, gf))
            if to is not None:
                out.print(f"written to {to}", markup=False)


def _version(session: Any, kind: str, period: str, version: int | None) -> Publication:
    pub = (
        posting.current(session, kind, period)
        if version is None
        else session.scalar(
            select(Publication).where(
                Publication.kind == kind, Publication.period == period, Publication.version == version
            )
        )
    )
    if pub is None:
        what = "published" if version is None else f"published in version {version}"
        flag = f"--quarter {period}" if kind == "quarterly" else f"--year {period}"
        raise NotFound(f"the {kind} posting of {period} was not {what}; `gridflow publish run {flag}`")
    return pub


def _pub_json(pub: Publication) -> dict[str, Any]:
    return {
        "kind": pub.kind,
        "period": pub.period,
        "version": pub.version,
        "current": pub.current,
        "published_at": present.iso(pub.published_at),
        "objection_until": present.iso(pub.objection_until),
        "content_hash": pub.content_hash,
        "reason": pub.reason,
        "changes": pub.changes or [],
    }


def _objection_json(o: Any) -> dict[str, Any]:
    return {
        "id": o.id,
        "subject": f"{o.subject_kind}:{o.subject_id}",
        "cases": o.case_ids,
        "by": o.lodged_by,
        "lodged_at": present.iso(o.lodged_at),
        "reason": o.reason,
        "status": o.status,
        "decided_at": present.iso(o.decided_at),
        "decided_by": o.decided_by,
        "decision": o.decision,
    }


def _list_postings(session: Any, gf: Gridflow, as_json: bool) -> None:
    pubs = posting.versions(session)
    if as_json:
        emit_json([_pub_json(p) for p in pubs])
        return
    if not pubs:
        out.print("nothing published yet; `gridflow publish run --quarter 2026Q4`", markup=False)
        return
    table = Table(title="公示 postings", title_justify="left")
    for col in ("kind", "period", "version", "published", "objections until", "sha256", "reason"):
        table.add_column(col)
    for p in pubs:
        table.add_row(
            p.kind,
            p.period,
            f"v{p.version}{' ✓' if p.current else ''}",
            present.local_text(p.published_at, gf.tz),
            present.local_text(p.objection_until, gf.tz) if p.objection_until else "—",
            p.content_hash[:16],
            escape(p.reason),
        )
    out.print(table)


def _objection_table(objections: list, gf: Gridflow) -> Table:
    table = Table(title="异议 objections", title_justify="left")
    for col in ("#", "subject", "by", "lodged", "reason", "status", "decision"):
        table.add_column(col, overflow="fold")
    for o in objections:
        table.add_row(
            str(o.id),
            f"{o.subject_kind}:{o.subject_id}",
            escape(o.lodged_by),
            present.local_text(o.lodged_at, gf.tz),
            escape(o.reason),
            o.status,
            escape(o.decision or ""),
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
        when = not_after_now(parse_at(at, gf.tz, gf.clock()), gf.clock(), gf.tz)
        with gf.transaction() as session:
            objection = posting.lodge(
                session, kind, period.key, subject, case or [], by, reason, when, gf.tz, entry or []
            )
            oid = objection.id
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
        when = not_after_now(parse_at(at, gf.tz, gf.clock()), gf.clock(), gf.tz)
        with gf.transaction() as session:
            published = posting.decide(session, objection, uphold, by, note, when, gf.tz, gf.settings.public_url)
            summary = _posting_summary(session, published.publication, gf) if published else None
            notices = published.notices if published else 0
        if summary is None:
            out.print(f"objection #{objection} rejected", markup=False)
            return
        with gf.transaction(write=False) as session:
            written = gf.export_postings(session)
        out.print(
            f"objection #{objection} upheld: recomputed and republished; {notices} notice(s) staged", markup=False
        )
        out.print(summary)
        for path in written:
            out.print(f"written: {path}", markup=False)
