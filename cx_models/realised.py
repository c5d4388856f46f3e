"""How a model's predictions came true: score at a past day, compare with what followed.

Given transactions up to ``as_of`` and a day ``scored_at`` at least one churn
horizon earlier (and not before the model's own training day), the model scores
every customer at ``scored_at`` from the history up to that day only, and is
compared with what happened next:

* churn (no purchase in the ``horizon`` days after ``scored_at``): ROC-AUC, Brier,
  the predicted and the observed churn rate, and a ten-bin calibration table;
* spend: the model's expected spend over ``(scored_at, as_of]`` (expected purchases
  × expected order value, undiscounted) against the spend that happened.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
from sklearn.metrics import brier_score_loss, roc_auc_score

from cx_models.churn_data import churn_labels
from cx_models.errors import CXDataError
from cx_models.features import features_from_validated, to_pandas_features
from cx_models.settings import ScoreParams
from cx_models.timeutil import as_of_cutoff, parse_as_of

__all__ = ["observed_churn_history", "realised_performance"]


def realised_performance(scorer, transactions: pl.DataFrame, surveys, *, scored_at, as_of) -> dict:
    """Score at ``scored_at`` with history up to it; compare with ``(scored_at, as_of]``.

    Parameters
    ----------
    scorer : CXScorer
    transactions, surveys : polars.DataFrame
        Validated canonical frames up to ``as_of``.

    Raises
    ------
    CXDataError
        When ``scored_at`` is before the model's training day or later than
        ``as_of`` minus the horizon (the outcome is not known yet).
    """
    scored_at, as_of = parse_as_of(scored_at), parse_as_of(as_of)
    horizon = scorer.horizon_days
    latest = as_of - dt.timedelta(days=horizon)
    if scored_at > latest:
        raise CXDataError(
            f"--scored-at {scored_at} is less than the horizon ({horizon} days) before --as-of "
            f"{as_of}: the outcome is not known yet; the latest possible is {latest}"
        )
    trained = scorer.trained_as_of
    if trained is not None and scored_at < dt.date.fromisoformat(trained):
        raise CXDataError(
            f"--scored-at {scored_at} is before the model's training day {trained}: it would "
            "be scored on days it learnt from"
        )
    cut = as_of_cutoff(scored_at)
    seen = transactions.filter(pl.col("timestamp") < cut)
    seen_surveys = None if surveys is None else surveys.filter(pl.col("timestamp") < cut)
    table, _ = features_from_validated(seen, seen_surveys, as_of=scored_at,
                                       spec=scorer.feature_spec)
    features = to_pandas_features(table, as_of=scored_at, spec=scorer.feature_spec)
    window = (as_of - scored_at).days
    # churn risk is always at the trained horizon; the horizon here sets the CLV outputs
    scored = scorer.score(features, ScoreParams(horizon_days=window, explain=False))
    churn = scored["churn_risk"].to_numpy()
    ids = features["customer_id"].to_numpy()
    y = churn_labels(transactions, ids, as_of=scored_at, horizon_days=horizon)
    after = transactions.filter(
        (pl.col("timestamp") >= cut) & (pl.col("timestamp") < as_of_cutoff(as_of))
    )
    spent = after.group_by("customer_id").agg(pl.col("amount").sum())
    actual = (
        pd.Series(spent["amount"].to_numpy(), index=spent["customer_id"].to_numpy())
        .reindex(ids)
        .fillna(0.0)
        .to_numpy()
    )
    predicted = scored["expected_purchases"].to_numpy() * scored["expected_order_value"].to_numpy()
    bins = pd.qcut(churn, 10, labels=False, duplicates="drop")
    calibration = (
        pd.DataFrame({"bin": bins, "predicted": churn, "observed": y})
        .groupby("bin")
        .agg(customers=("observed", "size"), predicted=("predicted", "mean"),
             observed=("observed", "mean"))
        .reset_index(drop=True)
    )
    both = 0 < y.sum() < len(y)
    return {
        "scored_at": scored_at.isoformat(),
        "as_of": as_of.isoformat(),
        "horizon_days": horizon,
        "customers": int(len(ids)),
        "roc_auc": float(roc_auc_score(y, churn)) if both else None,
        "brier": float(brier_score_loss(y, churn)),
        "predicted_churn_rate": float(np.mean(churn)),
        "observed_churn_rate": float(np.mean(y)),
        "calibration": calibration.to_dict(orient="records"),
        "spend_window_days": window,
        "spend_predicted": float(np.nansum(predicted)),
        "spend_actual": float(actual.sum()),
    }


def observed_churn_history(
    transactions: pl.DataFrame, *, as_of, horizon_days: int, windows: int = 4
) -> list[dict]:
    """Return the churn rate that happened in past windows, newest first.

    For each day ``D = as_of - k * horizon`` (``k = 1 .. windows``, while some
    customer had bought by ``D``): of the customers with a purchase on or before
    ``D``, the share who made none in ``(D, D + horizon]``. What the predicted
    churn rate can be read against.

    Examples
    --------
    >>> tx = pl.DataFrame({"customer_id": [1, 1, 2, 3],
    ...                    "timestamp": pl.Series(["2024-01-05", "2024-03-01", "2024-01-10",
    ...                                            "2024-02-20"]).str.to_datetime()})
    >>> [(w["day"], w["customers"], w["observed_churn_rate"])
    ...  for w in observed_churn_history(tx, as_of="2024-03-31", horizon_days=30)]
    [('2024-03-01', 3, 1.0), ('2024-01-31', 2, 0.5)]
    """
    as_of = parse_as_of(as_of)
    if transactions.height == 0:
        return []
    first = transactions["timestamp"].min().date()
    out = []
    for k in range(1, int(windows) + 1):
        day = as_of - dt.timedelta(days=k * int(horizon_days))
        if day < first:
            break
        ids = (
            transactions.filter(pl.col("timestamp") < as_of_cutoff(day))["customer_id"]
            .unique()
            .to_numpy()
        )
        y = churn_labels(transactions, ids, as_of=day, horizon_days=horizon_days)
        out.append(
            {
                "day": day.isoformat(),
                "horizon_days": int(horizon_days),
                "customers": int(len(ids)),
                "observed_churn_rate": float(np.mean(y)),
            }
        )
    return out
