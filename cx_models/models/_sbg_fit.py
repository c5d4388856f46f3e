"""The maximum-likelihood fit of one group of the sBG model, with standard errors.

Used by :class:`cx_models.sbg.SBGModel`: L-BFGS-B on the log-parameters from three
starts with the exact gradient; the standard errors from the inverse of the exact
Hessian (the observed information) at the estimate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize

from cx_models.errors import CXDataError
from cx_models.models import sbg as _sbg

__all__ = ["SBGFit", "fit_group"]


@dataclass(frozen=True)
class SBGFit:
    """One group's estimate: parameters, standard errors, covariance, size, log-likelihood."""

    alpha: float
    beta: float
    se: dict
    cov: list
    n: float
    log_likelihood: float

    def to_dict(self) -> dict:
        """Return a JSON-friendly dict."""
        return asdict(self)


def fit_group(renewals, lost, weights, group: str) -> SBGFit:
    """Fit one group's renewals (see the module docstring); raise when not identified."""
    renewals = np.asarray(renewals, dtype=float)
    lost = np.asarray(lost, dtype=bool)
    weights = np.asarray(weights, dtype=float)
    n_lost = float(weights[lost].sum())
    if n_lost == 0:
        raise CXDataError(
            f"sBG group {group!r}: no relationship was lost, so the churn rate cannot be "
            "estimated; give a longer history or fit without --by"
        )
    kept_any = bool(((~lost) & (renewals > 0)).any() or (lost & (renewals > 0)).any())
    if not kept_any:
        raise CXDataError(
            f"sBG group {group!r}: every relationship was lost in its first period, so the "
            "spread of churn rates cannot be estimated; give a longer history"
        )

    def objective(theta):
        ll, grad, _ = _sbg.sbg_loglik(np.exp(theta), renewals, lost, weights, derivatives=True)
        return -ll, -grad * np.exp(theta)

    best = None
    for start in ((0.0, 0.0), (-1.0, 1.0), (1.0, 2.0)):
        res = minimize(objective, np.array(start), jac=True, method="L-BFGS-B",
                       bounds=[(-20.0, 20.0)] * 2, options={"maxiter": 2000, "gtol": 1e-10})
        if best is None or res.fun < best.fun:
            best = res
    alpha, beta = (float(v) for v in np.exp(best.x))
    if not (1e-6 < alpha < 1e7 and 1e-6 < beta < 1e7):
        raise CXDataError(
            f"sBG group {group!r}: the fit ran to a boundary (alpha={alpha:.3g}, "
            f"beta={beta:.3g}): the data does not identify the model"
        )
    ll, _, hess = _sbg.sbg_loglik((alpha, beta), renewals, lost, weights, derivatives=True)
    try:
        cov = np.linalg.inv(-hess)
        se = np.sqrt(np.diag(cov))
    except np.linalg.LinAlgError:
        cov, se = np.full((2, 2), np.nan), np.full(2, np.nan)
    return SBGFit(
        alpha=alpha, beta=beta,
        se={"alpha": float(se[0]), "beta": float(se[1])},
        cov=cov.tolist(), n=float(weights.sum()), log_likelihood=float(ll),
    )
