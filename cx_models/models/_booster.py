"""What the churn booster is given: its settings, its feature matrix and constraints.

* :class:`BoosterSettings` — the XGBoost settings of :class:`~cx_models.models.churn.ChurnModel`;
* :data:`MONOTONE` — the features whose effect on churn has a known direction;
* :data:`FEATURE_LABELS` — the names driver texts use;
* :func:`feature_matrix` — the float32 model matrix from a frame or a column view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cx_models.columns import NumericView, as_float
from cx_models.errors import CXDataError
from cx_models.threads import thread_count

__all__ = ["BoosterSettings", "FEATURE_LABELS", "LARGE_TRAINING_ROWS", "MONOTONE", "feature_matrix"]

#: Features whose effect on churn has a known direction (+1: more means more churn).
#: Trees then cannot learn a reversal that only holds at the ages seen in training:
#: the training snapshots are younger than the customers scored.
MONOTONE = {
    "days_since_last_purchase": 1,
    "prob_no_purchase": 1,
    "p_alive": -1,
    "expected_purchases": -1,
    "purchases_30d": -1,
    "purchases_90d": -1,
    "purchases_180d": -1,
    # contractual: the retention models' churn probabilities over the renewals due
    "sbg_churn_prob": 1,
    "km_churn_prob": 1,
    "renewals_due": 1,
}

#: From this many training rows on, the default learning rate is 0.1 instead of 0.05.
LARGE_TRAINING_ROWS = 200_000

#: Human-readable names used in driver texts.
FEATURE_LABELS = {
    "days_since_last_purchase": "days since last purchase",
    "mean_gap_days": "mean days between purchases",
    "std_gap_days": "std of days between purchases",
    "gap_ratio": "days since last / mean gap",
    "purchase_rate_per_year": "purchases per year",
    "recency_share": "recency / age",
    "mean_spend": "mean spend",
    "monetary_value": "mean repeat spend",
    "purchases_30d": "purchases in last 30 days",
    "spend_30d": "spend in last 30 days",
    "purchases_trend_30d": "purchase trend (30 days)",
    "purchases_90d": "purchases in last 90 days",
    "spend_90d": "spend in last 90 days",
    "purchases_trend_90d": "purchase trend (90 days)",
    "purchases_180d": "purchases in last 180 days",
    "spend_180d": "spend in last 180 days",
    "purchases_trend_180d": "purchase trend (180 days)",
    "spend_trend_180d": "spend trend (180 days)",
    "nps_latest": "latest NPS",
    "nps_mean": "mean NPS",
    "nps_days_since": "days since NPS answer",
    "csat_latest": "latest CSAT",
    "csat_mean": "mean CSAT",
    "csat_days_since": "days since CSAT answer",
    "ces_latest": "latest CES",
    "ces_mean": "mean CES",
    "ces_days_since": "days since CES answer",
    "survey_count": "survey answers",
    "latest_experience": "latest survey score (0-100)",
    "latest_experience_days_since": "days since latest survey answer",
    "answered_since_last_purchase": "answered a survey since the last purchase",
    "p_alive": "P(alive)",
    "expected_purchases": "expected purchases",
    "prob_no_purchase": "BG/NBD P(no purchase)",
    "clv": "CLV",
    # contractual
    "tenure_days": "days since the relationship began",
    "renewals": "renewals so far",
    "renewals_due": "renewals due in the horizon",
    "days_to_next_renewal": "days to the next renewal",
    "period_elapsed_share": "share of the billing period elapsed",
    "plan": "plan",
    "price": "price per period",
    "price_change_ratio": "price / first price",
    "price_changes": "price changes",
    "subscriptions": "subscriptions in the relationship",
    "prior_relationships": "earlier relationships lost",
    "experience_trend": "latest survey score vs mean",
    "activity_30d": "activity events in last 30 days",
    "activity_90d": "activity events in last 90 days",
    "days_since_activity": "days since last activity",
    "sbg_churn_prob": "sBG churn probability for the tenure",
    "km_churn_prob": "Kaplan-Meier churn probability for the tenure",
}


@dataclass(frozen=True)
class BoosterSettings:
    """XGBoost settings of the churn model (``tree_method="hist"``).

    ``learning_rate=None`` (the default) takes 0.05 below :data:`LARGE_TRAINING_ROWS`
    training rows and 0.1 from there: with many rows each round's trees are well
    determined and the larger step reaches the same fit in about half the rounds.
    ``early_stopping_rounds`` is the number of rounds without improvement on the
    held-out snapshot before stopping; ``n_jobs`` the XGBoost threads (``None``:
    :func:`cx_models.threads.thread_count`, the available CPUs or ``CX_MODELS_THREADS``).

    Examples
    --------
    >>> BoosterSettings(max_depth=3).params(["p_alive", "clv"], learning_rate=0.1, seed=0)[
    ...     "monotone_constraints"]
    '(-1,0)'
    """

    n_estimators: int = 1000
    learning_rate: float | None = None
    max_depth: int = 4
    min_child_weight: float = 20.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    early_stopping_rounds: int = 50
    n_jobs: int | None = None

    def learning_rate_for(self, n_rows: int) -> float:
        """Return the learning rate used for ``n_rows`` training rows."""
        if self.learning_rate:
            return float(self.learning_rate)
        return 0.1 if n_rows >= LARGE_TRAINING_ROWS else 0.05

    def params(self, features: list[str], *, learning_rate: float, seed: int) -> dict:
        """XGBoost's training parameters for these features."""
        constraints = ",".join(str(MONOTONE.get(f, 0)) for f in features)
        return {
            "monotone_constraints": f"({constraints})",
            "objective": "binary:logistic",
            "eval_metric": "logloss",
            "tree_method": "hist",
            "learning_rate": learning_rate,
            "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "seed": seed,
            "nthread": self.n_jobs or thread_count(),
        }


def category_levels(values) -> list[str]:
    """Return the levels of a categorical column: its distinct non-empty values as text, sorted.

    Examples
    --------
    >>> category_levels(pd.Series(["S", "N", None, "N", " E "]))
    ['E', 'N', 'S']
    """
    return sorted(set(_as_text(values).dropna()))


def _as_text(values) -> pd.Series:
    series = pd.Series(np.asarray(values, dtype=object), dtype=object)
    missing = series.isna().to_numpy()
    text = series.astype(str).str.strip()
    return text.where(~(missing | (text == "").to_numpy()), None)


def encode_levels(values, levels: list[str]) -> np.ndarray:
    """Return each value's position in ``levels`` as float32; missing or unseen: NaN.

    Examples
    --------
    >>> encode_levels(["N", "X", None, "S"], ["N", "S"]).tolist()
    [0.0, nan, nan, 1.0]
    """
    codes = pd.Categorical(_as_text(values), categories=levels).codes.astype(np.float32)
    codes[codes < 0] = np.nan
    return codes


def unseen_levels(values, levels: list[str]) -> int:
    """Count the non-missing values that are not among ``levels`` (scored as missing)."""
    text = _as_text(values).dropna()
    return int((~text.isin(levels)).sum())


def feature_matrix(frame, features: list[str], categories: dict | None = None) -> np.ndarray:
    """Return the model matrix (float32, NaN = missing) from a frame or a column view.

    ``categories`` maps each categorical feature to its trained levels; its
    values become their level's position (:func:`encode_levels`).
    """
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise CXDataError(
            f"churn features missing: {', '.join(missing)}; build them with "
            "cx_models.churn_data.snapshot_features"
        )
    categories = categories or {}

    def column(f):
        if f in categories:
            return encode_levels(frame[f], categories[f])
        return as_float(frame[f])

    if isinstance(frame, NumericView):  # the scorer's view: arrays by name, no frame built
        return _row_major([column(f) for f in features])
    if categories:
        return _row_major([column(f) for f in features])
    # categories and nullable dtypes become plain floats here (NaN = missing)
    part = frame[features]
    if all(
        pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in part.dtypes
    ):
        return part.to_numpy(dtype=np.float32, na_value=np.nan)
    return part.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float32)


def _row_major(columns: list[np.ndarray], block: int = 8192) -> np.ndarray:
    """Stack columns into a C-order float32 matrix, a block of rows at a time.

    Filling a whole column of a wide row-major matrix strides through all of it
    once per column; a block of rows stays in cache (figures: benchmarks/README.md).

    Examples
    --------
    >>> _row_major([np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])], block=2).tolist()
    [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]
    """
    n = len(columns[0]) if columns else 0
    out = np.empty((n, len(columns)), dtype=np.float32)
    for start in range(0, n, block):
        rows = out[start : start + block]
        for j, column in enumerate(columns):
            rows[:, j] = column[start : start + block]
    return out
