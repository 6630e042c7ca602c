"""The household archive loader, masking, ID numbers, and the sample township's archive.

Each broken CSV is the small valid ``BASE`` with some cells changed; it must fail with one
:class:`ArchiveInvalid` that lists every problem with its ``file:line:column``, the column's
header, and a message saying what is wrong.
"""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from pathlib import Path

import pytest

from engine.archive import sample
from engine.archive.load import (
    COLUMNS,
    RELATIONS,
    ArchiveInvalid,
    HouseholdSpec,
    MemberSpec,
    Places,
    id_check_digit,
    id_number_gender,
    id_number_problem,
    load_archive,
)
from engine.archive.mask import mask_id_number, mask_name, mask_phone
from tests.support import Expected, seeded_org

YEAR = 2026
HEADER = [c.chinese for c in COLUMNS]  # 户号,村,社,网格,地址,姓名,与户主关系,性别,出生年份,身份证号,电话
COL = {name: i + 1 for i, name in enumerate(HEADER)}
# Line numbers matter: line 1 is the header, BASE[0] is line 2.
BASE = [
    ["MYT-1-0001", "马营台村", "1社", "mayingtai-01", "马营台村1社1号", "王建国", "户主", "男", "1962", "510000196203141231", "13800001001"],
    ["MYT-1-0001", "马营台村", "1社", "mayingtai-01", "马营台村1社1号", "李秀英", "配偶", "女", "1965", "510000196508081241", ""],
    ["MYT-1-0001", "马营台村", "1社", "mayingtai-01", "", "王浩", "子女", "男", "1990", "510000199001011010", "13800001002"],
    ["MYT-1-0001", "马营台村", "1社", "mayingtai-01", "", "王婷", "子女", "女", "1992", "510000199211201023", ""],
    ["MYT-2-0001", "mayingtai", "mayingtai-2", "mayingtai-04", "", "张德明", "户主", "男", "1950", "510000195006062011", ""],
    ["MYT-2-0001", "mayingtai", "mayingtai-2", "mayingtai-04", "", "刘秀兰", "配偶", "女", "1955", "", ""],
]  # fmt: skip

EXPECTED_BASE = (
    HouseholdSpec(
        "MYT-1-0001",
        "mayingtai",
        "mayingtai-1",
        "mayingtai-01",
        "马营台村1社1号",
        (
            MemberSpec("王建国", "户主", "男", 1962, "510000196203141231", "13800001001"),
            MemberSpec("李秀英", "配偶", "女", 1965, "510000196508081241", None),
            MemberSpec("王浩", "子女", "男", 1990, "510000199001011010", "13800001002"),
            MemberSpec("王婷", "子女", "女", 1992, "510000199211201023", None),
        ),
    ),
    HouseholdSpec(
        "MYT-2-0001",
        "mayingtai",
        "mayingtai-2",
        "mayingtai-04",
        None,
        (
            MemberSpec("张德明", "户主", "男", 1950, "510000195006062011", None),
            MemberSpec("刘秀兰", "配偶", "女", 1955),
        ),
    ),
)


@pytest.fixture(scope="module")
def places() -> Places:
    return Places.of(seeded_org().places)


def csv_text(rows: list[list[str]], header: list[str] = HEADER) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    return buffer.getvalue()


def write(tmp_path: Path, text: str, name: str = "archive.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def edited(edits: dict[int, dict[str, str]]) -> list[list[str]]:
    """BASE with cells changed: ``{line: {header: value}}``."""
    rows = [list(r) for r in BASE]
    for line, cells in edits.items():
        for header, value in cells.items():
            rows[line - 2][COL[header] - 1] = value
    return rows


def problems_of(path: Path, places: Places) -> list:
    with pytest.raises(ArchiveInvalid) as caught:
        load_archive(path, places, YEAR)
    assert str(path) in str(caught.value)
    return caught.value.problems


# -- valid files ----------------------------------------------------------------------------------


def test_the_base_csv_loads_into_households_with_the_head_first(tmp_path, places):
    rows = [BASE[1], BASE[0], *BASE[2:]]  # the head need not come first in the file
    archive = load_archive(write(tmp_path, csv_text(rows)), places, YEAR)
    assert archive.households == EXPECTED_BASE
    assert (archive.residents, archive.villages) == (6, {"mayingtai"})
    assert archive.households[0].head.name == "王建国"


def test_a_bom_english_headers_any_column_order_and_spelled_out_values_are_read_alike(tmp_path, places):
    english = [c.english for c in COLUMNS]
    order = list(reversed(range(len(english))))
    rows = [
        [r[i] for i in order]
        for r in edited({4: {"与户主关系": "长子", "性别": "M"}, 5: {"身份证号": "510000199211201023 "}})
    ]
    text = "\ufeff" + csv_text(rows, [english[i] for i in order])
    archive = load_archive(write(tmp_path, text), places, YEAR)
    assert archive.households[0].members[2].relation == "子女"
    assert archive.households == EXPECTED_BASE


def test_blank_lines_empty_columns_at_the_right_and_a_lowercase_x_are_accepted(tmp_path, places):
    rows = edited({2: {"身份证号": "51000019620314001x", "电话": "138-0000-1001"}})
    text = csv_text(rows).replace("\n", ",,\n").replace("\n", "\n\n", 2) + ",,,,,,,,,,\n"
    archive = load_archive(write(tmp_path, text), places, YEAR)
    assert archive.residents == 6
    assert (archive.households[0].head.id_number, archive.households[0].head.phone) == (
        "51000019620314001X",
        "13800001001",
    )


def test_the_yaml_form_reads_the_same_households(tmp_path, places):
    text = """households:
  - id: MYT-1-0001
    village: 马营台村
    group: 1社
    grid: mayingtai-01
    address: 马营台村1社1号
    members:
      - {name: 李秀英, relation: 配偶, gender: 女, birth_year: 1965, id_number: "510000196508081241"}
      - {name: 王建国, relation: 户主, gender: 男, birth_year: 1962, id_number: 510000196203141231, phone: "13800001001"}
      - {name: 王浩, relation: 子女, gender: 男, birth_year: 1990, id_number: "510000199001011010", phone: 13800001002}
      - {name: 王婷, relation: 子女, gender: 女, birth_year: 1992, id_number: "510000199211201023"}
  - id: MYT-2-0001
    village: mayingtai
    group: mayingtai-2
    grid: mayingtai-04
    members:
      - {name: 张德明, relation: 户主, gender: 男, birth_year: 1950, id_number: "510000195006062011"}
      - {name: 刘秀兰, relation: 配偶, gender: 女, birth_year: 1955}
"""
    archive = load_archive(write(tmp_path, text, "archive.yaml"), places, YEAR)
    assert archive.households == EXPECTED_BASE


# -- broken CSV files: every problem, located -------------------------------------------------------

BAD_CSV = {
    "unknown village": ({3: {"村": "东风村"}}, [Expected(3, COL["村"], "村", "unknown village '东风村'")]),
    "group of another village": (
        {6: {"社": "diping-1"}},
        [Expected(6, COL["社"], "社", "group 'diping-1' is not in 马营台村")],
    ),
    "unknown group": ({2: {"社": "9社"}}, [Expected(2, COL["社"], "社", "unknown group '9社' in 马营台村")]),
    "grid of another village": (
        {6: {"网格": "diping-01"}},
        [Expected(6, COL["网格"], "网格", "grid 'diping-01' is not in 马营台村")],
    ),
    "unit grid": ({6: {"网格": "unit-01"}}, [Expected(6, COL["网格"], "网格", "grid 'unit-01' is not in 马营台村")]),
    "grid of another group": (
        {6: {"网格": "mayingtai-01"}, 7: {"网格": "mayingtai-01"}},
        [
            Expected(6, COL["网格"], "网格", "belongs to 1社 (mayingtai-1), not to 2社 (mayingtai-2)"),
            Expected(7, COL["网格"], "网格", "belongs to 1社 (mayingtai-1)"),
        ],
    ),
    "unknown grid": ({2: {"网格": "mayingtai-99"}}, [Expected(2, COL["网格"], "网格", "unknown grid 'mayingtai-99'")]),
    "no head": (
        {6: {"与户主关系": "父母"}},
        [Expected(6, COL["与户主关系"], "与户主关系", "household MYT-2-0001 has no 户主 (lines 6, 7)")],
    ),
    "two heads": (
        {5: {"与户主关系": "户主"}},
        [Expected(5, COL["与户主关系"], "与户主关系", "a second 户主; the first is on line 2")],
    ),
    "one household, two places": (
        {4: {"网格": "mayingtai-02"}},
        [Expected(4, COL["网格"], "网格", "MYT-1-0001 is in mayingtai / mayingtai-1 / mayingtai-01 on line 2")],
    ),
    "first row's places wrong": (
        {2: {"村": "东风村"}, 5: {"网格": "mayingtai-02"}},
        [
            Expected(2, COL["村"], "村", "unknown village '东风村'"),
            Expected(5, COL["网格"], "网格", "MYT-1-0001 is in mayingtai / mayingtai-1 / mayingtai-01 on line 3"),
        ],
    ),
    "one household, two addresses": (
        {3: {"地址": "马营台村1社2号"}},
        [Expected(3, COL["地址"], "地址", "has address '马营台村1社1号' on an earlier row")],
    ),
    "duplicate resident": (
        {5: {"姓名": "王浩", "出生年份": "1990", "身份证号": ""}},
        [
            Expected(
                5, COL["姓名"], "姓名", "王浩 born 1990 is listed twice in household MYT-1-0001; the first is on line 4"
            )
        ],
    ),
    "same ID number twice": (
        {7: {"身份证号": "510000196508081241", "出生年份": "1965"}},
        [Expected(7, COL["身份证号"], "身份证号", "ID number 510000196508081241 is also on line 3")],
    ),
    "ID number format": (
        {2: {"身份证号": "51000019620314123"}},
        [Expected(2, COL["身份证号"], "身份证号", "18 characters: 17 digits then a digit or X")],
    ),
    "ID number check digit": (
        {2: {"身份证号": "510000196203141232"}},
        [Expected(2, COL["身份证号"], "身份证号", "the check digit is 2, it should be 1")],
    ),
    "ID number date": (
        {2: {"身份证号": "510000196202301235"}},
        [Expected(2, COL["身份证号"], "身份证号", "19620230 is not a date")],
    ),
    "ID number and birth year": (
        {2: {"出生年份": "1963"}},
        [Expected(2, COL["身份证号"], "身份证号", "its birth date 19620314 disagrees with birth year 1963")],
    ),
    "ID number and gender": (
        {2: {"性别": "女"}},
        [Expected(2, COL["身份证号"], "身份证号", "its 17th digit says 男, the row says 女")],
    ),
    "bad phone": (
        {2: {"电话": "12800001001"}, 4: {"电话": "1380000100"}},
        [
            Expected(2, COL["电话"], "电话", "bad phone '12800001001'"),
            Expected(4, COL["电话"], "电话", "bad phone '1380000100'"),
        ],
    ),
    "unknown relation and gender": (
        {5: {"与户主关系": "表哥", "性别": "未知"}},
        [
            Expected(5, COL["与户主关系"], "与户主关系", "unknown 与户主关系 relation '表哥'"),
            Expected(5, COL["性别"], "性别", "unknown 性别 gender '未知'; write one of: 男 or 女"),
        ],
    ),
    "birth years out of range": (
        {3: {"出生年份": "1899", "身份证号": ""}, 7: {"出生年份": "2027"}, 5: {"出生年份": "199O", "身份证号": ""}},
        [
            Expected(3, COL["出生年份"], "出生年份", "bad birth year '1899': a year from 1900 to 2026"),
            Expected(5, COL["出生年份"], "出生年份", "bad birth year '199O'"),
            Expected(7, COL["出生年份"], "出生年份", "bad birth year '2027'"),
        ],
    ),
    "missing values": (
        {3: {"姓名": ""}, 6: {"户号": "", "村": ""}},
        [
            Expected(3, COL["姓名"], "姓名", "姓名 name is missing"),
            Expected(6, COL["户号"], "户号", "户号 household is missing"),
            Expected(6, COL["村"], "村", "村 village is missing"),
        ],
    ),
    "bad household id": (
        {2: {"户号": "MYT 1 0001"}},
        [Expected(2, COL["户号"], "户号", "bad household id 'MYT 1 0001'")],
    ),
}


@pytest.mark.parametrize("case", list(BAD_CSV), ids=list(BAD_CSV))
def test_a_bad_csv_fails_naming_each_row_and_column(tmp_path, places, case):
    edits, expected = BAD_CSV[case]
    problems = problems_of(write(tmp_path, csv_text(edited(edits))), places)
    unmatched = [str(e) for e in expected if not any(e.matches(p) for p in problems)]
    assert not unmatched, f"expected {unmatched}; got {[str(p) for p in problems]}"
    assert len(problems) == len(expected), [str(p) for p in problems]


def test_every_problem_of_a_file_is_listed_at_once(tmp_path, places):
    edits = {}
    for case in ("unknown village", "two heads", "ID number check digit", "bad phone", "duplicate resident"):
        for line, cells in BAD_CSV[case][0].items():
            edits.setdefault(line, {}).update(cells)
    problems = problems_of(write(tmp_path, csv_text(edited(edits))), places)
    assert {(p.line, p.path) for p in problems} >= {(3, "村"), (5, "与户主关系"), (2, "身份证号"), (4, "电话")}
    rendered = str(ArchiveInvalid(problems))
    assert f"{tmp_path / 'archive.csv'}:2:{COL['身份证号']}: [身份证号] bad ID number" in rendered


def test_a_missing_column_is_named_with_the_accepted_headers(tmp_path, places):
    header = [h for h in HEADER if h != "性别"]
    rows = [[cell for i, cell in enumerate(r) if i != COL["性别"] - 1] for r in BASE]
    (problem,) = problems_of(write(tmp_path, csv_text(rows, header)), places)
    assert (problem.line, problem.column) == (1, 1)
    assert "missing column 性别 gender" in problem.message
    assert "户号 or household" in problem.message and "电话 or phone (optional)" in problem.message


def test_an_unknown_or_repeated_column_is_named(tmp_path, places):
    header = [*HEADER[:-1], "身分证号"]
    problems = problems_of(write(tmp_path, csv_text(edited({}), header)), places)
    assert [(p.line, p.column, p.path) for p in problems] == [(1, 11, "身分证号")]
    assert "unknown column '身分证号'" in problems[0].message
    twice = problems_of(write(tmp_path, csv_text(edited({}), [*HEADER[:-1], "name"])), places)
    assert [(p.line, p.column, p.message) for p in twice] == [(1, 11, "column 姓名 name appears twice")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("\ufeff\n\n", "the file is empty"),
        (",".join(HEADER) + "\n", "no residents: the file has a header row but no rows"),
    ],
)
def test_an_empty_file_is_a_problem(tmp_path, places, text, message):
    (problem,) = problems_of(write(tmp_path, text), places)
    assert message in problem.message


def test_a_row_of_the_wrong_width_is_named(tmp_path, places):
    text = csv_text(edited({})).replace("王婷,子女,女,1992", "王婷,子女,女,1,992")
    (problem,) = problems_of(write(tmp_path, text), places)
    assert (problem.line, problem.column) == (5, 1)
    assert "this row has 12 values but the header has 11 columns" in problem.message


def test_a_quoted_value_over_two_lines_keeps_later_rows_on_their_lines(tmp_path, places):
    rows = edited({7: {"村": "东风村"}})
    rows[0][COL["地址"] - 1] = "马营台村1社1号\n(老屋)"
    rows[1][COL["地址"] - 1] = rows[0][COL["地址"] - 1]
    problems = problems_of(write(tmp_path, csv_text(rows)), places)
    assert [(p.line, p.path) for p in problems] == [(9, "村")]


def test_a_gbk_file_is_refused_with_a_hint(tmp_path, places):
    (problem,) = problems_of(write(tmp_path, csv_text(edited({})), encoding="gbk"), places)
    assert "not UTF-8" in problem.message and "CSV UTF-8" in problem.message


def test_other_file_types_and_missing_files_are_problems(tmp_path, places):
    assert "unknown file type" in problems_of(write(tmp_path, "x", "archive.xlsx"), places)[0].message
    assert "file not found" in problems_of(tmp_path / "nope.csv", places)[0].message


# -- broken YAML files ----------------------------------------------------------------------------

YAML_BASE = [
    "households:",  # 1
    "  - id: MYT-1-0001",  # 2
    "    village: 马营台村",  # 3
    "    group: 1社",  # 4
    "    grid: mayingtai-01",  # 5
    "    members:",  # 6
    "      - name: 王建国",  # 7
    "        relation: 户主",  # 8
    "        gender: 男",  # 9
    "        birth_year: 1962",  # 10
    '        id_number: "510000196203141231"',  # 11
    "      - name: 李秀英",  # 12
    "        relation: 配偶",  # 13
    "        gender: 女",  # 14
    "        birth_year: 1965",  # 15
]

BAD_YAML = {
    "unknown village": (
        {3: "    village: 东风村"},
        [Expected(3, 14, "households[0].village", "unknown village '东风村'")],
    ),
    "bad check digit and phone": (
        {11: '        id_number: "510000196203141232"', 15: "        birth_year: 1965\n        phone: 1380000"},
        [
            Expected(11, 20, "households[0].members[0].id_number", "the check digit is 2"),
            Expected(16, 16, "households[0].members[1].phone", "bad phone '1380000'"),
        ],
    ),
    "two heads": (
        {13: "        relation: 户主"},
        [Expected(13, 19, "households[0].members[1].relation", "a second 户主; the first is on line 7")],
    ),
    "birth year as text": (
        {15: "        birth_year: nineteen-sixty-five"},
        [Expected(15, 21, "households[0].members[1].birth_year", "bad birth year 'nineteen-sixty-five'")],
    ),
    "unknown keys and a missing name": (
        {2: "  - id: MYT-1-0001\n    hamlet: 老屋", 12: "      - nmae: 李秀英"},
        [
            Expected(3, 5, "households[0].hamlet", "unknown key 'hamlet'"),
            Expected(13, 9, "households[0].members[1].nmae", "unknown key 'nmae'"),
            Expected(13, 9, "households[0].members[1].name", "姓名 name is missing"),
        ],
    ),
    "no members": (
        {6: "    members: []", 7: "", 8: "", 9: "", 10: "", 11: "", 12: "", 13: "", 14: "", 15: ""},
        [Expected(6, 5, "households[0].members", "a household needs `members:`")],
    ),
    "a tag": (
        {4: "    group: !!python/object 1社"},
        [Expected(4, 12, "households[0].group", "tag 'tag:yaml.org,2002:python/object' is not allowed")],
    ),
}


@pytest.mark.parametrize("case", list(BAD_YAML), ids=list(BAD_YAML))
def test_a_bad_yaml_archive_fails_naming_line_and_column(tmp_path, places, case):
    edits, expected = BAD_YAML[case]
    lines = [edits.get(i + 1, line) for i, line in enumerate(YAML_BASE)]
    problems = problems_of(write(tmp_path, "\n".join(lines) + "\n", "archive.yaml"), places)
    unmatched = [str(e) for e in expected if not any(e.matches(p) for p in problems)]
    assert not unmatched, f"expected {unmatched}; got {[str(p) for p in problems]}"
    assert len(problems) == len(expected), [str(p) for p in problems]


def test_a_household_listed_twice_in_yaml_is_named(tmp_path, places):
    text = "\n".join(YAML_BASE[:11]) + "\n" + "\n".join(YAML_BASE[1:11]).replace("王建国", "王建军") + "\n"
    problems = problems_of(write(tmp_path, text, "archive.yaml"), places)
    assert any(p.line == 12 and "listed twice; the first is on line 2" in p.message for p in problems)


def test_an_empty_yaml_file_is_a_problem(tmp_path, places):
    assert "empty" in problems_of(write(tmp_path, "", "archive.yaml"), places)[0].message
    assert "households" in problems_of(write(tmp_path, "households: nobody\n", "archive.yaml"), places)[0].message


# -- masking and ID numbers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "value", "shown"),
    [
        (mask_id_number, "51000019800101123X", "510000********123X"),
        (mask_id_number, "510000196203141231", "510000********1231"),
        (mask_id_number, "1234567", "*******"),
        (mask_phone, "13800000011", "138****0011"),
        (mask_phone, "1380", "****"),
        (mask_name, "张三丰", "张**"),
        (mask_name, "王浩", "王*"),
        (mask_name, "欧阳", "欧*"),
        (mask_id_number, None, None),
        (mask_phone, "", ""),
    ],
)
def test_masks_keep_only_what_may_be_shown(function, value, shown):
    assert function(value) == shown


@pytest.mark.parametrize(
    ("number", "problem"),
    [
        ("11010519491231002X", None),  # the example in GB 11643
        ("440524188001010014", None),
        ("510000196203141231", None),
        ("11010519491231002x", "17 digits then a digit or X"),  # the loader upper-cases first
        ("110105194912310021", "the check digit is 1, it should be X"),
        ("110105194902300021", "is not a date"),
        ("1101051949123100", "18 characters"),
    ],
)
def test_id_number_checks(number, problem):
    found = id_number_problem(number)
    assert (found is None) if problem is None else (problem in found)


def test_check_digits_detect_every_single_mistyped_digit():
    number = "510000196203141231"
    for position in range(17):
        for digit in "0123456789":
            if digit != number[position]:
                typo = number[:position] + digit + number[position + 1 :]
                assert id_check_digit(typo[:17]) != typo[17] or id_number_problem(typo) is not None


# -- the sample township --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated() -> tuple[HouseholdSpec, ...]:
    return sample.generate(seeded_org())


def test_the_sample_has_the_townships_households_and_people(generated):
    chart = seeded_org()
    assert len(generated) == 1881 == chart.township.attributes["households"]
    assert sum(len(h.members) for h in generated) == 6373 == chart.township.attributes["population"]
    assert len({h.id for h in generated}) == 1881
    assert len({h.village_id for h in generated}) == 6


def test_the_sample_fills_each_grid_by_its_household_count_in_its_group(generated):
    chart = seeded_org()
    grids = {g.id: g for g in chart.grids()}
    assert Counter(h.grid_id for h in generated) == {g.id: g.households for g in grids.values() if g.households}
    assert sum(g.households or 0 for g in grids.values() if g.grid_kind == "residential") == 1881
    assert all(not g.households for g in grids.values() if g.grid_kind == "unit")
    for h in generated:
        grid = grids[h.grid_id]
        assert (h.group_id, h.village_id) == (grid.parent_id, grid.village_id)


def test_every_sample_id_number_is_valid_and_can_be_no_real_persons(generated):
    members = [m for h in generated for m in h.members]
    numbers = [m.id_number for m in members]
    assert all(n is not None and n.startswith("510000") for n in numbers)
    assert len(set(numbers)) == len(numbers)
    for m in members:
        assert id_number_problem(m.id_number) is None, m
        assert int(m.id_number[6:10]) == m.birth_year and id_number_gender(m.id_number) == m.gender
    phones = [m.phone for m in members if m.phone]
    assert len(set(phones)) == len(phones) and all(p.startswith("1380000") and len(p) == 11 for p in phones)


def test_sample_families_fit_together(generated):
    relations = Counter()
    for h in generated:
        head = h.head
        assert [m.relation for m in h.members].count("户主") == 1 and h.members[0] == head
        assert len({m.name for m in h.members}) == len(h.members)
        for m in h.members:
            relations[m.relation] += 1
            assert m.relation in RELATIONS and m.gender in ("男", "女") and 1900 < m.birth_year < sample.REFERENCE_YEAR
            if m.relation == "子女":
                assert m.birth_year - head.birth_year >= 18, (h.id, m)
            if m.relation == "孙子女":
                assert m.birth_year - head.birth_year >= 38, (h.id, m)
            if m.relation == "父母":
                assert head.birth_year - m.birth_year >= 18, (h.id, m)
            if m.relation == "配偶":
                assert m.gender != head.gender and m.name[0] != head.name[0]
    assert {"户主", "配偶", "子女", "父母", "孙子女", "儿媳", "女婿"} <= set(relations)
    kin = [(m, h.head) for h in generated for m in h.members if m.relation in ("子女", "孙子女", "父母")]
    shared = sum(m.name[0] == head.name[0] for m, head in kin)
    assert shared > 0.6 * len(kin)  # most blood relatives share the head's surname


def test_the_sample_is_deterministic(generated):
    assert sample.generate(seeded_org()) == generated
    assert sample.generate(seeded_org(), seed=1) != generated
    sizes = sample.household_sizes(random.Random(7), 1881, 6373)
    assert sum(sizes) == 6373 and min(sizes) >= 1 and max(sizes) <= sample.MAX_SIZE


def test_the_committed_sample_csv_is_the_generators_output_and_loads(generated, places):
    chart = seeded_org()
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(sample.csv_rows(chart, generated))
    on_disk = sample.OUT_FILE.read_bytes().decode("utf-8")
    assert on_disk == "\ufeff" + buffer.getvalue(), "run `python -m engine.archive.sample` to regenerate it"
    assert load_archive(sample.OUT_FILE, places, YEAR).households == generated
