"""A Jinja2 sandbox with a budget: templates a township writes cannot run away.

Notice templates can be overridden by the township (``templates:`` in ``config/notifications.yaml``),
so they are input from people, not code of the team. Jinja's :class:`SandboxedEnvironment` already
keeps a template away from Python's internals (``__globals__``, ``__subclasses__``, unsafe methods);
it does not bound what a template costs. This one does, the same in every pool (threads, prefork,
solo) because nothing here depends on signals or on the worker's time limit:

- **steps and time**: while a template renders, a trace function counts the lines its compiled code
  runs (only the template's own frames) and checks the clock; past :attr:`Limits.steps` or
  :attr:`Limits.seconds` the render stops with :class:`TemplateRefused`;
- **sizes before they are made**: ``*``, ``**``, ``%`` and ``+`` are intercepted and refused when the
  result would be longer than :attr:`Limits.chars` (``'a' * 10**9`` never allocates), ``range`` is
  capped at :attr:`Limits.items`, every call, filter and namespace assignment refuses an integer
  argument past :attr:`Limits.number`, a format width too, and a string result past :attr:`Limits.chars`;
- **output**: a part stops at its own cap (``render(..., cap=)``) while it is being produced;
- **depth**: recursion (a macro calling itself) stops at Python's own limit, reported the same way.

Every refusal names the template and says what to change. Pure: no clock but ``time.monotonic`` for
the budget, no I/O.
"""

from __future__ import annotations

import operator
import re
import string
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import wraps
from types import FrameType
from typing import Any

from jinja2 import Environment, TemplateError
from jinja2.runtime import Namespace
from jinja2.sandbox import SandboxedEnvironment

from engine.errors import ConfigError


class TemplateRefused(ConfigError):
    """A template broke its limits, or cannot be compiled or rendered; the message names it."""


@dataclass(frozen=True)
class Limits:
    steps: int = 200_000  # lines of the template's compiled code run in one render
    seconds: float = 0.5  # wall time of one render
    chars: int = 100_000  # longest string a template may make, and the default cap of a part
    items: int = 1_000  # longest range
    number: int = 10_000_000  # largest integer argument of a call or filter, largest format width
    source_bytes: int = 64 * 1024  # largest template file


DEFAULT_LIMITS = Limits()
_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "*": operator.mul,
    "**": operator.pow,
    "%": operator.mod,
    "+": operator.add,
}


class _OverBudget(Exception):
    """Raised inside the render by the trace function or a size check; becomes TemplateRefused."""


class BudgetedEnvironment(SandboxedEnvironment):
    """:class:`SandboxedEnvironment` whose renders have a budget; use :meth:`render` to render."""

    intercepted_binops = frozenset(_ARITHMETIC)

    def __init__(self, *args: Any, limits: Limits = DEFAULT_LIMITS, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.globals.pop("lipsum", None)  # lipsum(10**6) is a text bomb with no use in a notice
        self.globals["range"] = self._range
        self.globals["namespace"] = self._namespace
        self.filters = {name: self._guarded(name, f) for name, f in self.filters.items()}

    # --- sizes, checked before anything large is made ---------------------------------------

    def _range(self, *args: Any) -> range:
        self._ints(args)
        made = range(*args)
        if len(made) > self.limits.items:
            raise _OverBudget(f"range of {len(made):,} items (at most {self.limits.items:,})")
        return made

    def _namespace(self, *args: Any, **kwargs: Any) -> Namespace:
        return _CappedNamespace(self._text, *args, **kwargs)

    def _ints(self, values: Any) -> None:
        for value in values:
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > self.limits.number:
                raise _OverBudget(f"the number {_short(value)} is larger than {self.limits.number:,}")

    def _text(self, value: Any) -> Any:
        if isinstance(value, str | list | tuple | dict) and len(value) > self.limits.chars:
            raise _OverBudget(f"a value of {len(value):,} characters or items (at most {self.limits.chars:,})")
        return value

    def _guarded(self, name: str, f: Callable[..., Any]) -> Callable[..., Any]:
        first = 2 if getattr(f, "jinja_pass_arg", None) else 1  # (context,) value, arguments…

        @wraps(f)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if name == "format" and len(args) >= first and isinstance(args[first - 1], str):
                if self._widths(args[first - 1]):  # its arguments are values to show, unless a width is one
                    self._ints(args[first:])
                    self._ints(kwargs.values())
            else:  # the filtered value itself may be a large number; the arguments (widths, counts) not
                self._ints(args[first:])
                self._ints(kwargs.values())
            return self._text(f(*args, **kwargs))

        return guarded

    def _widths(self, fmt: str) -> bool:
        """Refuse a %-format or str.format string with a width or precision past ``limits.number``;
        True when a width comes from the arguments (``%*d``, ``{:{w}}``), which must then be checked too."""
        for width in (*_percent_widths(fmt), *_brace_widths(fmt)):
            if width > self.limits.number:
                raise _OverBudget(f"a format width of {_short(width)} (at most {self.limits.number:,})")
        return "*" in fmt or _nested_spec(fmt)

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        self._predict(operator_, left, right)
        return self._text(_ARITHMETIC[operator_](left, right))

    def _predict(self, op: str, left: Any, right: Any) -> None:
        limit = self.limits.chars
        if op == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int) and len(seq) * max(n, 0) > limit:
                    raise _OverBudget(f"repeating {len(seq):,} characters {_short(n)} times (at most {limit:,})")
            if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > 256:
                raise _OverBudget("a product of more than 256 bits")
        elif op == "**":
            if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right * left.bit_length() > 256:
                raise _OverBudget(f"{_short(left)} ** {_short(right)} has more than 256 bits")
            if isinstance(right, int | float) and abs(right) > 256:
                raise _OverBudget(f"an exponent of {_short(right)} (at most 256)")
        elif op == "%" and isinstance(left, str) and self._widths(left):
            self._ints(right if isinstance(right, tuple) else (right,))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's signature
        if getattr(__obj, "_widths_from_arguments", True):  # a checked str.format: its arguments are values
            __self._ints(args)
            __self._ints(kwargs.values())
        for value in (*args, *kwargs.values()):
            __self._text(value)
        return __self._text(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:  # '{:>999999999}'.format(1) is refused before it is called
            wrapped._widths_from_arguments = self._widths(value.__self__)  # type: ignore[attr-defined]
        return wrapped

    # --- rendering with the budget ----------------------------------------------------------

    def render(self, name: str, context: Mapping[str, Any], cap: int | None = None) -> str:
        """Render template ``name`` with ``context``: at most ``cap`` characters (default ``limits.chars``),
        within the step and time budget; any failure is a :class:`TemplateRefused` naming the template."""
        try:
            template = self.get_template(name)
        except TemplateError as exc:  # TemplateNotFound is left to the caller: it says which event
            if type(exc).__name__ == "TemplateNotFound":
                raise
            raise TemplateRefused(f"template {name}: {_cause(exc)}") from None
        cap = self.limits.chars if cap is None else cap
        filename = template.filename or "<template>"
        try:
            with _Budget(self.limits, {filename}):
                return _joined(template.generate(**context), cap, name)
        except TemplateRefused:
            raise
        except _OverBudget as exc:
            raise TemplateRefused(
                f"template {name} stopped: {exc}; simplify it (see docs/operations.md, notices)"
            ) from None
        except RecursionError:
            raise TemplateRefused(f"template {name} stopped: it recurses too deep (a macro calling itself?)") from None
        except MemoryError:
            raise TemplateRefused(f"template {name} stopped: out of memory") from None

    def check_source(self, name: str, source: str) -> None:
        """Refuse at load a template too large or that does not compile (named, with its line)."""
        size = len(source.encode())
        if size > self.limits.source_bytes:
            raise TemplateRefused(f"template {name} is {size:,} bytes (at most {self.limits.source_bytes:,})")
        try:
            self.parse(source, name=name)
        except TemplateError as exc:
            raise TemplateRefused(f"template {name}: {_cause(exc)}") from None


class TrustedEnvironment(Environment):
    """The team's own templates (shipped with gridflow, reviewed and tested like its code): a plain
    :class:`jinja2.Environment` with the same :meth:`render` as :class:`BudgetedEnvironment` (the output
    cap, errors naming the template) but none of the sandbox's checks, which cost a third of a render
    (measured: an SMS part 49 → 34 µs, an e-mail's three parts 229 → 133 µs). Files are read once:
    a built-in template changes only with a release."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, auto_reload=False, **kwargs)

    def render(self, name: str, context: Mapping[str, Any], cap: int) -> str:
        try:
            template = self.get_template(name)
        except TemplateError as exc:
            if type(exc).__name__ == "TemplateNotFound":
                raise
            raise TemplateRefused(f"template {name}: {_cause(exc)}") from None
        return _joined(template.generate(**context), cap, name)


class _CappedNamespace(Namespace):
    """``namespace()`` whose attributes cannot grow past the size limit (a doubling loop stops)."""

    def __init__(*args: Any, **kwargs: Any):  # noqa: N805 - Namespace's own signature
        self, check, *rest = args
        object.__setattr__(self, "_check", check)
        super(_CappedNamespace, self).__init__(*rest, **kwargs)  # noqa: UP008 - no self argument in this signature
        for value in object.__getattribute__(self, "_Namespace__attrs").values():
            check(value)

    def __setitem__(self, name: str, value: Any) -> None:
        object.__getattribute__(self, "_check")(value)
        super().__setitem__(name, value)


class _Budget:
    """A trace function counting the template's lines and watching the clock, for one render."""

    def __init__(self, limits: Limits, files: set[str]):
        self.limits = limits
        self.files = files
        self.steps = 0
        self.deadline = 0.0
        self.saved: Any = None

    def __enter__(self) -> _Budget:
        self.deadline = time.monotonic() + self.limits.seconds
        self.saved = sys.gettrace()
        sys.settrace(self._call)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.settrace(self.saved)

    def _call(self, frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename in self.files:
            return self._line
        self._tick()  # a filter or a method of the template's values: time counts, lines not
        return None

    def _line(self, frame: FrameType, event: str, arg: Any) -> Any:
        self.steps += 1
        if self.steps > self.limits.steps:
            raise _OverBudget(f"more than {self.limits.steps:,} steps (a loop too long?)")
        if not self.steps & 0xFF:
            self._tick()
        return self._line

    def _tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise _OverBudget(f"longer than {self.limits.seconds:g} s")


def _joined(chunks: Iterator[str], cap: int, name: str) -> str:
    out: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > cap:
            raise TemplateRefused(f"template {name} makes more than {cap:,} characters; shorten it")
        out.append(chunk)
    return "".join(out)


def _percent_widths(fmt: str) -> Iterator[int]:
    """Widths and precisions of a %-format string (``%0999999d`` → 999999)."""
    digits = ""
    in_spec = False
    for ch in fmt:
        if ch == "%":
            in_spec = not in_spec
            continue
        if not in_spec:
            continue
        if ch.isdigit():
            digits += ch
            continue
        if digits:
            yield int(digits[:12])
            digits = ""
        if ch.isalpha():
            in_spec = False
    if digits:
        yield int(digits[:12])


def _brace_widths(fmt: str) -> Iterator[int]:
    """Widths and precisions of a str.format string (``{:>999999}`` → 999999); nested fields skipped."""
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return
    for _text, _field, spec, _conversion in fields:
        for digits in re.findall(r"\d+", spec or ""):
            yield int(digits[:12])


def _nested_spec(fmt: str) -> bool:
    try:
        return any(spec and "{" in spec for _t, _f, spec, _c in string.Formatter().parse(fmt))
    except ValueError:
        return False


def _short(value: Any) -> str:
    if isinstance(value, int) and value.bit_length() > 64:
        return f"of {len(str(value)) if value.bit_length() < 4000 else 'many'} digits"
    return f"{value:,}" if isinstance(value, int) else repr(value)[:40]


def _cause(exc: BaseException) -> str:
    where = f" (line {exc.lineno})" if getattr(exc, "lineno", None) else ""
    return f"{exc.__class__.__name__}: {str(exc)[:300]}{where}"
