"""Publish a posting (季公示 quarterly, 年总结 annual) from stored score runs; objections.

:func:`publish` builds the posting's document from the period's current score run and the
runs of its months (scoring any that are missing), renders it (:mod:`engine.publication.render`:
A4 HTML with an inline SVG chart, CSV, JSON, and the hash of the JSON), stores it as the next
version, and stages a notice for every village secretary and township leader. An objection
(:func:`lodge`) is accepted only inside the window (公示期); upholding it (:func:`decide`) leaves
the disputed cases out (核减), recomputes the period and its months, and publishes a new version
listing what changed. Nothing of a resident appears in a posting: only places, staff and figures.
Pure: time comes in as ``at``; the caller commits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from engine import webhooks
from engine.errors import CommandRejected, NotFound
from engine.jobs import JOBS, Period, period_of
from engine.publication.render import Artefacts, render
from engine.scoring import runs
from engine.scoring.catalogue import INDICATORS
from engine.scoring.config import ScoringConfig
from engine.store import demo_repo
from engine.store.models import (
    Case,
    Household,
    HouseholdScore,
    Objection,
    Outbox,
    Person,
    Place,
    PointsEntry,
    PointsExemption,
    Publication,
    RoleAssignment,
    Score,
    ScoreExemption,
    ScoreRun,
    SlaClock,
)
from engine.timeutil import require_aware

KINDS = {"quarterly": "quarter", "annual": "year"}
JOB_OF_KIND = {"quarterly": "quarterly_publication", "annual": "annual_summary"}
TEMPLATES = {"quarterly": "quarterly_posting", "annual": "annual_summary"}
RECIPIENT_ROLES = ("village_secretary", "township_leader")
KEY_FIGURES = (
    "reported",
    "classified",
    "closed",
    "close_rate",
    "on_time_close_rate",
    "on_time_dispatch_rate",
    "on_time_handling_rate",
    "satisfaction_rate",
    "handling_hours_mean",
    "overdue_open",
)


class PostingRejected(CommandRejected):
    """An objection or a decision that cannot be taken; nothing was changed."""


@dataclass(frozen=True)
class Published:
    publication: Publication
    artefacts: Artefacts
    notices: int


# -- publishing --------------------------------------------------------------------------------


def months_of(period: Period) -> list[Period]:
    out, day = [], period.start
    while day < period.end:
        month = period_of("month", day)
        out.append(month)
        day = month.end
    return out


def ensure_scored(
    session: Session, period: Period, at: datetime, config: ScoringConfig, tz: ZoneInfo, reason: str
) -> ScoreRun:
    return runs.current_run(session, period.key) or runs.score_period(session, period, at, config, tz, reason)


def publish(
    session: Session,
    kind: str,
    period: Period,
    at: datetime,
    config: ScoringConfig,
    tz: ZoneInfo,
    reason: str,
    base_url: str = "",
    changes: list[dict[str, Any]] | None = None,
    change_reason: str = "",
) -> Published:
    """Publish the next version of the ``kind`` posting of ``period``."""
    at = require_aware(at)
    if KINDS.get(kind) != period.kind:
        raise PostingRejected(f"a {kind} posting covers a {KINDS.get(kind)}, not {period.key}")
    due = JOBS[JOB_OF_KIND[kind]].due_at(period, tz).astimezone(tz)
    runs.require_over(period, at, tz, f"publish it once it has ended (the {kind} job does so at {due:%Y-%m-%d %H:%M})")
    run = ensure_scored(session, period, at, config, tz, f"{reason} (scored for the posting)")
    month_runs = [
        (m, runs.current_run(session, m.key) or runs.score_period(session, m, at, config, tz, f"{reason} (month)"))
        for m in months_of(period)
    ]
    previous = current(session, kind, period.key)
    version = (previous.version + 1) if previous else 1
    until = None
    if kind == "quarterly":
        until = previous.objection_until if previous else at + timedelta(days=config.publishing.objection_days)
    rules = runs.config_for(session, run.config_version)  # describe the rules the figures were computed with
    doc = document(session, kind, period, run, month_runs, rules, tz, version, at, until, changes, change_reason)
    artefacts = render(doc)
    if previous is not None:
        session.execute(update(Publication).where(Publication.id == previous.id).values(current=False))
    pub = Publication(
        kind=kind,
        period=period.key,
        version=version,
        current=True,
        run_id=run.id,
        published_at=at,
        objection_until=until,
        content_hash=artefacts.content_hash,
        html=artefacts.html,
        csv=artefacts.csv,
        json=artefacts.json,
        reason=reason[:200],
        changes=changes or [],
    )
    session.add(pub)
    session.flush()
    staged = _stage_notices(session, pub, doc, config, at, base_url, change_reason)
    webhooks.posting(session, pub, doc, link(base_url, pub), at)
    return Published(pub, artefacts, staged)


def current(session: Session, kind: str, period: str) -> Publication | None:
    return session.scalar(
        select(Publication).where(Publication.kind == kind, Publication.period == period, Publication.current.is_(True))
    )


def versions(session: Session, kind: str | None = None, period: str | None = None) -> list[Publication]:
    stmt = select(Publication).order_by(Publication.period.desc(), Publication.kind, Publication.version)
    if kind:
        stmt = stmt.where(Publication.kind == kind)
    if period:
        stmt = stmt.where(Publication.period == period)
    return list(session.scalars(stmt))


def document_of(pub: Publication) -> dict[str, Any]:
    """The document a posting version was rendered from (its stored JSON)."""
    return json.loads(pub.json)


def link(base_url: str, pub: Publication) -> str:
    return f"{base_url.rstrip('/')}/{pub.kind}/{pub.period}/v{pub.version}.html" if base_url else ""


def _stage_notices(
    session: Session, pub: Publication, doc: dict, config: ScoringConfig, at: datetime, base_url: str, why: str
) -> int:
    people = session.execute(
        select(RoleAssignment.person_id, RoleAssignment.role)
        .join(Person, Person.id == RoleAssignment.person_id)
        .where(RoleAssignment.role.in_(RECIPIENT_ROLES), Person.active.is_(True))
        .order_by(RoleAssignment.person_id)
    )
    seen: dict[str, str] = {}
    for person, role in people:
        seen.setdefault(person, role)
    params = {
        "quarter": pub.period,
        "year": pub.period[:4],
        "objection_days": config.publishing.objection_days,
        "objection_until": doc["objection_until"] or "",
        "url": link(base_url, pub),
        "red": [r["name"] for r in doc["red_list"]][:10],
        "black": [r["name"] for r in doc["black_list"]][:10],
        "version": pub.version,
        "change_reason": why,
        "content_hash": pub.content_hash[:16],
    }
    if doc.get("watermark"):
        params["demo"] = True  # a posting of demo figures: its notices are never sent (notifications.dispatch)
    rows = [
        {
            "case_id": None,
            "recipient_id": person,
            "role": role,
            "template": TEMPLATES[pub.kind],
            "params": params,
            "urgent": False,
            "status": "pending",
            "attempts": 0,
            "channel_attempts": 0,
            "next_attempt_at": at,
            "created_at": at,
            "dedupe_key": f"posting:{pub.kind}:{pub.period}:v{pub.version}:{person}"[:150],
        }
        for person, role in seen.items()
    ]
    if rows:
        session.execute(insert(Outbox.__table__), rows)
    return len(rows)


# -- the document ---------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _signed(value: float | None) -> str:
    if value is None:
        return "—"
    return f"↑{value:.2f}" if value > 0 else (f"↓{-value:.2f}" if value < 0 else "持平")


def period_label(period: Period) -> str:
    if period.kind == "quarter":
        return f"{period.key[:4]}年第{'一二三四'[int(period.key[-1]) - 1]}季度"
    if period.kind == "year":
        return f"{period.key}年度"
    return f"{period.key[:4]}年{int(period.key[5:])}月"


def document(
    session: Session,
    kind: str,
    period: Period,
    run: ScoreRun,
    month_runs: list[tuple[Period, ScoreRun]],
    config: ScoringConfig,
    tz: ZoneInfo,
    version: int,
    at: datetime,
    until: datetime | None,
    changes: list[dict[str, Any]] | None,
    change_reason: str,
) -> dict[str, Any]:
    township = session.scalar(select(Place.name).where(Place.kind == "township")) or "乡镇"
    places = {p.id: p for p in session.scalars(select(Place))}
    rows = runs.scores(session, run)
    label = period_label(period)
    what = "网格化服务管理考评结果公示" if kind == "quarterly" else "网格化服务管理年度总结"
    doc: dict[str, Any] = {
        "kind": kind,
        "title": f"{township}{label}{what}",
        "township": township,
        "period": period.key,
        "period_label": label,
        "version": version,
        "published_at": f"{at.astimezone(tz):%Y-%m-%d %H:%M}",
        "objection_until": f"{until.astimezone(tz):%Y-%m-%d %H:%M}" if until else None,
        "objection_contact": f"{township}网格管理中心或所在村委会",
        "rules": f"{config.title} 第{run.config_version}版",
        "key_figures": _key_figures(run.summary),
        "trend": _trend(month_runs),
        "sections": _sections(rows, config, places) + _household_sections(session, run, config, places),
        "red_list": _listed(rows, "red", config, places),
        "black_list": _listed(rows, "black", config, places),
        "changes": changes or [],
        "change_reason": change_reason,
        "notes": _notes(config, run),
        "extra_sections": _annual_sections(session, month_runs, rows) if kind == "annual" else [],
    }
    demo = demo_repo.cases_in(session, run.period_start, run.period_end)
    if demo:  # figures of the demo township (`gridflow demo`): said in the title, on every page, in the notes
        doc["title"] = f"【{demo_repo.LABEL}】{doc['title']}"
        doc["watermark"] = f"{demo_repo.LABEL} · 非真实考评结果"
        doc["notes"].insert(
            0, f"本期数据含{demo}件演示案件（gridflow demo 生成的演示数据），不是真实考评结果，请勿转发。"
        )
    return doc


def _key_figures(summary: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    if summary.get("participation_rate"):
        item = summary["participation_rate"]
        detail = f"{int(item['numerator'] or 0)} / {int(item['denominator'] or 0)} 户"
        out.append({"label": "积分参与率", "value": _pct(item["value"]), "detail": detail})
    for name in KEY_FIGURES:
        item = summary.get(name)
        if item is None:
            continue
        ind = INDICATORS[name]
        if ind.kind == "rate":
            detail = f"{int(item['numerator'] or 0)} / {int(item['denominator'] or 0)}"
            out.append({"label": ind.label, "value": _pct(item["value"]), "detail": detail})
        elif ind.kind == "hours":
            out.append({"label": ind.label, "value": _num(item["value"], 1), "detail": f"{item['denominator']} 件"})
        else:
            out.append({"label": ind.label, "value": str(int(item["value"] or 0)), "detail": ""})
    return out


def _trend(month_runs: list[tuple[Period, ScoreRun]]) -> dict[str, Any]:
    points = []
    for month, run in month_runs:
        value = (run.summary.get("on_time_close_rate") or {}).get("value")
        points.append({"label": f"{month.start.month}月", "value": None if value is None else round(value * 100, 2)})
    return {"title": "月度按期结案率", "unit": "%", "points": points}


_COLUMNS = {
    "grid": (
        ("网格", None),
        ("所属村", None),
        ("案件数", None),
        ("按期结案率", "on_time_close_rate"),
        ("满意率", "satisfaction_rate"),
    ),
    "worker": (
        ("网格员", None),
        ("案件数", None),
        ("有效上报率", "valid_report_rate"),
        ("按期处置率", "on_time_handling_rate"),
    ),
    "village": (
        ("村", None),
        ("案件数", None),
        ("结案率", "close_rate"),
        ("按期结案率", "on_time_close_rate"),
        ("满意率", "satisfaction_rate"),
    ),
}
_GROUP_TITLES = {"residential": "居民网格", "unit": "单位网格", "all": ""}


def household_label(
    household: Household | None, household_id: str, config: ScoringConfig, places: dict[str, Place]
) -> str:
    """A household as a public posting names it: the head's name only where the township allows it,
    else its group (社) and file number."""
    if household is None:
        return household_id
    group = places[household.group_id].name if household.group_id in places else ""
    if config.publishing.show_household_names:
        return f"{group}{household.head_name}户"
    return f"{group}{household.id}号户" if group else f"{household.id}号户"


def _household_sections(session: Session, run: ScoreRun, config: ScoringConfig, places: dict[str, Place]) -> list:
    rows = runs.household_scores(session, run)
    if not rows:
        return []
    homes = {
        h.id: h
        for h in session.scalars(
            select(Household).where(Household.id.in_([r.household_id for r in rows if r.listed or r.stars]))
        )
    }

    def village(r: HouseholdScore) -> str:
        return places[r.village_id].name if r.village_id in places else r.village_id

    def name(r: HouseholdScore) -> str:
        return household_label(homes.get(r.household_id), r.household_id, config, places)

    red = [r for r in rows if r.listed == "red"]
    black = sorted((r for r in rows if r.listed == "black"), key=lambda r: (r.village_id, r.points))
    starred = [r for r in rows if r.stars]
    note = "积分按户档积分管理办法记录，更正在更正当期计入；户名按乡里规定公示"
    return [
        {
            "title": "户积分红榜（各村）",
            "note": note,
            "columns": ["村", "村内名次", "户", "本期积分", "累计积分", "星级"],
            "rows": [
                [village(r), str(r.rank_village), name(r), str(r.points), str(r.total), "、".join(r.stars) or "—"]
                for r in red
            ],
            "highlight": {str(i): "red" for i in range(len(red))},
        },
        {
            "title": "星级户（各村）",
            "note": "各类积分本期最高的户，并列同得",
            "columns": ["村", "星级", "户", "本期积分"],
            "rows": [[village(r), star, name(r), str(r.points)] for r in starred for star in r.stars],
            "highlight": {},
        },
        {
            "title": "户积分黑榜（各村）",
            "note": "本期积分为负的户",
            "columns": ["村", "户", "本期积分", "其中扣分"],
            "rows": [[village(r), name(r), str(r.points), str(r.deducted)] for r in black],
            "highlight": {str(i): "black" for i in range(len(black))},
        },
    ]


def display_name(row: Score, config: ScoringConfig) -> str:
    if row.subject_kind == "worker" and not config.publishing.show_worker_names:
        return row.name[:1] + "*" * max(1, len(row.name) - 1)
    return row.name


def _sections(rows: list[Score], config: ScoringConfig, places: dict[str, Place]) -> list[dict[str, Any]]:
    sections = []
    for kind in ("grid", "worker", "village"):
        subject = config.subjects.get(kind)
        label = subject.label if subject else kind
        groups: dict[str, list[Score]] = {}
        for row in rows:
            if row.subject_kind == kind:
                groups.setdefault(row.group_key, []).append(row)
        for group, members in sorted(groups.items()):
            members.sort(key=lambda r: (r.rank is None, r.rank or 0, -(r.composite or 0), r.subject_id))
            title = f"{label}排名" + (
                f"（{_GROUP_TITLES.get(group, places[group].name if group in places else group)}）"
                if group != "all"
                else ""
            )
            sections.append(
                {
                    "title": title,
                    "note": f"案件数少于{config.minimum_cases}件或无可计指标的列出但不排名",
                    "columns": ["名次", *(c for c, _ in _COLUMNS[kind]), "综合得分", "等级", "较上期"],
                    "rows": [_cells(r, kind, config, places) for r in members],
                    "highlight": {str(i): r.listed for i, r in enumerate(members) if r.listed},
                }
            )
    return sections


def _cells(row: Score, kind: str, config: ScoringConfig, places: dict[str, Place]) -> list[str]:
    parts = row.parts or {}
    cells = [str(row.rank) if row.rank else "—"]
    for title, rate in _COLUMNS[kind]:
        if title in ("网格", "网格员", "村"):
            cells.append(display_name(row, config))
        elif title == "所属村":
            village = places.get(row.subject_id)
            cells.append(places[village.village_id].name if village and village.village_id in places else "—")
        elif title == "案件数":
            cells.append(str(row.cases))
        else:
            cells.append(_pct((parts.get(rate) or {}).get("rate")) if rate in parts else "—")
    cells += [_num(row.composite), row.grade or "—", _signed(row.change)]
    return cells


def _listed(rows: list[Score], which: str, config: ScoringConfig, places: dict[str, Place]) -> list[dict[str, str]]:
    labels = {kind: s.label for kind, s in config.subjects.items()}
    out = [r for r in rows if r.listed == which]
    out.sort(key=lambda r: (r.subject_kind, -(r.composite or 0) if which == "red" else (r.composite or 0)))
    return [
        {
            "group": labels.get(r.subject_kind, r.subject_kind),
            "name": display_name(r, config),
            "score": _num(r.composite),
            "grade": r.grade or "—",
        }
        for r in out
    ]


def _notes(config: ScoringConfig, run: ScoreRun) -> list[str]:
    weights = []
    for subject in config.subjects.values():
        parts = "、".join(f"{INDICATORS[n].label}{w:g}" for n, w in subject.weights.items())
        weights.append(f"{subject.label}：{parts}")
    notes = [
        "综合得分为各项指标的加权平均（百分制），返工率等越低越好的指标按（1－比率）计；某项指标当期无数据时不计入，权重按其余指标折算。",
        "权重：" + "；".join(weights) + "。",
        "等级：" + "、".join(f"{name}≥{floor:g}" for name, floor in config.grades) + "，其余为E。",
        f"红榜为各组前{config.red}名，黑榜为全体后{config.black}名；案件数少于{config.minimum_cases}件的不参加排名。",
        "时限按工作日历计算（法定节假日及调休已计入），挂起期间不计时；数据截至统计期末。",
    ]
    if run.exempt:
        notes.append(f"经异议核实，{len(run.exempt)}件案件已核减，不计入本期指标。")
    return notes


def _annual_sections(session: Session, month_runs: list[tuple[Period, ScoreRun]], rows: list[Score]) -> list:
    trend_rows = []
    for month, run in month_runs:
        s = run.summary
        trend_rows.append(
            [
                f"{month.start.month}月",
                str(int((s.get("reported") or {}).get("value") or 0)),
                str(int((s.get("closed") or {}).get("value") or 0)),
                _pct((s.get("close_rate") or {}).get("value")),
                _pct((s.get("on_time_close_rate") or {}).get("value")),
                _pct((s.get("satisfaction_rate") or {}).get("value")),
            ]
        )
    best = [r for r in rows if r.subject_kind == "grid" and r.ranked]
    best.sort(key=lambda r: (-(r.composite or 0), r.subject_id))
    return [
        {
            "title": "月度走势",
            "note": "",
            "columns": ["月份", "上报数", "结案数", "结案率", "按期结案率", "满意率"],
            "rows": trend_rows,
            "highlight": {},
        },
        {
            "title": "年度十佳网格",
            "note": "按年度综合得分",
            "columns": ["名次", "网格", "综合得分", "等级"],
            "rows": [
                [str(_tied_rank(best, i)), r.name, _num(r.composite), r.grade or "—"] for i, r in enumerate(best[:10])
            ],
            "highlight": {},
        },
    ]


def _tied_rank(rows: list[Score], index: int) -> int:
    """Competition rank in a list sorted by composite: equal composites share a place."""
    while index and rows[index - 1].composite == rows[index].composite:
        index -= 1
    return index + 1


# -- objections -----------------------------------------------------------------------------------


def lodge(
    session: Session,
    kind: str,
    period: str,
    subject: str,
    case_codes: list[str],
    by: str,
    reason: str,
    at: datetime,
    tz: ZoneInfo | None = None,
    entries: list[int] | None = None,
) -> Objection:
    """Record an objection to the current posting; only inside its window. A household's objection
    names ledger entries (``entries``) instead of cases."""
    at = require_aware(at)
    pub = current(session, kind, period)
    if pub is None:
        raise NotFound(f"no {kind} posting of {period}; `gridflow publish show` lists the postings")
    if pub.objection_until is None:
        raise PostingRejected(f"the {kind} posting of {period} has no objection window")
    if at > pub.objection_until:
        closed = pub.objection_until.astimezone(tz) if tz else pub.objection_until
        raise PostingRejected(
            f"the objection window (公示期) of {period} closed at {closed:%Y-%m-%d %H:%M %Z}; nothing was recorded"
        )
    if not reason.strip():
        raise PostingRejected("say why (--reason): an objection needs a reason")
    if not by.strip():
        raise PostingRejected("say who objects (--by): a name or a unit")
    subject_kind, _, subject_id = subject.partition(":")
    run = session.get(ScoreRun, pub.run_id)
    assert run is not None
    if subject_kind == "household":
        known = session.scalar(
            select(func.count())
            .select_from(HouseholdScore)
            .where(HouseholdScore.run_id == pub.run_id, HouseholdScore.household_id == subject_id)
        )
    else:
        known = session.scalar(
            select(func.count())
            .select_from(Score)
            .where(Score.run_id == pub.run_id, Score.subject_kind == subject_kind, Score.subject_id == subject_id)
        )
    if not known:
        raise PostingRejected(
            f"{subject!r} is not in the posting; write it as kind:id, e.g. grid:mayingtai-01, worker:p-an-yixuan, "
            "village:mayingtai, household:MYT-01-0012 (`gridflow score show --period ...` lists them)"
        )
    if subject_kind == "household":
        if case_codes:
            raise PostingRejected("a household's objection names ledger entries (--entry N), not cases")
        disputed = [_disputed_entry(session, entry, subject_id, run) for entry in entries or []]
    else:
        if entries:
            raise PostingRejected("ledger entries (--entry) are disputed in a household's objection only")
        disputed = [_disputed(session, code, subject_kind, subject_id, run) for code in case_codes]
    objection = Objection(
        publication_id=pub.id,
        subject_kind=subject_kind,
        subject_id=subject_id,
        case_ids=disputed,
        lodged_by=by.strip()[:100],
        lodged_at=at,
        reason=reason.strip(),
        status="lodged",
    )
    session.add(objection)
    session.flush()
    return objection


def _disputed_entry(session: Session, entry_id: int, household_id: str, run: ScoreRun) -> int:
    entry = session.get(PointsEntry, entry_id)
    if entry is None or entry.household_id != household_id:
        raise PostingRejected(
            f"no ledger entry #{entry_id} of household {household_id}; `gridflow points list "
            f"--household {household_id}` shows its entries"
        )
    return entry.id


def _disputed(session: Session, code: str, kind: str, subject: str, run: ScoreRun) -> int:
    """A disputed case must exist, count in the posting's period, and belong to the subject objected for."""
    case = session.scalar(select(Case).where(Case.code == code))
    if case is None:
        raise PostingRejected(f"no case {code!r}; `gridflow case list` shows the cases")
    if case.reported_at >= run.period_end or (case.closed_at is not None and case.closed_at < run.period_start):
        raise PostingRejected(f"case {code} does not count in {run.period}: it was not open during the period")
    village = (run.org or {}).get("grid_village", {}).get(case.grid_id)
    handlers = set(session.scalars(select(SlaClock.assignee_id).where(SlaClock.case_id == case.id)))
    belongs = {
        "grid": case.grid_id == subject,
        "village": village == subject,
        "worker": case.reporter_id == subject or subject in handlers,
    }.get(kind, False)
    if not belongs:
        raise PostingRejected(
            f"case {code} is not one of {kind}:{subject}'s cases; name the cases the objection is about"
        )
    return case.id


def decide(
    session: Session,
    objection_id: int,
    uphold: bool,
    by: str,
    note: str,
    at: datetime,
    tz: ZoneInfo,
    base_url: str = "",
) -> Published | None:
    """Reject, or uphold: exempt the disputed cases, recompute, and publish the next version."""
    at = require_aware(at)
    objection = session.get(Objection, objection_id)
    if objection is None:
        raise NotFound(f"no objection #{objection_id}; `gridflow publish show` lists them")
    if not note.strip():
        raise PostingRejected("give the decision's grounds (--note)")
    status = "upheld" if uphold else "rejected"
    taken = session.execute(  # one decision wins, even when two are taken at once
        update(Objection)
        .where(Objection.id == objection_id, Objection.status == "lodged")
        .values(status=status, decided_at=at, decided_by=by.strip()[:100], decision=note.strip())
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(objection)
    if taken != 1:
        raise PostingRejected(f"objection #{objection_id} was already decided ({objection.status})")
    if not uphold:
        return None
    lodged_against = session.get(Publication, objection.publication_id)
    assert lodged_against is not None
    exemption, column = (
        (PointsExemption, PointsExemption.entry_id)
        if objection.subject_kind == "household"
        else (ScoreExemption, ScoreExemption.case_id)
    )
    for disputed in objection.case_ids:
        exists = session.scalar(
            select(exemption.id).where(column == disputed, exemption.period == lodged_against.period)
        )
        if exists is None:
            key = "entry_id" if exemption is PointsExemption else "case_id"
            session.add(
                exemption(
                    **{key: disputed}, period=lodged_against.period, objection_id=objection.id, reason=note, at=at
                )
            )
    session.flush()
    period = runs.period_from_key(lodged_against.period)
    latest = current(session, lodged_against.kind, lodged_against.period)  # v2 may exist already: diff against it
    assert latest is not None
    old_run = session.get(ScoreRun, latest.run_id)
    assert old_run is not None
    posted = runs.config_for(session, old_run.config_version)  # recompute with the rules it was posted with
    why = f"objection #{objection.id} upheld"
    for month in months_of(period):
        runs.score_period(session, month, at, posted, tz, why)
    new_run = runs.score_period(session, period, at, posted, tz, why)
    changes = diff(session, old_run, new_run, posted)
    # the decision's note stays internal (it may name residents); the posting says only what happened
    reason = f"异议第{objection.id}号经核实成立，相关案件已核减并重新计算"
    published = publish(session, latest.kind, period, at, posted, tz, why, base_url, changes, reason)
    objection.republished_id = published.publication.id
    session.flush()
    return published


def diff(session: Session, old: ScoreRun, new: ScoreRun, config: ScoringConfig) -> list[dict[str, Any]]:
    """What changed between two runs: the township's key figures, and per subject its composite,
    grade, rank and list (names as the posting shows them)."""
    out = []
    for item_old, item_new in zip(_key_figures(old.summary), _key_figures(new.summary), strict=True):
        before_text = f"{item_old['value']} {item_old['detail']}".strip()
        after_text = f"{item_new['value']} {item_new['detail']}".strip()
        if before_text != after_text:
            out.append({"subject": "全乡", "what": item_new["label"], "before": before_text, "after": after_text})
    before = {(s.subject_kind, s.subject_id): s for s in runs.scores(session, old)}
    for row in runs.scores(session, new):
        was = before.get((row.subject_kind, row.subject_id))
        if was is None:
            continue
        for what, a, b in (
            ("综合得分", _num(was.composite), _num(row.composite)),
            ("等级", was.grade or "—", row.grade or "—"),
            ("名次", str(was.rank or "—"), str(row.rank or "—")),
            ("榜单", _list_label(was.listed), _list_label(row.listed)),
        ):
            if a != b:
                out.append({"subject": display_name(row, config), "what": what, "before": a, "after": b})
    return out + _household_changes(session, old, new, config)


def _household_changes(session: Session, old: ScoreRun, new: ScoreRun, config: ScoringConfig) -> list[dict[str, Any]]:
    before = {h.household_id: h for h in runs.household_scores(session, old)}
    changed = []
    for row in runs.household_scores(session, new):
        was = before.get(row.household_id)
        if was is None:
            continue
        for what, a, b in (
            ("本期积分", str(was.points), str(row.points)),
            ("村内名次", str(was.rank_village or "—"), str(row.rank_village or "—")),
            ("星级", "、".join(was.stars) or "—", "、".join(row.stars) or "—"),
            ("榜单", _list_label(was.listed), _list_label(row.listed)),
        ):
            if a != b:
                changed.append((row, what, a, b))
    if not changed:
        return []
    places = {p.id: p for p in session.scalars(select(Place))}
    homes = {
        h.id: h
        for h in session.scalars(select(Household).where(Household.id.in_({c[0].household_id for c in changed})))
    }
    return [
        {
            "subject": household_label(homes.get(r.household_id), r.household_id, config, places),
            "what": what,
            "before": a,
            "after": b,
        }
        for r, what, a, b in changed
    ]


def _list_label(listed: str | None) -> str:
    return {"red": "红榜", "black": "黑榜"}.get(listed or "", "—")


def objections(session: Session, kind: str | None = None, period: str | None = None) -> list[Objection]:
    stmt = select(Objection).join(Publication, Publication.id == Objection.publication_id).order_by(Objection.id)
    if kind:
        stmt = stmt.where(Publication.kind == kind)
    if period:
        stmt = stmt.where(Publication.period == period)
    return list(session.scalars(stmt))
