"""Sample params for every notice event, as the engine and the dispatcher stage them.

These feed ``gridflow notices preview`` (render any event for a look before it goes out) and the
template tests (tests/unit/test_templates.py: every event, every part, renders with these).
Names, places and case codes follow config/org/shengli.yaml; every value is fictitious. Times are
ISO strings in UTC, as stored; ``*_local`` values are what the dispatcher passes already formatted
in the township's time zone (the renderer itself only derives ``due_local`` from ``due_at``).

The SLA events carry exactly what ``engine.sweep._effect`` and ``_notices`` stage (``clock``,
``state``, ``timer`` included), so a template that needs more than the sweep gives fails here.
"""

from __future__ import annotations

from typing import Any

SAMPLE_NAME = "陈佳"  # 网格管理中心主任: the person a preview is addressed to

_CASE = {
    "case": "SL-2026-000123",
    "title": "马营台村1社供水管道破裂",
    "grid": "mayingtai-01",
}
_DUE = "2026-11-30T09:30:00+00:00"  # 17:30 in Asia/Shanghai, the end of a working day

SAMPLES: dict[str, dict[str, Any]] = {
    "case_received": {
        **_CASE,
        "status": "reported",
        "reported_at": "2026-11-28T01:15:00+00:00",
        "reported_local": "2026-11-28 09:15",
    },
    "case_assigned": {
        **_CASE,
        "status": "assigned",
        "assignee_name": "安怡萱",
        "due_at": _DUE,
    },
    "case_resolved": {
        "case": "SL-2026-000123",
        "title": "马营台村1社供水管道破裂",
        "resolved_local": "2026-11-29 16:40",
    },
    "sla_reminder": {
        **_CASE,
        "status": "in_progress",
        "level": 1,
        "share": "50%",
        "clock": "state",
        "state": "in_progress",
        "timer": 4182,
        "due_at": _DUE,
    },
    "sla_breach": {
        **_CASE,
        "status": "in_progress",
        "limit": "2d",
        "clock": "state",
        "state": "in_progress",
        "timer": 4183,
        "due_at": _DUE,
    },
    "sla_escalated": {
        **_CASE,
        "status": "in_progress",
        "level": 2,
        "mark": "red_card",
        "clock": "state",
        "state": "in_progress",
        "timer": 4185,
        "due_at": _DUE,
    },
    "supervision_order": {
        **_CASE,
        "status": "in_progress",
        "level": 3,
        "mark": "supervision_order",
        "clock": "state",
        "state": "in_progress",
        "timer": 4186,
        "due_at": _DUE,
    },
    "digest": {
        "items": [
            {
                "event_label": "已超时",
                "case": "SL-2026-000123",
                "title": "马营台村1社供水管道破裂",
                "due_local": "2026-11-30 17:30",
            },
            {
                "event_label": "时限提醒",
                "case": "SL-2026-000131",
                "title": "迪坪村2社道路塌方阻断通行",
                "due_local": "2026-12-01 12:00",
            },
            {
                "event_label": "新派单",
                "case": "SL-2026-000137",
                "title": "青龙村3社邻里宅基地纠纷",
                "due_local": "2026-12-02 17:30",
            },
        ],
        "count": 5,
        "shown": 3,
        "window_label": "10分钟",
    },
    "monthly_ranking": {
        "period": "2026-11",
        "rows": [
            {"rank": 1, "name": "安怡萱", "score": 96.5, "grade": "A"},
            {"rank": 2, "name": "王红梅", "score": 93.2, "grade": "A"},
            {"rank": 3, "name": "曾燕", "score": 88.0, "grade": "B"},
            {"rank": 4, "name": "刘玉兰", "score": 81.7, "grade": "B"},
            {"rank": 5, "name": "唐丽娟", "score": 72.4, "grade": "C"},
        ],
        "url": "https://gf.shengli.example.org/r/2026-11",
    },
    "quarterly_posting": {
        "quarter": "2026Q4",
        "objection_days": 7,
        "url": "https://gf.shengli.example.org/p/2026Q4",
        "red": ["安怡萱", "王红梅", "曾燕"],
        "black": ["吴佳怡", "徐斌"],
    },
    "annual_summary": {
        "year": "2026",
        "url": "https://gf.shengli.example.org/p/2026",
        "red": ["马营台村1号网格", "青龙村3号网格", "安怡萱"],
        "black": ["白果村5号网格"],
        "content_hash": "3f9a2c7e51b04d88",
    },
}
