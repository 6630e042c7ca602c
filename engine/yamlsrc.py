"""Safe YAML loading that remembers where every value came from.

Supervisor input is data, never code. This loader:

* builds only plain values (mappings, lists, strings, numbers, booleans, null);
  any other tag (``!!python/object``, ``!!binary``, a custom ``!tag``) is a problem;
* follows the YAML 1.2 core schema for plain scalars, so ``on``, ``no``, ``yes``,
  ``off`` stay strings, ``08:30`` stays a string and dates stay strings;
* rejects duplicate keys and merge keys instead of silently overwriting;
* bounds the number of nodes built, so alias bombs cannot exhaust memory: a file
  past the bound is refused whole (``data`` is None, nothing else is checked);
* bounds how deep values nest, so a ``[[[[…`` file is refused, not a crash;
* records ``file:line:column`` of every key and value by its path
  (``states.assigned.label``, ``triggers.classify.from[0]``).

All problems found while loading are collected; callers add their own problems
through :meth:`Source.problem` so that a whole file is reported at once, and show
the values they complain about with :func:`brief`, which keeps a long string or a
big (alias-expanded) list to one short line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.errors import Problem

Path_ = tuple[str | int, ...]
MAX_NODES = 100_000
MAX_DEPTH = 64  # mappings and lists inside each other; real files nest fewer than ten
MAX_SHOWN = 80  # characters of a value shown in a message (see brief)
MAX_BYTES = 128 * 1024  # a file: the township's largest (the org chart) is 27 kB; PyYAML reads 128 kB in 0.3 s
MAX_SCALAR = 10_000  # characters of one value; titles and labels are far shorter and checked further
TOO_DEEP = f"values nested more than {MAX_DEPTH} levels deep, so the file was not read further; flatten it"

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_SCALAR_TAGS = {_STR, _INT, _FLOAT, _BOOL, _NULL}


class _CoreLoader(yaml.SafeLoader):
    """PyYAML's safe composer with YAML 1.2 core-schema resolvers."""


_CoreLoader.yaml_implicit_resolvers = {}
for _tag, _regexp, _first in [
    (_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    (_NULL, r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    (_INT, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        _FLOAT,
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+0123456789."),
    ),
]:
    _CoreLoader.add_implicit_resolver(_tag, re.compile(_regexp), _first)
_CoreLoader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^<<$"), ["<"])


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def brief(value: Any, limit: int = MAX_SHOWN) -> str:
    """``repr(value)`` when it is at most ``limit`` characters; else its start, an ellipsis and its
    size: ``[['lol', 'lol', …] (a list of 9 items, 66,429 values in all)``. Only the shown start is
    rendered; the size note counts the values without rendering them."""
    head = _repr_head(value, limit)
    if len(head) <= limit:
        return head
    return f"{head[: limit - 1]}… ({_size(value)})"


def _repr_head(value: Any, limit: int) -> str:
    out, length = [], 0
    for chunk in _repr_chunks(value, limit):
        out.append(chunk)
        length += len(chunk)
        if length > limit:
            break
    return "".join(out)


def _repr_chunks(value: Any, limit: int) -> Iterator[str]:
    if isinstance(value, list):
        yield "["
        for i, item in enumerate(value):
            yield from ([", "] if i else [])
            yield from _repr_chunks(item, limit)
        yield "]"
    elif isinstance(value, dict):
        yield "{"
        for i, (key, item) in enumerate(value.items()):
            yield from ([", "] if i else [])
            yield from _repr_chunks(key, limit)
            yield ": "
            yield from _repr_chunks(item, limit)
        yield "}"
    elif isinstance(value, str) and len(value) > limit:
        yield repr(value[: limit + 1])[:-1]  # the start of the repr, without its closing quote
    else:
        yield repr(value)


def _size(value: Any) -> str:
    if isinstance(value, str):
        return f"{len(value):,} characters"
    if not isinstance(value, list | dict):
        return f"{len(repr(value)):,} characters"
    kind, unit = ("a list", "item") if isinstance(value, list) else ("a mapping", "key")
    total, todo = 0, [value]
    while todo:
        item = todo.pop()
        children = list(item.values()) if isinstance(item, dict) else item if isinstance(item, list) else []
        total += len(children)
        todo.extend(c for c in children if isinstance(c, list | dict))
    shown = f"{kind} of {len(value):,} {unit}{'' if len(value) == 1 else 's'}"
    return shown if total == len(value) else f"{shown}, {total:,} values in all"


@dataclass
class Source:
    """A loaded YAML document with the location of every key and value."""

    file: str
    data: Any
    text: str
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    rejected: set[Path_] = field(default_factory=set)  # values the loader refused to build

    def where(self, path: Path_, at_key: bool = False) -> tuple[int, int]:
        """Line and column of ``path``, or of its nearest located ancestor."""
        probe = tuple(path)
        while True:
            table = self.keys if at_key and probe in self.keys else self.values
            if probe in table:
                return table[probe]
            if not probe:
                return (1, 1)
            probe = probe[:-1]

    def problem(self, path: Path_, message: str, at_key: bool = False) -> None:
        """Record a problem, unless it only follows from a value the loader already refused."""
        if any(path[: len(bad)] == bad for bad in self.rejected):
            return
        line, column = self.where(path, at_key)
        self.problems.append(Problem(self.file, line, column, format_path(path), message))


def load_file(path: str | Path) -> Source:
    p = Path(path)
    try:
        if (size := p.stat().st_size) > MAX_BYTES:
            return _unreadable(str(p), _too_large(size))
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _unreadable(str(p), "file not found; check the path")
    except UnicodeDecodeError as exc:
        return _unreadable(str(p), f"not UTF-8 text ({exc.reason}); save the file as UTF-8")
    except OSError as exc:
        return _unreadable(str(p), f"cannot read the file: {exc.strerror}")
    return load_text(text, str(p))


def _unreadable(file: str, message: str) -> Source:
    src = Source(file=file, data=None, text="")
    src.problems.append(Problem(file, 1, 1, "", message))
    return src


def _too_large(size: int) -> str:
    return (
        f"the file is {size:,} bytes, more than the {MAX_BYTES:,} a configuration file may hold, so it was not read; "
        "is it the right file? split it or shorten it"
    )


def load_text(text: str, file: str = "<string>") -> Source:
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        return _unreadable(file, _too_large(len(text.encode("utf-8", "surrogatepass"))))
    src = Source(file=file, data=None, text=text)
    try:
        node = yaml.compose(text, Loader=_CoreLoader)
    except RecursionError:  # PyYAML's composer recurses once per level: far too deep for it
        mark = _too_deep(text)
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        src.problems.append(Problem(file, line, column, "", TOO_DEEP))
        return src
    except yaml.MarkedYAMLError as exc:
        src.problems.append(_syntax_problem(file, exc))
        return src
    except yaml.YAMLError as exc:
        src.problems.append(Problem(file, 1, 1, "", f"malformed YAML: {exc}"))
        return src
    if node is None:
        src.problems.append(Problem(file, 1, 1, "", "the file is empty; it must hold a mapping"))
        return src
    try:
        src.data = _Builder(src).build(node, ())
    except _Refused:
        src.data = None  # refused whole: what was built is partial, so nothing else is checked
        src.rejected.add(())
    return src


def _too_deep(text: str) -> yaml.Mark | None:
    """Where the nesting first goes past MAX_DEPTH, read from the parser's events (which, unlike
    the composer, do not recurse); None if it never does or the text does not parse. Only run
    when composing failed: it parses the text a second time."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", _CoreLoader)):  # libyaml: quick
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    return event.start_mark
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as exc:  # libyaml stops at 1,000 levels: that is the place too
        return exc.problem_mark
    except yaml.YAMLError:
        return None
    return None


def _syntax_problem(file: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    reason = exc.problem or "malformed YAML"
    if exc.context:
        context = exc.context
        if exc.context_mark is not None and exc.context_mark is not mark:
            context += f" started at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
        reason = f"{reason} ({context})"
    return Problem(file, line, col, "", f"malformed YAML: {reason}; check indentation, brackets and quotes")


class _Refused(Exception):
    """The document grew past MAX_NODES values, or nested past MAX_DEPTH, while being built."""


class _Builder:
    def __init__(self, src: Source):
        self.src = src
        self.count = 0

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            self._problem(
                node,
                path,
                f"the file holds more than {MAX_NODES} values once its aliases (*name) are expanded, so it was "
                "not read further (an alias bomb?); write the values out instead of repeating anchors, or split the file",
            )
            raise _Refused
        if len(path) > MAX_DEPTH:
            self._problem(node, path[:1], TOO_DEEP)  # the line and column say where inside
            raise _Refused
        self.src.values.setdefault(path, _pos(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return self._sequence(node, path)
        return self._scalar(node, path)

    def _problem(self, node: yaml.Node, path: Path_, message: str, reject: bool = True) -> None:
        """Record a problem; ``reject`` also silences the problems that only follow from it."""
        line, col = _pos(node)
        self.src.problems.append(Problem(self.src.file, line, col, format_path(path), message))
        if reject:
            self.src.rejected.add(path)

    def _scalar(self, node: yaml.ScalarNode, path: Path_) -> Any:
        if len(node.value) > MAX_SCALAR:
            self._problem(node, path, f"a value of {len(node.value):,} characters (at most {MAX_SCALAR:,}); shorten it")
            return None
        if node.tag not in _SCALAR_TAGS:
            self._problem(node, path, f"tag {brief(node.tag)} is not allowed; write plain values only")
            return None
        try:
            return _SCALAR_BUILDERS[node.tag](node.value)
        except ValueError:
            kind = node.tag.rsplit(":", 1)[-1]
            self._problem(node, path, f"{brief(node.value)} is not a valid {kind}")
            return None

    def _sequence(self, node: yaml.SequenceNode, path: Path_) -> list[Any]:
        if node.tag != _SEQ:
            self._problem(node, path, f"tag {brief(node.tag)} is not allowed; write a plain list")
            return []
        return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        if node.tag != _MAP:
            self._problem(node, path, f"tag {brief(node.tag)} is not allowed; write a plain mapping")
            return {}
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            if key is None:
                continue
            child = (*path, key)
            if key in out:
                self._problem(key_node, child, f"duplicate key {brief(key)}; each key may appear once", reject=False)
                continue
            self.src.keys[child] = _pos(key_node)
            out[key] = self.build(value_node, child)
        return out

    def _key(self, node: yaml.Node, path: Path_) -> str | None:
        if node.tag == "tag:yaml.org,2002:merge":
            self._problem(node, path, "merge keys (<<) are not supported; write the keys out")
            return None
        if not isinstance(node, yaml.ScalarNode) or node.tag not in _SCALAR_TAGS:
            self._problem(node, path, "a key must be a plain string")
            return None
        value = self._scalar(node, path)
        return node.value if not isinstance(value, str) else value


def _int(text: str) -> int:
    """YAML 1.2 core ints: decimal (leading zeros are still decimal), 0o octal, 0x hex."""
    body = text.replace("_", "")
    sign = -1 if body.startswith("-") else 1
    digits = body.lstrip("+-")
    if digits[:2] in ("0o", "0x"):
        return sign * int(digits[2:], 8 if digits[1] == "o" else 16)
    return sign * int(digits, 10)


def _float(text: str) -> float:
    lowered = text.lower()
    if lowered.lstrip("+-") == ".inf":
        return float("-inf") if lowered.startswith("-") else float("inf")
    if lowered == ".nan":
        return float("nan")
    return float(text)


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise ValueError(text)
    return lowered == "true"


def _null(text: str) -> None:
    if text not in ("", "~", "null", "Null", "NULL"):
        raise ValueError(text)
    return None


_SCALAR_BUILDERS = {_STR: str, _INT: _int, _FLOAT: _float, _BOOL: _bool, _NULL: _null}


def _pos(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)
