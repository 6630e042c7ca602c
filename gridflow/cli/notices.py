"""CLI commands of the notices: ``notices list|show|retry|preview``. Registered by :mod:`gridflow.cli`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape
from rich.table import Table

from gridflow import present
from gridflow.app.notices import DISPATCH_COUNTS, STATUSES
from gridflow.cli import views
from gridflow.cli.common import emit_json, handled, open_gridflow, out

app = typer.Typer()  # this module's commands; gridflow.cli.build merges them into the root

notices_app = typer.Typer(
    help="通知 notices: what was sent to whom, failures, retries, previews.", no_args_is_help=True
)
app.add_typer(notices_app, name="notices")

STATUS_LABELS = {"pending": "待发送", "sent": "已发送", "failed": "失败", "suppressed": "不发送"}
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

NOTE_CHARS = 200  # a provider's error can be a whole HTTP body: the note shows its start


def _local(iso: str | None, tz: ZoneInfo) -> str:
    return present.local_text(datetime.fromisoformat(iso), tz) if iso else ""


def _note(row: dict[str, Any]) -> str:
    """Why it waits, then the last error; for a notice folded into a digest, the digest's key."""
    instead = f"中心代 instead of {', '.join(row['instead_of'])}" if row.get("instead_of") else ""
    parts = [instead, row["note"], row["error"] or ""]
    if row["status"] == "sent" and row["digest"]:
        parts.append(f"digest {row['digest']}")
    text = " · ".join(p for p in parts if p)
    return text if len(text) <= NOTE_CHARS else text[: NOTE_CHARS - 1] + "…"


@notices_app.command("list")
def notices_list(
    status: Annotated[str | None, typer.Option("--status", help=f"One of {', '.join(STATUSES)}.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Only this person (id).")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Notices, newest first, with their status; `--status failed` lists what needs a look."""
    with handled():
        listed = open_gridflow().list_notices(status=status, to=to, limit=limit)
        if as_json:
            emit_json(listed.data)
            return
        rows, counts = listed.data["notices"], listed.data["counts"]
        out.print(_list_table(rows))
        out.print("  ".join(f"{s} {counts.get(s, 0)}" for s in STATUSES), markup=False)
        if listed.warning:
            out.print(f"[yellow]warning:[/] {escape(listed.warning)}")
        for channel, error in listed.data["misconfigured"].items():
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
        shown = gf.show_notice(notice)
        data = shown.data
        if as_json:
            emit_json(data)
            return
        view = {**data, "next_attempt_at": _local(data["next_attempt_at"], gf.tz)}
        view["sent_at"] = _local(data["sent_at"], gf.tz) or None
        view["created_at"] = _local(data["created_at"], gf.tz)
        view["status"] = f"{STATUS_LABELS[data['status']]} {data['status']}"
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
            views.row(table, label, str(view[key] if view[key] not in (None, [], "") else "—"))
        out.print(table)
        if shown.warning:
            out.print(f"[yellow]warning:[/] {escape(shown.warning)}")
        history = data["history"]
        out.print(_history_table(history, gf.tz) if history else "no delivery attempt yet", markup=False)


def _history_table(attempts: list[dict[str, Any]], tz: ZoneInfo) -> Table:
    table = Table(title="投递记录 delivery attempts", title_justify="left")
    table.add_column("时间 at", no_wrap=True)
    table.add_column("渠道 channel", no_wrap=True)
    table.add_column("结果 outcome", no_wrap=True)
    table.add_column("回执 provider id", overflow="fold")
    table.add_column("错误 error", overflow="fold")
    table.add_column("条数", no_wrap=True, justify="right")
    table.add_column("ms", no_wrap=True, justify="right")
    for d in attempts:
        error = d["error"] or ""
        views.row(
            table,
            _local(d["at"], tz),
            d["channel"],
            d["outcome"],
            d["provider_id"] or "—",
            error if len(error) <= NOTE_CHARS else error[: NOTE_CHARS - 1] + "…",
            d["notices_in_message"],
            d["ms"],
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
        done = gf.retry_notice(notice) if notice is not None else gf.retry_failed_notices()
        out.print(f"{done['queued']} notice(s) queued again; the dispatcher sends them at its next tick", markup=False)


@notices_app.command("preview")
def notices_preview(
    event: Annotated[str, typer.Argument(help="An event, e.g. sla_breach; see the list with --list.")] = "",
    channel: Annotated[str, typer.Option("--channel", "-c", help="text, sms, email, wecom or all.")] = "all",
    list_events: Annotated[bool, typer.Option("--list", help="List the events that have templates.")] = False,
) -> None:
    """Render an event's notice with sample values, as each channel would send it."""
    with handled():
        gf = open_gridflow()
        if list_events or not event:
            out.print("\n".join(gf.notice_events()), markup=False)
            return
        for key, part in gf.preview_notice(event, channel)["channels"].items():
            title, body = _preview_part(key, part)
            out.print(f"[bold]── {title} ──[/]")
            out.print(body, markup=False, highlight=False)


def _preview_part(channel: str, part: dict[str, Any]) -> tuple[str, str]:
    """A channel's title and what it would send."""
    if channel == "sms":
        return f"短信 sms ({part['chars']} 字, {part['parts']} 条)", part["text"]
    if channel == "email":
        return "邮件 e-mail", f"Subject: {part['subject']}\n\n{part['text']}\n\n--- HTML ---\n{part['html']}"
    if channel == "wecom":
        return "企业微信 wecom (markdown)", part["markdown"]
    return "文本 text", part["text"]


@notices_app.command("dispatch")
def notices_dispatch(as_json: JsonOpt = False) -> None:
    """Deliver what is ready now, once (what the runtime does every few seconds)."""
    with handled():
        report = open_gridflow().dispatch_notices()
        summary = {k: report[k] for k in DISPATCH_COUNTS}
        if as_json:
            emit_json(summary)
            return
        out.print(", ".join(f"{k} {v}" for k, v in summary.items()), markup=False)
