"""The ``gridflow`` console script, run as a user runs it, on SQLite and on PostgreSQL.

Each command is a real process (the installed entry point) whose settings come
from the environment: ``GRIDFLOW_HOME`` points at a temporary directory, and for
PostgreSQL ``GRIDFLOW_DATABASE_URL`` names a fresh database; ``GRIDFLOW_CLOCK_OFFSET_S``
starts the home's clock at T0 (Monday 2 March 2026, 09:00 in Shanghai), whatever today
is. Every other ``GRIDFLOW_*`` variable is removed. One home per back end is shared by the
module: the ``homes`` fixture drives both at once, and commands that do not depend
on each other run concurrently, because each process costs close to a second of
CPU (mostly imports). The tests then read what the commands printed.

Exit codes are those of ``gridflow.cli``: 0 done, 1 invalid input file, 2 usage,
3 not found, 4 rejected, 5 stale version, 6 database, 7 settings.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from engine.definitions.loader import load_workflow_file
from engine.store.db import create_db_engine, session_factory
from tests.support import FIXTURES, ORG_FILE, T0, WORKFLOW_FILE, Database, clock_offset

GRIDFLOW = Path(sys.executable).with_name("gridflow")
TIMEOUT_S = 60
CENTER, WORKER, GRID = "p-chen-jia", "p-an-yixuan", "mayingtai-01"
UNKNOWN_CASE = "SL-2099-999999"
BACKENDS = ["sqlite", "postgresql"]


@dataclass
class Run:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return f"gridflow {' '.join(self.args)} → {self.code}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"


@dataclass
class Home:
    """A gridflow home: the environment its commands run with, and what they printed."""

    path: Path
    backend: str
    database_url: str | None = None
    runs: dict[str, Run] = field(default_factory=dict)
    code: str = ""  # of the case walked from report to verified
    snapshots: dict[str, dict[str, list[tuple]]] = field(default_factory=dict)
    clock_offset_s: str = field(default_factory=lambda: clock_offset(T0))  # the home's clock starts at T0

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
        env.update(
            GRIDFLOW_HOME=str(self.path),
            GRIDFLOW_CONFIG_FILE=str(self.path / "absent.yaml"),
            GRIDFLOW_CLOCK_OFFSET_S=self.clock_offset_s,
            COLUMNS="200",
            NO_COLOR="1",
        )
        if self.database_url:
            env["GRIDFLOW_DATABASE_URL"] = self.database_url
        return env

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Run:
        self.path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [str(GRIDFLOW), *args],
            env=env or self.env,
            cwd=self.path,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        return Run(tuple(args), done.returncode, done.stdout, done.stderr)

    def many(self, **commands: tuple[str, ...]) -> dict[str, Run]:
        """Run independent commands concurrently; results by name."""
        return concurrently(**{name: partial(self, *args) for name, args in commands.items()})

    def snapshot(self) -> dict[str, list[tuple]]:
        url = self.database_url or f"sqlite:///{self.path / 'gridflow.db'}"
        engine = create_db_engine(url)
        try:
            return Database(self.backend, url, engine, session_factory(engine)).snapshot()
        finally:
            engine.dispose()


def concurrently(**calls: Callable[[], Run]) -> dict[str, Run]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(call) for name, call in calls.items()}
        return {name: f.result() for name, f in futures.items()}


def expect(run: Run, code: int) -> Run:
    assert run.code == code, str(run)
    return run


@pytest.fixture(scope="module")
def homes(request, tmp_path_factory) -> dict[str, Home | str]:
    """Both back ends walked through the same story at once; a skip reason if PostgreSQL is missing."""
    homes: dict[str, Home | str] = {"sqlite": Home(tmp_path_factory.mktemp("home-sqlite"), "sqlite")}
    try:
        url = request.getfixturevalue("pg_server").create("gridflow_cli")
    except pytest.skip.Exception as exc:  # locally without PostgreSQL; under CI pg_server fails instead
        homes["postgresql"] = str(exc)
    else:
        homes["postgresql"] = Home(tmp_path_factory.mktemp("home-postgresql"), "postgresql", url)
    walking = [h for h in homes.values() if isinstance(h, Home)]
    with ThreadPoolExecutor(max_workers=len(walking)) as pool:
        list(pool.map(_walk, walking))
    return homes


@pytest.fixture(params=BACKENDS)
def home(request, homes) -> Home:
    found = homes[request.param]
    if isinstance(found, str):
        pytest.skip(found)
    return found


def _walk(home: Home) -> None:
    """Before init; init twice; one case from report to ``verified``, every refusal tried on the way.

    Refusals run together between two snapshots of the database; read-only
    commands run together at the end, beside the first publish of a new
    workflow version (they name version 1, so they do not race with it).
    """
    home.runs["before init"] = home("case", "list")
    home.runs["init"] = expect(home("init"), 0)
    home.runs["init again"] = expect(home("init"), 0)
    code = home.code = _report(home)
    fire = ("case", "fire", code)
    classify = (*fire, "classify", "-f", "category=water_supply", "-f", "priority=urgent")
    home.snapshots["before refusals"] = home.snapshot()
    home.runs.update(
        home.many(
            unknown=("case", "show", UNKNOWN_CASE),
            not_allowed=(*fire, "verify", "-a", CENTER, "-f", "satisfaction=satisfied"),
            wrong_role=(*classify, "-a", WORKER),
            bad_value=(*fire, "classify", "-a", CENTER, "-f", "category=lava", "-f", "priority=urgent"),
            bad_org=("org", "load", str(_bad_org_chart(home.path))),
        )
    )
    home.snapshots["after refusals"] = home.snapshot()
    for name, args in [
        ("classify", (*classify, "-a", CENTER)),
        ("assign", (*fire, "assign", "-a", CENTER, "-f", f"assignee={WORKER}", "--expect-version", "2")),
        ("accept", (*fire, "accept", "-a", WORKER)),
        ("resolve", (*fire, "resolve", "-a", WORKER, "-f", "resolution=已更换水管")),
        ("verify", (*fire, "verify", "-a", CENTER, "-f", "satisfaction=satisfied")),
    ]:
        home.runs[name] = home(*args)
    revised = str(_revised_workflow(home.path))
    home.runs.update(
        home.many(
            show=("case", "show", code, "--json"),
            list=("case", "list", "--json"),
            history=("case", "history", code, "--json"),
            org=("org", "show", "--json"),
            workflow=("workflow", "show", "grid_case", "--version", "1", "--json"),
            graph=("workflow", "graph", "grid_case", "--version", "1"),
            stale=(*fire, "verify", "-a", CENTER, "-f", "satisfaction=satisfied", "--expect-version", "5"),
            publish=("workflow", "publish", revised),
        )
    )
    home.runs["publish again"] = home("workflow", "publish", revised)


def _bad_org_chart(directory: Path) -> Path:
    path = directory / "bad-org.yaml"
    text = ORG_FILE.read_text(encoding="utf-8")
    path.write_text(text.replace("      - role: center\n", "      - role: centre\n", 1), encoding="utf-8")
    return path


def _revised_workflow(directory: Path) -> Path:
    path = directory / "grid_case.yaml"
    text = WORKFLOW_FILE.read_text(encoding="utf-8")
    path.write_text(text.replace("title: 网格事件处置流程\n", "title: 网格事件处置流程（修订）\n", 1), encoding="utf-8")
    return path


def _report(home: Home) -> str:
    run = home.runs["report"] = expect(
        home("case", "report", "-g", GRID, "-a", WORKER, "-t", "马营台村1社水管破裂", "--json"), 0
    )
    case = run.json()
    assert case["code"] == "SL-2026-000001"
    return case["code"]


# -- init --------------------------------------------------------------------------------


def test_init_creates_the_database_and_loads_the_township(home):
    out = home.runs["init"].stdout
    assert "schema created at" in out
    assert "places 99 added, 0 updated, 0 deactivated; people 87 added" in out
    assert "grid_case v1 网格事件处置流程 (published)" in out
    assert "6 villages, 69 grids, 87 people, 1 workflow versions, 0 cases" in out


def test_init_again_changes_nothing(home):
    out = home.runs["init again"].stdout
    assert "(schema up to date)" in out
    assert "places 0 added, 0 updated, 0 deactivated; people 0 added, 0 updated, 0 deactivated; roles +0 −0" in out
    assert "grid_case v1 网格事件处置流程 (unchanged)" in out
    assert "6 villages, 69 grids" in out


# -- a case from report to verified --------------------------------------------------------


def test_report_prints_the_first_case_code(home):
    case = home.runs["report"].json()
    assert (case["status"], case["version"], case["grid"], case["reporter"]) == ("reported", 1, GRID, WORKER)
    assert {t["trigger"] for t in case["allowed_triggers"]} == {"classify", "void"}


def test_every_step_of_the_lifecycle_succeeds(home):
    code = home.code
    for version, (step, was, now) in enumerate(
        [
            ("classify", "reported", "classified"),
            ("assign", "classified", "assigned"),
            ("accept", "assigned", "in_progress"),
            ("resolve", "in_progress", "resolved"),
            ("verify", "resolved", "verified"),
        ],
        start=2,
    ):
        run = expect(home.runs[step], 0)
        assert f"{code}: {step} {was} → {now} (version {version})" in run.stdout


def test_show_list_and_history_tell_what_happened(home):
    code = home.code
    shown = expect(home.runs["show"], 0).json()
    assert (shown["code"], shown["status"], shown["version"]) == (code, "verified", 6)
    assert (shown["category"], shown["priority"], shown["assignee"], shown["satisfaction"]) == (
        "water_supply",
        "urgent",
        WORKER,
        "satisfied",
    )
    assert shown["closed_at"] is not None and shown["allowed_triggers"] == []

    listed = expect(home.runs["list"], 0).json()
    assert [(c["code"], c["status"]) for c in listed] == [(code, "verified")]

    history = expect(home.runs["history"], 0).json()
    assert [(e["seq"], e["trigger"], e["from"], e["to"], e["actor"]) for e in history] == [
        (1, "report", None, "reported", WORKER),
        (2, "classify", "reported", "classified", CENTER),
        (3, "assign", "classified", "assigned", CENTER),
        (4, "accept", "assigned", "in_progress", WORKER),
        (5, "resolve", "in_progress", "resolved", WORKER),
        (6, "verify", "resolved", "verified", CENTER),
    ]
    assert history[4]["payload"] == {"resolution": "已更换水管"}


# -- refusals and their exit codes ----------------------------------------------------------


def test_unknown_case_exits_3(home):
    run = expect(home.runs["unknown"], 3)
    assert f"no case '{UNKNOWN_CASE}'" in run.stderr


def test_trigger_not_allowed_exits_4_and_lists_the_allowed_ones(home):
    run = expect(home.runs["not_allowed"], 4)
    assert "'verify' is not allowed in state 'reported'" in run.stderr
    allowed = run.stderr.split("allowed now: ", 1)[1].strip()
    assert sorted(allowed.split(", ")) == ["classify (立案分类)", "void (作废)"]


def test_wrong_role_exits_4(home):
    run = expect(home.runs["wrong_role"], 4)
    assert "p-an-yixuan" in run.stderr and "needs" in run.stderr and "center" in run.stderr


def test_bad_field_value_exits_4(home):
    run = expect(home.runs["bad_value"], 4)
    assert "category (事件类别) 'lava' is not one of: " in run.stderr
    assert "water_supply (供水)" in run.stderr and "other (其他)" in run.stderr


def test_refused_commands_changed_nothing(home):
    before, after = home.snapshots["before refusals"], home.snapshots["after refusals"]
    assert len(after["case_event"]) == 1
    assert after == before


def test_stale_expect_version_exits_5(home):
    run = expect(home.runs["stale"], 5)
    assert f"case {home.code} is at version 6, not 5" in run.stderr


# -- reading the org chart and the workflow ---------------------------------------------------


def test_org_show_json(home):
    data = expect(home.runs["org"], 0).json()
    grids = [p for p in data["places"] if p["kind"] == "grid"]
    assert len(grids) == 69 and len([p for p in data["places"] if p["kind"] == "village"]) == 6
    assert sum(g["households"] or 0 for g in grids) == 1881
    an = next(p for p in data["people"] if p["id"] == WORKER)
    assert [(r["role"], r["scope"]) for r in an["roles"]] == [("grid_worker", GRID)]


def test_workflow_show_json(home):
    data = expect(home.runs["workflow"], 0).json()
    assert (data["name"], data["version"], data["initial"]) == ("grid_case", 1, "reported")
    assert {"classify", "assign", "accept", "resolve", "verify"} <= {t["name"] for t in data["triggers"]}


def test_workflow_graph_is_a_mermaid_state_diagram(home):
    out = expect(home.runs["graph"], 0).stdout
    assert "stateDiagram-v2" in out.splitlines()
    assert re.search(r"^\s*reported --> classified: 立案分类 classify$", out, re.M), out


def test_workflow_graph_front_matter_names_the_title(home):
    out = home.runs["graph"].stdout
    assert out.startswith("---\ntitle: 网格事件处置流程\n---\nstateDiagram-v2\n"), out[:80]


def test_the_workflow_keeps_the_order_of_its_yaml(home):
    yaml = load_workflow_file(WORKFLOW_FILE).definition
    shown = home.runs["workflow"].json()
    assert [s["name"] for s in shown["states"]] == list(yaml.states)
    assert [t["name"] for t in shown["triggers"]] == list(yaml.triggers)
    assert [t["trigger"] for t in home.runs["report"].json()["allowed_triggers"]] == ["classify", "void"]
    assert "allowed now: classify (立案分类), void (作废)" in home.runs["not_allowed"].stderr
    assert "is not one of: water_supply (供水), power_supply (用电)," in home.runs["bad_value"].stderr
    graph = home.runs["graph"].stdout
    assert graph.index("as reported") < graph.index("as classified") < graph.index("as voided")


# -- changing the org chart and the workflow ------------------------------------------------


def test_publish_a_modified_workflow_creates_v2_then_says_unchanged(home):
    first = expect(home.runs["publish"], 0)
    assert "published grid_case v2 (网格事件处置流程（修订）)" in first.stdout
    again = expect(home.runs["publish again"], 0)
    assert "unchanged: grid_case v2 already has this exact text" in again.stdout


def test_loading_a_bad_org_chart_exits_1_and_changes_nothing(home):
    run = expect(home.runs["bad_org"], 1)
    bad = re.escape(str(home.path / "bad-org.yaml"))
    assert re.search(rf"{bad}:\d+:15: \[people\[0\]\.roles\[0\]\.role\] unknown role 'centre'", run.stderr), run.stderr
    assert home.snapshots["after refusals"] == home.snapshots["before refusals"]


# -- before init, broken settings, usage -------------------------------------------------------


def test_command_before_init_exits_6_and_says_to_run_init(home):
    run = expect(home.runs["before init"], 6)
    if home.backend == "sqlite":  # a read never creates the database file
        assert "there is no database at" in run.stderr and "run `gridflow init`" in run.stderr
    else:
        assert "has no gridflow schema" in run.stderr and "Run `gridflow init`" in run.stderr


def test_files_settings_and_usage_without_a_database(tmp_path):
    h = Home(tmp_path / "home", "sqlite")
    closed = {**h.env, "GRIDFLOW_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x"}
    bad_zone = {**h.env, "GRIDFLOW_TIMEZONE": "Mars/Olympus"}
    invalid = FIXTURES / "workflows" / "invalid" / "many_problems.yaml"
    runs = concurrently(
        valid=partial(h, "workflow", "validate", str(WORKFLOW_FILE)),
        invalid=partial(h, "workflow", "validate", str(invalid)),
        closed=partial(h, "case", "list", env=closed),
        zone=partial(h, "case", "list", env=bad_zone),
        no_equals=partial(h, "case", "fire", "SL-2026-000001", "classify", "-a", CENTER, "-f", "category"),
    )

    assert "✓" in expect(runs["valid"], 0).stdout and "grid_case" in runs["valid"].stdout

    stderr = expect(runs["invalid"], 1).stderr
    expected = (FIXTURES / "workflows" / "invalid" / "many_problems.errors").read_text(encoding="utf-8").splitlines()
    assert f"{invalid}: {len(expected)} problem(s)" in stderr
    for line in expected:
        where, rest = line.split(": ", 1)
        assert f"{invalid}:{where}: {rest}" in stderr, line

    run = expect(runs["closed"], 6)
    assert "database postgresql://postgres@127.0.0.1:1/x failed" in run.stderr
    assert "GRIDFLOW_DATABASE_URL" in run.stderr

    run = expect(runs["zone"], 7)
    assert "unknown time zone 'Mars/Olympus'" in run.stderr

    run = expect(runs["no_equals"], 2)  # refused while parsing, before any database is opened
    assert "'category': write a field as key=value" in run.stderr
