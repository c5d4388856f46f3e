"""What a logged CX scorer ships with: its pip requirements, its code and an input example.

No MLflow here: :mod:`cx_models.training.tracking` (the adapter) passes these to
``mlflow.pyfunc.log_model``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

__all__ = [
    "input_example",
    "metric_name",
    "model_metrics",
    "package_dir",
    "pip_requirements",
    "scorer_example",
    "signature_params",
]


def pip_requirements() -> list[str]:
    """Return the pip requirements logged with the model (lower bounds, as pyproject)."""
    return [
        "mlflow>=3.0",
        "numpy>=2.0",
        "scipy>=1.13",
        "pandas>=2.2",
        "polars>=2.0",
        "pyarrow>=17.0",
        "scikit-learn>=1.6",
        "xgboost>=2.1",
        "lifetimes>=0.11.3",
        "pydantic>=2.7",
        "numba>=0.60",  # the Pareto/NBD quadrature kernel
    ]


def package_dir() -> str:
    """Return the installed cx_models package dir, shipped with the model (code_paths).

    So the model also loads where cx-models is not installed, provided the
    pip requirements are.
    """
    import cx_models

    return str(Path(cx_models.__file__).resolve().parent)


def input_example(features: pd.DataFrame) -> pd.DataFrame:
    """Return a few real rows, with missing survey and gap values among them.

    The signature is inferred from it, so every column that can be missing must
    be missing somewhere here.
    """
    no_survey = features["nps_latest"].isna() & features["csat_latest"].isna()
    once = features["frequency"] == 0
    rows = pd.concat(
        [
            features[~no_survey & ~once].head(2),  # repeat buyers who answered surveys
            features[no_survey & ~once].head(1),  # no survey answers: survey columns missing
            features[once].head(2),  # one-time buyers: gap columns missing too
        ]
    )
    example = rows.reset_index(drop=True).copy()
    example.attrs = dict(features.attrs)
    return example


def model_metrics(scorer) -> tuple[dict, dict]:
    """Return the metrics and tags a run records about the scorer's value model."""
    if getattr(scorer, "kind", "transactions") == "subscriptions":
        metrics, sbg = {}, scorer.retention.sbg
        if sbg is not None:
            for group, fit in sbg.groups_.items():
                metrics[f"sbg.{group}.alpha"] = fit.alpha
                metrics[f"sbg.{group}.beta"] = fit.beta
                metrics[f"sbg.{group}.se.alpha"] = fit.se["alpha"]
                metrics[f"sbg.{group}.se.beta"] = fit.se["beta"]
                metrics[f"sbg.{group}.log_likelihood"] = fit.log_likelihood
        return metrics, {"model.kind": "subscriptions", "clv.model": "sbg"}
    clv = scorer.clv
    metrics = {f"clv.{k}": v for k, v in clv.params_.items()}
    metrics.update({f"clv.{k}": v for k, v in clv.spend_params_.items()})
    metrics.update({f"clv.se.{k}": v for k, v in clv.standard_errors_.items()})
    metrics["clv.log_likelihood"] = clv.log_likelihood_
    metrics["clv.spend_log_likelihood"] = clv.spend_log_likelihood_
    for block, slopes in (getattr(clv, "coefficients_", None) or {}).items():
        for column, slope in slopes.items():
            metrics[f"clv.coef.{block}.{column}"] = slope
    tags = {"model.kind": "transactions", "clv.model": clv.model, "churn.clv_model": clv.model}
    if scorer.churn_clv is not None:  # the churn features' own transaction model
        metrics.update({f"churn_clv.{k}": v for k, v in scorer.churn_clv.params_.items()})
        tags["churn.clv_model"] = scorer.churn_clv.model
    return metrics, tags


def metric_name(name: str) -> str:
    """Return ``name`` in the characters MLflow allows (``region=east`` → ``region:east``).

    Examples
    --------
    >>> metric_name("clv.se.dropout_a.region=east")
    'clv.se.dropout_a.region:east'
    """
    return re.sub(r"[^0-9A-Za-z_./ :-]", ":", name)


def scorer_example(scorer, features: pd.DataFrame) -> pd.DataFrame:
    """Return the input example of a scorer's signature (see :func:`input_example`)."""
    if getattr(scorer, "kind", "transactions") != "subscriptions":
        return input_example(features)
    no_survey = features["nps_latest"].isna() & features["csat_latest"].isna()
    pending = features["cancellation_pending"].astype(bool)
    rows = pd.concat([
        features[~no_survey & ~pending].head(2),
        features[no_survey & ~pending].head(2),
        features[pending].head(1),
    ])
    example = rows.reset_index(drop=True).copy()
    example.attrs = dict(features.attrs)
    return example


def signature_params(scorer) -> dict:
    """Return the pyfunc's params with their defaults (their types make the signature)."""
    params = {
        "clv_months": int(scorer.clv_months),
        "discount_rate": float(scorer.discount_rate),
        "explain": True,
    }
    if getattr(scorer, "kind", "transactions") != "subscriptions":
        params = {"horizon_days": float(scorer.horizon_days), **params,
                  "intervals": 0.0}  # 0: none; a level in (0, 1) adds them
    return params
