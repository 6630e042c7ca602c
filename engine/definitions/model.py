"""Plain frozen values a workflow definition compiles to.

The engine reasons about these, never about YAML or ORM rows. ``to_dict`` /
``from_dict`` give the compiled JSON stored beside the source of each version.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: Org roles: who holds them and where comes from the org chart.
ORG_ROLES = ("grid_worker", "info_officer", "village_secretary", "center", "township_leader")
#: Roles relative to one case.
CASE_ROLES = ("assignee", "reporter")
ROLE_LABELS = {
    "grid_worker": "网格员",
    "info_officer": "B岗信息员",
    "village_secretary": "村支部书记",
    "center": "网格管理中心",
    "township_leader": "乡领导",
    "assignee": "处置人",
    "reporter": "上报人",
}


@dataclass(frozen=True)
class FieldDef:
    name: str
    label: str
    type: str  # text | enum | person | duration | integer
    values: dict[str, str] = field(default_factory=dict)  # enum: id -> label
    max_length: int | None = None
    roles: tuple[str, ...] = ()  # person: roles the person must hold
    scope: str = "any"  # person: "case_grid" or "any"


#: Every case has a title and may have a description; a workflow may redefine their labels.
BUILTIN_FIELDS = {
    "title": {"label": "事件标题", "type": "text", "max_length": 100},
    "description": {"label": "事件描述", "type": "text", "max_length": 2000},
}


@dataclass(frozen=True)
class StateDef:
    name: str
    label: str
    initial: bool = False
    final: bool = False
    pauses_sla: bool = False
    sla: dict[str, Any] | None = None
    notify: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class TriggerDef:
    name: str
    label: str
    sources: tuple[str, ...]
    dest: str | None  # None: an audited action that keeps the state
    roles: tuple[str, ...]
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    guards: tuple[str, ...] = ()
    effects: tuple[str, ...] = ()
    notify: tuple[dict[str, Any], ...] = ()

    @property
    def stays(self) -> bool:
        return self.dest is None

    def target(self, source: str) -> str:
        return source if self.dest is None else self.dest


@dataclass(frozen=True)
class ReportDef:
    roles: tuple[str, ...] = ("grid_worker", "info_officer", "center")
    required: tuple[str, ...] = ("title",)
    optional: tuple[str, ...] = ("description",)
    notify: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class WorkflowDef:
    name: str
    title: str
    description: str
    report: ReportDef
    fields: dict[str, FieldDef]
    states: dict[str, StateDef]
    triggers: dict[str, TriggerDef]
    extras: dict[str, Any] = field(default_factory=dict)  # calendar, case_sla, ... (SLA issue)

    @property
    def initial(self) -> str:
        return next(s.name for s in self.states.values() if s.initial)

    def allowed_triggers(self, state: str) -> list[str]:
        return [t.name for t in self.triggers.values() if state in t.sources]

    def state_label(self, state: str) -> str:
        found = self.states.get(state)
        return found.label if found else state

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkflowDef:
        return cls(
            name=data["name"],
            title=data["title"],
            description=data["description"],
            report=_tuples(ReportDef, data["report"]),
            fields={k: _tuples(FieldDef, v) for k, v in data["fields"].items()},
            states={k: _tuples(StateDef, v) for k, v in data["states"].items()},
            triggers={k: _tuples(TriggerDef, v) for k, v in data["triggers"].items()},
            extras=data.get("extras", {}),
        )


def _tuples(cls: type, data: dict[str, Any]) -> Any:
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
