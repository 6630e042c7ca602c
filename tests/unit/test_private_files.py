"""engine.store.private: a file that is there is never opened (it may be an SQLite database this process
has open: closing any descriptor of it drops the process's POSIX locks, SQLite's with them). The whole
suite showed it: after a CLI command run in-process on the shared SQLite database, every later
connection failed with "disk I/O error"."""

from __future__ import annotations

import os
import stat

from engine.store.db import ensure_sqlite_directory
from engine.store.private import private_file


def test_an_existing_file_is_not_opened(tmp_path, monkeypatch):
    path = tmp_path / "gridflow.db"
    path.write_bytes(b"SQLite format 3\x00")
    path.chmod(0o644)
    opened: list[str] = []
    real_open = os.open

    def spy(file, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        fd = real_open(file, flags, *args, **kwargs)  # an O_EXCL attempt on an existing file raises: no descriptor
        opened.append(str(file))
        return fd

    monkeypatch.setattr(os, "open", spy)
    private_file(path)
    ensure_sqlite_directory(f"sqlite:///{path}")
    assert str(path) not in opened
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # an existing file is left as it is


def test_a_new_file_is_made_0600_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        made = private_file(tmp_path / "new" / "gridflow.db")
    finally:
        os.umask(old)
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    assert stat.S_IMODE(made.parent.stat().st_mode) == 0o700
