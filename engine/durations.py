"""Durations written in YAML: a positive whole number and a unit, ``30m``, ``4h``, ``2d``.

On a working calendar ``4h`` means four working hours and ``2d`` two working days;
the SLA clock gives the unit its meaning. Here a duration is only parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PATTERN = re.compile(r"([1-9][0-9]{0,3})([mhd])")  # 1..9999 of a unit
UNITS = {"m": "minutes", "h": "hours", "d": "days"}
HINT = "write a whole number from 1 to 9999 and a unit, like 30m, 4h or 2d"


@dataclass(frozen=True)
class Duration:
    amount: int
    unit: str  # "m", "h" or "d"

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


def parse_duration(text: object) -> Duration:
    """Parse ``30m`` / ``4h`` / ``2d``; raise ValueError that says what to write."""
    match = _PATTERN.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"bad duration {text!r}: {HINT}")
    return Duration(int(match.group(1)), match.group(2))
