"""A notice as the dispatcher hands it to a channel."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Notice:
    id: int
    dedupe_key: str
    recipient_id: str
    name: str
    case: str | None
    template: str
    text: str
