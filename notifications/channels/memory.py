"""An in-memory channel: the twin of the real ones for fast tests. It keeps every message it was
given and answers from a script of results (default: sent)."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from notifications.channels.base import ChannelConfigError, Message, Recipient, SendResult


class MemoryChannel:
    kind = "memory"

    def __init__(self, name: str = "memory", needs: str | None = None, urgent_only: bool = False):
        self.name = name
        self.needs = needs  # "phone", "email" or "wecom": the contact it needs, like a real channel
        self.urgent_only = urgent_only
        self.sent: list[Message] = []
        self.script: deque[SendResult] = deque()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryChannel({self.name!r}, needs={self.needs!r})"

    def address(self, recipient: Recipient) -> str | None:
        return recipient.id if self.needs is None else getattr(recipient, self.needs)

    def will(self, *results: SendResult) -> MemoryChannel:
        """Answer the next sends with these results, in order."""
        self.script.extend(results)
        return self

    def send(self, message: Message) -> SendResult:
        with self._lock:
            result = self.script.popleft() if self.script else SendResult.sent(f"mem-{len(self.sent) + 1}")
            if result.ok:
                self.sent.append(message)
            return result


def from_config(name: str, config: dict[str, Any]) -> MemoryChannel:
    needs = config.get("needs")
    if needs not in (None, "phone", "email", "wecom"):
        raise ChannelConfigError(name, [f"needs must be phone, email or wecom, not {needs!r}"])
    return MemoryChannel(name, needs, bool(config.get("urgent_only", False)))
