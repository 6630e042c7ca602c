"""Errors raised by gridflow.

Every error the engine raises on purpose derives from :class:`GridflowError`.
Its message says what was wrong, where, and what to do. Third-party errors are
translated at the boundary with ``raise ... from exc``.

    GridflowError
    ├── ConfigError                  settings or an input file cannot be used
    │   ├── SourceError              one or more located problems in a YAML file
    │   │   ├── WorkflowInvalid      a workflow definition failed validation
    │   │   ├── OrgChartInvalid      an org chart failed validation
    │   │   └── CalendarInvalid      config/calendars.yaml failed validation (engine.calendar)
    │   └── CalendarError            a calendar cannot answer (engine.calendar)
    │       └── UnknownYear          a deadline falls into a year no schedule covers
    ├── NotFound                     an id that does not exist
    │   ├── CaseNotFound
    │   ├── WorkflowNotFound
    │   └── PersonNotFound
    ├── CommandRejected              a case command that must change nothing
    │   ├── TriggerNotAllowed        trigger unknown or not allowed in this state
    │   ├── FieldError               missing, unknown or malformed fields
    │   ├── PermissionDenied         wrong role, or another grid's case
    │   └── GuardFailed              a guard of the trigger said no
    ├── NaiveDatetime                a datetime without a time zone reached the engine
    ├── ConcurrentUpdate             the case changed since it was read (stale version)
    └── DatabaseError                the database failed or is at the wrong schema

The CLI maps each branch to its own exit code (see ``gridflow.cli``).
"""

from __future__ import annotations

from dataclasses import dataclass


class GridflowError(Exception):
    """Root of every error gridflow raises on purpose."""


class ConfigError(GridflowError):
    """Settings or an input file cannot be used."""


@dataclass(frozen=True, order=True)
class Problem:
    """One located problem in a source file: where, the YAML path, and what."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        at = f" [{self.path}]" if self.path else ""
        return f"{where}:{at} {self.message}"


class SourceError(ConfigError):
    """A YAML source file has one or more problems; all of them are listed."""

    what = "file"

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(set(problems))
        head = f"{len(self.problems)} problem(s) in {self.what}:"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


class WorkflowInvalid(SourceError):
    what = "workflow definition"


class OrgChartInvalid(SourceError):
    what = "org chart"


class NotFound(GridflowError):
    """An id that does not exist."""


class CaseNotFound(NotFound):
    pass


class WorkflowNotFound(NotFound):
    pass


class PersonNotFound(NotFound):
    pass


class CommandRejected(GridflowError):
    """A case command was refused; nothing was changed."""


class TriggerNotAllowed(CommandRejected):
    def __init__(self, message: str, allowed: list[str]):
        self.allowed = allowed
        super().__init__(message)


class FieldError(CommandRejected):
    pass


class PermissionDenied(CommandRejected):
    pass


class GuardFailed(CommandRejected):
    pass


class NaiveDatetime(GridflowError, ValueError):
    """A datetime without a time zone; gridflow only accepts aware datetimes."""


class ConcurrentUpdate(GridflowError):
    """The case changed since it was read; reload it and try again."""


class DatabaseError(GridflowError):
    """The database failed, or its schema is not the one this code expects."""
