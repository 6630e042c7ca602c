"""Use cases: monthly scores, postings and objections."""

from __future__ import annotations

from gridflow.app.base import Base


class ScoringUseCases(Base):
    """Monthly scores, postings and objections."""
