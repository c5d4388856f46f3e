"""Where runs are tracked: the tracking URI chosen, its database driver, the artifact root.

No mlflow import: :mod:`cx_models.training.tracking` (the adapter) uses these.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEFAULT_TRACKING_URI", "artifact_location", "resolve_tracking_uri"]

#: The embedded store: sqlite under ``mlruns/`` of the working directory.
DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"


def resolve_tracking_uri(uri: str | None = None) -> str:
    """Return the tracking URI to use and prepare the embedded default if it is that.

    Examples
    --------
    >>> resolve_tracking_uri("http://127.0.0.1:5000")
    'http://127.0.0.1:5000'
    """
    chosen = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    if chosen == DEFAULT_TRACKING_URI:
        Path("mlruns").mkdir(exist_ok=True)
    return _with_driver(chosen)


def _with_driver(uri: str) -> str:
    """Name psycopg (3) in a ``postgresql://`` store URI when psycopg2 is not installed.

    SQLAlchemy, under MLflow's database store, takes ``postgresql://`` to mean
    psycopg2; the ``db`` extra installs psycopg 3, which it knows as
    ``postgresql+psycopg://``.
    """
    import importlib.util

    scheme, sep, rest = uri.partition("://")
    if sep and scheme.lower() in ("postgresql", "postgres"):
        if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg"):
            return f"postgresql+psycopg://{rest}"
    return uri


def artifact_location(tracking_uri: str) -> str | None:
    """Where a sqlite store keeps its artifacts: ``artifacts/`` beside the database file.

    Relative (``sqlite:///mlruns/mlflow.db``) and absolute
    (``sqlite:////srv/ml/mlflow.db``) paths alike. Other stores: the folder or URI
    in ``CX_MODELS_ARTIFACT_ROOT`` if set (a database store, PostgreSQL say, keeps
    only metadata), else ``None``: the store chooses.

    Examples
    --------
    >>> artifact_location("sqlite:////srv/ml/mlflow.db")
    'file:///srv/ml/artifacts'
    >>> artifact_location("http://127.0.0.1:5000") is None
    True
    """
    if not tracking_uri.startswith("sqlite:///"):
        root = os.environ.get("CX_MODELS_ARTIFACT_ROOT")
        if not root:
            return None
        return root if "://" in root else Path(root).resolve().as_uri()
    database = tracking_uri.removeprefix("sqlite:///").split("?", 1)[0]
    if not database or database == ":memory:":
        return None
    return (Path(database).resolve().parent / "artifacts").as_uri()
