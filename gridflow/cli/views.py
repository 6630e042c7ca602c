"""Rich tables of cases, events and workflows for people (the plain values are :mod:`gridflow.present`).

Chinese labels sit beside the English ids everywhere a person reads them.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from rich.table import Table
from rich.text import Text

from engine.definitions.model import ROLE_LABELS, WorkflowDef
from engine.store.models import Case, CaseEvent
from gridflow.present import enum_label, event_dict, local_text


def row(table: Table, *cells: object, style: str | None = None) -> None:
    """Add a row whose cells are shown as written: data is never parsed as Rich markup."""
    table.add_row(*(c if isinstance(c, Text) else Text("" if c is None else str(c)) for c in cells), style=style)


def cases_table(rows: list[tuple[Case, WorkflowDef]], tz: ZoneInfo) -> Table:
    table = Table(title=f"事件台账 cases ({len(rows)})", title_justify="left")
    table.add_column("编号 code", no_wrap=True)  # ids are never cut: people copy them
    table.add_column("状态 status")
    table.add_column("标题 title", overflow="fold", ratio=2)
    table.add_column("类别 category")
    table.add_column("网格 grid", no_wrap=True)
    table.add_column("处置人 assignee", overflow="fold")
    table.add_column("上报 reported")
    for case, d in rows:
        row(
            table,
            case.code,
            f"{d.state_label(case.status)} {case.status}",
            case.title,
            enum_label(d, "category", case.category) or "",
            case.grid_id,
            case.assignee_id or "",
            local_text(case.reported_at, tz),
        )
    return table


def history_table(case: Case, events: list[CaseEvent], d: WorkflowDef, tz: ZoneInfo) -> Table:
    table = Table(title=f"{case.code} 处置记录 history", title_justify="left")
    for column in ("#", "时间 at", "操作 trigger", "状态 from → to", "操作人 actor"):
        table.add_column(column)
    table.add_column("内容 payload", overflow="fold")
    for e in events:
        label = event_dict(e, d)["trigger_label"]
        source = f"{d.state_label(e.from_state)} → " if e.from_state else ""
        payload = ", ".join(f"{k}={v}" for k, v in e.payload.items())
        if e.received_at is not None:  # backfilled: say when and by whom it was typed in
            by = f" by {e.entered_by}" if e.entered_by else ""
            payload = ", ".join(filter(None, [payload, f"补录 typed in {local_text(e.received_at, tz)}{by}"]))
        row(
            table,
            str(e.seq),
            local_text(e.at, tz),
            f"{label} {e.trigger}",
            f"{source}{d.state_label(e.to_state)}",
            e.actor_id,
            payload,
        )
    return table


def _labelled(d: WorkflowDef, field: str, value: str | None) -> str:
    return f"{enum_label(d, field, value)} {value}" if value else "—"


def case_panel_rows(case: Case, d: WorkflowDef, allowed: list[str], tz: ZoneInfo) -> list[tuple[str, str]]:
    rows = [
        ("编号 code", f"{case.code} (id {case.id}, version {case.version})"),
        ("标题 title", case.title),
        ("状态 status", f"{d.state_label(case.status)} {case.status}"),
        ("流程 workflow", f"{case.workflow_name} v{case.workflow_version}"),
        ("类别 category", _labelled(d, "category", case.category)),
        ("紧急程度 priority", _labelled(d, "priority", case.priority)),
        ("网格 grid", case.grid_id),
        ("上报人 reporter", case.reporter_id),
        ("处置人 assignee", case.assignee_id or "—"),
        ("上报时间 reported", local_text(case.reported_at, tz)),
        ("返工 rework / 延期 extensions", f"{case.rework_count} / {case.extension_count}"),
    ]
    if case.description:
        rows.insert(2, ("描述 description", case.description))
    if case.satisfaction:
        rows.append(("满意度 satisfaction", f"{enum_label(d, 'satisfaction', case.satisfaction)} {case.satisfaction}"))
    if case.pending_extension:
        rows.append(("延期申请 pending extension", str(case.pending_extension)))
    if case.closed_at:
        rows.append(("结案时间 closed", local_text(case.closed_at, tz)))
    actions = ", ".join(f"{t} ({d.triggers[t].label})" for t in allowed) or "— (closed)"
    rows.append(("可执行操作 next", actions))
    return rows


def triggers_table(d: WorkflowDef) -> Table:
    table = Table(title="操作 triggers", title_justify="left")
    for column in ("操作 trigger", "从 from", "到 to", "角色 roles", "必填 fields", "可选 optional"):
        table.add_column(column)
    for t in d.triggers.values():
        row(
            table,
            f"{t.label} {t.name}",
            ", ".join(t.sources),
            t.dest or "(stays)",
            ", ".join(f"{ROLE_LABELS.get(r, r)} {r}" for r in t.roles),
            ", ".join(t.required),
            ", ".join(t.optional),
        )
    return table


def states_table(d: WorkflowDef) -> Table:
    table = Table(title=f"{d.title} {d.name}: 状态 states", title_justify="left")
    for column in ("状态 state", "标签 label", "标记 flags"):
        table.add_column(column)
    for s in d.states.values():
        flags = [f for f, on in (("initial", s.initial), ("final", s.final), ("pauses_sla", s.pauses_sla)) if on]
        row(table, s.name, s.label, ", ".join(flags))
    return table
