"""BG/BB for discrete-time opportunities: likelihood with analytic gradients, predictions.

Fader, Hardie & Shang (2010), "Customer-base analysis in a discrete-time
noncontractual setting". In each period a customer alive then transacts with
probability ``p`` and, at the start of each later period, drops out with
probability ``θ``; ``p ~ Beta(alpha, beta)``, ``θ ~ Beta(gamma, delta)``. A history
is ``x`` (periods after the first with a transaction), ``t_x`` (the last such
period) and ``n`` (complete periods observed after the first). Parameters
``(alpha, beta, gamma, delta)``; times are in periods.

The likelihood

    L = B(α+x, β+n−x)/B(α,β) · B(γ, δ+n)/B(γ,δ)
        + Σ_{i=0}^{n−t_x−1} B(α+x, β+t_x−x+i)/B(α,β) · B(γ+1, δ+t_x+i)/B(γ,δ)

is a sum of products of Beta-function ratios: its gradient is a weighted sum of
digamma differences, exact. Given alive at ``n``, ``p ~ Beta(α+x, β+n−x)`` and
``θ ~ Beta(γ, δ+n)``, which gives every prediction below.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, digamma, expit, gammaln

from cx_models.models._patterns import distinct_rows

__all__ = [
    "PARAMS",
    "BGBBPatterns",
    "bgbb_loglik",
    "expected_purchases",
    "p_alive",
    "p_alive_at",
    "prob_no_purchase",
    "purchases_if_alive",
]

#: Parameter names, in order.
PARAMS = ("alpha", "beta", "gamma", "delta")


def _params(params):
    alpha, beta, gamma, delta = (float(v) for v in params)
    return alpha, beta, gamma, delta


def _terms(params, x, t_x, n):
    """Log of the likelihood's first term (alive at n) and of each sum term (masked)."""
    a, b, g, d = _params(params)
    x, t_x, n = (np.asarray(v, dtype=float) for v in (x, t_x, n))
    first = betaln(a + x, b + n - x) - betaln(a, b) + betaln(g, d + n) - betaln(g, d)
    width = int(np.max(n - t_x, initial=0))
    i = np.arange(max(width, 1))[None, :]
    valid = i < (n - t_x)[:, None]
    # the period of dropout is k + 1; masked cells get k = x, harmless in every term
    k = np.where(valid, t_x[:, None] + i, x[:, None])
    rest = (
        betaln(a + x[:, None], b + k - x[:, None]) - betaln(a, b)
        + betaln(g + 1.0, d + k) - betaln(g, d)
    )
    return first, np.where(valid, rest, -np.inf), k


def bgbb_loglik(params, x, t_x, n, *, grad: bool = False):
    """Per-customer log-likelihood of the BG/BB model.

    Parameters
    ----------
    params : sequence of float
        ``(alpha, beta, gamma, delta)``.
    x, t_x, n : array_like
        Frequency, recency (the last period with a transaction, 0 if none) and the
        number of periods observed, integers.
    grad : bool
        Also return the gradient, shape (4, n): d ll / d (alpha, beta, gamma, delta).

    Examples
    --------
    >>> ll = bgbb_loglik((1.204, 0.750, 0.657, 2.783), [0, 6], [0, 6], [6, 6])
    >>> ll.round(4)
    array([-1.1673, -2.1822])
    """
    a, b, g, d = _params(params)
    x, t_x, n = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (x, t_x, n))
    first, rest, k = _terms(params, x, t_x, n)
    stacked = np.concatenate([first[:, None], rest], axis=1)
    ll = np.logaddexp.reduce(stacked, axis=1)
    if not grad:
        return ll
    share = np.exp(stacked - ll[:, None])  # each term's share of L
    s0, s = share[:, 0], share[:, 1:]
    dg_ab = digamma(a + b)
    # d/dθ ln B(u, v) = ψ(u) − ψ(u + v) in u, ψ(v) − ψ(u + v) in v
    dp_first_a = digamma(a + x) - digamma(a + b + n) - digamma(a) + dg_ab
    dp_first_b = digamma(b + n - x) - digamma(a + b + n) - digamma(b) + dg_ab
    dp_rest_a = digamma(a + x[:, None]) - digamma(a + b + k) - digamma(a) + dg_ab
    dp_rest_b = digamma(b + k - x[:, None]) - digamma(a + b + k) - digamma(b) + dg_ab
    dg_gd = digamma(g + d)
    dt_first_g = digamma(g) - digamma(g + d + n) - digamma(g) + dg_gd
    dt_first_d = digamma(d + n) - digamma(g + d + n) - digamma(d) + dg_gd
    dt_rest_g = digamma(g + 1.0) - digamma(g + 1.0 + d + k) - digamma(g) + dg_gd
    dt_rest_d = digamma(d + k) - digamma(g + 1.0 + d + k) - digamma(d) + dg_gd
    gradient = np.vstack(
        [
            s0 * dp_first_a + (s * dp_rest_a).sum(axis=1),
            s0 * dp_first_b + (s * dp_rest_b).sum(axis=1),
            s0 * dt_first_g + (s * dt_rest_g).sum(axis=1),
            s0 * dt_first_d + (s * dt_rest_d).sum(axis=1),
        ]
    )
    return ll, gradient


def p_alive(params, x, t_x, n) -> np.ndarray:
    """Probability that each customer is alive at the end of period ``n`` (has not dropped out).

    Examples
    --------
    >>> p_alive((1.204, 0.750, 0.657, 2.783), [6], [6], [6]).round(3)
    array([1.])
    """
    (x, t_x, n), index = distinct_rows(*(np.atleast_1d(v) for v in (x, t_x, n)))
    first, rest, _ = _terms(params, x, t_x, n)
    return expit(first - np.logaddexp.reduce(rest, axis=1))[index]


def p_alive_at(params, m, x, t_x, n) -> np.ndarray:
    """Probability of being alive in period ``n + m`` (``m = 1``: the next period).

    ``P(alive at n) · B(γ, δ+n+m) / B(γ, δ+n)``.

    Examples
    --------
    >>> p = (1.204, 0.750, 0.657, 2.783)
    >>> p_alive_at(p, 1, [0, 2, 6], [0, 4, 6], [6, 6, 6]).round(2)  # the paper: alive in 2002
    array([0.11, 0.59, 0.93])
    """
    a, b, g, d = _params(params)
    n_ = np.atleast_1d(np.asarray(n, dtype=float))
    m = np.asarray(m, dtype=float)
    survive = np.exp(betaln(g, d + n_ + m) - betaln(g, d + n_))
    return p_alive(params, x, t_x, n) * survive


def purchases_if_alive(params, m, x, n) -> np.ndarray:
    """Return expected transactions in periods ``n+1 .. n+m`` of a customer alive at ``n``.

    ``E[p | x, n] · Σ_{k=1}^{m} E[(1−θ)^k]`` with ``p ~ Beta(α+x, β+n−x)`` and
    ``θ ~ Beta(γ, δ+n)``; the sum in closed form,
    ``δ'/(γ−1) · [1 − Γ(γ+δ')Γ(1+δ'+m) / (Γ(1+δ')Γ(γ+δ'+m))]`` with ``δ' = δ+n``
    (its limit ``δ'(ψ(1+δ'+m) − ψ(1+δ'))`` at ``γ = 1``), which also interpolates
    between whole periods. Depends on ``x`` and ``n`` only.

    Examples
    --------
    >>> purchases_if_alive((1.204, 0.750, 0.657, 2.783), 5, [6], [6]).round(3)
    array([3.752])
    """
    a, b, g, d = _params(params)
    x = np.asarray(x, dtype=float)
    n = np.asarray(n, dtype=float)
    m = np.asarray(m, dtype=float)
    dp = d + n
    mean_p = (a + x) / (a + b + n)
    if abs(g - 1.0) < 1e-8:
        periods = dp * (digamma(1.0 + dp + m) - digamma(1.0 + dp))
    else:
        log_ratio = gammaln(g + dp) + gammaln(1.0 + dp + m) - gammaln(1.0 + dp) - gammaln(
            g + dp + m
        )
        periods = dp / (g - 1.0) * -np.expm1(log_ratio)
    return mean_p * periods


def expected_purchases(params, m) -> np.ndarray:
    """Return expected transactions of a new customer in the ``m`` periods after the first.

    Examples
    --------
    >>> expected_purchases((1.204, 0.750, 0.657, 2.783), [6.0]).round(3)
    array([2.22])
    """
    return purchases_if_alive(params, m, 0.0, 0.0)


def prob_no_purchase(params, m, x, t_x, n, *, alive=None) -> np.ndarray:
    """Probability of no transaction in periods ``n+1 .. n+m`` (``m`` rounded down).

    ``1 − P(alive) + P(alive) · [Σ_{j<m} E[(1−θ)^j θ] E[(1−p)^j] + E[(1−θ)^m] E[(1−p)^m]]``:
    alive for exactly ``j`` more periods, with no transaction in any.

    Examples
    --------
    >>> prob_no_purchase((1.204, 0.750, 0.657, 2.783), 1, [0], [0], [6]).round(4)
    array([0.9836])
    """
    a, b, g, d = _params(params)
    x, t_x, n = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=float))
                                      for v in (x, t_x, n)))
    whole = np.floor(np.broadcast_to(np.asarray(m, dtype=float), x.shape) + 1e-9)
    if alive is None:
        alive = p_alive(params, x, t_x, n)
    (x, n, whole), index = distinct_rows(x, n, whole)  # the quiet periods: once per pattern
    top = int(whole.max(initial=0))
    j = np.arange(top + 1)[None, :]
    quiet = np.exp(betaln(a + x[:, None], b + n[:, None] - x[:, None] + j)
                   - betaln(a + x, b + n - x)[:, None])  # E[(1-p)^j]
    stop = np.exp(betaln(g + 1.0, d + n[:, None] + j) - betaln(g, d + n)[:, None])
    last = np.exp(betaln(g, d + n[:, None] + j) - betaln(g, d + n)[:, None])
    before = np.where(j < whole[:, None], stop * quiet, 0.0).sum(axis=1)
    at_end = np.take_along_axis(last * quiet, whole.astype(int)[:, None], axis=1)[:, 0]
    return np.clip(1.0 - alive + alive * (before + at_end)[index], 0.0, 1.0)


class BGBBPatterns:
    """Weighted (x, t_x, n) patterns for repeated BG/BB likelihood evaluations.

    Examples
    --------
    >>> data = BGBBPatterns([0, 6], [0, 6], [6, 6], [3464, 1203])
    >>> f, g = data.objective(np.log([1.2, 0.75, 0.66, 2.8]))
    >>> g.shape
    (4,)
    """

    def __init__(self, x, t_x, n, weights):
        self.x = np.asarray(x, dtype=float)
        self.t_x = np.asarray(t_x, dtype=float)
        self.n = np.asarray(n, dtype=float)
        self.w = np.asarray(weights, dtype=float)
        self.total = self.w.sum()

    def objective(self, log_params, penalizer: float = 0.0):
        """Return the penalised mean negative log-likelihood and its gradient in log-parameters."""
        params = np.exp(log_params)
        ll, d = bgbb_loglik(params, self.x, self.t_x, self.n, grad=True)
        value = -(self.w @ ll) / self.total + penalizer * np.sum(params**2)
        gradient = (-(d @ self.w) / self.total + 2.0 * penalizer * params) * params
        return value, gradient
