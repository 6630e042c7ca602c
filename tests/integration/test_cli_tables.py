"""Every command's default (table) output, as a clerk reads it, on SQLite and on PostgreSQL.

``--json`` is checked elsewhere; here each command runs in-process (Typer's runner, the same
code as the console script) without ``--json``, on one home per back end, at a pinned time:
the clock is 2026-12-02 10:00 in Shanghai whatever the machine's date. The last test walks
the whole command tree and fails if a command was never run here, so a new command cannot
ship with an untested table.

Also here, each with the case that failed before: ``case history`` printed a table only with
``--json`` (a local variable shadowed the ``row()`` helper); a write with a time in the future
is refused everywhere and changes nothing; a step can be backfilled with ``--at`` and records
when and by whom it was typed in; the loser of a race is told who won and when.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click
import pytest
import typer.main
from typer.testing import CliRunner

import gridflow.app
import gridflow.cli as cli
import gridflow.cli.common as common
from config.settings import Settings
from tests.support import ORG_FILE

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI)
CENTER, WORKER, GRID = "p-chen-jia", "p-an-yixuan", "mayingtai-01"
REPO = Path(__file__).resolve().parents[2]
RAN: set[str] = set()  # command paths run by this module, e.g. "case history"
NOT_HERE = {  # long-running processes: tests/integration/test_runtime_*.py run them for real
    "up": "runs until stopped",
    "worker": "runs until stopped",
    "beat": "runs until stopped",
    "serve": "runs until stopped (tests/integration/test_serve.py runs it for real)",
}


@dataclass
class Home:
    path: Path
    database_url: str | None
    now: list[datetime] = field(default_factory=lambda: [NOW])
    code: str = ""

    def run(self, *args: str, code: int | None = 0) -> str:
        RAN.add(" ".join(a for a in _command_path(args)))
        result = CliRunner().invoke(cli.app, list(args), catch_exceptions=False)
        output = result.stdout + (result.stderr if result.stderr_bytes is not None else "")
        assert code is None or result.exit_code == code, f"gridflow {' '.join(args)} → {result.exit_code}\n{output}"
        return output


def _command_path(args: tuple[str, ...]) -> list[str]:
    group = typer.main.get_command(cli.app)
    path = []
    for arg in args:
        if arg not in getattr(group, "commands", {}):
            break
        path.append(arg)
        group = group.commands[arg]
    return path


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def home(request, tmp_path_factory) -> Iterator[Home]:
    url = request.getfixturevalue("pg_server").create() if request.param == "postgresql" else None
    yield Home(tmp_path_factory.mktemp(f"home-{request.param}"), url)


@pytest.fixture
def gf(home, monkeypatch) -> Iterator[Home]:
    """The home's settings in the environment, its pinned clock in the application, wide consoles."""
    monkeypatch.setenv("GRIDFLOW_HOME", str(home.path))
    monkeypatch.setenv("GRIDFLOW_CONFIG_FILE", str(home.path / "absent.yaml"))
    if home.database_url:
        monkeypatch.setenv("GRIDFLOW_DATABASE_URL", home.database_url)
    monkeypatch.chdir(REPO)
    built: list[gridflow.app.Gridflow] = []

    def build(settings: Settings) -> gridflow.app.Gridflow:
        built.append(gridflow.app.Gridflow(settings, clock=lambda: home.now[0]))
        return built[-1]

    monkeypatch.setattr(common, "Gridflow", build)
    for console in (common.out, common.err):
        monkeypatch.setattr(console, "_width", 160)
    yield home
    for app in built:
        app.close()


# The tests below run in order on the module's home (report, then steps, then reading).


def test_init_and_org_say_which_database(gf):
    out = gf.run("init")
    assert "数据库 database" in out and ("gridflow.db" in out or "postgresql" in out)
    assert "6 villages, 69 grids" in out
    gf.run("org", "load", str(ORG_FILE))
    out = gf.run("org", "show", "--village", "mayingtai")
    assert "mayingtai-01" in out and "单元格 grid cells" in out


def test_workflow_tables(gf):
    assert "grid_case" in gf.run("workflow", "list")
    assert "reported" in gf.run("workflow", "show", "grid_case")
    assert "stateDiagram" in gf.run("workflow", "graph", "grid_case")
    assert "✓" in gf.run("workflow", "validate", "workflows/grid_case.yaml")
    out = gf.run("workflow", "publish", "workflows/grid_case.yaml")
    assert "grid_case" in out


def test_report_backfilled_from_a_paper_register(gf):
    out = gf.run(
        "case", "report", "-g", GRID, "-a", WORKER, "-t", "马营台村1社水管破裂",
        "--at", "2026-11-30T09:00", "--entered-by", CENTER,
    )  # fmt: skip
    gf.code = re.search(r"SL-2026-\d{6}", out).group(0)
    assert "2026-11-30 09:00" in out, out  # the time it happened, not the time it was typed in
    assert "数据库 database" in out


def test_fire_backfilled_prints_one_line_and_keeps_history_in_order(gf):
    out = gf.run("case", "fire", gf.code, "classify", "-a", CENTER, "-f", "category=供水", "-f", "priority=urgent",
                 "--at", "2026-11-30T09:30")  # fmt: skip
    assert f"{gf.code}: classify reported → classified (version 2, 补录 backfilled: happened 2026-11-30 09:30" in out
    assert "标题 title" not in out  # one line, not the card (the card with --show)
    out = gf.run("case", "fire", gf.code, "assign", "-a", CENTER, "-f", f"assignee={WORKER}",
                 "--at", "2026-11-30T09:10", code=4)  # fmt: skip
    assert "cannot be dated before it" in out and "version 2" in out


def test_a_future_time_is_refused_by_every_write_and_changes_nothing(gf):
    future = "2026-12-03T10:00"
    before = gf.run("case", "history", gf.code)
    for args in (
        ("case", "report", "-g", GRID, "-a", WORKER, "-t", "明天的事", "--at", future),
        ("case", "fire", gf.code, "assign", "-a", CENTER, "-f", f"assignee={WORKER}", "--at", future),
        ("sla", "sweep", "--at", future),
        ("score", "run", "--period", "2026-11", "--at", future),
        ("publish", "run", "--quarter", "2026Q3", "--at", future),
        ("jobs", "run", "monthly_scoring", "--at", future),
        ("points", "record", "MYT-1-0001", "attend_meeting", "-a", WORKER, "--at", future),
    ):
        result = CliRunner().invoke(cli.app, list(args), catch_exceptions=False)
        assert result.exit_code != 0, args
        assert "future" in result.output, (args, result.output)
    assert gf.run("case", "history", gf.code) == before


def test_sweep_dry_run_shows_the_plan_and_writes_nothing(gf):
    gf.run("case", "fire", gf.code, "assign", "-a", CENTER, "-f", f"assignee={WORKER}")
    out = gf.run("sla", "sweep", "--dry-run", "--at", "2026-12-09T10:00")
    assert "would fire" in out and "nothing was written" in out and gf.code in out
    assert "提醒 reminder" in out or "超时 breach" in out
    assert gf.code in gf.run("sla", "sweep", "--dry-run", "--at", "2026-12-09T10:00")  # still there: nothing fired
    out = gf.run("sla", "sweep")
    assert "sweep at 2026-12-02 10:00" in out


def test_the_loser_of_a_race_is_told_who_won(gf):
    gf.run("case", "fire", gf.code, "accept", "-a", WORKER)
    out = gf.run("case", "report", "-g", GRID, "-a", WORKER, "-t", "路灯不亮")
    other = re.search(r"SL-2026-\d{6}", out).group(0)
    gf.run("case", "fire", other, "classify", "-a", CENTER, "-f", "category=其他", "-f", "priority=normal")
    gf.now[0] = NOW + timedelta(seconds=0.4)
    out = gf.run("case", "fire", other, "classify", "-a", "p-ren-kaixue", "-f", "category=其他", "-f", "priority=normal",
                 code=4)  # fmt: skip
    assert "someone else (陈佳 (p-chen-jia)) took the step classify (立案分类)" in out, out
    assert "0.4 s ago" in out and "it is now classified" in out
    out = gf.run("case", "fire", gf.code, "accept", "-a", WORKER, code=4)
    assert "you (安怡萱 (p-an-yixuan)) already took the step accept" in out
    out = gf.run("case", "fire", gf.code, "accept", "-a", CENTER, code=4)  # could never accept: no race lost
    assert "someone else" not in out and "is not allowed in state 'in_progress'" in out


def test_case_tables(gf):
    out = gf.run("case", "history", gf.code)  # crashed with "'dict' object is not callable"
    assert "处置记录 history" in out and "上报 report" in out and "签收 accept" in out
    assert "补录 typed in 2026-12-02 10:00" in out and f"by {CENTER}" in out
    assert "2026-11-30 09:00" in out  # the history is dated when it happened
    assert gf.code in gf.run("case", "show", gf.code)
    assert gf.code in gf.run("case", "list")
    assert gf.code in gf.run("case", "fire", gf.code, "resolve", "-a", WORKER, "-f", "resolution=换管", "--show")
    assert gf.code in gf.run("sla", "explain", gf.code)
    assert "到期 due" in gf.run("sla", "due", "--within", "8h")


def test_calendar_tables(gf):
    assert "休" in gf.run("calendar", "show", "2026-10")
    gf.run("calendar", "check")
    assert "2026-10-09" in gf.run("calendar", "due", "2026-09-30T16:00", "2d")  # over the National Day holiday


def test_demo_status(gf):
    gf.run("demo", "--status")  # loading the demo quarter is tests/integration/test_demo.py's


def test_archive_and_points_tables(gf):
    gf.run("archive", "import", "--if-empty", "config/archive/shengli.csv")
    assert "MYT-1-0001" in gf.run("archive", "list", "--village", "mayingtai", "--limit", "3")
    assert "MYT-1-0001" in gf.run("archive", "show", "MYT-1-0001")
    gf.run("archive", "import", "--dry-run", "config/archive/shengli.csv")
    gf.run("points", "store", "load", "config/store.yaml")
    out = gf.run("points", "record", "MYT-1-0002", "five_good_family", "-a", "p-xiong-chenglin", "-e", "村评议通过")
    entry = re.search(r"entry #(\d+)", out).group(1)
    assert "待审核 pending approval" in out
    assert "approved" in gf.run("points", "approve", entry, "-a", CENTER, "--note", "核实")
    out = gf.run("points", "record", "MYT-1-0002", "clean_courtyard", "-a", WORKER, "--at", "2026-12-01T09:00")
    mistaken = re.search(r"entry #(\d+)", out).group(1)
    gf.run("points", "correct", mistaken, "-a", CENTER, "--reason", "记错户")
    assert "MYT-1-0002" in gf.run("points", "list", "--household", "MYT-1-0002")
    gf.run("points", "list", "--pending")
    gf.run("points", "balance", "MYT-1-0002")
    out = gf.run("points", "redeem", "MYT-1-0002", "salt=2", "-a", WORKER)
    receipt = re.search(r"No\.(\d+)", out).group(1)
    gf.run("points", "reverse", receipt, "-a", CENTER, "--reason", "退货")
    gf.run("points", "store", "restock", "mayingtai", "salt", "10", "-a", CENTER)
    gf.run("points", "store", "report", "--village", "mayingtai")


def test_scores_postings_jobs_and_notices_tables(gf):
    assert "2026-11" in gf.run("score", "run", "--period", "2026-11")
    out = gf.run("case", "report", "-g", GRID, "-a", WORKER, "-t", "补录", "--at", "2026-11-30T16:00", code=4)
    assert "2026-11 has been scored" in out and "frozen figures" in out  # a scored month stays as scored
    gf.run("score", "show", "--period", "2026-11")
    gf.run("score", "history", "--period", "2026-11")
    gf.run("points", "households", "--period", "2026-11", "--limit", "3")
    gf.run("publish", "run", "--quarter", "2026Q3")
    gf.run("publish", "show", "--quarter", "2026Q3")
    out = gf.run("publish", "object", "--quarter", "2026Q3", "--subject", f"grid:{GRID}", "--by", "居民",
                 "--reason", "数据有误", code=None)  # fmt: skip
    objection = re.search(r"objection #(\d+)", out)
    if objection:
        gf.run("publish", "decide", objection.group(1), "--reject", "--by", "乡网格管理中心", "--note", "经核实无误")
    gf.run("jobs", "list")
    gf.run("jobs", "run")
    out = gf.run("notices", "list")
    assert "通知 notices" in out or "notices" in out
    notice = re.search(r"^[│|]\s*(\d+)\s", out, re.M)
    if notice:
        gf.run("notices", "show", notice.group(1))
    gf.run("notices", "preview", "sla_breach", "--channel", "sms")
    gf.run("notices", "dispatch")
    gf.run("notices", "retry", "--all-failed")


def test_token_and_account_tables(gf):
    out = gf.run("token", "create", "--person", "p-chen-jia", "--name", "county bridge", "--expires", "90d")
    assert "令牌 token #" in out and "gft_" in out and "数据库 database" in out
    number = re.search(r"token #(\d+)", out).group(1)  # type: ignore[union-attr]
    assert "county bridge" in gf.run("token", "list")
    assert "revoked" in gf.run("token", "revoke", number)
    assert "已撤销 revoked" in gf.run("token", "list", "--person", "p-chen-jia", "--sessions")
    assert "--expires '9x'" in gf.run("token", "create", "-p", "p-chen-jia", "-n", "x", "--expires", "9x", code=8)
    result = CliRunner().invoke(cli.app, ["account", "password", "--person", "p-an-yixuan", "--stdin"],
                                input="short\n", catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 8 and "at least 10 characters" in result.output
    RAN.add("account password")
    result = CliRunner().invoke(cli.app, ["account", "password", "--person", "p-an-yixuan", "--stdin"],
                                input="山里的信号不好123\n", catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0 and "password set for p-an-yixuan" in result.output


def test_client_tables(gf):
    out = gf.run("client", "add", "county-12345", "--name", "通江县12345热线", "--person", "p-yang-xiaodong")
    assert "county-12345" in out
    assert "通江县12345热线" in gf.run("client", "list")
    gf.run("client", "revoke", "county-12345")
    assert "county-12345" in gf.run("client", "list")


def test_webhook_tables(gf):
    out = gf.run("webhook", "add", "通江县综治平台", "https://127.0.0.1:9/hook", "--event", "case.reported")
    number = re.search(r"#(\d+)", out).group(1)  # type: ignore[union-attr]
    assert "通江县综治平台" in gf.run("webhook", "list")
    gf.run("webhook", "deliveries", number)
    gf.run("webhook", "remove", number)
    assert "https://127.0.0.1:9/hook" in gf.run("webhook", "list", "--all")


def test_every_command_is_run_here(gf):
    root = typer.main.get_command(cli.app)
    commands = []

    def walk(group: click.Group, prefix: list[str]) -> None:
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                walk(command, [*prefix, name])
            else:
                commands.append(" ".join([*prefix, name]))

    walk(root, [])
    missing = sorted(set(commands) - RAN - set(NOT_HERE))
    assert not missing, f"commands whose table output no test here runs: {missing}"
