"""Errors raised by gridflow.

Every error the engine raises on purpose derives from :class:`GridflowError`.
Its message says what was wrong, where, and what to do. Third-party errors are
translated at the boundary with ``raise ... from exc``. The whole tree, with the
module of each class defined elsewhere (``tests/unit/test_errors.py`` checks the
drawing against the classes)::

    GridflowError
    ├── ConfigError                   settings or an input file cannot be used
    │   ├── SourceError               one or more located problems in a YAML or CSV file
    │   │   ├── WorkflowInvalid       a workflow definition failed validation
    │   │   ├── OrgChartInvalid       an org chart failed validation
    │   │   ├── CalendarInvalid       config/calendars.yaml failed validation (engine.calendar)
    │   │   ├── ScoringInvalid        config/scoring.yaml failed validation (engine.scoring.config)
    │   │   ├── PointsRulesInvalid    config/points.yaml failed validation (engine.points.rules)
    │   │   ├── StoreFileInvalid      a points store file failed validation (engine.points.store)
    │   │   ├── ArchiveInvalid        a household archive file failed validation (engine.archive.load)
    │   │   └── NotificationsInvalid  config/notifications.yaml failed validation (notifications.config)
    │   ├── TemplateRefused           a notice template broke its limits or does not compile (engine.sandbox)
    │   ├── CalendarError             a calendar cannot answer (engine.calendar)
    │   │   └── UnknownYear           a deadline falls into a year no schedule covers (engine.calendar)
    │   └── ChannelConfigError        a notification channel's settings are wrong (notifications.channels.base)
    ├── InputError                    a value given to a command is malformed or not one of its choices
    │   └── KeyReused                 an Idempotency-Key came back with another body (gridflow.app.idempotency)
    ├── NotYet                        the time asked about has not come; the same command works later
    │   ├── PeriodNotOver             a period to score or publish has not ended yet
    │   └── NotSwept                  SLA timers due in the period have not fired yet (engine.scoring.runs)
    ├── NotFound                      an id or a name that does not exist
    │   ├── CaseNotFound
    │   ├── WorkflowNotFound
    │   ├── PersonNotFound
    │   ├── HouseholdNotFound         (engine.archive.store)
    │   ├── CalendarNotFound          (gridflow.app.sla)
    │   ├── NoticeNotFound            (gridflow.app.notices)
    │   └── WebhookNotFound           (gridflow.app.webhooks)
    ├── CommandRejected               a command that must change nothing
    │   ├── TriggerNotAllowed         trigger unknown or not allowed in this state
    │   ├── FieldError                missing, unknown or malformed fields
    │   ├── PermissionDenied          wrong role, or another grid's case
    │   ├── GuardFailed               a guard of the trigger said no
    │   ├── OutOfOrder                a backfilled step dated before the case's last recorded step
    │   ├── NotSignedIn               wrong, expired or revoked credentials (engine.accounts)
    │   ├── TooManyAttempts           sign-in refused for a while after many failures (engine.accounts)
    │   ├── KeyInProgress             a request with this Idempotency-Key is still running (gridflow.app.idempotency)
    │   ├── PointsRejected            a points command that cannot be taken (engine.points.ledger)
    │   │   └── BatchRefused          a day's sheet with a bad item, none recorded (engine.points.batch)
    │   └── PostingRejected           an objection or decision that cannot be taken (engine.publication.posting)
    ├── ConcurrentUpdate              the case changed since it was read (stale version)
    │   └── StaleVersion              not at the version of the client's If-Match (gridflow.app.scoped)
    ├── DatabaseError                 the database failed or is at the wrong schema
    └── ContractError                 code broke an engine contract: a bug, not the user's input
        ├── NaiveDatetime             a datetime without a time zone reached the engine
        └── DocumentInvalid           a posting document breaks its schema (engine.publication.render)

The CLI maps each branch to its own exit code (``EXIT_CODES`` in ``gridflow.cli.common``, documented in ``gridflow.cli``).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_MESSAGE = 600  # characters of one problem's message; longer ones are cut in the middle


class GridflowError(Exception):
    """Root of every error gridflow raises on purpose."""


class ConfigError(GridflowError):
    """Settings or an input file cannot be used."""


@dataclass(frozen=True, order=True)
class Problem:
    """One located problem in a source file: where, the YAML path, and what.

    A message longer than :data:`MAX_MESSAGE` is cut in the middle, keeping its start (what was
    wrong) and its end (what to do): a value repeated by YAML aliases must not flood a report."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __post_init__(self) -> None:
        if len(self.message) > MAX_MESSAGE:
            object.__setattr__(self, "message", cut_middle(self.message, MAX_MESSAGE))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        at = f" [{self.path}]" if self.path else ""
        return f"{where}:{at} {self.message}"


def cut_middle(text: str, limit: int) -> str:
    """``text`` at most about ``limit`` characters: its start and its end, and how much was left out."""
    head, tail = limit * 2 // 5, limit * 2 // 5
    return f"{text[:head]} … [{len(text) - head - tail:,} characters left out] … {text[-tail:]}"


class SourceError(ConfigError):
    """A YAML source file has one or more problems; all of them are listed, each once: a problem
    repeated at other paths from the same place (a value an alias repeats) is listed at its
    first path, with the others named."""

    what = "file"

    def __init__(self, problems: list[Problem]):
        self.problems = _merge_repeats(sorted(set(problems)))
        head = f"{len(self.problems)} problem(s) in {self.what}:"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


def _merge_repeats(problems: list[Problem], named: int = 3) -> list[Problem]:
    groups: dict[tuple[str, int, int, str], list[Problem]] = {}
    for problem in problems:
        groups.setdefault((problem.file, problem.line, problem.column, problem.message), []).append(problem)
    merged = []
    for first, *others in groups.values():
        if others:
            paths = ", ".join(p.path for p in others[:named]) + (", …" if len(others) > named else "")
            note = f" (the same at {len(others)} more path{'s' if len(others) > 1 else ''} from this place: {paths})"
            first = Problem(first.file, first.line, first.column, first.path, first.message + note)
        merged.append(first)
    return sorted(merged)


class WorkflowInvalid(SourceError):
    what = "workflow definition"


class OrgChartInvalid(SourceError):
    what = "org chart"


class InputError(GridflowError):
    """A value given to a command (an option, an argument) is malformed or not one of its choices;
    the message shows the form or the choices expected."""


class NotYet(GridflowError):
    """The command asks about a time that has not come: a period not over, ``--at`` in the future,
    timers not fired yet. Nothing was changed; the same command works later."""


class PeriodNotOver(NotYet):
    """A period to score or publish has not ended by the time given."""


class NotFound(GridflowError):
    """An id or a name that does not exist."""


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


class OutOfOrder(CommandRejected):
    """A backfilled step dated before the case's last recorded step: history is kept in order."""


class ContractError(GridflowError):
    """Code handed the engine something its contract forbids: a bug in gridflow, not in the input."""


class NaiveDatetime(ContractError, ValueError):
    """A datetime without a time zone; gridflow only accepts aware datetimes."""


class ConcurrentUpdate(GridflowError):
    """The case changed since it was read; reload it and try again."""


class DatabaseError(GridflowError):
    """The database failed, or its schema is not the one this code expects."""
