"""bench/api.py --smoke: the API and the reference answer every request right, and the report has its rows.

It needs the local PostgreSQL server (the bench makes and drops a database of its own) and runs the bench
as an operator does: a process with its own uvicorn servers, bounded by a timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 300
pytestmark = pytest.mark.postgres


def test_the_api_bench_smoke_answers_right_on_both_sides(pg_server, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
    env["GRIDFLOW_BENCH_PG_ADMIN_URL"] = pg_server.admin.url.render_as_string(hide_password=False)
    env["COLUMNS"] = "200"
    out = tmp_path / "bench-api.json"
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.api", "--smoke", "--paced", "100", "--json-out", str(out)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"bench.api --smoke took more than {TIMEOUT_S} s:\n{exc.stderr}")
    assert done.returncode == 0, done.stderr[-4000:]

    table = done.stdout
    rows = ["step: POST /api/v1/cases/{code}/steps", "step: reference", "list: GET /api/v1/cases", "list: reference"]
    for row in rows:
        assert row in table, table
    assert "API / reference throughput" in table and "target step p99" in table and "FAIL" not in table
    assert "machine" in table and "Python" in table

    report = json.loads(out.read_text(encoding="utf-8"))
    parts = report["parts"]
    for part in ("step", "list"):
        for side in ("api", "reference"):
            row = parts[part][side]
            assert row["requests"] > 0 and row["errors"] == 0, (part, side, row)
            assert row["req_per_s"] > 0 and 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
        assert parts[part]["ratio_throughput"] > 0
        assert parts[part]["api_paced"]["requests"] > 0 and parts[part]["api_paced"]["errors"] == 0, parts[part]
        assert parts[part]["reference_paced"]["errors"] == 0
    assert "step: API, paced" in table and "paced at 100 req/s" in table
    if "open311" in parts:
        assert parts["open311"]["api"]["requests"] > 0 and parts["open311"]["api"]["errors"] == 0
        assert "Open311: GET /open311/v2/requests.json" in table
    else:
        assert report["open311"].startswith("skipped")
    assert {t["target"] for t in report["targets"]} >= {
        "step throughput ≥ 0.5 × reference",
        "step p99 ≤ 100 ms",
        "list p99 ≤ 50 ms",
    }
    assert report["checks"] and all(c["pass"] for c in report["checks"]), report["checks"]
    assert any(c["what"] == "the generator writes the engine's rows" for c in report["checks"])
    data = report["data"]
    assert data["cases"] >= 100 and data["overdue"] > 0 and data["running_clocks"] > 0
    assert report["machine"]["cpu_model"] and report["machine"]["python"]
