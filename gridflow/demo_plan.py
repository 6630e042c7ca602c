"""The demo's script (演示数据): which cases the sample township had in a past quarter and what
happened to each, step by step, at which time — pure and seeded, so the same township, quarter
and size always give the same plan. :mod:`gridflow.demo` drives it through the real engine.

A plan is made from the org chart (grids, their grid workers, info officers and village
secretaries, the centre's staff), the workflow's own time limits (:func:`engine.sla.resolve`, so a
"late" step is late by the rules in force) and the office calendar (the centre works office
hours; a case reported at night is classified the next working morning). Most cases run
上报 → 立案 → 派遣 → 签收 → 办结 → 核查结案 on time; some are classified, dispatched, signed for,
handled or verified late; a few are voided (作废), returned (回退) and dispatched again, reworked
(返工), extended (延期, approved or refused), suspended (挂起) and resumed — or still suspended
(挂账) — or stuck in handling until the escalation ladder reaches the township leaders (督办).
Steps after ``now`` are left out: the case is where it would be today.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from engine.jobs import Period
from engine.scope import OrgSnapshot, PlaceInfo
from engine.store.demo_repo import TITLE_PREFIX

if TYPE_CHECKING:
    from engine.calendar import WorkCalendar

SEED = 12  # issue 12: the same cases every time
DEFAULT_SIZE = 420  # cases in the quarter: about 140 a month, 6 a working day, for 69 grid cells

#: (state, category, priority, when) -> (the clock's calendar, its limit in business seconds)
Limits = Callable[[str, str, str, datetime], "tuple[WorkCalendar, int]"]

CATEGORIES = {  # share of the cases in a summer quarter, and what is reported
    "sanitation": (
        18,
        ("垃圾收集点满溢", "河道漂浮垃圾较多", "路边乱堆柴草杂物", "生活污水直排沟渠", "畜禽粪污未及时清运"),
    ),
    "dispute": (14, ("邻里宅基地边界纠纷", "土地流转租金纠纷", "赡养老人家庭纠纷", "灌溉用水纠纷", "林地权属纠纷")),
    "water_supply": (12, ("供水管道破裂", "自来水停水两天", "蓄水池盖板损坏", "饮用水浑浊有异味")),
    "road_traffic": (12, ("村道局部塌方", "便民桥护栏损坏", "村道被落石阻断", "道路积水严重", "路灯不亮")),
    "social_assistance": (
        10,
        ("独居老人生活困难", "低保申请咨询", "残疾人补贴未到账", "留守儿童需要帮扶", "因病返贫户求助"),
    ),
    "safety_hazard": (9, ("危房屋顶漏雨", "液化气瓶存放不当", "上学路段缺少护栏", "废弃水塘无警示牌")),
    "geological_hazard": (8, ("房后山体出现裂缝", "滑坡隐患点雨后位移", "河岸冲刷垮塌", "危岩松动有落石")),
    "power_supply": (8, ("电线老化存在隐患", "农网线路被树枝压断", "变压器跳闸停电", "电杆倾斜")),
    "public_security": (5, ("夜间有可疑人员出没", "电信诈骗线索", "农具被盗", "无牌摩托车载人")),
    "other": (4, ("咨询医保缴费", "广播喇叭损坏", "建议增设招呼站")),
}
RESOLUTIONS = {
    "sanitation": "已组织保洁员清运，现场整洁",
    "dispute": "经村调委会调解，双方达成一致并签字",
    "water_supply": "已联系供水站更换破损管段，恢复供水",
    "road_traffic": "已清理路面并设置警示标志，恢复通行",
    "social_assistance": "已入户核实，协助办理救助手续",
    "safety_hazard": "已督促整改，隐患消除",
    "geological_hazard": "已设置警戒、转移相关住户，并报县自然资源局监测",
    "power_supply": "已联系供电所抢修，恢复正常",
    "public_security": "已移交派出所处理，加强巡逻",
    "other": "已答复并解释政策",
}
URGENT = {  # category -> chance of urgent, chance of critical
    "geological_hazard": (0.5, 0.3),
    "safety_hazard": (0.35, 0.05),
    "water_supply": (0.3, 0.0),
    "power_supply": (0.3, 0.0),
    "road_traffic": (0.2, 0.05),
}
STORIES = (  # a case's course, with its share
    ("normal", 0.74),
    ("voided", 0.04),
    ("returned", 0.04),
    ("reworked", 0.05),
    ("extended", 0.05),
    ("suspended", 0.04),
    ("shelved", 0.02),  # suspended and still suspended (挂账)
    ("stuck", 0.02),  # signed for and never resolved: the ladder climbs to 督办
)
REASONS = {
    "void": ("重复上报，已并案处理", "不属于受理范围，已告知当事人"),
    "return": ("非本人职责范围，请改派", "本人外出培训，无法按时处置"),
    "suspend": ("等待上级专项资金下达", "汛期暂缓施工", "当事人外出务工，待其返乡"),
    "extension": ("需协调县级部门共同处置", "维修材料需外地采购"),
    "reject_extension": ("时限内可以完成，请抓紧处置",),
    "rework": ("回访群众反映问题未彻底解决", "现场核查不合格"),
}
SATISFACTION = (("satisfied", 0.8), ("basically_satisfied", 0.14), ("dissatisfied", 0.06))
SATISFACTION_AFTER_TROUBLE = (("satisfied", 0.55), ("basically_satisfied", 0.3), ("dissatisfied", 0.15))


# -- the township as the plan sees it ---------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    id: str
    place: str  # how a title names it: 马营台村1社, 中心小学
    village: str | None
    reporters: tuple[str, ...]  # grid workers, else info officers
    handlers: tuple[str, ...]  # who may be dispatched: grid workers, info officers, village secretaries
    secretary: str | None


@dataclass(frozen=True)
class Township:
    grids: tuple[Grid, ...]
    center: tuple[str, ...]  # the centre's staff: classify, dispatch, verify


def township(org: OrgSnapshot) -> Township:
    """The grid cells that have a grid worker (or an info officer), with who may handle their cases."""
    grids = []
    for place in sorted((p for p in org.places.values() if p.kind == "grid" and p.active), key=lambda p: p.id):
        workers, officers = org.holders("grid_worker", place), org.holders("info_officer", place)
        secretaries = org.holders("village_secretary", place)
        reporters = tuple(workers or officers)
        if reporters:
            handlers = tuple(dict.fromkeys([*workers, *officers, *secretaries]))
            grids.append(
                Grid(
                    place.id,
                    _place_name(org, place),
                    _village(org, place),
                    reporters,
                    handlers,
                    next(iter(secretaries), None),
                )
            )
    center = tuple(
        sorted({p for place in org.places.values() if place.kind == "township" for p in org.holders("center", place)})
    )
    return Township(tuple(grids), center)


def _place_name(org: OrgSnapshot, grid: PlaceInfo) -> str:
    above = [org.places[s] for s in grid.scopes[1:] if s in org.places]
    village = next((p.name for p in above if p.kind == "village"), None)
    group = next((p.name for p in above if p.kind == "group"), "")
    return f"{village}{group}" if village else grid.name.removesuffix("单元格")


def _village(org: OrgSnapshot, grid: PlaceInfo) -> str | None:
    return next((s for s in grid.scopes[1:] if s in org.places and org.places[s].kind == "village"), None)


# -- the plan ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    at: datetime
    trigger: str  # "report" for the first step
    actor: str
    fields: dict[str, str]
    to_state: str


@dataclass(frozen=True)
class CasePlan:
    number: int  # 1, 2, … in the order reported
    grid: str
    village: str | None
    category: str | None  # as the case holds it: None until classified
    priority: str | None
    story: str
    steps: tuple[Step, ...]

    @property
    def reported_at(self) -> datetime:
        return self.steps[0].at

    @property
    def state(self) -> str:
        """Where the case is at the plan's ``now``."""
        return self.steps[-1].to_state


@dataclass(frozen=True)
class Plan:
    quarter: Period
    now: datetime
    seed: int
    cases: tuple[CasePlan, ...]

    @property
    def steps(self) -> int:
        return sum(len(c.steps) for c in self.cases)

    def states(self) -> Counter[str]:
        return Counter(c.state for c in self.cases)

    def categories(self) -> Counter[str | None]:
        return Counter(c.category for c in self.cases)


@dataclass
class _Ctx:
    rng: random.Random
    town: Township
    limits: Limits
    office: WorkCalendar
    tz: ZoneInfo
    quality: dict[str, float] = field(default_factory=dict)  # per grid: how often its steps run late


def make_plan(
    town: Township,
    limits: Limits,
    office: WorkCalendar,
    quarter: Period,
    now: datetime,
    tz: ZoneInfo,
    size: int = DEFAULT_SIZE,
    seed: int = SEED,
) -> Plan:
    """``size`` cases reported in ``quarter``, each with its steps up to ``now``."""
    if not town.grids or not town.center:
        raise ValueError("the org chart needs grid cells with grid workers and the centre's staff")
    rng = random.Random(f"{seed}:{quarter.key}:{size}")
    ctx = _Ctx(rng, town, limits, office, tz)
    weights = [rng.uniform(0.4, 1.6) * (0.5 if g.village is None else 1.0) for g in town.grids]
    ctx.quality = {g.id: rng.uniform(0.3, 1.9) for g in town.grids}
    moments = sorted(_report_time(ctx, day) for day in _days(ctx, quarter, size))
    cases = []
    for number, (at, story) in enumerate(zip(moments, _stories(rng, size), strict=True), start=1):
        grid = rng.choices(town.grids, weights)[0]
        cases.append(_case(ctx, number, grid, at, story, now))
    return Plan(quarter, now, seed, tuple(cases))


def _days(ctx: _Ctx, quarter: Period, size: int) -> list[date]:
    """The day of each case: spread over the quarter by weight (a working day about three times a day
    off, each day a little busier or quieter), the remainders to the largest fractions."""
    days = [quarter.start + timedelta(days=n) for n in range((quarter.end - quarter.start).days)]
    weights = [(1.0 if ctx.office.is_working_day(d) else 0.35) * ctx.rng.uniform(0.6, 1.4) for d in days]
    shares = [size * w / sum(weights) for w in weights]
    counts = [int(share) for share in shares]
    by_remainder = sorted(range(len(days)), key=lambda i: counts[i] - shares[i])
    for i in by_remainder[: size - sum(counts)]:
        counts[i] += 1
    return [day for day, n in zip(days, counts, strict=True) for _ in range(n)]


def _stories(rng: random.Random, size: int) -> list[str]:
    """Each case's course, in their shares, every kind at least once; shuffled."""
    counts = {name: max(1, round(size * share)) for name, share in STORIES if name != "normal"}
    stories = [name for name, n in counts.items() for _ in range(n)]
    stories += ["normal"] * (size - len(stories))
    rng.shuffle(stories)
    return stories[:size]


def _report_time(ctx: _Ctx, day: date) -> datetime:
    """A time of ``day``, mostly in the daytime."""
    roll = ctx.rng.random()
    start, hours = (8.0, 10.0) if roll < 0.85 else ((18.0, 3.5) if roll < 0.95 else (6.5, 1.5))
    minute = int((start + ctx.rng.random() * hours) * 60)
    return datetime.combine(day, time(minute // 60, minute % 60), ctx.tz).astimezone(UTC)


def _pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([k for k, _ in table], [w for _, w in table])[0]


def _case(ctx: _Ctx, number: int, grid: Grid, reported: datetime, story: str, now: datetime) -> CasePlan:
    rng = ctx.rng
    category = rng.choices(list(CATEGORIES), [w for w, _ in CATEGORIES.values()])[0]
    urgent, critical = URGENT.get(category, (0.05, 0.0))
    roll = rng.random()
    priority = "critical" if roll < critical else ("urgent" if roll < critical + urgent else "normal")
    what = rng.choice(CATEGORIES[category][1])
    reporter = rng.choice(grid.reporters)
    title = f"{TITLE_PREFIX}{grid.place}{what}"
    report = {
        "title": title,
        "description": f"网格员巡查发现：{grid.place}{what}，已拍照留存，请中心研判处置。（演示数据）",
    }
    course = _Course(ctx, grid, category, priority, story, [Step(reported, "report", reporter, report, "reported")])
    course.run()
    steps = tuple(s for s in course.steps if s.at <= now)
    if not any(s.trigger == "classify" for s in steps):  # voided (or still waiting) before classification
        category, priority = None, None
    return CasePlan(number, grid.id, grid.village, category, priority, story, steps)


class _Course:
    """One case's steps, each at a time worked out from the one before."""

    def __init__(self, ctx: _Ctx, grid: Grid, category: str, priority: str, story: str, steps: list[Step]):
        self.ctx, self.rng, self.grid = ctx, ctx.rng, grid
        self.category, self.priority, self.story = category, priority, story
        self.steps = steps
        self.late = ctx.quality[grid.id]  # how this grid's people keep time
        self.handler = ""
        self.trouble = False

    # -- time ---------------------------------------------------------------------------------

    @property
    def last(self) -> datetime:
        return self.steps[-1].at

    def office_after(self, start: datetime, hours: float) -> datetime:
        """The centre acts in office hours: ``hours`` of working time after ``start``."""
        return self.ctx.office.add(start, timedelta(hours=hours)).at

    def limit(self, state: str, start: datetime) -> tuple[WorkCalendar, int]:
        return self.ctx.limits(state, self.category, self.priority, start)

    def in_state(self, state: str, start: datetime, share: float) -> datetime:
        """``share`` of the state's time limit (on its calendar) after ``start``."""
        calendar, limit = self.limit(state, start)
        return calendar.add(start, timedelta(seconds=max(60, int(limit * share)))).at

    def share(self, on_time: tuple[float, float], late: tuple[float, float], chance: float) -> float:
        """A share of a limit: late (above 1) with ``chance`` times this grid's habit, else on time."""
        if self.rng.random() < chance * self.late:
            self.trouble = True
            return self.rng.uniform(*late)
        return self.rng.uniform(*on_time)

    def step(self, at: datetime, trigger: str, actor: str, to: str, **fields: str) -> datetime:
        at = max(at, self.last + timedelta(minutes=1))
        self.steps.append(Step(at, trigger, actor, fields, to))
        return at

    def center(self, at: datetime) -> str:
        staff = self.ctx.town.center
        return staff[at.astimezone(self.ctx.tz).toordinal() % len(staff)]

    def reason(self, kind: str) -> str:
        return self.rng.choice(REASONS[kind])

    # -- the course -----------------------------------------------------------------------------

    def run(self) -> None:
        reported = self.last
        if self.story == "voided" and self.rng.random() < 0.6:
            at = self.office_after(reported, self.rng.uniform(0.2, 1.5))
            self.step(at, "void", self.center(at), "voided", reason=self.reason("void"))
            return
        at = self.office_after(reported, self.share((0.1, 1.6), (2.2, 5.0), 0.06))
        self.step(at, "classify", self.center(at), "classified", category=self.category, priority=self.priority)
        if self.story == "voided":
            at = self.office_after(self.last, self.rng.uniform(0.5, 3.0))
            self.step(at, "void", self.center(at), "voided", reason=self.reason("void"))
            return
        self.dispatch(self.first_handler())
        returned = self.story == "returned"
        if returned and self.rng.random() < 0.6:  # given back before signing for it
            self.give_back(self.in_state("assigned", self.last, self.rng.uniform(0.1, 0.6)))
            returned = False
        self.accept()
        if returned:  # or after a look on site
            self.give_back(self.in_state("in_progress", self.last, self.rng.uniform(0.05, 0.3)))
            self.accept()
        if not self.handle():
            return
        if self.story == "reworked":
            self.rework()
        self.verify()

    def first_handler(self) -> str:
        grid = self.grid
        if self.category == "dispute" and grid.secretary and self.rng.random() < 0.5:
            return grid.secretary
        return grid.handlers[0] if self.rng.random() < 0.85 else self.rng.choice(grid.handlers)

    def dispatch(self, handler: str) -> None:
        at = self.in_state("classified", self.last, self.share((0.05, 0.8), (1.1, 2.0), 0.05))
        self.handler = handler
        self.step(at, "assign", self.center(at), "assigned", assignee=handler)

    def give_back(self, at: datetime) -> None:
        self.trouble = True
        self.step(at, "return", self.handler, "classified", reason=self.reason("return"))
        others = [h for h in self.grid.handlers if h != self.handler] or [self.handler]
        self.dispatch(self.rng.choice(others))

    def accept(self) -> None:
        at = self.in_state("assigned", self.last, self.share((0.05, 0.7), (1.1, 2.5), 0.06))
        self.step(at, "accept", self.handler, "in_progress")

    def handle(self) -> bool:
        """The handling (处置) up to 办结; False if the case stays open."""
        started = self.last
        if self.story == "stuck":
            self.trouble = True
            return False
        if self.story in ("suspended", "shelved"):
            return self.suspend(started)
        if self.story == "extended":
            return self.extend(started)
        share = self.share((0.15, 0.92), (1.05, 2.6), 0.15)
        self.resolve(self.in_state("in_progress", started, share))
        return True

    def resolve(self, at: datetime) -> None:
        self.step(at, "resolve", self.handler, "resolved", resolution=RESOLUTIONS[self.category])

    def suspend(self, started: datetime) -> bool:
        self.trouble = True
        before = self.rng.uniform(0.2, 0.6)
        at = self.step(
            self.in_state("in_progress", started, before),
            "suspend",
            self.handler,
            "suspended",
            reason=self.reason("suspend"),
        )
        if self.story == "shelved":
            return False
        days = self.rng.uniform(2, 12)  # over 10 working days and the suspension's own clock runs out
        back = self.ctx.office.add(at, self.ctx.office.day_length * days).at
        resumed = self.step(back, "resume", self.handler, "in_progress")
        self.resolve(self.in_state("in_progress", resumed, max(0.05, self.rng.uniform(0.5, 0.95) - before)))
        return True

    def extend(self, started: datetime) -> bool:
        calendar, limit = self.limit("in_progress", started)
        asked = self.step(
            self.in_state("in_progress", started, self.rng.uniform(0.45, 0.8)),
            "request_extension",
            self.handler,
            "in_progress",
            extend_by=self._extension(calendar, limit),
            reason=self.reason("extension"),
        )
        at = self.office_after(asked, self.rng.uniform(0.1, 2.0))
        if self.rng.random() < 0.75:
            self.step(at, "approve_extension", self.center(at), "in_progress")
            extra = self._seconds(self.steps[-2].fields["extend_by"], calendar)
            share = (limit + extra) * self.rng.uniform(0.6, 0.95) / limit
        else:
            self.trouble = True
            self.step(at, "reject_extension", self.center(at), "in_progress", reason=self.reason("reject_extension"))
            share = self.rng.uniform(0.85, 1.4)
        self.resolve(self.in_state("in_progress", started, share))
        return True

    @staticmethod
    def _extension(calendar: WorkCalendar, limit: int) -> str:
        return "1d" if limit <= calendar.day_length.total_seconds() else "2d"

    @staticmethod
    def _seconds(text: str, calendar: WorkCalendar) -> int:
        return int(int(text[:-1]) * calendar.day_length.total_seconds())

    def rework(self) -> None:
        self.trouble = True
        at = self.in_state("resolved", self.last, self.rng.uniform(0.1, 0.6))
        again = self.step(at, "rework", self.center(at), "in_progress", reason=self.reason("rework"))
        self.resolve(self.in_state("in_progress", again, self.rng.uniform(0.1, 0.6)))

    def verify(self) -> None:
        at = self.in_state("resolved", self.last, self.share((0.05, 0.8), (1.05, 1.8), 0.05))
        answers = SATISFACTION_AFTER_TROUBLE if self.trouble else SATISFACTION
        self.step(at, "verify", self.center(at), "verified", satisfaction=_pick(self.rng, answers))
