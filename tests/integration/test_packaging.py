"""The wheel carries what an installed gridflow needs at run time, and building it is quiet.

Builds a wheel from a copy of the tracked files (so nothing is written into the work tree) with
``pip wheel --no-deps`` in pip's build isolation (setuptools from the package index; about 8 s).
Then every template, migration, workflow file and sample config must be in it, where the code looks
for them (next to the packages), and setuptools must not have warned about undeclared packages.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from config.settings import ROOT as SETTINGS_ROOT
from config.settings import Settings
from tests.support import ROOT

BUILD_TIMEOUT_S = 180


def _tracked_files() -> list[str]:
    done = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [name for name in done.stdout.split("\0") if name and (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[set[str], str]:
    source = tmp_path_factory.mktemp("source")
    for name in _tracked_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (built,) = out.glob("gridflow-*.whl")
    with zipfile.ZipFile(built) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    return names, done.stdout + done.stderr + entry_points


def _files_under(folder: str, *patterns: str) -> set[str]:
    return {p.relative_to(ROOT).as_posix() for pattern in patterns for p in (ROOT / folder).glob(pattern)}


@pytest.mark.parametrize(
    ("folder", "patterns"),
    [
        ("engine/publication/templates", ["*"]),
        ("notifications/templates", ["*/*"]),
        ("engine/store/migrations", ["env.py", "script.py.mako", "versions/*.py"]),
        ("workflows", ["schema.json", "*.yaml"]),
        ("config", ["*.yaml", "*.sample", "org/*.yaml", "archive/*.csv"]),
    ],
)
def test_the_wheel_holds_every_data_file(wheel, folder, patterns):
    names, _ = wheel
    wanted = _files_under(folder, *patterns)
    assert wanted, f"nothing matched under {folder}"
    assert not wanted - names, f"missing from the wheel: {sorted(wanted - names)}"


def test_the_default_settings_files_are_in_the_wheel(wheel):
    names, _ = wheel
    fields = Settings.model_fields
    files = [fields[n].get_default(call_default_factory=True) for n in ("org_file", "calendar_file", "scoring_file")]
    files += [fields["points_file"].get_default(), *fields["workflow_files"].get_default(call_default_factory=True)]
    for path in files:
        assert path.relative_to(SETTINGS_ROOT).as_posix() in names, path


def test_only_the_runtime_packages_are_in_the_wheel(wheel):
    names, output = wheel
    tops = {name.split("/", 1)[0] for name in names if not name.startswith("gridflow-")}
    assert tops == {"config", "engine", "gridflow", "notifications", "tasks", "workflows"}
    (target,) = re.findall(r"^gridflow = ([\w.]+):\w+$", output, flags=re.M)  # the console script
    assert target.replace(".", "/") + ".py" in names


def test_building_is_quiet_about_packages(wheel):
    _, output = wheel
    assert "is absent from the `packages` configuration" not in output
    assert "Package would be ignored" not in output
