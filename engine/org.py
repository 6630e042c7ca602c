"""The org chart: township -> village -> group (社) -> grid cell, and people with roles.

``load_org_file`` parses and validates a YAML org chart into frozen values and
reports every problem at once (duplicate ids, unknown roles or places, people
who must receive notices but have no contact). Writing it to the database is
``engine.store.org_repo``'s job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.definitions.model import ORG_ROLES
from engine.errors import OrgChartInvalid
from engine.yamlsrc import Path_, Source, load_file

ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
PHONE = re.compile(r"^1[3-9][0-9]{9}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TOP_KEYS = {"township", "villages", "unit_grids", "people"}


@dataclass(frozen=True)
class PlaceSpec:
    id: str
    kind: str  # township | village | group | grid
    name: str
    parent_id: str | None
    village_id: str | None
    township_id: str
    grid_kind: str | None = None
    households: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PersonSpec:
    id: str
    name: str
    title: str | None
    phone: str | None
    email: str | None
    wecom: str | None
    notify: bool
    roles: tuple[tuple[str, str], ...]  # (role, place id)


@dataclass(frozen=True)
class OrgChart:
    township: PlaceSpec
    places: tuple[PlaceSpec, ...]  # township first, parents before children
    people: tuple[PersonSpec, ...]
    case_code_prefix: str

    def grids(self) -> list[PlaceSpec]:
        return [p for p in self.places if p.kind == "grid"]


def load_org_file(path: str | Path) -> OrgChart:
    """Parse and check an org chart; every problem in the file is reported together."""
    src = load_file(path)
    chart = _Parser(src).parse() if src.data is not None else None
    if src.problems or chart is None:
        raise OrgChartInvalid(src.problems)
    return chart


class _Parser:
    """Walks the document once, collecting places, people and problems."""

    def __init__(self, src: Source):
        self.src = src
        self.places: list[PlaceSpec] = []
        self.ids: dict[str, Path_] = {}
        self.place_ids: set[str] = set()

    def parse(self) -> OrgChart | None:
        doc = self.src.data
        if not isinstance(doc, dict):
            self.src.problem((), "an org chart must be a mapping with township, villages, unit_grids, people")
            return None
        for key in sorted(set(doc) - TOP_KEYS):
            self.src.problem((key,), f"unknown key {key!r}; known keys: {', '.join(sorted(TOP_KEYS))}", True)
        township = self._township(self._map(doc, ("township",), required=True))
        if township is None:
            return None
        for i, village in enumerate(self._list(doc, ("villages",))):
            self._village(village, ("villages", i), township)
        for i, unit in enumerate(self._list(doc, ("unit_grids",))):
            self._unit_grid(unit, ("unit_grids", i), township)
        self.place_ids = {p.id for p in self.places}
        people = [self._person(p, ("people", i)) for i, p in enumerate(self._list(doc, ("people",)))]
        prefix = str(doc["township"].get("code") or township.id[:2]).upper()
        return OrgChart(township, tuple(self.places), tuple(p for p in people if p), prefix)

    # -- helpers ----------------------------------------------------------------

    def _map(self, parent: dict, path: Path_, required: bool = False) -> dict[str, Any]:
        value = parent.get(path[-1])
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            self.src.problem(path, "expected a mapping", at_key=True)
            return {}
        return value

    def _list(self, parent: dict, path: Path_) -> list[Any]:
        value = parent.get(path[-1], [])
        if not isinstance(value, list):
            self.src.problem(path, "expected a list", at_key=True)
            return []
        return value

    def _text(self, spec: dict, path: Path_, key: str, required: bool = True) -> str | None:
        value = spec.get(key)
        if value is None:
            if required:
                self.src.problem(path, f"missing key {key!r}", at_key=True)
            return None
        if not isinstance(value, str) or not value.strip():
            self.src.problem((*path, key), f'{key!r} must be non-empty text (quote numbers: "{value}")')
            return None
        return value.strip()

    def _claim_id(self, spec: dict, path: Path_) -> str | None:
        ident = self._text(spec, path, "id")
        if ident is None:
            return None
        if not ID.match(ident):
            self.src.problem((*path, "id"), f"bad id {ident!r}: use lowercase letters, digits and '-'")
            return None
        if ident in self.ids:
            first = self.src.where(self.ids[ident])
            self.src.problem((*path, "id"), f"duplicate id {ident!r}; first used at line {first[0]}")
            return None
        self.ids[ident] = (*path, "id")
        return ident

    def _is_mapping(self, spec: Any, path: Path_, what: str) -> bool:
        if not isinstance(spec, dict):
            self.src.problem(path, f"expected {what}, not {spec!r}")
            return False
        return True

    def _households(self, spec: dict, path: Path_) -> int | None:
        value = spec.get("households")
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            self.src.problem((*path, "households"), "households must be a whole number ≥ 0")
            return None
        return value

    # -- places -----------------------------------------------------------------

    def _township(self, spec: dict) -> PlaceSpec | None:
        ident = self._claim_id(spec, ("township",))
        name = self._text(spec, ("township",), "name")
        if ident is None or name is None:
            return None
        attrs = {k: spec[k] for k in ("code", "county", "city", "province", "population", "households") if k in spec}
        place = PlaceSpec(ident, "township", name, None, None, ident, attributes=attrs)
        self.places.append(place)
        return place

    def _village(self, spec: Any, path: Path_, township: PlaceSpec) -> None:
        if not isinstance(spec, dict):
            self.src.problem(path, "expected a village mapping with id, name, groups, grids")
            return
        ident, name = self._claim_id(spec, path), self._text(spec, path, "name")
        if ident is None or name is None:
            return
        self.places.append(PlaceSpec(ident, "village", name, township.id, ident, township.id))
        groups = {}
        for i, group in enumerate(self._list(spec, (*path, "groups"))):
            gpath = (*path, "groups", i)
            if not self._is_mapping(group, gpath, "a group with id and name"):
                continue
            gid, gname = self._claim_id(group, gpath), self._text(group, gpath, "name")
            if gid and gname:
                groups[gid] = PlaceSpec(gid, "group", gname, ident, ident, township.id)
                self.places.append(groups[gid])
        for i, grid in enumerate(self._list(spec, (*path, "grids"))):
            self._village_grid(grid, (*path, "grids", i), ident, groups, township)

    def _village_grid(self, spec: Any, path: Path_, village: str, groups: dict, township: PlaceSpec) -> None:
        if not self._is_mapping(spec, path, "a grid cell with id, name, group, households"):
            return
        ident, name = self._claim_id(spec, path), self._text(spec, path, "name")
        group = self._text(spec, path, "group", required=False)
        if group is not None and group not in groups:
            known = ", ".join(groups) or "none defined"
            self.src.problem((*path, "group"), f"unknown group {group!r} of village {village!r} (groups: {known})")
            group = None  # keep the grid (under its village) so roles scoped to it still resolve
        if ident and name:
            parent = group or village
            households = self._households(spec, path)
            self.places.append(PlaceSpec(ident, "grid", name, parent, village, township.id, "residential", households))

    def _unit_grid(self, spec: Any, path: Path_, township: PlaceSpec) -> None:
        if not self._is_mapping(spec, path, "a unit grid with id, name, unit"):
            return
        ident, name = self._claim_id(spec, path), self._text(spec, path, "name")
        unit = self._text(spec, path, "unit", required=False)
        village = self._text(spec, path, "village", required=False)
        if village is not None and village not in {p.id for p in self.places if p.kind == "village"}:
            self.src.problem((*path, "village"), f"unknown village {village!r}")
            return
        if ident and name:
            attrs = {"unit": unit} if unit else {}
            self.places.append(
                PlaceSpec(ident, "grid", name, village or township.id, village, township.id, "unit", None, attrs)
            )

    # -- people -----------------------------------------------------------------

    def _person(self, spec: Any, path: Path_) -> PersonSpec | None:
        if not isinstance(spec, dict):
            self.src.problem(path, "expected a person mapping with id, name, phone, email, roles")
            return None
        ident, name = self._claim_id(spec, path), self._text(spec, path, "name")
        phone = self._contact(spec, path, "phone", PHONE, '11 digits, e.g. "13800000001"')
        email = self._contact(spec, path, "email", EMAIL, "an address like name@example.org")
        wecom = self._text(spec, path, "wecom", required=False)
        notify = spec.get("notify", True)
        if not isinstance(notify, bool):
            self.src.problem((*path, "notify"), "notify must be true or false")
            notify = True
        written = any(spec.get(k) is not None for k in ("phone", "email", "wecom"))
        if notify and not (phone or email or wecom) and not written:  # a bad contact is reported already
            self.src.problem(
                path,
                f"person {ident or name!r} receives notices but has no phone, email or wecom; "
                "add one, or set notify: false",
                at_key=True,
            )
        roles = self._roles(spec, path)
        if ident is None or name is None:
            return None
        title = self._text(spec, path, "title", required=False)
        return PersonSpec(ident, name, title, phone, email, wecom, notify, roles)

    def _contact(self, spec: dict, path: Path_, key: str, pattern: re.Pattern, hint: str) -> str | None:
        value = spec.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not pattern.match(value):
            self.src.problem((*path, key), f"bad {key} {value!r}: write {hint}")
            return None
        return value

    def _roles(self, spec: dict, path: Path_) -> tuple[tuple[str, str], ...]:
        out = []
        for i, entry in enumerate(self._list(spec, (*path, "roles"))):
            rpath = (*path, "roles", i)
            entry = entry if isinstance(entry, dict) else {}
            role, scope = self._text(entry, rpath, "role"), self._text(entry, rpath, "scope")
            if role is not None and role not in ORG_ROLES:
                self.src.problem((*rpath, "role"), f"unknown role {role!r}; roles are: {', '.join(ORG_ROLES)}")
                continue
            if scope is not None and scope not in self.place_ids:
                self.src.problem(
                    (*rpath, "scope"), f"unknown place {scope!r}; a scope is a grid, village or township id"
                )
                continue
            if role and scope:
                out.append((role, scope))
        return tuple(dict.fromkeys(out))
