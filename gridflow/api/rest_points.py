"""REST for households and their points: ``/api/v1/households/…`` (户档, 积分, 积分超市).

A household outside the caller's grids does not exist for them (404), as a case does; ID numbers and
phones are masked unless the caller's role may see them. Recording and redeeming act in the signed-in
person's name; the ledger's own rules (who may record which rule, approvals, limits) decide the rest.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field, StringConstraints, field_validator
from starlette.concurrency import run_in_threadpool

from engine.points.store import MAX_LINES, MAX_QUANTITY
from gridflow.api import schemas
from gridflow.api.rest import ERRORS, IdemKey, Viewer, app_of, once

router = APIRouter(prefix="/api/v1")
HouseholdId = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]


class PointsIn(schemas.Body):
    """A points entry: the rule of config/points.yaml, the day it happened, what shows it."""

    rule: schemas.Id
    on: Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = Field(
        None, description="YYYY-MM-DD: a day of the open month (config/points.yaml `backdate`)"
    )
    evidence: Annotated[str, StringConstraints(max_length=500)] | None = None
    case: Annotated[str, StringConstraints(max_length=32)] | None = None

    @field_validator("on")
    @classmethod
    def _a_real_day(cls, value: str | None) -> str | None:
        """2026-02-30 matches the pattern but is no day: refused here (it was a 500), not in the route."""
        if value is not None:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value} is not a day of the calendar: write it like 2026-11-27") from None
        return value


class RedeemIn(schemas.Body):
    """Goods of the village's points store by code, with how many of each."""

    items: dict[schemas.Id, Annotated[int, Field(ge=1, le=MAX_QUANTITY)]] = Field(min_length=1, max_length=MAX_LINES)


@router.get("/households", responses=ERRORS, tags=["households"])
def list_households(
    request: Request,
    who: Viewer,
    village: Annotated[str | None, Query(max_length=64)] = None,
    grid: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """The households of the caller's grids (or village, or township), heads and members."""
    return app_of(request).list_households(village=village, grid=grid, limit=limit, viewer=who)


@router.get("/households/{household}", responses=ERRORS, tags=["households"])
def show_household(household: HouseholdId, request: Request, who: Viewer) -> dict[str, Any]:
    """One household and its residents (ID numbers and phones masked by role)."""
    return app_of(request).show_household(household, viewer=who)


@router.get("/households/{household}/points", responses=ERRORS, tags=["households"])
def points_of(
    household: HouseholdId, request: Request, who: Viewer, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> dict[str, Any]:
    """A household's balance and its ledger entries, newest first."""
    gf = app_of(request)
    gf.show_household(household, viewer=who)  # outside the caller's scope: 404
    return {"balance": gf.points_balance(household), "entries": gf.list_points(household=household, limit=limit)}


@router.post("/households/{household}/points", status_code=201, responses=ERRORS, tags=["households"])
async def record_points(
    household: HouseholdId, body: PointsIn, request: Request, who: Viewer, key: IdemKey = None
) -> Any:
    """Record a points entry in the caller's name (some rules wait for a second person's approval)."""
    raw = await request.body()
    gf = app_of(request)

    def work() -> JSONResponse:
        gf.show_household(household, viewer=who)
        done = gf.record_points(
            household, body.rule, actor=who.person_id, on=date.fromisoformat(body.on) if body.on else None,
            evidence=body.evidence, case=body.case, key=key, viewer=who,
        )  # fmt: skip
        return JSONResponse(done, status_code=201)

    return await run_in_threadpool(once, request, who, key, raw, work)


@router.post("/households/{household}/redemptions", status_code=201, responses=ERRORS, tags=["households"])
async def redeem(household: HouseholdId, body: RedeemIn, request: Request, who: Viewer, key: IdemKey = None) -> Any:
    """Redeem points for goods of the village's store (积分超市) in the caller's name; the receipt's lines."""
    raw = await request.body()
    gf = app_of(request)

    def work() -> JSONResponse:
        gf.show_household(household, viewer=who)
        return JSONResponse(
            gf.redeem_points(household, dict(body.items), actor=who.person_id, key=key), status_code=201
        )

    return await run_in_threadpool(once, request, who, key, raw, work)
