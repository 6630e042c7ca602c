"""E-mail over SMTP (standard library only: :mod:`smtplib` and :class:`email.message.EmailMessage`).

Config (``kind: email``)::

    host: smtp.example.org
    port: 465                    # default: 465 for ssl, 587 for starttls, 25 for none
    security: ssl                # ssl | starttls (default) | none
    username: gridflow@shengli.example.org     # optional; with password, AUTH is used
    password: ${GRIDFLOW_SMTP_PASSWORD}
    sender: 胜利乡网格管理中心 <gridflow@shengli.example.org>
    timeout_s: 15                # per socket operation
    tls_verify: true             # false only for a test server with a self-signed certificate
    helo: gridflow.shengli.example.org   # the name given in EHLO (default: this host's FQDN)
    urgent_only: false

Each message is ``multipart/alternative`` (the text, and the HTML when there is one), UTF-8,
with RFC 2047 headers (raw UTF-8 headers only when an address needs SMTPUTF8 and the server
offers it). ``Message-ID`` is derived from ``message.idempotency_key``, so a retried send of the
same message carries the same id (and ``X-Gridflow-Key`` carries the key itself).

How failures are classified (``send`` never raises for them):

- a 5xx reply (sender or recipient refused, policy, size), a refused login, a server that does
  not offer STARTTLS or AUTH when the config needs them, a certificate that does not verify →
  ``permanent`` (the dispatcher moves on to the person's next channel);
- a 4xx reply (greylisting, a full queue), a refused or dropped connection, a timeout before the
  message was handed over → temporary (retried with backoff);
- no reply once the DATA command was sent (a timeout or a dropped connection) → ``unknown``:
  the server may have taken the message; the retry carries the same ``Message-ID``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import smtplib
import socket
import ssl
import threading
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from notifications.channels import keep
from notifications.channels.base import ChannelConfigError, Message, Recipient, SendResult, mask_secret

SECURITY = ("ssl", "starttls", "none")
DEFAULT_PORTS = {"ssl": 465, "starttls": 587, "none": 25}
KEYS = {"host", "port", "security", "username", "password", "sender", "timeout_s", "tls_verify", "helo", "urgent_only"}
_BUILD = policy.SMTP.clone(cte_type="7bit")  # bodies as base64/quoted-printable: no 8BITMIME needed


class EmailChannel:
    kind = "email"
    parts = frozenset({"subject", "text", "html"})  # what it sends of a notice: only these are rendered

    def __init__(
        self,
        name: str,
        *,
        host: str,
        port: int,
        security: str,
        sender: Address,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 15.0,
        tls_verify: bool = True,
        helo: str | None = None,
        urgent_only: bool = False,
    ):
        self.name = name
        self.host = host
        self.port = port
        self.security = security
        self.sender = sender
        self.username = username
        self.password = password
        self.timeout_s = timeout_s
        self.tls_verify = tls_verify
        self.helo = helo
        self.urgent_only = urgent_only
        self._tls: ssl.SSLContext | None = None
        self._tls_lock = threading.Lock()

    def __repr__(self) -> str:
        login = f", username={self.username!r}, password={mask_secret(self.password)!r}" if self.username else ""
        verify = "" if self.tls_verify else ", tls_verify=False"
        return (
            f"EmailChannel({self.name!r}, {self.security}://{self.host}:{self.port}"
            f", sender={self.sender.addr_spec!r}{login}{verify})"
        )

    # -- addressing --------------------------------------------------------------------------

    def address(self, recipient: Recipient) -> str | None:
        email = (recipient.email or "").strip()
        local, at, domain = email.rpartition("@")
        return email if at and local and domain and not any(c.isspace() for c in email) else None

    # -- the message -------------------------------------------------------------------------

    def message_id(self, idempotency_key: str) -> str:
        """The ``Message-ID`` of every send of the message with this key."""
        digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
        return f"<{digest}.gridflow@{_ascii_domain(self.sender.domain)}>"

    def build(self, message: Message, to: str) -> EmailMessage:
        """The e-mail for ``message`` addressed to ``to`` (raises ValueError for an unusable address)."""
        local, _, domain = to.rpartition("@")
        msg = EmailMessage(policy=_BUILD)
        msg["Subject"] = _one_line(message.subject)
        msg["From"] = self.sender
        msg["To"] = Address(_one_line(message.recipient.name), local, domain)
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = self.message_id(message.idempotency_key)
        msg["X-Gridflow-Key"] = _one_line(message.idempotency_key)
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
        msg.set_content(message.text, charset="utf-8")
        if message.html:
            msg.add_alternative(message.html, subtype="html", charset="utf-8")
        return msg

    # -- sending -----------------------------------------------------------------------------

    def send(self, message: Message) -> SendResult:
        to = self.address(message.recipient)
        if to is None:
            return SendResult.failed(f"{message.recipient.id} has no usable e-mail address", permanent=True)
        try:
            mail = self.build(message, to)
            envelope_to = _envelope_address(to)
        except (ValueError, UnicodeError) as exc:
            return SendResult.failed(f"cannot address an e-mail to {to!r}: {exc}", permanent=True)
        envelope_from = _envelope_address(self.sender.addr_spec)
        kept = keep.current()
        key = ("smtp", self.host, self.port, self.security, self.username)
        session = kept.take(key) if kept is not None else None
        if session is not None:
            answer = self._exchange(session, mail, envelope_from, envelope_to, to, kept, key)
            if answer is not None:
                return answer
        answer = self._exchange(None, mail, envelope_from, envelope_to, to, kept, key)
        assert answer is not None  # only a kept session can be found closed
        return answer

    def _exchange(
        self,
        session: smtplib.SMTP | None,
        mail: EmailMessage,
        envelope_from: str,
        envelope_to: str,
        to: str,
        kept: keep.Kept | None,
        key: tuple[Any, ...],
    ) -> SendResult | None:
        """One message over ``session`` (a session kept from this tick's last message) or a new one.

        None: the kept session turned out closed before the server took anything of this message (it
        hung up, or answered 421, at MAIL FROM): nothing was sent, and the caller connects again."""
        needs_utf8 = not (envelope_from.isascii() and envelope_to.isascii())
        where = f"{self.host}:{self.port}"
        reused = session is not None
        step = "connect"
        smtp: smtplib.SMTP | None = session
        delivered = False
        try:
            if smtp is None:
                smtp = self._connect()
                if kept is not None:
                    kept.made()
                step = "EHLO"
                smtp.ehlo_or_helo_if_needed()
                if self.security == "starttls":
                    if not smtp.has_extn("starttls"):
                        return SendResult.failed(
                            f"{where} does not offer STARTTLS; set security: ssl or none to match the server",
                            permanent=True,
                        )
                    step = "STARTTLS"
                    smtp.starttls(context=self._tls_context())
                    smtp.ehlo_or_helo_if_needed()
                if self.username:
                    step = "AUTH"
                    if not smtp.has_extn("auth"):
                        how = "" if self.security != "none" else " (servers often offer it only over TLS: use starttls)"
                        return SendResult.failed(f"{where} offers no AUTH on this connection{how}", permanent=True)
                    smtp.login(self.username, self.password or "")
            options: list[str] = []
            if needs_utf8:
                if not smtp.has_extn("smtputf8"):
                    return SendResult.failed(
                        f"{where} does not take non-ASCII addresses (no SMTPUTF8): {to}", permanent=True
                    )
                options.append("SMTPUTF8")
            data = mail.as_bytes(policy=policy.SMTPUTF8 if needs_utf8 else policy.SMTP)
            step = "MAIL FROM"
            code, reply = smtp.mail(envelope_from, options)
            if code == 421 and reused:
                return None  # the server is closing the kept session: this message starts afresh
            if code != 250:
                return _reply_failure(f"sender {envelope_from} refused", code, reply)
            step = "RCPT TO"
            code, reply = smtp.rcpt(envelope_to)
            if code not in (250, 251):
                return _reply_failure(f"recipient {to} refused", code, reply)
            step = "DATA"  # from here on, no reply means the server may have the message
            code, reply = smtp.data(data)
            if code != 250:
                return _reply_failure("message refused", code, reply)
            delivered = True
        except smtplib.SMTPAuthenticationError as exc:
            return SendResult.failed(
                f"{where} refused the login of {self.username!r}: check username and password "
                f"({exc.smtp_code} {_text(exc.smtp_error)})",
                config=True,
            )
        except smtplib.SMTPNotSupportedError as exc:
            return SendResult.failed(f"{where} at {step}: {exc}", permanent=True)
        except smtplib.SMTPResponseException as exc:
            return _reply_failure(f"{step} failed", exc.smtp_code, exc.smtp_error)
        except ssl.SSLCertVerificationError as exc:
            return SendResult.failed(
                f"{where}: the server's certificate does not verify ({exc.verify_message}); "
                "fix the server or, for a test server only, set tls_verify: false",
                config=True,
            )
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:
            return self._lost(step, exc)
        except ssl.SSLError as exc:
            return SendResult.failed(
                f"{where}: TLS failed at {step} ({exc.reason or exc}); does security: {self.security} "
                f"match port {self.port}?",
                config=True,
            )
        except UnicodeEncodeError:  # smtplib sends user names and passwords as ASCII
            return SendResult.failed(f"{where}: the login has non-ASCII characters", permanent=True)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:  # timeouts are OSErrors too
            if reused and step == "MAIL FROM":
                return None  # the kept session was gone before this message began: nothing was sent
            return self._lost(step, exc)
        finally:
            if smtp is not None:
                if delivered and kept is not None:
                    kept.give(key, smtp, _quit)  # the next message of this tick goes over the same session
                else:
                    _quit(smtp)
        return SendResult.sent(str(mail["Message-ID"]))

    def _lost(self, step: str, exc: BaseException) -> SendResult:
        what = "timed out" if isinstance(exc, TimeoutError) or "timed out" in str(exc) else _describe(exc)
        error = f"{self.host}:{self.port} {what} at {step}"
        if step == "DATA":
            return SendResult.failed(error + "; the server may have taken the message", unknown=True)
        return SendResult.failed(error)

    def _connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            return smtplib.SMTP_SSL(
                self.host, self.port, self.helo, timeout=self.timeout_s, context=self._tls_context()
            )
        return smtplib.SMTP(self.host, self.port, self.helo, timeout=self.timeout_s)

    def _tls_context(self) -> ssl.SSLContext:
        with self._tls_lock:  # made at the first send: loading the CA store is I/O
            if self._tls is None:
                context = ssl.create_default_context()
                if not self.tls_verify:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                self._tls = context
            return self._tls


def _reply_failure(what: str, code: int, reply: bytes | str) -> SendResult:
    error = f"{what}: {code} {_text(reply)}"
    return SendResult.failed(error, permanent=500 <= code < 600)


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        if smtp.sock is not None:
            smtp.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        smtp.close()


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "refused the connection"
    if isinstance(exc, socket.gaierror):
        return f"could not be resolved ({exc.strerror})"
    if isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionError):
        return "closed the connection"
    return f"failed: {exc.__class__.__name__}: {exc}"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _ascii_domain(domain: str) -> str:
    return domain if domain.isascii() else domain.encode("idna").decode("ascii")


def _envelope_address(addr: str) -> str:
    """The SMTP envelope form: an internationalised domain in its ASCII (IDNA) form."""
    local, _, domain = addr.rpartition("@")
    return f"{local}@{_ascii_domain(domain)}"


# -- config ----------------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _flag(config: dict[str, Any], key: str, default: bool, problems: list[str]) -> bool:
    value = config.get(key, default)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):  # "${VAR}" expands to a string
        return value.strip().lower() == "true"
    if not isinstance(value, bool):
        problems.append(f"{key} must be true or false, got {value!r}")
        return default
    return value


def parse_sender(value: Any, problems: list[str]) -> Address | None:
    """``胜利乡网格管理中心 <gridflow@shengli.example.org>`` or a bare address."""
    if not isinstance(value, str) or not value.strip():
        problems.append("sender is required, e.g. 胜利乡网格管理中心 <gridflow@shengli.example.org>")
        return None
    header = policy.default.header_factory("from", value.strip())
    addresses = header.addresses
    if len(addresses) != 1 or not addresses[0].username or not addresses[0].domain or header.defects:
        problems.append(f"sender {value!r} is not one e-mail address like 名称 <user@example.org>")
        return None
    address = addresses[0]
    try:
        _ascii_domain(address.domain)
    except UnicodeError:
        problems.append(f"sender {value!r} has a domain that cannot be encoded")
        return None
    return address


def from_config(name: str, config: dict[str, Any]) -> EmailChannel:
    problems: list[str] = []
    for key in sorted(set(config) - KEYS):
        problems.append(f"unknown key {key!r} for an email channel (keys: {', '.join(sorted(KEYS))})")

    host = config.get("host")
    if not isinstance(host, str) or not host.strip():
        problems.append("host is required (the SMTP server, e.g. smtp.example.org)")
        host = ""
    host = host.strip()

    security = config.get("security", "starttls")
    if security not in SECURITY:
        problems.append(f"security must be one of {', '.join(SECURITY)}, got {security!r}")
        security = "starttls"

    port = DEFAULT_PORTS[security]
    if config.get("port") is not None:
        raw = _number(config["port"])
        if raw is None or raw != int(raw) or not 0 < raw < 65536:
            problems.append(f"port must be a whole number from 1 to 65535, got {config['port']!r}")
        else:
            port = int(raw)

    username, password = config.get("username"), config.get("password")
    for key, value in (("username", username), ("password", password)):
        if value is not None and not isinstance(value, str):
            problems.append(f"{key} must be a string")
        elif value and not value.isascii():
            problems.append(f"{key} must be ASCII (SMTP logins are sent as ASCII)")
    username = username if isinstance(username, str) and username else None
    password = password if isinstance(password, str) and password else None
    if username and not password:
        problems.append("password is required with username (set it from the environment: ${NAME})")
    if password and not username:
        problems.append("username is required with password")
    if username and security == "none" and host and not _is_loopback(host):
        problems.append(f"security: none would send the password unencrypted to {host}; use starttls or ssl")

    sender = parse_sender(config.get("sender"), problems)

    timeout = _number(config.get("timeout_s", 15))
    if timeout is None or timeout <= 0:
        problems.append(f"timeout_s must be a positive number of seconds, got {config.get('timeout_s')!r}")
        timeout = 15.0

    tls_verify = _flag(config, "tls_verify", True, problems)
    helo = config.get("helo")
    if helo is not None and (
        not isinstance(helo, str) or not helo.strip() or not helo.isascii() or " " in helo.strip()
    ):
        problems.append(f"helo must be a host name, got {helo!r}")
        helo = None
    urgent_only = _flag(config, "urgent_only", False, problems)

    if problems:
        raise ChannelConfigError(name, problems)
    assert sender is not None
    return EmailChannel(
        name,
        host=host,
        port=port,
        security=security,
        sender=sender,
        username=username,
        password=password,
        timeout_s=timeout,
        tls_verify=tls_verify,
        helo=helo.strip() if helo else None,
        urgent_only=urgent_only,
    )
