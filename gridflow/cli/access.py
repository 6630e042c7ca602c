"""``gridflow token create|list|revoke`` and ``gridflow account password``: API tokens and sign-in."""

from __future__ import annotations

import re
import sys
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from engine.errors import InputError
from gridflow import present
from gridflow.cli import views
from gridflow.cli.common import JsonOpt, emit_json, handled, open_gridflow, out, wrote

app = typer.Typer()  # this module's commands; gridflow.cli.build merges them into the root
token_app = typer.Typer(help="令牌 API tokens for machines and scripts: create, list, revoke.", no_args_is_help=True)
account_app = typer.Typer(help="账号 accounts: set a person's sign-in password.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(account_app, name="account")

PersonOpt = Annotated[str, typer.Option("--person", "-p", help="Person id of the org chart, e.g. p-chen-jia.")]
UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def wall_duration(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m``: a wall-clock span (a token's lifetime is not business time)."""
    found = re.fullmatch(r"\s*(\d{1,6})\s*([dhm])\s*", text)
    if not found or int(found.group(1)) == 0:
        raise InputError(f"--expires {text!r}: write a span like 90d, 12h or 30m")
    return timedelta(**{UNITS[found.group(2)]: int(found.group(1))})


@token_app.command("create")
def token_create(
    person: PersonOpt,
    name: Annotated[str, typer.Option("--name", "-n", help="What it is for, e.g. 'county-12345 bridge'.")],
    expires: Annotated[str | None, typer.Option("--expires", help="Lifetime, e.g. 90d (default: no end).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a token that acts as PERSON; it is printed once, only its hash is kept."""
    with handled():
        gf = open_gridflow()
        made = gf.create_token(person, name, wall_duration(expires) if expires else None)
        if as_json:
            emit_json(made)
            return
        until = present.local_text(_parse(made["expires_at"]), gf.tz) if made["expires_at"] else "no end (revoke it)"
        out.print(f"令牌 token #{made['id']} for {made['person']} ({made['name']}), valid until {until}:", markup=False)
        sys.stdout.write(made["token"] + "\n")
        out.print("It is shown only now: store it where the script reads it. Use it as", markup=False)
        out.print("  Authorization: Bearer <token>", markup=False)
        wrote(gf, as_json)


def _parse(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text)


@token_app.command("list")
def token_list(
    person: Annotated[str | None, typer.Option("--person", "-p", help="Only this person's tokens.")] = None,
    sessions: Annotated[bool, typer.Option("--sessions", help="Also the sessions of signed-in people.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Tokens (never their secret): who, what for, when made, expiring, last used, revoked."""
    with handled():
        gf = open_gridflow()
        rows = gf.list_tokens(person, sessions)
        if as_json:
            emit_json(rows)
            return
        zone = gf.clock().astimezone(gf.tz).strftime("%Z")
        table = Table(title=f"令牌 tokens ({len(rows)}; times {zone})", title_justify="left")
        for column in ("#", "人员 person", "用途 name", "前缀 prefix", "到期 expires", "最近使用 last used"):
            table.add_column(column, no_wrap=column != "用途 name", overflow="fold")
        for r in rows:
            when = {
                k: _parse(r[k]).astimezone(gf.tz).strftime("%Y-%m-%d %H:%M") if r[k] else ""
                for k in r
                if k.endswith("_at")
            }
            name = r["name"] + ("" if r["kind"] == "token" else " (session)")
            expires = "已撤销 revoked " + when["revoked_at"] if r["revoked_at"] else when["expires_at"] or "—"
            views.row(table, r["id"], r["person"], name, r["prefix"] + "…", expires, when["last_used_at"] or "never")
        out.print(table)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="The token's number (see token list).")]) -> None:
    """Revoke a token (or a session) at once; calls with it get 401 from now on."""
    with handled():
        gf = open_gridflow()
        row = gf.revoke_token(token_id)
        when = present.local_text(_parse(row["revoked_at"]), gf.tz)
        out.print(f"token #{row['id']} ({row['name']}, {row['person']}) revoked at {when}", markup=False)
        wrote(gf, False)


@account_app.command("password")
def account_password(
    person: PersonOpt,
    stdin: Annotated[bool, typer.Option("--stdin", help="Read the password from standard input.")] = False,
) -> None:
    """Set PERSON's sign-in password (asked twice, not shown; at least 10 characters)."""
    with handled():
        gf = open_gridflow()
        if stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = typer.prompt("新密码 new password", hide_input=True, confirmation_prompt=True)
        gf.set_password(person, password)
        out.print(f"password set for {person}; sign in with their phone number and it", markup=False)
        wrote(gf, False)
