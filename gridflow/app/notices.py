"""Use cases: notices: list, show, retry, preview, dispatch."""

from __future__ import annotations

from gridflow.app.base import Base


class NoticeUseCases(Base):
    """Notices: list, show, retry, preview, dispatch."""
