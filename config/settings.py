"""Typed settings: one object, read only at the edges (CLI, tasks, API).

Sources, strongest first: ``GRIDFLOW_*`` environment variables, the YAML file
named by ``GRIDFLOW_CONFIG_FILE`` (default ``config/gridflow.yaml`` if present),
then the defaults below. The engine never reads settings; callers pass values in.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG_FILE = ROOT / "config" / "gridflow.yaml"

# scheme://user:password@  and  ?password=…  in a URL (SQLAlchemy, redis-py and kombu take both forms)
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@?#]*):[^@]*@")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&](?:password|passwd|pwd)=)[^&#]*", re.IGNORECASE)
_NETLOC = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://(?P<netloc>[^/?#]*)")
URL_SETTINGS = {  # the URL settings whose port is checked, and an example of each
    "database_url": "postgresql://USER:PASSWORD@HOST:5432/DB (or empty for the embedded SQLite database)",
    "broker_url": "redis://:PASSWORD@HOST:6379/0 (or empty for the embedded broker)",
    "redis_url": "redis://:PASSWORD@HOST:6379/1 (or empty for the broker's Redis)",
}


def mask_url_password(url: str) -> str:
    """The URL with its password shown as ``***`` (in ``user:password@`` and in ``?password=``)."""
    masked = _URL_PASSWORD.sub(lambda m: f"{m['head']}:***@", url)
    return _QUERY_PASSWORD.sub(lambda m: f"{m['head']}***", masked)


def _port_problem(url: str) -> str | None:
    """What is wrong with the port of ``url`` (None: no port, or a good one), read as SQLAlchemy and
    redis-py read it: after the host (``[v6]`` or a name) and a colon, before the path."""
    found = _NETLOC.match(url)
    if not found:
        return None
    host_port = found["netloc"].rpartition("@")[2]
    if host_port.startswith("["):
        port = host_port.partition("]")[2].removeprefix(":")
    else:
        port = host_port.partition(":")[2]
    if not port:
        return None
    if not (port.isascii() and port.isdigit()):
        return f"port {port!r} is not a number"
    if not 1 <= int(port) <= 65535:
        return f"port {int(port)} is out of range"
    return None


class Settings(BaseSettings):
    # hide_input_in_errors: a refused value (a URL with its password) is not echoed by pydantic's errors
    model_config = SettingsConfigDict(env_prefix="GRIDFLOW_", extra="forbid", hide_input_in_errors=True)

    home: Path = Field(ROOT / "var", description="Where the embedded database, logs and outbox files live.")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite at <home>/gridflow.db.")
    broker_url: str = Field(
        "", description="Celery broker; empty means the embedded one: SQLite at <home>/broker.db (sqla+sqlite://)."
    )
    redis_url: str = Field("", description="Redis for RedBeat's lock and schedule; empty means the broker's Redis.")
    beat_scheduler: Literal["default", "redbeat"] = Field(
        "default", description="default: one beat, schedule state in <home>; redbeat: several beats, one lock."
    )
    timezone: str = Field("Asia/Shanghai", description="Local time zone for display and business time.")
    org_file: Path = Field(ROOT / "config" / "org" / "shengli.yaml", description="Org chart loaded by init.")
    workflow_files: list[Path] = Field(
        default_factory=lambda: [ROOT / "workflows" / "grid_case.yaml"],
        description="Workflows published by init.",
    )
    default_workflow: str = Field("grid_case", description="Workflow a new case uses unless told otherwise.")
    calendar_file: Path = Field(ROOT / "config" / "calendars.yaml", description="Business calendars and overrides.")
    sweep_batch: int = Field(500, ge=1, le=10_000, description="Timers claimed per sweep batch.")
    sweep_lease_s: int = Field(120, ge=2, le=3600, description="Seconds a claimed timer stays ours.")
    # -- runtime (Celery worker and beat) --
    sweep_interval_s: float = Field(2.0, ge=0.2, le=60, description="Beat sends an SLA sweep this often.")
    precise_horizon_s: float = Field(
        5.0, ge=0, le=60, description="The sweep hands timers due this soon to Celery with a countdown (0: off)."
    )
    dispatch_interval_s: float = Field(2.0, ge=0.2, le=300, description="Beat sends an outbox dispatch this often.")
    dispatch_batch: int = Field(200, ge=1, le=10_000, description="Notices claimed per dispatch batch.")
    jobs_catch_up_s: float = Field(
        600, ge=1, le=86_400, description="How often beat looks for period jobs that are due and not done."
    )
    jobs_catch_up_periods: int = Field(
        3, ge=1, le=120, description="How many past periods a job catches up on (months for monthly scoring)."
    )
    task_budget_s: float = Field(
        10, ge=1, le=600, description="A sweep or dispatch stops taking new batches after this; the next tick goes on."
    )
    dispatch_budget_s: float = Field(
        2, ge=0.5, le=600, description="A dispatch stops taking batches after this, so firing timers gets its turn."
    )
    task_time_limit_s: int = Field(300, ge=10, le=86_400, description="Hard limit of one task.")
    visibility_timeout_s: int = Field(
        3600, ge=60, description="Redis: an unacknowledged task is redelivered after this; above the longest task."
    )
    worker_concurrency: int = Field(2, ge=1, le=64, description="Task slots of `gridflow up` / `gridflow worker`.")
    soft_shutdown_s: float = Field(10, ge=0, le=600, description="On stop, running tasks get this long to finish.")
    notifications_file: Path | None = Field(
        None,
        description="Channels and rules (see config/notifications.yaml.sample); empty: config/notifications.yaml "
        "if it exists, else the console channel alone.",
    )
    notices_file: Path | None = Field(None, description="Console channel's file; empty means <home>/notices.log.")
    scoring_file: Path = Field(
        ROOT / "config" / "scoring.yaml", description="Scoring rules: weights, grades, lists (月评比, 季公示)."
    )
    publish_dir: Path | None = Field(
        None, description="Where postings are written (HTML, CSV, JSON); empty means <home>/postings."
    )
    public_url: str = Field(
        "", description="Base URL under which publish_dir is served; notices then carry a link to the posting."
    )
    points_file: Path = Field(
        ROOT / "config" / "points.yaml", description="Household points rules (户档积分): rules, limits, stars, lists."
    )
    api_host: str = Field("127.0.0.1", description="Where `gridflow up` and `gridflow serve` listen for HTTP.")
    api_port: int = Field(8000, ge=0, le=65535, description="The HTTP port (0: `gridflow up` serves no API).")
    api_workers: int = Field(1, ge=1, le=64, description="`gridflow serve`: uvicorn worker processes.")
    clock_offset_s: float = Field(
        0, description="Drills and tests: the runtime's clock runs this many seconds ahead of the real one."
    )
    demo: bool = Field(
        True,
        description="`gridflow demo` (and `make run`) may load the sample township's last quarter as demo data "
        "(演示数据); set false on a real installation.",
    )
    archive_show_full: bool = Field(
        False,
        description="`gridflow archive show --full` may print whole ID numbers and phones (户档); "
        "otherwise they are always masked.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name like Asia/Shanghai") from exc
        return value

    @field_validator("database_url", "broker_url", "redis_url")
    @classmethod
    def _port_in_range(cls, value: str, info: Any) -> str:
        problem = _port_problem(value)
        if problem:
            name = info.field_name
            raise ValueError(
                f"GRIDFLOW_{name.upper()} {mask_url_password(value)}: {problem}; write the port as a "
                f"number from 1 to 65535, like {URL_SETTINGS[name]}"
            )
        return value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """What ``repr()`` and ``str()`` show: every field, with passwords in URLs masked."""
        for name, value in super().__repr_args__():
            yield name, mask_url_password(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _timeouts_fit(self) -> Settings:
        if self.visibility_timeout_s <= self.task_time_limit_s:
            raise ValueError(
                f"visibility_timeout_s ({self.visibility_timeout_s}) must be above task_time_limit_s "
                f"({self.task_time_limit_s}), or Redis hands a running task to a second worker"
            )
        if self.task_budget_s * 3 > self.task_time_limit_s:
            raise ValueError(
                f"task_budget_s ({self.task_budget_s:g}) must be well under task_time_limit_s "
                f"({self.task_time_limit_s}): at most a third of it"
            )
        if self.beat_scheduler == "redbeat" and not self.redbeat_url:
            raise ValueError("beat_scheduler=redbeat needs Redis: set GRIDFLOW_REDIS_URL or a redis:// broker_url")
        return self

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'gridflow.db'}"

    @property
    def broker(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{self.home / 'broker.db'}"

    @property
    def embedded_broker(self) -> bool:
        return self.broker.startswith("sqla+")

    @property
    def redbeat_url(self) -> str:
        if self.redis_url:
            return self.redis_url
        return self.broker_url if self.broker_url.startswith(("redis://", "rediss://")) else ""

    @property
    def notifications_path(self) -> Path | None:
        if self.notifications_file is not None:
            return self.notifications_file
        default = ROOT / "config" / "notifications.yaml"
        return default if default.exists() else None

    @property
    def postings_path(self) -> Path:
        return self.publish_dir or self.home / "postings"

    @property
    def notices_path(self) -> Path:
        return self.notices_file or self.home / "notices.log"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_file = Path(os.environ.get("GRIDFLOW_CONFIG_FILE", DEFAULT_CONFIG_FILE))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if yaml_file.exists():
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file))
        return tuple(sources)
