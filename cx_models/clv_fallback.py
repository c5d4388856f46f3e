"""Fitting a CLV model that must not stop a training run: larger penalizers in turn.

A churn snapshot's transaction model, the scorer's CLV model and the churn
features' own model are fitted on whatever history the user has. Where the plain
maximum-likelihood fit is not identified, or its estimates sit at a boundary
where the predictions overflow, :func:`fit_snapshot_clv` refits with the next
penalizer of :data:`FALLBACK_PENALIZERS` and says which one it kept.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cx_models.errors import ConvergenceError
from cx_models.models.clv import CLVModel

__all__ = ["FALLBACK_PENALIZER", "FALLBACK_PENALIZERS", "fit_snapshot_clv"]

#: The penalizer a snapshot's CLV fit is retried with first when it is not identified.
FALLBACK_PENALIZER = 0.001
#: The penalizers tried in turn while a fit is not identified or predicts non-finite values.
FALLBACK_PENALIZERS = (FALLBACK_PENALIZER, 0.01, 0.1)


def fit_snapshot_clv(
    frame: pd.DataFrame, model: str = "bgnbd", *, penalizer: float = 0.0, covariates=None
) -> CLVModel:
    """Fit ``model`` on a snapshot's features, retried with :data:`FALLBACK_PENALIZERS`.

    A fit is retried with the next larger penalizer (on the transaction and the
    spend model alike) while it is not identified
    (``ConvergenceError``) or its estimates predict non-finite values for some
    customer of ``frame`` (BG/NBD on data with no sign of dropout drives ``a`` and
    ``b`` to 0, where its hypergeometric terms overflow); the model's ``penalizer``
    says which fit was kept. When every penalizer fails, ``ConvergenceError``.

    Examples
    --------
    >>> from cx_models.datasets import load_cdnow_summary
    >>> fit_snapshot_clv(load_cdnow_summary()).penalizer
    0.0
    """
    tried = [penalizer, *(p for p in FALLBACK_PENALIZERS if p > penalizer)]
    failure = None
    for pen in tried:
        try:
            # the retries penalize the spend model too (Gamma-Gamma does not converge when
            # every customer's mean spend is alike)
            spend = 0.0 if pen == penalizer else pen
            clv = CLVModel(
                model=model, penalizer=pen, spend_penalizer=spend, covariates=covariates
            ).fit(frame)
        except ConvergenceError as exc:
            failure = exc
            continue
        bad = _non_finite(clv, frame)
        if not bad:
            return clv
        estimates = ", ".join(f"{k} {v:.3g}" for k, v in clv.params_.items())
        failure = ConvergenceError(
            f"the {model} fit (penalizer {pen:g}; {estimates}) predicts non-finite values "
            f"for {bad:,} customers"
        )
    raise ConvergenceError(f"{failure} (penalizers tried: {', '.join(f'{p:g}' for p in tried)})")


def _non_finite(clv: CLVModel, frame: pd.DataFrame) -> int:
    """Count the customers with a non-finite prediction (90 days, 12 months' CLV)."""
    pred = clv.predict_arrays(frame, horizon_days=90, clv_months=12, discount_rate=0.10)
    bad = np.zeros(len(frame), dtype=bool)
    for name in ("p_alive", "expected_purchases", "prob_no_purchase"):
        bad |= ~np.isfinite(pred[name])
    return int(bad.sum())
