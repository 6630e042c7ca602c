"""SMS through a generic HTTP gateway of one's own (a GSM modem box, an operator's relay, a
county platform …): one JSON POST per message to ``url``::

    {"to": "13800138000", "text": "<the SMS as the person reads it>",
     "template": "<the template code, or the event>", "params": {...},
     "idempotency_key": "<stable across retries>"}

Headers: ``Idempotency-Key`` (the same key), ``Authorization: Bearer <token>`` when a ``token`` is
configured, and ``X-Gridflow-Signature: sha256=<hex>`` — HMAC-SHA256 of the raw body with
``secret`` — when a ``secret`` is configured. The gateway should deduplicate on the key: a retry
after an unknown outcome (a timeout) sends the same key again.

``templates`` is optional. Without it every event goes out as free text with ``template`` set to
the event and ``params`` to the notice's parameters. With it, the gateway only knows those
templates: an event without one fails for good (the dispatcher falls back to the person's next
channel), and ``params`` holds the template's named parameters.

Outcomes: 2xx → sent (``{"id": "..."}`` in the answer is the provider id); 408, 429 and 5xx →
temporary (``Retry-After`` honoured); a redirect or any other 4xx → permanent; a timeout after the
request went out → unknown; a refused connection → temporary.

``in_flight`` (default 4, at most 32): how many requests the dispatcher has on the wire at once, each on
a kept-alive connection of its own; a person's messages still go out one after the other, in order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any
from urllib.parse import quote

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
from notifications.sending import MAX_IN_FLIGHT

KIND = "webhook_sms"
KEYS = {"url", "secret", "token", "templates", "timeout_s", "urgent_only", "in_flight"}
IN_FLIGHT = 4  # requests on the wire at once, each on a kept connection of its own (a gateway answers in tens of ms)
SIGNATURE_HEADER = "X-Gridflow-Signature"


def body_signature(secret: str, body: bytes) -> str:
    """The ``X-Gridflow-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _header_safe(value: str) -> str:
    """The value as is when it can ride in a header, else percent-encoded (UTF-8)."""
    return value if re.fullmatch(r"[!-~]+", value) else quote(value, safe="")


class WebhookSmsChannel:
    kind = KIND
    parts = frozenset({"sms"})  # what it sends of a notice: only this is rendered

    def __init__(
        self,
        name: str,
        *,
        url: str,
        secret: str | None = None,
        token: str | None = None,
        templates: dict[str, _http.Template] | None = None,
        timeout_s: float = _http.DEFAULT_TIMEOUT,
        urgent_only: bool = False,
        in_flight: int = IN_FLIGHT,
    ):
        self.name = name
        self.url = url
        self._secret = secret or None
        self._token = token or None
        self.templates = templates or {}
        self.timeout_s = timeout_s
        self.urgent_only = urgent_only
        self.in_flight = in_flight  # the dispatcher's limit for this channel (notifications/sending.py)

    def __repr__(self) -> str:
        return (
            f"WebhookSmsChannel({self.name!r}, url={_http.mask_url(self.url)!r}, "
            f"secret={mask_secret(self._secret)!r}, token={mask_secret(self._token)!r}, "
            f"templates={sorted(self.templates)!r})"
        )

    def address(self, recipient: Recipient) -> str | None:
        return _http.normalize_phone(recipient.phone)

    def request(self, message: Message) -> tuple[dict[str, str], bytes] | SendResult:
        """The headers and the body for this message (or why there are none)."""
        phone = self.address(message.recipient)
        if phone is None:
            return _http.no_phone(message.recipient.id)
        text = sms_text(message)
        if self.templates:
            template = self.templates.get(message.event)
            if template is None:
                return _http.no_template(message.event)
            values = _http.template_values(template, message.params, message.event)
            if isinstance(values, SendResult):
                return values
            code, params = template.code, dict(zip(template.params, values, strict=True))
        else:
            code, params = message.event, {k: str(v) for k, v in message.params.items() if k != "sms"}
        document = {
            "to": phone,
            "text": text,
            "template": code,
            "params": params,
            "idempotency_key": message.idempotency_key,
        }
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            "Idempotency-Key": _header_safe(message.idempotency_key),
        }
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if self._secret:
            headers[SIGNATURE_HEADER] = body_signature(self._secret, body)
        return headers, body

    def send(self, message: Message) -> SendResult:
        prepared = self.request(message)
        if isinstance(prepared, SendResult):
            return prepared
        headers, body = prepared
        reply = _http.post(self.url, body, headers, self.timeout_s)
        if isinstance(reply, SendResult):
            return reply
        failure = _http.http_failure(reply, "the SMS gateway")
        if failure is not None:
            data = reply.json()
            detail = data.get("error") if isinstance(data, dict) else None
            if detail:
                return SendResult.failed(
                    f"{failure.error}: {_http.short(detail)}",
                    permanent=failure.permanent,
                    retry_after=failure.retry_after,
                    config=failure.config,
                )
            return failure
        data = reply.json()
        provider_id = data.get("id") if isinstance(data, dict) else None
        return SendResult.sent(
            str(provider_id) if provider_id not in (None, "") else None,
            sms_parts(sms_text(message)),
        )


def from_config(name: str, config: dict[str, Any]) -> WebhookSmsChannel:
    problems: list[str] = []
    _http.check_unknown(config, KEYS, KIND, problems)
    if not config.get("url"):
        problems.append("url is required (the gateway's https:// address)")
        url = ""
    else:
        url = _http.check_url(config["url"], "url", problems)
    secret = _http.check_text(config, "secret", problems, required=False)
    token = _http.check_text(config, "token", problems, required=False)
    _http.check_header_safe(token, "token", problems)
    templates = _http.check_templates(config.get("templates"), problems, required=False)
    timeout = _http.check_timeout(config.get("timeout_s", _http.DEFAULT_TIMEOUT), problems)
    urgent_only = _http.check_bool(config.get("urgent_only", False), "urgent_only", problems)
    in_flight = _http.check_count(config.get("in_flight", IN_FLIGHT), "in_flight", problems, most=MAX_IN_FLIGHT)
    if problems:
        raise ChannelConfigError(name, problems)
    return WebhookSmsChannel(
        name,
        url=url,
        secret=secret or None,
        token=token or None,
        templates=templates,
        timeout_s=timeout,
        urgent_only=urgent_only,
        in_flight=in_flight,
    )
