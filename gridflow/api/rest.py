"""REST under ``/api/v1/``: sign-in, the caller, cases (report, list, show, steps, history, SLA).

Names follow the CLI's: ``POST /cases`` is ``gridflow case report``, ``POST /cases/{code}/steps`` is
``gridflow case fire``. Each case answers with an ``ETag`` of its version; a step with ``If-Match``
that no longer matches gets 412 and the case as it is now. Every POST that changes something takes an
``Idempotency-Key``: a retry gets the first answer again and changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from engine import access, case_search
from engine.accounts import NotSignedIn
from engine.errors import GridflowError
from gridflow.api import schemas
from gridflow.api.problems import PROBLEM, Problem, for_error
from gridflow.app import Gridflow
from gridflow.app.idempotency import Answer, body_digest
from gridflow.app.scoped import StaleVersion

router = APIRouter(prefix="/api/v1")
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": schemas.ProblemOut, "content": {PROBLEM: {}}}
    for code in (401, 403, 404, 409, 412, 413, 415, 422, 429, 503)
}


def app_of(request: Request) -> Gridflow:
    return request.app.state.gridflow  # type: ignore[no-any-return]


def address_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def viewer(request: Request, authorization: Annotated[str | None, Header()] = None) -> access.Viewer:
    """The signed-in caller, from ``Authorization: Bearer <token>``."""
    if not authorization:
        raise NotSignedIn("not signed in: send Authorization: Bearer <token> (sign in at /api/v1/auth/password)")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotSignedIn("Authorization must be 'Bearer <token>'")
    return app_of(request).viewer_for_token(token.strip(), address_of(request))


Viewer = Annotated[access.Viewer, Depends(viewer)]
IdemKey = Annotated[
    str | None, Header(alias="Idempotency-Key", description="Makes a retry safe: same key, same answer.")
]


def etag(case: dict[str, Any]) -> str:
    return f'"v{case["version"]}"'


def case_response(case: dict[str, Any], status: int = 200, location: bool = False) -> JSONResponse:
    headers = {"ETag": etag(case)}
    if location:
        headers["Location"] = f"/api/v1/cases/{case['code']}"
    return JSONResponse(case, status_code=status, headers=headers)


def once(
    request: Request, who: access.Viewer, key: str | None, body: bytes, work: Callable[[], JSONResponse]
) -> Response:
    """Run ``work`` once per Idempotency-Key; a retry gets the stored answer (header ``Idempotent-Replayed``)."""
    if key is None:
        return work()
    gf = app_of(request)
    principal = f"person:{who.person_id}"
    digest = body_digest(request.method, request.url.path, body)
    stored = gf.claim_key(principal, key, request.method, request.url.path, digest)
    if stored is not None:
        headers = {**stored.headers, "Idempotent-Replayed": "true"}
        return Response(
            stored.body, status_code=stored.status, headers=headers, media_type=headers.pop("content-type", None)
        )
    try:
        answer = work()
    except GridflowError as exc:
        answer = for_error(exc)
    except Problem as exc:
        answer = exc.response()
    except BaseException:
        gf.store_answer(principal, key, Answer(500, {}, ""))  # releases the claim: a retry does the work
        raise
    kept = {k: v for k, v in answer.headers.items() if k.lower() in ("etag", "location", "content-type", "retry-after")}
    gf.store_answer(principal, key, Answer(answer.status_code, kept, bytes(answer.body).decode()))
    return answer


# -- sign-in -------------------------------------------------------------------------------------------


@router.post("/auth/password", response_model=schemas.SessionOut, responses=ERRORS, tags=["sign-in"])
def sign_in_password(body: schemas.PasswordIn, request: Request) -> dict[str, Any]:
    """Sign in with a phone number and password; the answer's ``token`` is a session for 12 hours."""
    return app_of(request).sign_in_password(body.phone, body.password, address_of(request))


@router.post("/auth/code", response_model=schemas.CodeSentOut, status_code=202, responses=ERRORS, tags=["sign-in"])
def request_code(body: schemas.CodeRequestIn, request: Request) -> dict[str, Any]:
    """Send a one-time sign-in code by SMS (the same answer whether or not the phone has an account)."""
    return app_of(request).request_code(body.phone, address_of(request))


@router.post("/auth/code/verify", response_model=schemas.SessionOut, responses=ERRORS, tags=["sign-in"])
def sign_in_code(body: schemas.CodeIn, request: Request) -> dict[str, Any]:
    """Sign in with the code just sent; the answer's ``token`` is a session for 12 hours."""
    return app_of(request).sign_in_code(body.phone, body.code, address_of(request))


@router.get("/me", response_model=schemas.MeOut, responses=ERRORS, tags=["sign-in"])
def me(who: Viewer) -> dict[str, Any]:
    """Who the token belongs to, their roles and whether they see the whole township."""
    return {
        "person": who.person_id,
        "name": who.name,
        "roles": [{"role": r, "place": p} for r, p in sorted(who.roles)],
        "township_wide": who.township_wide,
    }


# -- cases ---------------------------------------------------------------------------------------------


@router.post("/cases", status_code=201, response_model=schemas.CaseOut, responses=ERRORS, tags=["cases"])
async def report_case(body: schemas.ReportIn, request: Request, who: Viewer, key: IdemKey = None) -> Response:
    """Report a case (上报) as the signed-in person; ``Location`` names it, ``ETag`` is its version."""
    raw = await request.body()
    fields: dict[str, Any] = {"title": body.title, **body.fields}
    if body.description is not None:
        fields["description"] = body.description
    gf = app_of(request)

    def work() -> JSONResponse:
        case = gf.report_as(who, grid_id=body.grid, fields=fields, workflow=body.workflow, at=body.at)
        return case_response(case, 201, location=True)

    return await run_in_threadpool(once, request, who, key, raw, work)


@router.get("/cases", response_model=schemas.CasePage, responses=ERRORS, tags=["cases"])
def list_cases(
    request: Request,
    who: Viewer,
    status: Annotated[list[str] | None, Query(description="One or more states.")] = None,
    village: Annotated[str | None, Query(max_length=64)] = None,
    grid: Annotated[str | None, Query(max_length=64)] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    priority: Annotated[str | None, Query(max_length=32)] = None,
    overdue: bool | None = None,
    breaching_within_h: Annotated[
        float | None, Query(ge=0, le=24 * 90, description="A deadline within N hours.")
    ] = None,
    assignee: Annotated[str | None, Query(max_length=64)] = None,
    reporter: Annotated[str | None, Query(max_length=64)] = None,
    source: Annotated[str | None, Query(max_length=64, description="grid_worker, open311, a client id …")] = None,
    period: Annotated[str | None, Query(description="Reported in: 2026-11, 2026Q4 or 2026.")] = None,
    open_only: Annotated[bool, Query(alias="open")] = False,
    sort: Annotated[str, Query(description=f"One of {', '.join(case_search.SORTS)}.")] = "-reported_at",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """The cases the caller sees (their grids, village or the township), filtered, a page at a time;
    follow ``next_cursor`` for the next page."""
    gf = app_of(request)
    start, end = _period(period, gf) if period else (None, None)
    flt = case_search.CaseFilter(
        status=tuple(status or ()),
        village=village,
        grid=grid,
        category=category,
        priority=priority,
        overdue=overdue,
        breaching_within=timedelta(hours=breaching_within_h) if breaching_within_h is not None else None,
        assignee=assignee,
        reporter=reporter,
        source=source,
        reported_from=start,
        reported_to=end,
        open_only=open_only,
    )
    return gf.find_cases(who, flt, sort=sort, cursor=cursor, limit=limit)


def _period(text: str, gf: Gridflow) -> tuple[datetime, datetime]:
    from engine.errors import InputError
    from engine.jobs import bounds, parse_period

    kind = "month" if "-" in text else "quarter" if "Q" in text.upper() else "year"
    try:
        return bounds(parse_period(kind, text.upper()), gf.tz)  # type: ignore[arg-type]
    except InputError as exc:
        raise InputError(f"period: {exc}") from exc


@router.get("/cases/{code}", response_model=schemas.CaseOut, responses=ERRORS, tags=["cases"])
def show_case(code: str, request: Request, who: Viewer) -> JSONResponse:
    """One case with the steps the caller may take now; ``ETag`` is its version."""
    return case_response(app_of(request).case_for(who, code))


@router.post("/cases/{code}/steps", response_model=schemas.CaseOut, responses=ERRORS, tags=["cases"])
async def take_step(
    code: str,
    body: schemas.StepIn,
    request: Request,
    who: Viewer,
    key: IdemKey = None,
    if_match: Annotated[str | None, Header(alias="If-Match", description='The ETag you read, e.g. "v3".')] = None,
) -> Response:
    """Take a step (fire a trigger) on a case; with ``If-Match`` only if it is still at that version."""
    raw = await request.body()
    expected = _version(if_match)
    gf = app_of(request)

    def work() -> JSONResponse:
        try:
            case = gf.step_as(who, code, body.trigger, dict(body.fields), expected_version=expected, at=body.at)
        except StaleVersion as exc:
            raise Problem(
                412, "The case changed meanwhile", str(exc), "StaleVersion", {"ETag": etag(exc.current)},
                current=exc.current,
            ) from None  # fmt: skip
        return case_response(case)

    return await run_in_threadpool(once, request, who, key, raw, work)


def _version(if_match: str | None) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    found = re.fullmatch(r'\s*(?:W/)?"v(\d{1,9})"\s*', if_match)
    if not found:
        from engine.errors import InputError

        raise InputError(f'If-Match {if_match!r}: send the ETag as you got it, e.g. "v3"')
    return int(found.group(1))


@router.get("/cases/{code}/history", response_model=schemas.HistoryOut, responses=ERRORS, tags=["cases"])
def case_history(code: str, request: Request, who: Viewer) -> dict[str, Any]:
    """Every step of the case: who, when, from → to, with the fields given."""
    return app_of(request).history_for(who, code)


@router.get("/cases/{code}/sla", responses=ERRORS, tags=["cases"])
def case_sla(code: str, request: Request, who: Viewer) -> dict[str, Any]:
    """The case's clocks: limits, deadlines on the business calendar, pauses, extensions and timers."""
    return app_of(request).sla_for(who, code)


@router.get("/cases/{code}/allowed", responses=ERRORS, tags=["cases"])
def allowed_steps(code: str, request: Request, who: Viewer) -> dict[str, Any]:
    """The steps the caller may take on the case now, with the fields each needs."""
    case = app_of(request).case_for(who, code)
    return {
        "case": case["code"],
        "status": case["status"],
        "version": case["version"],
        "allowed": case["allowed_triggers"],
    }


# -- org chart and workflows ---------------------------------------------------------------------------


@router.get("/org", responses=ERRORS, tags=["org"])
def org_chart(
    request: Request, who: Viewer, village: Annotated[str | None, Query(max_length=64)] = None
) -> dict[str, Any]:
    """Villages, grid cells, people and their roles (contact details masked unless one's role may see them)."""
    return app_of(request).org_for(who, village)


@router.get("/workflows", responses=ERRORS, tags=["workflows"])
def list_workflows(request: Request, who: Viewer) -> list[dict[str, Any]]:
    """Published workflow versions, oldest first."""
    return app_of(request).list_workflows()  # type: ignore[no-any-return]


@router.get("/workflows/{name}", responses=ERRORS, tags=["workflows"])
def show_workflow(
    name: str, request: Request, who: Viewer, version: Annotated[int | None, Query(ge=1)] = None
) -> dict[str, Any]:
    """A workflow's states and triggers (the latest version unless ``version`` is given)."""
    return app_of(request).show_workflow(name, version)  # type: ignore[no-any-return]


@router.post("/workflows/validate", responses=ERRORS, tags=["workflows"])
def validate_workflow(body: schemas.WorkflowIn, request: Request, who: Viewer) -> dict[str, Any]:
    """Check a workflow's YAML without publishing it: ``problems`` lists each with file:line:column."""
    return app_of(request).validate_workflow_text(body.yaml, body.file)


@router.post("/workflows", status_code=201, responses=ERRORS, tags=["workflows"])
def publish_workflow(body: schemas.WorkflowIn, request: Request, who: Viewer) -> dict[str, Any]:
    """Publish a workflow's YAML as a new version (the centre only); a YAML with problems is 422."""
    return app_of(request).publish_workflow_text(who, body.yaml, body.file)


# -- notices ----------------------------------------------------------------------------------------------


@router.get("/notices", responses=ERRORS, tags=["notices"])
def list_notices(
    request: Request,
    who: Viewer,
    status: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Notices newest first, why each waiting one waits (the centre: all; anyone else: their own)."""
    return app_of(request).notices_for(who, status=status, limit=limit)


@router.get("/notices/{notice_id}", responses=ERRORS, tags=["notices"])
def show_notice(notice_id: Annotated[int, Path(ge=1, le=2**62)], request: Request, who: Viewer) -> dict[str, Any]:
    """One notice, its parameters and every delivery attempt (the phone masked)."""
    return app_of(request).notice_for(who, notice_id)


@router.post("/notices/{notice_id}/retry", responses=ERRORS, tags=["notices"])
def retry_notice(notice_id: Annotated[int, Path(ge=1, le=2**62)], request: Request, who: Viewer) -> dict[str, Any]:
    """Send a failed notice again, on every channel (the centre only)."""
    return app_of(request).retry_notice_as(who, notice_id)
