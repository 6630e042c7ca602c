"""What the tasks of one app share: settings, the clock, and per process one Gridflow.

A prefork worker forks its children after the app is built; a database engine must not
cross a fork, so :attr:`Runtime.gridflow` builds one per process id.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from config.settings import Settings
from gridflow.app import Clock, Gridflow

log = logging.getLogger("gridflow")


def offset_clock(offset_s: float) -> Clock:
    offset = timedelta(seconds=offset_s)
    return lambda: datetime.now(UTC) + offset


class Runtime:
    def __init__(self, settings: Settings, clock: Clock | None = None):
        self.settings = settings
        self.clock = clock or offset_clock(settings.clock_offset_s)
        self.tz = ZoneInfo(settings.timezone)
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._gridflow: Gridflow | None = None

    @property
    def gridflow(self) -> Gridflow:
        with self._lock:
            if self._gridflow is None or self._pid != os.getpid():
                self._gridflow = Gridflow(self.settings, self.clock)  # a forked child builds its own
                self._pid = os.getpid()
            return self._gridflow

    def close(self) -> None:
        with self._lock:
            if self._gridflow is not None and self._pid == os.getpid():
                self._gridflow.close()
            self._gridflow = None
