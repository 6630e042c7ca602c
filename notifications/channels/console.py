"""The embedded default channel: each message printed to the console and appended, as one JSON
line, to a file (``<home>/notices.log``) that a person or a test can read back. The file holds
the notices' texts (names, cases, places): it is created 0600, its directory 0700."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from engine.store.private import open_private
from notifications.channels.base import ChannelConfigError, Message, Recipient, SendResult

STDOUT: Any = object()  # the process's standard output as it is when a message is written


class ConsoleChannel:
    kind = "console"
    parts = frozenset({"subject", "text"})  # what it sends of a notice: only these are rendered

    def __init__(self, name: str, path: Path, stream: TextIO | None = STDOUT, urgent_only: bool = False):
        self.name = name
        self.path = path
        self.stream = stream
        self.urgent_only = urgent_only
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ConsoleChannel({self.name!r}, path={str(self.path)!r})"

    def address(self, recipient: Recipient) -> str | None:
        return recipient.id

    def send(self, message: Message) -> SendResult:
        record: dict[str, Any] = {
            "key": message.idempotency_key,
            "event": message.event,
            "to": message.recipient.id,
            "name": message.recipient.name,
            "notices": list(message.notice_ids),
            "subject": message.subject,
            "text": message.text,
        }
        try:
            with self._lock:
                with open_private(self.path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                stream = sys.stdout if self.stream is STDOUT else self.stream  # not the one at import time
                if stream is not None:
                    stream.write(f"📨 {message.recipient.name}({message.recipient.id}) ← {message.text}\n")
                    stream.flush()
        except OSError as exc:
            return SendResult.failed(f"cannot write {self.path}: {exc.strerror}")
        return SendResult.sent(f"console:{message.idempotency_key}")


def from_config(name: str, config: dict[str, Any]) -> ConsoleChannel:
    unknown = sorted(set(config) - {"path", "quiet", "urgent_only"})
    if unknown:
        raise ChannelConfigError(name, [f"unknown key {k!r} for a console channel (keys: path)" for k in unknown])
    stream = None if config.get("quiet") else STDOUT
    return ConsoleChannel(name, Path(config["path"]), stream, bool(config.get("urgent_only", False)))
