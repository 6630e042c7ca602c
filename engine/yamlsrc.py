"""Safe YAML loading that remembers where every value came from.

Supervisor input is data, never code. This loader:

* builds only plain values (mappings, lists, strings, numbers, booleans, null);
  any other tag (``!!python/object``, ``!!binary``, a custom ``!tag``) is a problem;
* follows the YAML 1.2 core schema for plain scalars, so ``on``, ``no``, ``yes``,
  ``off`` stay strings, ``08:30`` stays a string and dates stay strings;
* rejects duplicate keys and merge keys instead of silently overwriting;
* bounds the number of nodes built, so alias bombs cannot exhaust memory;
* records ``file:line:column`` of every key and value by its path
  (``states.assigned.label``, ``triggers.classify.from[0]``).

All problems found while loading are collected; callers add their own problems
through :meth:`Source.problem` so that a whole file is reported at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.errors import Problem

Path_ = tuple[str | int, ...]
MAX_NODES = 100_000

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


def load_text(text: str, file: str = "<string>") -> Source:
    src = Source(file=file, data=None, text=text)
    try:
        node = yaml.compose(text, Loader=_CoreLoader)
    except yaml.MarkedYAMLError as exc:
        src.problems.append(_syntax_problem(file, exc))
        return src
    except yaml.YAMLError as exc:
        src.problems.append(Problem(file, 1, 1, "", f"malformed YAML: {exc}"))
        return src
    if node is None:
        src.problems.append(Problem(file, 1, 1, "", "the file is empty; it must hold a mapping"))
        return src
    builder = _Builder(src)
    src.data = builder.build(node, ())
    return src


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


class _Builder:
    def __init__(self, src: Source):
        self.src = src
        self.count = 0

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            if self.count == MAX_NODES + 1:
                self._problem(node, path, f"more than {MAX_NODES} values (alias bomb?); split the file")
            return None
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
        if node.tag not in _SCALAR_TAGS:
            self._problem(node, path, f"tag {node.tag!r} is not allowed; write plain values only")
            return None
        try:
            return _SCALAR_BUILDERS[node.tag](node.value)
        except ValueError:
            kind = node.tag.rsplit(":", 1)[-1]
            self._problem(node, path, f"{node.value!r} is not a valid {kind}")
            return None

    def _sequence(self, node: yaml.SequenceNode, path: Path_) -> list[Any]:
        if node.tag != _SEQ:
            self._problem(node, path, f"tag {node.tag!r} is not allowed; write a plain list")
            return []
        return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        if node.tag != _MAP:
            self._problem(node, path, f"tag {node.tag!r} is not allowed; write a plain mapping")
            return {}
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            if key is None:
                continue
            child = (*path, key)
            if key in out:
                self._problem(key_node, child, f"duplicate key {key!r}; each key may appear once", reject=False)
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
