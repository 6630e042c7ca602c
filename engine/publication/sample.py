"""A realistic sample posting document — 胜利乡, 2026, made-up figures — for tests and previews.

The figures are invented but hang together the way a real posting's do. Every grid gets case
counts for each month since the system went live (March 2026); a quarter and the year are sums of
months, a village is the sum of its grids, the township the sum of all. A rate is a count over a
count ("—" when the count below is 0), the composite score is the weighted mean of the rates with
the weights of ``config/scoring.yaml``, the grade follows its bands, 较上期 is the difference from
the quarter before, the red and black lists are the rows the tables mark, and version 2 of the
quarterly posting (after an upheld objection) lists exactly what differs from version 1.

The same call always returns the same document (a seeded generator), so its hash is stable.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import astuple, dataclass

TOWNSHIP = "胜利乡"
YEAR = 2026
FIRST_MONTH = 3  # the system went live in March 2026
QUARTER_MONTHS = (10, 11, 12)
MONTH_CASES = {3: 236, 4: 288, 5: 305, 6: 318, 7: 330, 8: 325, 9: 322, 10: 338, 11: 327, 12: 331}
MINIMUM_CASES = 3
LIST_SIZE = 5
GRADES = (("A", 90.0), ("B", 75.0), ("C", 60.0), ("D", 40.0))  # below the last band: E
GRID_WEIGHTS = {"on_time": 30, "closed": 15, "responded": 15, "satisfied": 25, "not_reworked": 15}
WORKER_WEIGHTS = {"valid": 40, "responded": 15, "handled_on_time": 30, "not_reworked": 15}
VILLAGE_WEIGHTS = {"on_time": 35, "closed": 15, "satisfied": 35, "not_reworked": 15}
RULES = "胜利乡网格化服务管理考评办法 第1版"
CONTACT = "乡网格管理中心（电话见公告栏）或所在村委会"

# village → the grid worker of its 第1, 第2 … 单元格 (config/org/shengli.yaml)
VILLAGES = {
    "马营台村": (
        "安怡萱",
        "王红梅",
        "曾燕",
        "刘玉兰",
        "唐丽娟",
        "吴佳怡",
        "徐斌",
        "罗桂芳",
        "袁天文",
        "文建华",
        "李涛",
        "李佳怡",
    ),
    "迪坪村": (
        "熊永福",
        "唐仕林",
        "熊德明",
        "蒲刚",
        "何永福",
        "张光荣",
        "陈梦瑶",
        "杨春梅",
        "岳霞",
        "熊小琴",
        "彭小芳",
    ),
    "青龙村": (
        "赵涛",
        "黄兴旺",
        "徐明超",
        "邓明亮",
        "邓志刚",
        "母朝贵",
        "岳昌平",
        "曾勇",
        "冉学军",
        "曾浩然",
        "冯丽娟",
    ),
    "白果村": (
        "胡天文",
        "张昌平",
        "赵仕林",
        "胡雪梅",
        "黄军",
        "向学军",
        "杜仕林",
        "杨家富",
        "彭文斌",
        "张永福",
        "徐光荣",
    ),
    "双河村": ("向开学", "刘刚", "胡荣华", "马刚", "徐敏", "谭朝贵", "赵荣华", "母德明", "彭刚", "周子涵", "袁佳怡"),
    "红岩村": ("陈玉兰", "周斌", "彭涛", "冉天文", "罗俊杰", "陈仕林", "胡静", "周小芳", "陈光荣", "母小琴"),
}
UNIT_GRIDS = {"乡机关单元格": "任开学", "中心小学单元格": "苟德明", "卫生院单元格": "谭明超"}
UNITS = "辖区单位"
# How well a grid and its worker do (0–1) where the sample wants a known outcome: the names the
# notification samples put on the red and black lists.
PINNED = {"安怡萱": 0.97, "王红梅": 0.955, "曾燕": 0.945, "吴佳怡": 0.5, "徐斌": 0.41}
# Small cells with a fixed number of cases a month (Oct, Nov, Dec: fewer than 3, listed not ranked).
FEW_CASES = {"红岩村第10单元格": {10: 1, 11: 0, 12: 1}, "卫生院单元格": {10: 0, 11: 1, 12: 0}}
# Version 2: objection no. 3 upheld — one late case of 马营台村第6单元格 in November was not its own.
CORRECTED_GRID = "马营台村第6单元格"
CORRECTED_CASE = "SL-2026-000123"


@dataclass(frozen=True)
class Counts:
    """A grid's (or a sum of grids') counts for a period; every rate is one count over another."""

    cases: int = 0  # 立案
    due: int = 0  # 应结案
    closed: int = 0  # 结案
    on_time: int = 0  # 按期结案
    responded: int = 0  # 按时响应
    rated: int = 0  # 回访评价
    satisfied: int = 0  # 满意、基本满意
    reworked: int = 0  # 返工
    reported: int = 0  # 网格员上报
    valid: int = 0  # 有效上报
    handled_on_time: int = 0  # 按期处置

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def __sub__(self, other: Counts) -> Counts:
        return Counts(*(a - b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def rates(self) -> dict[str, float | None]:
        return {
            "closed": _ratio(self.closed, self.due),
            "on_time": _ratio(self.on_time, self.due),
            "responded": _ratio(self.responded, self.cases),
            "satisfied": _ratio(self.satisfied, self.rated),
            "reworked": _ratio(self.reworked, self.closed),
            "not_reworked": None if self.closed == 0 else 1 - self.reworked / self.closed,
            "valid": _ratio(self.valid, self.reported),
            "handled_on_time": _ratio(self.handled_on_time, self.due),
        }


@dataclass(frozen=True)
class Grid:
    name: str
    village: str  # 辖区单位 for the unit cells
    worker: str


@dataclass(frozen=True)
class Subject:
    """One row of a ranking: who, where, the period's counts and the period before's."""

    name: str
    place: str
    counts: Counts
    before: Counts | None
    weights: dict[str, int]
    size: int  # the count the minimum applies to

    @property
    def score(self) -> float | None:
        return _composite(self.counts, self.weights)

    @property
    def ranked(self) -> bool:
        return self.size >= MINIMUM_CASES and self.score is not None


def sample_document(kind: str = "quarterly", version: int = 1) -> dict:
    """The 2026Q4 posting (version 1, or 2 after an upheld objection) or the 2026 annual summary."""
    if kind == "quarterly" and version in (1, 2):
        return _quarterly(version)
    if kind == "annual" and version == 1:
        return _annual()
    raise ValueError(f"no sample {kind!r} version {version}: quarterly (version 1 or 2) or annual (version 1)")


# --- the documents ----------------------------------------------------------------------------


def _quarterly(version: int) -> dict:
    months = _months(corrected=version > 1)
    now, before = _sum_months(months, QUARTER_MONTHS), _sum_months(months, (7, 8, 9))
    doc = _document("quarterly", f"{YEAR}Q4", f"{YEAR}年第四季度", now, before)
    doc["trend"]["points"] = [_trend_point(months, m) for m in QUARTER_MONTHS]
    doc["key_figures"] = _key_figures(_township(now), objections=None)
    doc.update(version=1, published_at="2027-01-01 03:00", objection_until="2027-01-08 03:00")
    if version == 1:
        return doc
    first = _quarterly(1)
    doc.update(version=2, published_at="2027-01-09 10:00", objection_until="2027-01-16 10:00")
    doc["changes"] = _document_changes(first, doc)
    doc["change_reason"] = (
        f"异议第3号经核实成立：案件 {CORRECTED_CASE} 属县水务部门职责，误计入{CORRECTED_GRID}，予以核减。"
        "下表列出数据有变化的对象（较上期随综合得分相应变化），其余对象名次相应调整；公示期自本版发布之日起重新计算。"
    )
    return doc


def _annual() -> dict:
    months = _months(corrected=True)
    year = _sum_months(months, tuple(MONTH_CASES))
    doc = _document("annual", str(YEAR), f"{YEAR}年度", year, None)
    doc["title"] = f"{TOWNSHIP}{YEAR}年度网格化服务管理考评结果（年度总结）"
    doc["trend"]["points"] = [_trend_point(months, m) for m in range(1, 13)]
    doc["key_figures"] = _key_figures(_township(year), objections=(7, 2))
    doc.update(published_at="2027-01-20 09:00", objection_until=None)
    doc["extra_sections"] = [_villages_year(year), _quarters(months)]
    doc["notes"] = [*doc["notes"], f"系统于{YEAR}年3月上线，1—2月无数据；全年数据为3—12月合计。"]
    return doc


def _document(kind: str, period: str, label: str, now: dict[str, Counts], before: dict[str, Counts] | None) -> dict:
    grids = _grids()
    residential = [_grid_subject(g, now, before) for g in grids if g.village != UNITS]
    units = [_grid_subject(g, now, before) for g in grids if g.village == UNITS]
    workers = [_worker_subject(g, now, before) for g in grids]
    villages = [_village_subject(v, now, before) for v in VILLAGES]
    red, black = _lists(residential, workers)
    with_change = before is not None
    tables = [
        ("网格排名（居民网格）", "案件数少于3件的网格列出但不排名", GRID_COLUMNS, _grid_cells, residential),
        ("网格排名（辖区单位网格）", "辖区单位网格与居民网格分开排名", GRID_COLUMNS, _grid_cells, units),
        ("网格员排名", "上报数少于3件的网格员列出但不排名", WORKER_COLUMNS, _worker_cells, workers),
        ("村排名", "", VILLAGE_COLUMNS, _village_cells, villages),
    ]
    return {
        "kind": kind,
        "title": f"{TOWNSHIP}{label}网格化服务管理考评结果公示",
        "township": TOWNSHIP,
        "period": period,
        "period_label": label,
        "version": 1,
        "published_at": "",
        "objection_until": None,
        "objection_contact": CONTACT,
        "rules": RULES,
        "key_figures": [],
        "trend": {"title": "月度按期结案率", "unit": "%", "points": []},
        "sections": [_section(*t, red, black, with_change) for t in tables],
        "red_list": [_entry(group, s) for group, s in red],
        "black_list": [_entry(group, s) for group, s in black],
        "changes": [],
        "change_reason": "",
        "notes": _notes(with_change),
        "extra_sections": [],
    }


def _notes(with_change: bool) -> list[str]:
    notes = [
        "综合得分为各项指标的加权平均（满分100）：网格按 按期结案率30%、结案率15%、响应率15%、满意率25%、"
        "（1−返工率）15%；网格员按 有效上报率40%、响应率15%、按期处置率30%、（1−返工率）15%；"
        "村按 按期结案率35%、结案率15%、满意率35%、（1−返工率）15%。某项无数据（分母为0）的不计入，按其余各项折算。",
        "等级：A ≥ 90，B ≥ 75，C ≥ 60，D ≥ 40，其余为E。",
        "红榜为居民网格、网格员各前5名；黑榜为居民网格、网格员各综合得分最低的5名（已列红榜的除外）。",
        "比率显示“—”表示该项本期无数据。",
    ]
    if with_change:
        notes.append("较上期：与上一季度综合得分之差，↑为上升，↓为下降。")
    return notes


# --- the months -------------------------------------------------------------------------------


def _grids() -> list[Grid]:
    grids = [Grid(f"{v}第{i}单元格", v, w) for v, workers in VILLAGES.items() for i, w in enumerate(workers, 1)]
    return grids + [Grid(name, UNITS, worker) for name, worker in UNIT_GRIDS.items()]


def _months(corrected: bool) -> dict[int, dict[str, Counts]]:
    """Every grid's counts for every month since go-live, from one seeded generator."""
    rng = random.Random(YEAR)
    grids = _grids()
    quality = {g.name: PINNED.get(g.worker, 0.56 + 0.3 * rng.random()) for g in grids}
    weight = {g.name: (0.35 if g.village == UNITS else 0.6 + 0.8 * rng.random()) for g in grids}
    months = {}
    for month, total in MONTH_CASES.items():
        cases = _allocate(total, month, weight)
        drift = 0.008 * (month - FIRST_MONTH)  # the township gets better at it over the year
        months[month] = {g: _counts(rng, min(0.99, quality[g] + drift), n) for g, n in cases.items()}
    if corrected:
        november = months[11]
        november[CORRECTED_GRID] = _without_late_case(november[CORRECTED_GRID])
    return months


def _allocate(total: int, month: int, weight: dict[str, float]) -> dict[str, int]:
    """``total`` cases over the grids by weight (largest remainder); the small cells get their fixed number."""
    fixed = {g: FEW_CASES[g].get(month, 1) for g in weight if g in FEW_CASES}
    free = {g: w for g, w in weight.items() if g not in fixed}
    left = total - sum(fixed.values())
    shares = {g: left * w / sum(free.values()) for g, w in free.items()}
    cases = {g: int(s) for g, s in shares.items()}
    by_remainder = sorted(free, key=lambda g: (cases[g] - shares[g], g))
    for g in by_remainder[: left - sum(cases.values())]:
        cases[g] += 1
    return {g: fixed.get(g, cases.get(g, 0)) for g in weight}


def _counts(rng: random.Random, quality: float, cases: int) -> Counts:
    def share(of: int, chance: float) -> int:  # how many of ``of`` cases turn out so
        return sum(rng.random() < chance for _ in range(of))

    due = cases - share(cases, 0.03)
    closed = share(due, quality + 0.12)
    rated = closed - share(closed, 0.06)
    reported = share(cases, 0.55 + 0.3 * quality) + share(cases, 0.1)
    return Counts(
        cases=cases,
        due=due,
        closed=closed,
        on_time=share(closed, quality / (quality + 0.12)),
        responded=share(cases, quality + 0.1),
        rated=rated,
        satisfied=share(rated, quality + 0.08),
        reworked=share(closed, (1 - quality) * 0.3),
        reported=reported,
        valid=share(reported, quality + 0.06),
        handled_on_time=share(due, quality - 0.02),
    )


def _without_late_case(counts: Counts) -> Counts:
    """The counts less one case that was closed late and rated 不满意."""
    late = Counts(cases=1, due=1, closed=1, responded=1, rated=1, handled_on_time=0)
    corrected = counts - late
    if min(astuple(corrected)) < 0 or corrected.on_time > corrected.closed or corrected.satisfied > corrected.rated:
        raise AssertionError(f"the sample's {CORRECTED_GRID} has no late, unsatisfied case to take away: {counts}")
    return corrected


def _sum_months(months: dict[int, dict[str, Counts]], which: tuple[int, ...]) -> dict[str, Counts]:
    return {g: sum((months[m][g] for m in which), Counts()) for g in months[which[0]]}


def _township(grids: dict[str, Counts]) -> Counts:
    return sum(grids.values(), Counts())


def _trend_point(months: dict[int, dict[str, Counts]], month: int) -> dict:
    if month not in months:
        return {"label": f"{month}月", "value": None}
    township = _township(months[month])
    return {"label": f"{month}月", "value": round(100 * township.on_time / township.due, 2)}


# --- scores, subjects, rankings ---------------------------------------------------------------


def _composite(counts: Counts, weights: dict[str, int]) -> float | None:
    """The weighted mean of the rates (in percent) that have data; None when none has."""
    rates = counts.rates()
    present = {k: w for k, w in weights.items() if rates[k] is not None}
    if not present:
        return None
    return round(sum(100 * rates[k] * w for k, w in present.items()) / sum(present.values()), 2)


def _grade(score: float | None) -> str:
    if score is None:
        return "—"
    return next((name for name, floor in GRADES if score >= floor), "E")


def _grid_subject(grid: Grid, now: dict[str, Counts], before: dict[str, Counts] | None) -> Subject:
    counts = now[grid.name]
    earlier = before[grid.name] if before else None
    return Subject(grid.name, grid.village, counts, earlier, GRID_WEIGHTS, counts.cases)


def _worker_subject(grid: Grid, now: dict[str, Counts], before: dict[str, Counts] | None) -> Subject:
    counts = now[grid.name]
    earlier = before[grid.name] if before else None
    return Subject(grid.worker, grid.name, counts, earlier, WORKER_WEIGHTS, counts.reported)


def _village_subject(village: str, now: dict[str, Counts], before: dict[str, Counts] | None) -> Subject:
    names = [f"{village}第{i}单元格" for i in range(1, len(VILLAGES[village]) + 1)]
    counts = sum((now[n] for n in names), Counts())
    earlier = sum((before[n] for n in names), Counts()) if before else None
    return Subject(village, str(len(names)), counts, earlier, VILLAGE_WEIGHTS, counts.cases)


def _ranked(subjects: list[Subject]) -> list[tuple[str, Subject]]:
    """Ranked subjects best first (equal scores share a rank), then the unranked ones with rank "—"."""
    ranked = sorted((s for s in subjects if s.ranked), key=lambda s: (-(s.score or 0), s.name))
    out: list[tuple[str, Subject]] = []
    for index, subject in enumerate(ranked):
        same = index and ranked[index - 1].score == subject.score
        out.append((out[-1][0] if same else str(index + 1), subject))
    return out + [("—", s) for s in subjects if not s.ranked]


def _lists(grids: list[Subject], workers: list[Subject]) -> tuple[list, list]:
    """Red: rank 1–5 of each group (ties included); black: the five lowest of each (ties included,
    never one already red), lowest first."""
    red, black = [], []
    for group, subjects in (("网格", grids), ("网格员", workers)):
        ranked = [(int(rank), s) for rank, s in _ranked(subjects) if s.ranked]
        red += [(group, s) for rank, s in ranked if rank <= LIST_SIZE]
        floor = ranked[-LIST_SIZE][1].score
        black += [(group, s) for rank, s in reversed(ranked) if s.score <= floor and rank > LIST_SIZE]
    return red, black


def _entry(group: str, subject: Subject) -> dict:
    return {"group": group, "name": subject.name, "score": _score(subject.score), "grade": _grade(subject.score)}


# --- tables -----------------------------------------------------------------------------------

GRID_COLUMNS = ["名次", "网格", "所属村", "案件数", "按期结案率", "满意率", "综合得分", "等级"]
WORKER_COLUMNS = ["名次", "网格员", "所在网格", "上报数", "有效上报率", "按期处置率", "综合得分", "等级"]
VILLAGE_COLUMNS = ["名次", "村", "网格数", "案件数", "结案率", "按期结案率", "满意率", "综合得分", "等级"]


def _grid_cells(s: Subject) -> list[str]:
    rates = s.counts.rates()
    return [s.name, s.place, str(s.counts.cases), _percent(rates["on_time"]), _percent(rates["satisfied"])]


def _worker_cells(s: Subject) -> list[str]:
    rates = s.counts.rates()
    return [s.name, s.place, str(s.counts.reported), _percent(rates["valid"]), _percent(rates["handled_on_time"])]


def _village_cells(s: Subject) -> list[str]:
    rates = s.counts.rates()
    cells = [rates["closed"], rates["on_time"], rates["satisfied"]]
    return [s.name, s.place, str(s.counts.cases), *map(_percent, cells)]


def _section(
    title: str,
    note: str,
    columns: list[str],
    cells: Callable[[Subject], list[str]],
    subjects: list[Subject],
    red: list[tuple[str, Subject]],
    black: list[tuple[str, Subject]],
    with_change: bool,
) -> dict:
    rows, highlight = [], {}
    marks = {s.name: "red" for _, s in red} | {s.name: "black" for _, s in black}
    for index, (rank, subject) in enumerate(_ranked(subjects)):
        row = [rank, *cells(subject), _score(subject.score), _grade(subject.score)]
        rows.append(row + [_change(subject)] if with_change else row)
        if subject.name in marks:
            highlight[str(index)] = marks[subject.name]
    section = {"title": title, "columns": columns + (["较上期"] if with_change else []), "rows": rows}
    return section | ({"note": note} if note else {}) | ({"highlight": highlight} if highlight else {})


def _change(subject: Subject) -> str:
    before = _composite(subject.before, subject.weights) if subject.before else None
    if before is None or subject.score is None:
        return "—"
    delta = round(subject.score - before, 2)
    return "持平" if delta == 0 else f"{'↑' if delta > 0 else '↓'}{abs(delta):.2f}"


def _key_figures(counts: Counts, objections: tuple[int, int] | None) -> list[dict]:
    rates = counts.rates()

    def rate(label: str, key: str, num: int, den: int) -> dict:
        return {"label": label, "value": _percent(rates[key]), "detail": f"{num} / {den}"}

    figures = [
        {"label": "立案数", "value": str(counts.cases), "detail": ""},
        {"label": "应结案数", "value": str(counts.due), "detail": ""},
        rate("结案率", "closed", counts.closed, counts.due),
        rate("按期结案率", "on_time", counts.on_time, counts.due),
        rate("响应率", "responded", counts.responded, counts.cases),
        rate("满意率", "satisfied", counts.satisfied, counts.rated),
        rate("返工率", "reworked", counts.reworked, counts.closed),
        {
            "label": "参评网格",
            "value": str(len(_grids())),
            "detail": f"居民{len(_grids()) - len(UNIT_GRIDS)}个·单位{len(UNIT_GRIDS)}个",
        },
    ]
    if objections:
        lodged, upheld = objections
        figures += [
            {"label": "上报数", "value": str(counts.reported), "detail": f"有效 {counts.valid}"},
            {"label": "公示异议", "value": f"{lodged}件", "detail": f"经核实成立{upheld}件"},
        ]
    return figures


def _villages_year(year: dict[str, Counts]) -> dict:
    rows = []
    for village in VILLAGES:
        c = _village_subject(village, year, None).counts
        rates = c.rates()
        cells = [str(c.reported), str(c.cases), str(c.closed), *map(_percent, [rates["closed"], rates["on_time"]])]
        rows.append([village, str(len(VILLAGES[village])), *cells, _percent(rates["satisfied"])])
    columns = ["村", "网格数", "上报数", "立案数", "结案数", "结案率", "按期结案率", "满意率"]
    return {"title": "各村年度数据", "columns": columns, "rows": rows}


def _quarters(months: dict[int, dict[str, Counts]]) -> dict:
    rows = []
    for number, which in enumerate(((3,), (4, 5, 6), (7, 8, 9), (10, 11, 12)), 1):
        c = _township(_sum_months(months, which))
        rates = c.rates()
        keys = ("closed", "on_time", "satisfied")
        rows.append(
            [f"第{'一二三四'[number - 1]}季度", str(c.cases), str(c.closed), *(_percent(rates[k]) for k in keys)]
        )
    columns = ["季度", "立案数", "结案数", "结案率", "按期结案率", "满意率"]
    return {"title": "各季度数据", "note": "第一季度仅3月（系统上线当月）", "columns": columns, "rows": rows}


# --- what changed between two versions -------------------------------------------------------


def _document_changes(old: dict, new: dict) -> list[dict]:
    """What a reader of ``old`` finds different in ``new``: key figures, table rows, list places."""
    changes = [_figure_change(a, b) for a, b in zip(old["key_figures"], new["key_figures"], strict=True)]
    for a, b in zip(old["sections"], new["sections"], strict=True):
        changes += _row_changes(a, b)
    changes += _list_changes(old, new)
    return [c for c in changes if c]


def _figure_change(old: dict, new: dict) -> dict | None:
    def text(f: dict) -> str:
        return f"{f['value']}（{f['detail']}）" if f["detail"] else f["value"]

    if text(old) == text(new):
        return None
    return {"subject": f"全{TOWNSHIP[-1]}", "what": new["label"], "before": text(old), "after": text(new)}


def _row_changes(old: dict, new: dict) -> list[dict]:
    """Each changed cell of a row whose figures changed (a row whose rank alone moved is left out)."""
    before = {row[1]: row for row in old["rows"]}
    out = []
    for row in new["rows"]:
        was = before[row[1]]
        moved = [i for i in range(2, len(row)) if row[i] != was[i] and new["columns"][i] != "较上期"]
        if moved:
            shown = ([0] if row[0] != was[0] else []) + moved
            out += [{"subject": row[1], "what": new["columns"][i], "before": was[i], "after": row[i]} for i in shown]
    return out


def _list_changes(old: dict, new: dict) -> list[dict]:
    out = []
    for key, board in (("red_list", "红榜"), ("black_list", "黑榜")):
        was, now = {e["name"] for e in old[key]}, {e["name"] for e in new[key]}
        out += [{"subject": n, "what": board, "before": "列入", "after": "移出"} for n in sorted(was - now)]
        out += [{"subject": n, "what": board, "before": "未列入", "after": "列入"} for n in sorted(now - was)]
    return out


# --- formatting -------------------------------------------------------------------------------


def _ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{100 * rate:.2f}%"


def _score(score: float | None) -> str:
    return "—" if score is None else f"{score:.2f}"
