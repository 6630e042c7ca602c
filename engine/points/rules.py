"""``config/points.yaml``: the points rules (户档积分), validated as a whole and versioned.

Each rule: a label, a category (孝道, 环境卫生 …), points (negative for a deduction), an optional
limit per household per period, the roles that may record it, and whether a second person must
approve it. Stars and the red/black list sizes drive the monthly evaluation. ``backdate`` says how far
back an entry may be dated (:data:`BACKDATE`; :func:`engine.points.ledger.dating_window`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.definitions.model import ORG_ROLES as ROLES
from engine.errors import SourceError
from engine.yamlsrc import Source, load_file, load_text


class PointsRulesInvalid(SourceError):
    what = "points rules"


PERIODS = ("month", "quarter", "year")
# How far back the day of a deed and the time it is recorded may lie: the open month — this month, and
# the month before until its scoring run freezes it (the default) — or the current month only.
BACKDATE = ("open_month", "current_month")
MAX_POINTS = 10_000  # points of one rule, either way: the ledger's columns are 32-bit integers on PostgreSQL
MAX_TIMES = 1_000  # a rule's limit per period
MAX_COUNT = 1_000_000  # a star's minimum, the list sizes and black_below, either way
_TOP = {"version", "title", "rules", "approvers", "stars", "lists", "backdate"}
_RULE_KEYS = {"label", "category", "points", "limit", "roles", "approval"}


@dataclass(frozen=True)
class Limit:
    period: str
    times: int


@dataclass(frozen=True)
class Rule:
    code: str
    label: str
    category: str
    points: int
    limit: Limit | None
    roles: tuple[str, ...]
    approval: bool


@dataclass(frozen=True)
class Star:
    name: str
    category: str
    minimum: int


@dataclass(frozen=True)
class PointsRules:
    version: int
    title: str
    rules: dict[str, Rule]
    approvers: tuple[str, ...]
    stars: tuple[Star, ...]
    red: int
    black: int
    black_below: int
    backdate: str = "open_month"
    source_text: str = ""
    source_file: str = ""

    @property
    def source_hash(self) -> str:
        return hashlib.sha256(self.source_text.encode()).hexdigest()

    def rule(self, code: str) -> Rule:
        from engine.errors import NotFound

        try:
            return self.rules[code]
        except KeyError:
            known = ", ".join(f"{r.code} ({r.label})" for r in self.rules.values())
            raise NotFound(f"no points rule {code!r}; rules are: {known}") from None


def load(path: str | Path) -> PointsRules:
    return _parse(load_file(path))


def parse_text(text: str, file: str = "<points.yaml>") -> PointsRules:
    return _parse(load_text(text, file))


def _parse(src: Source) -> PointsRules:
    data = src.data if isinstance(src.data, dict) else {}
    if not src.problems and not isinstance(src.data, dict):
        src.problem((), "expected a mapping with version: and rules:")
    for key in data:
        if key not in _TOP:
            src.problem((key,), f"unknown key {key!r}; keys are: {', '.join(sorted(_TOP))}", at_key=True)
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_COUNT:
        src.problem(
            ("version",),
            f"version: needs a whole number from 1 to {MAX_COUNT:,} (bump it when a rule changes), not {version!r}",
        )
        version = 1
    rules = _rules(src, data.get("rules"))
    approvers = _roles(src, data.get("approvers", ["center", "township_leader"]), ("approvers",))
    categories = {r.category for r in rules.values()}
    stars = _stars(src, data.get("stars") or {}, categories)
    lists = data.get("lists") or {}
    red, black, below = (
        _int(src, lists.get(k, d), ("lists", k), lo)
        for k, d, lo in (("red", 10, 0), ("black", 10, 0), ("black_below", 0, -MAX_COUNT))
    )
    backdate = data.get("backdate", BACKDATE[0])
    if backdate not in BACKDATE:
        src.problem(
            ("backdate",),
            f"backdate: how far back an entry may be dated, one of {', '.join(BACKDATE)} "
            f"(open_month: this month, and the month before until it is scored), not {backdate!r}",
        )
    if src.problems:
        raise PointsRulesInvalid(src.problems)
    return PointsRules(
        version=version,
        title=str(data.get("title") or "户档积分管理办法"),
        rules=rules,
        approvers=tuple(approvers),
        stars=stars,
        red=red,
        black=black,
        black_below=below,
        backdate=backdate,
        source_text=src.text,
        source_file=src.file,
    )


def _rules(src: Source, raw: Any) -> dict[str, Rule]:
    if not isinstance(raw, dict) or not raw:
        src.problem(("rules",), "rules: needs at least one rule, e.g. filial_piety: {label: 孝敬老人, points: 5, ...}")
        return {}
    out = {}
    for code, spec in raw.items():
        path = ("rules", code)
        if not isinstance(spec, dict):
            src.problem(path, "a rule is a mapping with label, category, points, roles")
            continue
        for key in spec:
            if key not in _RULE_KEYS:
                src.problem(
                    (*path, key), f"unknown key {key!r}; keys are: {', '.join(sorted(_RULE_KEYS))}", at_key=True
                )
        points = spec.get("points")
        if isinstance(points, bool) or not isinstance(points, int) or points == 0 or abs(points) > MAX_POINTS:
            src.problem(
                (*path, "points"),
                f"points must be a whole number from -{MAX_POINTS:,} to {MAX_POINTS:,}, not 0, and not {points!r}",
            )
            points = 0
        for key in ("label", "category"):
            if not isinstance(spec.get(key), str) or not spec.get(key):
                src.problem((*path, key), f"{key} is required (text)")
        roles = _roles(src, spec.get("roles"), (*path, "roles"))
        if not roles:
            src.problem((*path, "roles"), "roles: who may record it, e.g. [grid_worker, village_secretary]")
        out[code] = Rule(
            code=code,
            label=str(spec.get("label") or code),
            category=str(spec.get("category") or ""),
            points=points,
            limit=_limit(src, spec.get("limit"), (*path, "limit")),
            roles=tuple(roles),
            approval=bool(spec.get("approval", False)),
        )
        if not isinstance(spec.get("approval", False), bool):
            src.problem((*path, "approval"), "approval is true or false")
    return out


def _limit(src: Source, raw: Any, path: tuple) -> Limit | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("period") not in PERIODS:
        src.problem(path, f"limit: {{period: {'|'.join(PERIODS)}, times: N}}")
        return None
    times = raw.get("times")
    if isinstance(times, bool) or not isinstance(times, int) or not 1 <= times <= MAX_TIMES:
        src.problem((*path, "times"), f"times must be a whole number from 1 to {MAX_TIMES:,}, not {times!r}")
        return None
    return Limit(raw["period"], times)


def _roles(src: Source, raw: Any, path: tuple) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        src.problem(path, "expected a list of roles")
        return []
    out = []
    for i, role in enumerate(raw):
        if role not in ROLES:
            src.problem((*path, i), f"unknown role {role!r}; roles are: {', '.join(ROLES)}")
        else:
            out.append(role)
    return out


def _stars(src: Source, raw: Any, categories: set[str]) -> tuple[Star, ...]:
    if not isinstance(raw, dict):
        src.problem(("stars",), "stars: a mapping of star name to {category, minimum}")
        return ()
    out = []
    for name, spec in raw.items():
        path = ("stars", name)
        if not isinstance(spec, dict) or spec.get("category") not in categories:
            src.problem(path, f"a star names a category of the rules: {', '.join(sorted(categories))}")
            continue
        out.append(Star(name, spec["category"], _int(src, spec.get("minimum", 1), (*path, "minimum"), 1)))
    return tuple(out)


def _int(src: Source, raw: Any, path: tuple, minimum: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not minimum <= raw <= MAX_COUNT:
        src.problem(path, f"expected a whole number from {minimum:,} to {MAX_COUNT:,}, not {raw!r}")
        return minimum
    return raw
