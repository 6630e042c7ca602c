"""The OpenAPI 3.1 document of gridflow's Open311 GeoReport v2 endpoints (their JSON form), served at
``/open311/v2/openapi.json``.

GeoReport v2 predates OpenAPI and writes its resources with a format suffix (``services.json``,
``services.xml``) and form-encoded POSTs, which FastAPI's generated document cannot express; so it is
written out here, for the county's integrators to read and for the test suite to fuzz the endpoints
with (``tests/integration/test_api_fuzz.py``). The XML forms carry the same data; they are not listed.
"""

from __future__ import annotations

from typing import Any

ERRORS = {
    "description": "The spec's error array (400 bad input, 403 the api_key, 404 not there).",
    "content": {
        "application/json": {
            "schema": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["code", "description"],
                    "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
                },
            }
        }
    },
}
TEXT = {"type": "string", "maxLength": 2000}
NULLABLE_TEXT = {"type": ["string", "null"]}
REQUEST = {
    "type": "object",
    "required": ["service_request_id", "status", "service_code", "requested_datetime"],
    "properties": {
        "service_request_id": {"type": "string"},
        "status": {"enum": ["open", "closed"]},
        "status_notes": NULLABLE_TEXT,
        "service_name": NULLABLE_TEXT,
        "service_code": NULLABLE_TEXT,
        "description": NULLABLE_TEXT,
        "agency_responsible": NULLABLE_TEXT,
        "service_notice": NULLABLE_TEXT,
        "requested_datetime": NULLABLE_TEXT,
        "updated_datetime": NULLABLE_TEXT,
        "expected_datetime": NULLABLE_TEXT,
        "address": NULLABLE_TEXT,
        "address_id": NULLABLE_TEXT,
        "zipcode": NULLABLE_TEXT,
        "lat": {"type": ["number", "null"]},
        "long": {"type": ["number", "null"]},
        "media_url": NULLABLE_TEXT,
    },
}
REQUESTS = {"type": "array", "items": REQUEST}
API_KEY = {"name": "api_key", "in": "query", "required": True, "schema": {"type": "string", "maxLength": 200}}


def _ok(schema: dict[str, Any], status: str = "200", what: str = "The answer.") -> dict[str, Any]:
    return {status: {"description": what, "content": {"application/json": {"schema": schema}}}, "400": ERRORS,
            "403": ERRORS, "404": ERRORS}  # fmt: skip


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema or TEXT}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1, "maxLength": 64}}


def document() -> dict[str, Any]:
    """The whole document (a new dict each call)."""
    post_fields = {
        name: TEXT
        for name in (
            "service_code",
            "lat",
            "long",
            "address_string",
            "address_id",
            "description",
            "media_url",
            "first_name",
            "last_name",
            "phone",
            "email",
            "device_id",
            "account_id",
        )  # fmt: skip
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "gridflow Open311 GeoReport v2",
            "version": "v2",
            "description": (
                "The township's cases as Open311 service requests (http://wiki.open311.org/GeoReport_v2). "
                "Each resource also answers as XML when its name ends with .xml. Reading and posting "
                "requests need the api_key the centre registered for the client (`gridflow client create`)."
            ),
        },
        "paths": {
            "/open311/v2/discovery.json": {"get": {"summary": "Discovery", "responses": _ok({"type": "object"})}},
            "/open311/v2/services.json": {
                "get": {"summary": "Services: one per category", "responses": _ok({"type": "array"})}
            },
            "/open311/v2/services/{service_code}.json": {
                "get": {
                    "summary": "A service's definition: the attributes a report asks for",
                    "parameters": [_path("service_code")],
                    "responses": _ok({"type": "object"}),
                }
            },
            "/open311/v2/requests.json": {
                "get": {
                    "summary": "The client's requests, newest first",
                    "parameters": [
                        API_KEY,
                        _query("service_request_id", "Comma-separated ids; overrides every other filter."),
                        _query("service_code", "Comma-separated service codes."),
                        _query("start_date", "W3C date-time; default 90 days before end_date."),
                        _query("end_date", "W3C date-time; default now."),
                        _query("status", "open, closed, or both comma-separated."),
                        _query("page", "From 1.", {"type": "string", "maxLength": 10}),
                        _query("page_size", "1 to 1000.", {"type": "string", "maxLength": 10}),
                    ],
                    "responses": _ok(REQUESTS),
                },
                "post": {
                    "summary": "Report a problem (a new case in the grid of the address)",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "maxLength": 200},
                        },  # fmt: skip
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-www-form-urlencoded": {
                                "schema": {
                                    "type": "object",
                                    "required": ["api_key", "service_code"],
                                    "properties": {"api_key": {"type": "string", "maxLength": 200}, **post_fields},
                                }
                            }
                        },
                    },
                    "responses": _ok(REQUESTS, "201", "The request made: its id and the promised time."),
                },
            },
            "/open311/v2/requests/{service_request_id}.json": {
                "get": {
                    "summary": "One of the client's requests",
                    "parameters": [_path("service_request_id"), API_KEY],
                    "responses": _ok(REQUESTS),
                }
            },
            "/open311/v2/tokens/{token}.json": {
                "get": {
                    "summary": "The request a POST with this token (Idempotency-Key) made",
                    "parameters": [_path("token"), API_KEY],
                    "responses": _ok(REQUESTS),
                }
            },
        },
    }
