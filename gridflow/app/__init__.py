"""The application layer: one object, :class:`Gridflow`, under every face.

The CLI (:mod:`gridflow.cli`), the HTTP API and the Celery tasks (:mod:`tasks`) build a ``Gridflow`` from
:class:`config.settings.Settings` and a clock, and call its use cases: methods that take plain values and
return plain values (dicts and dataclasses, never a session or an ORM row that outlives its transaction).
No face runs SQL or holds a rule of its own. The use cases of each area live in their own module here;
``Gridflow`` gathers them on :class:`gridflow.app.base.Base`.
"""

from __future__ import annotations

from gridflow.app.accounts import AccountUseCases
from gridflow.app.base import Base, Clock, not_after_now, parse_at, system_clock
from gridflow.app.cases import CaseUseCases, InitReport
from gridflow.app.idempotency import IdempotencyUseCases
from gridflow.app.notices import NoticeUseCases
from gridflow.app.open311 import Open311UseCases
from gridflow.app.points import PointsUseCases
from gridflow.app.runtime import RuntimeUseCases
from gridflow.app.scoped import ScopedCaseUseCases
from gridflow.app.scoring import ScoringUseCases
from gridflow.app.sla import SlaUseCases
from gridflow.app.webhooks import WebhookUseCases
from gridflow.app.workbench import WorkbenchUseCases

__all__ = ["Clock", "Gridflow", "InitReport", "not_after_now", "parse_at", "system_clock"]


class Gridflow(
    AccountUseCases,
    IdempotencyUseCases,
    WorkbenchUseCases,
    ScopedCaseUseCases,
    Open311UseCases,
    CaseUseCases,
    SlaUseCases,
    NoticeUseCases,
    PointsUseCases,
    ScoringUseCases,
    RuntimeUseCases,
    WebhookUseCases,
    Base,
):
    """The application: every use case of gridflow, on one database and one clock."""
