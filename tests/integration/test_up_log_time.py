"""`gridflow up` writes its log in the settings' local time with the zone's name, not the machine's zone.

Before: ``2026-11-28 02:03:05,123 INFO …`` — the machine's zone (UTC on a server) with milliseconds,
beside tables in local time. The machine here runs on UTC (TZ unset); the settings say Asia/Kolkata,
a zone whose name and offset (+05:30) cannot be mistaken for either.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tests import runtime_support as rt

LINE = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) ([A-Z]{2,5}|[+-]\d{2,4}) (INFO|WARNING|ERROR) ", re.M)


def test_the_log_of_up_is_in_the_settings_zone(tmp_path):
    env = rt.environment(tmp_path / "home", "", "", GRIDFLOW_TIMEZONE="Asia/Kolkata")
    env.pop("TZ", None)
    rt.init(env)
    log_path = tmp_path / "up.log"
    with log_path.open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "gridflow", "up"], env=env, cwd=rt.ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            output = lambda: log_path.read_text(encoding="utf-8", errors="replace")  # noqa: E731
            rt.wait_for("gridflow up to be ready", lambda: "ready." in output() or up.poll() is not None, timeout=60)
            started = datetime.now(UTC)
            up.send_signal(signal.SIGINT)
            assert up.wait(timeout=30) == 0, output()
        finally:
            if up.poll() is None:
                up.kill()
                up.wait()
    text = output()
    assert {zone for _, zone, _ in LINE.findall(text)} == {"IST"}, text
    ready = next((LINE.match(line) for line in text.splitlines() if line.endswith(" ready.")), None)
    assert ready, text
    at = datetime.strptime(ready.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("Asia/Kolkata"))
    assert abs(at - started) < timedelta(minutes=1), (at, started)  # local time of Kolkata, not UTC (5½ h off)
    assert not re.search(r"\d{2}:\d{2}:\d{2},\d{3}", text)  # no milliseconds
