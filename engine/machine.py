"""A thin adapter over ``transitions``, used as a stateless rules engine.

One ``Machine`` per published workflow version, built once and cached by the
version's row id and source hash (published versions never change). No model is attached and
auto-transitions are off: the engine asks the machine which transition a
trigger takes from a state, and keeps the state itself in the database.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from transitions import Machine, State
from transitions.extensions import GraphMachine

from engine.definitions.model import TriggerDef, WorkflowDef
from engine.errors import TriggerNotAllowed


@dataclass(frozen=True)
class CompiledWorkflow:
    definition: WorkflowDef
    machine: Machine
    workflow_id: int | None = None  # the published version's row id, if published
    version: int | None = None

    def step(self, state: str, trigger: str) -> tuple[TriggerDef, str]:
        """The trigger's definition and the state it leads to; raise if not allowed."""
        found = self.machine.get_transitions(trigger=trigger, source=state) if trigger in self.machine.events else []
        if not found:
            raise self._not_allowed(state, trigger)
        return self.definition.triggers[trigger], found[0].dest or state

    def allowed(self, state: str) -> list[str]:
        return [t for t in self.machine.get_triggers(state) if t in self.definition.triggers]

    def _not_allowed(self, state: str, trigger: str) -> TriggerNotAllowed:
        d = self.definition
        allowed = self.allowed(state)
        listed = ", ".join(f"{t} ({d.triggers[t].label})" for t in allowed) or "none: the case is closed"
        what = (
            "is not allowed in"
            if trigger in d.triggers
            else "is not a trigger of workflow " + d.name + " and so not of"
        )
        return TriggerNotAllowed(
            f"trigger {trigger!r} {what} state {state!r} ({d.state_label(state)}); allowed now: {listed}",
            allowed,
        )


def _machine_spec(definition: WorkflowDef) -> dict:
    transitions = [{"trigger": t.name, "source": list(t.sources), "dest": t.dest} for t in definition.triggers.values()]
    return {
        "states": list(definition.states),
        "transitions": transitions,
        "initial": definition.initial,
        "auto_transitions": False,
    }


def compile_workflow(
    definition: WorkflowDef, workflow_id: int | None = None, version: int | None = None
) -> CompiledWorkflow:
    return CompiledWorkflow(definition, Machine(model=None, **_machine_spec(definition)), workflow_id, version)


class _Cache:
    def __init__(self) -> None:
        self._items: dict[tuple[int, str], CompiledWorkflow] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[int, str], build) -> CompiledWorkflow:  # type: ignore[no-untyped-def]
        found = self._items.get(key)
        if found is None:
            with self._lock:
                found = self._items.setdefault(key, build())
        return found


MACHINES = _Cache()


class _Drawing:
    """Model object GraphMachine draws from; only ever used for a diagram."""


class _LabeledState(State):
    def __init__(self, *args, label: str | None = None, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.label = label


class _DiagramMachine(GraphMachine):
    state_cls = _LabeledState


def mermaid(definition: WorkflowDef) -> str:
    """The workflow as a mermaid state diagram, drawn by transitions' mermaid engine."""
    spec = _machine_spec(definition)
    spec["states"] = [{"name": s.name, "label": f"{s.label} {s.name}"} for s in definition.states.values()]
    for transition, trigger in zip(spec["transitions"], definition.triggers.values(), strict=True):
        transition["label"] = f"{trigger.label} {trigger.name}"
    model = _Drawing()
    _DiagramMachine(model=model, graph_engine="mermaid", show_state_attributes=False, title=definition.title, **spec)
    lines = [line for line in model.get_graph().draw(None).splitlines() if not _is_styling(line)]
    if lines[:3] == ["---", definition.title, "---"]:  # mermaid front matter wants `title: ...`
        lines[1] = f"title: {definition.title}"
    lines += [f"  {s.name} --> [*]" for s in definition.states.values() if s.final]
    return "\n".join(lines) + "\n"


def _is_styling(line: str) -> bool:
    text = line.strip()
    return text.startswith(("classDef ", "Class "))
