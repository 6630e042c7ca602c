"""The routes of the web pages: sign-in and sign-out, the workbench and its queues, the case page and its steps.

A route reads the request, calls use cases of :class:`gridflow.app.Gridflow`, and renders a template; it holds
no rule of its own. Every input from the browser is hostile until a use case has checked it: form fields are
read as text, the ``next`` address after sign-in must be a path of this site, a cursor or a sort the search
does not know is a 400 page saying so.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from engine import access
from engine.accounts import NotSignedIn, TooManyAttempts
from engine.errors import GridflowError
from gridflow.app import Gridflow
from gridflow.app.scoped import StaleVersion
from gridflow.present import local_text, parse_iso
from gridflow.web import clocks

router = APIRouter(include_in_schema=False)
TEMPLATES = Path(__file__).resolve().parent / "templates"
SESSION = "gridflow_session"
CSRF = "gridflow_csrf"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SORTS = {"reported_at": "上报时间", "due_at": "到期时间", "updated_at": "更新时间"}
MAX_FORM = 64 * 1024

env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), auto_reload=False)
env.globals["sorts"] = SORTS


def app_of(request: Request) -> Gridflow:
    return request.app.state.gridflow  # type: ignore[no-any-return]


def address_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _local(gf: Gridflow, text: str | None) -> str:
    return local_text(parse_iso(text), gf.tz) if text else ""


# -- rendering, cookies and CSRF ---------------------------------------------------------------------


def _csrf(request: Request) -> tuple[str, bool]:
    """The browser's CSRF token, and whether it is new (then the answer sets its cookie)."""
    token = request.cookies.get(CSRF, "")
    if len(token) == 43 and token.replace("-", "").replace("_", "").isalnum():
        return token, False
    return secrets.token_urlsafe(32), True


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    token, new = _csrf(request)
    gf = app_of(request)
    html = env.get_template(name).render(request=request, csrf=token, local=lambda t: _local(gf, t), **context)
    response = HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": CSP})
    if new:
        response.set_cookie(CSRF, token, httponly=True, samesite="strict", secure=_secure(request), path="/")
    return response


async def form_of(request: Request) -> dict[str, str]:
    """The posted form (``application/x-www-form-urlencoded``), each field's first value as text; the
    CSRF token is checked here, so no form is read without it."""
    body = await request.body()
    if len(body) > MAX_FORM:
        raise FormRefused(413, "表单内容过长")
    try:
        fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
    except UnicodeDecodeError:
        raise FormRefused(400, "表单编码错误（应为 UTF-8）") from None
    cookie = request.cookies.get(CSRF, "")
    if not cookie or not hmac.compare_digest(cookie, fields.get("csrf", "")):
        raise FormRefused(403, "表单已过期或来源不明，请刷新页面后重试")
    return fields


class FormRefused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def refused(request: Request, exc: FormRefused) -> HTMLResponse:
    return page(request, "error.html", status=exc.status, title="无法处理", message=exc.message, viewer=None)


async def signed_in(request: Request) -> access.Viewer | None:
    token = request.cookies.get(SESSION)
    if not token:
        return None
    try:
        return await run_in_threadpool(app_of(request).viewer_for_token, token, address_of(request))
    except (NotSignedIn, TooManyAttempts):
        return None


def to_sign_in(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def _safe_next(value: str | None) -> str:
    """A path of this site to go to after sign-in; anything else (another site, a scheme) goes home."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(c) < 32 for c in value)
    ):
        return "/"
    return value


# -- sign-in ----------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> Response:
    return page(request, "login.html", viewer=None, next=_safe_next(request.query_params.get("next")))


def _session_cookie(response: Response, request: Request, issued: dict[str, Any]) -> None:
    expires = parse_iso(issued.get("expires_at"))
    max_age = int((expires - app_of(request).clock()).total_seconds()) if expires else None
    response.set_cookie(
        SESSION, issued["token"], httponly=True, samesite="lax", secure=_secure(request), path="/", max_age=max_age
    )


@router.post("/login")
async def login(request: Request) -> Response:
    try:
        form = await form_of(request)
    except FormRefused as exc:
        return refused(request, exc)
    gf, target = app_of(request), _safe_next(form.get("next"))
    phone, how = form.get("phone", "").strip(), form.get("how", "password")
    try:
        if how == "send_code":
            await run_in_threadpool(gf.request_code, phone, address_of(request))
            return page(request, "login.html", viewer=None, next=target, phone=phone, code_sent=True)
        if how == "code":
            issued = await run_in_threadpool(gf.sign_in_code, phone, form.get("code", "").strip(), address_of(request))
        else:
            issued = await run_in_threadpool(gf.sign_in_password, phone, form.get("password", ""), address_of(request))
    except (NotSignedIn, TooManyAttempts, GridflowError) as exc:
        status = 429 if isinstance(exc, TooManyAttempts) else 401 if isinstance(exc, NotSignedIn) else 400
        return page(request, "login.html", status=status, viewer=None, next=target, phone=phone, error=str(exc),
                    code_sent=how == "code")  # fmt: skip
    response = RedirectResponse(target, status_code=303)
    _session_cookie(response, request, issued)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    try:
        await form_of(request)
    except FormRefused as exc:
        return refused(request, exc)
    token = request.cookies.get(SESSION)
    if token:
        await run_in_threadpool(app_of(request).sign_out, token, address_of(request))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION, path="/")
    return response


# -- the workbench ----------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    viewer = await signed_in(request)
    if viewer is None:
        return to_sign_in(request)
    return RedirectResponse("/workbench", status_code=303)


@router.get("/workbench", response_class=HTMLResponse)
async def workbench(request: Request) -> Response:
    viewer = await signed_in(request)
    if viewer is None:
        return to_sign_in(request)
    counts = await run_in_threadpool(app_of(request).queue_counts, viewer)
    return page(request, "workbench.html", viewer=viewer, queues=counts)


@router.get("/queues/{name}", response_class=HTMLResponse)
async def queue(request: Request, name: str) -> Response:
    viewer = await signed_in(request)
    if viewer is None:
        return to_sign_in(request)
    gf = app_of(request)
    sort = request.query_params.get("sort") or None
    cursor = request.query_params.get("cursor") or None
    try:
        found = await run_in_threadpool(lambda: gf.queue_cases(viewer, name, sort=sort, cursor=cursor, limit=50))
        counts = await run_in_threadpool(gf.queue_counts, viewer)
    except GridflowError as exc:
        return page(request, "error.html", status=400, title="无法列出", message=str(exc), viewer=viewer)
    return page(request, "queue.html", viewer=viewer, found=found, queues=counts, sort=sort or "", cursor=cursor)


# -- the case page ----------------------------------------------------------------------------------


async def _case_context(request: Request, viewer: access.Viewer, code: str) -> dict[str, Any]:
    gf = app_of(request)

    def load() -> dict[str, Any]:
        case = gf.case_for(viewer, code)
        history = gf.history_for(viewer, code)
        explained = gf.sla_for(viewer, code)
        forms = gf.step_forms(viewer, code)
        labels = gf.case_labels(viewer, code)
        return {"case": case, "events": history["events"], "explained": explained, "forms": forms, "labels": labels}

    data = await run_in_threadpool(load)
    states = data["labels"]["states"]
    data["bars"] = clocks.bars(data["explained"], gf.calendar, gf.clock(), lambda s: states.get(s, s or ""))
    data["width"] = clocks.WIDTH
    return data


@router.get("/cases/{code}", response_class=HTMLResponse)
async def case_page(request: Request, code: str) -> Response:
    viewer = await signed_in(request)
    if viewer is None:
        return to_sign_in(request)
    try:
        context = await _case_context(request, viewer, code)
    except GridflowError as exc:
        return page(request, "error.html", status=getattr(exc, "http_status", 404), title="找不到事件",
                    message=str(exc), viewer=viewer)  # fmt: skip
    done = request.query_params.get("done")
    return page(request, "case.html", viewer=viewer, done=done, **context)


@router.post("/cases/{code}/steps")
async def step(request: Request, code: str) -> Response:
    viewer = await signed_in(request)
    if viewer is None:
        return to_sign_in(request)
    try:
        form = await form_of(request)
    except FormRefused as exc:
        return refused(request, exc)
    gf = app_of(request)
    trigger = form.get("trigger", "")
    fields = {k[2:]: v for k, v in form.items() if k.startswith("f_") and v.strip() != ""}
    try:
        version = int(form.get("version", ""))
    except ValueError:
        version = None
    try:
        await run_in_threadpool(lambda: gf.step_as(viewer, code, trigger, fields, expected_version=version))
    except StaleVersion:
        context = await _case_context(request, viewer, code)
        return page(request, "case.html", status=409, viewer=viewer, conflict=True, tried=trigger, **context)
    except GridflowError as exc:
        try:
            context = await _case_context(request, viewer, code)
        except GridflowError:
            return page(request, "error.html", status=404, title="找不到事件", message=str(exc), viewer=viewer)
        return page(request, "case.html", status=422, viewer=viewer, error=str(exc), tried=trigger, posted=form,
                    **context)  # fmt: skip
    return RedirectResponse(f"/cases/{quote(code)}?done={quote(trigger)}", status_code=303)
