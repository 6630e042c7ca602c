"""Time at the boundary: aware datetimes only, UTC in storage, local for display."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from engine.errors import NaiveDatetime

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")


def require_aware(at: datetime) -> datetime:
    """Return ``at`` in UTC; reject naive datetimes, which have no meaning here."""
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise NaiveDatetime(f"naive or missing datetime {at!r}: pass an aware datetime, e.g. in UTC")
    return at.astimezone(UTC)
