"""Open311 GeoReport v2 under ``/open311/v2/`` (http://wiki.open311.org/GeoReport_v2), for the county's
12345 and 综治 platforms: discovery, services, service definitions, POST and GET requests, tokens.

Each resource answers in the format its name ends with (``services.json``, ``services.xml``); JSON and
XML are drawn from the same dicts (XML with :mod:`xml.etree.ElementTree`, which escapes every value).
Errors are the spec's array, ``[{"code": 400, "description": "…"}]`` (XML ``<errors><error>…``), with
HTTP 403 for a missing, unknown or revoked ``api_key``, 404 for what does not exist, 400 for the rest.

Services and their definitions need no key (they hold no personal data); reading requests does, as the
``api_key`` query parameter or HTTP Basic (any user name, the key as password — what a client's
``.netrc`` sends). A POST is form-encoded as the spec writes it; with an ``Idempotency-Key`` header a
retry gets the first answer, and ``tokens/{key}`` names the request that POST made.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from engine.errors import ConfigError, DatabaseError, GridflowError, InputError, NotFound, PermissionDenied
from gridflow.app import Gridflow
from gridflow.app.idempotency import Answer, body_digest, dumps
from gridflow.app.open311 import Open311Query, Open311Report, principal

router = APIRouter(prefix="/open311/v2", include_in_schema=False)
log = logging.getLogger("gridflow.api.open311")
FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
# XML: the element of each item of a list, by the list's own element (the spec's ⇊ and ↴).
ITEMS = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}
ATTRIBUTE = re.compile(r"attribute\[([^\[\]]{1,64})\](\[\])?")
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
FORM = "application/x-www-form-urlencoded"
REQUESTS_PATH = "/open311/v2/requests"


def app_of(request: Request) -> Gridflow:
    return request.app.state.gridflow  # type: ignore[no-any-return]


# -- answers ----------------------------------------------------------------------------------------------------


def to_xml(root: str, data: Any) -> bytes:
    """``data`` under ``<root>``: a dict's keys are elements, a list's items are ``ITEMS[root]`` elements."""
    element = ET.Element(root)
    _fill(element, data)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(element, encoding="utf-8", xml_declaration=False)


def _fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, list):
        tag = ITEMS.get(element.tag, "item")
        for item in value:
            _fill(ET.SubElement(element, tag), item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _fill(ET.SubElement(element, key), item)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = NOT_XML.sub("", str(value))


def render(fmt: str, root: str, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if fmt == "xml":
        body = to_xml(root, data)
    else:
        body = json.dumps(data, ensure_ascii=False).encode()
    return Response(body, status_code=status, media_type=FORMATS[fmt], headers=headers)


def errors(fmt: str, status: int, description: str, headers: dict[str, str] | None = None) -> Response:
    return render(fmt, "errors", [{"code": status, "description": description}], status, headers)


def status_of(exc: GridflowError) -> int:
    """The spec: 403 for the api_key (and what its person may not do), 404 for what is not there, else 400."""
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, NotFound):
        return 404
    return 400


def answered(fmt: str, root: str, work: Callable[[], Any], status: int = 200) -> Response:
    """Run one use case; its answer, or its error as the spec's array."""
    if fmt not in FORMATS:
        return errors("json", 404, f"no format {fmt!r}: end the resource's name with .json or .xml")
    try:
        return render(fmt, root, work(), status)
    except GridflowError as exc:
        return errors(fmt, status_of(exc), str(exc))
    except Exception:
        log.exception("Open311 failed unexpectedly")
        return errors(fmt, 500, "gridflow failed unexpectedly; the error is in its log. Please report it.")


def api_key_of(request: Request) -> str | None:
    """``api_key`` from the query, else the password of HTTP Basic (a ``.netrc`` entry sends it)."""
    key = request.query_params.get("api_key")
    if key:
        return key
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            return base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2] or None
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


# -- discovery and services ---------------------------------------------------------------------------------------


@router.get("/discovery.{fmt}")
def discovery(fmt: str, request: Request) -> Response:
    url = str(request.base_url).rstrip("/") + "/open311/v2"
    return answered(fmt, "discovery", lambda: app_of(request).open311_discovery(url))


@router.get("/services.{fmt}")
def services(fmt: str, request: Request) -> Response:
    return answered(fmt, "services", app_of(request).open311_services)


@router.get("/services/{code}.{fmt}")
def service_definition(code: str, fmt: str, request: Request) -> Response:
    return answered(fmt, "service_definition", lambda: app_of(request).open311_service_definition(code))


# -- requests -----------------------------------------------------------------------------------------------------


@router.get("/requests.{fmt}")
def list_requests(fmt: str, request: Request) -> Response:
    gf = app_of(request)
    return answered(fmt, "service_requests", lambda: gf.open311_requests(api_key_of(request), _query(request, gf)))


@router.get("/requests/{code}.{fmt}")
def show_request(code: str, fmt: str, request: Request) -> Response:
    gf = app_of(request)
    return answered(fmt, "service_requests", lambda: [gf.open311_request(api_key_of(request), code)])


@router.get("/tokens/{token}.{fmt}")
def show_token(token: str, fmt: str, request: Request) -> Response:
    gf = app_of(request)
    return answered(fmt, "service_requests", lambda: [gf.open311_token(api_key_of(request), token)])


@router.get("/tokens/{token}")
def show_token_json(token: str, request: Request) -> Response:
    return show_token(token, "json", request)


@router.post("/requests.{fmt}")
async def post_request(fmt: str, request: Request) -> Response:
    """Create a service request from the spec's form (``api_key``, ``service_code``, location, …)."""
    if fmt not in FORMATS:
        return errors("json", 404, f"no format {fmt!r}: end the resource's name with .json or .xml")
    raw = await request.body()
    try:
        fields = await _form(request, raw)
    except InputError as exc:
        return errors(fmt, 400, str(exc))
    key = request.headers.get("idempotency-key")
    api_key = _first(fields, "api_key") or request.query_params.get("api_key")
    return await run_in_threadpool(_post, app_of(request), fmt, api_key, _report(fields), key, raw)


def _post(gf: Gridflow, fmt: str, api_key: str | None, sent: Open311Report, key: str | None, raw: bytes) -> Response:
    try:
        who = principal(gf.open311_client(api_key)) if key is not None else ""
        stored = gf.claim_key(who, key, "POST", REQUESTS_PATH, body_digest("POST", REQUESTS_PATH, raw)) if key else None
    except GridflowError as exc:
        return errors(fmt, status_of(exc), str(exc))
    if stored is not None:
        data = json.loads(stored.body)
        root = "errors" if stored.status >= 400 else "service_requests"
        return render(fmt, root, data, stored.status, {"Idempotent-Replayed": "true", **_location(data, fmt)})
    keep = True
    try:
        made = [gf.open311_report(api_key, sent)]
        status, root, data = 201, "service_requests", made
    except (DatabaseError, ConfigError) as exc:  # not the request's fault: a retry may do the work
        keep = False
        status, root, data = 400, "errors", [{"code": 400, "description": str(exc)}]
    except GridflowError as exc:
        status, root = status_of(exc), "errors"
        data = [{"code": status, "description": str(exc)}]
    except BaseException:
        if key:
            gf.store_answer(who, key, Answer(500, {}, ""))  # releases the claim
        raise
    if key:
        gf.store_answer(who, key, Answer(status if keep else 500, {}, dumps(data)))
    return render(fmt, root, data, status, _location(data, fmt) if status == 201 else None)


def _location(data: Any, fmt: str) -> dict[str, str]:
    if isinstance(data, list) and data and isinstance(data[0], dict) and "service_request_id" in data[0]:
        return {"Location": f"{REQUESTS_PATH}/{data[0]['service_request_id']}.{fmt}"}
    return {}


async def _form(request: Request, raw: bytes) -> dict[str, list[str]]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    out: dict[str, list[str]] = {}
    if kind == FORM:
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False, errors="strict")
        except UnicodeDecodeError:
            raise InputError("the form is not UTF-8; the spec wants UTF-8 everywhere") from None
        for name, value in pairs:
            out.setdefault(name, []).append(value)
        return out
    if kind == "multipart/form-data":
        form = await request.form()
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                raise InputError("files are not taken here: send the photo's address as media_url")
            out.setdefault(name, []).append(value)
        return out
    raise InputError(f"the body is {kind or 'untyped'}; send the spec's form (Content-Type: {FORM}; charset=utf-8)")


def _first(fields: dict[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    return values[0] if values and values[0].strip() else None


def _report(fields: dict[str, list[str]]) -> Open311Report:
    attributes: dict[str, list[str]] = {}
    for name, values in fields.items():
        found = ATTRIBUTE.fullmatch(name)
        if found:
            attributes.setdefault(found.group(1), []).extend(values)
    plain = (
        "service_code", "lat", "long", "address_string", "address_id", "description", "media_url", "first_name",
        "last_name", "phone", "email",
    )  # fmt: skip
    return Open311Report(**{name: _first(fields, name) for name in plain}, attributes=attributes)


def _query(request: Request, gf: Gridflow) -> Open311Query:
    params = request.query_params

    def listed(name: str) -> tuple[str, ...]:
        return tuple(part.strip() for value in params.getlist(name) for part in value.split(",") if part.strip())

    def number(name: str, default: int) -> int:
        text = (params.get(name) or "").strip()
        if not text:
            return default
        if not text.isdigit() or len(text) > 6:
            raise InputError(f"{name} {text!r}: a whole number")
        return int(text)

    return Open311Query(
        ids=listed("service_request_id"),
        service_codes=listed("service_code"),
        start=_when(params.get("start_date"), "start_date", gf),
        end=_when(params.get("end_date"), "end_date", gf),
        statuses=tuple(s.lower() for s in listed("status")),
        page=number("page", 1),
        page_size=number("page_size", Open311Query.page_size),
    )


def _when(text: str | None, name: str, gf: Gridflow) -> datetime | None:
    """A W3C date-time (2026-11-01T00:00:00Z, …+08:00); without an offset, the township's local time."""
    if not text or not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"{name} {text!r}: write it in W3C form, e.g. 2026-11-01T00:00:00+08:00 or …Z") from None
    return value if value.tzinfo else value.replace(tzinfo=gf.tz)


@router.get("/openapi.json")
def openapi_document() -> Response:
    """The OpenAPI document of these endpoints' JSON forms (:mod:`gridflow.api.open311_spec`)."""
    from gridflow.api.open311_spec import document

    return render("json", "openapi", document())


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def nothing_here(rest: str, request: Request) -> Response:
    fmt = "xml" if rest.endswith(".xml") else "json"
    return errors(fmt, 404, f"there is no {request.method} {request.url.path}; see /open311/v2/discovery.json")
