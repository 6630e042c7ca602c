"""What every request passes before a route: a size limit, the content type, and security headers.

Everything from a browser or a phone is hostile until checked: a body over :data:`MAX_BODY` bytes is
refused (413) before it is read into memory, a write with a body to ``/api/v1/`` must be JSON (415), and every
answer says not to sniff types or be framed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridflow.api.problems import problem_response

MAX_BODY = 1_048_576  # 1 MiB: a case with its fields; photos come by their own route
JSON_TYPES = ("application/json", "application/merge-patch+json")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


class Guard:
    """ASGI middleware: body size, content type, security headers."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY):
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        method, path = scope["method"], scope["path"]

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    h for h in SECURITY_HEADERS if h[0] not in present
                ]
            await send(message)

        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _answer(scope, receive, secured, _too_large(self.max_body))
            return
        has_body = (length is not None and length != "0") or "transfer-encoding" in headers
        if method in ("POST", "PUT", "PATCH") and path.startswith("/api/v1/") and has_body:
            kind = headers.get("content-type", "").split(";")[0].strip().lower()
            if kind not in JSON_TYPES:
                await _answer(scope, receive, secured, _unsupported(kind))
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited, secured)
        except BodyTooLarge:
            await _answer(scope, receive, secured, _too_large(self.max_body))


class BodyTooLarge(Exception):
    pass


def _too_large(limit: int) -> Any:
    return problem_response(
        413, "The body is too large", f"send at most {limit // 1024} KiB in one request", "BodyTooLarge"
    )


def _unsupported(kind: str) -> Any:
    return problem_response(
        415,
        "Send JSON",
        f"the body is {kind or 'untyped'}; send application/json (Content-Type: application/json)",
        "UnsupportedMediaType",
    )


async def _answer(scope: Scope, receive: Receive, send: Callable[[Message], Awaitable[None]], response: Any) -> None:
    await response(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_middleware(Guard)
