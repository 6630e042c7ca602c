"""The runtime's log lines tell the time as the CLI's tables do: the settings' zone, with its name."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from celery.utils.log import ColorFormatter

from tasks.logs import LOG_FORMAT, local_converter, local_formatter, use_local_time

AT = datetime(2026, 11, 28, 2, 3, 5, 250_000, tzinfo=UTC).timestamp()  # 10:03:05.25 in Shanghai


def record(created: float = AT) -> logging.LogRecord:
    line = logging.LogRecord("gridflow", logging.INFO, __file__, 1, "SLA fired %d timer(s)", (3,), None)
    line.created = created
    return line


def test_celerys_formatter_keeps_its_colours_and_tells_local_time():
    formatter = local_formatter(ColorFormatter(LOG_FORMAT, use_color=False), ZoneInfo("Asia/Shanghai"))
    assert formatter.format(record()) == "2026-11-28 10:03:05 CST INFO SLA fired 3 timer(s)"


def test_the_zone_is_the_settings_not_the_machines_and_follows_summer_time():
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC).timestamp()
    berlin = local_converter(ZoneInfo("Europe/Berlin"))
    assert (berlin(AT).tm_hour, berlin(AT).tm_zone, berlin(AT).tm_gmtoff) == (3, "CET", 3600)
    assert (berlin(summer).tm_hour, berlin(summer).tm_zone, berlin(summer).tm_gmtoff) == (14, "CEST", 7200)


def test_every_handler_of_a_logger_is_switched():
    logger = logging.Logger("gridflow-test-log-time")
    stream = io.StringIO()
    logger.addHandler(logging.StreamHandler(stream))  # no formatter of its own
    use_local_time(logger, ZoneInfo("Asia/Shanghai"))
    logger.handle(record())
    assert stream.getvalue() == "2026-11-28 10:03:05 CST INFO SLA fired 3 timer(s)\n"
