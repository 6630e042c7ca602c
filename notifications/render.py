"""Notice text from templates in a Jinja2 sandbox (``StrictUndefined``: a missing value is an error,
never an empty hole in a text message). One file per template under ``templates/<locale>/``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import FileSystemLoader, StrictUndefined, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment

TEMPLATES = Path(__file__).resolve().parent / "templates"
MARKS = {"yellow_card": "黄牌", "red_card": "红牌", "supervision_order": "督办"}


class Renderer:
    def __init__(self, tz: ZoneInfo, locale: str = "zh-CN", directory: Path = TEMPLATES):
        self.tz = tz
        self.env = SandboxedEnvironment(
            loader=FileSystemLoader(directory / locale),
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
        )

    def render(self, template: str, params: dict[str, Any], name: str) -> str:
        try:
            tmpl = self.env.get_template(f"{template}.txt")
        except TemplateNotFound:
            raise LookupError(f"no notice template {template!r} under {self.env.loader.searchpath}") from None  # type: ignore[union-attr]
        return tmpl.render(**self._context(params, name)).strip()

    def _context(self, params: dict[str, Any], name: str) -> dict[str, Any]:
        due = params.get("due_at")
        due_local = datetime.fromisoformat(due).astimezone(self.tz).strftime("%Y-%m-%d %H:%M") if due else "—"
        return {
            "share": None,
            "limit": "",
            "level": 0,
            **params,
            "name": name,
            "due_local": due_local,
            "mark_label": MARKS.get(params.get("mark") or "", ""),
        }
