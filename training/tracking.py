"""MLflow adapter: tracking store, run logging, the pyfunc CX scorer, registry aliases.

The one module of cx-models that imports mlflow (besides the models-from-code
file :mod:`cx_models.training.cx_pyfunc` that MLflow itself executes). The batch
scorer and the REST API load models through :func:`load_model`, Spark through
:func:`spark_udf`.

Tracking store: ``--tracking-uri`` / ``tracking_uri=``, else ``MLFLOW_TRACKING_URI``,
else the embedded default ``sqlite:///mlruns/mlflow.db`` with artifacts under
``mlruns/artifacts`` (both relative to the working directory).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from cx_models.training.model_package import (
    metric_name,
    model_metrics,
    package_dir,
    pip_requirements,
    scorer_example,
    signature_params,
)
from cx_models.training.stores import (
    DEFAULT_TRACKING_URI,
    artifact_location,
    resolve_tracking_uri,
)

from cx_models._version import __version__
from cx_models.errors import CXDataError

__all__ = [
    "artifact_location",
    "describe_model",
    "DEFAULT_MODEL_NAME",
    "DEFAULT_TRACKING_URI",
    "load_model",
    "log_monitoring",
    "mlflow_module",
    "quiet_mlflow",
    "use_store",
    "log_training_run",
    "resolve_tracking_uri",
    "spark_udf",
    "TrackingTarget",
]

DEFAULT_MODEL_NAME = "cx-scorer"
DEFAULT_EXPERIMENT = "cx-models"
_PYFUNC_FILE = Path(__file__).with_name("cx_pyfunc.py")


@dataclass(frozen=True)
class TrackingTarget:
    """Where a training run is logged and its model registered.

    Examples
    --------
    >>> TrackingTarget(promote=True).model_name
    'cx-scorer'
    """

    tracking_uri: str | None = None
    experiment: str = DEFAULT_EXPERIMENT
    model_name: str = DEFAULT_MODEL_NAME
    promote: bool = False

    #: The keyword names of earlier releases' ``train(...)``.
    KEYWORDS: ClassVar[tuple[str, ...]] = ("tracking_uri", "experiment", "model_name", "promote")


def mlflow_module():
    """Import and return mlflow (quiet, telemetry off): the one place that imports it."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # MLflow's INFO lines (database migrations, validation notices) are not ours to print
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    try:
        import mlflow
    except ModuleNotFoundError:  # pragma: no cover - mlflow is a dependency
        raise CXDataError("MLflow is not installed: pip install 'mlflow>=3'") from None
    return mlflow


@contextlib.contextmanager
def quiet_mlflow():
    """Silence MLflow's advisory warnings and INFO lines for the duration of a call."""
    import logging

    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        logger.setLevel(level)


def use_store(uri: str | None):
    """Point mlflow at the tracking (and registry) store; return ``(mlflow, resolved URI)``."""
    mlflow = mlflow_module()
    resolved = resolve_tracking_uri(uri)
    mlflow.set_tracking_uri(resolved)
    mlflow.set_registry_uri(resolved)
    return mlflow, resolved


def _experiment(mlflow, name: str, tracking_uri: str) -> str:
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    # never MLflow's default ./mlruns of whatever folder the job runs in
    return mlflow.create_experiment(name, artifact_location=artifact_location(tracking_uri))


def _flat_params(config: dict) -> dict:
    nested = {k: v for k, v in config.items() if isinstance(v, dict)}
    flat = {f"{k}.{sub}": inner for k, v in nested.items() for sub, inner in v.items()}
    flat.update({k: v for k, v in config.items() if k not in nested})
    return {k: "" if v is None else v for k, v in flat.items()}


def _log_dataset(mlflow, frame, report: dict, *, name: str, source: str, digest: str) -> None:
    from cx_models.sources import is_database_uri

    sample = frame.head(1000).to_pandas()
    if is_database_uri(source):  # a table or query, named without its password
        from mlflow.data.code_dataset_source import CodeDatasetSource

        source = CodeDatasetSource(tags={"database": source})
    dataset = mlflow.data.from_pandas(sample, source=source, name=name, digest=digest)
    tags = {
        "rows_in": str(report["rows_in"]),
        "rows_used": str(report["rows_used"]),
        "rows_quarantined": str(report["rows_quarantined"]),
        "rows_after_as_of": str(report["rows_after_as_of"]),
        "duplicate_rows": str(report["duplicate_rows"]),
        "quarantine_reasons": json.dumps(report["reasons"]),
        "fingerprint": digest,
    }
    mlflow.log_input(dataset, context="training", tags=tags)


def log_training_run(
    *,
    result,
    data: dict,
    clv_validation: dict | None,
    plots: list[str],
    tables: dict,
    target: TrackingTarget | None = None,
    artifacts: dict[str, list[str]] | None = None,
) -> dict:
    """Log a training run, the pyfunc CX scorer, and register it with aliases.

    Parameters
    ----------
    result : cx_models.training.pipeline.TrainingResult
    data : dict
        Per input (``transactions``, ``surveys``): ``frame`` (validated polars
        frame), ``report`` (validation counts), ``source`` and ``digest``.
    clv_validation : dict, optional
        The CLV calibration/holdout report.
    plots : list of str
        PNG files to log under ``figures/``.
    tables : dict
        Name -> JSON-serialisable table, logged under ``tables/``.
    target : TrackingTarget, optional
        Where to log and register, and whether to move the ``champion`` alias to
        the new version (it also becomes champion when the model has none yet).
        Every new version gets ``challenger``.
    artifacts : dict, optional
        Artifact folder -> files to log there (the evaluation window).

    Returns
    -------
    dict
        ``run_id``, ``model_uri`` (``models:/NAME/VERSION``), ``version``,
        ``champion`` (bool), ``tracking_uri``.
    """
    with quiet_mlflow():
        return _log_training_run(
            result=result,
            data=data,
            clv_validation=clv_validation,
            plots=plots,
            tables=tables,
            target=target or TrackingTarget(),
            artifacts=artifacts,
        )


def _log_training_run(*, result, data, clv_validation, plots, tables, target, artifacts) -> dict:
    mlflow, resolved = use_store(target.tracking_uri)
    experiment_id = _experiment(mlflow, target.experiment, resolved)
    model_name, promote = target.model_name, target.promote
    scorer = result.scorer
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.set_tags({"cx_models_version": __version__, "as_of": result.config.as_of})
        mlflow.log_params(_flat_params(result.config.to_dict()))
        for name, item in data.items():
            if item is not None:
                _log_dataset(
                    mlflow,
                    item["frame"],
                    item["report"],
                    name=name,
                    source=item["source"],
                    digest=item["digest"],
                )
        metrics, model_tags = model_metrics(scorer)
        mlflow.set_tags(model_tags)
        metrics.update(result.choice_metrics())
        if clv_validation is not None:
            for key, value in clv_validation["holdout"].items():
                if value is not None:
                    metrics[f"clv.holdout.{key}"] = value
        for scorer_name, values in result.evaluation["metrics"].items():
            for key, value in values.items():
                if value is not None and key != "n":
                    metrics[f"churn.{scorer_name}.{key}"] = value
        for baseline, gaps in result.evaluation["beats"].items():
            for key, value in gaps.items():
                metrics[f"churn.beats.{baseline}.{key}"] = value
        metrics["churn.best_iteration"] = scorer.churn.best_iteration_
        final = result.design.get("final") or {}
        metrics["snapshots.final.used"] = len(final.get("snapshots", [])) - len(
            final.get("dropped", [])
        )
        metrics["snapshots.final.dropped"] = len(final.get("dropped", []))
        metrics["snapshots.final.penalized"] = len(final.get("penalized", []))
        sampled = final.get("sampled") or {}
        metrics["snapshots.final.rows"] = sampled.get("rows", scorer.churn.n_train_rows_
                                                      + scorer.churn.n_holdout_rows_)
        metrics["snapshots.final.rows_kept"] = sampled.get("kept", metrics["snapshots.final.rows"])
        mlflow.set_tags(
            {
                "snapshots.rule": final.get("rule", ""),
                "churn.holdout": final.get("holdout", ""),
                "evaluation": "skipped" if result.evaluation.get("skipped") else "done",
            }
        )
        for key, value in result.timings.items():
            metrics[f"timing.{key}"] = value
        mlflow.log_metrics({metric_name(k): float(v) for k, v in metrics.items()})
        for name, table in tables.items():
            mlflow.log_dict(table, f"tables/{name}.json")
        for folder, paths in {"figures": plots, **(artifacts or {})}.items():
            for path in paths:
                mlflow.log_artifact(path, artifact_path=folder)

        with tempfile.TemporaryDirectory() as tmp:
            scorer_dir = scorer.save(Path(tmp) / "scorer")
            example = scorer_example(scorer, result.features)
            output = scorer.score(example)
            signature = _any_id(
                mlflow.models.infer_signature(example, output, params=signature_params(scorer))
            )
            info = mlflow.pyfunc.log_model(
                name="cx_scorer",
                python_model=str(_PYFUNC_FILE),
                artifacts={"scorer": str(scorer_dir)},
                code_paths=[package_dir()],
                signature=signature,
                input_example=example,
                pip_requirements=pip_requirements(),
                registered_model_name=model_name,
                await_registration_for=0,
            )
        version = str(info.registered_model_version)
        client = mlflow.MlflowClient()
        _record_digest(mlflow, client, info.model_uri, model_name, version)
        client.set_registered_model_alias(model_name, "challenger", version)
        champion = promote or not _has_alias(client, model_name, "champion")
        if champion:
            client.set_registered_model_alias(model_name, "champion", version)
        mlflow.set_tag("champion", str(champion).lower())
    return {
        "run_id": run.info.run_id,
        "model_uri": f"models:/{model_name}/{version}",
        "version": version,
        "champion": champion,
        "tracking_uri": resolved,
    }


def log_monitoring(run_id: str, report: dict, *, tracking_uri: str | None = None) -> None:
    """Log a ``cx-models monitor`` report under the model's training run.

    Metrics ``monitor.psi_max``, ``monitor.ks_max`` and, when present,
    ``monitor.realised.*``, with the as_of day as the step; the report as
    ``monitoring/<as_of>.json``.
    """
    import datetime as dt

    mlflow, _ = use_store(tracking_uri)
    columns = report.get("columns", {}).values()
    metrics = {
        "monitor.psi_max": max((c["psi"] for c in columns if c["psi"] is not None), default=0.0),
        "monitor.ks_max": max((c["ks"] for c in columns if c["ks"] is not None), default=0.0),
    }
    for key, value in (report.get("realised") or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics[f"monitor.realised.{key}"] = float(value)
    step = dt.date.fromisoformat(report["as_of"]).toordinal()
    with quiet_mlflow(), mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(metrics, step=step)
        mlflow.log_dict(report, f"monitoring/{report['as_of']}.json")


def _record_digest(mlflow, client, logged_uri: str, model_name: str, version: str) -> None:
    """Record the digest of the logged model's files in the tracking database.

    On the registered version and on the run (see :mod:`cx_models.training.code_digest`);
    the per-file manifest is logged with the run to name changed files later.
    """
    from cx_models.training.code_digest import DIGEST_TAG, MANIFEST_NAME, file_manifest
    from cx_models.training.code_digest import model_digest as digest_of

    with tempfile.TemporaryDirectory() as tmp, quiet_mlflow():
        local = mlflow.artifacts.download_artifacts(logged_uri, dst_path=tmp)
        manifest = file_manifest(local)
    digest = digest_of(manifest)
    mlflow.set_tag(DIGEST_TAG, digest)
    mlflow.log_dict(manifest, MANIFEST_NAME)
    client.set_model_version_tag(model_name, version, DIGEST_TAG, digest)


def _any_id(signature):
    """Let ``customer_id`` be of any type in the signature: ids are data, not the model's.

    A model trained on integer ids then scores a table of text ids (and the
    reverse), as the command line does.
    """
    from mlflow.types.schema import AnyType, ColSpec, Schema

    def loosen(schema):
        cols = [
            ColSpec(AnyType(), c.name, required=c.required) if c.name == "customer_id" else c
            for c in schema.inputs
        ]
        return Schema(cols)

    signature.inputs = loosen(signature.inputs)
    signature.outputs = loosen(signature.outputs)
    return signature


def _has_alias(client, name: str, alias: str) -> bool:
    try:
        client.get_model_version_by_alias(name, alias)
    except Exception:  # noqa: BLE001 - MLflow raises its own RestException subclasses
        return False
    return True


# the registry side (resolve, verify, load) lives in its own module; its names stay here
from cx_models.training.registry import describe_model, load_model, spark_udf  # noqa: E402
