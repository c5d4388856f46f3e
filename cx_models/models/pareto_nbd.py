"""Pareto/NBD: likelihood with analytic gradients, P(alive), predictions, weighted patterns.

Schmittlein, Morrison & Colombo (1987); the expressions of Fader, Hardie & Lee,
"A note on deriving the Pareto/NBD model and related expressions" (2005).
Purchases while alive are Poisson(λ), λ ~ Gamma(r, α); lifetimes are
exponential(μ), μ ~ Gamma(s, β). Parameters ``(r, alpha, s, beta)``; ``x`` =
frequency, ``t_x`` = recency, ``T`` = age, one time unit.

The likelihood is written in its integral form,

    L = Γ(r+x) α^r β^s / Γ(r) · [ (α+T)^-(r+x) (β+T)^-s
                                  + s ∫_{t_x}^{T} (α+τ)^-(r+x) (β+τ)^-(s+1) dτ ],

and the integral is taken by a composite Gauss-Legendre rule in ``y = ln(m + τ)``,
``m = min(α, β)``, where the log of the integrand is close to linear on either
side of ``y = ln|α − β|``: panels doubling in width from where the mass sits keep
it to ~1e-12 relative whatever the frequency (3,000 purchases or ten years in
days) and the ratio of α to β (tested against mpmath's closed form with the Gauss
hypergeometric function). The gradient is the same rule applied to the
derivatives under the integral sign. The same integral, with other exponents,
gives P(no purchase in a horizon | alive).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, gammaln

from cx_models.models._maths import as_params
from cx_models.models._maths import log_rising as _log_rising
from cx_models.models._maths import rising_digamma as _rising_digamma

__all__ = [
    "PARAMS",
    "ParetoNBDPatterns",
    "conditional_expected_purchases",
    "expected_purchases",
    "p_alive",
    "p_alive_at",
    "pnbd_loglik",
    "prob_no_purchase",
    "purchases_if_alive",
]

#: Parameter names, in order.
PARAMS = ("r", "alpha", "s", "beta")

def _params(params):
    r, alpha, s, beta = as_params(params)
    return r, alpha, s, beta


def _power_integral(e_a, e_b, alpha, beta, lo, hi, *, grad: bool = False):
    """``log ∫_lo^hi (α+τ)^-e_a (β+τ)^-e_b dτ`` per row, and the means for its gradient.

    The rule of the module docstring, compiled
    (:func:`cx_models.models._kernels.power_integral`). With ``grad`` the
    second result holds, per row, the means under the integrand of ``ln(α+τ)``,
    ``1/(α+τ)``, ``ln(β+τ)`` and ``1/(β+τ)``.
    """
    from cx_models.models import _kernels as kernels

    n = np.broadcast(e_a, e_b, alpha, beta, lo, hi).size
    rows = [np.ascontiguousarray(np.broadcast_to(np.asarray(v, dtype=float), (n,)))
            for v in (e_a, e_b, alpha, beta, lo, hi)]
    return kernels.power_integral(
        *rows, bool(grad), kernels.BREAKS, kernels.GL_NODES, kernels.GL_WEIGHTS,
    )


def _integral_terms(r, alpha, s, beta, x, t_x, T, *, grad: bool):
    """Return ``log(s I)`` and, with ``grad``, ``dI/dθ / I`` for θ = (r, alpha, s, beta).

    ``I = ∫_{t_x}^{T} (α+τ)^-(r+x) (β+τ)^-(s+1) dτ``; rows with ``t_x = T`` get
    ``log(s I) = -inf`` and zero derivatives.
    """
    log_I, means = _power_integral(r + x, s + 1.0, alpha, beta, t_x, T, grad=grad)
    log_sI = np.log(s) + log_I
    if not grad:
        return log_sI, None
    d_r = -means[:, 0]
    d_alpha = -(r + x) * means[:, 1]
    d_s = -means[:, 2]
    d_beta = -(s + 1.0) * means[:, 3]
    return log_sI, (d_r, d_alpha, d_s, d_beta)


def _loglik_block(r, alpha, s, beta, x, t_x, T, lead, d_lead, *, grad: bool):
    """Per-pattern log-likelihood (and gradient) given the x-only terms."""
    log_aT = np.log(alpha + T)
    log_bT = np.log(beta + T)
    first = -(r + x) * log_aT - s * log_bT
    log_sI, d_I = _integral_terms(r, alpha, s, beta, x, t_x, T, grad=grad)
    mix = np.logaddexp(first, log_sI)
    ll = lead + r * np.log(alpha) + s * np.log(beta) + mix
    if not grad:
        return ll, None
    w1 = np.exp(first - mix)  # the share of the first term (= P(alive))
    w2 = 1.0 - w1
    d_r = d_lead + np.log(alpha) - w1 * log_aT + w2 * d_I[0]
    d_alpha = r / alpha - w1 * (r + x) / (alpha + T) + w2 * d_I[1]
    d_s = np.log(beta) - w1 * log_bT + w2 * (1.0 / s + d_I[2])
    d_beta = s / beta - w1 * s / (beta + T) + w2 * d_I[3]
    return ll, np.vstack([d_r, d_alpha, d_s, d_beta])


def pnbd_loglik(params, x, t_x, T, *, grad: bool = False):
    """Per-customer log-likelihood of the Pareto/NBD model.

    Parameters
    ----------
    params : sequence of float
        ``(r, alpha, s, beta)``.
    x, t_x, T : array_like
        Frequency (integer), recency and age, in the time unit of ``alpha``.
    grad : bool
        Also return the gradient, shape (4, n): d ll / d (r, alpha, s, beta).

    Examples
    --------
    >>> ll = pnbd_loglik((0.5533, 10.5776, 0.6062, 11.6679), [2], [30.43], [38.86])
    >>> round(float(ll[0]), 4)
    -9.5543
    """
    r, alpha, s, beta = _params(params)
    x = np.atleast_1d(np.asarray(x)).astype(np.int64)
    t_x = np.atleast_1d(np.asarray(t_x, dtype=float))
    T = np.atleast_1d(np.asarray(T, dtype=float))
    xf = x.astype(float)
    lead = gammaln(r + xf) - gammaln(r)
    d_lead = None
    if grad:
        from scipy.special import digamma

        d_lead = digamma(r + xf) - digamma(r)
    ll, g = _loglik_block(r, alpha, s, beta, xf, t_x, T, lead, d_lead, grad=grad)
    return (ll, g) if grad else ll


def p_alive(params, x, t_x, T) -> np.ndarray:
    """Probability that each customer is still alive at ``T``.

    Examples
    --------
    >>> p_alive((0.5533, 10.5776, 0.6062, 11.6679), [26], [30.86], [31.0]).round(3)
    array([0.998])
    """
    r, alpha, s, beta = _params(params)
    x = np.atleast_1d(np.asarray(x, dtype=float))
    t_x = np.atleast_1d(np.asarray(t_x, dtype=float))
    T = np.atleast_1d(np.asarray(T, dtype=float))
    first = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    log_sI, _ = _integral_terms(r, alpha, s, beta, x, t_x, T, grad=False)
    return expit(first - log_sI)


def p_alive_at(params, t, x, t_x, T) -> np.ndarray:
    """Probability of being alive at ``T + t`` given the history to ``T``.

    ``P(alive at T) · ((β+T)/(β+T+t))^s``: alive customers' dropout rates have
    the posterior Gamma(s, β + T).

    Examples
    --------
    >>> p_alive_at((0.5533, 10.5776, 0.6062, 11.6679), 52, [26], [30.86], [31.0]).round(3)
    array([0.616])
    """
    r, alpha, s, beta = _params(params)
    T = np.atleast_1d(np.asarray(T, dtype=float))
    t = np.asarray(t, dtype=float)
    survive = np.exp(-s * np.log1p(t / (beta + T)))
    return p_alive(params, x, t_x, T) * survive


def purchases_if_alive(params, t, x, T) -> np.ndarray:
    """Return expected purchases in ``(T, T + t]`` of a customer known to be alive at ``T``.

    ``(r+x)(β+T) / ((α+T)(s−1)) · [1 − ((β+T)/(β+T+t))^(s−1)]``, and its limit
    ``(r+x)(β+T)/(α+T) · ln(1 + t/(β+T))`` at ``s = 1``. Depends on ``x`` and ``T``
    only.

    Examples
    --------
    >>> params = (0.5533, 10.5776, 0.6062, 11.6679)
    >>> e = purchases_if_alive(params, 52, [26], [31.0]) * p_alive(params, [26], [30.86], [31.0])
    >>> round(float(e[0]), 2)
    25.46
    """
    r, alpha, s, beta = _params(params)
    x = np.asarray(x, dtype=float)
    T = np.asarray(T, dtype=float)
    t = np.asarray(t, dtype=float)
    span = np.log1p(t / (beta + T))
    if abs(s - 1.0) < 1e-10:
        bracket = span
    else:
        bracket = -np.expm1(-(s - 1.0) * span) / (s - 1.0)
    return (r + x) * (beta + T) / (alpha + T) * bracket


def conditional_expected_purchases(params, t, x, t_x, T) -> np.ndarray:
    """Return the expected number of purchases in ``(T, T + t]`` given the history.

    Examples
    --------
    >>> e = conditional_expected_purchases((0.5533, 10.5776, 0.6062, 11.6679), 52, [26],
    ...                                    [30.86], [31.0])
    >>> round(float(e[0]), 2)
    25.46
    """
    return purchases_if_alive(params, t, x, T) * p_alive(params, x, t_x, T)


def expected_purchases(params, t) -> np.ndarray:
    """Return E[X(t)], the expected purchases of a new customer by age ``t``.

    ``rβ / (α(s−1)) · [1 − (β/(β+t))^(s−1)]``.

    Examples
    --------
    >>> expected_purchases((0.5533, 10.5776, 0.6062, 11.6679), [39.0]).round(4)
    array([1.2135])
    """
    return purchases_if_alive(params, t, 0.0, 0.0)


def prob_no_purchase(params, t, x, t_x, T, *, alive=None) -> np.ndarray:
    """Probability of no purchase in ``(T, T + t]``.

    ``1 − P(alive) + P(alive) · P(no purchase | alive)``, where for a customer
    alive at ``T`` (posteriors λ ~ Gamma(r+x, α+T), μ ~ Gamma(s, β+T)) the first
    purchase comes before both the horizon's end and the dropout with probability
    ``∫_0^t (r+x)/(α+T) (1+v/(α+T))^-(r+x+1) (1+v/(β+T))^-s dv``, taken by the
    likelihood's quadrature.

    Examples
    --------
    >>> prob_no_purchase((0.5533, 10.5776, 0.6062, 11.6679), 39, [0], [0.0], [38.86]).round(4)
    array([0.9307])
    """
    r, alpha, s, beta = _params(params)
    x = np.atleast_1d(np.asarray(x, dtype=float))
    T = np.atleast_1d(np.asarray(T, dtype=float))
    t = np.broadcast_to(np.asarray(t, dtype=float), x.shape)
    if alive is None:
        alive = p_alive(params, x, t_x, T)
    rx, aT, bT = r + x, alpha + T, beta + T
    # (r+x)(α+T)^(r+x)(β+T)^s ∫_T^{T+t} (α+τ)^-(r+x+1) (β+τ)^-s dτ
    log_I, _ = _power_integral(rx + 1.0, s, alpha, beta, T, T + t)
    first = np.exp(np.log(rx) + rx * np.log(aT) + s * np.log(bT) + log_I)
    return np.clip(1.0 - alive * first, 0.0, 1.0)


class ParetoNBDPatterns:
    """Weighted (x, t_x, T) patterns for repeated Pareto/NBD likelihood evaluations.

    :meth:`objective` returns the weighted mean negative log-likelihood plus an L2
    penalty, and its gradient in log-parameters (the contract of
    :func:`cx_models.models._fitting.minimise`).

    Examples
    --------
    >>> data = ParetoNBDPatterns([2, 0], [30.43, 0.0], [38.86, 38.86], [1, 1])
    >>> f, g = data.objective(np.log([0.55, 10.6, 0.61, 11.7]))
    >>> g.shape
    (4,)
    """

    #: Fits on more patterns start from a fit on a seeded subsample (see ``minimise``):
    #: each evaluation costs a quadrature per pattern.
    WARM_START_ABOVE = 20_000
    WARM_START_SAMPLE = 10_000

    def __init__(self, x, t_x, T, weights):
        self.x = np.asarray(x).astype(np.int64)
        self.t_x = np.asarray(t_x, dtype=float)
        self.T = np.asarray(T, dtype=float)
        self.w = np.asarray(weights, dtype=float)
        self.total = self.w.sum()
        self.x_values, self.x_index = np.unique(self.x, return_inverse=True)
        self.x_weight = np.bincount(self.x_index, weights=self.w)

    def objective(self, log_params, penalizer: float = 0.0):
        """Return the penalised mean negative log-likelihood and its gradient in log-parameters."""
        params = np.exp(log_params)
        r, alpha, s, beta = params
        table = {"max_x": int(self.x_values.max(initial=0)) + 2}
        lead = _log_rising(r, self.x_values, table)[self.x_index]
        d_lead = _rising_digamma(r, self.x_values, table)[self.x_index]
        xf = self.x.astype(float)
        ll, g = _loglik_block(
            r, alpha, s, beta, xf, self.t_x, self.T, lead, d_lead, grad=True
        )
        value = -(self.w @ ll) / self.total + penalizer * np.sum(params**2)
        gradient = (-(g @ self.w) / self.total + 2.0 * penalizer * params) * params
        return value, gradient
