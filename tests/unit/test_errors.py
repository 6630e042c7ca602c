"""The error tree: every GridflowError subclass in the code is drawn in ``engine.errors``'s docstring
where it really sits, and maps to an exit code that ``gridflow.cli`` documents."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import engine.errors
import gridflow.cli
import gridflow.cli.common
from engine.errors import GridflowError

PACKAGES = ("engine", "gridflow", "notifications", "tasks", "config")
SKIPPED = (".__main__", ".migrations")  # the CLI itself, and alembic scripts that run on import
TREE_LINE = re.compile(r"^(?P<indent>[ │├└─]*?)(?:[├└]── )?(?P<name>[A-Z]\w+)\b(?P<rest>.*)$")
CODE_LINE = re.compile(r"^(\d+)\s{2,}(\w+|\(click usage\))?\s")


def _import_everything() -> None:
    for top in PACKAGES:
        package = importlib.import_module(top)
        for info in pkgutil.walk_packages(package.__path__, f"{top}."):
            if not any(part in info.name for part in SKIPPED):
                importlib.import_module(info.name)


def _subclasses(root: type) -> list[type]:
    found, todo = [], [root]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.append(sub)
                todo.append(sub)
    return found


_import_everything()
CLASSES = sorted(_subclasses(GridflowError), key=lambda c: c.__name__)


def _drawn_tree() -> dict[str, tuple[str | None, str]]:
    """name -> (parent name, rest of the line), read from the drawing in engine.errors' docstring."""
    lines = engine.errors.__doc__.split("    GridflowError\n", 1)[1].split("\n\n", 1)[0].splitlines()
    tree: dict[str, tuple[str | None, str]] = {"GridflowError": (None, "")}
    stack = ["GridflowError"]  # stack[depth] is the class drawn last at that depth
    for line in lines:
        match = TREE_LINE.match(line[4:])
        assert match, f"not a line of the tree: {line!r}"
        depth = len(match["indent"]) // 4 + 1
        name = match["name"]
        assert name not in tree, f"{name} is drawn twice"
        tree[name] = (stack[depth - 1], match["rest"])
        del stack[depth:]
        stack.append(name)
    return tree


def _documented_codes() -> dict[int, str]:
    doc = gridflow.cli.__doc__
    return {int(m[1]): m[2] or "" for line in doc.splitlines() if (m := CODE_LINE.match(line))}


def _gridflow_parent(cls: type) -> type:
    return next(base for base in cls.__bases__ if issubclass(base, GridflowError))


def test_the_walk_finds_the_errors_defined_outside_engine_errors():
    names = {c.__name__ for c in CLASSES}
    assert {"NoticeNotFound", "ChannelConfigError", "NotSwept", "DocumentInvalid", "BatchRefused"} <= names
    assert len(names) == len(CLASSES), "two error classes share a name; the tree could not tell them apart"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_error_is_drawn_under_its_parent_with_its_module(cls):
    tree = _drawn_tree()
    assert cls.__name__ in tree, f"draw {cls.__name__} ({cls.__module__}) in engine/errors.py's docstring"
    parent, rest = tree[cls.__name__]
    assert parent == _gridflow_parent(cls).__name__, f"{cls.__name__} is drawn under {parent}"
    if cls.__module__ != "engine.errors":
        assert f"({cls.__module__})" in rest, f"say where {cls.__name__} lives: ({cls.__module__})"


def test_the_drawing_names_no_class_that_does_not_exist():
    assert set(_drawn_tree()) == {"GridflowError", *(c.__name__ for c in CLASSES)}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_error_maps_to_a_documented_exit_code_of_its_own_branch(cls):
    branch = next((b for b, _ in gridflow.cli.common.EXIT_CODES if issubclass(cls, b)), None)
    assert branch is not None, f"{cls.__name__} falls through EXIT_CODES; give its branch an exit code"
    code = gridflow.cli.common.exit_code(cls)
    assert _documented_codes().get(code) == branch.__name__, f"document exit code {code} ({branch.__name__})"


def test_exit_codes_are_distinct_documented_and_none_is_shadowed():
    table = gridflow.cli.common.EXIT_CODES
    codes = [code for _, code in table]
    assert len(set(codes)) == len(codes)
    assert set(_documented_codes()) == {0, 2, *codes}
    for i, (later, _) in enumerate(table):
        for earlier, _ in table[:i]:
            assert not issubclass(later, earlier), f"{later.__name__} is caught first by {earlier.__name__}"


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (engine.errors.WorkflowInvalid, 1),
        (engine.errors.CaseNotFound, 3),
        (engine.errors.GuardFailed, 4),
        (engine.errors.ConcurrentUpdate, 5),
        (engine.errors.DatabaseError, 6),
        (engine.errors.ConfigError, 7),
        (engine.errors.InputError, 8),
        (engine.errors.PeriodNotOver, 9),
        (engine.errors.NaiveDatetime, 10),
    ],
)
def test_the_codes_keep_their_meaning(kind, code):
    assert gridflow.cli.common.exit_code(kind) == code
