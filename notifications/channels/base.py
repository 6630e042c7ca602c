"""The contract every channel keeps.

A channel is built from its config mapping by ``from_config(name, config)`` — parsing and
validation only, no I/O — which raises :class:`ChannelConfigError` listing every problem.
``send(message)`` is the only I/O; it never raises for a delivery problem, it returns a
:class:`SendResult` that says what happened and what to do next:

- ``ok``: delivered (``provider_id`` is the provider's message id);
- ``config``: the channel itself is wrong (rejected credentials, an unapproved signature or
  template, a removed robot): permanent for the message, and the dispatcher raises an alert;
- ``permanent``: this channel can never deliver this message (a bad number, a rejected
  template, no address for the person): the dispatcher falls back to the person's next channel;
- otherwise a temporary failure, retried with backoff (``retry_after`` when the provider said
  how long, e.g. 429 with Retry-After); ``unknown`` when the outcome is unknown (a timeout
  after the request was sent): the retry reuses ``message.idempotency_key`` where the provider
  has a field for it.

``repr(channel)`` masks every secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.errors import ConfigError


class ChannelConfigError(ConfigError):
    def __init__(self, name: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"channel {name!r}: " + "; ".join(problems))


@dataclass(frozen=True)
class Recipient:
    id: str
    name: str
    phone: str | None = None
    email: str | None = None
    wecom: str | None = None
    places: tuple[str, ...] = ()  # where the person works, most specific first (grid, village, township)


@dataclass(frozen=True)
class Message:
    """One message to one person on one channel: a single notice or a digest of several."""

    idempotency_key: str  # stable across retries of this message
    event: str  # e.g. sla_breach, digest
    recipient: Recipient
    subject: str  # e-mail subject; a title elsewhere
    text: str  # plain text (SMS body as the person will read it, console, e-mail text part)
    html: str | None = None  # e-mail HTML part
    markdown: str | None = None  # WeCom
    params: dict[str, str] = field(default_factory=dict)  # SMS provider template parameters
    urgent: bool = False
    notice_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class SendResult:
    ok: bool
    provider_id: str | None = None
    error: str | None = None
    permanent: bool = False
    retry_after: float | None = None
    unknown: bool = False
    parts: int = 1  # SMS: billed message parts
    config: bool = False  # the channel itself is misconfigured (rejected credentials, a removed robot): alert

    def __post_init__(self) -> None:
        if self.config and not self.permanent:
            object.__setattr__(self, "permanent", True)  # a wrong config is permanent for this message too

    @classmethod
    def sent(cls, provider_id: str | None, parts: int = 1) -> SendResult:
        return cls(True, provider_id=provider_id, parts=parts)

    @classmethod
    def failed(
        cls,
        error: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        unknown: bool = False,
        config: bool = False,
    ) -> SendResult:
        return cls(False, error=error, permanent=permanent, retry_after=retry_after, unknown=unknown, config=config)


class Channel(Protocol):
    name: str  # the configured name, e.g. "sms"
    kind: str  # aliyun_sms | tencent_sms | webhook_sms | email | wecom | console
    urgent_only: bool

    def address(self, recipient: Recipient) -> str | None:
        """Where this channel would deliver to this person (None: it cannot reach them)."""
        ...

    def send(self, message: Message) -> SendResult: ...


def mask_secret(value: str | None) -> str:
    if not value:
        return ""
    return value[:2] + "****" if len(value) > 6 else "****"


def mask_phone(phone: str | None) -> str:
    """138****0001: the form phone numbers take in logs and listings."""
    if not phone:
        return ""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"


_MOBILE = re.compile(r"(?<!\d)(\+?86)?(1[3-9]\d)(\d{4})(\d{4})(?!\d)")


def mask_phones(text: str | None) -> str | None:
    """Every mainland mobile number in a text (a provider's error, say) masked: 138****0001."""
    return _MOBILE.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}****{m.group(4)}", text) if text else text


def sms_parts(text: str) -> int:
    """Billed parts of a Chinese SMS: up to 70 characters is one; longer is split at 67 a part."""
    n = len(text)
    return 1 if n <= 70 else -(-n // 67)


def require(config: dict[str, Any], keys: list[str], problems: list[str]) -> None:
    for key in keys:
        if not config.get(key):
            problems.append(f"{key} is required")
