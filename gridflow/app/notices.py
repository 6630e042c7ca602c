"""Use cases: notices: list, show, retry, preview, dispatch.

Each takes plain values (ids, statuses, person ids, event names) and returns the dicts that
``gridflow notices … --json`` prints (times as ISO strings), or a frozen dataclass holding such a dict
with the warning a table prints beside it. Why a pending notice waits is the dispatcher's own rule
(:func:`notifications.dispatch.why_waiting`), never a copy of it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.errors import CommandRejected, ConfigError, InputError, NotFound
from engine.store.models import Case, Delivery, Outbox, Person
from gridflow import present
from gridflow.app.base import Base
from gridflow.lazy import lazy_module

if TYPE_CHECKING:
    from notifications.config import NoticeConfig
    from notifications.render import Renderer

rules = lazy_module("notifications.dispatch")  # the dispatcher's rules, loaded by the use cases that need them

STATUSES = ("pending", "sent", "failed", "suppressed")
PREVIEW_CHANNELS = ("text", "sms", "email", "wecom")  # what `notices preview --channel` takes, besides all
DISPATCH_COUNTS = ("claimed", "messages", "delivered", "digests", "deferred", "retrying", "failed", "suppressed")


class NoticeNotFound(NotFound):
    pass


@cache
def hold_labels() -> dict[str, str]:
    """Why a pending notice waits, by the dispatcher's reasons; {until} is a local time."""
    return {
        rules.QUIET: "免打扰至 {until} quiet hours",
        rules.DIGEST: "汇总窗口至 {until} digest window",
        rules.HOURLY_CAP: "每小时上限至 {until} hourly cap",
        rules.RETRY: "重试于 {until} retry",
        rules.DEFERRED: "推迟至 {until} deferred",
        rules.SENDING: "发送中至 {until} sending",
    }


@dataclass(frozen=True)
class NoticeList:
    """``data`` is what ``notices list --json`` prints (notices newest first, counts by status, channels
    misconfigured in the last 24 h); ``warning`` says why no waiting reason is shown, if so."""

    data: dict[str, Any]
    warning: str = ""


@dataclass(frozen=True)
class NoticeView:
    """``data`` is what ``notices show --json`` prints: the notice, its params and its delivery attempts
    (``history``); ``warning`` as in :class:`NoticeList`."""

    data: dict[str, Any]
    warning: str = ""


class _Waits:
    """Why pending notices wait, by the dispatcher's own rules (:func:`notifications.dispatch.why_waiting`)."""

    def __init__(self, app: NoticeUseCases, session: Session, pending: list[Outbox], at: datetime):
        self.tz, self.at = app.tz, at
        self.config, self.problem = app._notice_config_or_problem() if pending else (None, "")
        recipients = sorted({o.recipient_id for o in pending})
        self.paces = rules.paces(session, recipients, at, self.config) if self.config else {}

    def hold(self, outbox: Outbox) -> Any:
        if self.config is None:
            return None
        return rules.why_waiting(
            outbox, self.paces.get(outbox.recipient_id, rules.Pace()), self.config, self.tz, self.at
        )

    def text(self, hold: Any) -> str:
        if hold is None:
            return ""
        return hold_labels()[hold.reason].format(until=present.local_short(hold.until, self.tz, self.at))


def _notice_dict(outbox: Outbox, code: str | None, name: str | None, waits: _Waits) -> dict[str, Any]:
    hold = waits.hold(outbox)
    return {
        "id": outbox.id,
        "status": outbox.status,
        "event": outbox.template,
        "to": outbox.recipient_id,
        "name": name,
        "case": code,
        "urgent": outbox.urgent,
        "attempts": outbox.attempts,
        "channel": outbox.channel,
        "exhausted": outbox.exhausted or [],
        "next_attempt_at": present.iso(outbox.next_attempt_at),
        "sent_at": present.iso(outbox.sent_at),
        "digest": outbox.digest_key,
        "error": outbox.error,
        "created_at": present.iso(outbox.created_at),
        "hold": {"reason": hold.reason, "until": present.iso(hold.until)} if hold else None,
        "note": waits.text(hold),
        "role": outbox.role,
        # the centre told in place of roles nobody holds for the case's grid (engine.notices.rung_recipients)
        "instead_of": list((outbox.params or {}).get("instead_of") or []) if outbox.role == "center" else [],
    }


def _delivery_dict(d: Delivery) -> dict[str, Any]:
    return {
        "at": present.iso(d.at),
        "channel": d.channel,
        "outcome": d.outcome,
        "provider_id": d.provider_id,
        "error": d.error,
        "notices_in_message": len(d.notices or []),
        "parts": d.parts,
        "ms": d.duration_ms,
    }


def _with_names(person: Any):  # type: ignore[no-untyped-def]
    """Outbox rows with their case's code and their recipient (``person``: the row or a column of it);
    a notice may have neither."""
    return (
        select(Outbox, Case.code, person)
        .join(Case, Case.id == Outbox.case_id, isouter=True)
        .join(Person, Person.id == Outbox.recipient_id, isouter=True)
    )


class NoticeUseCases(Base):
    """Notices: list, show, retry, preview, dispatch."""

    @cached_property
    def notice_config(self) -> NoticeConfig:
        """Channels and rules: ``settings.notifications_file`` if it exists, else the console alone; read once."""
        from notifications.config import default_config
        from notifications.config import load as load_notice_config

        path = self.settings.notifications_path
        if path is None:
            return default_config(self.settings.notices_path)
        return load_notice_config(path, self.settings.notices_path)

    @cached_property
    def notice_renderer(self) -> Renderer:
        """The templates the dispatcher renders with: the configured override directory, then the built-in."""
        from notifications.render import Renderer

        return Renderer(self.tz, override=self.notice_config.templates)

    def notice_channels(self) -> dict[str, Any]:
        """The channels notices go out on, in order of preference, and where that was configured."""
        config = self.notice_config
        return {"order": list(config.order), "source": config.source}

    def _notice_config_or_problem(self) -> tuple[NoticeConfig | None, str]:
        """The dispatcher's settings, or why they cannot be read (then no reasons are shown, and that is said)."""
        try:
            return self.notice_config, ""
        except ConfigError as exc:
            first = str(exc).splitlines()[0]
            return None, f"why pending notices wait is not shown: the notifications settings have problems ({first})"

    def list_notices(self, *, status: str | None = None, to: str | None = None, limit: int = 50) -> NoticeList:
        """Notices newest first (of one status, to one person), why each pending one waits, counts by status."""
        if status is not None and status not in STATUSES:
            raise InputError(f"unknown status {status!r}; statuses are: {', '.join(STATUSES)}")
        stmt = _with_names(Person.name).order_by(Outbox.id.desc()).limit(limit)
        if status:
            stmt = stmt.where(Outbox.status == status)
        if to:
            stmt = stmt.where(Outbox.recipient_id == to)
        now = self.clock()
        with self.transaction(write=False) as session:
            found = session.execute(stmt).all()
            waits = _Waits(self, session, [o for o, _, _ in found if o.status == "pending"], now)
            rows = [_notice_dict(o, code, name, waits) for o, code, name in found]
            counts = dict(session.execute(select(Outbox.status, func.count()).group_by(Outbox.status)).all())
            broken = {
                d.channel: d.error
                for d in session.scalars(
                    select(Delivery)
                    .where(Delivery.outcome == "config", Delivery.at > now - timedelta(days=1))
                    .order_by(Delivery.at)
                )
            }
        return NoticeList({"notices": rows, "counts": counts, "misconfigured": broken}, waits.problem)

    def show_notice(self, notice_id: int) -> NoticeView:
        """One notice, the recipient's phone masked, its params and every delivery attempt of it (or its digest)."""
        from notifications.channels.base import mask_phone

        now = self.clock()
        with self.transaction(write=False) as session:
            found = session.execute(_with_names(Person).where(Outbox.id == notice_id)).first()
            if found is None:
                raise NoticeNotFound(f"no notice {notice_id}; `gridflow notices list` shows them")
            outbox, code, person = found
            keys = [outbox.dedupe_key] + ([outbox.digest_key] if outbox.digest_key else [])
            attempts = session.scalars(
                select(Delivery).where(Delivery.key.in_(keys)).order_by(Delivery.at, Delivery.id)
            )
            waits = _Waits(self, session, [outbox] if outbox.status == "pending" else [], now)
            data = _notice_dict(outbox, code, person.name if person else None, waits)
            data["phone"] = mask_phone(person.phone if person else None)
            data["params"] = outbox.params
            data["history"] = [_delivery_dict(d) for d in attempts]
        return NoticeView(data, waits.problem)

    def retry_notice(self, notice_id: int) -> dict[str, int]:
        """Send a failed notice again: back to pending now, every channel available again."""
        now = self.clock()
        with self.transaction() as session:
            status = session.scalar(select(Outbox.status).where(Outbox.id == notice_id))
            if status is None:
                raise NoticeNotFound(f"no notice {notice_id}; `gridflow notices list --status failed` shows them")
            if status != "failed":
                raise CommandRejected(f"notice {notice_id} is {status}, not failed: only failed notices are retried")
            return {"queued": rules.requeue_failed(session, now, notice_id)}

    def retry_failed_notices(self) -> dict[str, int]:
        """Send every failed notice again (see :meth:`retry_notice`)."""
        now = self.clock()
        with self.transaction() as session:
            return {"queued": rules.requeue_failed(session, now)}

    def notice_events(self) -> list[str]:
        """The events that have notice templates (the override directory's and the built-in), sorted."""
        return self.notice_renderer.events()

    def notice_template_problems(self) -> list[str]:
        """Why an override template cannot be used (too large, does not compile), one line each; [] if none.

        A bad override fails only the notices that use it: the dispatcher goes on with the others."""
        from engine.sandbox import TemplateRefused

        try:
            self.notice_renderer.check_overrides()
        except TemplateRefused as exc:
            return [str(exc)]
        return []

    def preview_notice(self, event: str, channel: str = "all") -> dict[str, Any]:
        """An event's notice rendered with sample values, as each channel (or one of them) would send it."""
        from notifications.channels.base import sms_parts
        from notifications.samples import SAMPLE_NAME, SAMPLES

        renderer = self.notice_renderer  # the override directory first, as the dispatcher renders
        events = renderer.events()
        if event not in events:
            close = difflib.get_close_matches(event, events, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise NotFound(f"no notice templates for event {event!r}; {hint}events are: {', '.join(events)}")
        if channel != "all" and channel not in PREVIEW_CHANNELS:
            raise InputError(f"unknown channel {channel!r}; use one of: {', '.join(PREVIEW_CHANNELS)}, all")
        rendered = renderer.render(event, SAMPLES.get(event, {}), SAMPLE_NAME)
        parts = {
            "text": {"text": rendered.text},
            "sms": {"text": rendered.sms, "chars": len(rendered.sms), "parts": sms_parts(rendered.sms)},
            "email": {"subject": rendered.subject, "text": rendered.text, "html": rendered.html},
            "wecom": {"markdown": rendered.markdown},
        }
        shown = PREVIEW_CHANNELS if channel == "all" else (channel,)
        return {"event": event, "recipient": SAMPLE_NAME, "channels": {name: parts[name] for name in shown}}

    def dispatch_notices(
        self, *, batch: int | None = None, lease: timedelta | None = None, budget: timedelta | None = None
    ) -> dict[str, Any]:
        """Deliver what is ready now, once (what the runtime does every few seconds): how many of each outcome,
        the channels that answered they are misconfigured, and the notices that failed for good."""
        from notifications.dispatch import dispatch

        limits: dict[str, Any] = {"budget": budget}
        if batch is not None:
            limits["batch"] = batch
        if lease is not None:
            limits["lease"] = lease
        report = dispatch(
            self.transaction, self.clock, self.worker_id, self.notice_config, self.notice_renderer, **limits
        )
        return {
            "claimed": report.claimed,
            "messages": report.sent,
            "delivered": report.delivered,
            "digests": report.digests,
            "deferred": report.deferred,
            "retrying": report.retried,
            "failed": len(report.failed),
            "suppressed": report.suppressed,
            "misconfigured": dict(report.misconfigured),
            "failures": [{"id": notice_id, "error": error} for notice_id, error in report.failed],
        }
