"""Use cases: webhook subscriptions (the county's platform registers a URL and the events it wants).

A subscription is a row of ``webhook_subscription``; its signing secret (``whsec_…``, Standard Webhooks)
is shown once, when it is added. Its events are staged by the engine in the transaction of each event
(:mod:`engine.webhooks`) and sent, signed, by the dispatcher; every attempt is a ``delivery`` row. A
removed subscription is deactivated, not deleted: its history stays, its pending deliveries are dropped.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update

from engine import webhooks
from engine.errors import NotFound
from engine.store.models import Delivery, Outbox, WebhookSubscription
from gridflow import present
from gridflow.app.base import Base


class WebhookNotFound(NotFound):
    """No webhook subscription with that id."""


def _subscription_dict(sub: WebhookSubscription, counts: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "id": sub.id,
        "name": sub.name,
        "url": sub.url,
        "events": list(sub.events or []),
        "active": sub.active,
        "created_at": present.iso(sub.created_at),
        "deliveries": counts or {},
    }


class WebhookUseCases(Base):
    """Webhook subscriptions: add (the secret shown once), list, remove, their deliveries."""

    def webhook_events(self) -> dict[str, str]:
        """The events one can subscribe to, with what each means."""
        return dict(webhooks.EVENTS)

    def add_subscription(self, name: str, url: str, events: list[str]) -> dict[str, Any]:
        """Subscribe ``url`` to ``events``; the answer carries the signing secret, which is never shown again."""
        from notifications.channels.webhook import new_secret

        name, url, events = webhooks.check_subscription(name, url, list(events))
        secret = new_secret()
        with self.transaction() as session:
            sub = WebhookSubscription(
                name=name, url=url, secret=secret, events=events, active=True, created_at=self.clock()
            )
            session.add(sub)
            session.flush()
            webhooks.changed(session)
            made = _subscription_dict(sub)
        made["secret"] = secret
        return made

    def list_subscriptions(self, *, include_removed: bool = False) -> list[dict[str, Any]]:
        """The subscriptions (never their secret), with their notices counted by status."""
        stmt = select(WebhookSubscription).order_by(WebhookSubscription.id)
        if not include_removed:
            stmt = stmt.where(WebhookSubscription.active.is_(True))
        with self.transaction(write=False) as session:
            subs = list(session.scalars(stmt))
            counts: dict[str, dict[str, int]] = {}
            if subs:
                recipients = [f"{webhooks.PREFIX}{s.id}" for s in subs]
                rows = session.execute(
                    select(Outbox.recipient_id, Outbox.status, func.count())
                    .where(Outbox.recipient_id.in_(recipients))
                    .group_by(Outbox.recipient_id, Outbox.status)
                )
                for rid, status, n in rows:
                    counts.setdefault(rid, {})[status] = int(n)
            return [_subscription_dict(s, counts.get(f"{webhooks.PREFIX}{s.id}")) for s in subs]

    def remove_subscription(self, subscription_id: int) -> dict[str, Any]:
        """Stop sending to a subscription at once: it is deactivated (its history stays) and what is still
        pending for it is dropped (``suppressed``)."""
        with self.transaction() as session:
            sub = self._subscription(session, subscription_id)
            dropped = 0
            if sub.active:
                sub.active = False
                dropped = session.execute(
                    update(Outbox)
                    .where(Outbox.recipient_id == f"{webhooks.PREFIX}{sub.id}", Outbox.status == "pending")
                    .values(status="suppressed", error="the webhook subscription was removed", lease_until=None)
                ).rowcount  # type: ignore[attr-defined]
                webhooks.changed(session)
            return {**_subscription_dict(sub), "dropped": int(dropped or 0)}

    def subscription_deliveries(self, subscription_id: int, *, limit: int = 50) -> dict[str, Any]:
        """A subscription's delivery attempts, newest first: when, which event, its ``webhook-id``, the
        outcome and the error, and where the notice stands now."""
        with self.transaction(write=False) as session:
            sub = self._subscription(session, subscription_id)
            recipient = f"{webhooks.PREFIX}{sub.id}"
            attempts = list(
                session.scalars(
                    select(Delivery)
                    .where(Delivery.recipient_id == recipient)
                    .order_by(Delivery.at.desc(), Delivery.id.desc())
                    .limit(max(1, limit))
                )
            )
            keys = sorted({d.key for d in attempts})
            notices = (
                {o.dedupe_key: o for o in session.scalars(select(Outbox).where(Outbox.dedupe_key.in_(keys)))}
                if keys
                else {}
            )
            counts = dict(
                session.execute(
                    select(Outbox.status, func.count()).where(Outbox.recipient_id == recipient).group_by(Outbox.status)
                ).all()
            )
            rows = [
                {
                    "at": present.iso(d.at),
                    "event": d.event,
                    "webhook_id": d.key,
                    "outcome": d.outcome,
                    "ok": d.ok,
                    "error": d.error,
                    "ms": d.duration_ms,
                    "notice": notices[d.key].id if d.key in notices else None,
                    "status": notices[d.key].status if d.key in notices else None,
                }
                for d in attempts
            ]
            return {
                "subscription": _subscription_dict(sub, {k: int(v) for k, v in counts.items()}),
                "deliveries": rows,
            }

    def _subscription(self, session: Any, subscription_id: int) -> WebhookSubscription:
        sub = session.get(WebhookSubscription, subscription_id)
        if sub is None:
            raise WebhookNotFound(
                f"no webhook subscription {subscription_id}; `gridflow webhook list --all` shows them"
            )
        return sub
