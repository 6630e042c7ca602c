"""A public posting (季公示 / 年总结) rendered from a plain document dict — pure, no I/O.

The caller formats every text (figures, rates, times); this module only lays it out, as three
artefacts of one document:

``json``  the canonical JSON (sorted keys, UTF-8 text): what is stored, and what the hash covers
``html``  one self-contained A4 page: inline CSS, the trend chart as inline SVG, no fonts, images
          or scripts from anywhere, so it looks the same offline, on screen and in print
``csv``   every table, for Excel (UTF-8 with a BOM, one block per table)

The page's footer shows the JSON's SHA-256 (校验码), so a printed copy can be matched to the stored
document. Every value goes through Jinja2's autoescape in a sandbox with ``StrictUndefined``; the
chart is drawn by a template too, so its labels are escaped the same way. A document that breaks
the contract (see ``SCHEMA``) raises :class:`DocumentInvalid` listing every problem at once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from engine.errors import ContractError

TEMPLATES = Path(__file__).resolve().parent / "templates"
KINDS = ("quarterly", "annual")
MARKS = ("red", "black")
SHORT_HASH = 16  # hex characters of the hash printed on the page
CHART_SIZE = (640, 220)  # the trend chart on the page (its viewBox; it is drawn to the page width)
KEEP_TOGETHER = 15  # a table of at most this many rows does not break across printed pages
Y_TICKS = (0, 25, 50, 75, 100)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet reads these as a formula

_TEXT: dict[str, Any] = {"type": "string"}


def _record(*keys: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(keys),
        "properties": dict.fromkeys(keys, _TEXT),
        "additionalProperties": False,
    }


def _list(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


_TABLE = {
    "type": "object",
    "required": ["title", "columns", "rows"],
    "properties": {
        "title": _TEXT,
        "note": _TEXT,
        "columns": {**_list(_TEXT), "minItems": 1},
        "rows": _list(_list(_TEXT)),
        "highlight": {
            "type": "object",
            "propertyNames": {"pattern": "^(0|[1-9][0-9]*)$"},
            "additionalProperties": {"enum": list(MARKS)},
        },
    },
    "additionalProperties": False,
}
_POINT = {
    "type": "object",
    "required": ["label", "value"],
    "properties": {"label": _TEXT, "value": {"type": ["number", "null"], "minimum": 0, "maximum": 100}},
    "additionalProperties": False,
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "kind": {"enum": list(KINDS)},
        "title": _TEXT,
        "township": _TEXT,
        "period": _TEXT,
        "period_label": _TEXT,
        "version": {"type": "integer", "minimum": 1},
        "published_at": _TEXT,
        "objection_until": {"type": ["string", "null"]},
        "objection_contact": _TEXT,
        "rules": _TEXT,
        "key_figures": _list(_record("label", "value", "detail")),
        "trend": {
            "type": "object",
            "required": ["title", "unit", "points"],
            "properties": {"title": _TEXT, "unit": _TEXT, "points": {**_list(_POINT), "minItems": 1}},
            "additionalProperties": False,
        },
        "sections": _list(_TABLE),
        "red_list": _list(_record("group", "name", "score", "grade")),
        "black_list": _list(_record("group", "name", "score", "grade")),
        "changes": _list(_record("subject", "what", "before", "after")),
        "change_reason": _TEXT,
        "notes": _list(_TEXT),
        "extra_sections": _list(_TABLE),
    },
    "additionalProperties": False,
}
SCHEMA["required"] = list(SCHEMA["properties"])
# Optional: a posting of demo figures (``gridflow demo``) says so on the page, in the CSV and the JSON.
SCHEMA["properties"]["watermark"] = _TEXT


class DocumentInvalid(ContractError, ValueError):
    """A posting document breaks the contract; every problem is listed."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = [f"{len(problems)} problem(s) in the posting document:", *(f"  {p}" for p in problems)]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Artefacts:
    html: str
    csv: str
    json: str
    content_hash: str  # sha256 hex of the canonical JSON (the `json` field)


def render(doc: dict) -> Artefacts:
    """The page, the CSV and the canonical JSON of one posting document, and the JSON's hash."""
    check(doc)
    text = canonical_json(doc)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    page = _environment().get_template("posting.html.j2").render(_page_context(doc, digest))
    return Artefacts(html=page, csv=_csv(doc, digest), json=text, content_hash=digest)


def canonical_json(doc: dict) -> str:
    """The stored form of a document: the same document always gives the same text (and hash)."""
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, indent=1, allow_nan=False) + "\n"


def check(doc: dict) -> None:
    """Raise :class:`DocumentInvalid` naming every place ``doc`` breaks the contract."""
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    problems = [f"{_where(e.absolute_path)}: {e.message}" for e in errors]
    if not problems:
        problems = _table_problems(doc) + _trend_problems(doc["trend"])
    if problems:
        raise DocumentInvalid(problems)


def trend_svg(trend: dict, width: int = 640, height: int = 260) -> str:
    """The trend as inline ``<svg>`` markup: a line with markers on a 0–100 axis, gaps where no data."""
    return _environment().get_template("trend.svg.j2").render(chart=_chart(trend, width, height))


# --- checks -----------------------------------------------------------------------------------


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(SCHEMA)


def _where(path: Any) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    return "document" + text


def _table_problems(doc: dict) -> list[str]:
    problems = []
    for key in ("sections", "extra_sections"):
        for number, table in enumerate(doc[key]):
            where = f"document.{key}[{number}]"
            width = len(table["columns"])
            for index, row in enumerate(table["rows"]):
                if len(row) != width:
                    problems.append(f"{where}.rows[{index}]: {len(row)} cells for {width} columns")
            for index in table.get("highlight", {}):
                if int(index) >= len(table["rows"]):
                    problems.append(f"{where}.highlight: row {index} does not exist ({len(table['rows'])} rows)")
    return problems


def _trend_problems(trend: dict) -> list[str]:
    return [
        f"document.trend.points[{i}].value: NaN is not a value (write null for a month without data)"
        for i, point in enumerate(trend["points"])
        if isinstance(point["value"], float) and math.isnan(point["value"])
    ]


# --- the page ---------------------------------------------------------------------------------


@cache
def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        autoescape=lambda name: bool(name and name.endswith((".html.j2", ".svg.j2"))),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["numeral"] = chinese_numeral
    return env


def _page_context(doc: dict, digest: str) -> dict[str, Any]:
    return {
        "doc": doc,
        "content_hash": digest,
        "short_hash": digest[:SHORT_HASH],
        "figure_columns": _figure_columns(len(doc["key_figures"])),
        "chart": Markup(trend_svg(doc["trend"], *CHART_SIZE)),
        "tables": [_table(t) for t in [*doc["sections"], *doc["extra_sections"]]],
        "changes": _by_subject(doc["changes"]),
    }


def _figure_columns(count: int) -> int:
    """Boxes per row: one row up to six figures, else two even rows."""
    return max(1, count if count <= 6 else math.ceil(count / 2))


def _table(table: dict) -> dict[str, Any]:
    marks = table.get("highlight", {})
    rows = [{"cells": row, "mark": marks.get(str(i), "")} for i, row in enumerate(table["rows"])]
    return {
        "title": table["title"],
        "note": table.get("note", ""),
        "columns": table["columns"],
        "rows": rows,
        "marks": sorted(set(marks.values()), key=MARKS.index),
        "keep_together": len(rows) <= KEEP_TOGETHER,
    }


def _by_subject(changes: list[dict]) -> list[dict[str, Any]]:
    """Consecutive changes of one subject as one group (the subject is printed once)."""
    groups: list[dict[str, Any]] = []
    for change in changes:
        if not groups or groups[-1]["subject"] != change["subject"]:
            groups.append({"subject": change["subject"], "items": []})
        groups[-1]["items"].append(change)
    return groups


def chinese_numeral(n: int) -> str:
    """一 … 九十九, for numbered headings (一、二、…)."""
    digits = "零一二三四五六七八九"
    if not 0 < n < 100:
        raise ValueError(f"no heading numeral for {n}")
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else digits[tens] + "十")
    return head + (digits[ones] if ones else "")


# --- the chart --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Frame:
    """The plot area inside the SVG, and the value → position mapping."""

    left: float
    right: float
    top: float
    bottom: float

    def y(self, value: float) -> float:
        return round(self.bottom - value / 100 * (self.bottom - self.top), 1)

    def x(self, index: int, count: int) -> float:
        step = (self.right - self.left) / count
        return round(self.left + step * (index + 0.5), 1)


def _chart(trend: dict, width: int, height: int) -> dict[str, Any]:
    frame = _Frame(left=46, right=width - 12, top=26, bottom=height - 30)
    points = [_point(p, i, len(trend["points"]), frame) for i, p in enumerate(trend["points"])]
    ticks = [{"y": frame.y(v), "label": f"{v}{trend['unit']}"} for v in Y_TICKS]
    return {
        "width": width,
        "height": height,
        "title": trend["title"],
        "frame": frame,
        "ticks": ticks,
        "points": points,
        "runs": _runs(points),
    }


def _point(point: dict, index: int, count: int, frame: _Frame) -> dict[str, Any]:
    value = point["value"]
    return {
        "x": frame.x(index, count),
        "y": None if value is None else frame.y(value),
        "label": point["label"],
        "text": "无数据" if value is None else f"{value:.2f}",
    }


def _runs(points: list[dict[str, Any]]) -> list[str]:
    """Polyline point lists for each stretch of consecutive months with data (a gap breaks the line)."""
    runs: list[list[str]] = [[]]
    for point in points:
        if point["y"] is None:
            runs.append([])
        else:
            runs[-1].append(f"{point['x']},{point['y']}")
    return [" ".join(run) for run in runs if len(run) > 1]


# --- the CSV ----------------------------------------------------------------------------------


def _csv(doc: dict, digest: str) -> str:
    """Each table as its own block (a header line, its rows), a blank line between blocks."""
    out = io.StringIO()
    writer = csv.writer(out)
    for number, (header, rows) in enumerate(_csv_blocks(doc, digest)):
        if number:
            writer.writerow([])
        writer.writerows([_cell(c) for c in row] for row in [header, *rows])
    return "\ufeff" + out.getvalue()


def _csv_blocks(doc: dict, digest: str) -> list[tuple[list[str], list[list[str]]]]:
    until = doc["objection_until"] or ""
    head = [doc["title"], doc["period_label"], f"第{doc['version']}版", doc["published_at"], until, digest]
    blocks = [(["标题", "期间", "版本", "发布时间", "公示期至", "校验码"], [head])]
    if doc.get("watermark"):
        blocks.insert(0, (["说明"], [[doc["watermark"]]]))
    for table in [*doc["sections"], *doc["extra_sections"]]:
        blocks.append((["栏目", *table["columns"]], [[table["title"], *row] for row in table["rows"]]))
    figures = [[f["label"], f["value"], f["detail"]] for f in doc["key_figures"]]
    blocks.append((["关键指标", "数值", "说明"], figures))
    honours = [[board, e["group"], e["name"], e["score"], e["grade"]] for board, e in _boards(doc)]
    blocks.append((["榜单", "类别", "名称", "得分", "等级"], honours))
    if doc["changes"]:
        changes = [[f"第{doc['version']}版", c["subject"], c["what"], c["before"], c["after"]] for c in doc["changes"]]
        blocks.append((["更正", "对象", "项目", "原值", "新值"], changes))
    return blocks


def _boards(doc: dict) -> list[tuple[str, dict]]:
    return [("红榜", e) for e in doc["red_list"]] + [("黑榜", e) for e in doc["black_list"]]


def _cell(text: str) -> str:
    """A cell a spreadsheet shows as text: a leading ``=``, ``+``, ``-`` or ``@`` (not a number) gets a ``'``."""
    if text.startswith(FORMULA_START) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text.rstrip("%"))
    except ValueError:
        return False
    return True
