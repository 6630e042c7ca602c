"""Notice text from templates in a Jinja2 sandbox (``StrictUndefined``: a missing value is an error,
never an empty hole in a text message).

One set of files per event under ``templates/<locale>/`` (an override directory, if configured,
is searched first):

=====================  ========================================================
``<event>.txt``        plain text: the console, the e-mail's text part
``<event>.sms.txt``    the SMS as the person reads it (70 characters make one part)
``<event>.subject.txt`` the e-mail subject (one line)
``<event>.html``       the e-mail's HTML part (autoescaped)
``<event>.md``         WeCom group robot markdown
=====================  ========================================================
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, TemplateNotFound

from engine.sandbox import BudgetedEnvironment, Limits, TemplateRefused, TrustedEnvironment

TEMPLATES = Path(__file__).resolve().parent / "templates"
MARKS = {"yellow_card": "黄牌", "red_card": "红牌", "supervision_order": "督办"}
PARTS = {"text": "txt", "sms": "sms.txt", "subject": "subject.txt", "html": "html", "markdown": "md"}
# The most a part may be, in characters, as its channel can carry it: an SMS of at most 5 billed parts
# (67 characters each once split), an e-mail subject on one line, WeCom's 4,096 bytes of markdown
# (checked in UTF-8 bytes after the render), a plain text and an HTML part of reasonable size.
CAPS = {"text": 20_000, "sms": 5 * 67, "subject": 200, "html": 100_000, "markdown": 4_096}
MARKDOWN_BYTES = 4_096


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    sms: str
    html: str
    markdown: str
    context: dict[str, Any]


class Renderer:
    def __init__(
        self,
        tz: ZoneInfo,
        locale: str = "zh-CN",
        override: Path | None = None,
        directory: Path = TEMPLATES,
        limits: Limits | None = None,
    ):
        self.tz = tz
        self._events: frozenset[str] | None = None
        self.override = override / locale if override else None
        search = [FileSystemLoader(self.override)] if self.override else []
        options: dict[str, Any] = {
            "undefined": StrictUndefined,
            "autoescape": lambda name: bool(name and name.endswith(".html")),
            "keep_trailing_newline": False,
            "trim_blocks": True,
            "lstrip_blocks": True,
        }
        # An override is the township's input: it renders in the sandbox with its budget (and an edit is
        # picked up at the next render). A built-in template is the team's code: rendered without the sandbox.
        self.env = BudgetedEnvironment(
            loader=ChoiceLoader([*search, FileSystemLoader(directory / locale)]),
            **options,
            **({"limits": limits} if limits else {}),
        )
        self.builtin = TrustedEnvironment(loader=FileSystemLoader(directory / locale), **options)
        self.overridden = frozenset(
            path.name for path in (self.override.iterdir() if self.override and self.override.is_dir() else ())
        )

    def check_overrides(self) -> list[str]:
        """The override templates, each checked at load (size, syntax); raises TemplateRefused for the first bad."""
        if self.override is None or not self.override.is_dir():
            return []
        names = []
        for path in sorted(self.override.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                size = path.stat().st_size
                if size > self.env.limits.source_bytes:
                    raise TemplateRefused(
                        f"template {path.name} is {size:,} bytes (at most {self.env.limits.source_bytes:,})"
                    )
                self.env.check_source(path.name, path.read_text(encoding="utf-8", errors="replace"))
                names.append(path.name)
        return names

    def events(self) -> list[str]:
        """Every event that has templates."""
        names = self.env.list_templates(filter_func=lambda n: n.endswith(".subject.txt"))
        return sorted(n.removesuffix(".subject.txt") for n in names)

    def has(self, event: str) -> bool:
        if self._events is None:
            self._events = frozenset(self.events())
        return event in self._events

    def render(self, event: str, params: dict[str, Any], name: str, parts: Collection[str] | None = None) -> Rendered:
        """The parts of one event's notice for one person: every part, or only ``parts`` (the rest are "":
        a channel sends a few of them, and each costs a template's render)."""
        context = self.context(params, name)
        made = {part: self._one(event, suffix, context) if parts is None or part in parts else ""
                for part, suffix in PARTS.items()}  # fmt: skip
        return Rendered(context=context, **made)

    def render_text(self, event: str, params: dict[str, Any], name: str) -> str:
        return self._one(event, "txt", self.context(params, name))

    def _one(self, event: str, suffix: str, context: dict[str, Any]) -> str:
        name = f"{event}.{suffix}"
        part = next(p for p, s in PARTS.items() if s == suffix)
        try:
            text = self.part(name, context, CAPS[part] * 4).strip()  # surrounding blanks are stripped
        except TemplateNotFound:
            raise LookupError(f"no notice template {name} (notifications/templates/zh-CN/)") from None
        if len(text) > CAPS[part]:
            raise TemplateRefused(
                f"template {name} makes {len(text):,} characters; a {part} part carries {CAPS[part]:,}"
            )
        if part == "markdown" and len(text.encode()) > MARKDOWN_BYTES:
            raise TemplateRefused(
                f"template {name} makes {len(text.encode()):,} bytes; WeCom carries {MARKDOWN_BYTES:,}"
            )
        return text

    def part(self, name: str, context: dict[str, Any], cap: int) -> str:
        """Template ``name`` rendered: the township's override in the sandbox, else the built-in one."""
        env = self.env if name in self.overridden else self.builtin
        return env.render(name, context, cap=cap)

    def context(self, params: dict[str, Any], name: str) -> dict[str, Any]:
        due = params.get("due_at")
        times = {  # reported_at → reported_local, in the township's time
            f"{key[:-3]}_local": self.local(value)
            for key, value in params.items()
            if key.endswith("_at") and key != "due_at" and isinstance(value, str) and value[:4].isdigit()
        }
        return {
            **times,
            "share": None,
            "limit": "",
            "level": 0,
            "mark": None,
            **params,
            "name": name,
            "due_local": self.local(due) if due else "—",
            "mark_label": MARKS.get(params.get("mark") or "", ""),
        }

    def local(self, iso: str) -> str:
        return datetime.fromisoformat(iso).astimezone(self.tz).strftime("%Y-%m-%d %H:%M")
