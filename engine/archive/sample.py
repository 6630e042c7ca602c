"""The sample township's household archive: synthetic, deterministic, of realistic size.

Every household sits in a grid cell of ``config/org/shengli.yaml``, as many per cell as the cell's
``households`` count (1,881 in all), in the cell's group (社); household sizes are drawn and then
evened out to the township's ``population`` (6,373). Names are common surnames with ordinary given
names of the person's generation; members share the head's surname (spouses and in-laws do not).
Relations and birth years fit together: children 22–34 years after their parents, grandchildren
after them, parents of younger heads before them.

No person is real, and no ID number can be a real person's: they all start with the province code
``510000`` (a real number carries its county's code, never a province's), then the birth date, a
sequence whose parity matches the gender, and a valid GB 11643 check digit. Phones run from
``13800001001`` upwards. Ages are reckoned at :data:`REFERENCE_YEAR`, so the output never depends
on today's date; the same seed gives the same file, byte for byte.

    python -m engine.archive.sample                # writes config/archive/shengli.csv
    python -m engine.archive.sample --out FILE --seed N
"""

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from engine.archive.load import COLUMNS, HEAD, HouseholdSpec, MemberSpec, id_check_digit
from engine.org import OrgChart, PlaceSpec, load_org_file

ROOT = Path(__file__).resolve().parents[2]
ORG_FILE = ROOT / "config" / "org" / "shengli.yaml"
OUT_FILE = ROOT / "config" / "archive" / "shengli.csv"
SEED = 20261127
REFERENCE_YEAR = 2026
LAST_BIRTH_YEAR = REFERENCE_YEAR - 1
PROVINCE_PREFIX = "510000"  # 四川省; never a county code, so never a real person's number
FIRST_PHONE, LAST_PHONE = 13800001001, 13800009999
VILLAGE_CODES = {
    "mayingtai": "MYT",
    "diping": "DP",
    "qinglong": "QL",
    "baiguo": "BG",
    "shuanghe": "SH",
    "hongyan": "HY",
}
SIZE_WEIGHTS = {1: 10, 2: 22, 3: 22, 4: 22, 5: 14, 6: 7, 7: 3}
MAX_SIZE = 8

SURNAMES = (  # common in northern Sichuan first; weights fall off along the list
    "王 李 张 刘 陈 杨 赵 黄 周 吴 何 罗 徐 孙 胡 朱 高 林 郭 马 梁 宋 郑 谢 唐 冯 邓 曾 彭 苏 "
    "蒋 蔡 余 杜 叶 任 姚 谭 廖 邹 熊 向 袁 岳 苟 母 龚 文 侯 雷"
).split()
GIVEN = {  # (gender, generation) -> characters a given name is made of
    ("男", "old"): "德明国华春清贵富才福忠全学成正永发安文志兴树祥金光绍良",
    ("男", "mid"): "建军平伟强勇斌林涛峰刚波辉明华东海兵杰鹏亮俊龙飞",
    ("男", "young"): "浩宇轩睿博子梓晨豪鑫宸泽俊逸航皓煜铭然阳凯瑞峻",
    ("女", "old"): "秀英兰芳桂珍凤玉琼淑素翠华群菊莲芬碧会",
    ("女", "mid"): "丽红艳敏静霞燕萍娟琴梅玲芳英慧琳蓉丹雪",
    ("女", "young"): "婷欣怡涵雨佳诗梦思琪悦可馨萱妍彤瑶汐钰淇",
}


@dataclass(eq=False)  # spouses point at each other
class _Person:
    surname: str
    gender: str
    birth_year: int
    relation: str
    spouse: _Person | None = field(default=None, repr=False)


@dataclass
class _Generator:
    rng: random.Random
    chart: OrgChart
    used_ids: set[str] = field(default_factory=set)
    next_phone: int = FIRST_PHONE

    def households(self, sizes: list[int]) -> tuple[HouseholdSpec, ...]:
        places = {p.id: p for p in self.chart.places}
        out: list[HouseholdSpec] = []
        numbers: dict[str, int] = {}
        for grid, count in _grid_counts(self.chart):
            group = places[grid.parent_id]  # type: ignore[index]
            if group.kind != "group":
                raise ValueError(f"grid {grid.id} has households but no group (社) in the org chart")
            village = places[group.village_id]  # type: ignore[index]
            clan = self.rng.sample(SURNAMES[:20], 3)  # half the households of a cell share a few surnames
            for _ in range(count):
                number = numbers[group.id] = numbers.get(group.id, 0) + 1
                ident = f"{_village_code(village)}-{_group_number(group)}-{number:04d}"
                address = f"{village.name}{group.name}{number}号"
                members = self.members(sizes[len(out)], clan)
                out.append(HouseholdSpec(ident, village.id, group.id, grid.id, address, members))
        return tuple(out)

    def members(self, size: int, clan: list[str]) -> tuple[MemberSpec, ...]:
        people = self.family(size, clan)
        names: set[str] = set()
        out = []
        for person in people:
            name = self.name(person, names)
            names.add(name)
            out.append(
                MemberSpec(
                    name, person.relation, person.gender, person.birth_year, self.id_number(person), self.phone(person)
                )
            )
        return tuple(out)

    # -- a family ---------------------------------------------------------------------------

    def family(self, size: int, clan: list[str]) -> list[_Person]:
        surname = self.rng.choice(clan) if self.rng.random() < 0.5 else self.surname()
        head = _Person(
            surname, "男" if self.rng.random() < 0.85 else "女", int(self.rng.triangular(1938, 1998, 1966)), HEAD
        )
        people = [head]
        if size > 1 and self.rng.random() < 0.85:
            people.append(self.spouse(head, "配偶"))
        while len(people) < size:
            people.append(self.relative(head, people))
        return people

    def relative(self, head: _Person, people: list[_Person]) -> _Person:
        children = [p for p in people if p.relation == "子女"]
        unmarried = [c for c in children if c.birth_year <= REFERENCE_YEAR - 22 and c.spouse is None]
        grown = sorted((c for c in children if c.birth_year <= LAST_BIRTH_YEAR - 20), key=lambda c: c.gender != "男")
        parents = [p for p in people if p.relation == "父母"]
        grandchildren = [p for p in people if p.relation == "孙子女"]
        options = {"子女": 5 if len(children) < 3 else 1}
        if len(parents) < 2 and head.birth_year >= 1962:
            options["父母"] = 2
        if unmarried:
            options["in-law"] = 2
        if grown and len(grandchildren) < 3:  # grandchildren often live with grandparents (留守儿童)
            options["孙子女"] = 5
        kind = self.rng.choices(list(options), weights=list(options.values()))[0]
        if kind == "父母":
            return self.parent(head, parents)
        if kind == "in-law":
            return self.spouse(unmarried[0], "儿媳" if unmarried[0].gender == "男" else "女婿")
        if kind == "孙子女":
            return self.grandchild(grown[0])
        return self.child(head)

    def spouse(self, of: _Person, relation: str) -> _Person:
        gender = "女" if of.gender == "男" else "男"
        gap = self.rng.randint(0, 5) * (1 if gender == "女" else -1)  # wives a little younger, husbands older
        year = min(of.birth_year + gap, REFERENCE_YEAR - 20)
        of.spouse = _Person(self.surname(avoid=of.surname), gender, year, relation, spouse=of)
        return of.spouse

    def child(self, head: _Person) -> _Person:
        father = head if head.gender == "男" or head.spouse is None else head.spouse
        year = self.rng.randint(head.birth_year + 22, min(head.birth_year + 34, LAST_BIRTH_YEAR))
        return _Person(father.surname, self.rng.choice("男女"), year, "子女")

    def grandchild(self, parent: _Person) -> _Person:
        """A son's child has his surname; a daughter's her husband's (who may live elsewhere)."""
        if parent.gender == "男":
            surname = parent.surname
        else:
            surname = parent.spouse.surname if parent.spouse else self.surname(avoid=parent.surname)
        year = self.rng.randint(parent.birth_year + 20, min(parent.birth_year + 32, LAST_BIRTH_YEAR))
        return _Person(surname, self.rng.choice("男女"), year, "孙子女")

    def parent(self, head: _Person, parents: list[_Person]) -> _Person:
        gender = ("女" if parents[0].gender == "男" else "男") if parents else self.rng.choice("男女")
        surname = head.surname if gender == "男" else self.surname(avoid=head.surname)
        year = head.birth_year - self.rng.randint(22, 34)
        return _Person(surname, gender, year, "父母")

    # -- names, numbers ---------------------------------------------------------------------

    def surname(self, avoid: str | None = None) -> str:
        while True:
            choice = self.rng.choices(SURNAMES, weights=[len(SURNAMES) - i + 10 for i in range(len(SURNAMES))])[0]
            if choice != avoid:
                return choice

    def name(self, person: _Person, taken: set[str]) -> str:
        generation = "old" if person.birth_year < 1965 else "mid" if person.birth_year < 1995 else "young"
        chars = GIVEN[(person.gender, generation)]
        while True:
            length = 1 if self.rng.random() < 0.25 else 2
            name = person.surname + "".join(self.rng.choice(chars) for _ in range(length))
            if name not in taken:
                return name

    def id_number(self, person: _Person) -> str:
        first = date(person.birth_year, 1, 1)
        born = first + timedelta(days=self.rng.randrange((date(person.birth_year, 12, 31) - first).days + 1))
        odd = person.gender == "男"
        while True:
            sequence = self.rng.randrange(0, 500) * 2 + (1 if odd else 0)
            if sequence == 0:
                continue
            first17 = f"{PROVINCE_PREFIX}{born:%Y%m%d}{sequence:03d}"
            if first17 not in self.used_ids:
                self.used_ids.add(first17)
                return first17 + id_check_digit(first17)

    def phone(self, person: _Person) -> str | None:
        age = REFERENCE_YEAR - person.birth_year
        if not 18 <= age <= 75 or self.rng.random() > 0.7:
            return None
        if self.next_phone > LAST_PHONE:
            raise ValueError("the sample ran out of 1380000xxxx phone numbers")
        self.next_phone += 1
        return str(self.next_phone - 1)


def _grid_counts(chart: OrgChart) -> list[tuple[PlaceSpec, int]]:
    """Residential grid cells in the chart's order with their household counts."""
    return [(g, g.households or 0) for g in chart.grids() if g.grid_kind == "residential" and g.households]


def _village_code(village: PlaceSpec) -> str:
    return VILLAGE_CODES.get(village.id, village.id[:3].upper())


def _group_number(group: PlaceSpec) -> str:
    return group.id.rsplit("-", 1)[-1]


def household_sizes(rng: random.Random, households: int, residents: int) -> list[int]:
    """Sizes drawn from :data:`SIZE_WEIGHTS`, then nudged one person at a time to sum to ``residents``."""
    if not households <= residents <= households * MAX_SIZE:
        raise ValueError(f"{residents} residents cannot fill {households} households of 1 to {MAX_SIZE}")
    sizes = rng.choices(list(SIZE_WEIGHTS), weights=list(SIZE_WEIGHTS.values()), k=households)
    while (total := sum(sizes)) != residents:
        i = rng.randrange(households)
        if total > residents and sizes[i] > 1:
            sizes[i] -= 1
        elif total < residents and sizes[i] < MAX_SIZE:
            sizes[i] += 1
    return sizes


def generate(chart: OrgChart, seed: int = SEED) -> tuple[HouseholdSpec, ...]:
    """The sample archive of ``chart``: households per grid cell, residents summing to its population."""
    rng = random.Random(seed)
    households = sum(count for _, count in _grid_counts(chart))
    residents = int(chart.township.attributes.get("population", round(households * 3.39)))
    return _Generator(rng, chart).households(household_sizes(rng, households, residents))


def csv_rows(chart: OrgChart, households: Iterable[HouseholdSpec]) -> list[list[str]]:
    """The header (in Chinese) and one row per resident, village and group by name."""
    names = {p.id: p.name for p in chart.places}
    rows = [[c.chinese for c in COLUMNS]]
    for h in households:
        for m in h.members:
            rows.append(
                [
                    h.id,
                    names[h.village_id],
                    names[h.group_id],
                    h.grid_id,
                    h.address or "",
                    m.name,
                    m.relation,
                    m.gender,
                    str(m.birth_year),
                    m.id_number or "",
                    m.phone or "",
                ]
            )
    return rows


def write_csv(path: Path, rows: list[list[str]]) -> None:
    """UTF-8 with a BOM, so that Excel opens the Chinese text right; ``\\n`` line ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the sample township's household archive (synthetic).")
    parser.add_argument("--org", type=Path, default=ORG_FILE, help="org chart (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT_FILE, help="CSV to write (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=SEED, help="random seed (default: %(default)s)")
    args = parser.parse_args(argv)
    chart = load_org_file(args.org)
    households = generate(chart, args.seed)
    write_csv(args.out, csv_rows(chart, households))
    residents = sum(len(h.members) for h in households)
    print(f"wrote {args.out}: {len(households)} households, {residents} residents")


if __name__ == "__main__":
    main()
