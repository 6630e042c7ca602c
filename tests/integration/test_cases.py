"""Case commands on SQLite and PostgreSQL: the lifecycle, the audit trail, bad input."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from engine import cases
from engine.errors import (
    CaseNotFound,
    ConcurrentUpdate,
    FieldError,
    GuardFailed,
    NaiveDatetime,
    NotFound,
    PermissionDenied,
    PersonNotFound,
    TriggerNotAllowed,
)
from engine.store import workflow_repo
from engine.store.models import Case, CaseEvent
from tests.support import CENTER, GRID, GRID_WORKER, T0, calendars

OTHER_WORKER = "p-zhao-jun"  # filled in below from the org chart if missing


def report(session, at=T0, grid=GRID, actor=GRID_WORKER, **fields):
    fields = {"title": "马营台村1社水管破裂", **fields}
    return cases.report(session, grid_id=grid, calendars=calendars(), actor_id=actor, fields=fields, at=at).case


def fire(session, case, trigger, actor, at=T0, expected=None, **fields):
    """Fire and return the case as it is now."""
    return cases.fire(
        session,
        case.id,
        trigger,
        calendars=calendars(),
        actor_id=actor,
        fields=fields,
        at=at,
        expected_version=expected,
    ).case


def drive_to(session, case, state, at=T0):
    """Walk a fresh case to ``state`` along the happy path."""
    path = [
        ("classified", "classify", CENTER, {"category": "water_supply", "priority": "urgent"}),
        ("assigned", "assign", CENTER, {"assignee": GRID_WORKER}),
        ("in_progress", "accept", GRID_WORKER, {}),
        ("resolved", "resolve", GRID_WORKER, {"resolution": "已更换水管"}),
        ("verified", "verify", CENTER, {"satisfaction": "satisfied"}),
    ]
    for target, trigger, actor, fields in path:
        if case.status == state:
            return case
        case = fire(session, case, trigger, actor, at=at, **fields)
        assert case.status == target
    return case


def test_full_lifecycle_with_audit_trail(db):
    with db.sessions.begin() as s:
        case = report(s, description="伏从英家门前供水管道破裂")
        assert case.code == "SL-2026-000001"
        assert (case.status, case.version) == ("reported", 1)
        for minutes, (trigger, actor, fields) in enumerate(
            [
                ("classify", CENTER, {"category": "water_supply", "priority": "urgent"}),
                ("assign", CENTER, {"assignee": GRID_WORKER}),
                ("accept", GRID_WORKER, {}),
                ("resolve", GRID_WORKER, {"resolution": "已更换水管"}),
                ("verify", CENTER, {"satisfaction": "satisfied", "note": "现场核查"}),
            ],
            start=1,
        ):
            case = fire(s, case, trigger, actor, at=T0 + timedelta(minutes=minutes), **fields)
        case_id = case.id
    with db.session() as s:
        case = s.get(Case, case_id)
        assert (case.status, case.version) == ("verified", 6)
        assert case.closed_at == T0 + timedelta(minutes=5)
        assert (case.category, case.priority, case.assignee_id, case.satisfaction) == (
            "water_supply",
            "urgent",
            GRID_WORKER,
            "satisfied",
        )
        events = cases.history(s, case)
        assert [(e.seq, e.trigger, e.from_state, e.to_state) for e in events] == [
            (1, "report", None, "reported"),
            (2, "classify", "reported", "classified"),
            (3, "assign", "classified", "assigned"),
            (4, "accept", "assigned", "in_progress"),
            (5, "resolve", "in_progress", "resolved"),
            (6, "verify", "resolved", "verified"),
        ]
        assert events[1].payload == {"category": "water_supply", "priority": "urgent"}
        assert events[5].actor_id == CENTER and events[5].workflow_version == 1
        assert all(e.at.tzinfo is not None for e in events)


def test_case_codes_count_up_per_local_year(db):
    with db.sessions.begin() as s:
        first = report(s)
        second = report(s)
        # 2026-12-31 17:00 UTC is already 2027-01-01 01:00 in Shanghai
        new_year = report(s, at=datetime.fromisoformat("2026-12-31T17:00:00+00:00"))
    assert [first.code, second.code, new_year.code] == ["SL-2026-000001", "SL-2026-000002", "SL-2027-000001"]


def test_return_rework_suspend_and_extension(db):
    with db.sessions.begin() as s:
        case = drive_to(s, report(s), "in_progress")
        case = fire(s, case, "return", GRID_WORKER, reason="不属于本网格")
        assert (case.status, case.assignee_id) == ("classified", None)
        case = fire(s, case, "assign", CENTER, assignee=GRID_WORKER)
        case = fire(s, case, "accept", GRID_WORKER)
        case = fire(s, case, "suspend", GRID_WORKER, reason="等待村民回家")
        case = fire(s, case, "resume", CENTER)
        case = fire(s, case, "request_extension", GRID_WORKER, extend_by="2d", reason="等待配件")
        assert case.pending_extension["extend_by"] == "2d"
        with pytest.raises(GuardFailed, match="already pending"):
            case = fire(s, case, "request_extension", GRID_WORKER, extend_by="1d", reason="再等")
        case = fire(s, case, "approve_extension", CENTER)
        assert (case.status, case.pending_extension, case.extension_count) == ("in_progress", None, 1)
        case = fire(s, case, "resolve", GRID_WORKER, resolution="已修复")
        case = fire(s, case, "rework", CENTER, reason="复查仍漏水")
        assert (case.status, case.rework_count) == ("in_progress", 1)
        events = cases.history(s, case)
        approve = next(e for e in events if e.trigger == "approve_extension")
        assert (approve.from_state, approve.to_state, approve.payload["extend_by"]) == (
            "in_progress",
            "in_progress",
            "2d",
        )


def test_reject_extension_and_void(db):
    with db.sessions.begin() as s:
        case = drive_to(s, report(s), "assigned")
        case = fire(s, case, "request_extension", GRID_WORKER, extend_by="4h", reason="路断了")
        case = fire(s, case, "reject_extension", CENTER, reason="不符合延期条件")
        assert case.pending_extension is None and case.extension_count == 0
        other = report(s)
        other = fire(s, other, "void", CENTER, reason="重复上报")
        assert other.status == "voided" and other.closed_at == T0


def test_fields_accept_chinese_labels_for_enums(db):
    with db.sessions.begin() as s:
        case = report(s)
        case = fire(s, case, "classify", CENTER, category="地质灾害", priority="特急")
        assert (case.category, case.priority) == ("geological_hazard", "critical")


# -- bad input: a clear error and no row changed ---------------------------------------


def _rejected(db, error, match, action):
    before = db.snapshot()
    with pytest.raises(error, match=match):
        with db.sessions.begin() as s:
            action(s)
    assert db.snapshot() == before


def _case_in(db, state):
    with db.sessions.begin() as s:
        return drive_to(s, report(s), state).id


def _fire_id(case_id, trigger, actor, expected=None, **fields):
    return lambda s: cases.fire(
        s, case_id, trigger, calendars=calendars(), actor_id=actor, fields=fields, at=T0, expected_version=expected
    )


def test_trigger_not_allowed_lists_allowed_ones(db):
    case_id = _case_in(db, "reported")
    _rejected(
        db,
        TriggerNotAllowed,
        r"allowed now: classify \(立案分类\), void \(作废\)",
        _fire_id(case_id, "resolve", GRID_WORKER, resolution="x"),
    )
    _rejected(db, TriggerNotAllowed, "not a trigger", _fire_id(case_id, "teleport", CENTER))


def test_closed_case_allows_nothing(db):
    case_id = _case_in(db, "verified")
    _rejected(db, TriggerNotAllowed, "the case is closed", _fire_id(case_id, "rework", CENTER, reason="x"))


def test_missing_and_unknown_fields(db):
    case_id = _case_in(db, "reported")
    _rejected(db, FieldError, r"missing category \(事件类别\), priority", _fire_id(case_id, "classify", CENTER))
    _rejected(
        db,
        FieldError,
        "unknown field 'colour'",
        _fire_id(case_id, "classify", CENTER, category="water_supply", priority="urgent", colour="red"),
    )
    _rejected(
        db,
        FieldError,
        "'huge' is not one of",
        _fire_id(case_id, "classify", CENTER, category="water_supply", priority="huge"),
    )


def test_verify_needs_a_satisfaction_rating(db):
    case_id = _case_in(db, "resolved")
    _rejected(db, FieldError, r"missing satisfaction \(群众满意度\)", _fire_id(case_id, "verify", CENTER))


def test_wrong_role(db):
    case_id = _case_in(db, "reported")
    _rejected(
        db,
        PermissionDenied,
        "needs 网格管理中心 center; has grid_worker",
        _fire_id(case_id, "classify", GRID_WORKER, category="water_supply", priority="urgent"),
    )


def test_grid_worker_cannot_act_in_another_grid(db):
    with db.session() as s:
        from engine.store.models import RoleAssignment

        other = s.scalars(
            select(RoleAssignment.person_id).where(
                RoleAssignment.role == "grid_worker", RoleAssignment.place_id == "mayingtai-02"
            )
        ).one()
    _rejected(db, PermissionDenied, "may not report a case in grid mayingtai-01", lambda s: report(s, actor=other))
    case_id = _case_in(db, "assigned")
    _rejected(db, PermissionDenied, "needs 处置人 assignee", _fire_id(case_id, "accept", other))


def test_assignee_must_cover_the_case_grid(db):
    case_id = _case_in(db, "classified")
    _rejected(
        db,
        FieldError,
        "cannot handle cases of grid mayingtai-01",
        _fire_id(case_id, "assign", CENTER, assignee="p-liu-zongbi"),
    )  # 迪坪村 info officer
    _rejected(db, FieldError, "no active person 'p-nobody'", _fire_id(case_id, "assign", CENTER, assignee="p-nobody"))


def test_unknown_case_person_and_grid(db):
    _rejected(db, CaseNotFound, "no case 'SL-2026-999999'", _fire_id("SL-2026-999999", "classify", CENTER))
    case_id = _case_in(db, "reported")
    _rejected(db, PersonNotFound, "no person 'p-ghost'", _fire_id(case_id, "void", "p-ghost", reason="x"))
    _rejected(db, NotFound, "no active grid cell 'atlantis-01'", lambda s: report(s, grid="atlantis-01"))


def test_stale_version_is_a_conflict(db):
    case_id = _case_in(db, "reported")
    _rejected(
        db,
        ConcurrentUpdate,
        "is at version 1, not 0",
        _fire_id(case_id, "classify", CENTER, expected=0, category="water_supply", priority="urgent"),
    )


def test_naive_time_is_rejected(db):
    case_id = _case_in(db, "reported")
    _rejected(
        db,
        NaiveDatetime,
        "naive",
        lambda s: cases.fire(
            s,
            case_id,
            "void",
            calendars=calendars(),
            actor_id=CENTER,
            fields={"reason": "x"},
            at=datetime(2026, 3, 2, 9),
        ),
    )


def test_new_version_pins_open_cases(db, tmp_path):
    from engine.definitions.loader import load_workflow_text
    from tests.support import WORKFLOW_FILE

    with db.sessions.begin() as s:
        old_case = report(s)
    text = WORKFLOW_FILE.read_text(encoding="utf-8").replace("label: 已上报", "label: 新上报")
    with db.sessions.begin() as s:
        published = workflow_repo.publish(s, load_workflow_text(text, "v2.yaml"), T0)
        assert published.created and published.row.version == 2
        again = workflow_repo.publish(s, load_workflow_text(text, "v2.yaml"), T0)
        assert not again.created
    with db.sessions.begin() as s:
        new_case = report(s)
        assert new_case.workflow_version == 2
        old = s.get(Case, old_case.id)
        old = fire(s, old, "classify", CENTER, category="water_supply", priority="normal")
        assert old.workflow_version == 1
        events = s.scalars(select(CaseEvent).where(CaseEvent.case_id == old.id)).all()
        assert {e.workflow_version for e in events} == {1}
