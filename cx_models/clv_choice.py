"""Choosing the transaction model on evidence: a holdout inside the training data.

``clv_model="auto"`` (``--clv-model auto``, the default of ``cx-models train``)
fits every candidate — BG/NBD, MBG/NBD and Pareto/NBD, and BG/BB when the
features count discrete periods (``period_days``) — on a calibration
period inside the training history and keeps the one whose predictions of each
customer's purchase occasions (distinct purchase days) in the holdout are
closest: the lowest per-customer mean absolute error, ties within 1 % broken
by the smaller error of the total. The holdout is the last third of the
history, at least 8 weeks; with less history BG/NBD is kept, and the reason is
recorded. BG/BB predicts the periods with a purchase: where customers buy at most
once a period, as BG/BB assumes, that is their count of purchase days, and it is
compared on it like the others. The chosen model is then refitted on all history (and every churn
snapshot fits it); every candidate's figures and the choice go to MLflow.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from cx_models.clv_fallback import fit_snapshot_clv
from cx_models.clv_validation import holdout_actuals
from cx_models.errors import ConvergenceError, CXDataError
from cx_models.features import features_from_validated, to_pandas_features
from cx_models.models.clv import CLVModel
from cx_models.settings import FeatureSpec
from cx_models.timeutil import parse_as_of

__all__ = [
    "CANDIDATES", "MIN_HOLDOUT_DAYS", "TIE", "candidates_for", "choose_clv_model",
    "fit_transactions", "pick_model",
]

#: The models ``auto`` chooses from (BG/BB needs discrete periods: not a candidate here).
CANDIDATES = ("bgnbd", "mbgnbd", "pnbd")
#: The shortest holdout worth choosing on.
MIN_HOLDOUT_DAYS = 56
#: MAEs within this share of the best are a tie, broken by the total's error.
TIE = 0.01


def candidates_for(period_days: int | None) -> tuple[str, ...]:
    """Return the models compared on these features: :data:`CANDIDATES`, BG/BB with periods.

    Examples
    --------
    >>> candidates_for(7)
    ('bgnbd', 'mbgnbd', 'pnbd', 'bgbb')
    """
    return (*CANDIDATES, *(("bgbb",) if period_days is not None else ()))


def pick_model(figures: dict) -> tuple[str, list[str]]:
    """Return the chosen model and those tied with the best MAE (within :data:`TIE`).

    Examples
    --------
    >>> pick_model({"bgnbd": {"purchases_mae": 0.500, "purchases_total_error": 0.08},
    ...             "pnbd": {"purchases_mae": 0.504, "purchases_total_error": -0.01},
    ...             "mbgnbd": {"purchases_mae": 0.600, "purchases_total_error": 0.0}})
    ('pnbd', ['bgnbd', 'pnbd'])
    """
    best = min(v["purchases_mae"] for v in figures.values())
    tied = [k for k, v in figures.items() if v["purchases_mae"] <= best * (1 + TIE)]
    chosen = min(tied, key=lambda k: abs(figures[k]["purchases_total_error"] or 0.0))
    return chosen, tied


def choose_clv_model(
    transactions: pl.DataFrame,
    *,
    as_of,
    spec: FeatureSpec | None = None,
    penalizer: float = 0.0,
    candidates: tuple[str, ...] | None = None,
) -> dict:
    """Fit each candidate on a calibration period and choose by holdout error.

    Parameters
    ----------
    transactions : polars.DataFrame
        Validated canonical transactions (see :mod:`cx_models.schemas`).
    as_of : str or date
        The last day of the training data; the holdout ends there.
    spec : FeatureSpec, optional
        The feature definition (its time unit is the fit's).
    penalizer : float
        As in :class:`~cx_models.models.clv.CLVModel`.
    candidates : tuple of str, optional
        The models to choose from; by default :data:`CANDIDATES`, and BG/BB when
        ``spec.period_days`` is set.

    Returns
    -------
    dict
        ``chosen``, ``reason``, ``calibration_end``, ``holdout_days`` and, per
        candidate, ``purchases_mae``, ``purchases_total_error`` (predicted minus
        actual over actual), ``purchases_predicted``, ``purchases_actual``,
        ``purchases_corr`` and ``log_likelihood`` (or ``error`` when it could not
        be fitted).

    Examples
    --------
    >>> from cx_models.datasets import load_cdnow
    >>> from cx_models.schemas import validate_transactions
    >>> tx = validate_transactions(load_cdnow("sample"), as_of="1998-06-30").data
    >>> choice = choose_clv_model(tx, as_of="1998-06-30")
    >>> choice["chosen"], choice["calibration_end"], choice["holdout_days"]
    ('mbgnbd', '1997-12-31', 181)
    """
    as_of = parse_as_of(as_of)
    spec = spec or FeatureSpec()
    if candidates is None:
        candidates = candidates_for(spec.period_days)
    if transactions.height == 0:
        raise CXDataError("no transactions to choose a CLV model on")
    first_day = transactions["timestamp"].min().date()
    holdout_days = (as_of - first_day).days // 3
    out = {"candidates": {}, "holdout_days": int(holdout_days), "calibration_end": None}
    if holdout_days < MIN_HOLDOUT_DAYS:
        out["chosen"] = "bgnbd"
        out["reason"] = (
            f"the last third of the history is {holdout_days} days, under the "
            f"{MIN_HOLDOUT_DAYS} a holdout needs: BG/NBD kept without a comparison"
        )
        return out
    start = as_of - dt.timedelta(days=holdout_days)
    out["calibration_end"] = start.isoformat()
    table, _ = features_from_validated(transactions, None, as_of=start, spec=spec)
    features = to_pandas_features(table, as_of=start, spec=spec)
    actual = (
        table.select("customer_id")
        .join(holdout_actuals(transactions, start, as_of), on="customer_id", how="left")
        ["actual_purchases"].fill_null(0.0).to_numpy()
    )
    for name in candidates:
        try:
            # a larger penalizer where the asked one is not identified, as training does
            model = fit_snapshot_clv(features, name, penalizer=penalizer)
        except (ConvergenceError, CXDataError) as exc:
            out["candidates"][name] = {"error": str(exc)}
            continue
        predicted = model.predict_arrays(features, horizon_days=holdout_days, clv_months=0)[
            "expected_purchases"
        ]
        corr = np.corrcoef(actual, predicted)[0, 1] if np.std(predicted) > 0 else None
        out["candidates"][name] = {
            "purchases_mae": float(np.abs(actual - predicted).mean()),
            "purchases_total_error": float((predicted.sum() - actual.sum()) / actual.sum())
            if actual.sum() > 0
            else None,
            "purchases_predicted": float(predicted.sum()),
            "purchases_actual": float(actual.sum()),
            "purchases_corr": None if corr is None else float(corr),
            "log_likelihood": model.log_likelihood_,
            "penalizer": float(model.penalizer),
        }
    fitted = {k: v for k, v in out["candidates"].items() if "purchases_mae" in v}
    if not fitted:
        out["chosen"] = "bgnbd"
        out["reason"] = "no candidate could be fitted on the calibration period: BG/NBD kept"
        return out
    chosen, tied = pick_model(fitted)
    out["chosen"] = chosen
    ties = [t for t in tied if t != chosen]
    tie_note = f"; tied within 1 % with {', '.join(ties)}, smaller total error" if ties else ""
    out["reason"] = (
        f"lowest per-customer MAE of holdout purchase days "
        f"({fitted[chosen]['purchases_mae']:.4f}{tie_note}) on the {holdout_days} days "
        f"after {start}"
    )
    return out


def fit_transactions(model: CLVModel, transactions, *, as_of, fmt=None, spec=None) -> CLVModel:
    """Fit ``model`` on raw transactions as of ``as_of``, choosing first when it is ``"auto"``.

    The implementation of :meth:`CLVModel.fit_transactions
    <cx_models.models.clv.CLVModel.fit_transactions>`.

    Examples
    --------
    >>> from cx_models.datasets import load_cdnow
    >>> m = CLVModel(model="auto").fit_transactions(load_cdnow("sample"), as_of="1998-06-30")
    >>> m.model, m.choice_["calibration_end"], m.n_customers_
    ('mbgnbd', '1997-12-31', 2357)
    """
    from cx_models.schemas import validate_transactions

    spec = spec or FeatureSpec()
    as_of = parse_as_of(as_of)
    validated = validate_transactions(transactions, as_of=as_of, fmt=fmt).data
    if model.model == "auto":
        model.choice_ = choose_clv_model(
            validated, as_of=as_of, spec=spec, penalizer=model.penalizer
        )
        model.model = model.choice_["chosen"]
    table, _ = features_from_validated(validated, None, as_of=as_of, spec=spec)
    return model.fit(to_pandas_features(table, as_of=as_of, spec=spec))
