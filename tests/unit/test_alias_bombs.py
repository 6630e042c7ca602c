"""Every YAML loader shares engine.yamlsrc's protection: an alias bomb, at the top level or inside a
real key of the real sample file, is refused quickly with one short problem and nothing that only
follows from it (no ``missing key``, no ``None is not of type``). The limit is lowered here so that
each bomb costs milliseconds; test_yamlsrc stops one at the real limit."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine import yamlsrc
from engine.archive.load import Places, load_archive
from engine.calendar import load_calendars
from engine.errors import SourceError
from engine.org import load_org_file
from engine.points import rules as points_rules
from engine.points.store import load_goods
from engine.scoring import config as scoring_config
from notifications import config as notifications_config
from tests.support import ROOT, seeded_org

WIDTH, LEVELS = 9, 9
LIMIT = 5_000
ARCHIVE_SAMPLE = """households:
  - id: MYT-1-0001
    village: 马营台村
    group: 1社
    grid: mayingtai-01
    members:
      - {name: 王建国, relation: 户主, gender: 男, birth_year: 1962}
"""


@pytest.fixture(autouse=True)
def lower_limit(monkeypatch):
    monkeypatch.setattr(yamlsrc, "MAX_NODES", LIMIT)


class NoDatabase:
    """The points store loader asks for the villages; there are none, and it never gets that far."""

    def scalars(self, _: Any) -> list[str]:
        return []


def anchors_at_top() -> str:
    lines = [f"lol1: &lol1 [{', '.join(['lol'] * WIDTH)}]"]
    for i in range(2, LEVELS + 1):
        lines.append(f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * WIDTH)}]")
    return "\n".join(lines) + "\n"


def anchors_inside() -> str:
    """One flow list whose items define the anchors: the whole bomb is the value of one key."""
    items = [f"&lol1 [{', '.join(['lol'] * WIDTH)}]"]
    items += [f"&lol{i} [{', '.join([f'*lol{i - 1}'] * WIDTH)}]" for i in range(2, LEVELS + 1)]
    return "[" + ", ".join(items) + "]"


def _archive(path: Path) -> Any:
    return load_archive(path, Places.of(seeded_org().places), 2026)


def _notifications(path: Path) -> Any:
    return notifications_config.load(path, path.parent / "notices", env={})


LOADERS: dict[str, tuple[Callable[[Path], Any], str, str]] = {  # loader, sample text, a real key in it
    "org chart": (load_org_file, (ROOT / "config" / "org" / "shengli.yaml").read_text("utf-8"), "villages"),
    "calendars": (load_calendars, (ROOT / "config" / "calendars.yaml").read_text("utf-8"), "calendars"),
    "scoring": (scoring_config.load, (ROOT / "config" / "scoring.yaml").read_text("utf-8"), "subjects"),
    "points": (points_rules.load, (ROOT / "config" / "points.yaml").read_text("utf-8"), "rules"),
    "store": (
        lambda p: load_goods(NoDatabase(), p),  # type: ignore[arg-type]
        (ROOT / "config" / "store.yaml").read_text("utf-8"),
        "stores",
    ),
    "notifications": (
        _notifications,
        (ROOT / "config" / "notifications.yaml.sample").read_text("utf-8"),
        "channels",
    ),
    "archive": (_archive, ARCHIVE_SAMPLE, "households"),
}


def _bombed(text: str, key: str, where: str) -> str:
    value = "*lol9" if where == "top" else anchors_inside()
    bombed, found = re.subn(rf"^{key}:", f"{key}: {value}\nformer_{key}:", text, count=1, flags=re.M)
    assert found, key
    return (anchors_at_top() if where == "top" else "") + bombed


@pytest.mark.parametrize("where", ["top", "inside"])
@pytest.mark.parametrize("name", list(LOADERS))
def test_a_bomb_in_a_real_key_is_refused_with_one_short_problem(tmp_path, name, where):
    load, text, key = LOADERS[name]
    path = tmp_path / "bomb.yaml"
    path.write_text(_bombed(text, key, where), encoding="utf-8")
    with pytest.raises(SourceError) as caught:
        load(path)
    problems = caught.value.problems
    assert len(problems) == 1, str(caught.value)[:2000]
    assert f"more than {LIMIT} values" in problems[0].message
    assert len(str(caught.value)) < 600


@pytest.mark.parametrize("name", list(LOADERS))
def test_a_bomb_alone_is_refused_without_follow_on_problems(tmp_path, name):
    load = LOADERS[name][0]
    path = tmp_path / "bomb.yaml"
    path.write_text(anchors_at_top(), encoding="utf-8")
    with pytest.raises(SourceError) as caught:
        load(path)
    assert [p.message for p in caught.value.problems if "more than" not in p.message] == []
