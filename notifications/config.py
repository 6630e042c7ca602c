"""Notification settings from ``config/notifications.yaml``: channels, preference order, quiet hours,
digests, caps and retries. Loaded with the safe YAML loader; every problem is reported at once
with ``file:line:column``; nothing is sent while the file is wrong.

Secrets never live in the file: a value ``${NAME}`` is read from the environment variable NAME
(a missing one is a problem). Without a file, gridflow uses the embedded default: the console
channel alone, no quiet hours.
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Any

from engine.durations import UNITS, parse_duration
from engine.errors import ConfigError, SourceError
from engine.yamlsrc import Source, load_file
from notifications.channels.base import Channel, ChannelConfigError

KINDS = {
    "console": "notifications.channels.console",
    "aliyun_sms": "notifications.channels.sms_aliyun",
    "tencent_sms": "notifications.channels.sms_tencent",
    "webhook_sms": "notifications.channels.sms_webhook",
    "email": "notifications.channels.email",
    "wecom": "notifications.channels.wecom",
    "memory": "notifications.channels.memory",
}
_ENV = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")
_TOP = {
    "channels",
    "order",
    "preferences",
    "quiet_hours",
    "urgent_events",
    "urgent_categories",
    "digest",
    "hourly_cap",
    "retry",
    "templates",
}


class NotificationsInvalid(SourceError):
    """config/notifications.yaml has problems."""

    what = "notifications file"


@dataclass(frozen=True)
class Retry:
    max_attempts: int = 6  # per channel, then the next channel
    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class NoticeConfig:
    channels: dict[str, Channel]
    order: tuple[str, ...]  # preference, first that can reach the person
    preferences: dict[str, tuple[str, ...]] = field(default_factory=dict)  # a person's own order
    quiet: tuple[time, time] | None = None  # (from, to), may wrap midnight
    urgent_events: frozenset[str] = frozenset()
    urgent_categories: frozenset[str] = frozenset()  # e.g. geological_hazard: at any hour, never folded
    digest_window: timedelta = timedelta(minutes=10)
    hourly_cap: int = 6
    retry: Retry = field(default_factory=Retry)
    templates: Path | None = None  # an override directory searched before the built-in templates
    source: str = "built-in default"


def default_config(notices_path: Path) -> NoticeConfig:
    from notifications.channels.console import ConsoleChannel

    console = ConsoleChannel("console", notices_path)
    return NoticeConfig({"console": console}, ("console",))


def load(path: Path, notices_path: Path, env: dict[str, str] | None = None) -> NoticeConfig:
    """The file's config, or every problem in it at once."""
    src = load_file(path)
    data = src.data if isinstance(src.data, dict) else None
    if data is None and not src.problems:
        src.problem((), "expected a mapping with channels: and order:")
    config = _Parser(src, env if env is not None else dict(os.environ), notices_path, path).parse(data or {})
    if src.problems:
        raise NotificationsInvalid(src.problems)
    assert config is not None
    return config


class _Parser:
    def __init__(self, src: Source, env: dict[str, str], notices_path: Path, path: Path):
        self.src, self.env, self.notices_path, self.path = src, env, notices_path, path

    def parse(self, data: dict[str, Any]) -> NoticeConfig | None:
        for key in data:
            if key not in _TOP:
                self.src.problem((key,), f"unknown key {key!r}; keys are: {', '.join(sorted(_TOP))}", at_key=True)
        channels = self._channels(data.get("channels"))
        order = self._order(data.get("order"), channels)
        quiet = self._quiet(data.get("quiet_hours"))
        digest = data.get("digest") or {}
        retry = data.get("retry") or {}
        config = NoticeConfig(
            channels=channels,
            order=order,
            preferences=self._preferences(data.get("preferences"), channels),
            quiet=quiet,
            urgent_events=frozenset(self._names(data.get("urgent_events"), ("urgent_events",))),
            urgent_categories=frozenset(self._names(data.get("urgent_categories"), ("urgent_categories",))),
            digest_window=self._duration(digest.get("window", "10m"), ("digest", "window")),
            hourly_cap=self._int(data.get("hourly_cap", 6), ("hourly_cap",), 1),
            retry=Retry(
                max_attempts=self._int(retry.get("max_attempts", 6), ("retry", "max_attempts"), 1),
                base=self._duration(retry.get("base", "30s"), ("retry", "base")),
                cap=self._duration(retry.get("cap", "1h"), ("retry", "cap")),
            ),
            templates=self._templates(data.get("templates")),
            source=str(self.path),
        )
        return config

    def _channels(self, raw: Any) -> dict[str, Channel]:
        if not isinstance(raw, dict) or not raw:
            self.src.problem(("channels",), "channels: needs at least one channel, e.g. console: {kind: console}")
            return {}
        built: dict[str, Channel] = {}
        for name, spec in raw.items():
            path = ("channels", name)
            if not isinstance(spec, dict) or "kind" not in spec:
                self.src.problem(path, f"channel {name!r} needs kind: one of {', '.join(KINDS)}")
                continue
            kind = spec["kind"]
            if kind not in KINDS:
                self.src.problem((*path, "kind"), f"unknown kind {kind!r}; kinds are: {', '.join(KINDS)}")
                continue
            values = {k: self._expand(v, (*path, k)) for k, v in spec.items() if k != "kind"}
            if kind == "console":
                values.setdefault("path", str(self.notices_path))
            try:
                module = importlib.import_module(KINDS[kind])
                built[name] = module.from_config(name, values)
            except ChannelConfigError as exc:
                for problem in exc.problems:
                    self.src.problem(path, problem)
            except ModuleNotFoundError:
                self.src.problem((*path, "kind"), f"channel kind {kind!r} is not available in this gridflow")
        return built

    def _expand(self, value: Any, path: tuple) -> Any:
        if isinstance(value, dict):
            return {k: self._expand(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._expand(v, (*path, i)) for i, v in enumerate(value)]
        if not isinstance(value, str):
            return value

        def env(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.env:
                self.src.problem(path, f"environment variable {name} is not set (secrets come from the environment)")
                return ""
            return self.env[name]

        return _ENV.sub(env, value)

    def _order(self, raw: Any, channels: dict[str, Channel]) -> tuple[str, ...]:
        if raw is None:
            return tuple(channels)
        names = self._names(raw, ("order",))
        for i, name in enumerate(names):
            if name not in channels:
                self.src.problem(("order", i), f"unknown channel {name!r}; channels are: {', '.join(channels)}")
        return tuple(names)

    def _preferences(self, raw: Any, channels: dict[str, Channel]) -> dict[str, tuple[str, ...]]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.src.problem(("preferences",), "expected person ids with their channels, e.g. p-peng-li: [sms, email]")
            return {}
        out = {}
        for person, names in raw.items():
            listed = self._names(names, ("preferences", person))
            for i, name in enumerate(listed):
                if name not in channels:
                    self.src.problem(
                        ("preferences", person, i), f"unknown channel {name!r}; channels are: {', '.join(channels)}"
                    )
            out[person] = tuple(listed)
        return out

    def _names(self, raw: Any, path: tuple) -> list[str]:
        if raw is None:
            return []
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            self.src.problem(path, "expected a list of names")
            return []
        return list(raw)

    def _quiet(self, raw: Any) -> tuple[time, time] | None:
        if raw is None:
            return None
        try:
            start, end = (time.fromisoformat(part.strip()) for part in str(raw).split("-"))
        except ValueError:
            self.src.problem(("quiet_hours",), f"bad quiet hours {raw!r}: write them like 21:00-07:30")
            return None
        return start, end

    def _duration(self, raw: Any, path: tuple) -> timedelta:
        text = str(raw)
        if text.endswith("s") and text[:-1].isdigit():
            return timedelta(seconds=int(text[:-1]))
        try:
            d = parse_duration(text)
        except (ValueError, ConfigError):
            self.src.problem(path, f"bad duration {raw!r}: write it like 30s, 10m, 1h")
            return timedelta(0)
        return timedelta(**{UNITS[d.unit]: d.amount})

    def _int(self, raw: Any, path: tuple, minimum: int) -> int:
        if not isinstance(raw, int) or isinstance(raw, bool) or raw < minimum:
            self.src.problem(path, f"expected a whole number ≥ {minimum}, got {raw!r}")
            return minimum
        return raw

    def _templates(self, raw: Any) -> Path | None:
        if raw is None:
            return None
        path = Path(str(raw))
        if not path.is_absolute():
            path = self.path.parent / path
        if not path.is_dir():
            self.src.problem(("templates",), f"no template directory {path}")
        return path
