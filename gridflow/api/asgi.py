"""The ASGI entry point for uvicorn's workers: ``uvicorn --factory gridflow.api.asgi:create``.

Each worker process builds its own application from the settings (``GRIDFLOW_*``,
``config/gridflow.yaml``); the API keeps nothing in memory between requests that another worker
would need, so any number of workers and machines can serve behind a reverse proxy.
"""

from __future__ import annotations

from fastapi import FastAPI


def create() -> FastAPI:
    from config.settings import Settings
    from gridflow.api import create_app
    from gridflow.app import Gridflow

    return create_app(Gridflow(Settings()))
