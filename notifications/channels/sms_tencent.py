"""SMS through Tencent Cloud (腾讯云) SMS ``SendSms`` (API version 2021-01-11).

Called over the documented HTTP API with signature v3 (TC3-HMAC-SHA256) instead of the SDK:

- a JSON POST to ``/`` with the headers ``X-TC-Action``, ``X-TC-Version``, ``X-TC-Region``,
  ``X-TC-Timestamp`` and ``Authorization``;
- the canonical request is ``POST\\n/\\n\\n`` + the signed headers (``content-type`` and ``host``,
  lower-case ``name:value\\n`` each) + ``\\n`` + their names + ``\\n`` + SHA-256 hex of the body; the
  string to sign is ``TC3-HMAC-SHA256\\n<timestamp>\\n<date>/sms/tc3_request\\n`` + SHA-256 hex of
  the canonical request; the key is derived ``"TC3" + SecretKey`` → date → service →
  ``tc3_request`` with HMAC-SHA256 at each step; the signature is the hex HMAC-SHA256 of the
  string to sign (the date is the UTC date of the timestamp);
- ``SessionContext`` carries the message's idempotency key; Tencent echoes it in delivery receipts.
  Tencent does **not** deduplicate on it: a retry after an unknown outcome may deliver twice.

Outcomes: ``SendStatusSet[0].Code == "Ok"`` → sent, the ``SerialNo`` is the provider id. Errors
come as ``Response.Error.Code`` (the whole request) or ``SendStatusSet[0].Code`` (this number):
``LimitExceeded.*``, ``RequestLimitExceeded``, ``InternalError.*`` and the like are temporary;
``InvalidParameterValue.*``, ``InvalidParameter.*``, ``FailedOperation.*`` (a bad number, a
blacklisted one, an unapproved template or signature …), ``MissingParameter``, rejected
credentials (``AuthFailure.*`` but an expired signature, ``UnauthorizedOperation.*``) are
permanent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from notifications.channels import _http
from notifications.channels.base import (
    ChannelConfigError,
    Message,
    Recipient,
    SendResult,
    mask_secret,
    sms_parts,
    sms_text,
)

KIND = "tencent_sms"
DEFAULT_ENDPOINT = "https://sms.tencentcloudapi.com"
SERVICE = "sms"
ACTION = "SendSms"
API_VERSION = "2021-01-11"
ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"
KEYS = {
    "endpoint",
    "secret_id",
    "secret_key",
    "sdk_app_id",
    "sign_name",
    "region",
    "templates",
    "timeout_s",
    "urgent_only",
}

# Temporary codes, with seconds to wait where the rule says how long.
RETRY = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": 30.0,
    "LimitExceeded.PhoneNumberOneHourLimit": 3600.0,
    "LimitExceeded.PhoneNumberDailyLimit": 3600.0,
    "LimitExceeded.DeliveryFrequencyLimit": 60.0,
    "LimitExceeded.PhoneNumberSameContentDailyLimit": 3600.0,
    "LimitExceeded.AppDailyLimit": 3600.0,
    "LimitExceeded.AppCountryOrRegionDailyLimit": 3600.0,
    "LimitExceeded.AppGlobalDailyLimit": 3600.0,
    "LimitExceeded.AppMainlandChinaDailyLimit": 3600.0,
    "RequestLimitExceeded": 10.0,
    "FailedOperation.InsufficientBalanceInSmsPackage": None,  # top up the SMS package
    "FailedOperation.FailResolvePacket": None,
    "FailedOperation.JsonParseFail": None,
    "AuthFailure.SignatureExpire": None,  # clock skew; check NTP
    "ResourceUnavailable": None,
    "InternalError": None,
}
RETRY_PREFIXES = ("LimitExceeded.", "InternalError.", "RequestLimitExceeded.", "ResourceUnavailable.")
PERMANENT_PREFIXES = (
    "InvalidParameterValue.",
    "InvalidParameter.",
    "FailedOperation.",
    "MissingParameter",
    "UnsupportedOperation.",
    "UnauthorizedOperation.",
    "AuthFailure.",
    "ResourceNotFound.",
    "InvalidAction",
    "UnknownParameter",
)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def _sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def canonical_request(
    headers: dict[str, str], payload: bytes, signed: tuple[str, ...] = ("content-type", "host")
) -> str:
    lower = {k.lower(): v for k, v in headers.items()}
    names = sorted(signed)
    canonical_headers = "".join(f"{n}:{lower[n].strip().lower()}\n" for n in names)
    return f"POST\n/\n\n{canonical_headers}\n{';'.join(names)}\n{_sha256(payload)}"


def string_to_sign(timestamp: int, service: str, canonical: str) -> str:
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    return f"{ALGORITHM}\n{timestamp}\n{date}/{service}/tc3_request\n{_sha256(canonical)}"


def tc3_signature(secret_key: str, timestamp: int, service: str, to_sign: str) -> str:
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    key = _hmac(("TC3" + secret_key).encode("utf-8"), date)
    key = _hmac(key, service)
    key = _hmac(key, "tc3_request")
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization(
    secret_id: str,
    secret_key: str,
    timestamp: int,
    service: str,
    headers: dict[str, str],
    payload: bytes,
    signed: tuple[str, ...] = ("content-type", "host"),
) -> str:
    """The ``Authorization`` header of a TC3-HMAC-SHA256 signed POST."""
    names = sorted(signed)
    to_sign = string_to_sign(timestamp, service, canonical_request(headers, payload, tuple(names)))
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    return (
        f"{ALGORITHM} Credential={secret_id}/{date}/{service}/tc3_request, "
        f"SignedHeaders={';'.join(names)}, Signature={tc3_signature(secret_key, timestamp, service, to_sign)}"
    )


CONFIG_PREFIXES = (
    "AuthFailure.SecretIdNotFound",
    "AuthFailure.SignatureFailure",
    "AuthFailure.InvalidSecretId",
    "AuthFailure.UnauthorizedOperation",
    "UnauthorizedOperation.",
    "FailedOperation.SignatureIncorrectOrUnapproved",
    "FailedOperation.TemplateIncorrectOrUnapproved",
)


def classify(code: str, message: str) -> SendResult:
    error = f"tencent {code}: {_http.short(message)}" if message else f"tencent {code}"
    if code in RETRY:
        return SendResult.failed(error, retry_after=RETRY[code])
    if code.startswith(RETRY_PREFIXES):
        return SendResult.failed(error)
    if code.startswith(CONFIG_PREFIXES):  # the keys, the app, the signature or the template: fix the config
        return SendResult.failed(error, config=True)
    if code.startswith(PERMANENT_PREFIXES):
        return SendResult.failed(error, permanent=True)
    return SendResult.failed(error)  # an unknown code: temporary, to be safe


class TencentSmsChannel:
    kind = KIND
    parts = frozenset({"sms"})  # what it sends of a notice: only this is rendered

    def __init__(
        self,
        name: str,
        *,
        secret_id: str,
        secret_key: str,
        sdk_app_id: str,
        sign_name: str,
        templates: dict[str, _http.Template],
        endpoint: str = DEFAULT_ENDPOINT,
        region: str = "ap-guangzhou",
        timeout_s: float = _http.DEFAULT_TIMEOUT,
        urgent_only: bool = False,
        clock: Callable[[], float] = time.time,
    ):
        self.name = name
        self.endpoint = endpoint
        self.secret_id = secret_id
        self._secret_key = secret_key
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        self.region = region
        self.templates = templates
        self.timeout_s = timeout_s
        self.urgent_only = urgent_only
        self._clock = clock
        parts = urlsplit(endpoint)
        self._host = parts.hostname or ""
        if ":" in self._host:  # an IPv6 literal
            self._host = f"[{self._host}]"
        if parts.port and parts.port != {"https": 443, "http": 80}.get(parts.scheme):
            self._host += f":{parts.port}"

    def __repr__(self) -> str:
        return (
            f"TencentSmsChannel({self.name!r}, endpoint={_http.mask_url(self.endpoint)!r}, "
            f"secret_id={mask_secret(self.secret_id)!r}, secret_key={mask_secret(self._secret_key)!r}, "
            f"sdk_app_id={self.sdk_app_id!r}, sign_name={self.sign_name!r}, templates={sorted(self.templates)!r})"
        )

    def address(self, recipient: Recipient) -> str | None:
        return _http.normalize_phone(recipient.phone)

    def request(self, message: Message) -> tuple[dict[str, str], bytes] | SendResult:
        """The signed headers and the body for this message (or why there are none)."""
        template = self.templates.get(message.event)
        if template is None:
            return _http.no_template(message.event)
        phone = self.address(message.recipient)
        if phone is None:
            return _http.no_phone(message.recipient.id)
        values = _http.template_values(template, message.params, message.event)
        if isinstance(values, SendResult):
            return values
        body = {
            "PhoneNumberSet": [_http.e164(phone)],
            "SmsSdkAppId": self.sdk_app_id,
            "SignName": self.sign_name,
            "TemplateId": template.code,
            "TemplateParamSet": values,
            "SessionContext": message.idempotency_key,
        }
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        timestamp = int(self._clock())
        headers = {
            "Content-Type": CONTENT_TYPE,
            "Host": self._host,
            "X-TC-Action": ACTION,
            "X-TC-Version": API_VERSION,
            "X-TC-Region": self.region,
            "X-TC-Timestamp": str(timestamp),
        }
        headers["Authorization"] = authorization(self.secret_id, self._secret_key, timestamp, SERVICE, headers, payload)
        return headers, payload

    def send(self, message: Message) -> SendResult:
        prepared = self.request(message)
        if isinstance(prepared, SendResult):
            return prepared
        headers, payload = prepared
        reply = _http.post(self.endpoint, payload, headers, self.timeout_s)
        if isinstance(reply, SendResult):
            return reply
        return self._outcome(reply, sms_parts(sms_text(message)))

    def _outcome(self, reply: _http.Response, parts: int) -> SendResult:
        data = reply.json()
        response = data.get("Response") if isinstance(data, dict) else None
        failure = _http.http_failure(reply, "tencent")
        if not isinstance(response, dict):
            return failure or SendResult.failed(f"tencent answered HTTP {reply.status} without a Response")
        if failure is not None and (reply.status == 429 or reply.status >= 500):
            return failure
        error = response.get("Error")
        if isinstance(error, dict) and error.get("Code"):
            return classify(str(error["Code"]), str(error.get("Message") or ""))
        statuses = response.get("SendStatusSet")
        if not isinstance(statuses, list) or not statuses or not isinstance(statuses[0], dict):
            return failure or SendResult.failed("tencent answered without a SendStatusSet")
        status = statuses[0]
        code = str(status.get("Code") or "")
        if code == "Ok":
            provider_id = status.get("SerialNo") or response.get("RequestId")
            return SendResult.sent(str(provider_id) if provider_id else None, parts)
        return classify(code or "unknown", str(status.get("Message") or ""))


def from_config(name: str, config: dict[str, Any]) -> TencentSmsChannel:
    problems: list[str] = []
    _http.check_unknown(config, KEYS, KIND, problems)
    endpoint = _http.check_url(config.get("endpoint") or DEFAULT_ENDPOINT, "endpoint", problems)
    secret_id = _http.check_text(config, "secret_id", problems)
    _http.check_header_safe(secret_id, "secret_id", problems)
    secret_key = _http.check_text(config, "secret_key", problems)
    sdk_app_id = _http.check_text(config, "sdk_app_id", problems)
    sign_name = _http.check_text(config, "sign_name", problems)
    region = _http.check_text(config, "region", problems, required=False) or "ap-guangzhou"
    _http.check_header_safe(region, "region", problems)
    templates = _http.check_templates(config.get("templates"), problems)
    timeout = _http.check_timeout(config.get("timeout_s", _http.DEFAULT_TIMEOUT), problems)
    urgent_only = _http.check_bool(config.get("urgent_only", False), "urgent_only", problems)
    if problems:
        raise ChannelConfigError(name, problems)
    return TencentSmsChannel(
        name,
        secret_id=secret_id,
        secret_key=secret_key,
        sdk_app_id=sdk_app_id,
        sign_name=sign_name,
        templates=templates,
        endpoint=endpoint,
        region=region,
        timeout_s=timeout,
        urgent_only=urgent_only,
    )
