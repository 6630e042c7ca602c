"""Documentation that is generated must match what the code generates now; links stay inside the
repository and resolve; the README tour's reader and rewriter (tests/readme_tour.py) do what they say."""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime

import pytest

from engine.definitions.loader import load_workflow_file
from engine.machine import mermaid
from tests import readme_tour
from tests.support import ROOT, WORKFLOW_FILE


def test_workflow_readme_diagram_matches_the_default_workflow():
    readme = (ROOT / "workflows" / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```mermaid\n(.*?)```", readme, flags=re.S)
    expected = mermaid(load_workflow_file(WORKFLOW_FILE).definition)
    assert blocks and blocks[0] == expected, "regenerate with `gridflow workflow graph workflows/grid_case.yaml`"


def test_diagram_names_every_state_and_trigger():
    definition = load_workflow_file(WORKFLOW_FILE).definition
    diagram = mermaid(definition)
    assert diagram.splitlines()[3] == "stateDiagram-v2"
    for state in definition.states.values():
        assert f'state "{state.label} {state.name}" as {state.name}' in diagram
    for trigger in definition.triggers.values():
        assert f"{trigger.label} {trigger.name}" in diagram
    assert "[*] --> reported" in diagram and "verified --> [*]" in diagram


def test_readme_starts_with_the_two_commands():
    head = (ROOT / "README.md").read_text(encoding="utf-8")[:600]
    assert "make run" in head and "make test" in head


# -- links: a clone has only this tree ------------------------------------------------------------

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "workflows" / "README.md"]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")  # [text](target "title")
CODE_BLOCK = re.compile(r"^```.*?^```", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def _links(path):
    prose = INLINE_CODE.sub("", CODE_BLOCK.sub("", path.read_text(encoding="utf-8")))
    return LINK.findall(prose)


def _anchors(path):
    """GitHub's heading anchors: lower case, punctuation dropped (word characters, CJK included,
    hyphens and spaces kept), spaces as hyphens."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", CODE_BLOCK.sub("", path.read_text(encoding="utf-8")), re.M)
    return {re.sub(r"[^\w\- ]", "", h.replace("`", "").lower()).replace(" ", "-") for h in headings}


def test_no_doc_points_outside_the_repository():
    """`../shared/…` was the workspace around the project; a clone does not have it."""
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        assert "../shared" not in text and "/work/shared" not in text, f"{path.relative_to(ROOT)} names ../shared"
        for target in _links(path):
            if "://" in target or target.startswith(("mailto:", "#")):
                continue
            resolved = (path.parent / target.split("#")[0]).resolve()
            assert resolved.is_relative_to(ROOT), f"{path.relative_to(ROOT)}: {target} leaves the repository"


def test_every_relative_link_of_the_docs_resolves():
    broken = []
    for path in DOCS:
        for target in _links(path):
            if "://" in target or target.startswith("mailto:"):
                continue
            file, _, anchor = target.partition("#")
            goal = (path.parent / file).resolve() if file else path
            if not goal.exists():
                broken.append(f"{path.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and goal.suffix == ".md" and anchor not in _anchors(goal):
                broken.append(f"{path.relative_to(ROOT)}: {target} (no such heading in {goal.name})")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_link_checker_sees_links_and_anchors(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Scores and postings (月评比, 季公示)\n\nsee [the ops](docs/operations.md#7-drills-演练) and ![img](x.png)\n"
        "```sh\n[not](a-link.md)\n```\n`[nor](this.md)`\n",
        encoding="utf-8",
    )
    assert _links(page) == ["docs/operations.md#7-drills-演练"]
    assert _anchors(page) == {"scores-and-postings-月评比-季公示"}
    assert "7-drills-演练" in _anchors(ROOT / "docs" / "operations.md")


# -- the README's tour: how tests/readme_tour.py reads and rewrites it ----------------------------

TOUR_PAGE = """# A page

```sh
make run
```

<!-- tour: at 2026-11-28T10:03:00+08:00 -->
```text
$ gridflow init
created

$ GRIDFLOW_X=1 gridflow case list --json | head -2   # a comment
[
  {
$ gridflow case fire X classify -a p
error: no
(exit 4)
```

<!-- tour: skip, it needs a modem -->
```text
$ gridflow sms send
sent
```

<!-- tour: interrupt after "ready" "sent" -->
```text
$ gridflow up
ready
```
"""


def test_the_tour_is_the_text_blocks_with_their_directives():
    blocks = readme_tour.parse(TOUR_PAGE)
    assert [b.line for b in blocks] == [8, 21, 27]
    first, skipped, bounded = blocks
    assert first.at == datetime(2026, 11, 28, 2, 3, tzinfo=UTC) and skipped.at is None
    assert [(c.line, c.text, c.expected, c.expected_exit) for c in first.commands] == [
        (9, "gridflow init", ["created"], 0),
        (12, "GRIDFLOW_X=1 gridflow case list --json | head -2   # a comment", ["[", "  {"], 0),
        (15, "gridflow case fire X classify -a p", ["error: no"], 4),
    ]
    assert skipped.skip == "it needs a modem" and bounded.interrupt == ["ready", "sent"]
    env, args, pipes = readme_tour._split(first.commands[1])
    assert (env, args, pipes) == ({"GRIDFLOW_X": "1"}, ["case", "list", "--json"], [("head", 2)])


@pytest.mark.parametrize(
    ("page", "message"),
    [
        ("```sh\n$ gridflow init\n```\n", "belong in ```text tour blocks"),
        ("<!-- tour: at tomorrow -->\n```text\n$ gridflow init\n```\n", "write an ISO time"),
        ("<!-- tour: at 2026-11-28T10:03 -->\n```text\n$ gridflow init\n```\n", "needs its offset"),
        ("<!-- tour: skip -->\n```text\n$ gridflow init\n```\n", "needs its reason"),
        ("<!-- tour: later -->\n```text\n$ gridflow init\n```\n", "unknown directive"),
        ("<!-- tour: skip, x -->\n```sh\nls\n```\n", "not a tour block"),
        ("```text\n$ gridflow init\n", "never ends"),
    ],
)
def test_a_tour_that_cannot_be_read_says_where_and_why(page, message):
    with pytest.raises(readme_tour.TourError, match=re.escape(message)):
        readme_tour.parse(page)


def test_a_rewrite_replaces_only_the_outputs():
    blocks = readme_tour.parse(TOUR_PAGE)
    same = [readme_tour.Outcome(b, c, c.expected, c.expected_exit) for b in blocks for c in b.commands]
    assert readme_tour.rewrite(TOUR_PAGE, same) == TOUR_PAGE
    init = blocks[0].commands[0]
    changed = [readme_tour.Outcome(blocks[0], init, ["created at 0007", "more"], 1)]
    assert "$ gridflow init\ncreated at 0007\nmore\n(exit 1)\n\n$ GRIDFLOW_X=1" in readme_tour.rewrite(
        TOUR_PAGE, changed
    )


def test_only_what_must_vary_is_masked():
    shown = ["run #1 in 132 ms", "┃ 时间 at ┃ ms ┃", "│ 10:33   │ 12 │", "2026-11-30 14:01:06 CST INFO x", "12:00:59"]
    again = ["run #1 in 9 ms", "┃ 时间 at ┃ ms ┃", "│ 10:33   │  0 │", "2026-12-02 07:00:00 CST INFO x", "12:00:01"]
    assert readme_tour.masked(shown) == readme_tour.masked(again)
    assert readme_tour.masked(["│ 10:33 │"]) != readme_tour.masked(["│ 10:34 │"])


def test_paths_are_hidden_without_breaking_a_table():
    line = "│ 文件 file │ /tmp/gridflow-tour-abc/var/v1.html │"
    assert readme_tour._hide(line, "/tmp/gridflow-tour-abc") == "│ 文件 file │ …/var/v1.html" + " " * 22 + "│"
    assert readme_tour._hide("sqlite:////tmp/x/var/g.db", "/tmp/x") == "sqlite:///…/var/g.db"


def test_a_processes_log_is_shown_on_the_storys_clock():
    lines = [
        "2026-12-02 14:45:41 CST INFO gridflow-up@" + socket.gethostname() + " ready.",
        "/x/celery/platforms.py:893: SecurityWarning: You're running the worker with superuser privileges: this is",
        "absolutely not recommended!",
        "  _warn_or_raise_security_error(egid, euid, gid, uid,",
        "2026-12-02 14:45:47 CST INFO Restoring 1 unacknowledged message(s)",
    ]
    assert readme_tour._log_lines(lines, -2 * 86400 - 60) == ["2026-11-30 14:44:41 CST INFO gridflow-up@host ready."]
