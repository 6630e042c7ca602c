"""Webhooks out to a subscriber's URL (the county's platform), signed per Standard Webhooks
(https://www.standardwebhooks.com): one JSON POST per event::

    {"type": "case.stepped", "timestamp": "<when it happened, UTC>", "data": {<the payload>}}

Headers: ``webhook-id`` (the notice's dedupe key: the same on every retry of one delivery, so the
receiver can drop a duplicate), ``webhook-timestamp`` (Unix seconds of this attempt; receivers refuse
one more than five minutes off their clock) and ``webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body">`` with the subscription's secret ``whsec_<base64>``, made by the ``standardwebhooks``
package.

The dispatcher builds one channel per subscription (:func:`for_subscription`) and uses it for the
``webhook:<id>`` recipients whatever people's channel order says. Outcomes: 2xx → sent; 408, 429 and
5xx → temporary (``Retry-After`` honoured), retried with the dispatcher's backoff; a redirect or any
other 4xx → permanent (the notice ends ``failed``); cannot connect → temporary; a timeout or a broken
exchange after the request went out → unknown (the retry carries the same ``webhook-id``).

``httpx`` with a timeout for each phase (connect, write, read; ``timeout_s``), no redirects followed, no
proxies from the environment; at most 64 KiB of an answer is read.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from standardwebhooks.webhooks import Webhook

from notifications.channels import _http
from notifications.channels.base import Message, Recipient, SendResult, mask_secret

if TYPE_CHECKING:
    import httpx

KIND = "webhook"
NAME = "webhook"  # the channel's name in deliveries and in a notice's history
DEFAULT_TIMEOUT = 10.0
MAX_ANSWER = 64 * 1024
SECRET_PREFIX = "whsec_"
CONTENT_TYPE = "application/json"

_client: httpx.Client | None = None
_client_lock = threading.Lock()


def new_secret() -> str:
    """A new signing secret: ``whsec_`` and 32 random bytes in base64 (the scheme asks for 24 to 64)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def body(event: str, payload: dict[str, Any]) -> str:
    """The JSON document of one event, the same text on every retry (keys sorted, UTF-8 as is)."""
    document = {"type": event, "timestamp": payload.get("at"), "data": payload}
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def message(recipient: Recipient, key: str, event: str, payload: dict[str, Any], notice_id: int) -> Message:
    """The dispatcher's message for one webhook notice: never rendered, never folded into a digest."""
    return Message(
        idempotency_key=key[:150],
        event=event,
        recipient=recipient,
        subject=event,
        text=body(event, payload),
        urgent=True,
        notice_ids=(notice_id,),
    )


def _shared_client() -> httpx.Client:
    """One connection pool per process, made at the first send (importing this module loads no httpx)."""
    global _client
    with _client_lock:
        if _client is None:
            import httpx

            _client = httpx.Client(
                trust_env=False,
                follow_redirects=False,
                headers={"User-Agent": _http.USER_AGENT},
                limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
            )
        return _client


class WebhookChannel:
    kind = KIND
    urgent_only = False

    def __init__(
        self,
        subscription_id: int,
        url: str,
        secret: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT,
        now: Callable[[], float] = time.time,
        name: str = NAME,
    ):
        self.name = name
        self.subscription_id = subscription_id
        self.url = url
        self._signer = Webhook(secret)
        self._secret = secret
        self.timeout_s = timeout_s
        self._now = now  # the signature's time: the receiver holds it against its own clock

    def __repr__(self) -> str:
        return (
            f"WebhookChannel(#{self.subscription_id}, url={_http.mask_url(self.url)!r}, "
            f"secret={mask_secret(self._secret)!r})"
        )

    def address(self, recipient: Recipient) -> str | None:
        return self.url

    def headers(self, message: Message, timestamp: int | None = None) -> dict[str, str]:
        """The signed headers of ``message`` at ``timestamp`` (Unix seconds; default now)."""
        stamp = int(self._now()) if timestamp is None else timestamp
        signature = self._signer.sign(message.idempotency_key, datetime.fromtimestamp(stamp, UTC), message.text)
        return {
            "Content-Type": CONTENT_TYPE,
            "webhook-id": message.idempotency_key,
            "webhook-timestamp": str(stamp),
            "webhook-signature": signature,
        }

    def send(self, message: Message) -> SendResult:
        import httpx

        where = _http.mask_url(self.url)
        try:
            headers = self.headers(message)
            with _shared_client().stream(
                "POST",
                self.url,
                content=message.text.encode("utf-8"),
                headers=headers,
                timeout=httpx.Timeout(self.timeout_s),
            ) as reply:
                answer = b""
                for chunk in reply.iter_bytes():
                    answer += chunk
                    if len(answer) >= MAX_ANSWER:
                        break
                status = reply.status_code
                retry_after, location = reply.headers.get("retry-after"), reply.headers.get("location")
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            return SendResult.failed(f"cannot connect to {where}: {_describe(exc)}")
        except (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.LocalProtocolError, ValueError) as exc:
            return SendResult.failed(f"cannot build the request to {where}: {_describe(exc)}", permanent=True)
        except httpx.TimeoutException:
            return SendResult.failed(
                f"no answer from {where} within {self.timeout_s:g}s (it may have been delivered)", unknown=True
            )
        except httpx.TransportError as exc:
            return SendResult.failed(
                f"the exchange with {where} broke off: {_describe(exc)} (it may have been delivered)", unknown=True
            )
        return classify(status, retry_after, location, answer)


def classify(status: int, retry_after: str | None, location: str | None, answer: bytes = b"") -> SendResult:
    """The outcome of an answer: 2xx sent; 408, 429, 5xx temporary; a redirect or another 4xx permanent."""
    if 200 <= status < 300:
        return SendResult.sent(None)
    said = _http.short(answer.decode("utf-8", "replace"), 120) if answer.strip() else ""
    error = f"the subscriber answered HTTP {status}" + (f": {said}" if said else "")
    if status in (408, 429) or status >= 500:
        return SendResult.failed(error, retry_after=_http.parse_retry_after(retry_after))
    if 300 <= status < 400:
        return SendResult.failed(
            f"the subscriber answered HTTP {status} redirecting to {location or '?'}: fix the subscription's URL",
            permanent=True,
        )
    return SendResult.failed(error, permanent=True)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def for_subscription(subscription_id: int, url: str, secret: str) -> WebhookChannel:
    return WebhookChannel(subscription_id, url, secret)
