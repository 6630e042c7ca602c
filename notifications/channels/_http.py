"""Plumbing shared by the HTTP channels (the SMS providers and the generic SMS gateway): one POST
with a hard time budget that says whether the request can have reached the other side, response
classification by HTTP status, ``Retry-After``, and the config checks every HTTP channel makes.

Standard library only (``http.client``), so every outcome is under control:

- the connection cannot be made (refused, no such host, TLS handshake failed, connect timeout):
  nothing was sent, a plain temporary failure;
- the request went out but no complete answer came back within the budget (timeout, reset,
  garbage): the outcome is **unknown** — the provider may have sent the SMS — so the retry must
  carry the same idempotency key;
- an answer: the :class:`Response`, for the channel to read.

Proxies from the environment (``HTTPS_PROXY``) are not used: the endpoints are called directly.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import json
import math
import re
import select
import socket
import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import lru_cache, partial
from typing import Any
from urllib.parse import urlsplit

from notifications.channels import keep
from notifications.channels.base import SendResult

MAX_BODY = 1 << 20  # the most of a response body read; providers answer in a few hundred bytes
MAX_RETRY_AFTER = 24 * 3600.0
DEFAULT_TIMEOUT = 10.0
USER_AGENT = "gridflow-notifications/1"


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None

    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))


@lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    """The system's trust store, loaded at the first HTTPS send (not while parsing config)."""
    return ssl.create_default_context()


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Response | SendResult:
    """POST ``body`` to ``url`` within ``timeout`` seconds in all (connect, send, answer; give or take a
    tenth, :func:`_budget`).

    Returns the :class:`Response`, or a failed :class:`SendResult` when there is none: a plain
    temporary failure when nothing can have been sent, ``unknown`` when the request may have
    reached the server. Inside a dispatcher tick (:func:`notifications.channels.keep.keep_alive`) the
    connection is kept for the next request to the same endpoint after a complete answer, unless the
    server said ``Connection: close``; a kept connection the server has closed meanwhile is noticed
    before the request goes out, and a new one is made.
    """
    scheme, host, port, where, path = _endpoint(url)
    deadline = time.monotonic() + timeout
    kept = keep.current()
    key = ("http", scheme, host, port)
    conn = kept.take(key) if kept is not None else None
    if conn is not None and not _idle_and_open(conn):
        conn.close()
        conn = None
    if conn is None:
        made = _connect(scheme, host, port, where, timeout)
        if isinstance(made, SendResult):
            return made
        conn = made
        if kept is not None:
            kept.made()
    keep_it = False
    try:
        sock = conn.sock
        try:
            _budget(sock, deadline)
            conn.putrequest("POST", path, skip_accept_encoding=True, skip_host=any(map(_is_host, headers)))
            conn.putheader("User-Agent", USER_AGENT)
            conn.putheader("Content-Length", str(len(body)))
            for name, value in headers.items():
                conn.putheader(name, value)
        except (ValueError, UnicodeError) as exc:  # a header that cannot be sent; nothing went out
            return SendResult.failed(f"cannot build the request to {where}: {exc}", permanent=True)
        except TimeoutError:
            return SendResult.failed(f"cannot connect to {where} within {timeout:g}s")
        # From here on the request may reach the server: a failure leaves the outcome unknown.
        try:
            conn.endheaders(body)
            conn.response_class = partial(_AnswerInTime, deadline=deadline)  # type: ignore[assignment]
            resp = conn.getresponse()
            chunks: list[bytes] = []
            size = 0
            while size < MAX_BODY and not resp.isclosed():  # it closes itself once the body is read
                chunk = resp.read(min(65536, MAX_BODY - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            keep_it = kept is not None and resp.isclosed() and not resp.will_close
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, b"".join(chunks))
        except TimeoutError:
            return SendResult.failed(
                f"no answer from {where} within {timeout:g}s (the message may have been sent)", unknown=True
            )
        except (http.client.HTTPException, OSError) as exc:
            return SendResult.failed(
                f"the exchange with {where} broke off: {_describe(exc)} (the message may have been sent)", unknown=True
            )
    finally:
        if keep_it and kept is not None:
            kept.give(key, conn, http.client.HTTPConnection.close)
        else:
            conn.close()


@lru_cache(maxsize=64)
def _endpoint(url: str) -> tuple[str, str, int | None, str, str]:
    """The URL's scheme, host, port, ``host:port`` as errors name it, and the request path (with the query)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    where = f"{host}:{parts.port}" if parts.port else host
    return parts.scheme, host, parts.port, where, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _is_host(name: str) -> bool:
    return name.lower() == "host"


def _connect(
    scheme: str, host: str, port: int | None, where: str, timeout: float
) -> http.client.HTTPConnection | SendResult:
    """A connection to the endpoint, or why none could be made (nothing was sent)."""
    conn: http.client.HTTPConnection
    if scheme == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=_tls())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.connect()
    except ConnectionRefusedError:
        failed = SendResult.failed(f"{where} refused the connection")
    except TimeoutError:
        failed = SendResult.failed(f"cannot connect to {where} within {timeout:g}s")
    except socket.gaierror as exc:
        failed = SendResult.failed(f"cannot resolve {host}: {exc.strerror or exc}")
    except ssl.SSLCertVerificationError as exc:
        failed = SendResult.failed(f"TLS certificate of {where} rejected: {exc.verify_message or exc}")
    except (ssl.SSLError, OSError) as exc:
        failed = SendResult.failed(f"cannot connect to {where}: {_describe(exc)}")
    else:
        return conn
    conn.close()
    return failed


def _idle_and_open(conn: http.client.HTTPConnection) -> bool:
    """Whether a kept connection can carry the next request: an idle connection that has become readable
    was closed by the server (or holds bytes nobody asked for); either way it is not used again."""
    sock = conn.sock
    if sock is None or sock.fileno() == -1:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


class _AnswerInTime(http.client.HTTPResponse):
    """A response read within the exchange's time budget: every read from the socket (the status line
    and each header line may take one each, a server can send a byte at a time) gets what is left of it,
    so a trickling answer is cut off when the budget is spent, not after a socket timeout per byte."""

    def __init__(self, sock: socket.socket, debuglevel: int = 0, method: str | None = None, url: str | None = None,
                 *, deadline: float):  # fmt: skip
        super().__init__(sock, debuglevel, method, url)
        # The reader HTTPResponse made is not read from, but kept until this one closes: it holds the socket
        # open when the connection closes itself after a ``Connection: close`` answer, before the body is read.
        self.fp = io.BufferedReader(_InTime(sock, deadline, self.fp))


class _InTime(io.RawIOBase):
    def __init__(self, sock: socket.socket, deadline: float, holder: io.BufferedReader):
        self._sock, self._deadline, self._holder = sock, deadline, holder

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        super().close()
        self._holder.close()

    def readinto(self, buffer: Any) -> int:
        _budget(self._sock, self._deadline)
        return self._sock.recv_into(buffer)


def _budget(sock: socket.socket | None, deadline: float) -> None:
    """Give the next socket operation what is left of the time budget, give or take a tenth: a socket's
    timeout is only set again when it is off by more than that (setting it is a system call, which also
    lets go of the interpreter lock; on a quick exchange it is never needed), so the whole exchange ends
    within 1.1 × the budget."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("time budget spent")
    if sock is not None and sock.fileno() != -1:
        current = sock.gettimeout()
        if current is None or abs(current - left) > left * 0.1:
            sock.settimeout(left)


def _describe(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or ""
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def http_failure(resp: Response, who: str) -> SendResult | None:
    """A failure read from the HTTP status alone (None for 2xx): 408/429/5xx are temporary (429 and
    503 with the server's Retry-After), a redirect or any other 4xx is permanent."""
    status = resp.status
    if 200 <= status < 300:
        return None
    if status in (408, 429) or status >= 500:
        return SendResult.failed(f"{who} answered HTTP {status}", retry_after=resp.retry_after())
    if 300 <= status < 400:
        to = resp.headers.get("location", "?")
        return SendResult.failed(f"{who} answered HTTP {status} redirecting to {to}: fix the endpoint", permanent=True)
    if status in (401, 403):  # our credentials were refused: the channel's config is wrong
        return SendResult.failed(f"{who} answered HTTP {status}: check the credentials", config=True)
    return SendResult.failed(f"{who} answered HTTP {status}", permanent=True)


def short(text: Any, limit: int = 200) -> str:
    """A provider's message, cut to fit an error column."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- phones ----------------------------------------------------------------------------------

_PHONE = re.compile(r"\+?\d{5,15}")


def normalize_phone(phone: str | None) -> str | None:
    """The number without spaces, dashes and brackets; None when there is none or it is not a number."""
    if not phone:
        return None
    cleaned = re.sub(r"[\s\-()]", "", phone)
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    return cleaned if _PHONE.fullmatch(cleaned) else None


def mainland(phone: str) -> bool:
    """A mainland China mobile number, with or without +86."""
    return bool(re.fullmatch(r"(\+86)?1\d{10}", phone))


def e164(phone: str) -> str:
    """+86 prefix for a mainland number written without it."""
    return phone if phone.startswith("+") else "+86" + phone


# -- config ------------------------------------------------------------------------------------


def mask_url(url: str) -> str:
    """The URL with its query and any user info masked (a webhook key often rides in either)."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username or parts.password:
        netloc = "****@" + netloc
    return f"{parts.scheme}://{netloc}{parts.path}" + ("?****" if parts.query else "")


def check_url(value: Any, key: str, problems: list[str]) -> str:
    """An http(s) URL: https anywhere, plain http only to a loopback or private-network address."""
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{key} must be an https:// URL")
        return ""
    url = value.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        problems.append(f"{key} {url!r} is not a URL: {exc}")
        return url
    if parts.scheme not in ("http", "https"):
        problems.append(f"{key} {mask_url(url)!r} must use https:// (got scheme {parts.scheme or 'none'!r})")
        return url
    if not parts.hostname:
        problems.append(f"{key} {mask_url(url)!r} has no host")
        return url
    if parts.fragment:
        problems.append(f"{key} {mask_url(url)!r} must not have a #fragment")
    if port == 0:
        problems.append(f"{key} {mask_url(url)!r} has port 0")
    if parts.scheme == "http" and not _local(parts.hostname):
        problems.append(
            f"{key} {mask_url(url)!r}: plain http:// is only allowed to a loopback or private-network address; use https://"
        )
    return url


def _local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private


def check_timeout(value: Any, problems: list[str], key: str = "timeout_s") -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        seconds = float(value)
    except (TypeError, ValueError):
        problems.append(f"{key} must be a number of seconds, got {value!r}")
        return DEFAULT_TIMEOUT
    if not (0 < seconds <= 300):
        problems.append(f"{key} must be more than 0 and at most 300 seconds, got {value!r}")
        return DEFAULT_TIMEOUT
    return seconds


def check_bool(value: Any, key: str, problems: list[str]) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no"):
        return value.strip().lower() in ("true", "yes")
    problems.append(f"{key} must be true or false, got {value!r}")
    return False


def check_count(value: Any, key: str, problems: list[str], most: int) -> int:
    """A whole number from 1 to ``most``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        problems.append(f"{key} must be a whole number from 1 to {most}, got {value!r}")
        return 1
    return value


def check_text(config: dict[str, Any], key: str, problems: list[str], required: bool = True) -> str:
    value = config.get(key)
    if value is None or value == "":
        if required:
            problems.append(f"{key} is required")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        problems.append(f"{key} must be a string, got {type(value).__name__}")
        return ""
    return str(value).strip()


def check_header_safe(value: str, key: str, problems: list[str]) -> None:
    """A value that rides in an HTTP header: printable ASCII, no spaces or line breaks."""
    if value and not re.fullmatch(r"[!-~]+", value):
        problems.append(f"{key} must be printable ASCII without spaces (it is sent in an HTTP header)")


def check_unknown(config: dict[str, Any], allowed: set[str], kind: str, problems: list[str]) -> None:
    for key in sorted(set(config) - allowed, key=str):
        problems.append(f"unknown key {key!r} for a {kind} channel (keys: {', '.join(sorted(allowed))})")


@dataclass(frozen=True)
class Template:
    code: str  # the provider's approved template (Aliyun SMS_…, Tencent's numeric TemplateId)
    params: tuple[str, ...]  # names of message.params, in the template's order


def check_templates(value: Any, problems: list[str], required: bool = True) -> dict[str, Template]:
    """``templates:``: event → {code: <provider template>, params: [names]}."""
    if value is None or value == {}:
        if required:
            problems.append("templates is required: event → {code: <provider template code>, params: [names]}")
        return {}
    if not isinstance(value, dict):
        problems.append("templates must map an event to {code: <provider template code>, params: [names]}")
        return {}
    templates: dict[str, Template] = {}
    for event, spec in value.items():
        if not isinstance(spec, dict):
            problems.append(f"templates.{event} must be {{code: <provider template code>, params: [names]}}")
            continue
        for key in sorted(set(spec) - {"code", "params"}, key=str):
            problems.append(f"templates.{event}: unknown key {key!r} (keys: code, params)")
        code = spec.get("code")
        if isinstance(code, bool) or not isinstance(code, str | int) or not str(code).strip():
            problems.append(f"templates.{event}.code is required (the provider's template code)")
            continue
        params = spec.get("params", [])
        if params is None:
            params = []
        if not isinstance(params, list) or not all(isinstance(p, str) and p for p in params):
            problems.append(f"templates.{event}.params must be a list of parameter names")
            continue
        templates[str(event)] = Template(str(code).strip(), tuple(params))
    return templates


def template_values(template: Template, params: dict[str, str], event: str) -> list[str] | SendResult:
    """The template's parameter values from the message, or a permanent failure naming the missing ones."""
    missing = [name for name in template.params if params.get(name) is None]
    if missing:
        return SendResult.failed(
            f"SMS template {template.code} for event {event} needs {', '.join(missing)}, which the notice does not carry",
            permanent=True,
        )
    return [str(params[name]) for name in template.params]


def no_template(event: str) -> SendResult:
    return SendResult.failed(f"no SMS template for event {event}", permanent=True)


def no_phone(recipient_id: str) -> SendResult:
    return SendResult.failed(f"{recipient_id} has no usable mobile number", permanent=True)


__all__ = [
    "Response",
    "Template",
    "check_bool",
    "check_count",
    "check_header_safe",
    "check_templates",
    "check_text",
    "check_timeout",
    "check_unknown",
    "check_url",
    "e164",
    "http_failure",
    "mainland",
    "mask_url",
    "no_phone",
    "no_template",
    "normalize_phone",
    "parse_retry_after",
    "post",
    "short",
    "template_values",
]
