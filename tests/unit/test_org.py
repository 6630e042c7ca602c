"""The org chart loader: the sample township, and a table of broken charts.

Each broken chart is the small valid ``BASE`` with one or more lines changed; it must
fail with one :class:`OrgChartInvalid` that lists every problem with its
``file:line:column``, the YAML path, and a message saying what is wrong.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from engine.errors import OrgChartInvalid
from engine.org import OrgChart, load_org_file
from tests.support import ORG_FILE, Expected

# Line numbers matter: the expected problems below point into this text.
BASE_LINES = [
    "township:",  # 1
    "  id: shengli",  # 2
    "  name: 胜利乡",  # 3
    "  code: SL",  # 4
    "villages:",  # 5
    "  - id: mayingtai",  # 6
    "    name: 马营台村",  # 7
    "    groups:",  # 8
    "      - id: mayingtai-1",  # 9
    "        name: 1社",  # 10
    "    grids:",  # 11
    "      - id: mayingtai-01",  # 12
    "        name: 马营台村第1单元格",  # 13
    "        group: mayingtai-1",  # 14
    "        households: 26",  # 15
    "      - id: mayingtai-02",  # 16
    "        name: 马营台村第2单元格",  # 17
    "        group: mayingtai-1",  # 18
    "        households: 33",  # 19
    "unit_grids:",  # 20
    "  - id: unit-01",  # 21
    "    name: 乡机关单元格",  # 22
    "    unit: 胜利乡人民政府",  # 23
    "    village: mayingtai",  # 24
    "people:",  # 25
    "  - id: p-chen-jia",  # 26
    "    name: 陈佳",  # 27
    '    phone: "13800000001"',  # 28
    "    roles:",  # 29
    "      - role: center",  # 30
    "        scope: shengli",  # 31
    "  - id: p-an-yixuan",  # 32
    "    name: 安怡璇",  # 33
    "    email: an.yixuan@shengli.example.org",  # 34
    "    roles:",  # 35
    "      - role: grid_worker",  # 36
    "        scope: mayingtai-01",  # 37
]


def chart_text(**changes: str | None) -> str:
    """BASE with lines replaced (``line_28='...'``), removed (``None``) or appended (``line_38``)."""
    lines: list[str | None] = list(BASE_LINES)
    for key, text in sorted(changes.items(), key=lambda kv: int(kv[0].split("_")[1])):
        number = int(key.split("_")[1])
        if number == len(lines) + 1:
            lines.append(text)
        else:
            lines[number - 1] = text
    return "\n".join(line for line in lines if line is not None) + "\n"


def write(tmp_path: Path, text: str, name: str = "org.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def assert_problems(path: Path, expected: list[Expected]) -> OrgChartInvalid:
    """Loading ``path`` fails listing exactly ``expected``, each located in ``path``."""
    with pytest.raises(OrgChartInvalid) as info:
        load_org_file(path)
    problems = list(info.value.problems)
    missing = [e for e in expected if not any(e.matches(p) for p in problems)]
    extra = [p for p in problems if not any(e.matches(p) for e in expected)]
    assert (missing, extra) == ([], []), "\n".join(map(str, problems))
    message = str(info.value)
    assert message.startswith(f"{len(expected)} problem(s) in org chart:")
    for p in problems:
        assert p.file == str(path)
        assert str(p).startswith(f"{path}:{p.line}:{p.column}:")
        assert f"  {p}" in message
    return info.value


# -- the sample township ------------------------------------------------------------


@pytest.fixture(scope="module")
def shengli() -> OrgChart:
    return load_org_file(ORG_FILE)


def test_sample_has_six_villages(shengli):
    villages = [p for p in shengli.places if p.kind == "village"]
    assert len(villages) == 6
    assert shengli.township.id == "shengli" and shengli.township.kind == "township"


def test_sample_has_66_residential_and_3_unit_grids(shengli):
    kinds = Counter(g.grid_kind for g in shengli.grids())
    assert kinds == {"residential": 66, "unit": 3}


def test_sample_grid_households_sum_to_1881(shengli):
    assert sum(g.households or 0 for g in shengli.grids()) == 1881
    assert shengli.township.attributes["households"] == 1881


def test_every_sample_grid_has_exactly_one_grid_worker(shengli):
    workers = Counter(scope for p in shengli.people for role, scope in p.roles if role == "grid_worker")
    assert set(workers) == {g.id for g in shengli.grids()}
    assert set(workers.values()) == {1}


def test_sample_case_code_prefix_is_sl(shengli):
    assert shengli.case_code_prefix == "SL"


def test_sample_places_come_parents_first(shengli):
    seen: set[str] = set()
    for place in shengli.places:
        assert place.parent_id is None or place.parent_id in seen, place.id
        seen.add(place.id)


def test_base_chart_is_valid(tmp_path):
    chart = load_org_file(write(tmp_path, chart_text()))
    assert [g.id for g in chart.grids()] == ["mayingtai-01", "mayingtai-02", "unit-01"]
    assert [p.id for p in chart.people] == ["p-chen-jia", "p-an-yixuan"]


def test_person_without_contact_is_fine_with_notify_false(tmp_path):
    chart = load_org_file(write(tmp_path, chart_text(line_34="    notify: false")))
    person = chart.people[1]
    assert (person.id, person.notify, person.phone, person.email, person.wecom) == (
        "p-an-yixuan",
        False,
        None,
        None,
        None,
    )
    assert person.roles == (("grid_worker", "mayingtai-01"),)


# -- broken charts: one table, every problem located ----------------------------------

BROKEN = {
    "grid_unknown_group": (
        chart_text(line_18="        group: mayingtai-9"),
        [Expected(18, 16, "villages[0].grids[1].group", "unknown group 'mayingtai-9' of village 'mayingtai'")],
    ),
    "unit_grid_unknown_village": (
        chart_text(line_24="    village: diping"),
        [Expected(24, 14, "unit_grids[0].village", "unknown village 'diping'")],
    ),
    "scope_unknown_village": (
        chart_text(line_31="        scope: diping"),
        [Expected(31, 16, "people[0].roles[0].scope", "unknown place 'diping'")],
    ),
    "scope_unknown_grid": (
        chart_text(line_37="        scope: mayingtai-99"),
        [Expected(37, 16, "people[1].roles[0].scope", "unknown place 'mayingtai-99'")],
    ),
    "unknown_role": (
        chart_text(line_30="      - role: centre"),
        [Expected(30, 15, "people[0].roles[0].role", "unknown role 'centre'; roles are: grid_worker")],
    ),
    "duplicate_place_id": (
        chart_text(line_16="      - id: mayingtai-01"),
        [Expected(16, 13, "villages[0].grids[1].id", "duplicate id 'mayingtai-01'; first used at line 12")],
    ),
    "duplicate_person_and_place_id": (
        chart_text(line_32="  - id: mayingtai"),
        [Expected(32, 9, "people[1].id", "duplicate id 'mayingtai'; first used at line 6")],
    ),
    "notified_person_without_contact": (
        chart_text(line_34=None),
        [Expected(32, 5, "people[1]", "'p-an-yixuan' receives notices but has no phone, email or wecom")],
    ),
    "bad_phone": (  # p-an-yixuan still has an e-mail address
        chart_text(line_33='    name: 安怡璇\n    phone: "1380000"'),
        [Expected(34, 12, "people[1].phone", "bad phone '1380000': write 11 digits")],
    ),
    "top_level_list": (
        "- township\n- villages\n",
        [Expected(1, 1, "", "an org chart must be a mapping")],
    ),
    "top_level_text": (
        "shengli\n",
        [Expected(1, 1, "", "an org chart must be a mapping")],
    ),
    "unknown_top_level_key": (
        chart_text(line_38="village_groups: []"),
        [Expected(38, 1, "village_groups", "unknown key 'village_groups'; known keys: people, township")],
    ),
    "python_object_tag": (
        chart_text(line_27='    name: !!python/object/apply:os.system ["echo pwned"]'),
        [Expected(27, 11, "people[0].name", "tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed")],
    ),
}


@pytest.mark.parametrize("name", BROKEN)
def test_broken_chart_is_rejected_with_located_problems(tmp_path, name):
    text, expected = BROKEN[name]
    assert_problems(write(tmp_path, text, f"{name}.yaml"), expected)


def test_every_problem_in_one_file_is_listed_at_once(tmp_path):
    text = chart_text(
        line_16="      - id: mayingtai-01",
        line_24="    village: diping",
        line_28=None,  # p-chen-jia loses the only contact; every line below moves up one
        line_30="      - role: centre",
        line_33='    name: 安怡璇\n    phone: "1380000"',  # ...and this adds one back
        line_37="        scope: diping",
        line_38="village_groups: []",
    )
    assert_problems(
        write(tmp_path, text),
        [
            Expected(16, 13, "villages[0].grids[1].id", "duplicate id 'mayingtai-01'"),
            Expected(24, 14, "unit_grids[0].village", "unknown village 'diping'"),
            Expected(26, 5, "people[0]", "'p-chen-jia' receives notices but has no phone, email or wecom"),
            Expected(29, 15, "people[0].roles[0].role", "unknown role 'centre'"),
            Expected(33, 12, "people[1].phone", "bad phone '1380000'"),
            Expected(37, 16, "people[1].roles[0].scope", "unknown place 'diping'"),
            Expected(38, 1, "village_groups", "unknown key 'village_groups'"),
        ],
    )


def test_notify_must_be_a_boolean(tmp_path):
    # YAML 1.2: `no` is text, not false.
    assert_problems(
        write(tmp_path, chart_text(line_34="    notify: no")),
        [
            Expected(34, 13, "people[1].notify", "notify must be true or false"),
            Expected(32, 5, "people[1]", "receives notices but has no phone, email or wecom"),
        ],
    )


# -- bugs found while writing these tests ---------------------------------------------


def test_refused_tag_does_not_hide_the_other_problems(tmp_path):
    text = chart_text(
        line_27='    name: !!python/object/apply:os.system ["echo pwned"]',
        line_36="      - role: grid_boss",
    )
    assert_problems(
        write(tmp_path, text),
        [
            Expected(27, 11, "people[0].name", "is not allowed"),
            Expected(36, 15, "people[1].roles[0].role", "unknown role 'grid_boss'"),
        ],
    )


@pytest.mark.parametrize(
    ("line", "text", "path"),
    [
        (10, "        name: 1社\n      - 1社", "villages[0].groups[1]"),
        (19, "        households: 33\n      - mayingtai-03", "villages[0].grids[2]"),
        (24, "    village: mayingtai\n  - unit-02", "unit_grids[1]"),
    ],
    ids=["group", "grid", "unit_grid"],
)
def test_list_entry_that_is_not_a_mapping_is_a_problem(tmp_path, line, text, path):
    at = line + 1
    assert_problems(
        write(tmp_path, chart_text(**{f"line_{line}": text})),
        [
            Expected(at, 9 if path.startswith("villages") else 5, path, ""),  # any message, located
        ],
    )


def test_bad_phone_is_not_followed_by_no_contact(tmp_path):
    assert_problems(
        write(tmp_path, chart_text(line_28='    phone: "1380000"')),
        [
            Expected(28, 12, "people[0].phone", "bad phone '1380000'"),
        ],
    )


def test_unknown_group_is_not_followed_by_unknown_place(tmp_path):
    assert_problems(
        write(tmp_path, chart_text(line_14="        group: mayingtai-9")),
        [
            Expected(14, 16, "villages[0].grids[0].group", "unknown group 'mayingtai-9'"),
        ],
    )
