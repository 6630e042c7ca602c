"""Settings never show a password, and a URL with a bad port is refused with a clear message (issue 19).

``repr(Settings())`` and ``str(...)`` mask the password of every URL setting (the database, the broker,
Redis); the values themselves are unchanged. A port that is not a number, or not from 1 to 65535, in
``GRIDFLOW_DATABASE_URL`` (or the broker's or Redis' URL) stops every command with the settings' exit code
(7) and a message that names the setting, says what is wrong with the password masked, and what to write.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from config.settings import Settings
from gridflow.cli import app

DB_PASSWORD, REDIS_PASSWORD, BROKER_PASSWORD = "Db-s3cret-pw", "Redis-s3cret-pw", "Broker-s3cret-pw"


def test_repr_and_str_mask_every_password(tmp_path):
    settings = Settings(
        home=tmp_path,
        database_url=f"postgresql+psycopg://gridflow:{DB_PASSWORD}@127.0.0.1:5432/gridflow",
        broker_url=f"redis://:{BROKER_PASSWORD}@127.0.0.1:6379/0",
        redis_url=f"redis://beat:{REDIS_PASSWORD}@127.0.0.1:6379/1?password={REDIS_PASSWORD}",
    )
    for text in (repr(settings), str(settings)):
        for secret in (DB_PASSWORD, REDIS_PASSWORD, BROKER_PASSWORD):
            assert secret not in text
        assert "postgresql+psycopg://gridflow:***@127.0.0.1:5432/gridflow" in text
        assert "redis://:***@127.0.0.1:6379/0" in text
        assert "redis://beat:***@127.0.0.1:6379/1?password=***" in text
        assert "sweep_batch=500" in text  # the rest as before
    # what the code reads is the real value
    assert settings.database_url == f"postgresql+psycopg://gridflow:{DB_PASSWORD}@127.0.0.1:5432/gridflow"
    assert settings.db_url == settings.database_url
    assert settings.redbeat_url.endswith(f"?password={REDIS_PASSWORD}")
    assert settings.model_dump()["broker_url"] == f"redis://:{BROKER_PASSWORD}@127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:p%40ss@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("sqlite:////var/lib/gridflow/gridflow.db", "sqlite:////var/lib/gridflow/gridflow.db"),
        ("rediss://h:6380/0?ssl_cert_reqs=none&password=pw", "rediss://h:6380/0?ssl_cert_reqs=none&password=***"),
        ("", ""),
    ],
)
def test_mask_url_password(url, shown):
    from config.settings import mask_url_password

    assert mask_url_password(url) == shown


@pytest.mark.parametrize(
    ("port", "problem"),
    [
        ("99999x", "port '99999x' is not a number"),
        ("70000", "port 70000 is out of range"),
        ("0", "port 0 is out of range"),
    ],
)
def test_a_bad_port_in_the_database_url_is_refused_with_a_clear_message(tmp_path, port, problem):
    url = f"postgresql+psycopg://u:{DB_PASSWORD}@127.0.0.1:{port}/db"
    with pytest.raises(ValidationError) as caught:
        Settings(home=tmp_path, database_url=url)
    text = str(caught.value)
    assert DB_PASSWORD not in text  # neither in the message nor as pydantic's input_value
    (error,) = caught.value.errors()
    assert error["loc"] == ("database_url",)
    message = error["msg"]
    assert "GRIDFLOW_DATABASE_URL" in message and problem in message
    assert f"postgresql+psycopg://u:***@127.0.0.1:{port}/db" in message
    assert "1 to 65535" in message and "postgresql://USER:PASSWORD@HOST:5432/DB" in message


@pytest.mark.parametrize("field", ["broker_url", "redis_url"])
def test_a_bad_port_in_the_broker_or_redis_url_is_refused_too(tmp_path, field):
    with pytest.raises(ValidationError) as caught:
        Settings(home=tmp_path, **{field: f"redis://:{REDIS_PASSWORD}@127.0.0.1:637900/0"})
    (error,) = caught.value.errors()
    assert error["loc"] == (field,)
    assert f"GRIDFLOW_{field.upper()}" in error["msg"] and "port 637900 is out of range" in error["msg"]
    assert REDIS_PASSWORD not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://u:p@127.0.0.1:5432/db",
        "postgresql://u@[::1]:65535/db",
        "postgresql://u@127.0.0.1/db",
        "sqlite:////tmp/x.db",
        "sqlite:///relative.db",
        "",
    ],
)
def test_good_database_urls_pass(tmp_path, url):
    assert Settings(home=tmp_path, database_url=url).database_url == url


def test_the_cli_prints_a_bad_port_as_a_settings_error(tmp_path):
    env = {
        "GRIDFLOW_HOME": str(tmp_path / "home"),
        "GRIDFLOW_CONFIG_FILE": str(tmp_path / "absent.yaml"),
        "GRIDFLOW_DATABASE_URL": f"postgresql+psycopg://u:{DB_PASSWORD}@127.0.0.1:99999x/db",
        "COLUMNS": "400",
        "NO_COLOR": "1",
    }
    done = CliRunner().invoke(app, ["case", "list"], env=env)
    assert done.exit_code == 7, done.output
    assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
    assert "Traceback" not in done.output and "ValueError" not in done.output
    assert DB_PASSWORD not in done.output
    assert "error: bad settings" in done.output
    assert "GRIDFLOW_DATABASE_URL" in done.output and "port '99999x' is not a number" in done.output
    assert "postgresql+psycopg://u:***@127.0.0.1:99999x/db" in done.output
