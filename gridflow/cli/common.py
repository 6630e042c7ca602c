"""What every command module shares: the consoles, the error handler and exit codes, the options, and
how a command opens the application (:class:`gridflow.app.Gridflow`) from the settings."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console, ConsoleOptions, RenderableType
from rich.markup import escape
from rich.segment import Segment
from rich.text import Text

from config.settings import Settings
from engine.errors import (
    CommandRejected,
    ConcurrentUpdate,
    ConfigError,
    ContractError,
    DatabaseError,
    GridflowError,
    InputError,
    NotFound,
    NotYet,
    SourceError,
)
from engine.text import json_safe, shown

if TYPE_CHECKING:  # loaded by open_gridflow: a command answered without the application never loads it
    from gridflow.app import Gridflow

EXIT_CODES: list[tuple[type[GridflowError], int]] = [  # most specific first: the first match wins
    (SourceError, 1),
    (NotFound, 3),
    (CommandRejected, 4),
    (ConcurrentUpdate, 5),
    (DatabaseError, 6),
    (ConfigError, 7),
    (InputError, 8),
    (NotYet, 9),
    (ContractError, 10),
]
UNMAPPED_EXIT_CODE = 10  # a GridflowError outside every branch above is a bug too


class SafeConsole(Console):
    """A console that never writes a control, bidirectional or invisible character that came with the data
    (a case title or an objection stored before the text check, or by hand): it is written out by
    :func:`engine.text.shown` (``ESC[2J`` is printed as ``\\x1b[2J``). Strings (a table's cells, a printed
    line) are escaped before they are measured, so tables stay aligned; the text of every other segment is
    escaped as it is rendered, the last guard. Rich's own control segments (cursor moves) are left alone,
    and so are the styles, which are not text.

    The width is read when it prints (``COLUMNS``, else the terminal's), not when the console is made at
    import: a runner in the same process sets ``COLUMNS`` per command, as a shell does per process."""

    def __init__(self, *, width: int | None = None, **kwargs: Any) -> None:
        super().__init__(width=width, **kwargs)
        self._width = width  # Rich freezes COLUMNS at construction; None reads it at each print

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(shown(text), **kwargs)

    def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Iterator[Segment]:
        for segment in super().render(renderable, options):
            text = segment.text if segment.control is not None else shown(segment.text)
            yield segment if text is segment.text else Segment(text, segment.style)


out = SafeConsole()
err = SafeConsole(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ActorOpt = Annotated[str, typer.Option("--actor", "-a", help="Person id of who acts, e.g. p-chen-jia.")]
FieldOpt = Annotated[list[str] | None, typer.Option("--field", "-f", help="A field as key=value; repeat for more.")]
AtOpt = Annotated[
    str | None,
    typer.Option(
        "--at",
        help="As if it were this time instead of now: 2026-03-02T10:00 (local) or with an offset. "
        "A command that writes refuses a time in the future.",
    ),
]
WhenOpt = Annotated[
    str | None,
    typer.Option(
        "--at",
        help="When it happened, if not now: a past time, 2026-11-27T09:30 (local) or with offset. For typing in a "
        "paper register later; the time limits run from then, and the history records when it was typed in.",
    ),
]
EnteredByOpt = Annotated[
    str | None,
    typer.Option("--entered-by", help="With --at: the person id of who types it in (default: the actor)."),
]


@contextmanager
def handled() -> Iterator[None]:
    """Print a GridflowError for people and exit with its code."""
    try:
        yield
    except GridflowError as exc:
        code = exit_code(type(exc))
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code) from None


def exit_code(kind: type[GridflowError]) -> int:
    """The exit code of an error class: that of the first branch of ``EXIT_CODES`` it belongs to."""
    return next((code for branch, code in EXIT_CODES if issubclass(kind, branch)), UNMAPPED_EXIT_CODE)


def open_settings() -> Settings:
    """The settings (``GRIDFLOW_*``, ``config/gridflow.yaml``), or a clear error saying which is wrong."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"bad settings (GRIDFLOW_* or config/gridflow.yaml): {problems}") from exc


def open_gridflow(settings: Settings | None = None) -> Gridflow:
    """The application, from the settings (read now unless given), with clear errors."""
    settings = settings or open_settings()
    try:
        return __getattr__("Gridflow")(settings)
    except (ImportError, OSError) as exc:
        raise ConfigError(f"cannot open the database: {exc}") from exc


def __getattr__(name: str) -> Any:
    """``Gridflow``, imported on first use (a test may set ``common.Gridflow`` to build it with its clock)."""
    if name != "Gridflow":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    found = globals().get(name)
    if found is None:
        from gridflow.app import Gridflow as found
    return found


def emit_json(data: Any) -> None:
    """``data`` as JSON; a C1, bidi or invisible character a stored text holds is sent as its JSON escape."""
    sys.stdout.write(json_safe(json.dumps(data, ensure_ascii=False, indent=2)) + "\n")


def parse_fields(pairs: list[str] | None) -> dict[str, str]:
    """``-f key=value`` pairs as a dict."""
    fields: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r}: write a field as key=value, e.g. -f priority=urgent")
        fields[key.strip()] = value
    return fields


def wrote(gf: Gridflow, as_json: bool) -> None:
    """Say which database a write went to: a clerk who forgot the production settings sees it at once."""
    if not as_json:
        out.print(f"[dim]数据库 database  {escape(gf.database_label)}[/]", highlight=False, soft_wrap=True)
