"""What the bench smoke tests (``tests/integration/test_bench_*.py``) share: the admin URL a bench is given,
the throwaway databases on the server, and the names of those a bench made in this process.

Other runs may make ``gridflow_bench_*`` databases at the same time (pytest-xdist, people running
benches), so a test checks the databases its own run made, by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import text


def admin_url(pg_server: Any) -> str:
    return pg_server.admin.url.render_as_string(hide_password=False)


def bench_databases(pg_server: Any) -> set[str]:
    with pg_server.admin.connect() as conn:
        rows = conn.execute(text("SELECT datname FROM pg_database WHERE datname LIKE 'gridflow\\_bench\\_%'"))
        return {name for (name,) in rows}


def record_databases(monkeypatch: pytest.MonkeyPatch, bench: ModuleType) -> list[str]:
    """The names of the throwaway databases ``bench`` makes in this process, as it makes them."""
    names: list[str] = []
    real = bench.throwaway_database

    @contextmanager
    def recorded(admin: Any) -> Iterator[Any]:
        with real(admin) as url:
            names.append(url.database)
            yield url

    monkeypatch.setattr(bench, "throwaway_database", recorded)
    return names
