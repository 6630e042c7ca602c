"""Typed settings: one object, read only at the edges (CLI, tasks, API).

Sources, strongest first: ``GRIDFLOW_*`` environment variables, the YAML file
named by ``GRIDFLOW_CONFIG_FILE`` (default ``config/gridflow.yaml`` if present),
then the defaults below. The engine never reads settings; callers pass values in.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator
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
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Broker for the production runtime.")
    timezone: str = Field("Asia/Shanghai", description="Local time zone for display and business time.")
    org_file: Path = Field(ROOT / "config" / "org" / "shengli.yaml", description="Org chart loaded by init.")
    workflow_files: list[Path] = Field(
        default_factory=lambda: [ROOT / "workflows" / "grid_case.yaml"],
        description="Workflows published by init.",
    )
    default_workflow: str = Field("grid_case", description="Workflow a new case uses unless told otherwise.")
    calendar_file: Path = Field(ROOT / "config" / "calendars.yaml", description="Business calendars and overrides.")
    sweep_batch: int = Field(500, ge=1, le=10_000, description="Timers claimed per sweep batch.")
    sweep_lease_s: int = Field(120, ge=5, le=3600, description="Seconds a claimed timer stays ours.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name like Asia/Shanghai") from exc
        return value

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'gridflow.db'}"

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
