"""Importing the household archive on SQLite and PostgreSQL, and `gridflow archive` as a user runs it.

``db`` is seeded with config/org/shengli.yaml. An import is idempotent; a changed file updates
and deactivates (never deletes); a bad file changes nothing and names its row.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from engine.archive.load import ArchiveInvalid, load_archive
from engine.archive.sample import OUT_FILE as SAMPLE_CSV
from engine.archive.store import ArchiveImport, apply_archive, known_places
from engine.store.models import Household, HouseholdBalance, Place, Resident
from tests import runtime_support as rt
from tests.support import T0

YEAR = 2026
HEADER = ["户号", "村", "社", "网格", "地址", "姓名", "与户主关系", "性别", "出生年份", "身份证号", "电话"]
FIRST = [  # lines 2-7
    ["MYT-1-0001", "马营台村", "1社", "mayingtai-01", "马营台村1社1号", "王建国", "户主", "男", "1962", "510000196203141231", "13800001001"],
    ["MYT-1-0001", "马营台村", "1社", "mayingtai-01", "马营台村1社1号", "李秀英", "配偶", "女", "1965", "510000196508081241", ""],
    ["MYT-1-0001", "马营台村", "1社", "mayingtai-01", "马营台村1社1号", "王浩", "子女", "男", "1990", "510000199001011010", "13800001002"],
    ["MYT-1-0001", "马营台村", "1社", "mayingtai-01", "马营台村1社1号", "王婷", "子女", "女", "1992", "510000199211201023", ""],
    ["MYT-2-0001", "马营台村", "2社", "mayingtai-04", "", "张德明", "户主", "男", "1950", "510000195006062011", ""],
    ["MYT-2-0001", "马营台村", "2社", "mayingtai-04", "", "刘秀兰", "配偶", "女", "1955", "", ""],
]  # fmt: skip


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([HEADER, *rows])
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def import_file(db, path: Path, minutes: int = 0) -> ArchiveImport:
    """What `gridflow archive import` does: check against the stored org chart, then apply, in one transaction."""
    with db.sessions.begin() as session:
        archive = load_archive(path, known_places(session), YEAR)
        return apply_archive(session, archive, T0 + timedelta(minutes=minutes))


def counts(result: ArchiveImport) -> tuple:
    h, r = result.households, result.residents
    return (h.added, h.updated, h.deactivated), (r.added, r.updated, r.deactivated), result.balances_added


def residents(db, household: str) -> dict[str, tuple]:
    with db.session() as session:
        rows = session.scalars(select(Resident).where(Resident.household_id == household))
        return {r.id: (r.name, r.relation, r.birth_year, r.id_number, r.phone, r.active) for r in rows}


def test_the_sample_imports_once_and_again_changes_nothing(db):
    first = import_file(db, SAMPLE_CSV)
    assert counts(first) == ((1881, 0, 0), (6373, 0, 0), 1881)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Household)) == 1881
        assert session.scalar(select(func.count()).select_from(Resident).where(Resident.active)) == 6373
        assert session.scalar(select(func.sum(Household.members))) == 6373
        assert session.scalar(select(func.count()).select_from(HouseholdBalance).where(HouseholdBalance.balance == 0))
        stmt = select(Household.village_id, func.count()).group_by(Household.village_id)
        per_village = dict(session.execute(stmt).all())
        head = session.get(Household, "MYT-1-0001")
        assert (head.group_id, head.grid_id, head.updated_at) == ("mayingtai-1", "mayingtai-01", T0)
    assert per_village == {
        "mayingtai": 339,
        "diping": 325,
        "qinglong": 312,
        "baiguo": 307,
        "shuanghe": 305,
        "hongyan": 293,
    }
    before = db.snapshot()
    again = import_file(db, SAMPLE_CSV, minutes=5)
    assert counts(again) == ((0, 0, 0), (0, 0, 0), 0) and not again.changed
    assert db.snapshot() == before


def test_a_changed_file_updates_adds_and_deactivates_never_deletes(db, tmp_path):
    import_file(db, write_csv(tmp_path / "v1.csv", FIRST))
    with db.sessions.begin() as session:  # points earned meanwhile: an import never touches a balance
        session.execute(
            update(HouseholdBalance).where(HouseholdBalance.household_id == "MYT-1-0001").values(earned=12, balance=12)
        )
    v2 = [list(r) for r in FIRST[:4]]
    v2[1][10] = "13800001003"  # 李秀英 got a phone
    del v2[3]  # 王婷 moved away
    v2.append(["MYT-1-0001", "马营台村", "1社", "mayingtai-01", "", "王子涵", "孙子女", "女", "2018", "", ""])
    result = import_file(db, write_csv(tmp_path / "v2.csv", v2), minutes=10)
    assert counts(result) == ((0, 1, 0), (1, 1, 1), 0)
    now = residents(db, "MYT-1-0001")
    assert now["MYT-1-0001-2"][4] == "13800001003"
    assert now["MYT-1-0001-4"] == ("王婷", "子女", 1992, "510000199211201023", None, False)  # kept, inactive
    assert now["MYT-1-0001-5"] == ("王子涵", "孙子女", 2018, None, None, True)
    with db.session() as session:
        household = session.get(Household, "MYT-1-0001")
        assert (household.members, household.updated_at) == (4, T0 + timedelta(minutes=10))
        assert session.get(HouseholdBalance, "MYT-1-0001").balance == 12
        untouched = session.get(Household, "MYT-2-0001")  # not in v2: left as it was
        assert (untouched.active, untouched.members, untouched.updated_at) == (True, 2, T0)
    assert all(r[5] for r in residents(db, "MYT-2-0001").values())
    back = import_file(db, write_csv(tmp_path / "v1-again.csv", FIRST), minutes=20)
    assert counts(back) == ((0, 1, 0), (0, 2, 1), 0)  # 王婷 active again, 李秀英's phone gone, 王子涵 inactive
    assert residents(db, "MYT-1-0001")["MYT-1-0001-4"][5] is True


def test_a_resident_is_matched_by_id_number_so_a_corrected_name_is_an_update(db, tmp_path):
    import_file(db, write_csv(tmp_path / "v1.csv", FIRST))
    fixed = [list(r) for r in FIRST]
    fixed[2][5], fixed[2][6] = "王皓", "长子"  # the son's name was misspelt; 长子 is read as 子女
    result = import_file(db, write_csv(tmp_path / "v2.csv", fixed))
    assert counts(result) == ((0, 1, 0), (0, 1, 0), 0)
    assert residents(db, "MYT-1-0001")["MYT-1-0001-3"][:2] == ("王皓", "子女")


def test_a_bad_csv_changes_nothing_and_names_the_row(db, tmp_path):
    import_file(db, write_csv(tmp_path / "v1.csv", FIRST))
    bad = [list(r) for r in FIRST]
    bad[1][10] = "13800001003"  # a good change on line 3 ...
    bad[2][9] = "510000199001011019"  # ... and a mistyped check digit on line 4
    bad.append(["MYT-3-0001", "马营台村", "3社", "mayingtai-06", "", "赵春", "户主", "男", "1971", "", ""])
    before = db.snapshot()
    path = write_csv(tmp_path / "bad.csv", bad)
    with pytest.raises(ArchiveInvalid) as caught:
        import_file(db, path)
    assert f"{path}:4:10: [身份证号] bad ID number '510000199001011019'" in str(caught.value)
    assert len(caught.value.problems) == 1
    assert db.snapshot() == before


def test_a_village_deactivated_in_the_org_chart_is_unknown_to_an_import(db, tmp_path):
    with db.sessions.begin() as session:
        session.execute(update(Place).where(Place.village_id == "mayingtai").values(active=False))
    with pytest.raises(ArchiveInvalid, match="unknown village '马营台村'"):
        import_file(db, write_csv(tmp_path / "v1.csv", FIRST))


# -- the CLI ------------------------------------------------------------------------------------


def test_the_cli_imports_lists_and_shows_masked(tmp_path):
    env = rt.environment(tmp_path / "home", "", "", now=T0)
    rt.init(env)
    checked = rt.cli(["archive", "import", str(SAMPLE_CSV), "--dry-run"], env)
    assert checked.returncode == 0, checked.stderr
    assert "1881 households, 6373 residents in 6 village(s): valid; nothing written" in checked.stdout
    assert json.loads(rt.cli(["archive", "list", "--json"], env).stdout)["total"] == 0
    first = rt.cli(["archive", "import", str(SAMPLE_CSV)], env)
    assert first.returncode == 0, first.stderr
    assert "1881 added, 0 updated, 0 deactivated" in first.stdout and "6373 added" in first.stdout
    again = rt.cli(["archive", "import", str(SAMPLE_CSV)], env)
    assert again.returncode == 0 and "nothing changed" in again.stdout

    village = json.loads(rt.cli(["archive", "list", "--village", "马营台村", "--json", "--limit", "0"], env).stdout)
    assert village["total"] == len(village["households"]) == 339
    grid = json.loads(rt.cli(["archive", "list", "--grid", "mayingtai-01", "--json"], env).stdout)
    assert grid["total"] == 26 and grid["households"][0]["id"] == "MYT-1-0001"
    assert grid["households"][0]["head"] == "孙德" and grid["households"][0]["members"] == 1
    table = rt.cli(["archive", "list", "--limit", "3"], env)
    assert table.returncode == 0 and "BG-1-0001" in table.stdout and "1878 more" in table.stdout  # by id

    shown = json.loads(rt.cli(["archive", "show", "MYT-1-0002", "--json"], env).stdout)
    head = shown["residents"][0]
    assert (head["name"], head["relation"]) == ("孙飞军", "户主")
    assert (head["id_number"], head["phone"]) == ("510000********1558", "138****1002")
    text = rt.cli(["archive", "show", "MYT-1-0002"], env).stdout
    assert "510000********1558" in text and "510000196601071558" not in text and "13800001002" not in text


def test_the_cli_refuses_full_numbers_unless_the_setting_allows_them(tmp_path):
    env = rt.environment(tmp_path / "home", "", "", now=T0)
    rt.init(env)
    assert rt.cli(["archive", "import", str(SAMPLE_CSV)], env).returncode == 0
    refused = rt.cli(["archive", "show", "MYT-1-0002", "--full"], env)
    assert refused.returncode == 4 and "archive_show_full" in refused.stderr and "510000" not in refused.stdout
    allowed_env = {**env, "GRIDFLOW_ARCHIVE_SHOW_FULL": "true"}
    full = json.loads(rt.cli(["archive", "show", "MYT-1-0002", "--full", "--json"], allowed_env).stdout)
    assert (full["residents"][0]["id_number"], full["residents"][0]["phone"]) == ("510000196601071558", "13800001002")
    masked = json.loads(rt.cli(["archive", "show", "MYT-1-0002", "--json"], allowed_env).stdout)
    assert masked["residents"][0]["id_number"] == "510000********1558"  # whole only when asked for
    missing = rt.cli(["archive", "show", "XX-9-9999"], env)
    assert missing.returncode == 3 and "no household 'XX-9-9999'" in missing.stderr


def test_the_cli_rejects_a_bad_csv_names_the_row_and_changes_nothing(tmp_path):
    env = rt.environment(tmp_path / "home", "", "", now=T0)
    rt.init(env)
    bad = [list(r) for r in FIRST]
    bad[3][2] = "diping-1"  # line 5: a group of another village
    path = write_csv(tmp_path / "bad.csv", bad)
    for args in (["archive", "import", str(path)], ["archive", "import", str(path), "--dry-run"]):
        result = rt.cli(args, env)
        assert result.returncode == 1, result.stderr
        assert f"{path}:5:3: [社] group 'diping-1' is not in 马营台村" in result.stderr.replace("\n", "")
    assert json.loads(rt.cli(["archive", "list", "--json"], env).stdout)["total"] == 0
