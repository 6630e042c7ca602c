"""The outbox dispatcher: claim pending notices, render them, send them, record the outcome.

Three short transactions per batch, so no row lock is held while a channel talks to the
outside: **claim** (pending rows whose ``next_attempt_at`` has come, stamped with this
dispatcher's id and a lease; ``SKIP LOCKED`` on PostgreSQL), **send** (outside any
transaction), **record** (``sent`` only where the row is still ours and pending). A
dispatcher that dies between send and record leaves the lease to run out and the notice is
sent again: delivery is at least once; the provider-side idempotency keys of the
notifications issue make it once at the person's phone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from engine.store.models import Case, Outbox, Person
from engine.timeutil import require_aware
from notifications.notice import Notice
from notifications.render import Renderer

DEFAULT_LEASE = timedelta(minutes=2)
RETRY_AFTER = timedelta(minutes=1)


class Channel(Protocol):
    name: str

    def send(self, notice: Notice) -> str: ...


@dataclass
class DispatchReport:
    claimed: int = 0
    sent: list[Notice] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    more: bool = False  # stopped at its time budget with notices left for the next tick


def _ready(at: datetime):  # type: ignore[no-untyped-def]
    return and_(
        Outbox.status == "pending",
        Outbox.next_attempt_at <= at,
        or_(Outbox.lease_until.is_(None), Outbox.lease_until < at),
    )


def claim(session: Session, at: datetime, worker: str, batch: int, lease: timedelta = DEFAULT_LEASE) -> list[int]:
    at = require_aware(at)
    stamp = {"claimed_by": worker, "lease_until": at + lease, "attempts": Outbox.attempts + 1}
    candidates = select(Outbox.id).where(_ready(at)).order_by(Outbox.next_attempt_at, Outbox.id).limit(batch)
    if session.get_bind().dialect.name == "postgresql":
        stmt = (
            update(Outbox)
            .where(Outbox.id.in_(candidates.with_for_update(skip_locked=True).scalar_subquery()))
            .values(stamp)
            .returning(Outbox.id)
        )
        return sorted(session.execute(stmt, execution_options={"synchronize_session": False}).scalars())
    ids = list(session.scalars(candidates))
    if not ids:
        return []
    session.execute(update(Outbox).where(Outbox.id.in_(ids), _ready(at)).values(stamp))  # one writer: all ours
    return ids


def load(session: Session, ids: list[int], renderer: Renderer) -> tuple[list[Notice], list[tuple[int, str]]]:
    """Render the claimed notices; a template that cannot render is a failure of that notice alone."""
    rows = session.execute(
        select(Outbox, Person.name, Case.code)
        .join(Person, Person.id == Outbox.recipient_id, isouter=True)
        .join(Case, Case.id == Outbox.case_id, isouter=True)
        .where(Outbox.id.in_(ids))
        .order_by(Outbox.id)
    ).all()
    notices, broken = [], []
    for outbox, name, code in rows:
        who = name or outbox.recipient_id
        try:
            text = renderer.render(outbox.template, dict(outbox.params), who)
        except Exception as exc:  # noqa: BLE001 - a template error fails this notice, not the batch
            broken.append((outbox.id, f"render {outbox.template}: {exc.__class__.__name__}: {exc}"))
            continue
        notices.append(Notice(outbox.id, outbox.dedupe_key, outbox.recipient_id, who, code, outbox.template, text))
    return notices, broken


def record_sent(session: Session, sent: list[tuple[Notice, str]], channel: str, worker: str, at: datetime) -> None:
    for notice, provider_id in sent:
        session.execute(
            update(Outbox)
            .where(Outbox.id == notice.id, Outbox.status == "pending", Outbox.claimed_by == worker)
            .values(status="sent", channel=channel, sent_at=at, provider_id=provider_id, lease_until=None)
        )


def record_failed(session: Session, failed: list[tuple[int, str]], worker: str) -> None:
    for notice_id, error in failed:
        session.execute(
            update(Outbox)
            .where(Outbox.id == notice_id, Outbox.status == "pending", Outbox.claimed_by == worker)
            .values(status="failed", error=error[:2000], lease_until=None)
        )


def record_retry(session: Session, retry: list[tuple[int, str]], worker: str, next_attempt_at: datetime) -> None:
    for notice_id, error in retry:
        session.execute(
            update(Outbox)
            .where(Outbox.id == notice_id, Outbox.status == "pending", Outbox.claimed_by == worker)
            .values(error=error[:2000], next_attempt_at=next_attempt_at, lease_until=None)
        )


def _send_all(channel: Channel, notices: list[Notice]) -> tuple[list[tuple[Notice, str]], list[tuple[int, str]]]:
    sent, retry = [], []
    for notice in notices:
        try:
            sent.append((notice, channel.send(notice)))
        except Exception as exc:  # noqa: BLE001 - one notice's failure is recorded; the rest go on
            retry.append((notice.id, f"{channel.name}: {exc.__class__.__name__}: {exc}"))
    return sent, retry


def dispatch(
    transaction: Callable[[], Any],
    clock: Callable[[], datetime],
    worker: str,
    channel: Channel,
    renderer: Renderer,
    batch: int = 200,
    lease: timedelta = DEFAULT_LEASE,
    budget: timedelta | None = None,
) -> DispatchReport:
    """Deliver every notice that is ready, a batch at a time; with a ``budget``, stop taking
    batches when it is spent (the next tick carries on)."""
    report = DispatchReport()
    until = clock() + budget if budget is not None else None
    while True:
        if until is not None and report.claimed and clock() >= until:
            report.more = True
            return report
        with transaction() as session:
            ids = claim(session, clock(), worker, batch, lease)
            notices, broken = load(session, ids, renderer) if ids else ([], [])
        report.claimed += len(ids)
        sent, retry = _send_all(channel, notices)
        with transaction() as session:
            record_sent(session, sent, channel.name, worker, clock())
            record_failed(session, broken, worker)
            record_retry(session, retry, worker, clock() + RETRY_AFTER)
        report.sent.extend(n for n, _ in sent)
        report.failed.extend(broken)
        if len(ids) < batch:
            return report
