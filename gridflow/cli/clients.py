"""``gridflow client add|list|revoke``: clients of the Open311 door (the county's 12345 and 综治 platforms)."""

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
client_app = typer.Typer(
    help="接入平台 Open311 clients (12345, 综治): add one with its api_key, list, revoke.", no_args_is_help=True
)
app.add_typer(client_app, name="client")

ClientArg = Annotated[str, typer.Argument(help="The client's id, e.g. county-12345.")]


@client_app.command("add")
def client_add(
    client_id: ClientArg,
    name: Annotated[str, typer.Option("--name", "-n", help="Which platform it is, e.g. 通江县12345热线.")],
    person: Annotated[
        str, typer.Option("--person", "-p", help="Person id its requests are reported as, e.g. p-yang-xiaodong.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Add a client of /open311/v2/; its api_key is printed once, only its SHA-256 is kept."""
    with handled():
        gf = open_gridflow()
        made = gf.create_client(client_id, name, person)
        if as_json:
            emit_json(made)
            return
        out.print(f"接入平台 client {made['id']} ({made['name']}), reports as {made['person']}; its api_key:",
                  markup=False)  # fmt: skip
        sys.stdout.write(made["api_key"] + "\n")
        out.print("It is shown only now: give it to the platform, which sends it as api_key=… (form or query).",
                  markup=False)  # fmt: skip
        wrote(gf, as_json)


@client_app.command("list")
def client_list(as_json: JsonOpt = False) -> None:
    """The Open311 clients (never their key): id, platform, person, made, revoked."""
    with handled():
        gf = open_gridflow()
        rows = gf.list_clients()
        if as_json:
            emit_json(rows)
            return
        table = Table(title=f"接入平台 Open311 clients ({len(rows)})", title_justify="left")
        for column in ("编号 id", "平台 name", "上报人 person", "添加 created", "状态 state"):
            table.add_column(column, no_wrap=column != "平台 name", overflow="fold")
        for r in rows:
            made = present.local_text(datetime.fromisoformat(r["created_at"]), gf.tz) if r["created_at"] else ""
            views.row(table, r["id"], r["name"], r["person"], made, "active" if r["active"] else "已撤销 revoked")
        out.print(table)


@client_app.command("revoke")
def client_revoke(client_id: ClientArg) -> None:
    """Revoke a client at once: its api_key gets 403 from now on (its cases stay as they are)."""
    with handled():
        gf = open_gridflow()
        row = gf.revoke_client(client_id)
        out.print(f"client {row['id']} ({row['name']}) revoked; its api_key is refused from now on", markup=False)
        wrote(gf, False)
