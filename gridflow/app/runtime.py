"""Use cases: period jobs and the demo township."""

from __future__ import annotations

from gridflow.app.base import Base


class RuntimeUseCases(Base):
    """Period jobs and the demo township."""
