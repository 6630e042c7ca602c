"""``gridflow serve``: the HTTP API under uvicorn, for production (stateless: run as many as needed)."""

from __future__ import annotations

from typing import Annotated

import typer

from gridflow.cli.common import handled, open_gridflow, out

app = typer.Typer()  # this module's commands; gridflow.cli.build merges them into the root


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: settings.api_host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings.api_port, 8000).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=64, help="uvicorn worker processes.")] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn's log level.")] = "info",
) -> None:
    """Serve the HTTP API with uvicorn (production: several workers behind a reverse proxy)."""
    with handled():
        gf = open_gridflow()
        gf.require_current_schema()  # before any worker starts (else: run `gridflow init`)
        s = gf.settings
        host, port, workers = host or s.api_host, port if port is not None else s.api_port, workers or s.api_workers
        gf.close()
        out.print(
            f"gridflow API on http://{host}:{port}/api/v1/  (docs: http://{host}:{port}/api/v1/docs)", markup=False
        )
        out.print(f"database {gf.database_label}; {workers} worker(s); Ctrl-C stops", markup=False)
        out.print("sign in: POST /api/v1/auth/password, or a token from `gridflow token create`", markup=False)
    import uvicorn

    uvicorn.run(
        "gridflow.api.asgi:create",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        server_header=False,
    )
