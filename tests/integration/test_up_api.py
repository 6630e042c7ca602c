"""``gridflow up`` on the embedded default also serves the HTTP API, still one process: it prints the
URL and how to sign in, answers on it while the worker runs, and stops with the rest on Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
GRIDFLOW = Path(sys.executable).with_name("gridflow")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_up_serves_the_api_in_its_one_process(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
    env.update(GRIDFLOW_HOME=str(tmp_path), GRIDFLOW_CONFIG_FILE=str(tmp_path / "absent.yaml"),
               GRIDFLOW_API_PORT=str(port), COLUMNS="200", PYTHONUNBUFFERED="1")  # fmt: skip
    subprocess.run([GRIDFLOW, "init"], env=env, cwd=REPO, check=True, capture_output=True, timeout=120)
    up = subprocess.Popen(
        [GRIDFLOW, "up"], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        answer = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and up.poll() is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert answer is not None and answer.status_code == 200, f"no API within 90 s (exit {up.poll()})"
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/cases", timeout=5).status_code == 401
    finally:
        up.send_signal(signal.SIGINT)
        output, _ = up.communicate(timeout=60)
    assert f"接口 API  http://127.0.0.1:{port}/api/v1/" in output and "gridflow token create" in output
    assert f"网页 pages  http://127.0.0.1:{port}/workbench" in output
    assert up.returncode == 0, output
