"""Time at the boundary: aware datetimes only, UTC in storage, local for display."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from engine.errors import InputError, NaiveDatetime

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")
# The years a time typed by a person may fall in: a register of the township, not of history. Past these,
# Python's datetime overflows (0001-01-01 has no UTC) and no calendar of holidays exists anyway.
YEARS = range(2000, 2100)


def in_years(value: date, what: str = "time", shown: str | None = None) -> None:
    """Refuse a date or time outside :data:`YEARS` with a message instead of an OverflowError later."""
    if value.year not in YEARS:
        raise InputError(
            f"{what} {shown or value.isoformat()} is outside the years gridflow keeps ({YEARS[0]}–{YEARS[-1]}); "
            "check the year you typed"
        )


def require_aware(at: datetime) -> datetime:
    """Return ``at`` in UTC; reject naive datetimes, which have no meaning here."""
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise NaiveDatetime(f"naive or missing datetime {at!r}: pass an aware datetime, e.g. in UTC")
    return at.astimezone(UTC)
