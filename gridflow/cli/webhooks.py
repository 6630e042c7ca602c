"""``gridflow webhook add|list|remove|deliveries``: signed events out to the county's platform."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from gridflow import present
from gridflow.cli import views
from gridflow.cli.common import JsonOpt, emit_json, handled, open_gridflow, out, wrote

app = typer.Typer()  # this module's commands; gridflow.cli.build merges them into the root
webhook_app = typer.Typer(
    help="推送 webhooks to the county's platform: signed events to a URL; add, list, remove.", no_args_is_help=True
)
app.add_typer(webhook_app, name="webhook")

EVENTS = "case.reported, case.stepped, sla.breach, sla.escalation, posting.published"
IdArg = Annotated[int, typer.Argument(help="The subscription's number (see webhook list).")]


def _local(text: str | None, tz) -> str:  # type: ignore[no-untyped-def]
    return present.local_text(datetime.fromisoformat(text), tz) if text else ""


@webhook_app.command("add")
def webhook_add(
    name: Annotated[str, typer.Argument(help="Who receives them, e.g. 通江县综治平台.")],
    url: Annotated[str, typer.Argument(help="Where to POST them: https://… (no user:password in it).")],
    events: Annotated[
        list[str], typer.Option("--event", "-e", help=f"An event to send (repeat for several): {EVENTS}.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Subscribe URL to events; the signing secret (whsec_…) is printed once and needed to verify them."""
    with handled():
        gf = open_gridflow()
        made = gf.add_subscription(name, url, events)
        if as_json:
            emit_json(made)
            return
        out.print(
            f"推送 webhook #{made['id']} ({made['name']}) → {made['url']} for {', '.join(made['events'])}; "
            "its signing secret:",
            markup=False,
        )
        sys.stdout.write(made["secret"] + "\n")
        out.print(
            "It is shown only now: give it to the receiver, which checks webhook-signature with it "
            "(docs/operations.md, Webhooks).",
            markup=False,
        )
        wrote(gf, as_json)


@webhook_app.command("list")
def webhook_list(
    include_removed: Annotated[bool, typer.Option("--all", help="Also the removed subscriptions.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The subscriptions (never their secret): URL, events, and their deliveries by status."""
    with handled():
        gf = open_gridflow()
        rows = gf.list_subscriptions(include_removed=include_removed)
        if as_json:
            emit_json(rows)
            return
        table = Table(title=f"推送 webhooks ({len(rows)})", title_justify="left")
        for column in ("#", "名称 name", "地址 url", "事件 events", "投递 deliveries", "添加 created", "状态 state"):
            table.add_column(column, no_wrap=column in ("#",), overflow="fold")
        for r in rows:
            counts = ", ".join(f"{k} {v}" for k, v in sorted(r["deliveries"].items())) or "—"
            state = "active" if r["active"] else "已移除 removed"
            views.row(
                table,
                r["id"],
                r["name"],
                r["url"],
                "\n".join(r["events"]),
                counts,
                _local(r["created_at"], gf.tz),
                state,
            )
        out.print(table)


@webhook_app.command("remove")
def webhook_remove(subscription_id: IdArg) -> None:
    """Stop sending to a subscription at once (its history stays; what was pending is dropped)."""
    with handled():
        gf = open_gridflow()
        row = gf.remove_subscription(subscription_id)
        out.print(
            f"webhook #{row['id']} ({row['name']}) removed; {row['dropped']} pending deliveries dropped", markup=False
        )
        wrote(gf, False)


@webhook_app.command("deliveries")
def webhook_deliveries(
    subscription_id: IdArg,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many attempts, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """A subscription's delivery attempts, newest first: event, webhook-id, outcome, error."""
    with handled():
        gf = open_gridflow()
        data = gf.subscription_deliveries(subscription_id, limit=limit)
        if as_json:
            emit_json(data)
            return
        sub = data["subscription"]
        counts = ", ".join(f"{k} {v}" for k, v in sorted(sub["deliveries"].items())) or "none yet"
        title = f"推送 webhook #{sub['id']} {sub['name']} → {sub['url']}: {counts}"
        table = Table(title=title, title_justify="left")
        for column in ("时间 at", "事件 event", "webhook-id", "结果 outcome", "ms", "通知 notice", "错误 error"):
            table.add_column(column, no_wrap=column in ("时间 at", "webhook-id"), overflow="fold")
        for d in data["deliveries"]:
            notice = f"#{d['notice']} {d['status']}" if d["notice"] else ""
            views.row(
                table, _local(d["at"], gf.tz), d["event"], d["webhook_id"], d["outcome"], d["ms"], notice, d["error"]
            )
        out.print(table)
