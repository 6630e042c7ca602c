"""A fake SMS provider on 127.0.0.1 for the SMS channel tests: it plays Aliyun Dysmsapi, Tencent
Cloud SMS or a generic webhook gateway, over real HTTP.

Every request is checked the way the provider would check it — the signature recomputed from the
raw request with the configured secret, by code written here from the providers' documentation
(not the channels' code), plus timestamp, nonce and required fields — and recorded. Faults can be
injected for the next requests: an HTTP status (500, 429 with Retry-After …), a provider error code,
a delay longer than the client's timeout (the request counts as received: the outcome is unknown to
the client), "down for N requests"; and the server can stop listening (connections refused) and
start again on the same port.

    with SmsGateway("aliyun") as gw:
        channel = sms_aliyun.from_config("sms", gw.channel_config())
        gw.fail(status=429, retry_after="7")
        channel.send(message)
        assert gw.requests[-1].verified
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, quote, unquote

HOST = "127.0.0.1"
PROVIDERS = ("aliyun", "tencent", "webhook")
ALIYUN_MAX_SKEW = 15 * 60  # Aliyun rejects a Timestamp more than 15 minutes off
TENCENT_MAX_SKEW = 5 * 60  # Tencent: 5 minutes

# Tencent answers these for the whole request (Response.Error); others per number (SendStatusSet).
TENCENT_REQUEST_LEVEL = (
    "AuthFailure",
    "InternalError",
    "RequestLimitExceeded",
    "MissingParameter",
    "UnauthorizedOperation",
    "InvalidParameter.",
    "UnknownParameter",
)


@dataclass
class Fault:
    status: int | None = None  # answer with this HTTP status
    code: str | None = None  # answer with this provider error code
    retry_after: str | None = None  # and this Retry-After header
    delay: float | None = None  # stall this long first (the request was received)
    body: bytes | None = None  # answer with this raw body
    hangup: bool = False  # close the connection without an answer (after reading the request)


@dataclass
class Recorded:
    """One request as the gateway received it."""

    provider: str
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    fields: dict[str, Any]  # Aliyun: the form parameters; Tencent and webhook: the JSON body
    verified: bool = False
    problem: str | None = None  # why the request was rejected, if it was
    status: int | None = None  # what the gateway answered
    fault: Fault | None = None
    peer: int = 0  # the client's port: requests with the same one came over one connection

    @property
    def idempotency_key(self) -> str | None:
        return self.fields.get(
            {"aliyun": "OutId", "tencent": "SessionContext", "webhook": "idempotency_key"}[self.provider]
        )

    @property
    def phone(self) -> str | None:
        if self.provider == "aliyun":
            return self.fields.get("PhoneNumbers")
        if self.provider == "tencent":
            numbers = self.fields.get("PhoneNumberSet") or [None]
            return numbers[0]
        return self.fields.get("to")

    @property
    def template(self) -> str | None:
        key = {"aliyun": "TemplateCode", "tencent": "TemplateId", "webhook": "template"}[self.provider]
        return self.fields.get(key)

    @property
    def template_params(self) -> Any:
        if self.provider == "aliyun":
            raw = self.fields.get("TemplateParam")
            return json.loads(raw) if raw else {}
        if self.provider == "tencent":
            return self.fields.get("TemplateParamSet")
        return self.fields.get("params")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    gateway: SmsGateway

    def handle_error(self, request, client_address):  # type: ignore[no-untyped-def]
        pass  # a client that timed out and hung up is expected here, not an error


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # an answer's headers and body are two writes: send each at once

    def log_message(self, format, *args):  # type: ignore[no-untyped-def]  # noqa: A002
        pass

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        status, headers, answer = self.server.gateway._handle(self, body)
        if status == 0:  # hang up
            self.close_connection = True
            return
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            if not self.server.gateway.keep_alive:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(answer)
        except OSError:
            pass  # the client gave up waiting

    def do_GET(self) -> None:  # noqa: N802
        self.send_error(405)


class SmsGateway:
    """A fake of one provider on 127.0.0.1:<a free port>."""

    def __init__(
        self,
        provider: str,
        *,
        key_id: str = "LTAI5tGridflowTest",
        secret: str = "gateway-test-secret-0123456789",
        token: str | None = "gateway-test-token",
        sdk_app_id: str = "1400000001",
        keep_alive: bool = False,
    ):
        if provider not in PROVIDERS:
            raise ValueError(f"provider is one of {PROVIDERS}")
        self.provider = provider
        self.key_id = key_id  # Aliyun AccessKeyId / Tencent SecretId
        self.secret = secret  # Aliyun AccessKeySecret / Tencent SecretKey / webhook HMAC secret
        self.token = token  # webhook bearer token (None: not required)
        self.sdk_app_id = sdk_app_id
        # False: every answer says Connection: close. True: connections stay open (HTTP/1.1), and
        # close_idle() hangs up on the idle ones as a server's keep-alive timeout does.
        self.keep_alive = keep_alive
        self._open: set[Any] = set()
        self.requests: list[Recorded] = []
        self._faults: deque[Fault] = deque()
        self._nonces: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._serial = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Listen (again, on the same port after a stop)."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((HOST, self.port), _Handler)
        server.gateway = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name=f"sms-gateway-{self.provider}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: connections are refused until :meth:`start`."""
        if self._server is None:
            return
        self._stopping.set()  # wake stalled handlers
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(10)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def connections(self) -> int:
        """How many connections the recorded requests came over."""
        return len({r.peer for r in self.requests})

    def close_idle(self) -> None:
        """Hang up on every connection a request came over (each is idle between requests), as a
        server does when its keep-alive timeout passes."""
        import socket

        with self._lock:
            opened, self._open = self._open, set()
        for conn in opened:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- faults ------------------------------------------------------------------------------

    def fail(
        self,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: str | None = None,
        delay: float | None = None,
        body: bytes | None = None,
        hangup: bool = False,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests with this fault."""
        with self._lock:
            self._faults.extend(Fault(status, code, retry_after, delay, body, hangup) for _ in range(times))

    def down(self, requests: int, status: int = 503) -> None:
        """Down for the next ``requests`` requests (then up again)."""
        self.fail(status=status, times=requests)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.requests.clear()

    # -- the channel's config ------------------------------------------------------------------

    def channel_config(self, templates: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        """A config mapping for this provider's channel that points at this gateway."""
        if self.provider == "aliyun":
            config: dict[str, Any] = {
                "endpoint": self.url,
                "access_key_id": self.key_id,
                "access_key_secret": self.secret,
                "sign_name": "胜利乡网格中心",
            }
        elif self.provider == "tencent":
            config = {
                "endpoint": self.url,
                "secret_id": self.key_id,
                "secret_key": self.secret,
                "sdk_app_id": self.sdk_app_id,
                "sign_name": "胜利乡网格中心",
            }
        else:
            config = {"url": self.url, "secret": self.secret}
            if self.token:
                config["token"] = self.token
        if templates is not None:
            config["templates"] = templates
        return {**config, **extra}

    # -- requests ------------------------------------------------------------------------------

    def _handle(self, handler: _Handler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        record = Recorded(
            self.provider, handler.command, handler.path, headers, body, {}, peer=handler.client_address[1]
        )
        with self._lock:
            self._open.add(handler.connection)
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
            self.requests.append(record)
        record.fault = fault
        try:
            record.fields = self._fields(headers, body)
            record.problem = getattr(self, f"_verify_{self.provider}")(record)
        except Exception as exc:  # noqa: BLE001 - anything unparseable is a rejected request
            record.problem = f"InvalidParameter: {exc.__class__.__name__}: {exc}"
        record.verified = record.problem is None
        if fault is not None and fault.delay:
            self._stopping.wait(fault.delay)
        if fault is not None and fault.hangup:
            record.status = 0
            return 0, {}, b""
        if fault is not None and (fault.status is not None or fault.code is not None or fault.body is not None):
            status, extra, answer = self._fault_answer(record, fault)
        elif record.problem is not None:
            status, extra, answer = self._rejection(record)
        else:
            status, extra, answer = self._success(record)
        record.status = status
        return status, extra, answer

    def _fields(self, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        if self.provider == "aliyun":
            if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                raise ValueError(f"expected a form body, got {headers.get('content-type')!r}")
            pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
            fields = dict(pairs)
            if len(fields) != len(pairs):
                raise ValueError("a parameter is repeated")
            return fields
        if not headers.get("content-type", "").startswith("application/json"):
            raise ValueError(f"expected JSON, got {headers.get('content-type')!r}")
        data = json.loads(body.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        return data

    # Aliyun RPC signature V1, from https://help.aliyun.com/en/document_detail/130769.html:
    # percent-encode names and values (RFC 3986), sort, join; sign "POST&%2F&" + encode(joined)
    # with HMAC-SHA1 keyed by secret + "&"; base64.
    def _verify_aliyun(self, record: Recorded) -> str | None:
        p = record.fields
        required = ("AccessKeyId", "Action", "Format", "SignatureMethod", "SignatureNonce", "SignatureVersion")
        required += ("Timestamp", "Version", "Signature", "PhoneNumbers", "SignName", "TemplateCode")
        for name in required:
            if not p.get(name):
                return f"MissingParameter: {name}"
        if p["Action"] != "SendSms" or p["Version"] != "2017-05-25":
            return f"InvalidAction.NotFound: {p['Action']} {p['Version']}"
        if p["SignatureMethod"] != "HMAC-SHA1" or p["SignatureVersion"] != "1.0":
            return "InvalidParameter: signature method"
        if p["AccessKeyId"] != self.key_id:
            return "InvalidAccessKeyId.NotFound"
        stamp = datetime.strptime(p["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if abs(stamp.timestamp() - time.time()) > ALIYUN_MAX_SKEW:
            return "InvalidTimeStamp.Expired"
        if "TemplateParam" in p:
            json.loads(p["TemplateParam"])
        joined = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(p.items()) if k != "Signature")
        to_sign = "&".join([record.method, quote("/", safe=""), quote(joined, safe="")])
        mac = hmac.new(f"{self.secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
        if not hmac.compare_digest(base64.b64encode(mac).decode(), p["Signature"]):
            return "SignatureDoesNotMatch"
        with self._lock:
            if p["SignatureNonce"] in self._nonces:
                return "SignatureNonceUsed"
            self._nonces.add(p["SignatureNonce"])
        return None

    # Tencent Cloud signature v3 (TC3-HMAC-SHA256), from https://cloud.tencent.com/document/api/362/4208:
    # canonical request from the received method, "/", "", the signed headers as received and the
    # body's SHA-256; key derived "TC3"+key → date → service → "tc3_request".
    def _verify_tencent(self, record: Recorded) -> str | None:
        h = record.headers
        if h.get("x-tc-action") != "SendSms" or h.get("x-tc-version") != "2021-01-11":
            return f"InvalidAction: {h.get('x-tc-action')} {h.get('x-tc-version')}"
        if not h.get("x-tc-region"):
            return "MissingParameter: X-TC-Region"
        stamp = int(h.get("x-tc-timestamp", "0"))
        if abs(stamp - time.time()) > TENCENT_MAX_SKEW:
            return "AuthFailure.SignatureExpire"
        auth = h.get("authorization", "")
        algorithm, _, rest = auth.partition(" ")
        if algorithm != "TC3-HMAC-SHA256":
            return "AuthFailure.InvalidAuthorization"
        items = dict(part.strip().split("=", 1) for part in rest.split(","))
        secret_id, date, service, terminator = items["Credential"].split("/")
        if secret_id != self.key_id:
            return "AuthFailure.SecretIdNotFound"
        if date != time.strftime("%Y-%m-%d", time.gmtime(stamp)) or service != "sms" or terminator != "tc3_request":
            return "AuthFailure.InvalidAuthorization: credential scope"
        signed = items["SignedHeaders"].split(";")
        if "content-type" not in signed or "host" not in signed or signed != sorted(signed):
            return "AuthFailure.InvalidAuthorization: signed headers"
        canonical = "\n".join(
            [
                record.method,
                "/",
                "",
                "".join(f"{name}:{h[name].strip().lower()}\n" for name in signed),
                ";".join(signed),
                hashlib.sha256(record.body).hexdigest(),
            ]
        )
        to_sign = "\n".join(
            [
                "TC3-HMAC-SHA256",
                str(stamp),
                f"{date}/{service}/tc3_request",
                hashlib.sha256(canonical.encode()).hexdigest(),
            ]
        )
        key = f"TC3{self.secret}".encode()
        for part in (date, service, "tc3_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, items["Signature"]):
            return "AuthFailure.SignatureFailure"
        body = record.fields
        for name in ("PhoneNumberSet", "SmsSdkAppId", "TemplateId"):
            if not body.get(name):
                return f"MissingParameter: {name}"
        if body["SmsSdkAppId"] != self.sdk_app_id:
            return "FailedOperation.SmsSdkAppIdVerifyFail"
        if not all(isinstance(v, str) for v in body.get("TemplateParamSet", [])):
            return "InvalidParameterValue.TemplateParameterFormatError"
        return None

    def _verify_webhook(self, record: Recorded) -> str | None:
        if self.token is not None and record.headers.get("authorization") != f"Bearer {self.token}":
            return "unauthorized: bearer token"
        given = record.headers.get("x-gridflow-signature", "")
        expected = "sha256=" + hmac.new(self.secret.encode(), record.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given, expected):
            return "unauthorized: signature"
        for name in ("to", "text", "template", "idempotency_key"):
            if not record.fields.get(name):
                return f"missing: {name}"
        if unquote(record.headers.get("idempotency-key", "")) != record.fields["idempotency_key"]:
            return "Idempotency-Key header differs from the body's key"
        return None

    # -- answers -------------------------------------------------------------------------------

    def _json(self, status: int, data: Any, extra: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/json; charset=utf-8", **(extra or {})}
        return status, headers, json.dumps(data, ensure_ascii=False).encode("utf-8")

    def _success(self, record: Recorded) -> tuple[int, dict[str, str], bytes]:
        serial = next(self._serial)
        request_id = str(uuid.uuid4()).upper()
        if self.provider == "aliyun":
            return self._json(200, {"Message": "OK", "RequestId": request_id, "Code": "OK", "BizId": f"{serial}^0"})
        if self.provider == "tencent":
            status = {
                "SerialNo": f"2433:{serial}",
                "PhoneNumber": record.phone,
                "Fee": 1,
                "SessionContext": record.fields.get("SessionContext", ""),
                "Code": "Ok",
                "Message": "send success",
                "IsoCode": "CN",
            }
            return self._json(200, {"Response": {"SendStatusSet": [status], "RequestId": request_id}})
        return self._json(200, {"id": f"wh-{serial}"})

    def _rejection(self, record: Recorded) -> tuple[int, dict[str, str], bytes]:
        problem = record.problem or ""
        code = problem.split(":")[0]  # every problem is "<provider code>" or "<provider code>: <detail>"
        if self.provider == "aliyun":
            status = 404 if code.startswith("InvalidAccessKeyId") else 400
            return self._json(status, {"Code": code, "Message": problem, "RequestId": str(uuid.uuid4())})
        if self.provider == "tencent":
            error = {"Code": code, "Message": problem}
            return self._json(200, {"Response": {"Error": error, "RequestId": str(uuid.uuid4())}})
        status = 401 if problem.startswith("unauthorized") else 400
        return self._json(status, {"error": problem})

    def _fault_answer(self, record: Recorded, fault: Fault) -> tuple[int, dict[str, str], bytes]:
        extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if fault.body is not None:
            return fault.status or 200, {"Content-Type": "text/html", **extra}, fault.body
        request_id = str(uuid.uuid4())
        if fault.code is None:
            status = fault.status or 500
            return status, {"Content-Type": "text/html", **extra}, f"<html>{status}</html>".encode()
        if self.provider == "aliyun":
            answer = {"Code": fault.code, "Message": f"fault {fault.code}", "RequestId": request_id}
            return self._json(fault.status or 200, answer, extra)
        if self.provider == "tencent":
            if fault.code.startswith(TENCENT_REQUEST_LEVEL):
                response: dict[str, Any] = {"Error": {"Code": fault.code, "Message": f"fault {fault.code}"}}
            else:
                status = {
                    "SerialNo": "",
                    "PhoneNumber": record.phone,
                    "Fee": 0,
                    "SessionContext": record.fields.get("SessionContext", ""),
                    "Code": fault.code,
                    "Message": f"fault {fault.code}",
                    "IsoCode": "CN",
                }
                response = {"SendStatusSet": [status]}
            return self._json(fault.status or 200, {"Response": {**response, "RequestId": request_id}}, extra)
        return self._json(fault.status or 422, {"error": fault.code}, extra)
