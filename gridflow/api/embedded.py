"""The API inside ``gridflow up``: uvicorn in a thread of the one process, beside the worker and beat.

The embedded default is one process with no server to install; the web door is part of it. The
server thread answers on ``settings.api_host:api_port`` (127.0.0.1:8000) with its own
:class:`gridflow.app.Gridflow` (SQLite allows one writer at a time: writers queue on the busy
timeout, as the worker's tasks do). ``api_port: 0`` leaves the API out.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from engine.errors import ConfigError


class EmbeddedApi:
    """uvicorn on a thread: :meth:`start` waits until it listens, :meth:`stop` until it has stopped."""

    def __init__(self, gf: Any, host: str, port: int):
        import uvicorn

        from gridflow.api import create_app

        self.host, self.port = host, port
        config = uvicorn.Config(create_app(gf), host=host, port=port, log_level="warning", server_header=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="gridflow-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.bound_port}"

    @property
    def bound_port(self) -> int:
        servers = getattr(self.server, "servers", None) or []
        for server in servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return self.port

    def start(self, within_s: float = 30) -> None:
        self.thread.start()
        deadline = time.monotonic() + within_s
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.server.started:
            self.stop()
            raise ConfigError(
                f"the API could not listen on {self.host}:{self.port} (is the port taken?); set GRIDFLOW_API_PORT "
                "to another port, or 0 to run without the API"
            )

    def stop(self, within_s: float = 10) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=within_s)
