"""企业微信群机器人 (WeCom group robot) webhooks: one robot per village group, one for the township.

Config (``kind: wecom``)::

    groups:                       # place id → the robot's webhook URL (it contains the robot's key)
      shengli: ${GRIDFLOW_WECOM_TOWNSHIP}
      mayingtai: ${GRIDFLOW_WECOM_MAYINGTAI}
    webhook: ${GRIDFLOW_WECOM}    # optional: the robot for people whose places have no group
    mention: false                # true: @-mention the person in the group
    timeout_s: 10
    urgent_only: false

A person is reached through the group of the first of their places (most specific first: grid,
village, township) that has one, else through ``webhook``. The message is a ``markdown`` robot
message (``message.markdown``, else ``message.text``), cut to the robot's 4096 bytes.

``mention``: a markdown message can @ a member by WeCom user id (``<@userid>``) but not by mobile
number. So a person with a WeCom id is mentioned inside the message; a person with only a phone
number gets a second, short ``text`` message with ``mentioned_mobile_list``. The mention is best
effort: once the notice itself is in the group, the send counts as delivered.

Results: ``errcode`` 0 → sent (robots return no message id: the provider id is the idempotency
key); 45009 (over 20 messages a minute for this robot) → retry after 60 s; an invalid or removed
robot key (93000), a disabled robot, a rejected message → permanent; HTTP 429/5xx, a refused or
failed connection → temporary; no reply after the request went out → ``unknown`` (robots take no
idempotency key, so a retry after an unknown outcome may show the message twice in the group).
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import ssl
import threading
import urllib.error
import urllib.request
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from notifications.channels.base import (
    ChannelConfigError,
    Message,
    Recipient,
    SendResult,
    mask_secret,
    mask_secrets,
    url_secrets,
)

KEYS = {"groups", "webhook", "mention", "timeout_s", "urgent_only"}
MAX_MARKDOWN_BYTES = 4096  # the robot's limit for markdown.content (UTF-8)
MAX_TEXT_BYTES = 2048  # and for text.content
TRUNCATED = "\n\n……（内容过长，已截断）"
RATE_LIMITED = 45009  # 接口调用超过限制: a robot takes 20 messages a minute
RATE_WINDOW_S = 60.0
PERMANENT_ERRCODES = {  # the robot will never take this message
    93000: "invalid webhook URL: the robot's key is wrong or the robot was removed",
    93004: "the robot is disabled",
    93008: "the robot is not in the group",
    40008: "invalid message type",
    40058: "invalid parameter (content too long?)",
    44004: "empty content",
}
_MAX_BODY = 64 * 1024


class WecomChannel:
    kind = "wecom"
    parts = frozenset({"markdown", "subject", "text"})  # what it sends of a notice: only these are rendered

    def __init__(
        self,
        name: str,
        *,
        groups: dict[str, str] | None = None,
        webhook: str | None = None,
        mention: bool = False,
        timeout_s: float = 10.0,
        urgent_only: bool = False,
    ):
        self.name = name
        self.groups = dict(groups or {})
        self.webhook = webhook
        self.mention = mention
        self.timeout_s = timeout_s
        self.urgent_only = urgent_only
        self._tls: ssl.SSLContext | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        groups = {place: mask_url(url) for place, url in self.groups.items()}
        webhook = f", webhook={mask_url(self.webhook)!r}" if self.webhook else ""
        return f"WecomChannel({self.name!r}, groups={groups!r}{webhook}, mention={self.mention})"

    def secrets(self) -> list[str]:
        """The robots' keys (the ``key=`` of each webhook URL): masked wherever an error shows them."""
        return [s for url in [*self.groups.values(), self.webhook] for s in url_secrets(url)]

    # -- addressing --------------------------------------------------------------------------

    def target(self, recipient: Recipient) -> tuple[str, str] | None:
        """(label, webhook URL) of the robot that reaches this person: the group of their most
        specific place that has one, else the single webhook."""
        for place in recipient.places:
            if place in self.groups:
                return f"group:{place}", self.groups[place]
        if self.webhook:
            return "webhook", self.webhook
        return None

    def address(self, recipient: Recipient) -> str | None:
        """The group that reaches this person (``group:<place>`` or ``webhook``). Not the URL
        itself: it carries the robot's key, and addresses end up in listings and logs."""
        found = self.target(recipient)
        return found[0] if found else None

    # -- sending -----------------------------------------------------------------------------

    def payloads(self, message: Message) -> list[dict[str, Any]]:
        """The robot messages for ``message``: the markdown one, and the @-mention by mobile."""
        recipient = message.recipient
        mention_inline = f"\n<@{recipient.wecom}>" if self.mention and recipient.wecom else ""
        content = fit(message.markdown or message.text, MAX_MARKDOWN_BYTES - len(mention_inline.encode()))
        out: list[dict[str, Any]] = [{"msgtype": "markdown", "markdown": {"content": content + mention_inline}}]
        if self.mention and not recipient.wecom and recipient.phone:
            note = fit(f"请 {recipient.name} 查看上一条通知：{' '.join(message.subject.split())}", MAX_TEXT_BYTES)
            out.append({"msgtype": "text", "text": {"content": note, "mentioned_mobile_list": [recipient.phone]}})
        return out

    def send(self, message: Message) -> SendResult:
        found = self.target(message.recipient)
        if found is None:
            places = ", ".join(message.recipient.places) or "none"
            return SendResult.failed(
                f"no WeCom group for {message.recipient.id} (places: {places}) and no default webhook", permanent=True
            )
        label, url = found
        first, *rest = self.payloads(message)
        failure = self._post(label, url, first)
        if failure is not None:  # a robot's reply or an exception may carry the key: never shown
            return replace(failure, error=mask_secrets(failure.error, self.secrets()))
        for extra in rest:  # the @-mention: best effort, the notice is already in the group
            self._post(label, url, extra)
        return SendResult.sent(message.idempotency_key)

    def _post(self, label: str, url: str, payload: dict[str, Any]) -> SendResult | None:
        """One robot message; None when the robot took it, else what went wrong."""
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json; charset=utf-8"}
        )
        try:
            with self._opener(url).open(request, timeout=self.timeout_s) as response:
                raw = response.read(_MAX_BODY)
        except urllib.error.HTTPError as exc:
            with exc:
                return _http_failure(label, exc.code, exc.headers.get("Retry-After"))
        except urllib.error.URLError as exc:  # connecting or sending: the robot has nothing
            reason = exc.reason
            if isinstance(reason, ssl.SSLCertVerificationError):
                return SendResult.failed(
                    f"{label}: the server's certificate does not verify ({reason.verify_message})", permanent=True
                )
            what = "timed out" if isinstance(reason, TimeoutError) else f"failed: {reason}"
            return SendResult.failed(f"{label}: connection {what}")
        except (TimeoutError, OSError, ValueError) as exc:  # sent, then no (whole) reply
            what = "timed out" if isinstance(exc, TimeoutError) else f"{exc.__class__.__name__}: {exc}"
            return SendResult.failed(f"{label}: no reply ({what}); the robot may have posted it", unknown=True)
        return _reply(label, raw, self.secrets())

    def _opener(self, url: str) -> urllib.request.OpenerDirector:
        with self._lock:  # made at the first send: loading the CA store is I/O
            if self._tls is None:
                self._tls = ssl.create_default_context()
            context = self._tls
        handlers: list[urllib.request.BaseHandler] = [urllib.request.HTTPSHandler(context=context), _NoRedirect()]
        if _is_loopback(urlsplit(url).hostname or ""):
            handlers.append(urllib.request.ProxyHandler({}))  # never through a proxy to a loopback robot
        return urllib.request.build_opener(*handlers)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None  # a POST is not followed elsewhere: the 3xx becomes an HTTPError


def _http_failure(label: str, status: int, retry_after: str | None) -> SendResult:
    wait = _seconds(retry_after)
    if status == 429:
        return SendResult.failed(f"{label}: HTTP 429 too many requests", retry_after=wait or RATE_WINDOW_S)
    if status >= 500:
        return SendResult.failed(f"{label}: HTTP {status} from the robot", retry_after=wait)
    if 300 <= status < 400:
        return SendResult.failed(f"{label}: HTTP {status}: the webhook URL redirects; check it", permanent=True)
    return SendResult.failed(f"{label}: HTTP {status}: check the webhook URL", permanent=True)


def _reply(label: str, raw: bytes, secrets: list[str] | tuple[str, ...] = ()) -> SendResult | None:
    """What the robot answered; its text is masked (:func:`mask_secrets`) before it is cut to fit."""
    try:
        reply = json.loads(raw.decode("utf-8"))
        errcode = int(reply.get("errcode"))
    except (ValueError, TypeError, AttributeError):
        shown = mask_secrets(raw.decode("utf-8", "replace"), secrets) or ""
        return SendResult.failed(f"{label}: unexpected reply {shown[:200]!r}")
    if errcode == 0:
        return None
    errmsg = (mask_secrets(" ".join(str(reply.get("errmsg", "")).split()), secrets) or "")[:200]
    if errcode == RATE_LIMITED:
        return SendResult.failed(
            f"{label}: errcode {errcode} (over 20 messages a minute for this robot) {errmsg}", retry_after=RATE_WINDOW_S
        )
    if errcode in PERMANENT_ERRCODES:
        return SendResult.failed(
            f"{label}: errcode {errcode}: {PERMANENT_ERRCODES[errcode]} ({errmsg})",
            permanent=True,
            config=errcode == 93000,  # the robot's key is wrong or the robot was removed: fix the config
        )
    return SendResult.failed(f"{label}: errcode {errcode} {errmsg}")


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


# -- content ---------------------------------------------------------------------------------

_OPEN_TAG = re.compile(r"<[^<>\n]*$")  # a tag cut in the middle
_OPEN_LINK = re.compile(r"\[[^\]\n]*(\]\([^)\n]*)?$")  # [text or [text](url cut in the middle


def fit(content: str, limit: int) -> str:
    """``content`` within ``limit`` UTF-8 bytes: cut at a line break near the end when there is
    one, never inside a character, a tag or a link, with open markup closed and a note appended."""
    if len(content.encode("utf-8")) <= limit:
        return content
    budget = max(limit - len(TRUNCATED.encode("utf-8")) - len("</font>**`"), 0)
    cut = content.encode("utf-8")[:budget].decode("utf-8", "ignore")
    line_end = cut.rfind("\n")
    if line_end >= len(cut) * 3 // 4:
        cut = cut[:line_end]
    else:
        cut = _OPEN_LINK.sub("", _OPEN_TAG.sub("", cut))
    cut = cut.rstrip()
    if cut.count("`") % 2:
        cut += "`"
    if cut.count("**") % 2:
        cut += "**"
    if len(re.findall(r"<font\b", cut)) > cut.count("</font>"):
        cut += "</font>"
    return cut + TRUNCATED


# -- config ----------------------------------------------------------------------------------


def mask_url(url: str | None) -> str:
    """The webhook URL with its key masked: ``...send?key=69****``."""
    if not url:
        return ""
    parts = urlsplit(url)
    query = urlencode(
        [(k, mask_secret(v) if k.lower() == "key" else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)],
        safe="*",
    )
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(where: str, value: Any, problems: list[str]) -> str | None:
    example = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…"
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}: the robot's webhook URL is empty (like {example})")
        return None
    url = value.strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        problems.append(f"{where}: {mask_url(url)!r} is not a URL (like {example})")
        return None
    if parts.scheme not in ("http", "https") or not host:
        problems.append(f"{where}: {mask_url(url)!r} is not a webhook URL (like {example})")
        return None
    if parts.scheme == "http" and not _is_loopback(host):
        problems.append(f"{where}: the webhook must be https (plain http only to a loopback test server)")
    if not dict(parse_qsl(parts.query)).get("key"):
        problems.append(f"{where}: the webhook URL has no key= (copy the whole URL from the robot's settings)")
    if parts.username or parts.password:
        problems.append(f"{where}: the webhook URL must not carry a user name or password")
    return url


def _flag(config: dict[str, Any], key: str, default: bool, problems: list[str]) -> bool:
    value = config.get(key, default)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):  # "${VAR}" expands to a string
        return value.strip().lower() == "true"
    if not isinstance(value, bool):
        problems.append(f"{key} must be true or false, got {value!r}")
        return default
    return value


def from_config(name: str, config: dict[str, Any]) -> WecomChannel:
    problems: list[str] = []
    for key in sorted(set(config) - KEYS):
        problems.append(f"unknown key {key!r} for a wecom channel (keys: {', '.join(sorted(KEYS))})")

    groups: dict[str, str] = {}
    raw_groups = config.get("groups")
    if raw_groups is not None:
        if not isinstance(raw_groups, dict):
            problems.append("groups must map place ids to robot webhook URLs, e.g. mayingtai: ${GRIDFLOW_WECOM_…}")
        else:
            for place, url in raw_groups.items():
                if not isinstance(place, str) or not place.strip():
                    problems.append(f"groups: {place!r} is not a place id (quote ids that look like numbers)")
                    continue
                checked = _check_url(f"groups.{place}", url, problems)
                if checked:
                    groups[place.strip()] = checked
    webhook = None
    if config.get("webhook") is not None:
        webhook = _check_url("webhook", config["webhook"], problems)
    if raw_groups is None and config.get("webhook") is None:
        problems.append("groups (place id → robot webhook URL) or webhook (one robot for everyone) is required")
    elif isinstance(raw_groups, dict) and not raw_groups and config.get("webhook") is None:
        problems.append("groups is empty and there is no webhook: the channel could reach nobody")

    mention = _flag(config, "mention", False, problems)
    urgent_only = _flag(config, "urgent_only", False, problems)
    timeout_s: float = 10.0
    raw_timeout = config.get("timeout_s", 10)
    try:
        timeout_s = float(raw_timeout) if not isinstance(raw_timeout, bool) else -1.0
    except (TypeError, ValueError):
        timeout_s = -1.0
    if not (math.isfinite(timeout_s) and timeout_s > 0):
        problems.append(f"timeout_s must be a positive number of seconds, got {raw_timeout!r}")
        timeout_s = 10.0

    if problems:
        raise ChannelConfigError(name, problems)
    return WecomChannel(
        name, groups=groups, webhook=webhook, mention=mention, timeout_s=timeout_s, urgent_only=urgent_only
    )
