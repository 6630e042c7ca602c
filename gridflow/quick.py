"""Answers a command can give before the application is loaded: a case's card from the embedded database.

Loading :class:`gridflow.app.Gridflow` means importing SQLAlchemy and mapping every model, most of a
second on a small machine, and ``gridflow case show`` needs two rows. :func:`case_card` reads them
through :mod:`engine.store.sqlite_read` and presents them with the same :mod:`gridflow.present` functions
as :meth:`gridflow.app.Gridflow.case_card`, so the answer is the same dict. None means "ask the
application": another database than the embedded file, no such case, a schema to upgrade — the full path
then answers, or says what is wrong, in its own words. Nothing here writes or decides a rule.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from engine.definitions.model import WorkflowDef
from engine.store.revision import HEAD
from engine.store.sqlite_read import case_with_workflow
from gridflow import present

if TYPE_CHECKING:
    from config.settings import Settings


def case_card(settings: Settings, ref: str) -> dict[str, Any] | None:
    """``Gridflow(settings).case_card(ref)`` when the embedded database can answer it alone; else None."""
    found = case_with_workflow(settings.db_url, ref, HEAD)
    if found is None:
        return None
    row, compiled = found
    definition = WorkflowDef.from_dict(compiled)
    case = SimpleNamespace(**row)
    view = present.case_dict(case, definition, definition.allowed_triggers(case.status))  # type: ignore[arg-type]
    return {"case": view, "satisfaction_label": present.enum_label(definition, "satisfaction", case.satisfaction)}
