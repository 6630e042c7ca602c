"""The README's tour, run as a reader runs it, and rewritten from a real run.

A tour is every ```text block of a Markdown file (README.md, and the examples of
docs/operations.md: :data:`TOURS`) with ``$ gridflow …`` lines: each ``$`` line is a command,
the lines under it are what it prints, and ``(exit N)`` closes the output of a command that
ends with a non-zero exit code. Other blocks (```sh: installation, psql, shell set-up) are not
run. Each file is one story, run in order on a fresh home of its own. HTML comments on a line
of their own just before a block direct the run of that block:

``<!-- tour: at 2026-11-28T10:03+08:00 -->``
    The clock reads this instant when the block starts and runs on from there (real time). A
    block without it continues the clock of the block before. The clock is the product's own
    ``GRIDFLOW_CLOCK_OFFSET_S``, set for each command, so the times printed are the story's.
``<!-- tour: interrupt after "SLA fired" "notices:" -->``
    The command runs for a bounded time as a real process (``gridflow up`` runs until Ctrl-C):
    once lines containing these texts have appeared, in this order, it gets SIGINT (the output
    shows ``^C`` there). It has :data:`INTERRUPT_WITHIN_S` to get that far and
    :data:`STOP_WITHIN_S` to stop. Every line the file shows must have been printed, in any
    order (a worker's threads interleave their lines) and it may print more (e.g. Celery's
    warning when run as root, left out of a rewrite). Log times are shown moved by the clock
    offset, as on the story's day; the host name is shown as ``host``.
``<!-- tour: skip, <why> -->``
    The block is not run; :func:`skips` lists it with the reason.

Every other command runs in this process through ``typer.testing.CliRunner`` (one import, a
fraction of a second per command), with ``GRIDFLOW_HOME`` a fresh directory (the README's first
command, ``gridflow init``, creates its SQLite database) and every other ``GRIDFLOW_*`` variable
removed; the working directory is the checkout, as for a reader. ``NAME=value`` before
``gridflow`` sets a variable for that command; ``| head -N`` and ``| tail -N`` after it are
applied to its output. The comparison ignores only what must vary between two runs
(:data:`MASKS`, :func:`masked`): trailing spaces, the paths of the checkout and of the home
(shown as ``…``), how many milliseconds something took, how many seconds ago a step was taken, and
the seconds of times (the clock runs on from each block's instant, as fast as the commands go).

    python -m tests.readme_tour               # run every tour, print each difference (exit 1 if any)
    python -m tests.readme_tour --write       # rewrite the outputs they show from a real run
    python -m tests.readme_tour README.md     # one file
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TOURS = [README, ROOT / "docs" / "operations.md"]  # what `python -m tests.readme_tour` runs by default
GRIDFLOW = Path(sys.executable).with_name("gridflow")
COLUMNS = 100  # the README says so
INTERRUPT_WITHIN_S = 60
STOP_WITHIN_S = 30

DIRECTIVE = re.compile(r"^\s*<!--\s*tour:\s*(.*?)\s*-->\s*$")  # a line of its own
FENCE = re.compile(r"^```(\S*)\s*$")
EXIT_LINE = re.compile(r"^\(exit (\d+)\)$")
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(,\d{3})?")

# What may differ between two honest runs, masked on both sides before comparing.
MASKS: list[tuple[re.Pattern[str], str]] = [
    (LOG_TIME, "<log time>"),  # a log line's time: when the process happened to run
    (re.compile(r"\b\d+ ms\b"), "<n> ms"),  # how long a command took
    (re.compile(r"\b\d+\.\d s ago\b"), "<n> s ago"),  # how long before a refused step the other one was taken
    (re.compile(r"(T\d\d:\d\d):\d\d(\.\d+)?"), r"\1:<s>"),  # seconds in ISO times: the clock runs on
    (re.compile(r"\b(\d\d:\d\d):\d\d\b"), r"\1:<s>"),
    (re.compile(r"\bgf([ts])_[A-Za-z0-9_-]+"), r"gf\1_<token>"),  # a token is random, shown once
]
# What a real process prints that is not the product's and not the README's business.
NOISE: list[re.Pattern[str]] = [
    re.compile(r"Restoring \d+ unacknowledged message\(s\)"),  # whether an ETA was held at Ctrl-C
]
ROOT_WARNING = re.compile(r"SecurityWarning: You're running the worker with superuser privileges")


class TourError(Exception):
    """The README's tour cannot be read: a directive or a command this module does not know."""


@dataclass
class Command:
    file: str  # as named in messages: README.md, docs/operations.md
    line: int  # 1-based line of the `$` line
    text: str  # as shown, after "$ "
    expected: list[str]  # the output lines as shown, without "(exit N)" and trailing blank lines
    expected_exit: int
    end: int  # 0-based index after the last output line (exit line included)

    @property
    def start(self) -> int:  # 0-based index of the first output line
        return self.line


@dataclass
class Block:
    file: str
    line: int  # 1-based line of the opening fence
    commands: list[Command]
    at: datetime | None = None
    skip: str | None = None
    interrupt: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    block: Block
    command: Command
    output: list[str]  # as it would be shown in the README
    exit_code: int
    skipped: str | None = None

    @property
    def shown(self) -> list[str]:
        return self.output + ([f"(exit {self.exit_code})"] if self.exit_code else [])

    @property
    def matches(self) -> bool:
        if self.skipped:
            return True
        if self.exit_code != self.command.expected_exit:
            return False
        expected, actual = masked(self.command.expected), masked(self.output)
        if self.block.interrupt:  # a worker's threads interleave their lines: each shown line, in any order
            return not Counter(expected) - Counter(actual)
        return expected == actual

    def explain(self) -> str:
        """Where in the README, and a diff of what it shows against what the command printed."""
        expected = self.command.expected + (
            [f"(exit {self.command.expected_exit})"] if self.command.expected_exit else []
        )
        kind = (
            " (each line the README shows must be printed, in any order; more may be)" if self.block.interrupt else ""
        )
        diff = difflib.unified_diff(
            expected, self.shown, f"{self.command.file}:{self.command.line + 1}", "what it printed", lineterm="", n=2
        )
        return f"{self.command.file}:{self.command.line}: $ {self.command.text}{kind}\n" + "\n".join(diff)


def mask(line: str) -> str:
    for pattern, replacement in MASKS:
        line = pattern.sub(replacement, line)
    return line


def masked(lines: list[str]) -> list[str]:
    """:func:`mask` on each line, and the digits of a table's ``ms`` column (how long a delivery took)."""
    timed: set[int] = set()
    out = []
    for line in lines:
        if "┃" in line:
            timed |= {i for i, cell in enumerate(line.split("┃")) if cell.strip() == "ms"}
        elif timed and "│" in line:
            cells = line.split("│")
            line = "│".join(_any_number(c) if i in timed else c for i, c in enumerate(cells))
        out.append(mask(line))
    return out


def _any_number(cell: str) -> str:
    return re.sub(r"\d+", "0", cell).strip().rjust(len(cell))


# -- reading the README ------------------------------------------------------------------------


def parse(text: str, name: str = "README.md") -> list[Block]:
    """The tour blocks of a Markdown file, with their commands, expected outputs and directives."""
    lines = text.splitlines()
    blocks: list[Block] = []
    pending: list[str] = []
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if not fence:
            pending += DIRECTIVE.findall(lines[index])
            index += 1
            continue
        end = next((j for j in range(index + 1, len(lines)) if lines[j].startswith("```")), None)
        if end is None:
            raise TourError(f"{name}:{index + 1}: a code block that never ends")
        body = lines[index + 1 : end]
        if fence.group(1) == "text" and any(line.startswith("$ ") for line in body):
            blocks.append(_block(name, index, body, pending))
        elif pending:
            raise TourError(f"{name}:{index + 1}: a tour directive before a block that is not a tour block")
        elif any(line.startswith("$ gridflow") for line in body):
            raise TourError(f"{name}:{index + 1}: `$ gridflow` lines belong in ```text tour blocks")
        pending = []
        index = end + 1
    return blocks


def _block(name: str, fence: int, body: list[str], directives: list[str]) -> Block:
    if not body[0].startswith("$ "):
        raise TourError(f"{name}:{fence + 2}: a tour block starts with a `$ ` command line")
    block = Block(name, fence + 1, [])
    for directive in directives:
        _apply(block, directive)
    starts = [i for i, line in enumerate(body) if line.startswith("$ ")] + [len(body)]
    for first, after in zip(starts, starts[1:], strict=False):
        output = body[first + 1 : after]
        while output and not output[-1].strip():
            output.pop()
        end = fence + 2 + first + len(output)
        code = 0
        if output and (exit_line := EXIT_LINE.match(output[-1])):
            code = int(exit_line.group(1))
            output.pop()
        block.commands.append(Command(name, fence + 2 + first, body[first][2:], output, code, end))
    return block


def _apply(block: Block, directive: str) -> None:
    verb, _, rest = directive.partition(" ")
    where = f"{block.file}:{block.line}"
    if verb == "at":
        try:
            at = datetime.fromisoformat(rest.strip())
        except ValueError as exc:
            raise TourError(f"{where}: `tour: at {rest}`: write an ISO time with its offset") from exc
        if at.tzinfo is None:
            raise TourError(f"{where}: `tour: at {rest}` needs its offset, e.g. +08:00")
        block.at = at
    elif verb in ("skip", "skip,"):
        reason = rest.strip(" ,")
        if not reason:
            raise TourError(f"{where}: `tour: skip` needs its reason: `tour: skip, why`")
        block.skip = reason
    elif verb == "interrupt" and rest.startswith("after "):
        block.interrupt = re.findall(r'"([^"]+)"', rest)
        if not block.interrupt:
            raise TourError(f'{where}: `tour: interrupt after "text" …` names the lines to wait for')
    else:
        raise TourError(f"{where}: unknown directive `tour: {directive}` (at, interrupt after, skip)")


# -- running it ---------------------------------------------------------------------------------


class Clock:
    """The tour's clock: ``GRIDFLOW_CLOCK_OFFSET_S`` for each command, so that "now" is the README's."""

    def __init__(self) -> None:
        self.offset = 0.0

    def set(self, at: datetime) -> None:
        self.offset = at.timestamp() - time.time()

    @property
    def env(self) -> str:
        return f"{self.offset:.3f}"


@dataclass
class Home:
    """A fresh gridflow home and the environment every tour command runs with."""

    work: Path
    clock: Clock = field(default_factory=Clock)

    @property
    def path(self) -> Path:
        return self.work / "var"

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        return {
            "GRIDFLOW_HOME": str(self.path),
            "GRIDFLOW_CONFIG_FILE": str(self.work / "absent.yaml"),  # not the checkout's config/gridflow.yaml
            "GRIDFLOW_CLOCK_OFFSET_S": self.clock.env,
            "COLUMNS": str(COLUMNS),
            "NO_COLOR": "1",
            **extra,
        }

    def shown(self, text: str) -> list[str]:
        """Output as the README shows it: the checkout and the home as `…`, no trailing spaces."""
        lines = [_hide(_hide(line, str(self.work)), str(ROOT)).rstrip() for line in text.splitlines()]
        while lines and not lines[-1]:
            lines.pop()
        return lines


def _hide(line: str, path: str) -> str:
    """``path`` as ``…``; in a table's cell the cell keeps its width (the spaces go before its border)."""
    while (at := line.find(path)) >= 0:
        after = at + len(path)
        borders = [i for i in (line.find("│", after), line.find("┃", after)) if i >= 0]
        if borders:
            border = min(borders)
            line = line[:at] + "…" + line[after:border] + " " * (len(path) - 1) + line[border:]
        else:
            line = line[:at] + "…" + line[after:]
    return line


def run(blocks: list[Block], work: Path) -> list[Outcome]:
    """Run every command of the tour in order on a fresh home under ``work``."""
    home = Home(work)
    outcomes = []
    with _in_checkout():
        for block in blocks:
            if block.at is not None:
                home.clock.set(block.at)
            for command in block.commands:
                if block.skip:
                    outcomes.append(Outcome(block, command, command.expected, command.expected_exit, block.skip))
                    continue
                output, code = _run_one(block, command, home)
                outcomes.append(Outcome(block, command, output, code))
    return outcomes


@contextlib.contextmanager
def _in_checkout() -> Iterator[None]:
    """In the checkout, with no GRIDFLOW_* setting of the caller's (the tour's own come per command)."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("GRIDFLOW_")}
    try:
        with contextlib.chdir(ROOT):
            yield
    finally:
        os.environ.update(saved)


def _run_one(block: Block, command: Command, home: Home) -> tuple[list[str], int]:
    env, args, pipe = _split(command)
    if block.interrupt:
        return _interrupted(args, home, env, block.interrupt)
    from typer.testing import CliRunner

    from gridflow.cli import app

    result = CliRunner().invoke(app, args, env=home.env(env), catch_exceptions=True)
    text = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        text += "".join(traceback.format_exception(result.exception))
    lines = home.shown(text)
    for kind, count in pipe:
        lines = lines[:count] if kind == "head" else lines[-count:]
    return lines, result.exit_code


def _split(command: Command) -> tuple[dict[str, str], list[str], list[tuple[str, int]]]:
    """``NAME=value gridflow ARGS | head -N``: the environment, the arguments, the filters."""
    words = shlex.split(command.text, comments=True)
    env = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    if not words or words[0] != "gridflow":
        raise TourError(f"{command.file}:{command.line}: a tour command is `gridflow …`: {command.text}")
    parts: list[list[str]] = [[]]
    for word in words[1:]:
        if word == "|":
            parts.append([])
        else:
            parts[-1].append(word)
    pipes = []
    for part in parts[1:]:
        filt = re.fullmatch(r"(head|tail) (?:-n )?-?(\d+)", " ".join(part))
        if not filt:
            raise TourError(f"{command.file}:{command.line}: only `| head -N` or `| tail -N` may follow a command")
        pipes.append((filt.group(1), int(filt.group(2))))
    return env, parts[0], pipes


def _interrupted(args: list[str], home: Home, extra: dict[str, str], waits: list[str]) -> tuple[list[str], int]:
    """Run a command that runs until Ctrl-C as a real process; SIGINT once ``waits`` have been printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
    env.update(home.env(extra), PYTHONUNBUFFERED="1")
    with subprocess.Popen(
        [str(GRIDFLOW), *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        lines: queue.Queue[str | None] = queue.Queue()
        reader = threading.Thread(target=_pump, args=(proc, lines), daemon=True)
        reader.start()
        printed = _until(lines, waits) + _drain(lines)
        printed += _interrupt(proc)
        reader.join(STOP_WITHIN_S)
        printed += _drain(lines)
    return _log_lines(home.shown("".join(printed)), home.clock.offset), proc.returncode


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    for line in proc.stdout or ():
        lines.put(line)
    lines.put(None)


def _until(lines: queue.Queue[str | None], waits: list[str]) -> list[str]:
    """What is printed until lines containing ``waits`` have appeared in order (or the bound passed)."""
    printed: list[str] = []
    remaining, deadline = list(waits), time.monotonic() + INTERRUPT_WITHIN_S
    while remaining and time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            line = lines.get(timeout=0.2)
            if line is None:  # it ended by itself
                break
            printed.append(line)
            if remaining[0] in line:
                remaining.pop(0)
    if remaining:
        printed.append(f"[tour: gave up waiting for {remaining[0]!r}]\n")
    return printed


def _interrupt(proc: subprocess.Popen[str]) -> list[str]:
    """Ctrl-C, as a terminal shows it; a process still running :data:`STOP_WITHIN_S` later is killed."""
    if proc.poll() is not None:
        return []
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return ["^C\n", f"[tour: killed, still running {STOP_WITHIN_S} s after Ctrl-C]\n"]
    return ["^C\n"]


def _drain(lines: queue.Queue[str | None]) -> list[str]:
    """What the reader has queued so far."""
    printed = []
    with contextlib.suppress(queue.Empty):
        while (line := lines.get_nowait()) is not None:
            printed.append(line)
    return printed


def _log_lines(lines: list[str], offset: float) -> list[str]:
    """A real process's lines as the README shows them: log times moved onto the tour's clock, the
    root warning and :data:`NOISE` left out, the host name as ``host``."""
    host = re.compile(rf"@{re.escape(socket.gethostname())}\b")
    shown, in_warning = [], False
    for line in lines:
        if ROOT_WARNING.search(line):
            in_warning = True
        if in_warning:
            in_warning = "_warn_or_raise_security_error" not in line
            continue
        if any(p.search(line) for p in NOISE):
            continue
        if found := LOG_TIME.match(line):
            moved = datetime.fromisoformat(found.group(1)) + timedelta(seconds=round(offset))
            line = moved.strftime("%Y-%m-%d %H:%M:%S") + line[len(found.group(1)) :]
        shown.append(host.sub("@host", line))
    return shown


# -- rewriting it -------------------------------------------------------------------------------


def rewrite(text: str, outcomes: list[Outcome]) -> str:
    """The README with each command's output replaced by what it printed (skipped blocks kept)."""
    lines = text.splitlines()
    for outcome in sorted(outcomes, key=lambda o: o.command.line, reverse=True):
        if outcome.skipped:
            continue
        lines[outcome.command.start : outcome.command.end] = outcome.shown
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")


def skips(outcomes: list[Outcome]) -> list[tuple[str, int, str]]:
    """The skipped blocks: (file, line, why)."""
    return sorted({(o.block.file, o.block.line, o.skipped) for o in outcomes if o.skipped})


def report(outcomes: list[Outcome]) -> str:
    """Every difference, then the skipped blocks; empty when the file is true."""
    wrong = [o.explain() for o in outcomes if not o.matches]
    if not wrong:
        return ""
    parts = [
        f"{len(wrong)} command(s) of the tour print something else now. If the new output is right, rewrite "
        "the outputs with `python -m tests.readme_tour --write` and read the diff.",
        *wrong,
    ]
    if skipped := skips(outcomes):
        parts.append("skipped: " + "; ".join(f"{file}:{line} ({why})" for file, line, why in skipped))
    if (ROOT / "config" / "notifications.yaml").exists():
        parts.append("note: config/notifications.yaml exists in this checkout; the tour shows the built-in default")
    return "\n\n".join(parts)


def tour(path: Path) -> list[Outcome]:
    """Run the tour of one file on a fresh home of its own."""
    blocks = parse(path.read_text(encoding="utf-8"), name_of(path))
    with tempfile.TemporaryDirectory(prefix="gridflow-tour-") as work:  # the same path length every time
        return run(blocks, Path(work))


def name_of(path: Path) -> str:
    return str(path.resolve().relative_to(ROOT)) if path.resolve().is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.readme_tour", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, default=TOURS, help="default: " + ", ".join(map(name_of, TOURS)))
    parser.add_argument("--write", action="store_true", help="rewrite the outputs shown from this run")
    options = parser.parse_args(argv)
    failed = False
    for path in options.files:
        started = time.monotonic()
        outcomes = tour(path)
        took = f"{len(outcomes)} command(s) in {time.monotonic() - started:.1f} s"
        for file, line, why in skips(outcomes):
            print(f"skipped {file}:{line}: {why}")
        if options.write:
            text = path.read_text(encoding="utf-8")
            changed = sum(1 for o in outcomes if not o.skipped and o.shown != o.command.expected + _exit(o.command))
            path.write_text(rewrite(text, outcomes), encoding="utf-8")
            print(f"{name_of(path)}: {took}; {changed} output(s) rewritten")
        elif problems := report(outcomes):
            print(problems)
            failed = True
        else:
            print(f"{name_of(path)}: {took}; each prints what is shown")
    return 1 if failed else 0


def _exit(command: Command) -> list[str]:
    return [f"(exit {command.expected_exit})"] if command.expected_exit else []


if __name__ == "__main__":
    sys.exit(main())
