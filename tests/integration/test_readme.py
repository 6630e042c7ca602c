"""README.md's tour, run as a reader runs it, on a fresh home: every output it shows is real.

Every ``$ gridflow …`` line of the README's ```text blocks runs in order on a new embedded
(SQLite) database, at the README's own times (``<!-- tour: at … -->`` sets the product's
``GRIDFLOW_CLOCK_OFFSET_S``), and what it prints and its exit code must be what the README
shows; ``gridflow up`` runs as a real process for a bounded time. docs/operations.md's examples
are held to the same rule. The mechanics are in :mod:`tests.readme_tour`; when an output changed
on purpose, rewrite the files from a real run with ``python -m tests.readme_tour --write`` and
read the diff.
"""

from __future__ import annotations

import pytest

from tests import readme_tour


@pytest.mark.parametrize("path", readme_tour.TOURS, ids=readme_tour.name_of)
def test_every_command_of_the_tour_prints_what_is_shown(path):
    outcomes = readme_tour.tour(path)
    assert outcomes, f"{path} shows no `$ gridflow` command in a ```text block"
    problems = readme_tour.report(outcomes)
    assert not problems, problems
    print("\n".join(f"skipped {f}:{line}: {why}" for f, line, why in readme_tour.skips(outcomes)) or "none skipped")


def test_the_readme_tells_one_story_from_a_fresh_database():
    blocks = readme_tour.parse(readme_tour.README.read_text(encoding="utf-8"))
    commands = [c.text for b in blocks for c in b.commands]
    assert commands[0] == "gridflow init", "the tour starts where a reader starts: gridflow init"
    assert blocks[0].at is not None, "the first block pins the clock (<!-- tour: at … -->)"
    instants = [b.at for b in blocks if b.at is not None]
    assert instants == sorted(instants), "the story's clock only moves forward"
    assert [c.text for b in blocks if b.interrupt for c in b.commands] == ["gridflow up"]
