"""The gridflow home is private (issue 19): the embedded database holds every resident's ID number and
phone, so no other local user may read it, whatever the umask.

A real ``gridflow init`` (the installed console script, as a user runs it) on a new home, under umask
000 so that nothing but gridflow's own modes protects the files, leaves the home 0700 and every file in
it 0600, the SQLite database's -wal and -shm files included. The console channel's ``notices.log``, the
embedded broker's file and beat's schedule shelve (a pickle) are created 0600 too. ``gridflow init`` on
an existing home that others can read still works, and says what is exposed and the ``chmod`` to run.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery.utils.imports import symbol_by_name

from config.settings import Settings
from notifications.channels.base import Message, Recipient
from notifications.channels.console import ConsoleChannel
from tasks.factory import create_app

GRIDFLOW = Path(sys.executable).with_name("gridflow")
TIMEOUT_S = 120


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(home: Path) -> dict[str, str]:
    """Every entry under ``home`` (and home itself as '.') with its mode in octal."""
    found = {".": oct(mode(home))}
    for path in sorted(home.rglob("*")):
        found[str(path.relative_to(home))] = oct(mode(path))
    return found


def init(home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
    env.update(GRIDFLOW_HOME=str(home), GRIDFLOW_CONFIG_FILE=str(cwd / "absent.yaml"), COLUMNS="400", NO_COLOR="1")
    return subprocess.run(
        [str(GRIDFLOW), "init"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
        umask=0o000,  # the worst case: only the modes gridflow asks for protect the files
    )


@pytest.fixture
def open_umask() -> Iterator[None]:
    """This process's umask at 000 for the test (restored after)."""
    old = os.umask(0o000)
    try:
        yield
    finally:
        os.umask(old)


def test_init_creates_a_private_home(tmp_path):
    home = tmp_path / "var"
    done = init(home, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    found = modes(home)
    assert found["."] == "0o700"
    assert found["gridflow.db"] == "0o600"
    for name, shown in found.items():
        expected = "0o700" if (home / name).is_dir() else "0o600"
        assert shown == expected, f"{name} is {shown}: {found}"
    assert "warning" not in done.stdout + done.stderr


def test_the_sqlite_files_stay_private_when_gridflow_runs_again(tmp_path):
    home = tmp_path / "var"
    assert init(home, tmp_path).returncode == 0
    for suffix in ("-wal", "-shm"):  # made by SQLite with the database file's mode
        (home / f"gridflow.db{suffix}").unlink(missing_ok=True)
    again = init(home, tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert set(modes(home).values()) <= {"0o700", "0o600"}, modes(home)
    assert "warning" not in again.stdout


def test_init_warns_about_an_existing_home_others_can_read(tmp_path):
    home = tmp_path / "var"
    assert init(home, tmp_path).returncode == 0
    home.chmod(0o755)
    (home / "gridflow.db").chmod(0o644)
    done = init(home, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr  # a warning, not a failure
    out = done.stdout
    assert "warning:" in out and "other users" in out
    assert f"{home} (drwxr-xr-x)" in out and f"{home / 'gridflow.db'} (-rw-r--r--)" in out
    assert f"chmod -R go-rwx {home}" in out
    assert mode(home) == 0o755 and mode(home / "gridflow.db") == 0o644  # left as they are: the operator decides


def test_the_console_channel_writes_notices_log_0600(tmp_path, open_umask):
    path = tmp_path / "var" / "notices.log"
    message = Message("k-1", "case_received", Recipient("p-an-yixuan", "安怡萱"), "受理", "您上报的事件已受理")
    assert ConsoleChannel("console", path, stream=None).send(message).ok
    assert (mode(path.parent), mode(path)) == (0o700, 0o600)
    assert ConsoleChannel("console", path, stream=None).send(message).ok  # appending keeps it
    assert mode(path) == 0o600 and len(path.read_text(encoding="utf-8").splitlines()) == 2


def test_the_embedded_broker_and_beats_schedule_are_private(tmp_path, open_umask):
    home = tmp_path / "var"
    app = create_app(Settings(home=home, database_url=f"sqlite:///{tmp_path / 'elsewhere.db'}"))
    assert mode(home) == 0o700
    assert mode(home / "broker.db") == 0o600
    scheduler_cls = symbol_by_name(app.conf.beat_scheduler)
    scheduler = scheduler_cls(app=app, schedule_filename=app.conf.beat_schedule_filename)
    scheduler.sync()
    scheduler.close()
    written = sorted(home.glob("celerybeat-schedule*"))
    assert written, modes(home)
    assert {p.name: oct(mode(p)) for p in written} == {p.name: "0o600" for p in written}
    again = scheduler_cls(app=app, schedule_filename=app.conf.beat_schedule_filename)  # reopened, still private
    assert "sla-sweep" in again.schedule
    again.sync()
    again.close()
    assert {oct(mode(p)) for p in home.glob("celerybeat-schedule*")} == {"0o600"}
