"""Typed settings: one object, read only at the edges (CLI, tasks, API).

Sources, strongest first: ``GRIDFLOW_*`` environment variables, the YAML file
named by ``GRIDFLOW_CONFIG_FILE`` (default ``config/gridflow.yaml`` if present),
then the defaults below. The engine never reads settings; callers pass values in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG_FILE = ROOT / "config" / "gridflow.yaml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDFLOW_", extra="forbid")

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
