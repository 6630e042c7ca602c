"""The Celery app: worker settings that survive crashes, the beat schedule, no app on import."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from celery.schedules import crontab
from pydantic import ValidationError

from config.settings import Settings
from tasks.factory import create_app
from tasks.sla import BUCKET, buckets

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(tmp_path):
    return create_app(Settings(home=tmp_path, broker_url="redis://127.0.0.1:6379/0"))


def test_worker_settings_survive_crashes(app):
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit
    assert conf.task_serializer == "json" and list(conf.accept_content) == ["json"]
    assert conf.worker_soft_shutdown_timeout > 0
    assert conf.broker_connection_max_retries is None  # keep trying while Redis is away


def test_the_beat_schedule_and_its_time_zone(app):
    schedule = app.conf.beat_schedule
    assert app.conf.timezone == "Asia/Shanghai"
    assert schedule["sla-sweep"]["task"] == "gridflow.sla.sweep"
    assert schedule["sla-sweep"]["schedule"].run_every == timedelta(seconds=2)
    monthly = schedule["monthly-scoring"]
    assert monthly["kwargs"] == {"job": "monthly_scoring"}
    assert monthly["schedule"] == crontab(minute=0, hour=1, day_of_month=1)
    quarterly = schedule["quarterly-publication"]["schedule"]
    assert quarterly.month_of_year == {1, 4, 7, 10}
    assert set(app.tasks) >= {"gridflow.sla.sweep", "gridflow.sla.fire", "gridflow.notices.dispatch"}


def test_embedded_default_uses_the_sqlite_broker(tmp_path):
    app = create_app(Settings(home=tmp_path))
    assert app.conf.broker_url == f"sqlite:///{tmp_path / 'broker.db'}"
    assert app.conf.broker_transport == "tasks.broker:Transport"
    assert app.conf.broker_transport_options == {"polling_interval": 0.2}


def test_redbeat_is_a_setting(tmp_path):
    app = create_app(Settings(home=tmp_path, broker_url="redis://127.0.0.1:6379/3", beat_scheduler="redbeat"))
    assert app.conf.beat_scheduler == "redbeat.RedBeatScheduler"
    assert app.conf.redbeat_redis_url == "redis://127.0.0.1:6379/3"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"visibility_timeout_s": 300, "task_time_limit_s": 300}, "visibility_timeout_s"),
        ({"beat_scheduler": "redbeat"}, "needs Redis"),
        ({"beat_scheduler": "cron"}, "beat_scheduler"),
        ({"sweep_interval_s": 0}, "sweep_interval_s"),
        ({"precise_horizon_s": 61}, "precise_horizon_s"),
    ],
)
def test_bad_runtime_settings_are_refused(tmp_path, kwargs, message):
    with pytest.raises(ValidationError, match=message):
        Settings(home=tmp_path, **kwargs)


def test_importing_tasks_creates_no_app():
    code = "import tasks, tasks.factory, tasks.sla; assert tasks._app is None; print(type(tasks.app).__name__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Celery"  # `celery -A tasks` asks for tasks.app, which builds it then


def test_buckets_group_timers_close_in_time_with_the_last_ones_eta():
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    claimed = [(1, t0), (2, t0 + BUCKET / 2), (3, t0 + BUCKET), (4, t0 + BUCKET * 3)]
    assert buckets(claimed) == [([1, 2, 3], t0 + BUCKET), ([4], t0 + BUCKET * 3)]
    assert buckets([]) == []
    many = [(i, t0) for i in range(1200)]
    assert [len(ids) for ids, _ in buckets(many)] == [500, 500, 200]
