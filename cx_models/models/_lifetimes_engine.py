"""``CLVModel(engine="lifetimes")``: lifetimes' own fitters on the same weighted patterns.

The one module that imports lifetimes; the reference the fast engine is tested
against. Fitters without standard errors (lifetimes' ``ParetoNBDFitter``) give NaN.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np

from cx_models.models._fitting import not_converged
from cx_models.models._patterns import SPEND_PARAMS

__all__ = ["fit_spend", "fit_transactions"]


def _standard_errors(fitter, names) -> np.ndarray:
    try:
        return fitter.standard_errors_[list(names)].to_numpy()
    except AttributeError:
        return np.full(len(names), np.nan)


def fit_transactions(model: str, names, columns, *, penalizer: float, tol: float, n: int):
    """Fit ``model`` with lifetimes on (frequency, recency, T or periods, weights)."""
    x, t_x, T, w = columns
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import (
            BetaGeoBetaBinomFitter,
            BetaGeoFitter,
            ModifiedBetaGeoFitter,
            ParetoNBDFitter,
        )
        from lifetimes.fitters import ConvergenceError as LifetimesConvergenceError

        cls = {
            "bgnbd": BetaGeoFitter,
            "mbgnbd": ModifiedBetaGeoFitter,
            "pnbd": ParetoNBDFitter,
            "bgbb": BetaGeoBetaBinomFitter,
        }[model]
        fitter = cls(penalizer_coef=penalizer)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                fitter.fit(x, t_x, T, weights=w, tol=tol)
        except LifetimesConvergenceError:
            raise not_converged(model, n, "lifetimes") from None
    return fitter.params_[list(names)].to_numpy(), _standard_errors(fitter, names)


def fit_spend(columns, *, penalizer: float, tol: float):
    """Fit Gamma-Gamma with lifetimes on (frequency, monetary_value, weights)."""
    x, m, w = columns
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import GammaGammaFitter
        from lifetimes.fitters import ConvergenceError as LifetimesConvergenceError

        fitter = GammaGammaFitter(penalizer_coef=penalizer)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                fitter.fit(x, m, weights=w, tol=tol, q_constraint=True)
        except LifetimesConvergenceError:
            raise not_converged("Gamma-Gamma", int(w.sum()), "lifetimes") from None
    return fitter.params_[list(SPEND_PARAMS)].to_numpy(), _standard_errors(fitter, SPEND_PARAMS)
