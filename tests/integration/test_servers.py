"""The throwaway servers of tests/servers.py stop, die and come back as fault tests need them to."""

from __future__ import annotations

import psycopg
import pytest
import redis
from sqlalchemy import create_engine, text

from tests.servers import PostgresInstance, RedisInstance, ServerUnavailable, port_is_open
from tests.support import IN_CI


def _unavailable(exc: ServerUnavailable) -> None:
    if IN_CI:
        pytest.fail(f"{exc}; CI needs it", pytrace=False)
    pytest.skip(str(exc))


@pytest.fixture
def redis_server(tmp_path_factory):
    server = RedisInstance(tmp_path_factory.mktemp("redis"))
    try:
        server.start()
    except ServerUnavailable as exc:
        _unavailable(exc)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory):
    server = PostgresInstance(tmp_path_factory.mktemp("postgres"))
    try:
        server.start()
    except ServerUnavailable as exc:
        server.cleanup()
        _unavailable(exc)
    yield server
    server.cleanup()


@pytest.fixture
def pg(pg_server):
    """The module's PostgreSQL instance, running."""
    pg_server.start()
    return pg_server


def _select_one(dsn: str) -> int:
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        return conn.execute("SELECT 1").fetchone()[0]


@pytest.mark.redis
def test_redis_stops_and_starts_on_the_same_port(redis_server):
    port = redis_server.port
    with redis_server.client() as client:
        client.set("k", "v")
        assert client.get("k") == b"v"

    redis_server.stop()
    assert not redis_server.running
    assert not port_is_open(port)
    with redis.Redis.from_url(redis_server.url(), socket_connect_timeout=1) as client:
        with pytest.raises(redis.ConnectionError):
            client.ping()

    redis_server.start()
    assert redis_server.port == port
    with redis.Redis.from_url(redis_server.url(3)) as client:
        assert client.ping()
    with redis_server.client() as client:
        assert client.get("k") is None  # no persistence: a restart starts empty


@pytest.mark.redis
def test_redis_kill_and_restart(redis_server):
    redis_server.kill()
    assert not redis_server.running
    assert not port_is_open(redis_server.port)
    redis_server.restart()
    with redis_server.client() as client:
        assert client.ping()


@pytest.mark.postgres
def test_postgres_database_and_query(pg):
    pg.create_database("faulty")
    assert _select_one(pg.dsn("faulty")) == 1
    engine = create_engine(pg.url("faulty"))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT current_database()")).scalar() == "faulty"
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_restart_takes_new_connections(pg):
    port = pg.port
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        pg.restart()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    assert pg.port == port
    assert _select_one(pg.dsn()) == 1


@pytest.mark.postgres
def test_postgres_stop_refuses_connections(pg):
    pg.stop()
    assert not pg.running
    assert not port_is_open(pg.port)
    with pytest.raises(psycopg.OperationalError):
        _select_one(pg.dsn())
    pg.start()
    assert _select_one(pg.dsn()) == 1


@pytest.mark.postgres
def test_postgres_kill_9_and_start_again(pg):
    pg.create_database("survivor")
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        pg.kill()
        assert not pg.running
        assert not port_is_open(pg.port)
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")

    pg.start()  # crash recovery
    assert _select_one(pg.dsn("survivor")) == 1  # committed before the crash, so still there
