"""How long a clerk waits for the ``gridflow`` command: start-up, side by side with Python's own.

Every figure is the wall time of a whole process, as a person at a terminal waits for it,
measured in rounds that rotate the order of the commands (drift hits each alike):

- ``python -c 'import sqlalchemy'`` — the yardstick: what importing one database library costs
  on this machine at this moment; every other figure is also printed as a ratio to it;
- ``python -c pass`` — the interpreter alone;
- ``gridflow --help``;
- ``gridflow case show CODE`` on the embedded SQLite database (a home made for the run);
- ``gridflow case list`` and ``gridflow calendar due …`` (a read of many rows; no database).

Targets (issue 12): ``--help`` ≤ 0.3 s and ``case show`` ≤ 0.7 s, medians of 10 rounds.
``--check`` exits 1 when a target is missed. ``--smoke`` (run by the test suite) takes one round
and checks only that every command works. ``--importtime`` also lists the slowest imports of
``gridflow --help``.

    .venv/bin/python -m bench.cli                 # 10 rounds, table
    .venv/bin/python -m bench.cli --check --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = Path(sys.executable)
GRIDFLOW = PYTHON.with_name("gridflow")
TARGETS_S = {"gridflow --help": 0.3, "gridflow case show": 0.7}
YARDSTICK = "import sqlalchemy"


@dataclass(frozen=True)
class Side:
    name: str
    argv: list[str]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
    env.update(GRIDFLOW_HOME=str(home), GRIDFLOW_CONFIG_FILE=str(home / "absent.yaml"), COLUMNS="120")
    return env


def _run(argv: list[str], env: dict[str, str]) -> float:
    """One process, start to exit, in seconds; a failure is an error (a bench must not time a crash)."""
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"bench.cli: {' '.join(argv)} exited {done.returncode}\n{done.stdout}{done.stderr}")
    return took


def make_home(home: Path, say: Callable[[str], None]) -> str:
    """A fresh embedded home with one case in it; returns the case's code."""
    env = _env(home)
    say(f"home {home}: gridflow init, one case")
    _run([str(GRIDFLOW), "init"], env)
    out = subprocess.run(
        [
            str(GRIDFLOW),
            "case",
            "report",
            "-g",
            "mayingtai-01",
            "-a",
            "p-an-yixuan",
            "-t",
            "马营台村1社水管破裂",
            "--json",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)["code"]


def sides(code: str) -> list[Side]:
    gf = str(GRIDFLOW)
    return [
        Side("python -c pass", [str(PYTHON), "-c", "pass"]),
        Side(YARDSTICK, [str(PYTHON), "-c", "import sqlalchemy"]),
        Side("gridflow --help", [gf, "--help"]),
        Side("gridflow case show", [gf, "case", "show", code]),
        Side("gridflow case list", [gf, "case", "list"]),
        Side("gridflow calendar due", [gf, "calendar", "due", "2026-09-30T16:00", "2d"]),
    ]


def measure(all_sides: list[Side], env: dict[str, str], rounds: int, warm: bool = True) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {s.name: [] for s in all_sides}
    for side in all_sides if warm else []:  # warm the file cache and .pyc files; not timed
        _run(side.argv, env)
    for r in range(rounds):
        shift = r % len(all_sides)
        for side in all_sides[shift:] + all_sides[:shift]:
            times[side.name].append(_run(side.argv, env))
    return times


def slowest_imports(env: dict[str, str], top: int = 12) -> list[tuple[str, float]]:
    """``python -X importtime`` of ``gridflow --help``: the modules with the largest cumulative time."""
    done = subprocess.run(
        [str(PYTHON), "-X", "importtime", "-m", "gridflow", "--help"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = []
    for line in done.stderr.splitlines():  # "import time: self | cumulative | name", nesting by indent
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].rstrip()
        if len(name) - len(name.lstrip()) <= 3:  # the modules gridflow itself imports, not their insides
            rows.append((name.strip(), int(parts[1]) / 1e6))
    return sorted(rows, key=lambda r: -r[1])[:top]


def report(times: dict[str, list[float]]) -> dict[str, dict[str, float | bool | None]]:
    base = statistics.median(times[YARDSTICK])
    result = {}
    for name, values in times.items():
        median = statistics.median(values)
        target = TARGETS_S.get(name)
        result[name] = {
            "median_s": round(median, 4),
            "min_s": round(min(values), 4),
            "ratio_to_import_sqlalchemy": round(median / base, 2),
            "target_s": target,
            "met": None if target is None else median <= target,
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cli", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="one round: every command works (the test suite)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--importtime", action="store_true", help="also list the slowest imports of --help")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rounds = 1 if args.smoke else max(1, args.rounds)
    say = (lambda _t: None) if args.json else (lambda t: print(t, file=sys.stderr))
    with tempfile.TemporaryDirectory(prefix="gridflow-bench-cli-") as tmp:
        home = Path(tmp)
        code = make_home(home, say)
        env = _env(home)
        say(f"{rounds} round(s) of {len(sides(code))} commands, order rotated each round")
        times = measure(sides(code), env, rounds, warm=not args.smoke)
        imports = slowest_imports(env) if args.importtime else []
    result = report(times)
    missed = [name for name, r in result.items() if r["met"] is False]
    machine = {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()}
    if args.json:
        print(json.dumps({"rounds": rounds, "machine": machine, "commands": result, "imports": imports}, indent=2))
    else:
        _print(result, rounds, machine, imports)
    if args.check and not args.smoke and missed:
        print(f"targets missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


def _print(result: dict, rounds: int, machine: dict, imports: list[tuple[str, float]]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"machine {machine['platform']}, {machine['cpus']} CPUs, Python {machine['python']}", highlight=False)
    table = Table(title=f"gridflow start-up: median of {rounds} round(s), wall time of the whole process")
    for column in ("command", "median s", "min s", f"× {YARDSTICK}", "target s", "met"):
        table.add_column(column, justify="left" if column == "command" else "right")
    for name, r in result.items():
        met = "" if r["met"] is None else ("yes" if r["met"] else "NO")
        target = "" if r["target_s"] is None else f"{r['target_s']:.2f}"
        ratio = f"{r['ratio_to_import_sqlalchemy']:.2f}"
        table.add_row(name, f"{r['median_s']:.3f}", f"{r['min_s']:.3f}", ratio, target, met)
    console.print(table)
    if imports:
        slow = Table(title="slowest imports of gridflow --help (cumulative)")
        slow.add_column("module")
        slow.add_column("s", justify="right")
        for name, seconds in imports:
            slow.add_row(name, f"{seconds:.3f}")
        console.print(slow)


if __name__ == "__main__":
    sys.exit(main())
