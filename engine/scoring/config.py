"""``config/scoring.yaml``: weights, grade bands, list sizes and how indicators read the workflow.

Validated as a whole (every problem with file:line:column) and versioned: the text of each
version is stored the first time it is used (:func:`engine.scoring.runs.store_config`), and a
file whose text changed under the same version number is refused, so a score's version
always names exactly the weights it was computed with.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import SourceError
from engine.scoring.catalogue import INDICATORS, RATES, SUBJECT_INDICATORS
from engine.yamlsrc import Source, load_file, load_text


class ScoringInvalid(SourceError):
    what = "scoring rules"


SUBJECTS = ("grid", "worker", "village")
_WORKER = set(SUBJECT_INDICATORS["reporter"]) | set(SUBJECT_INDICATORS["handler"])
SUBJECT_RATES = {
    "grid": tuple(RATES),
    "village": tuple(RATES),
    "worker": tuple(r for r in RATES if r in _WORKER and r != "on_time_dispatch_rate"),
}
GROUP_BY = {"grid": ("all", "grid_kind", "village"), "worker": ("all",), "village": ("all",)}
_TOP = {
    "version",
    "title",
    "minimum_cases",
    "grades",
    "lists",
    "satisfied",
    "subjects",
    "publication",
    "workflow",
}
_WORKFLOW_LISTS = (
    "classify",
    "dispatch",
    "return",
    "resolve",
    "rework",
    "extension",
    "closed_states",
    "voided_states",
    "suspended_states",
    "handling_time",
)
_WORKFLOW_NAMES = ("dispatch_clock", "response_clock", "handling_clock")
_DEFAULT_WORKFLOW: dict[str, Any] = {
    "classify": ["classify"],
    "dispatch": ["assign"],
    "return": ["return"],
    "resolve": ["resolve"],
    "rework": ["rework"],
    "extension": ["approve_extension"],
    "closed_states": ["verified"],
    "voided_states": ["voided"],
    "suspended_states": ["suspended"],
    "handling_time": ["assigned", "in_progress"],
    "dispatch_clock": "classified",
    "response_clock": "assigned",
    "handling_clock": "in_progress",
}


@dataclass(frozen=True)
class Subject:
    kind: str
    label: str
    weights: dict[str, float]
    group_by: str = "all"


@dataclass(frozen=True)
class Publishing:
    objection_days: int = 7
    show_worker_names: bool = True
    show_household_names: bool = False


@dataclass(frozen=True)
class ScoringConfig:
    version: int
    title: str
    minimum_cases: int
    grades: tuple[tuple[str, float], ...]  # highest band first
    red: int
    black: int
    satisfied: tuple[str, ...]
    subjects: dict[str, Subject]
    publishing: Publishing
    workflow: dict[str, Any]
    source_text: str = field(repr=False, default="")
    source_file: str = ""

    @property
    def source_hash(self) -> str:
        return hashlib.sha256(self.source_text.encode()).hexdigest()

    def grade(self, composite: float | None) -> str | None:
        if composite is None:
            return None
        for name, floor in self.grades:
            if composite >= floor:
                return name
        return "E"


def load(path: str | Path) -> ScoringConfig:
    return _parse(load_file(path))


def parse_text(text: str, file: str = "<scoring.yaml>") -> ScoringConfig:
    return _parse(load_text(text, file))


def _parse(src: Source) -> ScoringConfig:
    data = src.data if isinstance(src.data, dict) else None
    if data is None and not src.problems:
        src.problem((), "expected a mapping with version:, subjects: and the other keys of config/scoring.yaml")
    config = _Parser(src).parse(data or {})
    if src.problems:
        raise ScoringInvalid(src.problems)
    return config


class _Parser:
    def __init__(self, src: Source):
        self.src = src

    def parse(self, data: dict[str, Any]) -> ScoringConfig:
        for key in data:
            if key not in _TOP:
                self.src.problem((key,), f"unknown key {key!r}; keys are: {', '.join(sorted(_TOP))}", at_key=True)
        if "version" not in data:
            self.src.problem((), "version: is required (a whole number; bump it whenever a weight changes)")
        lists = self._mapping(data.get("lists", {}), ("lists",), {"red", "black"})
        publication = self._mapping(
            data.get("publication", {}),
            ("publication",),
            {"objection_days", "show_worker_names", "show_household_names"},
        )
        return ScoringConfig(
            version=self._int(data.get("version", 1), ("version",), 1),
            title=str(data.get("title") or "网格化服务管理考评"),
            minimum_cases=self._int(data.get("minimum_cases", 3), ("minimum_cases",), 0),
            grades=self._grades(data.get("grades", {"A": 90, "B": 75, "C": 60, "D": 40})),
            red=self._int(lists.get("red", 5), ("lists", "red"), 0),
            black=self._int(lists.get("black", 5), ("lists", "black"), 0),
            satisfied=tuple(self._names(data.get("satisfied", ["satisfied", "basically_satisfied"]), ("satisfied",))),
            subjects=self._subjects(data.get("subjects")),
            publishing=Publishing(
                objection_days=self._int(publication.get("objection_days", 7), ("publication", "objection_days"), 0),
                show_worker_names=self._bool(
                    publication.get("show_worker_names", True), ("publication", "show_worker_names")
                ),
                show_household_names=self._bool(
                    publication.get("show_household_names", False), ("publication", "show_household_names")
                ),
            ),
            workflow=self._workflow(data.get("workflow", {})),
            source_text=self.src.text,
            source_file=self.src.file,
        )

    # -- parts ---------------------------------------------------------------------------

    def _subjects(self, raw: Any) -> dict[str, Subject]:
        if not isinstance(raw, dict) or not raw:
            self.src.problem(("subjects",), f"subjects: needs weights for each of {', '.join(SUBJECTS)}")
            return {}
        out = {}
        for kind, spec in raw.items():
            path = ("subjects", kind)
            if kind not in SUBJECTS:
                self.src.problem(path, f"unknown subject {kind!r}; subjects are: {', '.join(SUBJECTS)}", at_key=True)
                continue
            spec = self._mapping(spec, path, {"label", "weights", "group_by"})
            group_by = spec.get("group_by", "all")
            if group_by not in GROUP_BY[kind]:
                self.src.problem((*path, "group_by"), f"{kind} can be grouped by: {', '.join(GROUP_BY[kind])}")
            out[kind] = Subject(
                kind, str(spec.get("label", kind)), self._weights(spec.get("weights"), path, kind), group_by
            )
        for kind in SUBJECTS:
            if kind not in out and kind not in raw:
                self.src.problem(("subjects",), f"subjects.{kind} is missing: give its weights")
        return out

    def _weights(self, raw: Any, path: tuple, kind: str) -> dict[str, float]:
        path = (*path, "weights")
        if not isinstance(raw, dict) or not raw:
            self.src.problem(path, "weights: needs at least one rate with its weight, e.g. on_time_close_rate: 30")
            return {}
        out: dict[str, float] = {}
        for name, weight in raw.items():
            if name not in RATES:
                hint = "it is a count, not a rate" if name in INDICATORS else f"rates are: {', '.join(RATES)}"
                self.src.problem((*path, name), f"unknown rate {name!r}; {hint}", at_key=True)
                continue
            if name not in SUBJECT_RATES[kind]:
                self.src.problem(
                    (*path, name),
                    f"a {kind} never has a {name} (the centre dispatches); rates of a {kind}: "
                    f"{', '.join(SUBJECT_RATES[kind])}",
                    at_key=True,
                )
                continue
            if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
                self.src.problem((*path, name), f"the weight of {name} must be a positive number, not {weight!r}")
                continue
            out[name] = float(weight)
        return out

    def _grades(self, raw: Any) -> tuple[tuple[str, float], ...]:
        if not isinstance(raw, dict) or not raw:
            self.src.problem(("grades",), "grades: needs bands, e.g. {A: 90, B: 75, C: 60, D: 40}")
            return ()
        bands = []
        for name, floor in raw.items():
            if isinstance(floor, bool) or not isinstance(floor, int | float) or not 0 <= floor <= 100:
                self.src.problem(("grades", name), f"band {name} needs a floor between 0 and 100, not {floor!r}")
                continue
            bands.append((str(name), float(floor)))
        floors = [f for _, f in bands]
        if floors != sorted(floors, reverse=True) or len(set(floors)) != len(floors):
            self.src.problem(("grades",), "list the bands from the highest floor down, each floor lower than the last")
        return tuple(bands)

    def _workflow(self, raw: Any) -> dict[str, Any]:
        spec = self._mapping(raw, ("workflow",), set(_WORKFLOW_LISTS) | set(_WORKFLOW_NAMES))
        out = dict(_DEFAULT_WORKFLOW)
        for key in _WORKFLOW_LISTS:
            if key in spec:
                out[key] = self._names(spec[key], ("workflow", key))
        for key in _WORKFLOW_NAMES:
            if key in spec:
                if not isinstance(spec[key], str) or not spec[key]:
                    self.src.problem(("workflow", key), f"{key} names one state, e.g. {_DEFAULT_WORKFLOW[key]}")
                else:
                    out[key] = spec[key]
        return out

    # -- scalars ---------------------------------------------------------------------------

    def _mapping(self, raw: Any, path: tuple, keys: set[str]) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.src.problem(path, f"expected a mapping with: {', '.join(sorted(keys))}")
            return {}
        for key in raw:
            if key not in keys:
                self.src.problem((*path, key), f"unknown key {key!r}; keys are: {', '.join(sorted(keys))}", at_key=True)
        return raw

    def _int(self, raw: Any, path: tuple, minimum: int) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < minimum:
            self.src.problem(path, f"expected a whole number ≥ {minimum}, not {raw!r}")
            return minimum
        return raw

    def _bool(self, raw: Any, path: tuple) -> bool:
        if not isinstance(raw, bool):
            self.src.problem(path, f"expected true or false, not {raw!r}")
            return False
        return raw

    def _names(self, raw: Any, path: tuple) -> list[str]:
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
            self.src.problem(path, f"expected a list of names, not {raw!r}")
            return []
        return list(raw)
