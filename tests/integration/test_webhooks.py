"""Webhooks out, end to end on both back ends: a subscription, events staged in their own transactions,
the dispatcher sending them signed (Standard Webhooks) to a real HTTP receiver on loopback that checks
each signature with ``standardwebhooks``' own ``Webhook(secret).verify``; retries with the same
``webhook-id``, Retry-After, a permanent refusal, a receiver that is down; the CLI.

Times are fixed (the application's clock, the dispatcher's ``at``); only the signature's timestamp is the
real time, because the receiver holds it against its own clock, as any receiver does.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as dtime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from typer.testing import CliRunner

from config.settings import Settings
from engine import cases, webhooks
from engine.errors import InputError, NotFound
from engine.jobs import parse_period
from engine.publication import posting
from engine.scoring.config import load as load_scoring
from engine.store.models import Delivery, Outbox, WebhookSubscription
from engine.sweep import sweep
from gridflow import cli
from gridflow.app import Gridflow
from gridflow.cli import common
from notifications.channels import webhook as channel
from notifications.channels.memory import MemoryChannel
from notifications.config import NoticeConfig, Retry
from notifications.dispatch import dispatch
from notifications.render import Renderer
from tests.support import CENTER, GRID, GRID_WORKER, ROOT, T0, Database, calendars

SH = ZoneInfo("Asia/Shanghai")
NOW = T0 + timedelta(hours=1)  # Monday 10:00 in Shanghai
WAIT = 5.0  # seconds: the most any socket of the receiver waits


# -- a receiver on loopback ---------------------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    payload: dict | None  # what Webhook(secret).verify returned
    problem: str | None  # why it did not verify


class Receiver:
    """An HTTP server on 127.0.0.1 that verifies every POST's signature and answers from a script
    (status, extra headers); 200 once the script is spent. HTTP/1.0: one connection per request."""

    def __init__(self, secret: str | None = None):
        self.secret = secret
        self.script: deque[tuple[int, dict[str, str]]] = deque()
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            timeout = WAIT

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                payload, problem = None, None
                try:
                    payload = Webhook(receiver.secret or "whsec_AAAA").verify(body, headers)
                except WebhookVerificationError as exc:
                    problem = str(exc)
                with receiver._lock:
                    receiver.requests.append(Received(headers, body, payload, problem))
                    status, extra = receiver.script.popleft() if receiver.script else (200, {})
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/gridflow"

    def answer(self, *statuses: int | tuple[int, dict[str, str]]) -> Receiver:
        for status in statuses:
            self.script.append(status if isinstance(status, tuple) else (status, {}))
        return self

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(WAIT)


def closed_port_url() -> str:
    """A loopback URL nothing listens on (the connection is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks"


# -- the application and the dispatcher ------------------------------------------------------------------------------


@pytest.fixture
def app(db: Database, tmp_path) -> Iterator[Gridflow]:
    now = [NOW]
    gf = Gridflow(
        Settings(home=tmp_path, database_url=db.url, notices_file=tmp_path / "notices.log"), clock=lambda: now[0]
    )
    gf.now = now  # type: ignore[attr-defined]
    yield gf
    gf.close()


def notice_config(**kwargs) -> NoticeConfig:
    people = MemoryChannel("memory")
    kwargs.setdefault("retry", Retry(max_attempts=4, base=timedelta(seconds=30), cap=timedelta(minutes=10)))
    return NoticeConfig({"memory": people}, ("memory",), **kwargs)


def run(db: Database, at: datetime, config: NoticeConfig | None = None):
    return dispatch(db.sessions.begin, lambda: at, "d", config or notice_config(), Renderer(SH))


def subscribe(app: Gridflow, url: str, *events: str) -> dict:
    return app.add_subscription("通江县综治平台", url, list(events or webhooks.EVENTS))


def report(db: Database, at: datetime = NOW, **fields) -> str:
    """Report a case through the engine, in its own transaction (committed when this returns)."""
    fields = {"title": "马营台村1社水管破裂", **fields}
    with db.sessions.begin() as s:
        return cases.report(
            s, grid_id=GRID, actor_id=GRID_WORKER, fields=fields, at=at, calendars=calendars()
        ).case.code


def step(db: Database, code: str, trigger: str, actor: str, at: datetime = NOW, **fields: str) -> None:
    with db.sessions.begin() as s:
        cases.fire(s, code, trigger, actor_id=actor, fields=fields, at=at, calendars=calendars())


def classify(db: Database, code: str) -> None:
    step(db, code, "classify", CENTER, category="water_supply", priority="normal")


def hooks(db: Database) -> list[Outbox]:
    with db.sessions.begin() as s:
        rows = s.scalars(select(Outbox).where(Outbox.role == "webhook").order_by(Outbox.id)).all()
        s.expunge_all()
        return list(rows)


def deliveries(db: Database) -> list[Delivery]:
    with db.sessions.begin() as s:
        rows = s.scalars(select(Delivery).where(Delivery.channel == "webhook").order_by(Delivery.id)).all()
        s.expunge_all()
        return list(rows)


# -- end to end ------------------------------------------------------------------------------------------------------


def test_a_report_and_a_step_go_out_signed_and_verify_on_the_receiving_side(db, app):
    with Receiver() as receiver:
        made = subscribe(app, receiver.url, "case.reported", "case.stepped")
        receiver.secret = made["secret"]
        assert made["secret"].startswith("whsec_") and made["events"] == ["case.reported", "case.stepped"]
        code = report(db)
        classify(db, code)
        staged = hooks(db)
        assert [(o.template, o.recipient_id, o.urgent, o.status) for o in staged] == [
            ("case.reported", f"webhook:{made['id']}", True, "pending"),
            ("case.stepped", f"webhook:{made['id']}", True, "pending"),
        ]
        result = run(db, NOW)
        assert [r.problem for r in receiver.requests] == [None, None]
        first, second = (r.payload for r in receiver.requests)
    assert first["type"] == "case.reported" and second["type"] == "case.stepped"
    assert first["timestamp"] == NOW.isoformat()
    assert {k: first["data"][k] for k in ("case", "trigger", "status", "version", "grid", "actor")} == {
        "case": code, "trigger": "report", "status": "reported", "version": 1, "grid": GRID, "actor": GRID_WORKER,
    }  # fmt: skip
    assert {k: second["data"][k] for k in ("case", "trigger", "from_state", "to_state", "version", "category")} == {
        "case": code, "trigger": "classify", "from_state": "reported", "to_state": "classified", "version": 2,
        "category": "water_supply",
    }  # fmt: skip
    assert [r.headers["webhook-id"] for r in receiver.requests] == [o.dedupe_key for o in staged]
    assert all(r.headers["webhook-signature"].startswith("v1,") for r in receiver.requests)
    assert result.failed == [] and result.delivered >= 2
    assert [(o.status, o.channel) for o in hooks(db)] == [("sent", "webhook"), ("sent", "webhook")]
    assert [(d.outcome, d.ok, d.recipient_id, d.key) for d in deliveries(db)] == [
        ("sent", True, f"webhook:{made['id']}", o.dedupe_key) for o in staged
    ]


def test_a_wrong_secret_does_not_verify(db, app):
    with Receiver(secret=channel.new_secret()) as receiver:
        subscribe(app, receiver.url, "case.reported")
        report(db)
        run(db, NOW)
    [request] = receiver.requests
    assert request.payload is None and request.problem == "No matching signature found"


def test_the_payload_carries_no_description_and_masks_phone_and_id_numbers(db, app):
    with Receiver() as receiver:
        receiver.secret = subscribe(app, receiver.url, "case.reported")["secret"]
        report(db, title="伏从英 13800138000 家门前水管破裂 510921198001011234", description="联系 13900001111")
        run(db, NOW)
    [request] = receiver.requests
    data = request.payload["data"]
    assert data["title"] == "伏从英 138****8000 家门前水管破裂 510921************"
    assert "description" not in data and "fields" not in data
    assert "13900001111" not in request.body.decode() and "13800138000" not in request.body.decode()


def test_a_500_then_a_200_delivers_twice_with_the_same_webhook_id(db, app):
    with Receiver() as receiver:
        receiver.secret = subscribe(app, receiver.url, "case.reported")["secret"]
        receiver.answer(500)
        report(db)
        first = run(db, NOW)
        [notice] = hooks(db)
        assert (first.retried, notice.status, notice.channel_attempts) == (1, "pending", 1)
        assert NOW + timedelta(seconds=15) <= notice.next_attempt_at <= NOW + timedelta(seconds=30)
        assert run(db, NOW + timedelta(seconds=10)).claimed == 0  # the backoff holds it
        run(db, notice.next_attempt_at)
        assert [r.problem for r in receiver.requests] == [None, None]
        ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert ids == [notice.dedupe_key, notice.dedupe_key]
    assert receiver.requests[0].body == receiver.requests[1].body
    assert [d.outcome for d in deliveries(db)] == ["retry", "sent"]
    assert "HTTP 500" in (deliveries(db)[0].error or "")
    assert hooks(db)[0].status == "sent"


def test_retry_after_is_honoured(db, app):
    with Receiver() as receiver:
        receiver.secret = subscribe(app, receiver.url, "case.reported")["secret"]
        receiver.answer((429, {"Retry-After": "120"}))
        report(db)
        run(db, NOW)
    [notice] = hooks(db)
    assert (notice.status, notice.next_attempt_at) == ("pending", NOW + timedelta(seconds=120))


def test_a_410_is_permanent_and_ends_failed(db, app):
    with Receiver() as receiver:
        receiver.secret = subscribe(app, receiver.url, "case.reported")["secret"]
        receiver.answer(410)
        report(db)
        result = run(db, NOW)
        [notice] = hooks(db)
        assert notice.status == "failed" and "HTTP 410" in (notice.error or "")
        assert result.failed == [(notice.id, notice.error)]
        assert run(db, NOW + timedelta(hours=1)).claimed == 0
    assert len(receiver.requests) == 1
    assert [d.outcome for d in deliveries(db)] == ["permanent"]


def test_a_step_with_the_receiver_down_commits_at_once_and_the_delivery_waits(db, app):
    subscribe(app, closed_port_url(), "case.reported", "case.stepped")
    code = report(db)
    started = time.monotonic()
    classify(db, code)
    took = time.monotonic() - started
    assert took < 1.0, f"the step took {took:.2f}s"
    with db.sessions.begin() as s:  # committed: another transaction sees the step and its webhook
        assert [o.template for o in s.scalars(select(Outbox).where(Outbox.role == "webhook"))] == [
            "case.reported",
            "case.stepped",
        ]
    result = run(db, NOW)
    attempts = deliveries(db)
    assert [d.outcome for d in attempts] == ["retry"]  # the second is not tried while the first one failed
    assert "cannot connect" in (attempts[0].error or "")
    assert result.deferred >= 1 and {o.status for o in hooks(db)} == {"pending"}


def test_quiet_hours_and_digests_never_hold_webhooks(db, app):
    quiet_all_day = notice_config(quiet=(dtime(0, 0), dtime(23, 59)))
    with Receiver() as receiver:
        receiver.secret = subscribe(app, receiver.url, "case.reported", "case.stepped")["secret"]
        code = report(db)
        classify(db, code)
        for n in range(3):
            report(db, title=f"第{n}件")
        run(db, NOW, quiet_all_day)
    assert len(receiver.requests) == 5 and all(r.problem is None for r in receiver.requests)
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 5
    with db.sessions.begin() as s:
        people = s.scalars(select(Outbox.status).where(Outbox.role != "webhook")).all()
    assert people and set(people) == {"pending"}  # the people's notices wait for the morning


def test_only_the_events_asked_for_are_staged_and_each_once(db, app):
    with Receiver() as receiver:
        reported = subscribe(app, receiver.url, "case.reported")
        stepped = subscribe(app, receiver.url, "case.stepped")
        code = report(db)
        classify(db, code)
    assert [(o.recipient_id, o.template) for o in hooks(db)] == [
        (f"webhook:{reported['id']}", "case.reported"),
        (f"webhook:{stepped['id']}", "case.stepped"),
    ]


def test_with_no_subscriptions_a_step_asks_nothing_more_and_changes_are_seen_at_the_next_step(db, app):
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    code = report(db)  # the first step of this org token reads the (empty) table once
    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        classify(db, code)
        report(db, title="第二件")
        assert not [s for s in statements if "webhook_subscription" in s]
        assert hooks(db) == []
        with Receiver() as receiver:
            made = subscribe(app, receiver.url, "case.stepped")
            step(db, code, "assign", CENTER, assignee=GRID_WORKER)
            assert [o.template for o in hooks(db)] == ["case.stepped"]
            statements.clear()
            step(db, code, "accept", GRID_WORKER)
            assert not [s for s in statements if "webhook_subscription" in s]  # kept under the token
            removed = app.remove_subscription(made["id"])
            assert (removed["active"], removed["dropped"]) == (False, 2)
            step(db, code, "resolve", GRID_WORKER, resolution="已更换水管")
            assert len(hooks(db)) == 2 and {o.status for o in hooks(db)} == {"suppressed"}
            run(db, NOW)
        assert receiver.requests == []
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)


def test_a_removed_subscriptions_claimed_notices_are_suppressed(db, app):
    with Receiver() as receiver:
        made = subscribe(app, receiver.url, "case.reported")
        report(db)
        with db.sessions.begin() as s:  # as if removed behind the dispatcher's back, between claim and send
            s.get(WebhookSubscription, made["id"]).active = False
        run(db, NOW)
    assert receiver.requests == []
    [notice] = hooks(db)
    assert (notice.status, notice.error) == ("suppressed", "the webhook subscription was removed")


def test_a_breach_and_an_escalation_go_out_from_the_sweep(db, app):
    with Receiver() as receiver:
        receiver.secret = subscribe(app, receiver.url, "sla.breach", "sla.escalation")["secret"]
        code = report(db)
        later = NOW + timedelta(days=30)
        sweep(db.sessions.begin, later, "sweeper")
        staged = hooks(db)
        assert {o.template for o in staged} == {"sla.breach", "sla.escalation"}
        assert all(o.dedupe_key.split(":")[3] == "timer" for o in staged)
        run(db, later)
        assert receiver.requests and all(r.problem is None for r in receiver.requests)
    data = [r.payload["data"] for r in receiver.requests]
    assert {d["case"] for d in data} == {code}
    breach = next(d for d in data if d["trigger"] == "sla.breach")
    assert breach["overdue"] is True and breach["due_at"] and breach["clock"]
    escalation = next(d for d in data if d["trigger"] == "sla.escalation")
    assert escalation["mark"] == "supervision_order" and escalation["level"] >= 1


def test_a_published_posting_goes_out(db, app):
    with Receiver() as receiver:
        receiver.secret = subscribe(app, receiver.url, "posting.published")["secret"]
        at = datetime(2026, 4, 2, 9, 0, tzinfo=SH)
        with db.sessions.begin() as s:
            rules = load_scoring(ROOT / "config" / "scoring.yaml")
            quarter = parse_period("quarter", "2026Q1")
            posting.publish(s, "quarterly", quarter, at, rules, SH, "quarterly job", "https://gf.example.org/p")
        run(db, at)
    [request] = receiver.requests
    assert request.problem is None
    data = request.payload["data"]
    assert (request.payload["type"], data["kind"], data["period"], data["version"]) == (
        "posting.published", "quarterly", "2026Q1", 1,
    )  # fmt: skip
    assert data["url"] == "https://gf.example.org/p/quarterly/2026Q1/v1.html" and len(data["content_hash"]) == 64


# -- the rules of a subscription ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "events", "problem"),
    [
        ("ftp://platform.example.org/hooks", ["case.reported"], "must start with https:// or http://"),
        ("https://user:secret@platform.example.org/hooks", ["case.reported"], "must not carry a user name or password"),
        ("https:///hooks", ["case.reported"], "has no host"),
        ("https://platform.example.org/hooks#x", ["case.reported"], "must not have a #fragment"),
        ("", ["case.reported"], "a URL is required"),
        (
            "https://platform.example.org/hooks",
            ["case.closed"],
            "unknown event 'case.closed'; events are: case.reported",
        ),
        ("https://platform.example.org/hooks", [], "name at least one event"),
    ],
)
def test_bad_urls_and_events_are_refused_with_a_clear_message(db, app, url, events, problem):
    with pytest.raises(InputError, match=problem.replace("?", r"\?").replace(".", r"\.")):
        app.add_subscription("平台", url, events)
    with db.sessions.begin() as s:
        assert s.scalars(select(WebhookSubscription)).all() == []


def test_unknown_subscriptions_are_not_found(db, app):
    with pytest.raises(NotFound, match="no webhook subscription 99"):
        app.remove_subscription(99)
    with pytest.raises(NotFound):
        app.subscription_deliveries(99)


def test_the_secret_is_shown_once_and_repr_masks_it(db, app):
    made = subscribe(app, "https://platform.example.org/hooks?key=abc", "case.reported")
    listed = app.list_subscriptions()
    assert made["secret"] not in json.dumps(listed, ensure_ascii=False)
    shown = repr(channel.for_subscription(made["id"], made["url"], made["secret"]))
    assert made["secret"] not in shown and "abc" not in shown


def test_the_signature_is_the_standard_one(db):
    """The headers for a known secret, id, time and body, computed by hand (HMAC-SHA256, base64)."""
    import base64
    import hashlib
    import hmac

    secret = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    sender = channel.WebhookChannel(1, "https://x.example.org/", secret)
    message = channel.message(channel.Recipient("webhook:1", "x"), "webhook:1:case.reported:7:1", "case.reported",
                              {"at": "2026-03-02T02:00:00+00:00", "case": "SL-2026-000007"}, 7)  # fmt: skip
    headers = sender.headers(message, timestamp=1772416800)
    signed = f"webhook:1:case.reported:7:1.1772416800.{message.text}".encode()
    expected = base64.b64encode(hmac.new(b"0123456789abcdef0123456789abcdef", signed, hashlib.sha256).digest())
    assert headers["webhook-signature"] == "v1," + expected.decode()
    assert (headers["webhook-id"], headers["webhook-timestamp"]) == ("webhook:1:case.reported:7:1", "1772416800")
    assert json.loads(message.text) == {
        "type": "case.reported",
        "timestamp": "2026-03-02T02:00:00+00:00",
        "data": {"at": "2026-03-02T02:00:00+00:00", "case": "SL-2026-000007"},
    }


# -- the command line ------------------------------------------------------------------------------------------------


def test_webhook_commands_add_list_deliveries_and_remove(db, app, monkeypatch, tmp_path):
    monkeypatch.setenv("GRIDFLOW_HOME", str(app.settings.home))
    monkeypatch.setenv("GRIDFLOW_CONFIG_FILE", str(tmp_path / "absent.yaml"))
    monkeypatch.setenv("GRIDFLOW_DATABASE_URL", db.url)
    built: list[Gridflow] = []
    monkeypatch.setattr(common, "Gridflow", lambda s: built.append(Gridflow(s, clock=lambda: NOW)) or built[-1])
    tree = cli.build("webhook")
    runner = CliRunner()
    try:
        with Receiver() as receiver:
            added = runner.invoke(
                tree, ["webhook", "add", "通江县综治平台", receiver.url, "--event", "case.reported", "-e", "sla.breach"]
            )
            assert added.exit_code == 0, added.output
            secret = next(line for line in added.stdout.splitlines() if line.startswith("whsec_"))
            receiver.secret = secret
            bad = runner.invoke(tree, ["webhook", "add", "x", "https://a:b@example.org/", "--event", "case.reported"])
            assert bad.exit_code == 8 and "user name or password" in bad.output
            listed = runner.invoke(tree, ["webhook", "list", "--json"])
            assert listed.exit_code == 0 and secret not in listed.stdout
            [row] = json.loads(listed.stdout)
            assert (row["name"], row["url"], row["events"]) == (
                "通江县综治平台",
                receiver.url,
                ["case.reported", "sla.breach"],
            )
            report(db)
            run(db, NOW)
            assert receiver.requests and receiver.requests[0].problem is None
        shown = runner.invoke(tree, ["webhook", "deliveries", str(row["id"]), "--json"])
        assert shown.exit_code == 0, shown.output
        data = json.loads(shown.stdout)
        assert [(d["event"], d["outcome"], d["status"]) for d in data["deliveries"]] == [
            ("case.reported", "sent", "sent")
        ]
        assert data["deliveries"][0]["webhook_id"] == receiver.requests[0].headers["webhook-id"]
        table = runner.invoke(tree, ["webhook", "deliveries", str(row["id"])])
        assert table.exit_code == 0 and "case.reported" in table.stdout
        removed = runner.invoke(tree, ["webhook", "remove", str(row["id"])])
        assert removed.exit_code == 0 and "removed" in removed.stdout
        assert json.loads(runner.invoke(tree, ["webhook", "list", "--json"]).stdout) == []
        everything = runner.invoke(tree, ["webhook", "list", "--all"])
        assert everything.exit_code == 0 and "removed" in everything.stdout
        missing = runner.invoke(tree, ["webhook", "remove", "999"])
        assert missing.exit_code == 3
    finally:
        for gf in built:
            gf.close()
