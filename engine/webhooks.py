"""Webhooks out: the events a subscriber (the county's platform) asked for, staged as outbox rows in the
transaction of the event itself, so a step never waits on HTTP and a step that rolls back sends nothing.
The dispatcher (:mod:`notifications.dispatch`) sends them, signed, through
:mod:`notifications.channels.webhook`.

One row per event and subscription: ``recipient_id`` ``webhook:<subscription id>``, role ``webhook``,
``template`` the event name, ``params`` the JSON payload (the case's code, state, version, trigger and
times; no description, no form fields, no phone or ID numbers), ``urgent`` (quiet hours and digests never
hold them), ``dedupe_key`` ``webhook:<id>:<event>:<key>`` (a second staging of the same event is refused by
the unique key).

The hot path stays as it was when nobody subscribes: the active subscriptions are cached in memory under
the org-chart token (``org_meta.token``), which every step reads already in its first statement, and every
change of a subscription writes a new token (:func:`changed`). So a step asks the database nothing more,
with or without subscribers; the first step after a change reads the table once (a few rows). Without a
token (a posting), the subscriptions are read once per transaction.

Time is passed in (``at``); this module never reads the clock.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from engine import scope
from engine.errors import InputError
from engine.store.models import OrgMeta, Outbox, WebhookSubscription
from engine.text import text_problem

if TYPE_CHECKING:
    from engine.store.case_repo import CaseRecord, EventRecord
    from engine.store.models import Publication

EVENTS: dict[str, str] = {
    "case.reported": "a case was reported (上报)",
    "case.stepped": "a case took a step of its workflow (流转): assigned, resolved, closed …",
    "sla.breach": "a time limit ran out (超时)",
    "sla.escalation": "an overdue case was escalated (升级: 黄牌, 红牌, 督办)",
    "posting.published": "a quarterly or annual posting was published (季公示, 年总结)",
}
PREFIX = "webhook:"  # recipient_id of a webhook notice: webhook:<subscription id>
ROLE = "webhook"
TIMER_EVENTS = {"breach": "sla.breach", "escalation": "sla.escalation"}  # reminders are not sent out
MAX_URL = 500
MAX_NAME = 100


@dataclass(frozen=True)
class Subscriber:
    id: int
    events: frozenset[str]


# -- which subscriptions are active -------------------------------------------------------------


class _Cache:
    """The active subscriptions by org token (tokens are random, so databases never collide)."""

    def __init__(self, size: int = 8):
        self._items: OrderedDict[str, tuple[Subscriber, ...]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, token: str) -> tuple[Subscriber, ...] | None:
        with self._lock:
            found = self._items.get(token)
            if found is not None:
                self._items.move_to_end(token)
            return found

    def put(self, token: str, subscribers: tuple[Subscriber, ...]) -> None:
        with self._lock:
            self._items[token] = subscribers
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


CACHE = _Cache()
_SESSION_KEY = "gridflow.webhooks"
_ACTIVE = select(WebhookSubscription.id, WebhookSubscription.events).where(WebhookSubscription.active.is_(True))


def active(session: Session, token: str | None = None) -> tuple[Subscriber, ...]:
    """The active subscriptions: from memory under ``token`` (the org token the caller's transaction read),
    else read once per transaction.

    Read after the token in the same transaction, the rows are never older than the token, so keeping them
    under it is safe: a change after the token was read writes a new token, which the next step sees."""
    if token is not None:
        found = CACHE.get(token)
        if found is not None:
            return found
    transaction = session.get_transaction()
    kept = session.info.get(_SESSION_KEY)
    if kept is not None and kept[0] is transaction:
        subscribers: tuple[Subscriber, ...] = kept[1]
    else:
        subscribers = tuple(Subscriber(int(i), frozenset(events or ())) for i, events in session.execute(_ACTIVE))
        session.info[_SESSION_KEY] = (transaction, subscribers)
    if token is not None:
        CACHE.put(token, subscribers)
    return subscribers


def changed(session: Session) -> None:
    """A subscription was added, changed or removed: a new org token, so every process reads them again
    at its next step (and reloads its copy of the org chart, once)."""
    session.execute(update(OrgMeta).where(OrgMeta.id == 1).values(token=uuid.uuid4().hex))
    session.info.pop(_SESSION_KEY, None)
    scope.forget(session)


# -- staging -------------------------------------------------------------------------------------


def rows(
    session: Session,
    event: str,
    payload: dict[str, Any],
    at: datetime,
    *,
    key: str,
    case_id: int | None = None,
    token: str | None = None,
) -> list[dict[str, Any]]:
    """One pending outbox row per active subscription that wants ``event``; unique per event ``key``."""
    assert event in EVENTS, event
    wanted = [s.id for s in active(session, token) if event in s.events]
    if not wanted:
        return []
    return [
        {
            "case_id": case_id,
            "recipient_id": f"{PREFIX}{sid}",
            "role": ROLE,
            "template": event,
            "params": payload,
            "urgent": True,
            "status": "pending",
            "attempts": 0,
            "channel_attempts": 0,
            "next_attempt_at": at,
            "created_at": at,
            "dedupe_key": f"{PREFIX}{sid}:{event}:{key}"[:150],
        }
        for sid in wanted
    ]


def stage(
    session: Session,
    event: str,
    payload: dict[str, Any],
    at: datetime,
    *,
    key: str,
    case_id: int | None = None,
    token: str | None = None,
) -> int:
    """Stage ``event`` for its subscribers in the caller's transaction; how many rows."""
    staged = rows(session, event, payload, at, key=key, case_id=case_id, token=token)
    if staged:
        session.execute(insert(Outbox.__table__), staged)
    return len(staged)


def step(session: Session, token: str | None, case: CaseRecord, event: EventRecord, at: datetime) -> int:
    """A report (``case.reported``) or a step (``case.stepped``) of a case, for its subscribers."""
    name = "case.reported" if event.from_state is None else "case.stepped"
    wanted = [s for s in active(session, token) if name in s.events]
    if not wanted:  # the common case: nobody listens, nothing is built
        return 0
    payload = case_payload(case, event.trigger, at)
    payload.update({"from_state": event.from_state, "to_state": event.to_state, "actor": event.actor_id})
    if event.received_at is not None:
        payload["received_at"] = _iso(event.received_at)
    return stage(session, name, payload, at, key=f"{case.id}:{event.seq}", case_id=case.id, token=token)


def timer_rows(
    session: Session, token: str | None, kind: str, timer_id: int, case: CaseRecord, extra: dict[str, Any], at: datetime
) -> list[dict[str, Any]]:
    """The rows of a fired breach (``sla.breach``) or escalation (``sla.escalation``) timer, to go out with
    the sweep's other outbox rows; none for reminders."""
    name = TIMER_EVENTS.get(kind)
    if name is None or not any(name in s.events for s in active(session, token)):
        return []
    payload = case_payload(case, name, at)
    payload.update({k: extra.get(k) for k in ("clock", "state", "due_at", "level", "mark", "limit") if k in extra})
    return rows(session, name, payload, at, key=f"timer:{timer_id}", case_id=case.id, token=token)


def posting(session: Session, pub: Publication, doc: dict[str, Any], url: str, at: datetime) -> int:
    """A posting version published (``posting.published``): its period, version, hash and link."""
    payload: dict[str, Any] = {
        "kind": pub.kind,
        "period": pub.period,
        "version": pub.version,
        "at": _iso(at),
        "published_at": _iso(pub.published_at),
        "objection_until": _iso(pub.objection_until),
        "content_hash": pub.content_hash,
        "url": url or None,
        "changes": len(pub.changes or []),
    }
    if doc.get("watermark"):
        payload["demo"] = True  # a posting of demo figures: never sent (notifications.dispatch.suppress_demo)
    return stage(session, "posting.published", payload, at, key=f"{pub.kind}:{pub.period}:v{pub.version}")


def case_payload(case: CaseRecord, trigger: str, at: datetime) -> dict[str, Any]:
    """What the county needs of a case: no description, no form fields, phone and ID numbers masked."""
    return {
        "case": case.code,
        "trigger": trigger,
        "at": _iso(at),
        "status": case.status,
        "version": case.version,
        "workflow": case.workflow_name,
        "workflow_version": case.workflow_version,
        "grid": case.grid_id,
        "category": case.category,
        "priority": case.priority,
        "title": mask_numbers(case.title or ""),
        "source": case.source_channel,
        "assignee": case.assignee_id,
        "overdue": bool(case.overdue),
        "escalation_level": case.escalation_level,
        "mark": case.mark,
        "reported_at": _iso(case.reported_at),
        "closed_at": _iso(case.closed_at),
    }


_MOBILE = re.compile(r"(?<!\d)(\+?86)?(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{6}(?:\d{9}|\d{11}[\dXx])(?![0-9A-Za-z])")  # 15 or 18 characters


def mask_numbers(text: str) -> str:
    """Mainland mobile numbers (138****0001) and resident ID numbers (all but the first six) masked."""
    text = _ID_NUMBER.sub(lambda m: m.group(0)[:6] + "*" * (len(m.group(0)) - 6), text)
    return _MOBILE.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}****{m.group(3)}", text)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


# -- rules for a subscription ---------------------------------------------------------------------


def check_subscription(name: str, url: str, events: list[str]) -> tuple[str, str, list[str]]:
    """The name, URL and events cleaned, or an :class:`InputError` naming every problem."""
    problems: list[str] = []
    bad = text_problem(name or "", "the name", len(name or ""))
    name = (name or "").strip()
    if bad:
        problems.append(bad)
    elif not name:
        problems.append("a name is required (who receives them, e.g. 通江县综治平台)")
    elif len(name) > MAX_NAME:
        problems.append(f"the name is {len(name)} characters long; at most {MAX_NAME}")
    url = (url or "").strip()
    problems += url_problems(url)
    chosen: list[str] = []
    if not events:
        problems.append(f"name at least one event with --event; events are: {', '.join(EVENTS)}")
    for event in events:
        event = event.strip()
        if event not in EVENTS:
            problems.append(f"unknown event {event!r}; events are: {', '.join(EVENTS)}")
        elif event not in chosen:
            chosen.append(event)
    if problems:
        raise InputError("; ".join(problems))
    return name, url, chosen


def url_problems(url: str) -> list[str]:
    """Why ``url`` cannot receive webhooks: http(s) with a host, no user or password in it, no #fragment."""
    if not url:
        return ["a URL is required, e.g. https://platform.example.gov.cn/hooks/gridflow"]
    if len(url) > MAX_URL:
        return [f"the URL is {len(url)} characters long; at most {MAX_URL}"]
    if any(c.isspace() for c in url) or not url.isprintable():
        return ["the URL contains spaces or control characters"]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError as exc:
        return [f"{url!r} is not a URL: {exc}"]
    if parts.scheme not in ("http", "https"):
        return [f"the URL must start with https:// or http:// (got {parts.scheme + ':' if parts.scheme else 'none'})"]
    problems = []
    if parts.username is not None or parts.password is not None:
        problems.append("the URL must not carry a user name or password (user:pass@): each delivery is signed instead")
    if not parts.hostname:
        problems.append("the URL has no host")
    if parts.fragment:
        problems.append("the URL must not have a #fragment")
    return problems
