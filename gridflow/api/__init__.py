"""The HTTP API (FastAPI): REST under ``/api/v1/``, on the application layer (:class:`gridflow.app.Gridflow`).

Routes parse, call one use case, and answer; access is decided by :mod:`engine.access` inside the
application, errors are problems (:mod:`gridflow.api.problems`). ``create_app`` takes the application,
so tests, ``gridflow up`` and ``gridflow serve`` build it alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from gridflow import web
from gridflow.api import docs, guards, open311, problems, rest, rest_points, rest_scores

if TYPE_CHECKING:
    from gridflow.app import Gridflow

VERSION = "1"


def create_app(gf: Gridflow) -> FastAPI:
    app = FastAPI(
        title="gridflow API",
        version=VERSION,
        description=(
            "网格化治理事件流转与时限引擎 — cases, steps, SLA clocks, notices, scores, postings and points of the "
            "township, as the CLI has them. Sign in with `POST /api/v1/auth/password` or an SMS code, or use a "
            "token made by `gridflow token create`; send it as `Authorization: Bearer <token>`. Errors are "
            "`application/problem+json` (RFC 9457)."
        ),
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.gridflow = gf
    problems.install(app)
    guards.install(app)
    app.include_router(rest.router)
    app.include_router(rest_scores.router)
    app.include_router(rest_points.router)
    app.include_router(open311.router)
    docs.install(app)
    web.install(app)
    return app
