"""Log lines of the runtime in local time: ``2026-11-28 10:03:05 CST INFO SLA fired …``.

Celery builds its own formatters (colour, task ids); :func:`use_local_time` keeps them and
only changes how they tell the time: the settings' time zone, to the second, with the zone's
name (the same form as the CLI's tables, :data:`gridflow.present.LOCAL_FORMAT_SECONDS`), instead
of the machine's zone with milliseconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from gridflow.present import LOCAL_FORMAT_SECONDS

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def local_converter(tz: ZoneInfo) -> Callable[[float | None], time.struct_time]:
    """A :attr:`logging.Formatter.converter`: epoch seconds to a struct_time in ``tz``, zone name included."""

    def convert(seconds: float | None) -> time.struct_time:
        local = datetime.fromtimestamp(time.time() if seconds is None else seconds, tz)
        offset = local.utcoffset()
        fields = (*local.timetuple()[:8], -1, local.tzname(), int(offset.total_seconds()) if offset else 0)
        return time.struct_time(fields)

    return convert


def local_formatter(formatter: logging.Formatter, tz: ZoneInfo) -> logging.Formatter:
    """``formatter`` itself, now writing ``asctime`` in ``tz`` (``2026-11-28 10:03:05 CST``)."""
    formatter.converter = local_converter(tz)  # type: ignore[method-assign]
    formatter.datefmt = LOCAL_FORMAT_SECONDS
    return formatter


def use_local_time(logger: logging.Logger, tz: ZoneInfo) -> None:
    """Every handler of ``logger`` tells the time in ``tz`` (a handler without a formatter gets one)."""
    for handler in logger.handlers:
        handler.setFormatter(local_formatter(handler.formatter or logging.Formatter(LOG_FORMAT), tz))
