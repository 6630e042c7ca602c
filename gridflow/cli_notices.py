"""CLI commands of the notices: ``notices list|show|retry|preview``. Registered by :mod:`gridflow.cli`."""

from __future__ import annotations

import difflib
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import func, select, update

from engine.errors import CommandRejected, InputError, NotFound
from engine.store.models import Case, Delivery, Outbox, Person
from gridflow import views
from gridflow.cli import _emit_json, _gridflow, app, handled, out
from notifications.channels.base import mask_phone

notices_app = typer.Typer(
    help="通知 notices: what was sent to whom, failures, retries, previews.", no_args_is_help=True
)
app.add_typer(notices_app, name="notices")

STATUSES = ("pending", "sent", "failed", "suppressed")
STATUS_LABELS = {"pending": "待发送", "sent": "已发送", "failed": "失败", "suppressed": "不发送"}
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


class NoticeNotFound(NotFound):
    pass


def _row(outbox: Outbox, code: str | None, name: str | None, tz: Any) -> dict[str, Any]:
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
        "next_attempt_at": views.iso(outbox.next_attempt_at),
        "sent_at": views.iso(outbox.sent_at),
        "digest": outbox.digest_key,
        "error": outbox.error,
        "created_at": views.iso(outbox.created_at),
    }


@notices_app.command("list")
def notices_list(
    status: Annotated[str | None, typer.Option("--status", help=f"One of {', '.join(STATUSES)}.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Only this person (id).")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Notices, newest first, with their status; `--status failed` lists what needs a look."""
    with handled():
        if status is not None and status not in STATUSES:
            raise InputError(f"unknown status {status!r}; statuses are: {', '.join(STATUSES)}")
        gf = _gridflow()
        stmt = (
            select(Outbox, Case.code, Person.name)
            .join(Case, Case.id == Outbox.case_id, isouter=True)
            .join(Person, Person.id == Outbox.recipient_id, isouter=True)
            .order_by(Outbox.id.desc())
            .limit(limit)
        )
        if status:
            stmt = stmt.where(Outbox.status == status)
        if to:
            stmt = stmt.where(Outbox.recipient_id == to)
        with gf.transaction(write=False) as session:
            rows = [_row(o, code, name, gf.tz) for o, code, name in session.execute(stmt)]
            counts = dict(session.execute(select(Outbox.status, func.count()).group_by(Outbox.status)).all())
            broken = {
                d.channel: d.error
                for d in session.scalars(
                    select(Delivery)
                    .where(Delivery.outcome == "config", Delivery.at > gf.clock() - timedelta(days=1))
                    .order_by(Delivery.at)
                )
            }
        if as_json:
            _emit_json({"notices": rows, "counts": counts, "misconfigured": broken})
            return
        table = Table(
            "编号 id", "状态 status", "事件 event", "接收人 to", "案件 case", "渠道 channel", "次数", "说明 note"
        )
        for r in rows:
            note = r["error"] or (f"digest {r['digest']}" if r["digest"] else "")
            table.add_row(
                str(r["id"]),
                f"{STATUS_LABELS[r['status']]} {r['status']}",
                r["event"],
                f"{r['name'] or ''} {r['to']}",
                r["case"] or "—",
                r["channel"] or "—",
                str(r["attempts"]),
                escape((note or "")[:60]),
            )
        out.print(table)
        out.print("  ".join(f"{s} {counts.get(s, 0)}" for s in STATUSES), markup=False)
        for channel, error in broken.items():
            out.print(f"[bold red]channel {escape(channel)} is misconfigured[/] (last 24 h): {escape(error or '')}")


@notices_app.command("show")
def notices_show(notice: Annotated[int, typer.Argument(help="Notice id.")], as_json: JsonOpt = False) -> None:
    """One notice and its whole history: every delivery attempt, channel, outcome and error."""
    with handled():
        gf = _gridflow()
        with gf.transaction(write=False) as session:
            found = session.execute(
                select(Outbox, Case.code, Person)
                .join(Case, Case.id == Outbox.case_id, isouter=True)
                .join(Person, Person.id == Outbox.recipient_id, isouter=True)
                .where(Outbox.id == notice)
            ).first()
            if found is None:
                raise NoticeNotFound(f"no notice {notice}; `gridflow notices list` shows them")
            outbox, code, person = found
            keys = [outbox.dedupe_key] + ([outbox.digest_key] if outbox.digest_key else [])
            attempts = list(
                session.scalars(select(Delivery).where(Delivery.key.in_(keys)).order_by(Delivery.at, Delivery.id))
            )
        data = _row(outbox, code, person.name if person else None, gf.tz)
        data["phone"] = mask_phone(person.phone if person else None)
        data["params"] = outbox.params
        data["history"] = [
            {
                "at": views.iso(d.at),
                "channel": d.channel,
                "outcome": d.outcome,
                "provider_id": d.provider_id,
                "error": d.error,
                "notices_in_message": len(d.notices or []),
                "parts": d.parts,
                "ms": d.duration_ms,
            }
            for d in attempts
        ]
        if as_json:
            _emit_json(data)
            return
        shown = {**data, "next_attempt_at": views.local_text(outbox.next_attempt_at, gf.tz)}
        shown["sent_at"] = views.local_text(outbox.sent_at, gf.tz) if outbox.sent_at else None
        table = Table(show_header=False, box=None, padding=(0, 2))
        for label, key in (
            ("编号 id", "id"),
            ("状态 status", "status"),
            ("事件 event", "event"),
            ("案件 case", "case"),
            ("接收人 to", "to"),
            ("姓名 name", "name"),
            ("电话 phone", "phone"),
            ("紧急 urgent", "urgent"),
            ("渠道 channel", "channel"),
            ("已放弃渠道 exhausted", "exhausted"),
            ("下次 next attempt", "next_attempt_at"),
            ("发送 sent", "sent_at"),
            ("摘要 digest", "digest"),
            ("错误 error", "error"),
        ):
            views.row(table, label, escape(str(shown[key] if shown[key] not in (None, [], "") else "—")))
        out.print(table)
        history = Table("时间 at", "渠道 channel", "结果 outcome", "回执 provider id", "错误 error", "条数", "ms")
        for d in attempts:
            history.add_row(
                views.local_text(d.at, gf.tz),
                d.channel,
                d.outcome,
                d.provider_id or "—",
                escape((d.error or "")[:60]),
                str(len(d.notices or [])),
                str(d.duration_ms),
            )
        out.print(history if attempts else "no delivery attempt yet")


@notices_app.command("retry")
def notices_retry(
    notice: Annotated[int | None, typer.Argument(help="Notice id.")] = None,
    all_failed: Annotated[bool, typer.Option("--all-failed", help="Every failed notice.")] = False,
) -> None:
    """Send failed notices again: back to pending, every channel available again."""
    with handled():
        if (notice is None) == (not all_failed):
            raise typer.BadParameter("give a notice id or --all-failed (not both)")
        gf = _gridflow()
        now = gf.clock()
        with gf.transaction() as session:
            where = [Outbox.status == "failed"]
            if notice is not None:
                status = session.scalar(select(Outbox.status).where(Outbox.id == notice))
                if status is None:
                    raise NoticeNotFound(f"no notice {notice}; `gridflow notices list --status failed` shows them")
                if status != "failed":
                    raise CommandRejected(f"notice {notice} is {status}, not failed: only failed notices are retried")
                where.append(Outbox.id == notice)
            result = session.execute(
                update(Outbox)
                .where(*where)
                .values(
                    status="pending",
                    next_attempt_at=now,
                    exhausted=[],
                    channel=None,
                    channel_attempts=0,
                    lease_until=None,
                    claimed_by=None,
                )
            )
        out.print(f"{result.rowcount} notice(s) queued again; the dispatcher sends them at its next tick", markup=False)


@notices_app.command("preview")
def notices_preview(
    event: Annotated[str, typer.Argument(help="An event, e.g. sla_breach; see the list with --list.")] = "",
    channel: Annotated[str, typer.Option("--channel", "-c", help="text, sms, email, wecom or all.")] = "all",
    list_events: Annotated[bool, typer.Option("--list", help="List the events that have templates.")] = False,
) -> None:
    """Render an event's notice with sample values, as each channel would send it."""
    from notifications.render import Renderer
    from notifications.samples import SAMPLE_NAME, SAMPLES

    with handled():
        gf = _gridflow()
        renderer = Renderer(gf.tz)
        events = renderer.events()
        if list_events or not event:
            out.print("\n".join(events), markup=False)
            return
        if event not in events:
            raise NotFound(_no_event(event, events))
        parts = {"text": "txt", "sms": "sms", "email": "email", "wecom": "md"}
        if channel != "all" and channel not in parts:
            raise InputError(f"unknown channel {channel!r}; use one of: {', '.join(parts)}, all")
        rendered = renderer.render(event, SAMPLES.get(event, {}), SAMPLE_NAME)
        from notifications.channels.base import sms_parts

        show = {
            "text": ("文本 text", rendered.text),
            "sms": (f"短信 sms ({len(rendered.sms)} 字, {sms_parts(rendered.sms)} 条)", rendered.sms),
            "email": (
                "邮件 e-mail",
                f"Subject: {rendered.subject}\n\n{rendered.text}\n\n--- HTML ---\n{rendered.html}",
            ),
            "wecom": ("企业微信 wecom (markdown)", rendered.markdown),
        }
        for key in parts if channel == "all" else [channel]:
            title, body = show[key]
            out.print(f"[bold]── {title} ──[/]")
            out.print(body, markup=False, highlight=False)


def _no_event(event: str, events: list[str]) -> str:
    close = difflib.get_close_matches(event, events, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"no notice templates for event {event!r}; {hint}events are: {', '.join(events)}"


@notices_app.command("dispatch")
def notices_dispatch(as_json: JsonOpt = False) -> None:
    """Deliver what is ready now, once (what the runtime does every few seconds)."""
    from notifications.dispatch import dispatch
    from tasks.runtime import Runtime

    with handled():
        gf = _gridflow()
        runtime = Runtime(gf.settings, gf.clock)
        report = dispatch(gf.transaction, gf.clock, gf.worker_id, runtime.notices, runtime.renderer)
        summary = {
            "claimed": report.claimed,
            "messages": report.sent,
            "delivered": report.delivered,
            "digests": report.digests,
            "deferred": report.deferred,
            "retrying": report.retried,
            "failed": len(report.failed),
            "suppressed": report.suppressed,
        }
        if as_json:
            _emit_json(summary)
            return
        out.print(", ".join(f"{k} {v}" for k, v in summary.items()), markup=False)
