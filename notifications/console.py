"""The embedded default channel: each notice printed to the console and appended, as one JSON
line, to a file (``<home>/notices.log``) that a person or a test can read back."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, TextIO

from notifications.notice import Notice


class ConsoleChannel:
    name = "console"

    def __init__(self, path: Path, stream: TextIO | None = None):
        self.path = path
        self.stream = stream
        self._lock = threading.Lock()

    def send(self, notice: Notice) -> str:
        """Write the notice; return its id on this channel."""
        record: dict[str, Any] = {
            "id": notice.id,
            "dedupe_key": notice.dedupe_key,
            "to": notice.recipient_id,
            "name": notice.name,
            "case": notice.case,
            "template": notice.template,
            "text": notice.text,
        }
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            if self.stream is not None:
                self.stream.write(f"📨 {notice.name}({notice.recipient_id}) ← {notice.text}\n")
                self.stream.flush()
        return f"console:{notice.id}"
