"""REST for scores and postings: ``/api/v1/scores/…``, ``/api/v1/postings/…``, objections and decisions.

Scores and postings are the township's public record: anyone signed in reads them. Anyone signed in
may lodge an objection (异议) within a posting's window, in their own name; only the centre decides.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import Field, StringConstraints

from engine.errors import PermissionDenied
from engine.text import MAX_ID
from gridflow.api import schemas
from gridflow.api.rest import ERRORS, Viewer, app_of

router = APIRouter(prefix="/api/v1")
Period = Annotated[str, StringConstraints(min_length=4, max_length=7, pattern=r"^\d{4}(-\d{1,2}|[Qq][1-4])?$")]
Kind = Literal["quarterly", "annual"]


class ObjectionIn(schemas.Body):
    """An objection to a posting: what it disputes (a grid, a worker, a household …) and why."""

    subject: Annotated[str, StringConstraints(min_length=3, max_length=100)] = Field(
        description="What is disputed, e.g. grid:mayingtai-01, worker:p-an-yixuan, household:MYT-1-0002."
    )
    reason: Annotated[str, StringConstraints(min_length=2, max_length=2000)]
    cases: list[Annotated[str, StringConstraints(max_length=32)]] = Field(default_factory=list, max_length=100)
    entries: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(default_factory=list, max_length=100)


class DecisionIn(schemas.Body):
    uphold: bool
    note: Annotated[str, StringConstraints(min_length=2, max_length=2000)]


@router.get("/scores/{period}", responses=ERRORS, tags=["scores"])
def show_scores(
    period: Period,
    request: Request,
    who: Viewer,
    by: Annotated[Literal["grid", "worker", "village"] | None, Query()] = None,
    run: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> dict[str, Any]:
    """A month's (or quarter's) scores: composite, grade, rank and indicators, of one kind of subject or all."""
    return app_of(request).score_show(period, run=run, by=by).data


@router.get("/scores/{period}/history", responses=ERRORS, tags=["scores"])
def score_history(period: Period, request: Request, who: Viewer) -> list[dict[str, Any]]:
    """Every run of a period: the current one and those it replaced (rules version, reason)."""
    return app_of(request).score_history(period)


@router.get("/postings", responses=ERRORS, tags=["postings"])
def list_postings(request: Request, who: Viewer) -> list[dict[str, Any]]:
    """Every version of every posting (季公示, 年总结), newest period first."""
    return app_of(request).list_postings()


@router.get("/postings/{kind}/{period}", responses=ERRORS, tags=["postings"])
def show_posting(
    kind: Kind,
    period: Period,
    request: Request,
    who: Viewer,
    version: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> dict[str, Any]:
    """One posting version (default the current): figures, red and black lists, objections, public link."""
    view = app_of(request).show_posting(kind, period, version)
    return {**view.data, "link": view.link or None}


@router.post("/postings/{kind}/{period}/objections", status_code=201, responses=ERRORS, tags=["postings"])
def lodge_objection(kind: Kind, period: Period, body: ObjectionIn, request: Request, who: Viewer) -> dict[str, Any]:
    """Object to a posting within its window, in the signed-in person's name."""
    return app_of(request).lodge_objection(
        kind, period, body.subject, f"{who.name} ({who.person_id})", body.reason, cases=body.cases, entries=body.entries
    )


@router.post("/objections/{objection_id}/decision", responses=ERRORS, tags=["postings"])
def decide_objection(objection_id: int, body: DecisionIn, request: Request, who: Viewer) -> dict[str, Any]:
    """Uphold (recompute and republish) or reject an objection — the centre only."""
    if not who.is_admin:
        raise PermissionDenied(f"{who.name} ({who.person_id}) may not decide objections: the centre does")
    posted = app_of(request).decide_objection(
        objection_id, uphold=body.uphold, by=f"{who.name} ({who.person_id})", note=body.note
    )
    if posted is None:
        return {"objection": objection_id, "upheld": False}
    return {"objection": objection_id, "upheld": True, "posting": posted.posting.data, "notices": posted.notices}
