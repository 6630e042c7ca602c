"""``gridflow serve`` as an operator runs it: a real process with uvicorn workers on a loopback port,
on the embedded database; it says where it listens and how to sign in, answers with a token made
by ``gridflow token create``, and stops on SIGTERM."""

from __future__ import annotations

import json
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


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
    env.update(GRIDFLOW_HOME=str(home), GRIDFLOW_CONFIG_FILE=str(home / "absent.yaml"), COLUMNS="120")
    return env


def test_serve_answers_with_two_workers_and_stops_cleanly(tmp_path: Path) -> None:
    env = _env(tmp_path)
    subprocess.run([GRIDFLOW, "init"], env=env, cwd=REPO, check=True, capture_output=True, timeout=120)
    made = subprocess.run(
        [GRIDFLOW, "token", "create", "--person", "p-chen-jia", "--name", "serve test", "--json"],
        env=env, cwd=REPO, check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    token = json.loads(made.stdout)["token"]
    port = _free_port()
    server = subprocess.Popen(
        [GRIDFLOW, "serve", "--port", str(port), "--workers", "2", "--log-level", "warning"],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        answer = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                answer = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=5
                )
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert answer is not None, f"gridflow serve did not answer within 60 s: {server.poll()}"
        assert answer.status_code == 200 and answer.json()["person"] == "p-chen-jia"
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/me", timeout=5).status_code == 401
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=60)
    assert f"http://127.0.0.1:{port}/api/v1/" in output and "sign in" in output
    assert "2 worker(s)" in output and "sqlite:///" in output
    assert server.returncode == 0, output
