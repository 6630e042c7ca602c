"""The services CI promises are really there (a missing one fails under CI=true, never skips)."""

from __future__ import annotations

import pytest
import redis
from sqlalchemy import text

from tests import support


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(support.REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        support.service_unavailable("Redis", exc)
    yield client
    client.close()


def test_redis_answers_on_loopback(redis_client):
    key = "gridflow:test:ping"
    redis_client.set(key, "网格", ex=10)
    assert redis_client.get(key).decode() == "网格"
    redis_client.delete(key)


def test_postgres_answers_on_loopback(pg_server):
    with pg_server.admin.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1


def test_a_missing_service_fails_under_ci(monkeypatch):
    monkeypatch.setattr(support, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="CI needs it"):
        support.service_unavailable("Redis", ConnectionRefusedError("refused"))
    monkeypatch.setattr(support, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception):
        support.service_unavailable("Redis", ConnectionRefusedError("refused"))
