"""``cx-models serve``: the REST API (FastAPI, uvicorn) for a logged CX scorer."""

from __future__ import annotations

from typing import Annotated

import typer

from cx_models.cli._app import app, err, user_errors
from cx_models.cli.options import TrackingUriOpt
from cx_models.cli.score import ModelUriOpt, TrustOpt, trust_modified
from cx_models.errors import CXDataError

__all__ = ["serve"]


@app.command()
@user_errors
def serve(
    model: ModelUriOpt,
    tracking_uri: TrackingUriOpt = None,
    host: Annotated[
        str, typer.Option("--host", help="Bind address (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Server processes (one model each).")
    ] = 1,
    trust: TrustOpt = False,
) -> None:
    """Serve the REST API (FastAPI): /healthz, /readyz, /metadata, /score, /score/history."""
    import os

    trust_modified(trust)

    try:
        import uvicorn
    except ModuleNotFoundError:
        raise CXDataError("the API needs the serve extra: pip install 'cx-models[serve]'") from None
    os.environ["CX_MODELS_MODEL_URI"] = model
    if tracking_uri:
        os.environ["CX_MODELS_TRACKING_URI"] = tracking_uri
    err.print(f"serving {model} on http://{host}:{port} ({workers} worker(s))")
    uvicorn.run(
        "cx_models.serving.api:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )
