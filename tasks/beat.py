"""Beat's default scheduler, with its schedule file private.

Celery's :class:`~celery.beat.PersistentScheduler` keeps when each entry last ran in a :mod:`shelve`
under the home (``celerybeat-schedule``, with ``.dat``/``.dir``/``.bak`` on ``dbm.dumb``): a pickle,
which whoever can write it can make beat run code with, and which ``shelve.open`` creates with the
umask's mode (0644) — ``dbm.dumb`` even sets that mode again on every write. This scheduler opens the
same shelve through ``dbm.open`` with mode 0600 (:data:`engine.store.private.FILE_MODE`), so every file
of it is created, and kept, 0600; everything else is Celery's.
"""

from __future__ import annotations

import dbm
import shelve
from pathlib import Path
from typing import Any

from celery.beat import PersistentScheduler

from engine.store.private import FILE_MODE, private_dir

NAME = "tasks.beat:PrivateScheduler"  # what ``beat_scheduler`` names


class PrivateScheduler(PersistentScheduler):
    def _open_schedule(self) -> Any:
        private_dir(Path(self.schedule_filename).parent)
        return shelve.Shelf(dbm.open(self.schedule_filename, "c", FILE_MODE), writeback=True)
