"""bench/cli.py --smoke: every command it times works, and the report has its ratios and targets."""

from __future__ import annotations

import json

from bench import cli


def test_the_cli_bench_runs_every_command_once(capsys):
    assert cli.main(["--smoke", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    commands = report["commands"]
    assert set(commands) == {s.name for s in cli.sides("SL-2026-000001")}
    assert commands[cli.YARDSTICK]["ratio_to_import_sqlalchemy"] == 1.0
    assert commands["gridflow --help"]["target_s"] == 0.3 and commands["gridflow case show"]["target_s"] == 0.7
