"""The SLA clocks of a case as bars: how much working time each has used of its limit, where its
reminders, breach and escalation levels fall, and what happened to it, in words.

Pure presentation of :meth:`gridflow.app.sla.SlaUseCases.explain_sla`: positions are business time on the
clock's own calendar (holidays and nights take no room on the bar), so a bar reads like the limit it shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gridflow.present import parse_iso

WIDTH = 600  # the bar's length in SVG units (the picture scales to the page)
KIND_LABELS = {"reminder": "提醒", "breach": "超时", "escalation": "升级"}
MARK_LABELS = {"yellow_card": "黄牌", "red_card": "红牌", "supervision_order": "督办"}
SCOPE_LABELS = {"case": "整体时限", "state": "环节时限"}
STATUS_LABELS = {"running": "计时中", "paused": "已暂停", "stopped": "已停止", "met": "按期", "breached": "已超时"}
WHAT_LABELS = {
    "started": "开始计时",
    "paused": "暂停",
    "resumed": "恢复计时",
    "stopped": "停止",
    "extended": "延长时限",
    "breached": "超时",
}


@dataclass
class Mark:
    x: float  # position on the bar, 0..WIDTH (past WIDTH: drawn at the end)
    label: str
    status: str  # pending | fired | cancelled …
    at: str
    row: int = 0  # labels of marks close together go one under another


@dataclass
class Bar:
    title: str
    status: str
    used_s: float
    limit_s: float
    due_at: str | None
    breached: bool
    used_x: float
    over_x: float  # the part beyond the limit, drawn red
    marks: list[Mark] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    rows: int = 0  # label rows beyond the first

    @property
    def percent(self) -> int:
        return round(100 * self.used_s / self.limit_s) if self.limit_s else 0


def bars(explained: dict[str, Any], calendars: Any, now: datetime, state_label: Any) -> list[Bar]:
    """One :class:`Bar` per clock; ``calendars(name)`` gives a clock's business calendar."""
    out = []
    for clock in explained.get("clocks", []):
        cal = calendars(clock.get("calendar") or "township")
        limit = float(clock.get("limit_s") or 0)
        base_s, base_at = _base(clock)
        running = clock.get("status") == "running"
        used = float(clock.get("consumed_s") or 0)
        if running and base_at is not None and now > base_at:
            used = base_s + cal.between(base_at, now).total_seconds()

        def x(seconds: float, limit: float = limit) -> float:
            return min(WIDTH, WIDTH * seconds / limit) if limit else 0.0

        marks = []
        for timer in clock.get("timers", []):
            fire = parse_iso(timer.get("fire_at"))
            if fire is None or base_at is None:
                continue
            at_s = base_s + (cal.between(base_at, fire).total_seconds() if fire > base_at else 0.0)
            kind = timer.get("kind") or ""
            label = KIND_LABELS.get(kind, kind)
            if kind == "escalation":
                label = MARK_LABELS.get(timer.get("note") or "", f"升级{timer.get('level') or ''}")
            marks.append(Mark(x(at_s), label, timer.get("status") or "", timer.get("fire_at") or ""))
        marks.sort(key=lambda m: m.x)
        for k, mark in enumerate(marks):  # a label within 40 units of the one before goes a row lower
            if k and mark.x - marks[k - 1].x < 40:
                mark.row = marks[k - 1].row + 1
        scope = SCOPE_LABELS.get(clock.get("scope") or "", clock.get("scope") or "")
        title = scope if clock.get("scope") == "case" else f"{scope}·{state_label(clock.get('state'))}"
        over = max(0.0, used - limit)
        out.append(
            Bar(
                title=f"{title}（{clock.get('limit')}）",
                status=STATUS_LABELS.get(clock.get("status") or "", clock.get("status") or ""),
                used_s=used,
                limit_s=limit,
                due_at=clock.get("due_at"),
                breached=bool(clock.get("breached_at")),
                used_x=x(min(used, limit)),
                over_x=min(WIDTH * 0.2, WIDTH * over / limit) if limit else 0.0,
                marks=marks,
                rows=max((m.row for m in marks), default=0),
                history=[
                    {**h, "what_label": WHAT_LABELS.get(h.get("what") or "", h.get("what"))}
                    for h in clock.get("history", [])
                ],
            )
        )
    return out


def _base(clock: dict[str, Any]) -> tuple[float, datetime | None]:
    """The working time used when the clock last started running, and when that was."""
    base_s, base_at = 0.0, None
    for entry in clock.get("history", []):
        if entry.get("what") in ("started", "resumed", "extended"):
            base_s = float(entry.get("consumed_s") or 0)
            base_at = parse_iso(entry.get("at"))
    return base_s, base_at
