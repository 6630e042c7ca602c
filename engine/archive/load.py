"""Read a household archive (户档) from CSV or YAML and check every row against the org chart.

A CSV file has one row per resident (UTF-8, with or without BOM; headers in Chinese or English)::

    户号,村,社,网格,地址,姓名,与户主关系,性别,出生年份,身份证号,电话
    MYT-1-0001,马营台村,1社,mayingtai-01,马营台村1社1号,王建国,户主,男,1962,510000196203141235,13800001001

A YAML file lists households with their members::

    households:
      - {id: MYT-1-0001, village: mayingtai, group: 1社, grid: mayingtai-01, address: 马营台村1社1号,
         members: [{name: 王建国, relation: 户主, gender: 男, birth_year: 1962}]}

Both are read into located rows and checked by one checker, which reports every problem at
once: ``file:line:column`` and the column's header (CSV) or the YAML path, then what is wrong.
Nothing is returned unless the whole file is right, so an import never half-happens.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from engine.errors import Problem, SourceError
from engine.yamlsrc import Path_, Source, format_path, load_file


class ArchiveInvalid(SourceError):
    what = "household archive"


@dataclass(frozen=True)
class Column:
    field: str
    chinese: str
    english: str
    required: bool = True
    aliases: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.chinese} {self.english}"


COLUMNS = (
    Column("household", "户号", "household", aliases=("household_id",)),
    Column("village", "村", "village"),
    Column("group", "社", "group", aliases=("组", "社(组)", "社（组）")),
    Column("grid", "网格", "grid", aliases=("单元格",)),
    Column("address", "地址", "address", required=False),
    Column("name", "姓名", "name"),
    Column("relation", "与户主关系", "relation", aliases=("关系",)),
    Column("gender", "性别", "gender", aliases=("sex",)),
    Column("birth_year", "出生年份", "birth_year", aliases=("出生年",)),
    Column("id_number", "身份证号", "id_number", required=False, aliases=("身份证号码", "公民身份号码")),
    Column("phone", "电话", "phone", required=False, aliases=("手机", "手机号", "联系电话")),
)
HEADERS = {name.casefold(): c for c in COLUMNS for name in (c.chinese, c.english, *c.aliases)}
HOUSEHOLD_FIELDS = ("village", "group", "grid")

HEAD = "户主"
RELATIONS = {  # accepted value -> stored relation
    **{r: r for r in ("户主", "配偶", "子女", "儿媳", "女婿", "父母", "孙子女", "祖父母", "兄弟姐妹", "其他")},
    **dict.fromkeys(("之子", "之女", "儿子", "女儿", "长子", "次子", "三子", "长女", "次女", "三女"), "子女"),
    **dict.fromkeys(("父亲", "母亲"), "父母"),
    **dict.fromkeys(("孙子", "孙女", "外孙子", "外孙女"), "孙子女"),
    **dict.fromkeys(("祖父", "祖母"), "祖父母"),
    **dict.fromkeys(("兄", "弟", "姐", "妹"), "兄弟姐妹"),
    "head": "户主",
    "spouse": "配偶",
    "child": "子女",
    "daughter_in_law": "儿媳",
    "son_in_law": "女婿",
    "parent": "父母",
    "grandchild": "孙子女",
    "grandparent": "祖父母",
    "sibling": "兄弟姐妹",
    "other": "其他",
}
GENDERS = {"男": "男", "女": "女", "m": "男", "male": "男", "f": "女", "female": "女"}
HOUSEHOLD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
ID_NUMBER = re.compile(r"^[0-9]{17}[0-9X]$")
PHONE = re.compile(r"^1[3-9][0-9]{9}$")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
MIN_YEAR = 1900
MAX_LEN = {"name": 50, "address": 200}


# -- frozen results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberSpec:
    name: str
    relation: str
    gender: str
    birth_year: int
    id_number: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class HouseholdSpec:
    id: str
    village_id: str
    group_id: str
    grid_id: str
    address: str | None
    members: tuple[MemberSpec, ...]  # the 户主 first, then in the file's order

    @property
    def head(self) -> MemberSpec:
        return self.members[0]


@dataclass(frozen=True)
class Archive:
    source: str
    households: tuple[HouseholdSpec, ...]

    @property
    def residents(self) -> int:
        return sum(len(h.members) for h in self.households)

    @property
    def villages(self) -> set[str]:
        return {h.village_id for h in self.households}


@dataclass(frozen=True)
class Places:
    """The active villages, groups (社) and grid cells an archive may name, from the org chart."""

    villages: dict[str, str]  # id -> name
    groups: dict[str, tuple[str, str]]  # id -> (village id, name)
    grids: dict[str, tuple[str | None, str | None, str]]  # id -> (village id, group id, name)

    @classmethod
    def of(cls, places: Iterable[Any]) -> Places:
        """From org chart places: ``PlaceSpec`` values or ``Place`` rows (``kind``, ``parent_id``, ...)."""
        places = [p for p in places if getattr(p, "active", True)]
        villages = {p.id: p.name for p in places if p.kind == "village"}
        groups = {p.id: (p.village_id, p.name) for p in places if p.kind == "group"}
        grids = {
            p.id: (p.village_id, p.parent_id if p.parent_id in groups else None, p.name)
            for p in places
            if p.kind == "grid"
        }
        return cls(villages, groups, grids)

    def village(self, text: str) -> str | None:
        if text in self.villages:
            return text
        return next((vid for vid, name in self.villages.items() if name == text), None)

    def group(self, village: str, text: str) -> str | None:
        if text in self.groups:
            return text
        return next((gid for gid, (vid, name) in self.groups.items() if vid == village and name == text), None)

    def grid(self, text: str) -> str | None:
        if text in self.grids:
            return text
        return next((gid for gid, (_, _, name) in self.grids.items() if name == text), None)

    def group_label(self, group_id: str | None) -> str:
        if group_id is None:
            return "no group"
        return f"{self.groups[group_id][1]} ({group_id})"


# -- entry point ----------------------------------------------------------------------------------


def load_archive(path: str | Path, places: Places, year: int) -> Archive:
    """Read and check ``path`` (``.csv``, ``.yaml`` or ``.yml``); ``year`` is this year, the latest birth year.

    Raises :class:`ArchiveInvalid` listing every problem; returns only a wholly valid archive."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        rows, problems = _read_csv(p)
    elif suffix in (".yaml", ".yml"):
        rows, problems = _read_yaml(p)
    else:
        raise ArchiveInvalid([Problem(str(p), 1, 1, "", "unknown file type; write a .csv or a .yaml file")])
    checker = _Checker(str(p), places, year, problems)
    households = checker.check(rows)
    if checker.problems:
        raise ArchiveInvalid(checker.problems)
    return Archive(str(p), households)


# -- located rows -------------------------------------------------------------------------------


@dataclass(frozen=True)
class At:
    """Where a value was read: the line, the column, and the header (CSV) or YAML path."""

    line: int
    column: int
    path: str


@dataclass
class _Row:
    """One resident as read: each field's raw value and where it came from."""

    line: int
    at: At  # the row itself (CSV: its first column; YAML: the member mapping)
    values: dict[str, Any] = field(default_factory=dict)
    where: dict[str, At] = field(default_factory=dict)

    def at_field(self, name: str) -> At:
        return self.where.get(name, self.at)


def _problem(file: str, at: At, message: str) -> Problem:
    return Problem(file, at.line, at.column, at.path, message)


# -- CSV ----------------------------------------------------------------------------------------


def _read_csv(path: Path) -> tuple[list[_Row], list[Problem]]:
    file = str(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        return [], [Problem(file, 1, 1, "", "file not found; check the path")]
    except UnicodeDecodeError as exc:
        hint = "save it as UTF-8 (Excel: 另存为 “CSV UTF-8”); GBK is not read"
        return [], [Problem(file, 1, 1, "", f"not UTF-8 text ({exc.reason}); {hint}")]
    except OSError as exc:
        return [], [Problem(file, 1, 1, "", f"cannot read the file: {exc.strerror}")]
    try:
        return _csv_rows(file, text)
    except csv.Error as exc:
        return [], [Problem(file, 1, 1, "", f"malformed CSV: {exc}; check the quotes")]


def _csv_rows(file: str, text: str) -> tuple[list[_Row], list[Problem]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    while header is not None and not any(cell.strip() for cell in header):
        header = next(reader, None)
    if header is None:
        return [], [Problem(file, 1, 1, "", "the file is empty; it needs a header row and one row per resident")]
    header_line, width = reader.line_num, len(header)
    header = _trim([h.strip() for h in header])  # a spreadsheet's empty columns at the right
    columns, problems = _header(file, header_line, header)
    rows: list[_Row] = []
    last = reader.line_num
    for cells in reader:
        line, last = last + 1, reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) == width and not any(cell.strip() for cell in cells[len(header) :]):
            cells = cells[: len(header)]
        if len(cells) != len(header):
            at = At(line, 1, "")
            problems.append(
                _problem(
                    file,
                    at,
                    f"this row has {len(cells)} values but the header has {len(header)} columns; "
                    "quote a value that holds a comma",
                )
            )
            continue
        if columns is not None:
            rows.append(_csv_row(line, header, columns, cells))
    if not rows and not problems:
        problems.append(Problem(file, header_line, 1, "", "no residents: the file has a header row but no rows"))
    return rows, problems


def _trim(cells: list[str]) -> list[str]:
    while cells and not cells[-1]:
        cells = cells[:-1]
    return cells


def _header(file: str, line: int, header: list[str]) -> tuple[dict[str, int] | None, list[Problem]]:
    """Column index of each field; problems for unknown, repeated and missing columns."""
    problems, columns = [], {}
    accepted = "; ".join(f"{c.chinese} or {c.english}{'' if c.required else ' (optional)'}" for c in COLUMNS)
    for index, name in enumerate(header):
        column = HEADERS.get(name.casefold())
        at = At(line, index + 1, name)
        if column is None:
            problems.append(_problem(file, at, f"unknown column {name!r}; the columns are: {accepted}"))
        elif column.field in columns:
            problems.append(_problem(file, at, f"column {column.label} appears twice"))
        else:
            columns[column.field] = index
    for column in COLUMNS:
        if column.required and column.field not in columns:
            where = At(line, 1, "")
            problems.append(_problem(file, where, f"missing column {column.label}; the columns are: {accepted}"))
    return (None if problems else columns), problems


def _csv_row(line: int, header: list[str], columns: dict[str, int], cells: list[str]) -> _Row:
    row = _Row(line, At(line, 1, header[0]))
    for name, index in columns.items():
        value = cells[index].strip()
        row.values[name] = value or None
        row.where[name] = At(line, index + 1, header[index])
    return row


# -- YAML ---------------------------------------------------------------------------------------

HOUSEHOLD_KEYS = ("id", "village", "group", "grid", "address", "members")
MEMBER_KEYS = ("name", "relation", "gender", "birth_year", "id_number", "phone")


def _read_yaml(path: Path) -> tuple[list[_Row], list[Problem]]:
    src = load_file(path)
    rows: list[_Row] = []
    if src.data is not None:
        _YamlReader(src, rows).read()
    return rows, src.problems


class _YamlReader:
    def __init__(self, src: Source, rows: list[_Row]):
        self.src = src
        self.rows = rows
        self.ids: dict[str, int] = {}

    def at(self, path: Path_, at_key: bool = False) -> At:
        line, column = self.src.where(path, at_key)
        return At(line, column, format_path(path))

    def read(self) -> None:
        doc = self.src.data
        if not isinstance(doc, dict) or not isinstance(doc.get("households"), list):
            self.src.problem((), "an archive must be a mapping with a list `households:` of households")
            return
        for key in sorted(set(doc) - {"households"}):
            self.src.problem((key,), f"unknown key {key!r}; the archive has only `households`", at_key=True)
        if not doc["households"]:
            self.src.problem(("households",), "no households: the list is empty")
        for i, household in enumerate(doc["households"]):
            self._household(household, ("households", i))

    def _household(self, spec: Any, path: Path_) -> None:
        if not isinstance(spec, dict):
            self.src.problem(path, "expected a household mapping with id, village, group, grid, members")
            return
        self._unknown_keys(spec, path, HOUSEHOLD_KEYS)
        self._duplicate_id(spec, path)
        members = spec.get("members")
        if not isinstance(members, list) or not members:
            self.src.problem((*path, "members"), "a household needs `members:`, a list with at least its 户主", True)
            return
        for j, member in enumerate(members):
            self._member(spec, path, member, (*path, "members", j))

    def _duplicate_id(self, spec: dict, path: Path_) -> None:
        ident = spec.get("id")
        if not isinstance(ident, str):
            return
        if ident in self.ids:
            self.src.problem(
                (*path, "id"), f"household {ident!r} is listed twice; the first is on line {self.ids[ident]}"
            )
        else:
            self.ids[ident] = self.src.where((*path, "id"))[0]

    def _unknown_keys(self, spec: dict, path: Path_, known: tuple[str, ...]) -> None:
        for key in sorted(set(spec) - set(known)):
            self.src.problem((*path, key), f"unknown key {key!r}; known keys: {', '.join(known)}", True)

    def _member(self, household: dict, hpath: Path_, spec: Any, path: Path_) -> None:
        if not isinstance(spec, dict):
            self.src.problem(path, "expected a member mapping with name, relation, gender, birth_year")
            return
        self._unknown_keys(spec, path, MEMBER_KEYS)
        at = self.at(path)
        row = _Row(at.line, at)
        for name, key in (("household", "id"), *((f, f) for f in (*HOUSEHOLD_FIELDS, "address"))):
            self._value(row, name, household, (*hpath, key), hpath)
        for name in MEMBER_KEYS:
            self._value(row, name, spec, (*path, name), path)
        self.rows.append(row)

    def _value(self, row: _Row, name: str, spec: dict, path: Path_, parent: Path_) -> None:
        if path in self.src.rejected:
            row.values[name] = _REJECTED
        else:
            value = spec.get(path[-1])
            row.values[name] = (value.strip() or None) if isinstance(value, str) else value
        row.where[name] = self.at(path) if path[-1] in spec else At(*self.src.where(parent, True), format_path(path))


_REJECTED = object()  # a value the YAML loader refused (and reported) already


# -- checks ---------------------------------------------------------------------------------------


@dataclass
class _Household:
    """What the checker knows of one household id while it walks the rows."""

    id: str
    first: _Row
    places: tuple[str, str, str] | None
    address: str | None
    places_line: int = 0  # the row the places were taken from
    members: list[tuple[_Row, str | None, MemberSpec | None]] = field(default_factory=list)  # row, relation, spec


class _Checker:
    """Checks rows field by field, then across rows; collects every problem."""

    def __init__(self, file: str, places: Places, year: int, problems: list[Problem]):
        self.file = file
        self.places = places
        self.year = year
        self.problems = list(problems)
        self.households: dict[str, _Household] = {}
        self.residents: dict[tuple[str, str, int], int] = {}
        self.id_numbers: dict[str, int] = {}
        self.unattached = False  # a row without a usable household id: it may hold a household's 户主

    def problem(self, row: _Row, name: str, message: str) -> None:
        self.problems.append(_problem(self.file, row.at_field(name), message))

    def check(self, rows: list[_Row]) -> tuple[HouseholdSpec, ...]:
        for row in rows:
            self._row(row)
        for household in self.households.values():
            self._heads(household)
        if self.problems:
            return ()
        return tuple(self._spec(h) for h in self.households.values())

    def _row(self, row: _Row) -> None:
        ident = self._household_id(row)
        places = self._places(row)
        address = self._text(row, "address", required=False)
        relation, member = self._member(row)
        if ident is None:
            self.unattached = True
            return
        household = self.households.get(ident)
        if household is None:
            household = self.households[ident] = _Household(ident, row, places, address, row.line)
        else:
            self._same_household(household, row, places, address)
        household.members.append((row, relation, member))
        if member is not None:
            self._unique(row, ident, member)

    # -- fields -----------------------------------------------------------------------------

    def _raw(self, row: _Row, name: str, required: bool) -> str | None:
        value = row.values.get(name)
        if value is _REJECTED:
            return None
        if value is None:
            if required:
                self.problem(row, name, f"{_label(name)} is missing")
            return None
        if isinstance(value, int) and not isinstance(value, bool) and name in ("id_number", "phone", "birth_year"):
            return str(value)
        if not isinstance(value, str):
            kind = "a year like 1962" if name == "birth_year" else "text"
            self.problem(row, name, f"{_label(name)} must be {kind}, not {value!r}")
            return None
        return value

    def _text(self, row: _Row, name: str, required: bool = True) -> str | None:
        value = self._raw(row, name, required)
        if value is not None and len(value) > MAX_LEN.get(name, 64):
            self.problem(row, name, f"{_label(name)} is too long ({len(value)} characters, at most {MAX_LEN[name]})")
            return None
        return value

    def _household_id(self, row: _Row) -> str | None:
        value = self._raw(row, "household", required=True)
        if value is not None and not HOUSEHOLD_ID.match(value):
            self.problem(
                row, "household", f"bad household id {value!r}: up to 32 letters, digits, '-' or '_', e.g. MYT-1-0012"
            )
            return None
        return value

    def _places(self, row: _Row) -> tuple[str, str, str] | None:
        village = self._village(row)
        if village is None:
            for name in ("group", "grid"):
                self._raw(row, name, required=True)
            return None
        group, grid = self._group(row, village), self._grid(row, village)
        if group is None or grid is None:
            return None
        grid_group = self.places.grids[grid][1]
        if grid_group is not None and grid_group != group:
            self.problem(
                row,
                "grid",
                f"grid {grid} belongs to {self.places.group_label(grid_group)}, "
                f"not to {self.places.group_label(group)}; correct the 社 or the grid",
            )
            return None
        return village, group, grid

    def _village(self, row: _Row) -> str | None:
        text = self._raw(row, "village", required=True)
        if text is None:
            return None
        village = self.places.village(text)
        if village is None:
            known = ", ".join(f"{name} ({vid})" for vid, name in self.places.villages.items()) or "none"
            self.problem(row, "village", f"unknown village {text!r}; villages: {known}")
        return village

    def _group(self, row: _Row, village: str) -> str | None:
        text = self._raw(row, "group", required=True)
        if text is None:
            return None
        group = self.places.group(village, text)
        vname = self.places.villages[village]
        if group is not None and self.places.groups[group][0] != village:
            self.problem(row, "group", f"group {text!r} is not in {vname} ({village}); it is in another village")
            return None
        if group is None:
            known = ", ".join(self.places.group_label(g) for g, (v, _) in self.places.groups.items() if v == village)
            self.problem(row, "group", f"unknown group {text!r} in {vname}; its groups: {known or 'none'}")
        return group

    def _grid(self, row: _Row, village: str) -> str | None:
        text = self._raw(row, "grid", required=True)
        if text is None:
            return None
        grid = self.places.grid(text)
        vname = self.places.villages[village]
        if grid is None:
            self.problem(row, "grid", f"unknown grid {text!r}; `gridflow org show --village {village}` lists its grids")
        elif self.places.grids[grid][0] != village:
            self.problem(row, "grid", f"grid {text!r} is not in {vname} ({village})")
            return None
        return grid

    def _member(self, row: _Row) -> tuple[str | None, MemberSpec | None]:
        """The row's relation (if known) and its member (if every field is right)."""
        name = self._text(row, "name")
        relation = self._choice(
            row, "relation", RELATIONS, "户主, 配偶, 子女, 儿媳, 女婿, 父母, 孙子女, 祖父母, 兄弟姐妹, 其他"
        )
        gender = self._choice(row, "gender", GENDERS, "男 or 女")
        birth_year = self._birth_year(row)
        id_number = self._id_number(row, birth_year, gender)
        phone = self._phone(row)
        if None in (name, relation, gender, birth_year) or id_number is _BAD or phone is _BAD:
            return relation, None
        return relation, MemberSpec(name, relation, gender, birth_year, id_number, phone)  # type: ignore[arg-type]

    def _choice(self, row: _Row, name: str, values: dict[str, str], hint: str) -> str | None:
        text = self._raw(row, name, required=True)
        if text is None:
            return None
        value = values.get(text) or values.get(text.casefold())
        if value is None:
            self.problem(row, name, f"unknown {_label(name)} {text!r}; write one of: {hint}")
        return value

    def _birth_year(self, row: _Row) -> int | None:
        text = self._raw(row, "birth_year", required=True)
        if text is None:
            return None
        if not text.isdecimal() or not MIN_YEAR <= int(text) <= self.year:
            self.problem(row, "birth_year", f"bad birth year {text!r}: a year from {MIN_YEAR} to {self.year}")
            return None
        return int(text)

    def _id_number(self, row: _Row, birth_year: int | None, gender: str | None) -> Any:
        text = self._raw(row, "id_number", required=False)
        if text is None:
            return None
        number = text.upper()
        problem = id_number_problem(number)
        if problem is None and birth_year is not None and int(number[6:10]) != birth_year:
            problem = f"its birth date {number[6:14]} disagrees with birth year {birth_year}"
        if problem is None and gender is not None and id_number_gender(number) != gender:
            problem = f"its 17th digit says {id_number_gender(number)}, the row says {gender}"
        if problem is not None:
            self.problem(row, "id_number", f"bad ID number {text!r}: {problem}")
            return _BAD
        return number

    def _phone(self, row: _Row) -> Any:
        text = self._raw(row, "phone", required=False)
        if text is None:
            return None
        number = re.sub(r"[\s-]", "", text)
        if not PHONE.match(number):
            self.problem(row, "phone", f"bad phone {text!r}: a mainland mobile number, 11 digits starting 13-19")
            return _BAD
        return number

    # -- across rows ------------------------------------------------------------------------

    def _same_household(self, household: _Household, row: _Row, places: Any, address: str | None) -> None:
        first = household.places_line
        if household.places is None:  # the first row's places were wrong: compare with the next right ones
            household.places, household.places_line = places, row.line
        elif places is not None and places != household.places:
            name = next(n for n, a, b in zip(HOUSEHOLD_FIELDS, places, household.places, strict=True) if a != b)
            where = " / ".join(household.places)
            self.problem(
                row, name, f"household {household.id} is in {where} on line {first}; this row says {' / '.join(places)}"
            )
        if address is not None:
            if household.address is None:
                household.address = address
            elif address != household.address:
                self.problem(
                    row,
                    "address",
                    f"household {household.id} has address {household.address!r} on an earlier row; "
                    "write one address, or leave the other rows empty",
                )

    def _unique(self, row: _Row, household: str, member: MemberSpec) -> None:
        key = (household, member.name, member.birth_year)
        if key in self.residents:
            self.problem(
                row,
                "name",
                f"{member.name} born {member.birth_year} is listed twice in household {household}; "
                f"the first is on line {self.residents[key]}",
            )
        else:
            self.residents[key] = row.line
        if member.id_number is None:
            return
        if member.id_number in self.id_numbers:
            first = self.id_numbers[member.id_number]
            self.problem(row, "id_number", f"ID number {member.id_number} is also on line {first}")
        else:
            self.id_numbers[member.id_number] = row.line

    def _heads(self, household: _Household) -> None:
        heads = [row for row, relation, _ in household.members if relation == HEAD]
        known = all(relation is not None for _, relation, _ in household.members)
        if not heads and known and not self.unattached:
            lines = ", ".join(str(row.line) for row, _, _ in household.members)
            self.problem(
                household.first,
                "relation",
                f"household {household.id} has no 户主 (lines {lines}); mark its head with 与户主关系 户主",
            )
        for extra in heads[1:]:
            self.problem(
                extra,
                "relation",
                f"household {household.id} has a second 户主; the first is on line {heads[0].line}; "
                "a household has exactly one",
            )

    def _spec(self, household: _Household) -> HouseholdSpec:
        members = [m for _, _, m in household.members if m is not None]
        members.sort(key=lambda m: m.relation != HEAD)  # stable: the head first, the rest as written
        village, group, grid = household.places  # type: ignore[misc]
        return HouseholdSpec(household.id, village, group, grid, household.address, tuple(members))


_BAD = object()  # a value that was given and is wrong (distinct from an absent optional value)


def _label(name: str) -> str:
    column = next(c for c in COLUMNS if c.field == name)
    return column.label


# -- ID numbers (GB 11643) ----------------------------------------------------------------------


def id_check_digit(first17: str) -> str:
    """The check character of a citizen ID number (GB 11643: ISO 7064 MOD 11-2)."""
    return ID_CHECK[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def id_number_problem(number: str) -> str | None:
    """What is wrong with an 18-character ID number, or None: format, birth date, check digit."""
    if not ID_NUMBER.match(number):
        return "18 characters: 17 digits then a digit or X"
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return f"{number[6:14]} is not a date (characters 7 to 14 are the birth date YYYYMMDD)"
    expected = id_check_digit(number[:17])
    if number[17] != expected:
        return f"the check digit is {number[17]}, it should be {expected} (a digit is mistyped)"
    return None


def id_number_gender(number: str) -> str:
    """The 17th digit of an ID number is odd for men and even for women."""
    return "男" if int(number[16]) % 2 else "女"
