"""Benchmark: the notice dispatcher — how fast notices go out through real channels, and whether
a storm for one person folds into one digest per window.

One run on the local PostgreSQL server, in throwaway databases (created, migrated and seeded
with the sample org chart here; dropped at the end, also after an error or Ctrl-C). The test
servers of ``tests/`` — aiosmtpd (``tests/smtp_server.py``) and the signature-checking SMS
gateway (``tests/sms_gateway.py``, webhook flavour) — run on 127.0.0.1 in a child process of
their own, so their CPU does not share the benchmark's interpreter lock.

1. **SMTP**: ``--notices`` notices (default 2,000), each to a different person (bench people
   added to the org's ``person`` table, ``digest_window`` 0, ``hourly_cap`` 10⁹, so every notice
   is one e-mail), dispatched by ``notifications.dispatch.dispatch`` through the real ``email``
   channel. Side by side, in rotated rounds: a plain loop that builds and sends the same
   rendered messages (same subject, text, HTML, sender and recipients) with :mod:`smtplib`,
   one connection per message (as the channel does) and one connection for all. Every message
   must arrive once (counted and keyed at the server).
2. **HTTP gateway**: the same through the ``webhook_sms`` channel (HMAC-signed JSON, checked by
   the gateway), against a plain loop posting the same JSON bodies, signed, with
   :mod:`http.client`, a connection per request and one kept alive. The stock test gateway
   answers ``Connection: close``; the bench's subclass leaves that header out so keep-alive is
   possible (the channel keeps one for the tick since issue 14: `notifications/channels/keep.py`).
   The dispatcher has up to the channel's ``in_flight`` (4) requests on the wire at once, each worker
   thread on a kept connection of its own (``notifications/sending.py``); the report prints how many
   threads, connections and requests in flight it used, and a third plain side runs the keep-alive loop
   on as many connections at once. The target stays against the sequential keep-alive loop.
3. **Storm**: ``--storm`` ``sla_breach`` notices (default 10,000) for one township leader
   (p-peng-li) arrive evenly over ``--storm-span`` simulated seconds (600); the dispatcher runs
   at simulated ticks every ``--tick`` seconds (2) through the webhook channel, with the default
   storm settings (digest window 10 min, hourly cap 6), and once more at the window's end.
   Target: at most one message per digest window within the span (the first notice at once),
   and every notice delivered once the final tick has run (the rest in the digest).

Planner statistics: the local server runs with autovacuum off, so the bench runs ``ANALYZE`` on
outbox, delivery and person itself, untimed — before every timed round, and once a simulated
minute in the storm — as autovacuum would on a production server.

Run it from the project root::

    .venv/bin/python -m bench.dispatch              # the sizes of issue 5 (a few minutes)
    .venv/bin/python -m bench.dispatch --quick      # small sizes, about a minute
    .venv/bin/python -m bench.dispatch --smoke --json   # tiny sizes, every check (the test suite)
    .venv/bin/python -m bench.dispatch --json

``--smoke`` (run by the test suite, ``tests/integration/test_bench_dispatch.py``): 20 notices, one
round, a 50-notice storm ticking every 20 s; every check runs (the storm target too: it is counted in
simulated time, so it does not depend on the machine). Nothing is left behind: the databases are
dropped and the server process stopped on any exit (an error, Ctrl-C, SIGTERM), and the report lists
the databases it made (``databases``).

Exit status: 0 every check passed; 1 a check or the storm target failed (or a crash, with its
traceback); 2 bad arguments or no server; 130 interrupted.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import multiprocessing
import signal
import smtplib
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, bench/ would come first on sys.path and bench/transitions.py would be
# imported in place of the ``transitions`` library the engine uses.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import psycopg  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy import Engine, func, insert, select  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from bench.transitions import (  # noqa: E402
    ADMIN_URL_ENV,
    DEFAULT_ADMIN_URL,
    BenchError,
    admin_url,
    machine,
    psycopg_conninfo,
    sigterm_as_interrupt,
    throwaway_database,
)
from engine.org import load_org_file  # noqa: E402
from engine.store import migrate, org_repo  # noqa: E402
from engine.store.db import create_db_engine, session_factory  # noqa: E402
from engine.store.models import Delivery, Outbox, Person  # noqa: E402
from notifications import dispatch as dispatcher  # noqa: E402
from notifications.channels import email as email_channel  # noqa: E402
from notifications.channels import sms_webhook  # noqa: E402
from notifications.channels.base import Channel, Message, SendResult  # noqa: E402
from notifications.config import NoticeConfig  # noqa: E402
from notifications.render import Renderer  # noqa: E402

ORG_FILE = ROOT / "config" / "org" / "shengli.yaml"
SH = ZoneInfo("Asia/Shanghai")
AT = datetime(2026, 12, 1, 12, 0, tzinfo=SH).astimezone(UTC)  # Tuesday noon in Shanghai: no quiet hours
SEED_AT = AT - timedelta(days=1)
DUE = "2026-12-01T01:00:00+00:00"
LEADER = "p-peng-li"  # 彭莉, township leader
BATCH = 200  # the product's dispatch_batch default
WORKER = "bench-dispatcher"
STORM_WINDOW = timedelta(minutes=10)  # NoticeConfig's defaults, asserted below
STORM_CAP = 6
SERVER_READY_S = 60.0
SERVER_CALL_S = 120.0
SERVER_IDLE_S = 3600.0  # the server process ends itself after this long without a command
SERVER_MAX_COMMANDS = 100_000
MAX_DISPATCH_CALLS = 10_000  # per drain: far above notices / batch
ANALYZE_EVERY = timedelta(minutes=1)  # the storm's simulated autovacuum (autovacuum_naptime's default)
STORM_EXTRA = timedelta(minutes=70)  # after the final tick, keep ticking this long if notices are left (diagnosis)

DEFAULTS: dict[str, float] = {"notices": 2_000, "rounds": 3, "storm": 10_000, "storm_span": 600.0, "tick": 2.0}
QUICK: dict[str, float] = {"notices": 200, "rounds": 2, "storm": 1_000}
SMOKE: dict[str, float] = {"notices": 20, "rounds": 1, "storm": 50, "tick": 20.0}
LIMITS: dict[str, tuple[float, float]] = {
    "notices": (1, 20_000),
    "rounds": (1, 20),
    "storm": (2, 100_000),
    "storm_span": (10.0, 3_600.0),
    "tick": (0.5, 60.0),
}
HELPS = {
    "notices": "notices per round in the SMTP and HTTP parts, one per person",
    "rounds": "timed rounds per side (after an untimed warm-up of each)",
    "storm": "sla_breach notices for one person in the storm",
    "storm_span": "simulated seconds the storm's notices arrive over",
    "tick": "simulated seconds between dispatcher ticks in the storm",
}


# -- the servers, in a process of their own ------------------------------------------------------


def _keepalive_gateway() -> Any:
    """``tests.sms_gateway.SmsGateway("webhook")`` that keeps connections alive: the stock handler
    answers every request with ``Connection: close``; this one leaves that header out and sets
    TCP_NODELAY, as an HTTP server that keeps connections alive does. Requests are verified and
    recorded by the gateway's own code."""
    from tests import sms_gateway as sg

    class KeepAliveHandler(sg._Handler):
        # Headers and body go out in two writes; with Nagle on, the body of every answer after the
        # first on a connection waits for the client's delayed ACK (about 40 ms on Linux).
        disable_nagle_algorithm = True

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            status, headers, answer = self.server.gateway._handle(self, body)
            if status == 0:
                self.close_connection = True
                return
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                self.close_connection = True

    class KeepAliveGateway(sg.SmsGateway):
        def start(self) -> KeepAliveGateway:
            if self._server is not None:
                return self
            self._stopping.clear()
            server = sg._Server((sg.HOST, self.port), KeepAliveHandler)
            server.gateway = self
            self.port = server.server_address[1]
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever, args=(0.05,), name="sms-gateway-keepalive", daemon=True
            )
            self._thread.start()
            return self

    return KeepAliveGateway("webhook")


def _serve(conn: Any) -> None:
    """The child process: an SMTP server and an SMS gateway on 127.0.0.1, answering the parent's
    commands until it says stop, hangs up, or is silent for SERVER_IDLE_S."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
    from tests.smtp_server import SmtpServer

    with SmtpServer() as smtp, _keepalive_gateway() as gateway:
        conn.send({"smtp": smtp.channel_config(), "webhook": gateway.channel_config()})
        for _ in range(SERVER_MAX_COMMANDS):
            if not conn.poll(SERVER_IDLE_S):
                break
            try:
                command = conn.recv()
            except (EOFError, OSError):
                break
            if command == "stop":
                conn.send("bye")
                break
            if command == "take":  # what arrived since the last take; then forgotten
                with smtp._changed:
                    mails, smtp.messages[:] = list(smtp.messages), []
                with gateway._lock:
                    requests, gateway.requests[:] = list(gateway.requests), []
                conn.send(
                    {
                        "smtp": [
                            (str(m.message["X-Gridflow-Key"]), tuple(m.rcpt_tos), m.mail_from, len(m.data))
                            for m in mails
                        ],
                        "webhook": [
                            (r.idempotency_key, r.verified, r.status, r.problem, r.phone, r.template, len(r.body))
                            for r in requests
                        ],
                    }
                )
            else:
                conn.send({"error": f"unknown command {command!r}"})


class Servers:
    """The child process running the servers; ``take()`` returns what they received since the last take."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child,), name="bench-dispatch-servers", daemon=True)
        try:
            self._proc.start()
        finally:
            child.close()
        try:  # stopped again whatever goes wrong before the caller holds it (Ctrl-C included)
            if not self._conn.poll(SERVER_READY_S):
                raise BenchError(f"the SMTP server and SMS gateway did not start within {SERVER_READY_S:g} s")
            self.configs: dict[str, dict[str, Any]] = self._conn.recv()
            self.process = psutil.Process(self._proc.pid)
        except BaseException:
            self.stop()
            raise

    def cpu_s(self) -> float:
        times = self.process.cpu_times()
        return times.user + times.system

    def take(self) -> dict[str, list[tuple]]:
        self._conn.send("take")
        if not self._conn.poll(SERVER_CALL_S):
            raise BenchError("the server process did not answer")
        answer = self._conn.recv()
        if "error" in answer:
            raise BenchError(answer["error"])
        return answer

    def stop(self) -> None:
        try:
            self._conn.send("stop")
            if self._conn.poll(10):
                self._conn.recv()
        except (OSError, EOFError, BrokenPipeError):
            pass
        if self._proc.pid is not None:  # started
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(10)
        self._conn.close()


@contextmanager
def servers() -> Iterator[Servers]:
    running = Servers()
    try:
        yield running
    finally:
        running.stop()


# -- a database ------------------------------------------------------------------------------------


@dataclass
class Db:
    name: str  # the throwaway database's name
    engine: Engine
    sessions: sessionmaker[Session]
    conn: psycopg.Connection  # checks and machine info, outside the timed code

    def one(self, sql: str, params: Any = None) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        self.conn.commit()
        return row[0] if row else None

    def analyze(self) -> None:
        """Fresh planner statistics (untimed), as autovacuum keeps them on a server that runs it:
        the local server runs with autovacuum off, and the dispatcher's per-person delivery stats
        query turns to a sequential scan on a delivery table never analyzed."""
        self.conn.commit()
        self.conn.autocommit = True
        try:
            self.conn.execute("ANALYZE outbox, delivery, person")
        finally:
            self.conn.autocommit = False


@contextmanager
def database(admin: Any, people: int) -> Iterator[Db]:
    """A throwaway database, migrated, with the sample org chart and ``people`` bench people."""
    with throwaway_database(admin) as url:
        engine = create_db_engine(url.render_as_string(hide_password=False))
        try:
            migrate.upgrade(engine)
            sessions = session_factory(engine)
            with sessions.begin() as session:
                org_repo.apply_org_chart(session, load_org_file(ORG_FILE), SEED_AT)
            if people:
                with sessions.begin() as session:
                    session.execute(insert(Person), [bench_person(i) for i in range(people)])
            with psycopg.connect(psycopg_conninfo(url)) as conn:
                yield Db(url.database or "", engine, sessions, conn)
        finally:
            engine.dispose()


def bench_person(i: int) -> dict[str, Any]:
    return {
        "id": f"bench-{i:05d}",
        "name": f"网格员{i + 1:05d}",
        "title": "网格员",
        "phone": f"139{i:08d}",
        "email": f"bench-{i:05d}@shengli.test",
        "wecom": None,
        "notify": True,
        "active": True,
    }


def notice_row(tag: str, i: int, to: str, at: datetime) -> dict[str, Any]:
    return {
        "recipient_id": to,
        "role": "grid_worker" if to.startswith("bench-") else "township_leader",
        "template": "sla_breach",
        "params": {
            "case": f"SL-2026-{i + 1:06d}",
            "title": f"马营台{i % 7 + 1}组事件{i + 1}",
            "due_at": DUE,
            "limit": "2d",
            "grid": "mayingtai-01",
            "status": "in_progress",
        },
        "urgent": False,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": at,
        "created_at": at,
        "dedupe_key": f"bench:{tag}:{i}",
    }


def stage_people(db: Db, tag: str, n: int) -> list[str]:
    """One sla_breach notice to each of the first ``n`` bench people, ready at AT; their keys."""
    rows = [notice_row(tag, i, f"bench-{i:05d}", AT) for i in range(n)]
    with db.sessions.begin() as session:
        session.execute(insert(Outbox), rows)
    return [r["dedupe_key"] for r in rows]


# -- timing the dispatcher's parts -----------------------------------------------------------------

PARTS = {
    "claim": "claim",
    "suppress_demo": "claim",
    "_load": "load",
    "plan": "plan",
    "_start": "send",  # a batch's sends handed to the workers, or sent right there when there are none
    "_await_sends": "send",  # the wait for a batch's sends (what the next batch's claim, load and plan left)
    "_apply": "record",
    "_record": "record",
    "_Writes.flush": "record",  # the batched writes of the record transaction
}
STEPS = ("claim", "load", "plan", "send", "record", "other")  # other: the rest of the wall time (commits, the loop)


@contextmanager
def timed_parts(into: dict[str, float]) -> Iterator[None]:
    """Add up the wall time of the dispatcher's steps (``dispatch`` looks each up per call; a method
    ``Class.name`` is wrapped on its class)."""

    def owner(name: str) -> tuple[Any, str]:
        cls, _, attr = name.rpartition(".")
        return (getattr(dispatcher, cls) if cls else dispatcher), attr

    real = {name: getattr(*owner(name)) for name in PARTS}

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        part = PARTS[name]

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                into[part] = into.get(part, 0.0) + time.perf_counter() - started

        return timed

    for name, fn in real.items():
        setattr(*owner(name), wrap(name, fn))
    try:
        yield
    finally:
        for name, fn in real.items():
            setattr(*owner(name), fn)


@dataclass
class Drain:
    sent: int = 0
    delivered: int = 0
    digests: int = 0
    deferred: int = 0
    retried: int = 0
    failed: int = 0
    calls: int = 0
    parts: dict[str, float] = field(default_factory=dict)
    workers: int = 0  # send threads, connections made, the most messages on the wire at once
    connections: int = 0
    most_in_flight: int = 0


def drain(db: Db, config: NoticeConfig, renderer: Renderer, at: datetime) -> Drain:
    """Dispatch at ``at`` until a call claims nothing."""
    out = Drain()
    with timed_parts(out.parts):
        for _ in range(MAX_DISPATCH_CALLS):
            report = dispatcher.dispatch(db.sessions.begin, lambda: at, WORKER, config, renderer, batch=BATCH)
            out.calls += 1
            out.sent += report.sent
            out.delivered += report.delivered
            out.digests += report.digests
            out.deferred += report.deferred
            out.retried += report.retried
            out.failed += len(report.failed)
            out.workers = max(out.workers, report.workers)
            out.connections += report.connections
            out.most_in_flight = max(out.most_in_flight, report.most_in_flight)
            if report.claimed == 0:
                return out
    raise BenchError(f"the outbox did not drain in {MAX_DISPATCH_CALLS} dispatcher calls")


class Recording:
    """A channel that hands every message to the real one and keeps a copy (warm-up only)."""

    def __init__(self, channel: Channel):
        self.channel = channel
        self.name, self.kind, self.urgent_only = channel.name, channel.kind, channel.urgent_only
        self.messages: list[Message] = []

    def address(self, recipient: Any) -> str | None:
        return self.channel.address(recipient)

    def send(self, message: Message) -> SendResult:
        self.messages.append(message)
        return self.channel.send(message)


# -- checks ----------------------------------------------------------------------------------------


@dataclass
class Checks:
    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, what: str, ok: bool, detail: str = "") -> bool:
        self.items.append({"what": what, "pass": bool(ok), "detail": detail})
        return ok

    def failed(self) -> list[dict[str, Any]]:
        return [c for c in self.items if not c["pass"]]


def check_arrivals(checks: Checks, what: str, keys: list[str], expected: list[str], bad: int = 0) -> None:
    """Every expected key arrived exactly once, nothing else arrived, and nothing was rejected."""
    seen = len(keys)
    distinct = set(keys)
    want = set(expected)
    dupes = seen - len(distinct)
    missing = len(want - distinct)
    extra = len(distinct - want)
    ok = seen == len(expected) and not dupes and not missing and not extra and not bad
    detail = f"{seen} arrived for {len(expected)} sent: {missing} missing, {dupes} twice, {extra} unexpected"
    if bad:
        detail += f", {bad} rejected or unverified"
    checks.add(what, ok, detail)


def check_outbox(checks: Checks, db: Db, what: str, tag: str, n: int, drained: Drain) -> None:
    sent = db.one(
        "SELECT count(*) FROM outbox WHERE dedupe_key LIKE %s AND status = 'sent' AND attempts = 1", (f"bench:{tag}:%",)
    )
    other = db.one("SELECT count(*) FROM outbox WHERE dedupe_key LIKE %s AND status <> 'sent'", (f"bench:{tag}:%",))
    deliveries = db.one(
        "SELECT count(*) FROM delivery WHERE key LIKE %s AND ok AND outcome = 'sent'", (f"bench:{tag}:%",)
    )
    ok = (
        sent == n
        and other == 0
        and deliveries == n
        and (drained.sent, drained.delivered, drained.digests, drained.failed, drained.retried) == (n, n, 0, 0, 0)
    )
    checks.add(
        what,
        ok,
        f"outbox {sent} sent once, {other} not sent; {deliveries} deliveries; dispatcher: {drained.sent} messages, "
        f"{drained.delivered} notices, {drained.digests} digests, {drained.retried} retried, {drained.failed} failed",
    )


# -- plain senders -----------------------------------------------------------------------------------


def plain_email(message: Message, sender: Address) -> tuple[str, bytes]:
    """The message as a plain program would write it: text and HTML alternatives, UTF-8."""
    to = message.recipient.email or ""
    local, _, domain = to.rpartition("@")
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = sender
    mail["To"] = Address(message.recipient.name, local, domain)
    mail["Date"] = formatdate(localtime=True)
    mail["Message-ID"] = f"<{hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:32]}.plain@shengli.test>"
    mail["X-Gridflow-Key"] = message.idempotency_key
    mail.set_content(message.text)
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    return to, mail.as_bytes(policy=policy.SMTP)


def smtp_per_message(host: str, port: int, helo: str, sender: Address, messages: list[Message]) -> None:
    envelope_from = sender.addr_spec
    for message in messages:
        to, data = plain_email(message, sender)
        with smtplib.SMTP(host, port, helo, timeout=10) as smtp:
            refused = smtp.sendmail(envelope_from, [to], data)
        if refused:
            raise BenchError(f"plain SMTP: {to} refused: {refused}")


def smtp_one_connection(host: str, port: int, helo: str, sender: Address, messages: list[Message]) -> None:
    envelope_from = sender.addr_spec
    with smtplib.SMTP(host, port, helo, timeout=10) as smtp:
        for message in messages:
            to, data = plain_email(message, sender)
            refused = smtp.sendmail(envelope_from, [to], data)
            if refused:
                raise BenchError(f"plain SMTP: {to} refused: {refused}")


@dataclass
class Post:
    key: str
    body: bytes


def http_headers(post: Post, secret: str, token: str | None) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Idempotency-Key": post.key,
        "X-Gridflow-Signature": "sha256=" + hmac.new(secret.encode(), post.body, hashlib.sha256).hexdigest(),
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def http_answer(conn: http.client.HTTPConnection, post: Post, secret: str, token: str | None, path: str) -> None:
    conn.request("POST", path, post.body, http_headers(post, secret, token))
    resp = conn.getresponse()
    resp.read()
    if resp.status != 200:
        raise BenchError(f"plain HTTP: the gateway answered {resp.status} for {post.key}")


def http_per_request(url: str, secret: str, token: str | None, posts: list[Post]) -> None:
    parts = urlsplit(url)
    for post in posts:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            http_answer(conn, post, secret, token, parts.path or "/")
        finally:
            conn.close()


def http_keep_alive(url: str, secret: str, token: str | None, posts: list[Post]) -> None:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        for post in posts:
            http_answer(conn, post, secret, token, parts.path or "/")
            if conn.sock is None:
                raise BenchError("plain HTTP keep-alive: the gateway closed the connection")
    finally:
        conn.close()


def http_keep_alive_together(url: str, secret: str, token: str | None, posts: list[Post], connections: int) -> None:
    """The keep-alive loop on ``connections`` threads at once, each over a connection of its own (the
    posts dealt round-robin): the plain side with the dispatcher's concurrency."""
    errors: list[BaseException] = []

    def one(share: list[Post]) -> None:
        try:
            http_keep_alive(url, secret, token, share)
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(posts[k::connections],)) for k in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


# -- parts 1 and 2: throughput -----------------------------------------------------------------------


@dataclass
class Sample:
    seconds: float
    cpu_s: float  # this process
    server_cpu_s: float  # the server process
    parts: dict[str, float] = field(default_factory=dict)
    wire: dict[str, int] = field(default_factory=dict)  # gridflow: workers, connections, most in flight


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def rotate(items: list, r: int) -> list:
    return items[r % len(items) :] + items[: r % len(items)]


def throughput(
    part: str,
    args: argparse.Namespace,
    db: Db,
    srv: Servers,
    channel: Channel,
    plains: dict[str, Callable[[list[Message]], None]],
    arrivals: Callable[[dict[str, list[tuple]]], tuple[list[str], int]],
    checks: Checks,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """The gridflow dispatcher against the plain loops, ``args.rounds`` rotated rounds after a warm-up."""
    n = args.notices
    renderer = Renderer(SH)
    config = NoticeConfig(
        {channel.name: channel}, (channel.name,), digest_window=timedelta(0), hourly_cap=10**9, quiet=None
    )
    # Warm-up (untimed): the dispatcher once, keeping the messages it sends for the plain loops.
    recording = Recording(channel)
    warm = NoticeConfig(
        {channel.name: recording}, (channel.name,), digest_window=timedelta(0), hourly_cap=10**9, quiet=None
    )  # type: ignore[dict-item]
    tag = f"{part}-warm"
    expected = stage_people(db, tag, n)
    db.analyze()
    drained = drain(db, warm, renderer, AT)
    check_outbox(checks, db, f"{part}: warm-up, dispatcher: every notice one message, recorded once", tag, n, drained)
    keys, bad = arrivals(srv.take())
    check_arrivals(checks, f"{part}: warm-up, dispatcher: each message arrived once", keys, expected, bad)
    messages = sorted(recording.messages, key=lambda m: m.idempotency_key)
    if len(messages) != n:
        raise BenchError(f"{part}: the warm-up sent {len(messages)} messages for {n} notices")
    for name, plain in plains.items():
        plain(messages)
        keys, bad = arrivals(srv.take())
        check_arrivals(checks, f"{part}: warm-up, {name}: each message arrived once", keys, expected, bad)

    samples: dict[str, list[Sample]] = {"gridflow": [], **{name: [] for name in plains}}

    def gridflow(r: int) -> None:
        tag = f"{part}-r{r}"
        expected = stage_people(db, tag, n)
        db.analyze()
        srv_cpu = srv.cpu_s()
        started, cpu = time.perf_counter(), time.process_time()
        drained = drain(db, config, renderer, AT)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        parts = {**drained.parts, "other": seconds - sum(drained.parts.values())}
        wire = {
            "workers": drained.workers,
            "connections": drained.connections,
            "most_in_flight": drained.most_in_flight,
        }
        samples["gridflow"].append(Sample(seconds, cpu, srv.cpu_s() - srv_cpu, parts, wire))
        check_outbox(checks, db, f"{part}: round {r + 1}, dispatcher: every notice one message", tag, n, drained)
        keys, bad = arrivals(srv.take())
        check_arrivals(checks, f"{part}: round {r + 1}, dispatcher: each message arrived once", keys, expected, bad)

    def plain_side(name: str) -> Callable[[int], None]:
        def run(r: int) -> None:
            srv_cpu = srv.cpu_s()
            started, cpu = time.perf_counter(), time.process_time()
            plains[name](messages)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            samples[name].append(Sample(seconds, cpu, srv.cpu_s() - srv_cpu))
            keys, bad = arrivals(srv.take())
            expected = [m.idempotency_key for m in messages]
            check_arrivals(checks, f"{part}: round {r + 1}, {name}: each message arrived once", keys, expected, bad)

        return run

    sides: list[tuple[str, Callable[[int], None]]] = [("gridflow", gridflow)]
    sides += [(name, plain_side(name)) for name in plains]
    for r in range(args.rounds):
        for _name, side in rotate(sides, r):
            side(r)
        say(
            f"{part} round {r + 1}/{args.rounds}: "
            + ", ".join(f"{name} {n / samples[name][-1].seconds:,.0f}/s" for name, _ in sides)
        )
    result: dict[str, Any] = {"notices": n, "rounds": args.rounds, "sides": {}}
    for name, ss in samples.items():
        rates = [n / s.seconds for s in ss]
        side: dict[str, Any] = {
            "notices_per_s": round(median(rates), 1),
            "rounds_per_s": [round(x, 1) for x in rates],
            "ms_per_notice": round(1000 * median([s.seconds for s in ss]) / n, 3),
            "client_cpu_ms_per_notice": round(1000 * median([s.cpu_s for s in ss]) / n, 3),
            "server_cpu_ms_per_notice": round(1000 * median([s.server_cpu_s for s in ss]) / n, 3),
        }
        if name == "gridflow":
            side["ms_per_notice_by_step"] = {
                part_name: round(1000 * median([s.parts.get(part_name, 0.0) for s in ss]) / n, 3) for part_name in STEPS
            }
            side["wire"] = {
                key: max(s.wire.get(key, 0) for s in ss) for key in ("workers", "connections", "most_in_flight")
            }
        result["sides"][name] = side
    g = result["sides"]["gridflow"]["notices_per_s"]
    result["ratios"] = {f"gridflow/{name}": round(g / result["sides"][name]["notices_per_s"], 3) for name in plains}
    return result


def smtp_part(args: argparse.Namespace, db: Db, srv: Servers, checks: Checks, say: Callable[[str], None]) -> dict:
    cfg = srv.configs["smtp"]
    channel = email_channel.from_config("email", dict(cfg))
    host, port, helo = cfg["host"], int(cfg["port"]), cfg["helo"]
    sender = channel.sender

    def arrivals(taken: dict[str, list[tuple]]) -> tuple[list[str], int]:
        mails = taken["smtp"]
        bad = sum(1 for _key, rcpts, _frm, _size in mails if len(rcpts) != 1)
        return [key for key, *_ in mails], bad + len(taken["webhook"])

    plains = {
        "plain smtplib, a connection per message": lambda ms: smtp_per_message(host, port, helo, sender, ms),
        "plain smtplib, one connection": lambda ms: smtp_one_connection(host, port, helo, sender, ms),
    }
    result = throughput("smtp", args, db, srv, channel, plains, arrivals, checks, say)
    result["server"] = f"aiosmtpd {cfg['host']}:{cfg['port']} (tests/smtp_server.py), no TLS, no AUTH"
    return result


def http_part(args: argparse.Namespace, db: Db, srv: Servers, checks: Checks, say: Callable[[str], None]) -> dict:
    cfg = srv.configs["webhook"]
    channel = sms_webhook.from_config("sms", dict(cfg))
    url, secret, token = cfg["url"], cfg["secret"], cfg.get("token")
    prepared: list[Post] = []

    def ready(messages: list[Message]) -> list[Post]:
        """The channel's own JSON body for each message, built once, before the first timed loop."""
        if not prepared:
            for m in messages:
                request = channel.request(m)
                if isinstance(request, SendResult):
                    raise BenchError(f"webhook: no request for {m.idempotency_key}: {request.error}")
                prepared.append(Post(m.idempotency_key, request[1]))
        return prepared

    def arrivals(taken: dict[str, list[tuple]]) -> tuple[list[str], int]:
        reqs = taken["webhook"]
        bad = sum(1 for _k, verified, status, *_ in reqs if not verified or status != 200)
        return [key for key, *_ in reqs], bad + len(taken["smtp"])

    together = channel.in_flight  # the dispatcher's concurrency on this channel, for the plain side that has it too
    plains = {
        "plain http.client, a connection per request": lambda ms: http_per_request(url, secret, token, ready(ms)),
        "plain http.client, keep-alive": lambda ms: http_keep_alive(url, secret, token, ready(ms)),
        f"plain http.client, keep-alive, {together} connections at once": lambda ms: http_keep_alive_together(
            url, secret, token, ready(ms), together
        ),
    }
    result = throughput("http", args, db, srv, channel, plains, arrivals, checks, say)
    result["server"] = (
        f"tests/sms_gateway.py SmsGateway('webhook') at {url}, HMAC-SHA256 signature and bearer token checked, "
        "ThreadingHTTPServer (a thread per connection), Connection: close left out"
    )
    return result


# -- part 3: the storm ---------------------------------------------------------------------------------


def storm_part(args: argparse.Namespace, db: Db, srv: Servers, checks: Checks, say: Callable[[str], None]) -> dict:
    n, span, tick = args.storm, timedelta(seconds=args.storm_span), timedelta(seconds=args.tick)
    channel = sms_webhook.from_config("sms", dict(srv.configs["webhook"]))
    config = NoticeConfig({"sms": channel}, ("sms",))
    if (config.digest_window, config.hourly_cap) != (STORM_WINDOW, STORM_CAP):
        raise BenchError(f"NoticeConfig defaults changed: {config.digest_window}, {config.hourly_cap}")
    renderer = Renderer(SH)
    arrivals = [AT + span * i / n for i in range(n)]  # evenly within the span: the first at once
    final = AT + span  # the window's end (span = window by default)
    ticks = [AT + tick * k for k in range(int(span / tick) + 1)]
    if ticks[-1] < final:
        ticks.append(final)
    srv.take()
    next_i = 0
    per_tick: list[dict[str, Any]] = []
    parts_total: dict[str, float] = {}
    digest_parts: dict[str, float] = {}
    analyzed = [AT - ANALYZE_EVERY]

    def run_tick(at: datetime) -> dict[str, Any]:
        nonlocal next_i
        rows = []
        while next_i < n and arrivals[next_i] <= at:  # bounded by n
            rows.append(notice_row("storm", next_i, LEADER, arrivals[next_i]))
            next_i += 1
        if rows:  # arriving between ticks (untimed), as the sweep would stage them
            with db.sessions.begin() as session:
                session.execute(insert(Outbox), rows)
        if at - analyzed[0] >= ANALYZE_EVERY:  # as autovacuum would, once a (simulated) minute; untimed
            db.analyze()
            analyzed[0] = at
        parts: dict[str, float] = {}
        with timed_parts(parts):
            started = time.perf_counter()
            report = dispatcher.dispatch(db.sessions.begin, lambda: at, WORKER, config, renderer, batch=BATCH)
            seconds = time.perf_counter() - started
        for k, v in parts.items():
            parts_total[k] = parts_total.get(k, 0.0) + v
        if report.digests:
            for k, v in parts.items():
                digest_parts[k] = digest_parts.get(k, 0.0) + v
        entry = {
            "at_s": (at - AT).total_seconds(),
            "arrived": len(rows),
            "claimed": report.claimed,
            "sent": report.sent,
            "delivered": report.delivered,
            "digests": report.digests,
            "deferred": report.deferred,
            "failed": len(report.failed),
            "retried": report.retried,
            "seconds": seconds,
        }
        per_tick.append(entry)
        return entry

    for k, at in enumerate(ticks):
        run_tick(at)
        if k % max(1, len(ticks) // 5) == 0 and k:
            say(f"storm: tick {k}/{len(ticks) - 1} (t = {(at - AT).total_seconds():.0f} s), {next_i:,} arrived")
    main_ticks = len(per_tick)
    pending_after_final = db.one("SELECT count(*) FROM outbox WHERE status = 'pending'")
    extra_until = final + STORM_EXTRA
    at = final
    while pending_after_final and at < extra_until:  # diagnosis only: when would the rest go?
        at += tick
        run_tick(at)
        if not db.one("SELECT count(*) FROM outbox WHERE status = 'pending'"):
            break
    drained_at = None if db.one("SELECT count(*) FROM outbox WHERE status = 'pending'") else per_tick[-1]["at_s"]

    with db.sessions.begin() as session:
        deliveries = session.execute(select(Delivery).order_by(Delivery.at, Delivery.id)).scalars().all()
        statuses = dict(session.execute(select(Outbox.status, func.count()).group_by(Outbox.status)).all())
        sent_twice = session.scalar(
            select(func.count()).select_from(Outbox).where(Outbox.status == "sent", Outbox.attempts != 1)
        )
    ok_deliveries = [d for d in deliveries if d.ok]
    within = [d for d in ok_deliveries if d.at < final]
    at_end = [d for d in ok_deliveries if d.at <= final]
    digests = [d for d in ok_deliveries if d.event == "digest"]
    delivered_by_final = sum(len(d.notices) for d in at_end)
    notice_ids = [i for d in ok_deliveries for i in d.notices]
    windows = max(1, -(-int(span.total_seconds()) // int(STORM_WINDOW.total_seconds())))
    taken = srv.take()
    gateway = taken["webhook"]
    unverified = sum(1 for _k, verified, status, *_ in gateway if not verified or status != 200)

    main = per_tick[:main_ticks]
    digest_tick = max(main, key=lambda t: t["delivered"])
    others = [t["seconds"] for t in main if t is not digest_tick]
    result = {
        "notices": n,
        "span_s": span.total_seconds(),
        "tick_s": tick.total_seconds(),
        "ticks": main_ticks,
        "extra_ticks": len(per_tick) - main_ticks,
        "digest_window_s": STORM_WINDOW.total_seconds(),
        "hourly_cap": STORM_CAP,
        "messages_within_span": len(within),
        "messages_by_final_tick": len(at_end),
        "messages": [
            {"at_s": (d.at - AT).total_seconds(), "event": d.event, "notices": len(d.notices), "parts": d.parts}
            for d in ok_deliveries
        ],
        "digests": len(digests),
        "digest_notices": sum(len(d.notices) for d in digests),
        "delivered_by_final_tick": delivered_by_final,
        "drained_at_s": drained_at,
        "statuses": statuses,
        "gateway_requests": len(gateway),
        "gateway_rejected": unverified,
        "wall_s_all_ticks": round(sum(t["seconds"] for t in main), 3),
        "digest_tick": {
            "at_s": digest_tick["at_s"],
            "seconds": round(digest_tick["seconds"], 3),
            "claimed": digest_tick["claimed"],
            "delivered": digest_tick["delivered"],
            "by_step_s": {k: round(v, 3) for k, v in digest_parts.items()},
        },
        "other_ticks_ms": {
            "median": round(1000 * median(others), 2) if others else None,
            "max": round(1000 * max(others), 2) if others else None,
            "sum": round(1000 * sum(others), 1),
        },
        "by_step_s_all_ticks": {k: round(v, 3) for k, v in parts_total.items()},
        "deferred_total": sum(t["deferred"] for t in main),
        "timeline": [
            {k: (round(v, 4) if isinstance(v, float) else v) for k, v in t.items()}
            for t in per_tick
            if t["sent"] or t["failed"] or t["retried"]
        ],
    }
    checks.add(
        f"storm target: at most {windows} message(s) in the {span.total_seconds():.0f} s (one per "
        f"{STORM_WINDOW.total_seconds() / 60:.0f}-minute window)",
        len(within) <= windows,
        f"{len(within)} sent within the span; at the window's end {len(at_end)} in all",
    )
    checks.add(
        "storm: every notice delivered once the window ended and the final tick ran",
        delivered_by_final == n and pending_after_final == 0 and statuses.get("sent") == n,
        f"{delivered_by_final:,} of {n:,} delivered by the final tick ({result['digest_notices']:,} in "
        f"{len(digests)} digest(s)); {pending_after_final} pending after it; outbox {statuses}",
    )
    checks.add(
        "storm: no notice delivered twice, every message arrived verified",
        len(notice_ids) == len(set(notice_ids)) == statuses.get("sent", 0)
        and sent_twice == 0
        and len(gateway) == len(ok_deliveries)
        and not unverified
        and len(deliveries) == len(ok_deliveries),
        f"{len(notice_ids)} notice deliveries, {len(set(notice_ids))} distinct; {len(gateway)} requests at the "
        f"gateway for {len(ok_deliveries)} messages, {unverified} rejected; {len(deliveries) - len(ok_deliveries)} "
        "failed attempts",
    )
    return result


# -- the run ---------------------------------------------------------------------------------------------


def benchmark(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    started = time.perf_counter()
    admin = admin_url(args.admin_url)
    checks = Checks()
    result: dict[str, Any] = {"benchmark": "notice dispatch: real channels against plain loops, and a storm"}
    result["smoke"] = args.smoke
    made: list[str] = []
    with ExitStack() as stack:
        srv = stack.enter_context(servers())
        say(f"servers up: SMTP {srv.configs['smtp']['port']}, gateway {srv.configs['webhook']['url']}")
        if not args.skip_throughput:
            with database(admin, args.notices) as db:
                made.append(db.name)
                say(f"database ready: sample org chart + {args.notices:,} bench people")
                result["smtp"] = smtp_part(args, db, srv, checks, say)
                result["http"] = http_part(args, db, srv, checks, say)
        if not args.skip_storm:
            with database(admin, 0) as db:
                made.append(db.name)
                say(
                    f"storm: {args.storm:,} notices for {LEADER} over {args.storm_span:g} s, a tick every {args.tick:g} s"
                )
                result["storm"] = storm_part(args, db, srv, checks, say)
        with psycopg.connect(psycopg_conninfo(admin)) as conn:
            result["machine"] = machine(conn)
    result["sizes"] = {k: getattr(args, k) for k in DEFAULTS}
    result["databases"] = made  # every one dropped by now
    result["checks"] = checks.items
    result["seconds_total"] = round(time.perf_counter() - started, 1)
    return result


# -- report ----------------------------------------------------------------------------------------------


def print_report(res: dict) -> None:
    console = Console(width=max(Console().width, 130))
    m = res["machine"]
    console.print(f"[bold]gridflow bench: {res['benchmark']}[/bold]")
    console.print(f"date     {m['date']}", highlight=False)
    console.print(
        f"machine  {m['platform']}, {m['cpus']} CPUs ({m['cpu_model']}), Python {m['python']}", highlight=False
    )
    console.print(f"database PostgreSQL {m['postgresql']}; SQLAlchemy {m['sqlalchemy']}, psycopg {m['psycopg']}")
    for part, title in (("smtp", "1. SMTP (email channel)"), ("http", "2. HTTP SMS gateway (webhook_sms channel)")):
        if part not in res:
            continue
        p = res[part]
        table = Table(
            title=f"{title}: {p['notices']:,} notices to {p['notices']:,} people, median of {p['rounds']} rounds"
        )
        for col in ("side", "notices/s", "ms/notice", "client CPU ms", "server CPU ms", "rounds (/s)"):
            table.add_column(col, justify="left" if col == "side" else "right")
        for name, s in p["sides"].items():
            table.add_row(
                name,
                f"{s['notices_per_s']:,.0f}",
                f"{s['ms_per_notice']:.2f}",
                f"{s['client_cpu_ms_per_notice']:.2f}",
                f"{s['server_cpu_ms_per_notice']:.2f}",
                ", ".join(f"{x:,.0f}" for x in s["rounds_per_s"]),
            )
        console.print(table)
        steps = p["sides"]["gridflow"]["ms_per_notice_by_step"]
        console.print(
            "  gridflow ms per notice by step: " + ", ".join(f"{k} {v:.3f}" for k, v in steps.items()), highlight=False
        )
        wire = p["sides"]["gridflow"].get("wire")
        if wire:
            console.print(
                f"  gridflow on the wire: {wire['workers']} send thread(s), {wire['connections']} connection(s) made "
                f"a round (at most), at most {wire['most_in_flight']} message(s) in flight at once",
                highlight=False,
            )
        for name, ratio in p["ratios"].items():
            console.print(f"  {name} = [bold]{ratio:.2f}[/bold]", highlight=False)
        console.print(f"  server: {p['server']}", highlight=False)
    if "storm" in res:
        s = res["storm"]
        console.print(
            f"[bold]3. Storm[/bold]: {s['notices']:,} sla_breach notices for {LEADER} over {s['span_s']:.0f} s "
            f"(simulated), a tick every {s['tick_s']:g} s ({s['ticks']} ticks), digest window "
            f"{s['digest_window_s'] / 60:.0f} min, hourly cap {s['hourly_cap']}",
            highlight=False,
        )
        for msg in s["messages"]:
            console.print(
                f"  message at t = {msg['at_s']:.1f} s: {msg['event']}, {msg['notices']:,} notice(s), "
                f"{msg['parts']} SMS part(s)",
                highlight=False,
            )
        console.print(
            f"  messages within the span: {s['messages_within_span']}; by the final tick: "
            f"{s['messages_by_final_tick']}; notices delivered by the final tick: {s['delivered_by_final_tick']:,} "
            f"({s['digest_notices']:,} in {s['digests']} digest(s)); deferrals {s['deferred_total']:,}",
            highlight=False,
        )
        d = s["digest_tick"]
        o = s["other_ticks_ms"]
        console.print(
            f"  dispatcher wall time, all {s['ticks']} ticks: {s['wall_s_all_ticks']:.2f} s; the digest tick "
            f"(t = {d['at_s']:.0f} s, {d['claimed']:,} claimed): {d['seconds']:.3f} s "
            f"({', '.join(f'{k} {v:.3f}' for k, v in d['by_step_s'].items())}); other ticks median "
            f"{o['median']} ms, max {o['max']} ms",
            highlight=False,
        )
    for c in res["checks"]:
        mark = "[green]PASS[/green]" if c["pass"] else "[red]FAIL[/red]"
        console.print(f"{mark} {c['what']} — {c['detail']}", highlight=False)
    console.print(f"total run time {res['seconds_total']:.0f} s", highlight=False)


# -- main ------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.dispatch", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="small sizes: " + ", ".join(f"{k}={v:g}" for k, v in QUICK.items())
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes, every check (the test suite): " + ", ".join(f"{k}={v:g}" for k, v in SMOKE.items()),
    )
    for key, default in DEFAULTS.items():
        lo, hi = LIMITS[key]
        kind = int if isinstance(LIMITS[key][0], int) else float
        p.add_argument(
            f"--{key.replace('_', '-')}",
            type=kind,
            default=None,
            help=f"{HELPS[key]} (default {default:g}, {lo:g} to {hi:g})",
        )
    p.add_argument("--skip-throughput", action="store_true", help="skip parts 1 and 2")
    p.add_argument("--skip-storm", action="store_true", help="skip part 3")
    p.add_argument("--admin-url", help=f"admin URL of the server (env {ADMIN_URL_ENV}; default {DEFAULT_ADMIN_URL})")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    args = p.parse_args(argv)
    base = {**DEFAULTS, **(QUICK if args.quick else {}), **(SMOKE if args.smoke else {})}
    for key in DEFAULTS:
        if getattr(args, key) is None:
            setattr(args, key, type(LIMITS[key][0])(base[key]))
        lo, hi = LIMITS[key]
        if not lo <= getattr(args, key) <= hi:
            p.error(f"--{key.replace('_', '-')} must be between {lo:g} and {hi:g}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    err = Console(stderr=True)

    def say(text: str) -> None:
        err.print(f"[dim]{time.strftime('%H:%M:%S')} {text}[/dim]", highlight=False)

    try:
        with sigterm_as_interrupt():
            res = benchmark(args, say)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped, databases dropped", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(res, ensure_ascii=False, indent=2, default=str))
    else:
        print_report(res)
    failed = [c["what"] for c in res["checks"] if not c["pass"]]
    if failed:
        print("bench: failed: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
