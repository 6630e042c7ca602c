"""SMS through Aliyun (阿里云) Dysmsapi ``SendSms`` (API version 2017-05-25).

Called over the documented RPC-style HTTP API with signature V1 (HMAC-SHA1) instead of the SDK,
so the request and its signing can be read and tested here:

- every parameter (the common ones and SendSms's own) is percent-encoded per the docs (RFC 3986:
  only ``A-Z a-z 0-9 - _ . ~`` stay as they are, space is ``%20``), sorted by name, joined as
  ``k=v&…``; the string to sign is ``POST&%2F&`` + that string percent-encoded once more; the
  signature is base64(HMAC-SHA1(``access_key_secret + "&"``, string to sign));
- the request is a POST of the signed parameters as a form body (the phone number stays out of
  URLs and access logs);
- ``OutId`` carries the message's idempotency key: Aliyun echoes it in delivery receipts, which
  makes it our trace field. Aliyun does **not** deduplicate on it: a retry after an unknown
  outcome may deliver the SMS twice.

Outcomes: ``Code=OK`` → sent, the ``BizId`` is the provider id; throttling, flow control, an
empty balance and Aliyun's own errors are temporary; a rejected number, template, signature or
parameter is permanent (the dispatcher falls back to the person's next channel); so are rejected
credentials (retrying cannot fix them; fix the config).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

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

KIND = "aliyun_sms"
DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com"
API_VERSION = "2017-05-25"
KEYS = {
    "endpoint",
    "access_key_id",
    "access_key_secret",
    "sign_name",
    "region",
    "templates",
    "timeout_s",
    "urgent_only",
}

# Temporary: wait and send again. Seconds to wait where Aliyun's rule says how long.
RETRY = {
    "isv.BUSINESS_LIMIT_CONTROL": 60.0,  # per-number flow control (by default 1 a minute, 5 an hour, 10 a day)
    "isv.DAY_LIMIT_CONTROL": 3600.0,  # a daily limit reached
    "isv.SMS_OVER_LIMIT": 3600.0,
    "isv.OUT_OF_SERVICE": None,  # the account is out of credit (欠费): top it up
    "isv.AMOUNT_NOT_ENOUGH": None,
    "isp.SYSTEM_ERROR": None,
    "isp.GATEWAY_ERROR": None,
    "SignatureNonceUsed": None,  # a fresh nonce on the next attempt
    "InvalidTimeStamp.Expired": None,  # clock skew; check NTP
    "ServiceUnavailable": None,
    "InternalError": None,
}
CONFIG_CODES = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "Forbidden",
    "InvalidSecurityToken",
    "isv.SMS_SIGNATURE_ILLEGAL",
    "isv.SMS_TEMPLATE_ILLEGAL",
    "isv.SMS_SIGN_ILLEGAL",
    "isv.ACCOUNT_NOT_EXISTS",
    "isv.ACCOUNT_ABNORMAL",
)
THROTTLING_WAIT = 10.0  # Throttling, Throttling.User, Throttling.Api …: the API's own rate limit


def percent_encode(value: str) -> str:
    """Aliyun POP encoding: UTF-8, RFC 3986 unreserved characters kept, everything else %XX."""
    out = []
    for byte in value.encode("utf-8"):
        char = chr(byte)
        if char.isascii() and (char.isalnum() or char in "-_.~"):
            out.append(char)
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()) if k != "Signature")


def string_to_sign(params: Mapping[str, str], method: str = "POST") -> str:
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def signature(params: Mapping[str, str], secret: str, method: str = "POST") -> str:
    """Signature V1: base64(HMAC-SHA1(secret + "&", string to sign))."""
    digest = hmac.new((secret + "&").encode("utf-8"), string_to_sign(params, method).encode("utf-8"), hashlib.sha1)
    return base64.b64encode(digest.digest()).decode("ascii")


def classify(code: str, message: str, status: int) -> SendResult:
    """What an Aliyun error code means for the dispatcher."""
    error = f"aliyun {code}: {_http.short(message)}" if message else f"aliyun {code}"
    if code in RETRY:
        return SendResult.failed(error, retry_after=RETRY[code])
    if code.startswith("Throttling"):
        return SendResult.failed(error, retry_after=THROTTLING_WAIT)
    if code.startswith("isp.") or status >= 500:
        return SendResult.failed(error)
    if code.startswith(CONFIG_CODES):  # the account, the keys, the signature or the template: fix the config
        return SendResult.failed(error, config=True)
    if code.startswith("isv.") or 400 <= status < 500:
        # a bad number, template, signature, parameter or content, or rejected credentials
        # (InvalidAccessKeyId.*, SignatureDoesNotMatch, Forbidden.RAM …): sending again cannot help
        return SendResult.failed(error, permanent=True)
    return SendResult.failed(error)  # an unknown code with HTTP 200: temporary, to be safe


class AliyunSmsChannel:
    kind = KIND
    parts = frozenset({"sms"})  # what it sends of a notice: only this is rendered

    def __init__(
        self,
        name: str,
        *,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        templates: dict[str, _http.Template],
        endpoint: str = DEFAULT_ENDPOINT,
        region: str = "cn-hangzhou",
        timeout_s: float = _http.DEFAULT_TIMEOUT,
        urgent_only: bool = False,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = lambda: uuid.uuid4().hex,
    ):
        self.name = name
        self.endpoint = endpoint
        self.access_key_id = access_key_id
        self._secret = access_key_secret
        self.sign_name = sign_name
        self.region = region
        self.templates = templates
        self.timeout_s = timeout_s
        self.urgent_only = urgent_only
        self._clock = clock
        self._nonce = nonce

    def __repr__(self) -> str:
        return (
            f"AliyunSmsChannel({self.name!r}, endpoint={_http.mask_url(self.endpoint)!r}, "
            f"access_key_id={mask_secret(self.access_key_id)!r}, access_key_secret={mask_secret(self._secret)!r}, "
            f"sign_name={self.sign_name!r}, templates={sorted(self.templates)!r})"
        )

    def address(self, recipient: Recipient) -> str | None:
        return _http.normalize_phone(recipient.phone)

    def request(self, message: Message) -> dict[str, str] | SendResult:
        """The signed SendSms parameters for this message (or why there are none)."""
        template = self.templates.get(message.event)
        if template is None:
            return _http.no_template(message.event)
        phone = self.address(message.recipient)
        if phone is None:
            return _http.no_phone(message.recipient.id)
        values = _http.template_values(template, message.params, message.event)
        if isinstance(values, SendResult):
            return values
        params = {
            "AccessKeyId": self.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "RegionId": self.region,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": self._nonce(),
            "SignatureVersion": "1.0",
            "Timestamp": datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
            # mainland numbers go as they are; others as 00<country code><number>
            "PhoneNumbers": phone.removeprefix("+86") if _http.mainland(phone) else "00" + phone.lstrip("+"),
            "SignName": self.sign_name,
            "TemplateCode": template.code,
            "OutId": message.idempotency_key,
        }
        if template.params:
            params["TemplateParam"] = json.dumps(
                dict(zip(template.params, values, strict=True)), ensure_ascii=False, separators=(",", ":")
            )
        params["Signature"] = signature(params, self._secret, "POST")
        return params

    def send(self, message: Message) -> SendResult:
        params = self.request(message)
        if isinstance(params, SendResult):
            return params
        body = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in params.items()).encode("ascii")
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", "Accept": "application/json"}
        reply = _http.post(self.endpoint, body, headers, self.timeout_s)
        if isinstance(reply, SendResult):
            return reply
        return self._outcome(reply, sms_parts(sms_text(message)))

    def _outcome(self, reply: _http.Response, parts: int) -> SendResult:
        data = reply.json()
        code = data.get("Code") if isinstance(data, dict) else None
        if not isinstance(code, str) or not code:
            failure = _http.http_failure(reply, "aliyun")
            # an answer without Code: a proxy's page, a half-written body …
            return failure or SendResult.failed(f"aliyun answered HTTP {reply.status} without a result code")
        if reply.status == 429:
            return SendResult.failed(f"aliyun {code}: HTTP 429", retry_after=reply.retry_after() or THROTTLING_WAIT)
        if code == "OK" and 200 <= reply.status < 300:
            provider_id = data.get("BizId") or data.get("RequestId")
            return SendResult.sent(str(provider_id) if provider_id else None, parts)
        result = classify(code, str(data.get("Message") or ""), reply.status)
        if not result.permanent and result.retry_after is None and reply.retry_after() is not None:
            return SendResult.failed(result.error or code, retry_after=reply.retry_after())
        return result


def from_config(name: str, config: dict[str, Any]) -> AliyunSmsChannel:
    problems: list[str] = []
    _http.check_unknown(config, KEYS, KIND, problems)
    endpoint = _http.check_url(config.get("endpoint") or DEFAULT_ENDPOINT, "endpoint", problems)
    key_id = _http.check_text(config, "access_key_id", problems)
    secret = _http.check_text(config, "access_key_secret", problems)
    sign_name = _http.check_text(config, "sign_name", problems)
    region = _http.check_text(config, "region", problems, required=False) or "cn-hangzhou"
    templates = _http.check_templates(config.get("templates"), problems)
    timeout = _http.check_timeout(config.get("timeout_s", _http.DEFAULT_TIMEOUT), problems)
    urgent_only = _http.check_bool(config.get("urgent_only", False), "urgent_only", problems)
    if problems:
        raise ChannelConfigError(name, problems)
    return AliyunSmsChannel(
        name,
        access_key_id=key_id,
        access_key_secret=secret,
        sign_name=sign_name,
        templates=templates,
        endpoint=endpoint,
        region=region,
        timeout_s=timeout,
        urgent_only=urgent_only,
    )
