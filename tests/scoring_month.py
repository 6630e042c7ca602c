"""The fixture month: November 2026 in 马营台村, eleven cases driven through the real engine.

Every expected figure in tests/integration/test_scoring.py was worked out by hand from the
steps below (times Asia/Shanghai; the township calendar works Mon–Fri 08:30–12:00 and
14:00–17:30, 7 hours a day; no holiday in November 2026; 1 Nov is a Sunday). Limits of
workflows/grid_case.yaml: the case 10d (70 h); classified 4h; assigned 4h; in_progress 5d
(35 h; water 2d, power 2d, road 3d, dispute 10d); the sweep fires breaches at their deadline.

    A  mayingtai-01  sanitation   2 Nov 09:00 → classify 09:30, assign 10:00 (陈小琴), accept 10:30,
                                  resolve Wed 4 Nov 10:00, verify Thu 5 Nov 10:00 满意 — all on time
                                  handling time: assigned 0.5 h + in_progress 13.5 h = 14 h
    B  mayingtai-01  water        2 Nov 09:00 all steps at 09:00 (陈小琴); in_progress 2d breaches
                                  Wed 4 Nov 09:00; resolve Wed 16:00 (19 h); rework Thu 5 Nov 10:00;
                                  resolve Thu 11:00 (1 h); verify Fri 6 Nov 10:00 基本满意;
                                  case clock 29 h of 70: closed on time, reworked; 20 h
    C  mayingtai-01  —            3 Nov 09:00 reported, voided 09:30
    D  mayingtai-01  dispute      Mon 9 Nov 09:00 all steps at 09:00 (安怡萱); suspended Fri 20 Nov
                                  09:00 (case clock at 63 h of 70) and still suspended at the end;
                                  resumed Tue 1 Dec, resolved and verified 2 Dec
    E  mayingtai-01  road         Mon 16 Nov 09:00 all steps at 09:00 (陈小琴); in_progress 3d breaches
                                  Thu 19 Nov 09:00; case clock breaches Mon 30 Nov 09:00; open at the
                                  end (overdue); resolved 1 Dec, verified 2 Dec
    F  mayingtai-01  power        Tue 10 Nov 09:00 all at 09:00 (安怡萱); extension of 1d asked Wed
                                  11 Nov 09:00, approved 10:00 (in_progress 2d → 3d); resolve Thu 12
                                  Nov 15:00 (18 h, on time); verify Fri 13 Nov 09:00 不满意
    G  mayingtai-01  other        Wed 11 Nov 09:00 classify, assign (陈小琴) 09:00; returned by her
                                  10:00; assigned again 11:00 (安怡萱), accept 11:30; resolve Fri 13
                                  Nov 11:30; verify Mon 16 Nov 09:00 满意; 1 h + 0.5 h + 14 h = 15.5 h
    H  mayingtai-02  sanitation   Thu 12 Nov 09:00 by 王红梅, classify 09:00; assign 16:00 (熊成林; the
                                  4h dispatch limit ran out at 15:00); accept Fri 13 Nov 14:00 (the
                                  4h response limit ran out at 11:00); resolve Mon 16 Nov 10:00;
                                  verify 11:00 满意; 5 h + 5 h = 10 h
    I  mayingtai-03  —            Mon 30 Nov 16:00 reported by the centre; classified Tue 1 Dec
    J  mayingtai-01  sanitation   Thu 22 Oct 09:00 all at 09:00 (陈小琴); in_progress breached 29 Oct;
                                  case clock breaches Thu 5 Nov 09:00; resolve Mon 9 Nov 10:00
                                  (85 h); verify 11:00 满意 — closed late
    K  mayingtai-01  sanitation   Mon 30 Nov 09:00, classify 09:00, assign 09:30 (陈小琴); the 4h
                                  response limit runs out 15:30; accepted Tue 1 Dec
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from engine import cases
from engine.sweep import sweep
from tests.support import calendars

SH = ZoneInfo("Asia/Shanghai")
CENTER = "p-chen-jia"
AN = "p-an-yixuan"  # 安怡萱, grid worker of mayingtai-01
CHEN = "p-chen-xiaoqin"  # 陈小琴, B岗信息员 of 马营台村
XIONG = "p-xiong-chenglin"  # 熊成林, village secretary of 马营台村
WANG = "p-wang-hongmei"  # 王红梅, grid worker of mayingtai-02


def sh(m: int, d: int, h: int = 0, mi: int = 0, y: int = 2026) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=SH)


class Month:
    """Drives the fixture cases; ``codes`` maps A..K to case ids."""

    def __init__(self, db):  # noqa: ANN001
        self.db = db
        self.ids: dict[str, int] = {}

    def sweep(self, at: datetime) -> None:
        sweep(self.db.sessions.begin, at, "fixture-sweeper")

    def report(self, name: str, grid: str, actor: str, at: datetime, title: str) -> None:
        self.sweep(at)
        with self.db.sessions.begin() as s:
            self.ids[name] = cases.report(
                s, grid_id=grid, actor_id=actor, fields={"title": title}, at=at, calendars=calendars()
            ).case.id

    def step(self, name: str, trigger: str, actor: str, at: datetime, **fields) -> None:  # noqa: ANN003
        self.sweep(at)
        with self.db.sessions.begin() as s:
            cases.fire(s, self.ids[name], trigger, actor_id=actor, fields=fields, at=at, calendars=calendars())

    def through(self, name: str, at: datetime, category: str, assignee: str, priority: str = "normal") -> None:
        self.step(name, "classify", CENTER, at, category=category, priority=priority)
        self.step(name, "assign", CENTER, at, assignee=assignee)
        self.step(name, "accept", assignee, at)

    # -- October and November ---------------------------------------------------------------

    def november(self) -> None:
        """Everything up to the end of November (and the sweep up to 1 Dec 00:00)."""
        self.report("J", "mayingtai-01", AN, sh(10, 22, 9), "马营台村1社垃圾堆放")
        self.through("J", sh(10, 22, 9), "sanitation", CHEN)
        self.report("A", "mayingtai-01", AN, sh(11, 2, 9), "马营台村1社沟渠堵塞")
        self.report("B", "mayingtai-01", AN, sh(11, 2, 9), "马营台村1社水管破裂")
        self.through("B", sh(11, 2, 9), "water_supply", CHEN)
        self.step("A", "classify", CENTER, sh(11, 2, 9, 30), category="sanitation", priority="normal")
        self.step("A", "assign", CENTER, sh(11, 2, 10), assignee=CHEN)
        self.step("A", "accept", CHEN, sh(11, 2, 10, 30))
        self.report("C", "mayingtai-01", AN, sh(11, 3, 9), "重复上报：水管破裂")
        self.step("C", "void", CENTER, sh(11, 3, 9, 30), reason="重复上报")
        self.step("A", "resolve", CHEN, sh(11, 4, 10), resolution="已清理")
        self.step("B", "resolve", CHEN, sh(11, 4, 16), resolution="已更换水管")
        self.step("A", "verify", CENTER, sh(11, 5, 10), satisfaction="satisfied")
        self.step("B", "rework", CENTER, sh(11, 5, 10), reason="接头仍漏水")
        self.step("B", "resolve", CHEN, sh(11, 5, 11), resolution="已重新处理接头")
        self.step("B", "verify", CENTER, sh(11, 6, 10), satisfaction="basically_satisfied")
        self.report("D", "mayingtai-01", AN, sh(11, 9, 9), "邻里宅基地纠纷")
        self.through("D", sh(11, 9, 9), "dispute", AN)
        self.step("J", "resolve", CHEN, sh(11, 9, 10), resolution="已清运")
        self.step("J", "verify", CENTER, sh(11, 9, 11), satisfaction="satisfied")
        self.report("F", "mayingtai-01", AN, sh(11, 10, 9), "马营台村2社线路老化")
        self.through("F", sh(11, 10, 9), "power_supply", AN)
        self.step("F", "request_extension", AN, sh(11, 11, 9), extend_by="1d", reason="等待供电所配合")
        self.step("F", "approve_extension", CENTER, sh(11, 11, 10))
        self.report("G", "mayingtai-01", AN, sh(11, 11, 9), "路灯不亮")
        self.step("G", "classify", CENTER, sh(11, 11, 9), category="other", priority="normal")
        self.step("G", "assign", CENTER, sh(11, 11, 9), assignee=CHEN)
        self.step("G", "return", CHEN, sh(11, 11, 10), reason="非本人负责片区")
        self.step("G", "assign", CENTER, sh(11, 11, 11), assignee=AN)
        self.step("G", "accept", AN, sh(11, 11, 11, 30))
        self.report("H", "mayingtai-02", WANG, sh(11, 12, 9), "马营台村3社垃圾乱倒")
        self.step("H", "classify", CENTER, sh(11, 12, 9), category="sanitation", priority="normal")
        self.step("F", "resolve", AN, sh(11, 12, 15), resolution="已更换线路")
        self.step("H", "assign", CENTER, sh(11, 12, 16), assignee=XIONG)
        self.step("F", "verify", CENTER, sh(11, 13, 9), satisfaction="dissatisfied")
        self.step("G", "resolve", AN, sh(11, 13, 11, 30), resolution="已报修")
        self.step("H", "accept", XIONG, sh(11, 13, 14))
        self.step("G", "verify", CENTER, sh(11, 16, 9), satisfaction="satisfied")
        self.report("E", "mayingtai-01", AN, sh(11, 16, 9), "村道塌方")
        self.through("E", sh(11, 16, 9), "road_traffic", CHEN)
        self.step("H", "resolve", XIONG, sh(11, 16, 10), resolution="已清理")
        self.step("H", "verify", CENTER, sh(11, 16, 11), satisfaction="satisfied")
        self.step("D", "suspend", AN, sh(11, 20, 9), reason="等待双方协商")
        self.report("K", "mayingtai-01", AN, sh(11, 30, 9), "公厕损坏")
        self.step("K", "classify", CENTER, sh(11, 30, 9), category="sanitation", priority="normal")
        self.step("K", "assign", CENTER, sh(11, 30, 9, 30), assignee=CHEN)
        self.report("I", "mayingtai-03", CENTER, sh(11, 30, 16), "河道漂浮物")
        self.sweep(sh(12, 1, 0))

    def december(self) -> None:
        """What happens after the period: must not change November's figures."""
        self.step("I", "classify", CENTER, sh(12, 1, 9), category="sanitation", priority="normal")
        self.step("K", "accept", CHEN, sh(12, 1, 9))
        self.step("D", "resume", AN, sh(12, 1, 9))
        self.step("E", "request_extension", CHEN, sh(12, 1, 9, 30), extend_by="2d", reason="需要机械")
        self.step("E", "approve_extension", CENTER, sh(12, 1, 10))
        self.step("E", "resolve", CHEN, sh(12, 1, 16), resolution="已清理塌方")
        self.step("D", "resolve", AN, sh(12, 2, 10), resolution="已调解")
        self.step("D", "verify", CENTER, sh(12, 2, 11), satisfaction="satisfied")
        self.step("E", "verify", CENTER, sh(12, 2, 11), satisfaction="dissatisfied")
        self.sweep(sh(12, 3, 0))
