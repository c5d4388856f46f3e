"""BG/NBD and MBG/NBD: likelihood with analytic gradients, predictions, weighted patterns.

Pure NumPy/SciPy, no lifetimes: the fitter in :mod:`cx_models.models.clv` uses these to
fit quickly on weighted unique (frequency, recency, T) patterns, and the tests
hold them to lifetimes' likelihoods, estimates and conditional predictions.

Notation (Fader, Hardie & Lee 2005): ``x`` = frequency (repeat occasions),
``t_x`` = recency, ``T`` = age, all in one time unit; BG/NBD and MBG/NBD
parameters ``r, alpha, a, b``; Gamma-Gamma parameters ``p, q, v`` (``v`` is the
literature's gamma).

The conditional expectation uses Euler's transformation of the Gauss
hypergeometric function, which turns lifetimes'
``((alpha+T)/(alpha+T+t))^(r+x) * 2F1(r+x, b+x; a+b+x-1; z)`` (an overflow times
an underflow for heavy buyers) into ``(1-z)^(a-1) * 2F1(a+b-1-r, a-1; a+b+x-1; z)``,
finite for any frequency.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, hyp2f1

from cx_models.models._maths import as_params
from cx_models.models._maths import log_rising as _log_rising
from cx_models.models._maths import rising_digamma as _rising_digamma

__all__ = [
    "BGNBDPatterns",
    "bgnbd_loglik",
    "bgnbd_objective",
    "conditional_expected_purchases",
    "expected_purchases",
    "p_alive",
    "p_alive_at",
    "prob_no_purchase",
    "purchases_if_alive",
]


def _check_transaction_model(model: str) -> str:
    if model not in ("bgnbd", "mbgnbd"):
        raise ValueError(f"model must be 'bgnbd' or 'mbgnbd', got {model!r}")
    return model


def bgnbd_loglik(params, x, t_x, T, *, model: str = "bgnbd", grad: bool = False):
    """Per-customer log-likelihood of the BG/NBD (or MBG/NBD) model.

    Parameters
    ----------
    params : sequence of float
        ``(r, alpha, a, b)``.
    x, t_x, T : array_like
        Frequency (integer), recency and age, in the time unit of ``alpha``.
    model : {"bgnbd", "mbgnbd"}
        BG/NBD (dropout only after repeat purchases) or MBG/NBD (also at time 0).
    grad : bool
        Also return the gradient, an array of shape (4, n): d ll / d (r, alpha, a, b).

    Returns
    -------
    ll : numpy.ndarray
        The log-likelihood of each customer.

    Examples
    --------
    >>> ll = bgnbd_loglik((0.243, 4.414, 0.793, 2.426), [2], [30.43], [38.86])
    >>> round(float(ll[0]), 4)
    -9.4586
    """
    _check_transaction_model(model)
    r, alpha, a, b = as_params(params)
    x = np.asarray(x).astype(np.int64)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    table = {"max_x": int(x.max(initial=0)) + 2}
    shift = 1 if model == "mbgnbd" else 0
    log_at = np.log(alpha + T)
    log_ar = np.log(alpha + t_x)
    a1 = _log_rising(r, x, table) + r * np.log(alpha)
    # lnB(a, b + x + shift) - lnB(a, b)
    a2 = _log_rising(b, x + shift, table) - _log_rising(a + b, x + shift, table)
    a3 = -(r + x) * log_at
    if model == "bgnbd":
        has = x > 0
        a4 = np.where(has, np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * log_ar, -np.inf)
    else:
        has = np.ones_like(x, dtype=bool)
        a4 = np.log(a) - np.log(b + x) - (r + x) * log_ar
    mix = np.logaddexp(a3, a4)
    ll = a1 + a2 + mix
    if not grad:
        return ll
    w4 = np.where(has, np.exp(a4 - mix), 0.0)
    w3 = 1.0 - w4
    d_r = _rising_digamma(r, x, table) + np.log(alpha) - w3 * log_at - w4 * log_ar
    d_alpha = r / alpha - (r + x) * (w3 / (alpha + T) + w4 / (alpha + t_x))
    d_a = -_rising_digamma(a + b, x + shift, table) + w4 / a
    denom_b = b + x - 1 if model == "bgnbd" else b + x
    d_b = (
        _rising_digamma(b, x + shift, table)
        - _rising_digamma(a + b, x + shift, table)
        - w4 / np.where(has, denom_b, 1.0)
    )
    return ll, np.vstack([d_r, d_alpha, d_a, d_b])


def bgnbd_objective(log_params, x, t_x, T, weights, penalizer: float = 0.0, model="bgnbd"):
    """Lifetimes' objective and its gradient in log-parameters.

    ``-sum(w * ll) / sum(w) + penalizer * sum(params ** 2)``, the function
    lifetimes minimises (on its time axis scaled so that max T = 1).

    Examples
    --------
    >>> f, g = bgnbd_objective(np.log([1.0, 1.0, 1.0, 1.0]), [1, 0], [0.5, 0], [1, 1], [1, 1])
    >>> g.shape
    (4,)
    """
    params = np.exp(log_params)
    ll, d = bgnbd_loglik(params, x, t_x, T, model=model, grad=True)
    w = np.asarray(weights, dtype=float)
    total = w.sum()
    value = -(w @ ll) / total + penalizer * np.sum(params**2)
    gradient = (-(d @ w) / total + 2.0 * penalizer * params) * params
    return value, gradient


def p_alive(params, x, t_x, T, *, model: str = "bgnbd") -> np.ndarray:
    """Probability that each customer is still alive at ``T``.

    BG/NBD gives 1 to every customer without a repeat purchase (they cannot
    have dropped out yet) — a property of the model, not evidence of loyalty.

    Examples
    --------
    >>> p_alive((0.243, 4.414, 0.793, 2.426), [0, 2], [0.0, 30.43], [38.86, 38.86]).round(4)
    array([1.    , 0.7266])
    """
    _check_transaction_model(model)
    r, alpha, a, b = as_params(params)
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    ratio = (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    if model == "bgnbd":
        log_div = ratio + np.log(a) - np.log(b + np.maximum(x, 1) - 1)
        return np.where(x == 0, 1.0, expit(-log_div))
    return expit(-(ratio + np.log(a) - np.log(b + x)))


def p_alive_at(params, t, x, t_x, T, *, model: str = "bgnbd") -> np.ndarray:
    """Probability of being alive at ``T + t`` given the history to ``T``.

    An alive customer drops out only right after a purchase (probability ``p``),
    so given ``λ`` and ``p`` they survive ``t`` with ``E[(1-p)^N(t)] = exp(-λ p t)``.
    Alive at ``T``, the posteriors are ``λ ~ Gamma(r+x, α+T)`` and
    ``p ~ Beta(a, b+x)`` (``b+x+1`` for MBG/NBD), independent, which gives
    ``P(alive at T) · 2F1(r+x, a; a+b'; −t/(α+T))``, evaluated by Pfaff's
    transformation as ``(1+c)^-a · 2F1(a, a+b'−r−x; a+b'; c/(1+c))``, ``c = t/(α+T)``.

    Examples
    --------
    >>> p = p_alive_at((0.243, 4.414, 0.793, 2.426), [0.0, 52.0], [2], [30.43], [38.86])
    >>> p.round(4)
    array([0.7266, 0.5316])
    """
    _check_transaction_model(model)
    r, alpha, a, b = as_params(params)
    x = np.asarray(x, dtype=float)
    T = np.asarray(T, dtype=float)
    t = np.asarray(t, dtype=float)
    b_post = b + x + (1.0 if model == "mbgnbd" else 0.0)
    c = t / (alpha + T)
    survive = np.power(1.0 + c, -a) * hyp2f1(a, a + b_post - r - x, a + b_post, c / (1.0 + c))
    return p_alive(params, x, t_x, T, model=model) * survive


def conditional_expected_purchases(params, t, x, t_x, T, *, model: str = "bgnbd") -> np.ndarray:
    """Return the expected number of purchases in ``(T, T + t]`` given the history.

    ``t`` may be a scalar or an array broadcasting against the customers.

    Examples
    --------
    >>> e = conditional_expected_purchases((0.243, 4.414, 0.793, 2.426), 39, [2], [30.43], [38.86])
    >>> round(float(e[0]), 3)
    1.226
    """
    return purchases_if_alive(params, t, x, T, model=model) * p_alive(
        params, x, t_x, T, model=model
    )


def purchases_if_alive(params, t, x, T, *, model: str = "bgnbd") -> np.ndarray:
    """Return expected purchases in ``(T, T + t]`` of a customer known to be alive at ``T``.

    :func:`conditional_expected_purchases` is this times :func:`p_alive`. It
    depends on the history only through ``x`` and ``T`` (not the recency), so a
    customer base is evaluated once per distinct (frequency, T) pair: the
    hypergeometric function is the costly part of scoring.

    Examples
    --------
    >>> params = (0.243, 4.414, 0.793, 2.426)
    >>> e = purchases_if_alive(params, 39, [2], [38.86]) * p_alive(params, [2], [30.43], [38.86])
    >>> round(float(e[0]), 3)
    1.226
    """
    _check_transaction_model(model)
    r, alpha, a, b = as_params(params)
    x = np.asarray(x, dtype=float)
    t = np.asarray(t, dtype=float)
    T = np.asarray(T, dtype=float)
    z = t / (alpha + T + t)
    if model == "bgnbd":
        c = a + b + x - 1
        hyp = hyp2f1(a + b - 1 - r, a - 1, c, z)
    else:
        c = a + b + x
        hyp = hyp2f1(a + b - r, a - 1, c, z)
    # 1 - (1 - z)^(a - 1) * hyp, with care for small z; the hypergeometric term can be
    # negative (c < 0: a + b < 1 and x = 0, seen on early CDNOW snapshots): then directly
    with np.errstate(invalid="ignore", divide="ignore"):
        logged = -np.expm1((a - 1) * np.log1p(-z) + np.log(hyp))
    bracket = np.where(hyp > 0, logged, 1.0 - np.power(1.0 - z, a - 1) * hyp)
    return c / (a - 1) * bracket


def expected_purchases(params, t, *, model: str = "bgnbd") -> np.ndarray:
    """Return E[X(t)], the expected repeat purchases of a new customer by age ``t``.

    Examples
    --------
    >>> expected_purchases((0.243, 4.414, 0.793, 2.426), [39.0]).round(4)
    array([1.1967])
    """
    _check_transaction_model(model)
    r, alpha, a, b = as_params(params)
    t = np.asarray(t, dtype=float)
    z = t / (alpha + t)
    if model == "bgnbd":
        hyp = hyp2f1(a + b - 1 - r, a - 1, a + b - 1, z)
        lead = (a + b - 1) / (a - 1)
    else:
        hyp = hyp2f1(a + b - r, a - 1, a + b, z)
        lead = b / (a - 1)
    # Euler's transformation again: (alpha/(alpha+t))^r 2F1(r, b; c; z) = (1-z)^(a-1) 2F1(...)
    return lead * -np.expm1((a - 1) * np.log1p(-z) + np.log(hyp))


def prob_no_purchase(params, t, x, t_x, T, *, model: str = "bgnbd", alive=None) -> np.ndarray:
    """Probability of no purchase in ``(T, T + t]``.

    ``1 - P(alive) + P(alive) * ((alpha + T) / (alpha + T + t)) ** (r + x)``;
    ``alive``: :func:`p_alive` of the same customers, when already computed.

    Examples
    --------
    >>> prob_no_purchase((0.243, 4.414, 0.793, 2.426), 39, [0], [0.0], [38.86]).round(4)
    array([0.8554])
    """
    r, alpha, a, b = as_params(params)
    x = np.asarray(x, dtype=float)
    T = np.asarray(T, dtype=float)
    if alive is None:
        alive = p_alive(params, x, t_x, T, model=model)
    stay_quiet = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + np.asarray(t, float))))
    return np.clip(1.0 - alive + alive * stay_quiet, 0.0, 1.0)


class BGNBDPatterns:
    """Weighted (x, t_x, T) patterns prepared for fast repeated likelihood evaluations.

    Terms that depend on ``x`` alone are computed once per distinct ``x``, and the
    logarithms of ``alpha + T`` and ``alpha + t_x`` once per distinct value, so an
    evaluation costs a few array operations per pattern. :meth:`objective` equals
    :func:`bgnbd_objective` (tested).

    Examples
    --------
    >>> data = BGNBDPatterns([2, 0], [30.43, 0.0], [38.86, 38.86], [1, 1])
    >>> theta = np.log([0.243, 4.414, 0.793, 2.426])
    >>> bool(np.isclose(data.objective(theta)[0],
    ...                 bgnbd_objective(theta, [2, 0], [30.43, 0.0], [38.86, 38.86], [1, 1])[0]))
    True
    """

    def __init__(self, x, t_x, T, weights, *, model: str = "bgnbd"):
        self.model = _check_transaction_model(model)
        x = np.asarray(x).astype(np.int64)
        w = np.asarray(weights, dtype=float)
        self.total = w.sum()
        self.T_values, self.T_index = np.unique(np.asarray(T, dtype=float), return_inverse=True)
        self.r_values, self.r_index = np.unique(np.asarray(t_x, dtype=float), return_inverse=True)
        self.x_values, x_index = np.unique(x, return_inverse=True)
        self.x = x.astype(float)
        self.w = w
        self.x_weight = np.bincount(x_index, weights=w)  # total weight per distinct x
        self.has = x > 0 if model == "bgnbd" else np.ones(x.size, dtype=bool)
        self.x_index = x_index
        self.shift = 1 if model == "mbgnbd" else 0

    def objective(self, log_params, penalizer: float = 0.0):
        """Return lifetimes' objective and its gradient in log-parameters."""
        params = np.exp(log_params)
        r, alpha, a, b = params
        xv = self.x_values.astype(float)
        s = self.shift
        w, xw = self.w, self.x_weight
        # x-only terms, per distinct x
        table = {"max_x": int(self.x_values.max(initial=0)) + 2}
        xv_int = self.x_values
        a12 = (
            _log_rising(r, xv_int, table)
            + r * np.log(alpha)
            + _log_rising(b, xv_int + s, table)
            - _log_rising(a + b, xv_int + s, table)
        )
        d_r_x = _rising_digamma(r, xv_int, table) + np.log(alpha)
        d_ab_x = _rising_digamma(a + b, xv_int + s, table)
        d_b_x = _rising_digamma(b, xv_int + s, table)
        if self.model == "bgnbd":
            c_x = np.log(a) - np.log(b + np.maximum(xv, 1) - 1)
            inv_b_x = 1.0 / (b + np.maximum(xv, 1) - 1)
        else:
            c_x = np.log(a) - np.log(b + xv)
            inv_b_x = 1.0 / (b + xv)
        # per-pattern terms
        log_at = np.log(alpha + self.T_values)[self.T_index]
        log_ar = np.log(alpha + self.r_values)[self.r_index]
        rx = r + self.x
        a3 = -rx * log_at
        d = c_x[self.x_index] + rx * (log_at - log_ar)
        # mix = logaddexp(a3, a3 + d) = a3 + softplus(d); w4 = sigmoid(d)
        e = np.exp(-np.abs(d))
        softplus = np.maximum(d, 0) + np.log1p(e)
        w4 = np.where(d >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        softplus = np.where(self.has, softplus, 0.0)
        w4 = np.where(self.has, w4, 0.0)
        w3 = 1.0 - w4
        ll_total = xw @ a12 + w @ (a3 + softplus)
        inv_at = (1.0 / (alpha + self.T_values))[self.T_index]
        inv_ar = (1.0 / (alpha + self.r_values))[self.r_index]
        ww4 = w * w4
        g_r = xw @ d_r_x - w @ (w3 * log_at) - ww4 @ log_ar
        g_alpha = self.total * r / alpha - (w * rx) @ (w3 * inv_at + w4 * inv_ar)
        g_a = -(xw @ d_ab_x) + ww4.sum() / a
        g_b = xw @ (d_b_x - d_ab_x) - ww4 @ inv_b_x[self.x_index]
        grad_ll = np.array([g_r, g_alpha, g_a, g_b])
        value = -ll_total / self.total + penalizer * np.sum(params**2)
        gradient = (-grad_ll / self.total + 2.0 * penalizer * params) * params
        return value, gradient
