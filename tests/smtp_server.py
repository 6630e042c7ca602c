"""A real SMTP server on 127.0.0.1 for e-mail channel tests (aiosmtpd, in a thread).

::

    with SmtpServer(users={"robot": "s3cret"}, tls="starttls", cert=self_signed_cert(tmp)) as smtp:
        ...  # point an email channel at smtp.host, smtp.port
        received = smtp.wait_for(1)
        received[0].message["Subject"]

It listens on a port the kernel picks, records every message it takes (the envelope and the
parsed e-mail, with whether the client logged in and used TLS), and can be told to misbehave at
a stage of the dialogue (``MAIL``, ``RCPT`` or ``DATA`` — ``DATA`` meaning once the message has
been received): reply with a given status (e.g. 451 or 550, for one recipient or all), drop the
connection without a reply, or sleep before replying (past the client's timeout).

AUTH (LOGIN and PLAIN) is offered when ``users`` are given; with ``require_auth`` (the default
then) a MAIL before a successful login gets 530. Over plain TCP aiosmtpd offers AUTH only with
``auth_require_tls=False``, which is what a loopback test wants; with ``tls="starttls"`` AUTH is
offered only after STARTTLS, as a real submission server does.
"""

from __future__ import annotations

import asyncio
import email
import shutil
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"
STAGES = ("MAIL", "RCPT", "DATA")


def self_signed_cert(directory: Path, name: str = "localhost") -> tuple[Path, Path]:
    """A certificate for ``name`` and 127.0.0.1 and its key, made now (``cryptography`` if installed,
    else the ``openssl`` command); returns (cert.pem, key.pem)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    if cert.exists() and key.exists():
        return cert, key
    directory.mkdir(parents=True, exist_ok=True)
    try:
        _cert_with_cryptography(cert, key, name)
    except ImportError:
        openssl = shutil.which("openssl")
        if openssl is None:
            raise RuntimeError("a test certificate needs the cryptography package or the openssl command") from None
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    return cert, key


def _cert_with_cryptography(cert_path: Path, key_path: Path, name: str) -> None:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name), x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@dataclass
class Received:
    """One message the server took."""

    mail_from: str
    rcpt_tos: list[str]
    mail_options: list[str]
    data: bytes
    message: EmailMessage  # parsed with the default policy: headers come back decoded
    login: str | None  # the user name of a successful AUTH, else None
    tls: bool  # the message came over TLS (STARTTLS or implicit)
    peer: Any = None

    def part(self, content_type: str) -> str | None:
        """The decoded body of the first part of this type (``text/plain``, ``text/html``)."""
        for part in self.message.walk():
            if part.get_content_type() == content_type and not part.is_multipart():
                return part.get_content().replace("\r\n", "\n")
        return None


@dataclass
class Fault:
    stage: str  # MAIL, RCPT or DATA
    reply: str | None = None  # e.g. "451 4.3.0 Try again later"
    drop: bool = False  # close the connection without a reply
    delay: float = 0.0  # seconds to sleep before replying
    rcpt: str | None = None  # RCPT only: just for this recipient
    times: int | None = None  # how many times (None: every time)
    hits: int = field(default=0)


class _Handler:
    def __init__(self, server: SmtpServer):
        self.server = server

    async def handle_MAIL(self, smtp, session: Session, envelope: Envelope, address: str, options: list[str]) -> str:
        if self.server.require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        fault = self.server._match("MAIL")
        if fault is not None and (reply := await self.server._apply(fault, smtp)):
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, smtp, session: Session, envelope: Envelope, address: str, options: list[str]) -> str:
        fault = self.server._match("RCPT", address)
        if fault is not None and (reply := await self.server._apply(fault, smtp)):
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, smtp, session: Session, envelope: Envelope) -> str:
        fault = self.server._match("DATA")
        if fault is not None and fault.reply:
            return await self.server._apply(fault, smtp)  # refused: not taken
        data = envelope.original_content or b""
        auth = session.auth_data
        received = Received(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            mail_options=list(envelope.mail_options),
            data=data,
            message=_parse(data),
            login=auth.login.decode() if isinstance(auth, LoginPassword) else None,
            tls=smtp.transport.get_extra_info("ssl_object") is not None,
            peer=session.peer,
        )
        self.server._record(received)  # taken: a delay or a drop now loses only the reply
        if fault is not None:
            await self.server._apply(fault, smtp)
        return f"250 2.0.0 Ok: queued as Q{len(self.server.messages)}"


def _parse(data: bytes) -> EmailMessage:
    """The e-mail, headers decoded (raw UTF-8 headers too: an SMTPUTF8 message has them)."""
    try:
        return email.message_from_string(data.decode("utf-8"), policy=policy.default)  # type: ignore[return-value]
    except UnicodeDecodeError:
        return email.message_from_bytes(data, policy=policy.default)  # type: ignore[return-value]


class _Controller(Controller):
    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]  # port 0: learn the kernel's pick
        super()._trigger_server()


class SmtpServer:
    """An SMTP server on 127.0.0.1 for the duration of a ``with`` block."""

    def __init__(
        self,
        *,
        users: dict[str, str] | None = None,
        require_auth: bool | None = None,
        tls: str | None = None,  # None, "starttls" or "ssl" (implicit TLS)
        cert: tuple[Path, Path] | None = None,
        auth_mechanisms: tuple[str, ...] = ("LOGIN", "PLAIN"),
    ):
        if tls not in (None, "starttls", "ssl"):
            raise ValueError(f"tls must be None, 'starttls' or 'ssl', not {tls!r}")
        if tls and cert is None:
            raise ValueError("tls needs cert=(cert.pem, key.pem), e.g. from self_signed_cert()")
        self.users = dict(users or {})
        self.require_auth = bool(self.users) if require_auth is None else require_auth
        self.tls = tls
        self.messages: list[Received] = []
        self.logins: list[tuple[str, bool]] = []  # (user name, accepted) for every AUTH attempt
        self.faults: list[Fault] = []
        self._changed = threading.Condition()
        context = None
        if tls:
            assert cert is not None
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(cert[0]), str(cert[1]))
        kwargs: dict[str, Any] = {
            "authenticator": self._authenticate,
            "auth_require_tls": tls == "starttls",
            "auth_exclude_mechanism": [m for m in ("LOGIN", "PLAIN") if m not in auth_mechanisms],
            "enable_SMTPUTF8": True,
            "server_hostname": "mail.test",
            "ready_timeout": 10.0,
        }
        if tls == "starttls":
            kwargs["tls_context"] = context
        elif tls == "ssl":
            kwargs["ssl_context"] = context
        self._controller = _Controller(_Handler(self), hostname=HOST, port=0, **kwargs)
        self.host = HOST
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._controller.start()
        self.port = self._controller.port
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    def channel_config(self, **overrides: Any) -> dict[str, Any]:
        """A config for an email channel pointed at this server."""
        config: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "security": {None: "none", "starttls": "starttls", "ssl": "ssl"}[self.tls],
            "sender": "胜利乡网格管理中心 <gridflow@shengli.test>",
            "timeout_s": 5,
            "helo": "gridflow.test",  # no FQDN lookup
        }
        if self.tls:
            config["tls_verify"] = False
        if self.users:
            user, password = next(iter(self.users.items()))
            config.update(username=user, password=password)
        config.update(overrides)
        return {k: v for k, v in config.items() if v is not None}

    # -- faults ------------------------------------------------------------------------------

    def fail(self, stage: str, reply: str, *, rcpt: str | None = None, times: int | None = None) -> Fault:
        """Answer ``stage`` with ``reply`` (e.g. ``"451 4.7.1 Greylisted"``), for ``rcpt`` only if given."""
        return self._add(Fault(stage, reply=reply, rcpt=rcpt, times=times))

    def reject(self, rcpt: str, reply: str = "550 5.1.1 No such user here") -> Fault:
        """Refuse one recipient at RCPT for good."""
        return self.fail("RCPT", reply, rcpt=rcpt)

    def drop(self, stage: str, *, times: int | None = None) -> Fault:
        """Close the connection at ``stage`` without a reply."""
        return self._add(Fault(stage, drop=True, times=times))

    def delay(self, stage: str, seconds: float, *, times: int | None = None) -> Fault:
        """Sleep ``seconds`` before answering ``stage`` (then answer as usual)."""
        return self._add(Fault(stage, delay=seconds, times=times))

    def clear(self) -> None:
        with self._changed:
            self.faults.clear()

    def _add(self, fault: Fault) -> Fault:
        if fault.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, not {fault.stage!r}")
        with self._changed:
            self.faults.append(fault)
        return fault

    def _match(self, stage: str, rcpt: str | None = None) -> Fault | None:
        with self._changed:
            for fault in self.faults:
                if (
                    fault.stage == stage
                    and (fault.rcpt is None or (rcpt or "").lower() == fault.rcpt.lower())
                    and (fault.times is None or fault.hits < fault.times)
                ):
                    fault.hits += 1
                    return fault
        return None

    @staticmethod
    async def _apply(fault: Fault, smtp: Any) -> str | None:
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.drop:
            smtp.transport.abort()
            await asyncio.sleep(3600)  # the connection is gone: this handler is cancelled with it
        return fault.reply

    # -- auth and records --------------------------------------------------------------------

    def _authenticate(self, smtp, session, envelope, mechanism: str, auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        ok = user in self.users and self.users[user] == password
        with self._changed:
            self.logins.append((user, ok))
        return AuthResult(success=ok, auth_data=auth_data if ok else None, handled=False)

    def _record(self, received: Received) -> None:
        with self._changed:
            self.messages.append(received)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The first ``count`` messages, waiting up to ``timeout`` seconds for them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} message(s), the server has {len(self.messages)}")
                self._changed.wait(left)
            return list(self.messages[:count])
