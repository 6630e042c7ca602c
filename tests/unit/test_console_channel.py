"""The console channel writes to standard output as it is when a message goes out.

It used to bind ``sys.stdout`` as a default argument when the module was imported, so a
process (or a test runner) that replaced standard output later never saw the notices: the
README tour's ``notices dispatch`` printed nothing when another test had imported the channel
first.
"""

from __future__ import annotations

import contextlib
import io

from notifications.channels.base import Message, Recipient
from notifications.channels.console import ConsoleChannel, from_config


def _message() -> Message:
    return Message("k-1", "case_received", Recipient("p-an-yixuan", "安怡萱"), "受理", "您上报的事件已受理")


def test_the_default_stream_is_stdout_when_sending(tmp_path):
    channels = [ConsoleChannel("console", tmp_path / "a.log"), from_config("c", {"path": str(tmp_path / "b.log")})]
    for channel in channels:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert channel.send(_message()).ok
        assert printed.getvalue() == "📨 安怡萱(p-an-yixuan) ← 您上报的事件已受理\n"


def test_quiet_writes_only_the_file(tmp_path):
    channel = from_config("c", {"path": str(tmp_path / "b.log"), "quiet": True})
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        channel.send(_message())
    assert printed.getvalue() == "" and "您上报的事件已受理" in (tmp_path / "b.log").read_text(encoding="utf-8")
