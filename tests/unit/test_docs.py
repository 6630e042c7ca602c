"""Documentation that is generated must match what the code generates now."""

from __future__ import annotations

import re

from engine.definitions.loader import load_workflow_file
from engine.machine import mermaid
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
