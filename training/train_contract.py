"""The training job of the contractual kind: read → validate → train → log, register, alias.

``cx-models train --subscriptions`` and :func:`train_subscriptions` run it: the
subscriptions (and the optional surveys, activity events and customer attributes)
are validated with their contracts, the contractual scorer is trained
(:func:`cx_models.training.contract_pipeline.train_contract_scorer`), and the
configuration, data fingerprints, metrics, tables and the pyfunc model go to
MLflow exactly as for the non-contractual kind.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from cx_models.training.contract_pipeline import train_contract_scorer
from cx_models.training.pipeline import TrainingConfig
from cx_models.training.tracking import TrackingTarget, log_training_run
from cx_models.training.train import _fingerprint, _importance, _window_artifacts

from cx_models.settings import EventFormat

__all__ = ["train_subscriptions"]


def _entry(validated) -> dict | None:
    if validated is None:
        return None
    return {"frame": validated.data, "report": validated.report.to_dict(),
            "source": validated.report.source, "digest": _fingerprint(validated.data)}


def train_subscriptions(
    subscriptions,
    surveys=None,
    *,
    config: TrainingConfig,
    spec,
    transactions=None,
    attributes=None,
    fmt: EventFormat | None = None,
    target: TrackingTarget | None = None,
    truth=None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Train the contractual scorer on data up to ``config.as_of`` and log it to MLflow.

    Parameters
    ----------
    subscriptions : path, DatabaseSource or DataFrame
        The subscriptions input.
    surveys, transactions : path, DatabaseSource or DataFrame, optional
        Survey answers; activity events (usage, payments) read with the
        transactions contract.
    config : TrainingConfig
        As-of day, horizon, snapshots, CLV and NCO settings.
    spec : SubscriptionSpec
        Columns, billing period and grace days of the subscriptions.
    attributes : optional
        Customer attributes (a path, frame or
        :class:`~cx_models.attributes.AttributeInput`).

    Returns
    -------
    dict
        :func:`~cx_models.training.tracking.log_training_run`'s summary plus
        ``evaluation``, ``design``, ``result`` and the validation ``reports``.
    """
    from cx_models.contract_features import CONTRACT_FEATURES, KEY_COLUMNS
    from cx_models.contract_inputs import validate_contract_inputs

    fmt = fmt or EventFormat()
    target = target or TrackingTarget()
    say = progress or (lambda message: None)
    spec.require_period()
    say("validating inputs")
    inputs = validate_contract_inputs(
        subscriptions, as_of=config.as_of, spec=spec, surveys=surveys,
        transactions=transactions, attributes=attributes, fmt=fmt,
        reserved=[*KEY_COLUMNS, *CONTRACT_FEATURES],
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = train_contract_scorer(
            inputs.subscriptions.data, inputs.frames()["surveys"], config, spec=spec,
            transactions=inputs.frames()["transactions"],
            attributes=inputs.frames()["attributes"], truth=truth, progress=say,
        )
        evaluation = {k: v for k, v in result.evaluation.items() if not k.startswith("_")}
        validated = inputs.validated()
        tables = {
            "churn_evaluation": evaluation,
            "snapshots": result.snapshot_counts,
            "retention_model": result.scorer.retention.to_dict(),
            "data_quality": {k: v.to_dict() for k, v in inputs.reports().items() if v is not None},
            "feature_importance": _importance(result.scorer.churn),
            "snapshot_design": result.design,
            "scorer": result.scorer.settings(),
        }
        data = {k: _entry(v) for k, v in validated.items()}
        say("logging the run and registering the model")
        logged = log_training_run(
            result=result, data=data, clv_validation=None, plots=[], tables=tables,
            target=target, artifacts=_window_artifacts(result, Path(tmp)),
        )
    logged["evaluation"] = evaluation
    logged["design"] = result.design
    logged["result"] = result
    logged["reports"] = inputs.reports()
    return logged
