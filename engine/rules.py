"""The whitelist of guards and effects a workflow may name.

Supervisor YAML names these; it can never name arbitrary code. A guard returns
``None`` when the trigger may fire, or a message (in English, with the Chinese
term where useful) saying why not. An effect changes the case after the checks
passed. Both receive a :class:`StepContext`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class CaseLike(Protocol):
    assignee_id: str | None
    rework_count: int
    extension_count: int
    pending_extension: dict[str, Any] | None


@dataclass
class StepContext:
    case: CaseLike
    trigger: str
    actor_id: str
    fields: dict[str, Any]
    at: datetime
    workflow: Mapping[str, Any] = field(default_factory=dict)  # the workflow's extras (extensions, ...)


Guard = Callable[[StepContext], str | None]
Effect = Callable[[StepContext], None]


def _extension_pending(ctx: StepContext) -> str | None:
    if ctx.case.pending_extension is None:
        return "no extension request (延期申请) is pending on this case; request_extension first"
    return None


def _no_extension_pending(ctx: StepContext) -> str | None:
    if ctx.case.pending_extension is not None:
        return "an extension request (延期申请) is already pending; the centre must approve or reject it first"
    return None


def _extension_allowed(ctx: StepContext) -> str | None:
    limit = ctx.workflow.get("extensions", {}).get("max_per_case")
    if limit is not None and ctx.case.extension_count >= limit:
        return f"this case already had {ctx.case.extension_count} extension(s) (延期); the workflow allows {limit}"
    return None


def _clear_assignee(ctx: StepContext) -> None:
    ctx.case.assignee_id = None


def _count_rework(ctx: StepContext) -> None:
    ctx.case.rework_count += 1


def _open_extension_request(ctx: StepContext) -> None:
    ctx.case.pending_extension = {
        "extend_by": str(ctx.fields["extend_by"]),
        "requested_by": ctx.actor_id,
        "requested_at": ctx.at.isoformat(),
    }


def _approve_extension(ctx: StepContext) -> None:
    ctx.fields.setdefault("extend_by", (ctx.case.pending_extension or {}).get("extend_by"))
    ctx.case.pending_extension = None
    ctx.case.extension_count += 1


def _reject_extension(ctx: StepContext) -> None:
    ctx.case.pending_extension = None


GUARDS: dict[str, Guard] = {
    "extension_pending": _extension_pending,
    "no_extension_pending": _no_extension_pending,
    "extension_allowed": _extension_allowed,
}

EFFECTS: dict[str, Effect] = {
    "clear_assignee": _clear_assignee,
    "count_rework": _count_rework,
    "open_extension_request": _open_extension_request,
    "approve_extension": _approve_extension,
    "reject_extension": _reject_extension,
}
