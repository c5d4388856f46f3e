"""Shifted-beta-geometric (sBG) retention model: likelihood, derivatives, predictions.

Fader & Hardie (2007), "How to project customer retention", and (2010),
"Customer-base valuation in a contractual setting: the perils of ignoring
heterogeneity". At the end of each period an active customer churns with
probability ``θ``, ``θ ~ Beta(alpha, beta)`` across customers. With ``T`` the period
in which a customer is lost (T = 1: no renewal),

    P(T = t) = B(α + 1, β + t − 1) / B(α, β),    S(t) = P(T > t) = B(α, β + t) / B(α, β).

A customer who has made ``k`` renewals and is still active has ``T > k``; given that,
the probability to be active ``m`` periods later is ``S(k + m) / S(k)``. Every term of
the log-likelihood is ``log B(α + i, β + j) − log B(α, β)``, whose gradient and
Hessian are digamma and trigamma differences: both are exact here.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, digamma, hyp2f1, polygamma

__all__ = [
    "PARAMS",
    "derl",
    "log_survival",
    "mean_residual_lifetime",
    "median_residual_lifetime",
    "sbg_loglik",
    "survival",
]

#: Parameter names, in order.
PARAMS = ("alpha", "beta")


def _shifts(renewals, lost):
    k = np.asarray(renewals, dtype=float)
    lost = np.asarray(lost, dtype=bool)
    return np.where(lost, 1.0, 0.0), k  # lost in period k + 1: B(α+1, β+k); active: B(α, β+k)


def sbg_loglik(params, renewals, lost, weights=None, *, derivatives: bool = False):
    """Total log-likelihood of renewals observed so far.

    Parameters
    ----------
    params : (alpha, beta)
    renewals : array_like of int
        Renewals made: a lost relationship was lost in period ``renewals + 1``; an
        active one is censored after ``renewals`` renewals.
    lost : array_like of bool
        Lost (True) or still active (False).
    weights : array_like, optional
        How many relationships each row stands for.
    derivatives : bool
        Also return the gradient (2,) and the Hessian (2, 2) in (alpha, beta).

    Examples
    --------
    >>> round(float(sbg_loglik((0.704, 1.182), [0, 1, 7], [True, True, False],
    ...                        [369, 163, 241])), 2)
    -1014.65
    """
    a, b = (float(v) for v in params)
    ia, jb = _shifts(renewals, lost)
    w = np.ones_like(jb) if weights is None else np.asarray(weights, dtype=float)
    ll = float(np.sum(w * (betaln(a + ia, b + jb) - betaln(a, b))))
    if not derivatives:
        return ll
    total = a + b + ia + jb
    grad = np.array([
        np.sum(w * (digamma(a + ia) - digamma(total))) - w.sum() * (digamma(a) - digamma(a + b)),
        np.sum(w * (digamma(b + jb) - digamma(total))) - w.sum() * (digamma(b) - digamma(a + b)),
    ])
    t1 = lambda z: polygamma(1, z)  # noqa: E731 - trigamma
    cross = -np.sum(w * t1(total)) + w.sum() * t1(a + b)
    hess = np.array([
        [np.sum(w * t1(a + ia)) - w.sum() * t1(a) + cross, cross],
        [cross, np.sum(w * t1(b + jb)) - w.sum() * t1(b) + cross],
    ])
    return ll, grad, hess


def log_survival(alpha, beta, t):
    """Log S(t) = log B(α, β + t) − log B(α, β), elementwise."""
    alpha, beta = np.asarray(alpha, dtype=float), np.asarray(beta, dtype=float)
    return betaln(alpha, beta + np.asarray(t, dtype=float)) - betaln(alpha, beta)


def survival(alpha, beta, t):
    """S(t) = P(T > t): the share of a cohort still active after ``t`` renewals.

    Examples
    --------
    >>> survival(0.704, 1.182, [0, 1, 7]).round(3)
    array([1.   , 0.627, 0.239])
    """
    return np.exp(log_survival(alpha, beta, t))


def derl(alpha, beta, renewals, d):
    """Discounted expected residual lifetime, in payments (Fader & Hardie 2010).

    For a customer who has made ``renewals`` = n − 1 renewals, just before the n-th
    renewal decision: Σ_{t≥n} S(t)/S(n−1) · (1+d)^−(t−n) =
    B(α, β+n) / B(α, β+n−1) · ₂F₁(1, β+n; α+β+n; 1/(1+d)). ``d`` is the discount
    rate per period (> 0).

    Examples
    --------
    >>> derl(0.704, 1.182, [0, 4], 0.10).round(3)
    array([2.965, 5.894])
    """
    n = np.asarray(renewals, dtype=float) + 1.0
    alpha, beta = np.asarray(alpha, dtype=float), np.asarray(beta, dtype=float)
    ratio = np.exp(betaln(alpha, beta + n) - betaln(alpha, beta + n - 1.0))
    return ratio * hyp2f1(1.0, beta + n, alpha + beta + n, 1.0 / (1.0 + float(d)))


def mean_residual_lifetime(alpha, beta, renewals):
    """Return the expected number of further renewals, (β + k)/(α − 1); inf when α ≤ 1.

    Examples
    --------
    >>> mean_residual_lifetime([2.0, 0.7], 1.0, 0)
    array([ 1., inf])
    """
    alpha = np.asarray(alpha, dtype=float)
    k = np.asarray(renewals, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (np.asarray(beta, dtype=float) + k) / (alpha - 1.0)
    return np.where(alpha > 1.0, out, np.inf)


def median_residual_lifetime(alpha, beta, renewals, *, limit: int = 2**40):
    """Return the fewest further periods m with S(k + m)/S(k) ≤ 1/2 (bisection on m).

    Examples
    --------
    >>> median_residual_lifetime(0.704, 1.182, [0, 5])
    array([ 2., 11.])
    """
    alpha, beta, k = np.broadcast_arrays(
        np.asarray(alpha, dtype=float), np.asarray(beta, dtype=float),
        np.asarray(renewals, dtype=float),
    )
    base = log_survival(alpha, beta, k)
    half = np.log(0.5)
    lo = np.zeros(alpha.shape)  # S ratio > 1/2 at lo
    hi = np.ones(alpha.shape)
    while True:  # grow hi until the ratio falls to 1/2
        above = (log_survival(alpha, beta, k + hi) - base) > half
        if not above.any() or hi.max() >= limit:
            break
        lo = np.where(above, hi, lo)
        hi = np.where(above, hi * 2.0, hi)
    while np.any(hi - lo > 1):
        mid = np.floor((lo + hi) / 2.0)
        above = (log_survival(alpha, beta, k + mid) - base) > half
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return hi
