"""Errors as ``application/problem+json`` (RFC 9457), with the same what/where/what-to-do text as the CLI.

Each problem carries ``type`` (a stable URI naming the kind), ``title``, ``status``, ``detail`` (the
message a person reads), ``code`` (machine-readable: the error class, e.g. ``TriggerNotAllowed``) and,
for a body that does not validate, ``errors``: every field problem at once, each with the field's
location (``body.fields.category``) and what was wrong.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine import accounts
from engine.errors import (
    CommandRejected,
    ConcurrentUpdate,
    ConfigError,
    DatabaseError,
    FieldError,
    GridflowError,
    GuardFailed,
    InputError,
    NotFound,
    NotYet,
    PermissionDenied,
    SourceError,
    TriggerNotAllowed,
)

PROBLEM = "application/problem+json"
TYPE_BASE = "https://gridflow.example/problems/"
log = logging.getLogger("gridflow.api")

# Most specific first: the first branch an error belongs to gives its HTTP status.
STATUSES: list[tuple[type[GridflowError], int, str]] = [
    (accounts.TooManyAttempts, 429, "Too many attempts"),
    (accounts.NotSignedIn, 401, "Not signed in"),
    (PermissionDenied, 403, "Not allowed"),
    (FieldError, 422, "Fields are not right"),
    (SourceError, 422, "The file has problems"),
    (TriggerNotAllowed, 409, "Not possible in this state"),
    (GuardFailed, 409, "A condition is not met"),
    (CommandRejected, 409, "Refused, nothing changed"),
    (NotFound, 404, "Not found"),
    (ConcurrentUpdate, 412, "The case changed meanwhile"),
    (InputError, 422, "A value is not right"),
    (NotYet, 409, "Not yet"),
    (DatabaseError, 503, "The database is not available"),
    (ConfigError, 500, "gridflow is not configured right"),
]


class Problem(Exception):
    """A problem raised by a route itself (not an engine error)."""

    def __init__(
        self, status: int, title: str, detail: str, code: str, headers: dict[str, str] | None = None, **extra: Any
    ):
        super().__init__(detail)
        self.status, self.title, self.detail, self.code, self.extra = status, title, detail, code, extra
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return problem_response(self.status, self.title, self.detail, self.code, self.headers, **self.extra)


def problem_response(
    status: int, title: str, detail: str, code: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"type": TYPE_BASE + code, "title": title, "status": status, "detail": detail, "code": code, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def for_error(exc: GridflowError) -> JSONResponse:
    status, title = next(((s, t) for kind, s, t in STATUSES if isinstance(exc, kind)), (500, "Internal error"))
    headers = {}
    if isinstance(exc, accounts.TooManyAttempts):
        headers["Retry-After"] = str(exc.retry_after_s)
    if type(exc).__name__ == "KeyInProgress":
        headers["Retry-After"] = "1"
    if isinstance(exc, accounts.NotSignedIn):
        headers["WWW-Authenticate"] = 'Bearer realm="gridflow"'
    extra: dict[str, Any] = {}
    problems = getattr(exc, "problems", None)
    if problems:
        extra["errors"] = [{"detail": str(p)} for p in problems]
    current = getattr(exc, "current", None)
    if current is not None:
        extra["current"] = current
    return problem_response(status, title, str(exc), type(exc).__name__, headers, **extra)


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def install(app: FastAPI) -> None:
    """Every error of every route answers as a problem."""

    @app.exception_handler(GridflowError)
    async def gridflow_error(request: Request, exc: GridflowError) -> JSONResponse:
        return for_error(exc)

    @app.exception_handler(Problem)
    async def own_problem(request: Request, exc: Problem) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _location(e.get("loc", ())), "detail": e.get("msg", ""), "kind": e.get("type", "")}
            for e in exc.errors()
        ]
        listed = "; ".join(f"{e['field']}: {e['detail']}" for e in errors[:10])
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        return problem_response(
            422,
            "The request is not right",
            f"{len(errors)} problem(s): {listed}{more}. Correct them and send it again.",
            "RequestInvalid",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "see the status"
        code = {404: "NoSuchPath", 405: "MethodNotAllowed"}.get(exc.status_code, f"Http{exc.status_code}")
        return problem_response(exc.status_code, detail, _http_detail(request, exc.status_code, detail), code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(
            500, "Internal error", "gridflow failed unexpectedly; the error is in its log. Please report it.", "Bug"
        )


def _http_detail(request: Request, status: int, detail: str) -> str:
    if status == 404:
        return f"there is nothing at {request.url.path}; the API is described at /api/v1/docs"
    if status == 405:
        return f"{request.method} is not allowed on {request.url.path}; see /api/v1/docs"
    return detail
