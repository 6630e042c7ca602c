"""CLI commands of the notices: ``notices list|show|retry|preview``. Registered by :mod:`gridflow.cli`."""

from __future__ import annotations

import difflib
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from engine.errors import CommandRejected, ConfigError, InputError, NotFound
from engine.store.models import Case, Delivery, Outbox, Person
from gridflow import present
from gridflow.app import Gridflow
from gridflow.cli import views
from gridflow.cli.common import emit_json, handled, open_gridflow, out
from gridflow.lazy import lazy_module
from notifications.channels.base import mask_phone

app = typer.Typer()  # this module's commands; gridflow.cli.build merges them into the root

if TYPE_CHECKING:
    from notifications.config import NoticeConfig

rules = lazy_module("notifications.dispatch")  # the dispatcher's rules, loaded by the commands that use them

notices_app = typer.Typer(
    help="通知 notices: what was sent to whom, failures, retries, previews.", no_args_is_help=True
)
app.add_typer(notices_app, name="notices")

STATUSES = ("pending", "sent", "failed", "suppressed")
STATUS_LABELS = {"pending": "待发送", "sent": "已发送", "failed": "失败", "suppressed": "不发送"}
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


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


NOTE_CHARS = 200  # a provider's error can be a whole HTTP body: the note shows its start


class NoticeNotFound(NotFound):
    pass


class Waits:
    """Why pending notices wait, by the dispatcher's own rules (:func:`notifications.dispatch.why_waiting`)."""

    def __init__(self, gf: Gridflow, session: Session, pending: list[Outbox], at: datetime):
        self.tz, self.at = gf.tz, at
        self.config, self.problem = _notice_config(gf) if pending else (None, "")
        recipients = sorted({o.recipient_id for o in pending})
        self.paces = rules.paces(session, recipients, at, self.config) if self.config else {}

    def hold(self, outbox: Outbox) -> rules.Hold | None:
        if self.config is None:
            return None
        return rules.why_waiting(
            outbox, self.paces.get(outbox.recipient_id, rules.Pace()), self.config, self.tz, self.at
        )

    def text(self, hold: rules.Hold | None) -> str:
        if hold is None:
            return ""
        return hold_labels()[hold.reason].format(until=present.local_short(hold.until, self.tz, self.at))


def _notice_config(gf: Gridflow) -> tuple[NoticeConfig | None, str]:
    """The dispatcher's settings, or why they cannot be read (then no reasons are shown, and that is said)."""
    from tasks.runtime import Runtime

    try:
        return Runtime(gf.settings, gf.clock).notices, ""
    except ConfigError as exc:
        first = str(exc).splitlines()[0]
        return None, f"why pending notices wait is not shown: the notifications settings have problems ({first})"


def _note(row: dict[str, Any]) -> str:
    """Why it waits, then the last error; for a notice folded into a digest, the digest's key."""
    parts = [row["note"], row["error"] or ""]
    if row["status"] == "sent" and row["digest"]:
        parts.append(f"digest {row['digest']}")
    text = " · ".join(p for p in parts if p)
    return text if len(text) <= NOTE_CHARS else text[: NOTE_CHARS - 1] + "…"


def _row(outbox: Outbox, code: str | None, name: str | None, tz: ZoneInfo, waits: Waits) -> dict[str, Any]:
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
        gf = open_gridflow()
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
        now = gf.clock()
        with gf.transaction(write=False) as session:
            found = session.execute(stmt).all()
            waits = Waits(gf, session, [o for o, _, _ in found if o.status == "pending"], now)
            rows = [_row(o, code, name, gf.tz, waits) for o, code, name in found]
            counts = dict(session.execute(select(Outbox.status, func.count()).group_by(Outbox.status)).all())
            broken = {
                d.channel: d.error
                for d in session.scalars(
                    select(Delivery)
                    .where(Delivery.outcome == "config", Delivery.at > now - timedelta(days=1))
                    .order_by(Delivery.at)
                )
            }
        if as_json:
            emit_json({"notices": rows, "counts": counts, "misconfigured": broken})
            return
        out.print(_list_table(rows))
        out.print("  ".join(f"{s} {counts.get(s, 0)}" for s in STATUSES), markup=False)
        if waits.problem:
            out.print(f"[yellow]warning:[/] {escape(waits.problem)}")
        for channel, error in broken.items():
            out.print(f"[bold red]channel {escape(channel)} is misconfigured[/] (last 24 h): {escape(error or '')}")


def _list_table(rows: list[dict[str, Any]]) -> Table:
    """Ids, case codes and person ids are never cut or wrapped (people copy them); the note folds.
    Cells hold two short lines each, so five columns leave the note room even at 80 columns."""
    table = Table(title=f"通知 notices ({len(rows)})", title_justify="left", expand=True)
    table.add_column("编号 id", no_wrap=True, justify="right")
    table.add_column("状态 status\n渠道 channel", no_wrap=True)
    table.add_column("案件 case\n事件 event", no_wrap=True, min_width=len("SL-2026-000123"))
    table.add_column("接收人 to", no_wrap=True)
    table.add_column("说明 note", overflow="fold", ratio=1)  # why it waits, the last error
    for r in rows:
        views.row(
            table,
            r["id"],
            f"{STATUS_LABELS[r['status']]} {r['status']}\n{r['channel'] or '—'}"
            + (f" ×{r['attempts']}" if r["attempts"] else ""),
            f"{r['case'] or '—'}\n{r['event']}",
            f"{r['name'] or ''}\n{r['to']}".strip(),
            _note(r),
        )
    return table


@notices_app.command("show")
def notices_show(notice: Annotated[int, typer.Argument(help="Notice id.")], as_json: JsonOpt = False) -> None:
    """One notice and its whole history: every delivery attempt, channel, outcome and error."""
    with handled():
        gf = open_gridflow()
        now = gf.clock()
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
            waits = Waits(gf, session, [outbox] if outbox.status == "pending" else [], now)
            data = _row(outbox, code, person.name if person else None, gf.tz, waits)
        data["phone"] = mask_phone(person.phone if person else None)
        data["params"] = outbox.params
        data["history"] = [
            {
                "at": present.iso(d.at),
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
            emit_json(data)
            return
        shown = {**data, "next_attempt_at": present.local_text(outbox.next_attempt_at, gf.tz)}
        shown["sent_at"] = present.local_text(outbox.sent_at, gf.tz) if outbox.sent_at else None
        shown["created_at"] = present.local_text(outbox.created_at, gf.tz)
        shown["status"] = f"{STATUS_LABELS[outbox.status]} {outbox.status}"
        table = Table(show_header=False, box=None, padding=(0, 2))
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")
        for label, key in (
            ("编号 id", "id"),
            ("状态 status", "status"),
            ("等待 waiting", "note"),
            ("事件 event", "event"),
            ("案件 case", "case"),
            ("接收人 to", "to"),
            ("姓名 name", "name"),
            ("电话 phone", "phone"),
            ("紧急 urgent", "urgent"),
            ("渠道 channel", "channel"),
            ("已放弃渠道 exhausted", "exhausted"),
            ("创建 created", "created_at"),
            ("下次 next attempt", "next_attempt_at"),
            ("发送 sent", "sent_at"),
            ("摘要 digest", "digest"),
            ("错误 error", "error"),
        ):
            views.row(table, label, str(shown[key] if shown[key] not in (None, [], "") else "—"))
        out.print(table)
        if waits.problem:
            out.print(f"[yellow]warning:[/] {escape(waits.problem)}")
        out.print(_history_table(attempts, gf.tz) if attempts else "no delivery attempt yet", markup=False)


def _history_table(attempts: list[Delivery], tz: ZoneInfo) -> Table:
    table = Table(title="投递记录 delivery attempts", title_justify="left")
    table.add_column("时间 at", no_wrap=True)
    table.add_column("渠道 channel", no_wrap=True)
    table.add_column("结果 outcome", no_wrap=True)
    table.add_column("回执 provider id", overflow="fold")
    table.add_column("错误 error", overflow="fold")
    table.add_column("条数", no_wrap=True, justify="right")
    table.add_column("ms", no_wrap=True, justify="right")
    for d in attempts:
        error = d.error or ""
        views.row(
            table,
            present.local_text(d.at, tz),
            d.channel,
            d.outcome,
            d.provider_id or "—",
            error if len(error) <= NOTE_CHARS else error[: NOTE_CHARS - 1] + "…",
            len(d.notices or []),
            d.duration_ms,
        )
    return table


@notices_app.command("retry")
def notices_retry(
    notice: Annotated[int | None, typer.Argument(help="Notice id.")] = None,
    all_failed: Annotated[bool, typer.Option("--all-failed", help="Every failed notice.")] = False,
) -> None:
    """Send failed notices again: back to pending, every channel available again."""
    with handled():
        if (notice is None) == (not all_failed):
            raise typer.BadParameter("give a notice id or --all-failed (not both)")
        gf = open_gridflow()
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
        gf = open_gridflow()
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
        gf = open_gridflow()
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
            emit_json(summary)
            return
        out.print(", ".join(f"{k} {v}" for k, v in summary.items()), markup=False)
