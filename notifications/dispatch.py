"""The outbox dispatcher: claim ready notices, decide when and how each person hears of them,
send, record every attempt.

A tick has three short transactions, so no row lock is held while a channel talks to the
outside world:

1. **claim** — the people with ready notices (``pending``, ``next_attempt_at`` come, no live
   lease), then all of their ready notices, stamped with this dispatcher's id and a lease
   (``SKIP LOCKED`` on PostgreSQL); a notice of demo data is ``suppressed`` there and then
   (:func:`suppress_demo`: demo notices never reach anyone);
2. **plan** (no I/O) — per person, in order: inactive or opted out → ``suppressed``; quiet hours
   (non-urgent) → deferred to their end, never dropped; storm control (non-urgent) → a person
   who got a message within the digest window, or has had ``hourly_cap`` messages in the last
   hour, waits; what is ready then goes out as **one** message — a digest that lists the cases
   when there are several; the channel is the first in the person's order that can reach them
   and has not failed for good;
3. **send** outside any transaction, then **record**: every attempt is a ``delivery`` row;
   the notices become ``sent`` (folded ones carry the digest's key), or wait for a retry with
   exponential backoff and jitter (or the provider's Retry-After), or move to the next channel
   after a permanent failure or the last attempt, or end ``failed`` when no channel is left.

Delivery is at least once: a dispatcher that dies between send and record sends again after
the lease, with the same idempotency key (providers that take one deduplicate). A notice is
never sent twice for one dedupe key otherwise: only the holder of the lease records it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ARRAY, Text, all_, and_, any_, bindparam, cast, func, insert, literal, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from engine.scope import OrgSnapshot, snapshot
from engine.store import demo_repo
from engine.store.models import Case, Delivery, OrgMeta, Outbox, Person, WebhookSubscription
from engine.timeutil import require_aware
from engine.webhooks import PREFIX as WEBHOOK
from notifications.channels import webhook
from notifications.channels.base import (
    ALL_PARTS,
    Channel,
    Message,
    Recipient,
    SendResult,
    mask_phones,
    parts_of,
)
from notifications.config import NoticeConfig
from notifications.render import Renderer
from notifications.sending import Lane, Senders, Sending, in_flight

_OUTBOX, _DELIVERY, _CASE, _PERSON = Outbox.__table__, Delivery.__table__, Case.__table__, Person.__table__
DEFAULT_LEASE = timedelta(minutes=2)
DEMO_NOTE = "演示数据 demo: never sent to anyone (gridflow demo)"
DIGEST_SHOWN = 10  # cases listed in a digest; the rest are counted
WEBHOOKS_PER_CLAIM = 20  # calls to one subscriber per claim; the rest wait for the next one
EVENT_LABELS = {
    "case_received": "已受理",
    "case_assigned": "新派单",
    "case_resolved": "已办结",
    "sla_reminder": "时限提醒",
    "sla_breach": "已超时",
    "sla_escalated": "超时升级",
    "supervision_order": "督办",
}


@dataclass
class DispatchReport:
    claimed: int = 0
    sent: int = 0  # messages
    delivered: int = 0  # notices delivered (a digest delivers several)
    digests: int = 0
    deferred: int = 0
    retried: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)
    suppressed: int = 0
    more: bool = False
    misconfigured: dict[str, str] = field(default_factory=dict)  # channel → what it answered
    workers: int = 0  # send threads (lanes at most in flight)
    connections: int = 0  # connections the channels made
    most_in_flight: int = 0  # the most messages on the wire at once


@dataclass
class _Notice:
    id: int
    dedupe_key: str
    recipient_id: str
    template: str
    params: dict[str, Any]
    urgent: bool
    attempts: int
    channel: str | None
    channel_attempts: int
    exhausted: list[str]
    case_code: str | None
    digest_key: str | None = None


@dataclass(frozen=True)
class Pace:
    """A person's recent deliveries, all that storm control looks at."""

    last_sent: datetime | None = None
    sent_last_hour: int = 0
    oldest_in_hour: datetime | None = None  # the first delivery within the last hour


QUIET, DIGEST, HOURLY_CAP, RETRY, DEFERRED, SENDING = (
    "quiet_hours",
    "digest_window",
    "hourly_cap",
    "retry",
    "deferred",
    "sending",
)


@dataclass(frozen=True)
class Hold:
    """Why a pending notice does not go out now, and until when."""

    reason: str  # QUIET, DIGEST, HOURLY_CAP (the plan's rules), RETRY, DEFERRED or SENDING
    until: datetime


@dataclass
class _Person:
    recipient: Recipient
    active: bool
    order: tuple[str, ...]
    pace: Pace
    webhook: Channel | None = None  # a webhook subscription (recipient webhook:<id>): its own channel


@dataclass
class _Send:
    """One message to go out: which notices, on which channel."""

    notices: list[_Notice]
    channel: Channel
    message: Message


@dataclass
class _Plan:
    sends: list[_Send] = field(default_factory=list)
    defer: list[tuple[list[int], datetime]] = field(default_factory=list)
    suppress: list[tuple[int, str]] = field(default_factory=list)
    fail: list[tuple[int, str]] = field(default_factory=list)


# -- claim -------------------------------------------------------------------------------


def _ready(at: datetime):  # type: ignore[no-untyped-def]
    return and_(
        Outbox.status == "pending",
        Outbox.next_attempt_at <= at,
        or_(Outbox.lease_until.is_(None), Outbox.lease_until < at),
    )


def claim(
    session: Session,
    at: datetime,
    worker: str,
    batch: int,
    lease: timedelta = DEFAULT_LEASE,
    busy: frozenset[str] = frozenset(),
) -> list[int]:
    """Claim the ready notices of up to ``batch`` people (all of each person's, up to 50 × batch, so a storm
    folds into one digest, not one per claim), none of the ``busy`` people's (their batch is on its way)."""
    at = require_aware(at)
    ready = _ready(at)
    if busy:
        ready = and_(ready, _not_among(session, Outbox.recipient_id, sorted(busy)))
    people = (
        select(Outbox.recipient_id)
        .where(ready)
        .group_by(Outbox.recipient_id)
        .order_by(func.min(Outbox.next_attempt_at))
        .limit(batch)
    )
    candidates = (
        select(Outbox.id)
        .where(ready, Outbox.recipient_id.in_(people.scalar_subquery()))
        .order_by(Outbox.next_attempt_at, Outbox.id)
        .limit(batch * 50)
    )
    stamp = {"claimed_by": worker, "lease_until": at + lease}
    if session.get_bind().dialect.name == "postgresql":
        stmt = (
            update(Outbox)
            .where(Outbox.id.in_(candidates.with_for_update(skip_locked=True).scalar_subquery()))
            .values(stamp)
            .returning(Outbox.id)
        )
        return sorted(session.execute(stmt, execution_options={"synchronize_session": False}).scalars())
    ids = list(session.scalars(candidates))
    if ids:  # SQLite: one writer at a time, so the conditional update takes them all
        session.execute(update(Outbox).where(Outbox.id.in_(ids), _ready(at)).values(stamp))
    return ids


def _among(session: Session, column: Any, values: list[Any]):  # type: ignore[no-untyped-def]
    """``column IN values``; on PostgreSQL ``column = ANY(array)``: one SQL text whatever the count, so
    psycopg keeps it parsed and the server prepared (a list of 200 placeholders was parsed anew each time)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def _not_among(session: Session, column: Any, values: list[Any]):  # type: ignore[no-untyped-def]
    """``column NOT IN values``; on PostgreSQL ``column <> ALL(array)``."""
    if session.get_bind().dialect.name == "postgresql":
        return column != all_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.not_in(list(values))


def suppress_demo(session: Session, ids: list[int] | None = None) -> list[int]:
    """The rule for demo data, in this one place: a notice of the demo township (of a demo case, or of a
    posting of demo figures; :func:`engine.store.demo_repo.demo_notice`) is never sent to anyone. It ends
    ``suppressed`` with :data:`DEMO_NOTE`, stays listed by ``gridflow notices list``, and has no delivery.
    The dispatcher applies it to what it claims (``ids``); ``gridflow demo`` to all of the demo's at once."""
    stmt = update(Outbox).where(Outbox.status == "pending", demo_repo.demo_notice())
    if ids is not None:
        stmt = stmt.where(_among(session, Outbox.id, ids))
    stmt = stmt.values(status="suppressed", error=DEMO_NOTE, lease_until=None).returning(Outbox.id)
    return list(session.execute(stmt, execution_options={"synchronize_session": False}).scalars())


def requeue_failed(session: Session, at: datetime, notice_id: int | None = None) -> int:
    """Send failed notices again (``gridflow notices retry``): the failed notice ``notice_id``, or every
    failed one, back to ``pending`` and ready at ``at``, every channel available again, no lease. How many."""
    stmt = update(Outbox).where(Outbox.status == "failed")
    if notice_id is not None:
        stmt = stmt.where(Outbox.id == notice_id)
    result = session.execute(
        stmt.values(
            status="pending",
            next_attempt_at=require_aware(at),
            exhausted=[],
            channel=None,
            channel_attempts=0,
            lease_until=None,
            claimed_by=None,
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# What a tick reads of its notices and their people: columns, not ORM rows (read, never changed through
# the session, and a row's ORM identity costs more than the rest of its load).
_NOTICES = select(
    *(
        _OUTBOX.c[name]
        for name in (
            "id",
            "dedupe_key",
            "recipient_id",
            "template",
            "params",
            "urgent",
            "attempts",
            "channel",
            "channel_attempts",
            "exhausted",
            "digest_key",
        )
    ),
    _CASE.c.code,
).select_from(_OUTBOX.outerjoin(_CASE, _CASE.c.id == _OUTBOX.c.case_id))
_CONTACTS = select(*(_PERSON.c[name] for name in ("id", "name", "phone", "email", "wecom", "active", "notify")))


def _load(
    session: Session, ids: list[int], at: datetime, config: NoticeConfig
) -> tuple[list[_Notice], dict[str, _Person]]:
    rows = session.execute(_NOTICES.where(_among(session, _OUTBOX.c.id, ids)))
    notices = [
        _Notice(
            r.id,
            r.dedupe_key,
            r.recipient_id,
            r.template,
            dict(r.params or {}),
            r.urgent,
            r.attempts,
            r.channel,
            r.channel_attempts or 0,
            list(r.exhausted or []),
            r.code,
            r.digest_key,
        )
        for r in rows
    ]
    recipients = sorted({n.recipient_id for n in notices})
    people = {row.id: row for row in session.execute(_CONTACTS.where(_among(session, _PERSON.c.id, recipients)))}
    pace = paces(session, recipients, at, config)
    org = snapshot(session, session.scalar(select(OrgMeta.token)))
    out: dict[str, _Person] = _subscribers(session, [rid for rid in recipients if rid.startswith(WEBHOOK)])
    for rid in recipients:
        if rid in out:
            continue
        person = people.get(rid)
        contact = (person.phone, person.email, person.wecom) if person else (None, None, None)
        recipient = Recipient(rid, person.name if person else rid, *contact, places=_places(org, rid))
        out[rid] = _Person(
            recipient,
            bool(person and person.active and person.notify),
            config.preferences.get(rid, config.order),
            pace.get(rid, Pace()),
        )
    return sorted(notices, key=lambda n: n.id), out


def _subscribers(session: Session, recipients: list[str]) -> dict[str, _Person]:
    """The webhook subscriptions among the recipients, each with its signed channel (none once removed)."""
    wanted = {rid: int(rid[len(WEBHOOK) :]) for rid in recipients if rid[len(WEBHOOK) :].isdigit()}
    found = select(WebhookSubscription).where(WebhookSubscription.id.in_(sorted(set(wanted.values()))))
    subs = {s.id: s for s in session.scalars(found)} if wanted else {}
    out = {}
    for rid in recipients:
        sub = subs.get(wanted.get(rid, 0))
        channel = webhook.for_subscription(sub.id, sub.url, sub.secret) if sub is not None and sub.active else None
        recipient = Recipient(rid, sub.name if sub else rid)
        out[rid] = _Person(recipient, channel is not None, (webhook.NAME,), Pace(), channel)
    return out


def paces(session: Session, recipients: list[str], at: datetime, config: NoticeConfig) -> dict[str, Pace]:
    """The recent deliveries of each of ``recipients`` who had one (the others have ``Pace()``)."""
    hour_ago = at - timedelta(hours=1)
    rows = session.execute(
        select(
            Delivery.recipient_id,
            func.max(Delivery.at).label("last"),
            func.count().filter(Delivery.at > hour_ago).label("hour"),
            func.min(Delivery.at).filter(Delivery.at > hour_ago).label("oldest"),
        )
        .where(
            _among(session, Delivery.recipient_id, recipients),
            Delivery.ok.is_(True),
            # only what storm control looks at: the last hour, or the digest window if longer;
            # the cost stays flat however long a person's history grows (index on recipient, at)
            Delivery.at > at - max(timedelta(hours=1), config.digest_window),
        )
        .group_by(Delivery.recipient_id)
    )
    return {r.recipient_id: Pace(r.last, int(r.hour), r.oldest) for r in rows}


def _places(org: OrgSnapshot, person_id: str) -> tuple[str, ...]:
    """Where the person holds roles and every place above, the most specific first."""
    chains = sorted(
        (org.places[place].scopes for _, place in org.roles.get(person_id, ()) if place in org.places),
        key=len,
        reverse=True,
    )
    seen: dict[str, None] = {}
    for chain in chains:
        for place in chain:
            seen.setdefault(place, None)
    return tuple(seen)


# -- plan ----------------------------------------------------------------------------------


def in_quiet_hours(local: time, quiet: tuple[time, time] | None) -> bool:
    if quiet is None:
        return False
    start, end = quiet
    return start <= local < end if start <= end else local >= start or local < end


def quiet_end(at: datetime, quiet: tuple[time, time], tz: ZoneInfo) -> datetime:
    """The next end of the quiet hours after ``at``."""
    local = at.astimezone(tz)
    end = datetime.combine(local.date(), quiet[1], tz)
    if end <= local:
        end += timedelta(days=1)
    return end.astimezone(UTC)


def plan(
    notices: list[_Notice], people: dict[str, _Person], config: NoticeConfig, renderer: Renderer, at: datetime
) -> _Plan:
    result = _Plan()
    by_person: dict[str, list[_Notice]] = {}
    for notice in notices:
        by_person.setdefault(notice.recipient_id, []).append(notice)
    for rid, mine in by_person.items():
        _plan_person(result, people[rid], mine, config, renderer, at)
    return result


def _plan_person(
    result: _Plan, person: _Person, mine: list[_Notice], config: NoticeConfig, renderer: Renderer, at: datetime
) -> None:
    if person.recipient.id.startswith(WEBHOOK):
        _plan_webhook(result, person, mine, at)
        return
    if not person.active:
        result.suppress.extend((n.id, "the person is inactive or does not take notices") for n in mine)
        return
    unknown = [n for n in mine if not renderer.has(n.template)]
    result.fail.extend((n.id, f"render {n.template}: no templates for this event") for n in unknown)
    mine = [n for n in mine if n not in unknown]
    urgent = [n for n in mine if is_urgent(n.urgent, n.template, n.params, config)]
    normal = [n for n in mine if n not in urgent]
    for notice in urgent:  # urgent: at any hour, one message each, no folding
        _route(result, person, [notice], config, renderer)
    if not normal:
        return
    waits = holds(person.pace, config, renderer.tz, at)
    if waits:
        result.defer.append(([n.id for n in normal], max(w.until for w in waits)))
        return
    retrying = [n for n in normal if n.channel_attempts or n.exhausted]
    fresh = [n for n in normal if n not in retrying]
    again: dict[str, list[_Notice]] = {}
    for notice in retrying:  # a retry sends the same message again, with the same idempotency key
        again.setdefault(notice.digest_key or notice.dedupe_key, []).append(notice)
    for group in again.values():
        _route(result, person, group, config, renderer)
    if fresh:
        _route(result, person, fresh, config, renderer)


def _plan_webhook(result: _Plan, person: _Person, mine: list[_Notice], at: datetime) -> None:
    """A subscriber's events: each its own signed POST on its own channel, at any hour, never folded."""
    if person.webhook is None:
        result.suppress.extend((n.id, "the webhook subscription was removed") for n in mine)
        return
    for notice in mine[:WEBHOOKS_PER_CLAIM]:
        message = webhook.message(person.recipient, notice.dedupe_key, notice.template, notice.params, notice.id)
        result.sends.append(_Send([notice], person.webhook, message))
    if mine[WEBHOOKS_PER_CLAIM:]:
        result.defer.append(([n.id for n in mine[WEBHOOKS_PER_CLAIM:]], at))


def is_urgent(urgent: bool, event: str, params: dict[str, Any], config: NoticeConfig) -> bool:
    """Urgent notices go out at any hour, one message each: never held, never folded."""
    return urgent or event in config.urgent_events or params.get("category") in config.urgent_categories


def holds(pace: Pace, config: NoticeConfig, tz: ZoneInfo, at: datetime) -> list[Hold]:
    """What keeps a non-urgent message to a person with this ``pace`` from going out at ``at``.

    The dispatcher defers the person's notices to the latest ``until``; ``gridflow notices`` shows
    the reason. Empty: it may go now.
    """
    waits = []
    if in_quiet_hours(at.astimezone(tz).time(), config.quiet):
        assert config.quiet is not None
        waits.append(Hold(QUIET, quiet_end(at, config.quiet, tz)))
    if pace.last_sent is not None and at < pace.last_sent + config.digest_window:
        waits.append(Hold(DIGEST, pace.last_sent + config.digest_window))
    if pace.sent_last_hour >= config.hourly_cap and pace.oldest_in_hour is not None:
        waits.append(Hold(HOURLY_CAP, pace.oldest_in_hour + timedelta(hours=1)))
    return waits


def why_waiting(notice: Outbox, pace: Pace, config: NoticeConfig, tz: ZoneInfo, at: datetime) -> Hold | None:
    """Why the pending ``notice`` does not go out at ``at``, by the dispatcher's own rules: claimed by a
    dispatcher (sending); held by :func:`holds` unless urgent; waiting for its retry (backoff or
    Retry-After) or a deferral made earlier. The latest wait wins; None: at the next tick."""
    if notice.status != "pending":
        return None
    if notice.lease_until is not None and notice.lease_until > at:
        return Hold(SENDING, notice.lease_until)
    urgent = is_urgent(notice.urgent, notice.template, dict(notice.params or {}), config)
    waits = [] if urgent else holds(pace, config, tz, at)
    if notice.next_attempt_at > at:
        kind = RETRY if notice.channel_attempts else DEFERRED
        if kind == RETRY or not any(w.until >= notice.next_attempt_at for w in waits):
            waits.append(Hold(kind, notice.next_attempt_at))
    return max(waits, key=lambda w: w.until) if waits else None


def _route(result: _Plan, person: _Person, notices: list[_Notice], config: NoticeConfig, renderer: Renderer) -> None:
    exhausted = set().union(*(n.exhausted for n in notices))
    channel = next(
        (
            config.channels[name]
            for name in person.order
            if name in config.channels
            and name not in exhausted
            and config.channels[name].address(person.recipient) is not None
            and (not config.channels[name].urgent_only or all(n.urgent for n in notices))
        ),
        None,
    )
    if channel is None:
        reason = "no channel left that can reach this person" + (
            f" (failed for good: {', '.join(sorted(exhausted))})" if exhausted else ""
        )
        result.fail.extend((n.id, reason) for n in notices)
        return
    # Rendered here, on the dispatcher's thread (rendered on the send workers it cost three times as much
    # on a 2-core machine: their threads contend for the interpreter lock while they render).
    try:
        message = _message(person.recipient, notices, renderer, config, parts_of(channel))
    except Exception as exc:  # noqa: BLE001 - a template that cannot render fails these notices, not the tick
        result.fail.extend((n.id, f"render {notices[0].template}: {exc.__class__.__name__}: {exc}") for n in notices)
        return
    result.sends.append(_Send(notices, channel, message))


def _message(
    recipient: Recipient,
    notices: list[_Notice],
    renderer: Renderer,
    config: NoticeConfig,
    parts: frozenset[str] = ALL_PARTS,
) -> Message:
    if len(notices) == 1:
        notice = notices[0]
        event, params, key = notice.template, notice.params, notice.dedupe_key
    else:
        event = "digest"
        key = notices[0].digest_key or f"digest:{notices[0].recipient_id}:{min(n.id for n in notices)}:{len(notices)}"
        params = _digest_params(notices, renderer, config)
    rendered = renderer.render(event, params, recipient.name, parts)  # only what the channel sends
    flat = {
        k: str(v) for k, v in rendered.context.items() if isinstance(v, str | int | float) and not isinstance(v, bool)
    }
    return Message(
        idempotency_key=key[:150],
        event=event,
        recipient=recipient,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        markdown=rendered.markdown,
        params={**flat, "sms": rendered.sms},
        urgent=any(n.urgent for n in notices),
        notice_ids=tuple(n.id for n in notices),
    )


def _digest_params(notices: list[_Notice], renderer: Renderer, config: NoticeConfig) -> dict[str, Any]:
    items = [
        {
            "event_label": EVENT_LABELS.get(n.template, n.template),
            "case": n.case_code or n.params.get("case", ""),
            "title": n.params.get("title", ""),
            "due_local": renderer.local(n.params["due_at"]) if n.params.get("due_at") else "—",
        }
        for n in notices[:DIGEST_SHOWN]
    ]
    minutes = int(config.digest_window.total_seconds() // 60)
    return {"items": items, "count": len(notices), "shown": len(items), "window_label": f"{minutes}分钟"}


# -- send and record ---------------------------------------------------------------------------


def backoff(attempt: int, config: NoticeConfig, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with full jitter between half and all of the step, capped."""
    step = min(config.retry.base * (2 ** max(attempt - 1, 0)), config.retry.cap)
    return step * (0.5 + 0.5 * (rng or random).random())


def _lanes(result: _Plan) -> list[Lane]:
    """The plan's messages as one lane per recipient, each in plan order (lanes in order of their first)."""
    lanes: dict[str, Lane] = {}
    for send in result.sends:
        lanes.setdefault(send.message.recipient.id, Lane([])).items.append(send)
    return list(lanes.values())


def _gives_up(send: _Send, sent: SendResult) -> bool:
    """Once a subscriber fails, its other webhooks of this claim are not tried (a receiver that is down or
    hangs costs one attempt a tick): they wait for the retry step."""
    return not sent.ok and send.channel.kind == webhook.KIND


def _workers(config: NoticeConfig) -> int:
    """Worker threads for the sends: the largest ``in_flight`` among the channels."""
    return max((in_flight(channel) for channel in config.channels.values()), default=1)


@dataclass
class _Batch:
    """A claimed batch between its plan and its record: its messages on their way."""

    ids: list[int]
    at: datetime  # when it was claimed and planned
    result: _Plan
    sending: Sending
    recipients: frozenset[str]  # its people: not claimed again while it is on its way


def _await_sends(batch: _Batch, config: NoticeConfig) -> list[tuple[_Send, SendResult, int]]:
    """The outcomes of the batch's sends, in plan order, once all are done; the messages a lane held back
    wait for the retry step."""
    outcomes: list[tuple[_Send, SendResult, int]] = []
    for lane in batch.sending.wait():
        outcomes.extend((o.item, o.result, o.ms) for o in lane.outcomes)
        batch.result.defer.extend(([n.id for n in send.notices], batch.at + config.retry.base) for send in lane.held)
    return outcomes


# A sent single notice, by id (elsewhere than on PostgreSQL: an executemany of it, one round trip on psycopg).
_SENT_ONE = (
    update(_OUTBOX)
    .where(
        _OUTBOX.c.id == bindparam("oid"),
        _OUTBOX.c.status == "pending",
        _OUTBOX.c.claimed_by == bindparam("worker"),
    )
    .values(
        status="sent",
        channel=bindparam("ch"),
        sent_at=bindparam("sent"),
        provider_id=bindparam("pid"),
        lease_until=None,
        error=None,
        attempts=_OUTBOX.c.attempts + 1,
    )
)


@dataclass
class _Writes:
    """The writes of a tick that go out together: sent single notices and every delivery row, each kind
    in one statement on PostgreSQL (the rows travel as arrays, ``unnest``: the server runs one update
    and one insert instead of one a row), an executemany elsewhere."""

    worker: str
    at: datetime  # when they are recorded
    sent: list[dict[str, Any]] = field(default_factory=list)  # oid, ch, pid
    deliveries: list[dict[str, Any]] = field(default_factory=list)

    def flush(self, session: Session) -> None:
        postgres = session.get_bind().dialect.name == "postgresql"
        if self.sent:
            if postgres:
                session.execute(self._sent_at_once())
            else:
                rows = [{**row, "worker": self.worker, "sent": self.at} for row in self.sent]
                session.connection().execute(_SENT_ONE, rows)
        if self.deliveries:
            if postgres:
                session.execute(self._deliveries_at_once())
            else:
                session.connection().execute(insert(_DELIVERY), self.deliveries)

    def _deliveries_at_once(self):  # type: ignore[no-untyped-def]
        columns = list(self.deliveries[0])
        kinds = {name: _DELIVERY.c[name].type for name in columns}
        kinds["notices"] = Text()  # as JSON text: lists of several lengths are no PostgreSQL array of arrays
        rows = _unnest(kinds, [{**row, "notices": json.dumps(row["notices"])} for row in self.deliveries])
        values = [cast(rows.c.notices, JSONB) if name == "notices" else rows.c[name] for name in columns]
        return insert(_DELIVERY).from_select(columns, select(*values))

    def _sent_at_once(self):  # type: ignore[no-untyped-def]
        o = _OUTBOX.c
        rows = _unnest({"oid": o.id.type, "ch": o.channel.type, "pid": o.provider_id.type}, self.sent)
        return (
            update(_OUTBOX)
            .where(o.id == rows.c.oid, o.status == "pending", o.claimed_by == self.worker)
            .values(
                status="sent",
                channel=rows.c.ch,
                sent_at=self.at,
                provider_id=rows.c.pid,
                lease_until=None,
                error=None,
                attempts=o.attempts + 1,
            )
        )


def _unnest(columns: dict[str, Any], rows: list[dict[str, Any]]):  # type: ignore[no-untyped-def]
    """The rows as a PostgreSQL ``unnest`` of one array per column (``columns``: name -> type)."""
    arrays = (literal([row[name] for row in rows], ARRAY(kind)) for name, kind in columns.items())
    return func.unnest(*arrays).table_valued(*columns).render_derived()


def _record(
    session: Session,
    send: _Send,
    result: SendResult,
    ms: int,
    worker: str,
    at: datetime,
    config: NoticeConfig,
    writes: _Writes,
) -> str:
    """Write the attempt and move the notices on (the common writes batched in ``writes``)."""
    if result.error:  # providers echo numbers in their errors; the history and the logs show them masked
        result = replace(result, error=mask_phones(result.error))
    ids = [n.id for n in send.notices]
    channel = send.channel.name
    attempts = max(n.channel_attempts for n in send.notices) + 1 if send.notices[0].channel == channel else 1
    if result.ok:
        outcome = "sent"
        if len(ids) == 1:
            writes.sent.append({"oid": ids[0], "ch": channel, "pid": result.provider_id})
        else:
            session.execute(
                update(Outbox)
                .where(_mine(ids, worker))
                .values(
                    status="sent",
                    channel=channel,
                    sent_at=at,
                    provider_id=result.provider_id,
                    lease_until=None,
                    error=None,
                    attempts=Outbox.attempts + 1,
                    digest_key=send.message.idempotency_key,
                )
            )
    elif send.channel.kind == webhook.KIND and (result.permanent or attempts >= config.retry.max_attempts):
        outcome = "permanent" if result.permanent else "exhausted"  # one URL: nothing to fall back to
        session.execute(
            update(Outbox)
            .where(_mine(ids, worker))
            .values(
                status="failed",
                channel=channel,
                channel_attempts=attempts,
                error=f"{channel}: {result.error}",
                lease_until=None,
                attempts=Outbox.attempts + 1,
            )
        )
    elif result.permanent or attempts >= config.retry.max_attempts:
        outcome = "config" if result.config else "permanent" if result.permanent else "exhausted"
        for notice in send.notices:  # this channel is done for them: the next tick tries the next one
            session.execute(
                update(Outbox)
                .where(and_(Outbox.id == notice.id, Outbox.status == "pending", Outbox.claimed_by == worker))
                .values(
                    exhausted=sorted({*notice.exhausted, channel}),
                    channel=None,
                    channel_attempts=0,
                    error=f"{channel}: {result.error}",
                    lease_until=None,
                    next_attempt_at=at,
                    attempts=Outbox.attempts + 1,
                )
            )
    else:
        outcome = "unknown" if result.unknown else "retry"
        wait = timedelta(seconds=result.retry_after) if result.retry_after else backoff(attempts, config)
        session.execute(
            update(Outbox)
            .where(_mine(ids, worker))
            .values(
                channel=channel,
                channel_attempts=attempts,
                error=f"{channel}: {result.error}",
                lease_until=None,
                next_attempt_at=at + wait,
                attempts=Outbox.attempts + 1,
                digest_key=send.message.idempotency_key if len(ids) > 1 else None,
            )
        )
    writes.deliveries.append(
        {
            "key": send.message.idempotency_key,
            "recipient_id": send.message.recipient.id,
            "channel": channel,
            "event": send.message.event,
            "notices": ids,
            "at": at,
            "ok": result.ok,
            "outcome": outcome,
            "provider_id": result.provider_id,
            "error": result.error,
            "parts": result.parts,
            "duration_ms": ms,
        }
    )
    return outcome


def _mine(ids: list[int], worker: str):  # type: ignore[no-untyped-def]
    """The notices ``ids`` while still pending under this dispatcher's lease: only the holder records them."""
    return and_(Outbox.id.in_(ids), Outbox.status == "pending", Outbox.claimed_by == worker)


def _apply(session: Session, result: _Plan, worker: str, at: datetime) -> None:
    for ids, until in result.defer:
        session.execute(update(Outbox).where(_mine(ids, worker)).values(next_attempt_at=until, lease_until=None))
    for notice_id, reason in result.suppress:
        session.execute(
            update(Outbox).where(_mine([notice_id], worker)).values(status="suppressed", error=reason, lease_until=None)
        )
    for notice_id, reason in result.fail:
        session.execute(
            update(Outbox).where(_mine([notice_id], worker)).values(status="failed", error=reason, lease_until=None)
        )


def dispatch(
    transaction: Callable[[], Any],
    clock: Callable[[], datetime],
    worker: str,
    config: NoticeConfig,
    renderer: Renderer,
    batch: int = 200,
    lease: timedelta = DEFAULT_LEASE,
    budget: timedelta | None = None,
) -> DispatchReport:
    """Deliver what is ready, a batch of people at a time; with a ``budget``, stop taking batches
    when it is spent (the next tick carries on).

    With a channel of several messages in flight the batches overlap: while one batch's messages are on
    their way on the send workers (:mod:`notifications.sending`), this thread claims, loads and plans the
    next (its people are never those of the batch on its way, so a person's pace is read after their last
    message was recorded), then records the first. Otherwise every message goes out on this thread."""
    report = DispatchReport()
    until = clock() + budget if budget is not None else None
    with Senders(_workers(config)) as senders:
        flying: _Batch | None = None
        try:
            while True:
                if until is not None and report.claimed and clock() >= until:
                    report.more = True
                    break
                now = clock()
                busy = flying.recipients if flying is not None else frozenset()
                ids, result = _claim_and_plan(transaction, now, worker, batch, lease, busy, config, renderer, report)
                previous, flying = flying, (_start(senders, ids, now, result) if ids else None)
                if previous is not None:  # should its record fail, the one just started is still recorded below
                    _finish(transaction, clock, worker, config, previous, report)
                if len(ids) < batch:
                    break
        except BaseException as exc:
            if flying is not None:  # what went out is recorded, so it is not sent again after the lease
                try:
                    _finish(transaction, clock, worker, config, flying, report)
                except Exception as also:  # noqa: BLE001 - the first error is the one raised
                    exc.add_note(f"recording the batch on its way failed too: {also!r}")
            raise
        if flying is not None:
            _finish(transaction, clock, worker, config, flying, report)
    report.workers = senders.stats.workers
    report.connections = senders.stats.connections
    report.most_in_flight = senders.stats.most_in_flight
    return report


def _claim_and_plan(
    transaction: Callable[[], Any],
    now: datetime,
    worker: str,
    batch: int,
    lease: timedelta,
    busy: frozenset[str],
    config: NoticeConfig,
    renderer: Renderer,
    report: DispatchReport,
) -> tuple[list[int], _Plan]:
    with transaction() as session:
        ids = claim(session, now, worker, batch, lease, busy)
        demo = set(suppress_demo(session, ids)) if ids else set()
        live = [i for i in ids if i not in demo]
        notices, people = _load(session, live, now, config) if live else ([], {})
    report.claimed += len(ids)
    report.suppressed += len(demo)
    return ids, plan(notices, people, config, renderer, now) if ids else _Plan()


def _start(senders: Senders, ids: list[int], at: datetime, result: _Plan) -> _Batch:
    """The batch's messages on their way, a lane per recipient."""
    lanes = _lanes(result)
    recipients = frozenset(n.recipient_id for send in result.sends for n in send.notices)
    return _Batch(ids, at, result, senders.start(lanes, _gives_up), recipients)


def _finish(
    transaction: Callable[[], Any],
    clock: Callable[[], datetime],
    worker: str,
    config: NoticeConfig,
    flying: _Batch,
    report: DispatchReport,
) -> None:
    """Wait for the batch's sends and record them."""
    outcomes = _await_sends(flying, config)
    result = flying.result
    with transaction() as session:
        _apply(session, result, worker, clock())
        recorded_at = clock()
        writes = _Writes(worker, recorded_at)
        for send, sent, ms in outcomes:
            outcome = _record(session, send, sent, ms, worker, recorded_at, config, writes)
            report.sent += outcome == "sent"
            report.delivered += len(send.notices) if outcome == "sent" else 0
            report.digests += outcome == "sent" and len(send.notices) > 1
            if send.channel.kind == webhook.KIND and outcome in ("permanent", "exhausted"):
                report.failed.append((send.notices[0].id, f"{send.channel.name}: {sent.error}"))
            else:
                report.retried += outcome in ("retry", "unknown", "permanent", "exhausted", "config")
            if outcome == "config":
                report.misconfigured[send.channel.name] = sent.error or ""
        writes.flush(session)
    report.deferred += sum(len(ids) for ids, _ in result.defer)
    report.suppressed += len(result.suppress)
    report.failed.extend(result.fail)
