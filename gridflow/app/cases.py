"""Use cases: cases, workflows, the org chart, the SLA clocks and the calendars."""

from __future__ import annotations

from gridflow.app.base import Base


class CaseUseCases(Base):
    """Cases, workflows, the org chart, the SLA clocks and the calendars."""
