"""Use cases: the household archive and the points ledger and store."""

from __future__ import annotations

from gridflow.app.base import Base


class PointsUseCases(Base):
    """The household archive and the points ledger and store."""
