"""Private files: what gridflow writes into its home is for its own user alone.

The embedded database holds every resident's ID number and phone (户档), ``notices.log`` the notices'
texts, beat's schedule shelve is a pickle: none of it may be read by another local user, whatever the
umask. So every directory gridflow creates for its files is made 0700 and every file 0600, by the
helpers here, used wherever such a file is first created: the SQLite database (its -wal, -shm and
journal files take the database file's mode from SQLite), the embedded broker's file, ``notices.log``,
beat's schedule. A file or directory that exists already is left as it is: :func:`exposed` says which
ones others can reach, and ``gridflow init`` warns about them with the ``chmod`` to run.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """``path`` as a directory; each one created for it (missing parents included) is 0700."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:  # made meanwhile by another process
            continue
        os.chmod(directory, DIR_MODE)  # mkdir's mode is cut by the umask, never widened: make it exact
    return path


def private_file(path: Path) -> Path:
    """``path`` as a file, created empty and 0600 if it is not there (its directory by :func:`private_dir`).

    A file that is there is not opened at all: it may be an SQLite database this process has open, and
    closing any descriptor of a file drops every POSIX lock the process holds on it (SQLite's locks
    with them: "disk I/O error" for the connections that held them)."""
    private_dir(path.parent)
    try:
        fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return path
    try:
        os.fchmod(fd, FILE_MODE)  # the umask may only have cut the mode
    finally:
        os.close(fd)
    return path


def open_private(path: Path, mode: str = "a", encoding: str = "utf-8") -> IO[Any]:
    """``open(path, mode)`` for writing, the file created 0600 if it is not there (its directory 0700)."""
    private_dir(path.parent)
    return open(path, mode, encoding=encoding, opener=_private_opener)  # noqa: SIM115 - the caller closes it


def _private_opener(path: str, flags: int) -> int:
    """``os.open``; a file it creates is made exactly 0600 (the umask may only have cut the mode)."""
    if not flags & os.O_CREAT:
        return os.open(path, flags)
    try:
        fd = os.open(path, flags | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return os.open(path, flags, FILE_MODE)  # there already: opened as it is
    os.fchmod(fd, FILE_MODE)
    return fd


def exposed(paths: Iterable[Path]) -> list[tuple[Path, str]]:
    """Those of ``paths`` that exist and that group or others may read, write or enter, with their
    mode as ``ls -l`` shows it (``drwxr-xr-x``); a directory's entries are looked at too, one level."""
    found: list[tuple[Path, str]] = []
    seen: set[Path] = set()

    def look(path: Path) -> None:
        if path in seen:
            return
        seen.add(path)
        try:
            mode = path.lstat().st_mode
        except OSError:
            return
        if stat.S_ISLNK(mode):
            return
        if stat.S_IMODE(mode) & 0o077:
            found.append((path, stat.filemode(mode)))

    for path in paths:
        look(path)
        if path.is_dir() and not path.is_symlink():
            try:
                entries = sorted(path.iterdir())
            except OSError:
                continue
            for entry in entries:
                look(entry)
    return found
