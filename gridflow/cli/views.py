"""Rich tables of cases, events and workflows for people, drawn from the application's plain values.

Chinese labels sit beside the English ids everywhere a person reads them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.table import Table
from rich.text import Text

from engine.definitions.model import ROLE_LABELS
from engine.text import shown
from gridflow.present import local_text


def row(table: Table, *cells: object, style: str | None = None) -> None:
    """Add a row whose cells are shown as written: data is never parsed as Rich markup, and a control,
    bidirectional or invisible character a stored text may hold is written out (``\x1b``, :func:`shown`)."""
    table.add_row(*(c if isinstance(c, Text) else Text(shown("" if c is None else str(c))) for c in cells), style=style)


def cases_table(rows: list[dict[str, Any]], tz: ZoneInfo) -> Table:
    """``case list``: the case dicts of :meth:`Gridflow.list_cases`."""
    table = Table(title=f"事件台账 cases ({len(rows)})", title_justify="left")
    table.add_column("编号 code", no_wrap=True)  # ids are never cut: people copy them
    table.add_column("状态 status")
    table.add_column("标题 title", overflow="fold", ratio=2)
    table.add_column("类别 category")
    table.add_column("网格 grid", no_wrap=True)
    table.add_column("处置人 assignee", overflow="fold")
    table.add_column("上报 reported")
    for case in rows:
        row(
            table,
            case["code"],
            f"{case['status_label']} {case['status']}",
            case["title"],
            case["category_label"] or "",
            case["grid"],
            case["assignee"] or "",
            local_text(_time(case["reported_at"]), tz),
        )
    return table


def history_table(history: dict[str, Any], tz: ZoneInfo) -> Table:
    """``case history``: :meth:`Gridflow.case_history` (events with the labels of their states)."""
    labels = history["state_labels"]
    table = Table(title=f"{history['case']} 处置记录 history", title_justify="left")
    for column in ("#", "时间 at", "操作 trigger", "状态 from → to", "操作人 actor"):
        table.add_column(column)
    table.add_column("内容 payload", overflow="fold")
    for e in history["events"]:
        source = f"{labels[e['from']]} → " if e["from"] else ""
        payload = ", ".join(f"{k}={v}" for k, v in e["payload"].items())
        if e["received_at"] is not None:  # backfilled: say when and by whom it was typed in
            by = f" by {e['entered_by']}" if e["entered_by"] else ""
            typed = f"补录 typed in {local_text(_time(e['received_at']), tz)}{by}"
            payload = ", ".join(filter(None, [payload, typed]))
        row(
            table,
            str(e["seq"]),
            local_text(_time(e["at"]), tz),
            f"{e['trigger_label']} {e['trigger']}",
            f"{source}{labels[e['to']]}",
            e["actor"],
            payload,
        )
    return table


def _labelled(case: dict[str, Any], field: str) -> str:
    return f"{case[field + '_label']} {case[field]}" if case[field] else "—"


def case_panel_rows(card: dict[str, Any], tz: ZoneInfo) -> list[tuple[str, str]]:
    """``case show``: :meth:`Gridflow.case_card` as label/value rows."""
    case = card["case"]
    rows = [
        ("编号 code", f"{case['code']} (id {case['id']}, version {case['version']})"),
        ("标题 title", case["title"]),
        ("状态 status", f"{case['status_label']} {case['status']}"),
        ("流程 workflow", f"{case['workflow']} v{case['workflow_version']}"),
        ("类别 category", _labelled(case, "category")),
        ("紧急程度 priority", _labelled(case, "priority")),
        ("网格 grid", case["grid"]),
        ("上报人 reporter", case["reporter"]),
        ("处置人 assignee", case["assignee"] or "—"),
        ("上报时间 reported", local_text(_time(case["reported_at"]), tz)),
        ("返工 rework / 延期 extensions", f"{case['rework_count']} / {case['extension_count']}"),
    ]
    if case["description"]:
        rows.insert(2, ("描述 description", case["description"]))
    if case["satisfaction"]:
        rows.append(("满意度 satisfaction", f"{card['satisfaction_label']} {case['satisfaction']}"))
    if case["pending_extension"]:
        rows.append(("延期申请 pending extension", str(case["pending_extension"])))
    if case["closed_at"]:
        rows.append(("结案时间 closed", local_text(_time(case["closed_at"]), tz)))
    actions = ", ".join(f"{t['trigger']} ({t['label']})" for t in case["allowed_triggers"]) or "— (closed)"
    rows.append(("可执行操作 next", actions))
    return rows


def triggers_table(triggers: list[dict[str, Any]]) -> Table:
    """A workflow's triggers, as :meth:`Gridflow.show_workflow` lists them."""
    table = Table(title="操作 triggers", title_justify="left")
    for column in ("操作 trigger", "从 from", "到 to", "角色 roles", "必填 fields", "可选 optional"):
        table.add_column(column)
    for t in triggers:
        row(
            table,
            f"{t['label']} {t['name']}",
            ", ".join(t["from"]),
            t["to"] or "(stays)",
            ", ".join(f"{ROLE_LABELS.get(r, r)} {r}" for r in t["roles"]),
            ", ".join(t["fields"]),
            ", ".join(t["optional"]),
        )
    return table


def states_table(workflow: dict[str, Any]) -> Table:
    """A workflow's states, as :meth:`Gridflow.show_workflow` lists them."""
    table = Table(title=f"{workflow['title']} {workflow['name']}: 状态 states", title_justify="left")
    for column in ("状态 state", "标签 label", "标记 flags"):
        table.add_column(column)
    for s in workflow["states"]:
        flags = [f for f in ("initial", "final", "pauses_sla") if s[f]]
        row(table, s["name"], s["label"], ", ".join(flags))
    return table


def _time(text: str | None) -> datetime | None:
    """An ISO time of a plain value, for :func:`local_text`."""
    return datetime.fromisoformat(text) if text else None
