"""The web pages (网页端): the centre's workbench and the case page, server-rendered from the application
layer (:class:`gridflow.app.Gridflow`) with Jinja2, in Chinese.

Every page is built from the same use cases as the API and the CLI; access is decided by :mod:`engine.access`
inside them. A browser signs in with a phone number and a password or an SMS code and gets the session in an
HttpOnly, SameSite cookie; every form carries a CSRF token checked against a second cookie; every page says
``Content-Security-Policy`` with scripts and styles only from gridflow itself (no inline script, no CDN).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi.staticfiles import StaticFiles

from gridflow.web import pages

if TYPE_CHECKING:
    from fastapi import FastAPI

STATIC = Path(__file__).resolve().parent / "static"


def install(app: FastAPI) -> None:
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
