"""The model registry side of the MLflow adapter: resolve a URI, verify the model, load it.

Every load by cx-models (``score``, ``serve``, Spark, :func:`load_model`) downloads
the model, checks its files against the digest recorded when it was logged
(:mod:`cx_models.training.code_digest`) and only then lets MLflow run it. The
mlflow module comes from :mod:`cx_models.training.tracking`, the one module that
imports it.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from cx_models.training import tracking
from cx_models.training.code_digest import DIGEST_TAG, MANIFEST_NAME, check_model_files

from cx_models.errors import CXDataError

__all__ = ["describe_model", "load_model", "spark_udf", "verified_copy"]

log = logging.getLogger("cx_models.registry")


def _cannot(model_uri: str, exc: Exception) -> CXDataError:
    message = getattr(exc, "message", None) or str(exc).splitlines()[0]
    return CXDataError(f"cannot load model {model_uri!r}: {message}")


def _version(mlflow, model_uri: str):
    """Return the registered version that ``models:/NAME@ALIAS`` or ``models:/NAME/N`` names."""
    rest = model_uri.removeprefix("models:/")
    client = mlflow.MlflowClient()
    with tracking.quiet_mlflow():
        if "@" in rest:
            name, alias = rest.split("@", 1)
            return client.get_model_version_by_alias(name, alias)
        name, number = rest.split("/", 1)
        return client.get_model_version(name, number)


def _recorded(mlflow, model_uri: str) -> tuple[str | None, str | None]:
    """Return the digest recorded for ``model_uri`` and the id of its run."""
    client = mlflow.MlflowClient()
    run_id = digest = None
    if model_uri.startswith("models:/") and not model_uri.startswith("models:/m-"):
        version = _version(mlflow, model_uri)
        digest, run_id = (version.tags or {}).get(DIGEST_TAG), version.run_id
    elif model_uri.startswith("runs:/"):
        run_id = model_uri.removeprefix("runs:/").split("/", 1)[0]
    if digest is None and run_id is not None:
        with tracking.quiet_mlflow():
            digest = client.get_run(run_id).data.tags.get(DIGEST_TAG)
    return digest, run_id


def _manifest(mlflow, run_id: str | None) -> dict | None:
    """Return the per-file manifest logged with the run (fetched only to name changed files)."""
    if run_id is None:
        return None
    try:
        with tracking.quiet_mlflow(), tempfile.TemporaryDirectory() as tmp:
            path = mlflow.MlflowClient().download_artifacts(run_id, MANIFEST_NAME, tmp)
            return json.loads(Path(path).read_text())
    except Exception:  # noqa: BLE001 - older runs have no manifest
        return None


def verified_copy(model_uri: str, *, tracking_uri: str | None = None,
                  trust_modified: bool = False) -> str:
    """Download the model and check its files; return the local copy's path.

    The copy is what MLflow then loads, so nothing can change between the check
    and the load. It is removed when the process exits. ``CX_TRUST_MODIFIED_MODEL=1``
    in the environment (``--trust-modified-model``) has the effect of ``trust_modified``.

    Raises
    ------
    CXDataError
        When the model cannot be found, or its files differ from those logged
        (unless ``trust_modified``).
    """
    trust_modified = trust_modified or os.environ.get("CX_TRUST_MODIFIED_MODEL") == "1"
    mlflow, _ = tracking.use_store(tracking_uri)
    folder = tempfile.mkdtemp(prefix="cx-model-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    try:
        with tracking.quiet_mlflow():
            local = mlflow.artifacts.download_artifacts(model_uri, dst_path=folder)
        expected, run_id = _recorded(mlflow, model_uri)
    except Exception as exc:  # noqa: BLE001 - MLflow raises its own exception classes
        shutil.rmtree(folder, ignore_errors=True)
        raise _cannot(model_uri, exc) from None
    try:
        warning = check_model_files(
            local, expected, model_uri=model_uri, logged=lambda: _manifest(mlflow, run_id)
        )
    except CXDataError:
        if not trust_modified:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        warning = f"model {model_uri}: its files differ from those logged; loaded as asked"
    if warning:
        log.warning("%s", warning)
    return local


def load_model(model_uri: str, *, tracking_uri: str | None = None,
               trust_modified: bool = False):
    """Load a logged CX scorer (``models:/NAME@ALIAS``, ``runs:/...``) as a pyfunc model.

    Its files are checked first (:func:`verified_copy`).
    """
    local = verified_copy(model_uri, tracking_uri=tracking_uri, trust_modified=trust_modified)
    mlflow = tracking.mlflow_module()
    try:
        with tracking.quiet_mlflow():
            # suppress_warnings: the requirements check costs ~1 s and only warns
            return mlflow.pyfunc.load_model(local, suppress_warnings=True)
    except mlflow.exceptions.MlflowException as exc:
        raise CXDataError(f"cannot load model {model_uri!r}: {exc.message}") from None


def spark_udf(
    spark,
    model_uri: str,
    *,
    result_type,
    params: dict | None = None,
    tracking_uri: str | None = None,
    trust_modified: bool = False,
):
    """Return the logged CX scorer as a Spark UDF (:func:`mlflow.pyfunc.spark_udf`).

    The driver downloads and checks the model once and Spark ships that copy to the
    executors, which run it in their own Python (``env_manager="local"``): they need
    the model's requirements installed (see :mod:`cx_models.serving.spark`).
    """
    local = verified_copy(model_uri, tracking_uri=tracking_uri, trust_modified=trust_modified)
    mlflow = tracking.mlflow_module()
    # its advice to recreate the training environment with conda does not apply here:
    # the executors run the installed cx-models (see cx_models.serving.spark)
    pyfunc_log = logging.getLogger("mlflow.pyfunc")
    level = pyfunc_log.level
    pyfunc_log.setLevel(logging.ERROR)
    try:
        with tracking.quiet_mlflow():
            return mlflow.pyfunc.spark_udf(
                spark, local, result_type=result_type, env_manager="local", params=params
            )
    except mlflow.exceptions.MlflowException as exc:
        raise CXDataError(f"cannot load model {model_uri!r}: {exc.message}") from None
    finally:
        pyfunc_log.setLevel(level)


def describe_model(model_uri: str, *, tracking_uri: str | None = None) -> dict:
    """Resolve a model URI once: ``model_uri`` pinned to a version, ``name``, ``version``...

    ``models:/NAME@ALIAS`` and ``models:/NAME/VERSION`` resolve through the
    registry to ``models:/NAME/VERSION`` (``alias`` and ``requested_uri`` keep what
    was asked); load that URI so the scores come from the version reported, even
    if the alias moves meanwhile. Other URIs are returned as they are.
    """
    mlflow, _ = tracking.use_store(tracking_uri)
    info = {"model_uri": model_uri, "requested_uri": model_uri}
    if not model_uri.startswith("models:/"):
        return info
    rest = model_uri.removeprefix("models:/")
    alias = rest.split("@", 1)[1] if "@" in rest else None
    try:
        version = _version(mlflow, model_uri)
    except Exception as exc:  # noqa: BLE001 - MLflow raises its own RestException subclasses
        raise _cannot(model_uri, exc) from None
    info.update(
        model_uri=f"models:/{version.name}/{version.version}",
        name=version.name,
        version=str(version.version),
        run_id=version.run_id,
    )
    if alias is not None:
        info["alias"] = alias
    return info
