"""The optimiser every likelihood of :mod:`cx_models.models` shares.

Each model gives a pattern object whose ``objective(theta, penalty)`` returns the
negative log-likelihood (plus an L2 penalty on the parameters) and its analytic
gradient in log-parameters. :func:`minimise` finds the optimum with BFGS and
returns it with a numeric Hessian; :func:`inverse_hessian` turns the Hessian into
the covariance of the estimates, or says why the model is not identified.
"""

from __future__ import annotations

import numpy as np

from cx_models.errors import ConvergenceError
from cx_models.models._patterns import numeric_hessian, positive_inverse

__all__ = ["inverse_hessian", "minimise", "not_converged"]

# Above this many patterns, a fit on a seeded subsample starts the optimiser.
_WARM_START_ABOVE = 100_000
_WARM_START_SAMPLE = 20_000


def not_converged(what: str, n: int, detail: str) -> ConvergenceError:
    """Return the error for a fit of ``what`` on ``n`` customers that did not converge."""
    hint = (
        "CLVModel(spend_penalizer=0.001)" if what == "Gamma-Gamma"
        else "CLVModel(penalizer=0.001) or --penalizer 0.001 (clv fit, train)"
    )
    return ConvergenceError(
        f"{what} did not converge on {n:,} customers ({detail}); try a penalizer, e.g. {hint}"
    )


def minimise(make, columns, theta0, *, penalty: float, tol: float, what: str, n: int):
    """Minimise ``make(*columns).objective`` with BFGS; return the optimum and Hessian.

    On large inputs a fit on a seeded subsample of the patterns gives the
    starting point and, through its Hessian, BFGS's initial inverse Hessian,
    so the full-data optimisation needs only a few steps. "Large" is more than
    ``make.WARM_START_ABOVE`` patterns (100,000 unless the pattern class says;
    its ``WARM_START_SAMPLE`` is the subsample's size, 20,000 by default).

    Examples
    --------
    >>> class Quadratic:
    ...     def __init__(self, c):
    ...         self.c = c
    ...     def objective(self, theta, penalty):
    ...         d = theta - self.c
    ...         return float(d @ d), 2 * d
    >>> theta, hessian = minimise(Quadratic, (np.array([1.0, -2.0]),), np.zeros(2),
    ...                           penalty=0.0, tol=1e-8, what="test", n=1)
    >>> theta.round(6).tolist(), hessian.round(3).tolist()
    ([1.0, -2.0], [[2.0, 0.0], [0.0, 2.0]])
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _minimise(make, columns, theta0, penalty, tol, what, n)


def _minimise(make, columns, theta0, penalty, tol, what, n):
    from scipy.optimize import minimize  # only fitting needs it (import ~0.4 s)

    full = make(*columns)
    hess_inv0 = None
    size = columns[0].size
    above = getattr(make, "WARM_START_ABOVE", _WARM_START_ABOVE)
    if size > above:
        rng = np.random.default_rng(0)
        sample = getattr(make, "WARM_START_SAMPLE", _WARM_START_SAMPLE)
        pick = np.sort(rng.choice(size, sample, replace=False))
        sub = make(*(c[pick] for c in columns))
        warm = minimize(
            sub.objective,
            theta0,
            args=(penalty,),
            jac=True,
            method="BFGS",
            options={"gtol": 1e-6, "maxiter": 2000},
        )
        if np.all(np.isfinite(warm.x)):
            theta0 = warm.x
            hess_inv0 = positive_inverse(
                numeric_hessian(lambda th: sub.objective(th, penalty)[1], theta0)
            )
    result = minimize(
        full.objective,
        theta0,
        args=(penalty,),
        jac=True,
        method="BFGS",
        options={"gtol": tol, "maxiter": 2000, "hess_inv0": hess_inv0},
    )
    if not np.all(np.isfinite(result.x)) or (
        not result.success and np.linalg.norm(result.jac, np.inf) > 1e-5
    ):
        raise not_converged(what, n, result.message)
    hessian = numeric_hessian(lambda th: full.objective(th, penalty)[1], result.x)
    return result.x, hessian


def inverse_hessian(hess: np.ndarray, what: str, n: int) -> np.ndarray:
    """Invert the Hessian at the optimum, or explain why the estimate is not identified."""
    try:
        inv = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        inv = None
    if inv is None or not np.all(np.isfinite(inv)) or np.any(np.diag(inv) <= 0):
        raise ConvergenceError(
            f"{what}: the likelihood is flat at the optimum on {n:,} customers, so the "
            "parameters are not identified (too few customers or repeat purchases); add "
            "data, or a penalizer, e.g. --penalizer 0.001 (clv fit, train)"
        )
    return inv
