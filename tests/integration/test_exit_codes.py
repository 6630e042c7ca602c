"""Exit codes and messages of ordinary input errors, run in-process (Typer's CliRunner) on a fresh
SQLite home whose "now" is pinned at 2026-12-15 10:00 Asia/Shanghai by ``GRIDFLOW_CLOCK_OFFSET_S``.

Each bad command exits with the code of its error's branch (``gridflow.cli.common.EXIT_CODES``): 3 an
unknown name, 8 a malformed value, 9 a period not over or an ``--at`` in the future. The message
is one line that says what was wrong and what to do, with no traceback, and nothing is written.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from gridflow.cli import app
from tests.support import ROOT

NOW = datetime(2026, 12, 15, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("exit-codes")
    env = {
        "GRIDFLOW_HOME": str(home),
        "GRIDFLOW_CONFIG_FILE": str(home / "absent.yaml"),
        "GRIDFLOW_CLOCK_OFFSET_S": str((NOW - datetime.now(UTC)).total_seconds()),
        "GRIDFLOW_NOTIFICATIONS_FILE": str(ROOT / "tests" / "fixtures" / "notifications" / "runtime.yaml"),
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }
    done = gridflow(env, "init")
    assert done.exit_code == 0, done.output
    return env


def gridflow(env: dict[str, str], *args: str):
    return CliRunner().invoke(app, list(args), env=env)


CASES = [
    *[
        pytest.param(
            [*command, *at],
            8,
            [f"{what} {shown} is outside the years gridflow keeps (2000–2099); check the year you typed"],
            id=f"year-{'-'.join(command[:2])}",
        )
        for command, at, what, shown in [
            (["sla", "due"], ["--at", "0001-01-01T00:00"], "--at", "0001-01-01T00:00:00"),
            (["sla", "sweep"], ["--at", "0001-01-01T00:00"], "--at", "0001-01-01T00:00:00"),
            (["jobs", "run"], ["--at", "0001-01-01T00:00"], "--at", "0001-01-01T00:00:00"),
            (["sla", "due"], ["--at", "9999-12-31T23:59"], "--at", "9999-12-31T23:59:00"),
            (["calendar", "due"], ["0001-01-01T00:00", "2d"], "START", "0001-01-01T00:00:00"),
            (["score", "run"], ["--period", "0001-01"], "month period", "0001-01"),
            (["publish", "run"], ["--quarter", "1999Q1"], "quarter period", "1999Q1"),
        ]
    ],
    pytest.param(
        ["score", "run", "--period", "2026-12"],
        9,
        [
            "month 2026-12 is not over yet: it ends 2027-01-01 00:00 (Asia/Shanghai), and the time is 2026-12-15 10:",
            "; score it once it has ended",
        ],
        id="month-not-over",
    ),
    pytest.param(
        ["score", "run", "--period", "2026-1"],
        8,
        ["bad month period '2026-1': write it like 2026-01"],
        id="month-malformed",
    ),
    pytest.param(
        ["score", "run", "--period", "2026-13"],
        8,
        ["bad month period '2026-13': write it like 2026-11"],
        id="month-13",
    ),
    pytest.param(
        ["publish", "run", "--quarter", "2026Q4"],
        9,
        [
            "quarter 2026Q4 is not over yet: it ends 2027-01-01 00:00 (Asia/Shanghai)",
            "publish it once it has ended (the quarterly job does so at 2027-01-01 03:00)",
        ],
        id="quarter-not-over",
    ),
    pytest.param(
        ["publish", "run", "--year", "2026"],
        9,
        ["year 2026 is not over yet", "(the annual job does so at 2027-01-02 01:00)"],
        id="year-not-over",
    ),
    pytest.param(
        ["publish", "run", "--quarter", "2026Q5"],
        8,
        ["bad quarter period '2026Q5': write it like 2026Q4"],
        id="quarter-malformed",
    ),
    pytest.param(
        ["notices", "preview", "no_event"],
        3,
        ["no notice templates for event 'no_event'; events are: ", "sla_breach"],
        id="unknown-event",
    ),
    pytest.param(
        ["notices", "preview", "sla_breech"],
        3,
        ["event 'sla_breech'; did you mean 'sla_breach'? events are: "],
        id="misspelt-event",
    ),
    pytest.param(
        ["score", "run", "--period", "2026-11", "--at", "2026-12-20T10:00"],
        9,
        [
            "--at 2026-12-20 10:00 CST is in the future (now 2026-12-15 10:",
            "leave --at out, or give a past time",
        ],
        id="at-in-the-future",
    ),
    pytest.param(
        ["publish", "run", "--quarter", "2026Q3", "--at", "2027-01-01T09:00"],
        9,
        ["--at 2027-01-01 09:00 CST is in the future"],
        id="publish-at-in-the-future",
    ),
    pytest.param(
        ["score", "run", "--period", "2026-11", "--at", "tomorrow"],
        8,
        ["bad time 'tomorrow': write it like 2026-03-02T10:00 (local) or with an offset"],
        id="at-malformed",
    ),
    pytest.param(
        ["score", "show", "--period", "2026-11", "--by", "county"],
        8,
        ["unknown --by 'county'; one of grid, worker, village"],
        id="unknown-by",
    ),
    pytest.param(
        ["jobs", "run", "weekly_scoring"],
        3,
        ["unknown job 'weekly_scoring'; jobs are: monthly_scoring, quarterly_publication"],
        id="unknown-job",
    ),
]


@pytest.mark.parametrize(("args", "code", "texts"), CASES)
def test_input_errors_exit_with_their_own_code_and_one_clear_line(env, args, code, texts):
    done = gridflow(env, *args)
    assert done.exit_code == code, (args, done.output)
    assert done.stdout == ""
    message = done.stderr
    assert message.startswith("error: ") and message.count("\n") == 1, message
    for text in texts:
        assert text in message, (text, message)
    assert "Traceback" not in message and "ConfigError" not in message


def test_refused_periods_wrote_nothing(env):
    for period in ("2026-12", "2026Q4", "2026-11"):
        done = gridflow(env, "score", "history", "--period", period, "--json")
        assert done.exit_code == 0 and done.stdout.strip() == "[]", done.output
    done = gridflow(env, "publish", "show", "--json")
    assert done.exit_code == 0, done.output
