"""The layers hold: faces call the application, the application calls the engine, and no module
imports itself back through another.

Who may call whom (``docs/architecture.md`` draws it)::

    gridflow.cli, gridflow.api, tasks   faces: parse, call a use case, print or answer
            │
    gridflow.app, gridflow.present      the application: use cases on one database and clock
            │
    engine, notifications               the engine (pure rules, storage) and the channels
            │
    config                              settings

The graph is read with grimp (the import graph behind import-linter), imports inside functions
included, imports under ``TYPE_CHECKING`` left out (they never run).
"""

from __future__ import annotations

import grimp
import pytest

PACKAGES = ("engine", "gridflow", "tasks", "notifications", "config")
FACES = ("gridflow.cli", "tasks")
BELOW_FACES = (
    "gridflow.app",
    "gridflow.present",
    "gridflow.quick",
    "gridflow.demo",
    "gridflow.demo_plan",
    "engine",
    "notifications",
)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, []))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_imports_itself_back(graph: grimp.ImportGraph) -> None:
    assert _cycles(graph) == [], "import cycles (break each by moving the shared part down a layer)"


@pytest.mark.parametrize("lower", BELOW_FACES)
@pytest.mark.parametrize("face", FACES)
def test_nothing_below_the_faces_imports_a_face(graph: grimp.ImportGraph, lower: str, face: str) -> None:
    if lower not in graph.modules:
        pytest.skip(f"{lower} does not exist")  # pragma: no cover - every name above exists today
    chain = graph.find_shortest_chain(importer=lower, imported=face, as_packages=True)
    assert chain is None, f"{lower} reaches the face {face}: {' → '.join(chain or ())}"


def test_the_engine_does_not_know_the_application(graph: grimp.ImportGraph) -> None:
    for upper in ("gridflow", "tasks"):
        chain = graph.find_shortest_chain(importer="engine", imported=upper, as_packages=True)
        assert chain is None, f"engine reaches {upper}: {' → '.join(chain or ())}"


def test_the_faces_do_not_call_each_other(graph: grimp.ImportGraph) -> None:
    chain = graph.find_shortest_chain(importer="tasks", imported="gridflow.cli", as_packages=True)
    assert chain is None, f"tasks reaches the CLI: {' → '.join(chain or ())}"


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import() -> None:
    fake = grimp.ImportGraph()
    for importer, imported in (
        ("a.periodic", "a.runs"),
        ("a.runs", "a.posting"),
        ("a.posting", "a.periodic"),
        ("a.x", "a.runs"),
    ):
        fake.add_import(importer=importer, imported=imported)
    assert _cycles(fake) == [["a.periodic", "a.posting", "a.runs"]]
