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

``repr(channel)`` masks every secret; a channel may name its secrets (``secrets()``, see
:func:`channel_secrets`), and the dispatcher stores every error through :func:`mask_secrets`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

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


#: The parts of a notice a template set can make (``notifications.render.PARTS``).
ALL_PARTS = frozenset({"subject", "text", "sms", "html", "markdown"})


class Channel(Protocol):
    name: str  # the configured name, e.g. "sms"
    kind: str  # aliyun_sms | tencent_sms | webhook_sms | email | wecom | console
    urgent_only: bool
    #: The parts of a message this channel sends: only these are rendered for it (the others are "").
    #: A channel without the attribute gets every part (:func:`parts_of`).
    parts: frozenset[str]

    def address(self, recipient: Recipient) -> str | None:
        """Where this channel would deliver to this person (None: it cannot reach them)."""
        ...

    def send(self, message: Message) -> SendResult: ...


def parts_of(channel: Any) -> frozenset[str]:
    """What to render for ``channel``: its ``parts``, or every part."""
    return getattr(channel, "parts", ALL_PARTS)


def mask_secret(value: str | None) -> str:
    if not value:
        return ""
    return value[:2] + "****" if len(value) > 6 else "****"


# -- secrets in error texts ------------------------------------------------------------------

MIN_SECRET = 6  # a configured value shorter than this is not hunted for in texts (it would mask words)
_SECRET_NAME = (
    r"[A-Za-z0-9_.\-]*(?:key|token|secret|signature|password|passwd|pwd|credential)s?"
    r"|sign|sig|authorization"
)
_MASK = "****"
# name=value (a query, a form, a header's parameters) and name: value, after an optional Bearer or Basic
_NAMED = re.compile(
    rf"(?P<head>\b(?:{_SECRET_NAME})(?:=|:[ \t]*)(?:(?:Bearer|Basic)[ \t]+)?)"
    rf"(?P<value>(?!\*\*\*\*|(?:Bearer|Basic)[ \t])[^\s&,;\"'<>)\]}}]+)",
    re.IGNORECASE,
)
_QUOTED = re.compile(rf"(?P<head>\"(?:{_SECRET_NAME})\"[ \t]*:[ \t]*\")(?P<value>[^\"]*)", re.IGNORECASE)
_BEARER = re.compile(r"(?P<head>\b(?:Bearer|Basic)[ \t]+)(?P<value>(?!\*\*\*\*)[A-Za-z0-9._~+/=\-]{6,})")
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*):(?P<value>[^@\s/]+)@")


def mask_secrets(text: str | None, secrets: Iterable[str | None] = ()) -> str | None:
    """``text`` (a provider's error, an exception's message) with every secret in it masked: values of
    ``key=``, ``access_token=``, ``secret=``, ``Signature=``, ``password:`` and the like (also as JSON
    and after ``Bearer``), the password of a URL (``user:****@``), and each of ``secrets`` — the channel's
    own, :func:`channel_secrets` — wherever it appears verbatim or URL-encoded (as :func:`mask_secret`
    shows it: ``69****``). The one function every stored delivery error goes through."""
    if not text:
        return text
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET}, key=len, reverse=True):
        shown = mask_secret(secret)
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            text = re.sub(re.escape(form), lambda _, shown=shown: shown, text, flags=re.IGNORECASE)
    text = _USERINFO.sub(lambda m: f"{m['head']}:{_MASK}@", text)
    text = _QUOTED.sub(lambda m: f"{m['head']}{_MASK}", text)
    text = _BEARER.sub(lambda m: f"{m['head']}{_MASK}", text)
    return _NAMED.sub(lambda m: f"{m['head']}{_MASK}", text)


# attributes that hold a channel's secrets, for channels that do not name them with secrets()
_SECRET_ATTRIBUTES = ("_secret", "_secret_key", "_token", "password", "access_key_id", "secret_id")
_URL_ATTRIBUTES = ("url", "endpoint", "webhook")


def url_secrets(url: str | None) -> list[str]:
    """The secrets a URL carries: its password and every query value (a robot's ``key=``, a ``token=``)."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
        found = [parts.password or ""]
    except ValueError:
        return []
    return found + [value for _, value in parse_qsl(parts.query, keep_blank_values=False)]


def channel_secrets(channel: Any) -> list[str]:
    """Every secret ``channel`` was configured with: what its ``secrets()`` names, else its credential
    attributes (``_secret``, ``password``, …) and the secrets of its URLs (``url``, ``endpoint``,
    ``webhook``, each of ``groups``)."""
    named = getattr(channel, "secrets", None)
    if callable(named):
        return [s for s in named() if s]
    found = [getattr(channel, name, None) for name in _SECRET_ATTRIBUTES]
    urls = [getattr(channel, name, None) for name in _URL_ATTRIBUTES]
    groups = getattr(channel, "groups", None)
    if isinstance(groups, dict):
        urls.extend(groups.values())
    for url in urls:
        if isinstance(url, str):
            found.extend(url_secrets(url))
    return [s for s in found if isinstance(s, str) and s]


def mask_phone(phone: str | None) -> str:
    """138****0001: the form phone numbers take in logs and listings."""
    if not phone:
        return ""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"


_MOBILE = re.compile(r"(?<!\d)(\+?86)?(1[3-9]\d)(\d{4})(\d{4})(?!\d)")


def mask_phones(text: str | None) -> str | None:
    """Every mainland mobile number in a text (a provider's error, say) masked: 138****0001."""
    return _MOBILE.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}****{m.group(4)}", text) if text else text


def sms_text(message: Message) -> str:
    """The SMS as the person reads it: the rendered ``sms`` part, which the dispatcher puts in ``params``;
    a message written by hand without one (the sign-in code) is sent as its ``text``."""
    return message.params.get("sms", message.text)


def sms_parts(text: str) -> int:
    """Billed parts of a Chinese SMS: up to 70 characters is one; longer is split at 67 a part."""
    n = len(text)
    return 1 if n <= 70 else -(-n // 67)


def require(config: dict[str, Any], keys: list[str], problems: list[str]) -> None:
    for key in keys:
        if not config.get(key):
            problems.append(f"{key} is required")
