"""The distribution of the number of purchases in a horizon, given the history, every model.

``P(N = n)`` for ``n = 0..n_max`` of the purchases in ``(T, T + t]``: a customer
who has dropped out makes none; one alive at ``T`` has the posteriors of the
model's rates, independent given alive, and

* **BG/NBD / MBG/NBD** — λ ~ Gamma(r+x, α+T), p ~ Beta(a, b+x) (``b+x+1`` for
  MBG/NBD); with Poisson(λt) opportunities and a dropout after each purchase,
  ``P(N=0) = e^{-λt}`` and ``P(N=n) = (1−p)^{n−1}[p·P(Pois ≥ n) + (1−p)·P(Pois = n)]``,
  whose averages are negative binomial and Beta-function terms (exact);
* **Pareto/NBD** — λ ~ Gamma(r+x, α+T), μ ~ Gamma(s, β+T); purchases are
  Poisson(λ·min(τ, t)) with an exponential lifetime τ, so
  ``P(N=n) = E[e^{−μt}]·NB_t(n) + ∫_0^t E[μe^{−μτ}]·NB_τ(n) dτ`` (64-point
  Gauss-Legendre in τ, smooth integrand);
* **BG/BB** — p ~ Beta(α+x, β+n−x), θ ~ Beta(γ, δ+n); alive for J of the next m
  periods, Binomial(J, p) transactions (exact, m rounded down).

Each returns an array (customers, n_max + 1); the mass beyond ``n_max`` is
``1 − sum`` (tested: the full distribution sums to 1 and its mean is the model's
conditional expectation).
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, gammaln

from cx_models.models._maths import as_params
from cx_models.models._patterns import distinct_rows

__all__ = ["GL_NODES", "GL_WEIGHTS", "bgbb_pmf", "bgnbd_pmf", "pnbd_pmf"]

#: The Gauss-Legendre rule of the Pareto/NBD integral over the dropout time.
GL_NODES, GL_WEIGHTS = np.polynomial.legendre.leggauss(64)


def _nb_log(n, shape, q):
    """Log NB(n; shape, q) = log[Γ(shape+n)/(Γ(shape) n!) q^shape (1−q)^n], broadcasting."""
    with np.errstate(divide="ignore"):
        return (gammaln(shape + n) - gammaln(shape) - gammaln(n + 1.0)
                + shape * np.log(q) + n * np.log1p(-q))


def bgnbd_pmf(params, t, x, t_x, T, n_max: int, *, model: str = "bgnbd", alive) -> np.ndarray:
    """BG/NBD (or MBG/NBD) P(N = n) in ``(T, T + t]``, n = 0..n_max."""
    r, alpha, a, b = as_params(params)
    x = np.asarray(x, dtype=float)
    if np.ndim(a) or np.ndim(b):  # dropout covariates: every customer has their own a, b
        index = np.arange(x.size)
        xv = x[:, None]
        a, b = np.broadcast_to(a, x.shape)[:, None], np.broadcast_to(b, x.shape)[:, None]
    else:  # the terms of x alone, once per distinct frequency
        values, index = np.unique(x, return_inverse=True)
        xv = values[:, None]
    n = np.arange(n_max + 1, dtype=float)[None, :]
    b_post = b + xv + (1.0 if model == "mbgnbd" else 0.0)
    with np.errstate(invalid="ignore"):
        drop = np.exp(betaln(a + 1.0, b_post + n - 1.0) - betaln(a, b_post))[index]
        stay = np.exp(betaln(a, b_post + n) - betaln(a, b_post))[index]
    shape = r + xv
    log_coef = (gammaln(shape + n) - gammaln(shape) - gammaln(n + 1.0))[index]
    aT = alpha + np.asarray(T, dtype=float)
    q = (aT / (aT + t))[:, None]
    nb = np.exp(log_coef + (r + x)[:, None] * np.log(q)
                + n * np.log1p(-q))
    at_least = 1.0 - np.concatenate([np.zeros((nb.shape[0], 1)), np.cumsum(nb, axis=1)[:, :-1]],
                                    axis=1)
    if_alive = np.where(n == 0, nb, drop * np.clip(at_least, 0.0, 1.0) + stay * nb)
    return _mix(if_alive, alive)


def pnbd_pmf(params, t, x, t_x, T, n_max: int, *, alive) -> np.ndarray:
    """Pareto/NBD P(N = n) in ``(T, T + t]``, n = 0..n_max."""
    r, alpha, s, beta = as_params(params)
    alpha, beta = (np.asarray(v, dtype=float).reshape(-1, 1, 1) if np.ndim(v) else v
                   for v in (alpha, beta))
    x = np.asarray(x, dtype=float)[:, None, None]
    T = np.asarray(T, dtype=float)[:, None, None]
    n = np.arange(n_max + 1, dtype=float)[None, :, None]
    rx = r + x

    def nb(tau):
        return np.exp(_nb_log(n, rx, (alpha + T) / (alpha + T + tau)))

    survive = np.exp(-s * np.log1p(t / (beta + T)))[..., 0]
    tau = (0.5 * t * (1.0 + GL_NODES))[None, None, :]
    weight = (0.5 * t * GL_WEIGHTS)[None, None, :]
    death = s / (beta + T) * np.exp(-(s + 1.0) * np.log1p(tau / (beta + T)))
    if_alive = survive * nb(t)[..., 0] + (weight * death * nb(tau)).sum(axis=2)
    return _mix(if_alive, alive)


def bgbb_pmf(params, m, x, t_x, n_obs, n_max: int, *, alive) -> np.ndarray:
    """BG/BB P(N = k) transactions in the next ``m`` periods (rounded down), k = 0..n_max."""
    a, b, g, d = (float(v) for v in params)
    (x, n_obs), index = distinct_rows(x, n_obs)  # once per (x, n) pattern
    x, n_obs = x[:, None, None], n_obs[:, None, None]
    whole = int(np.floor(float(m) + 1e-9))
    j = np.arange(whole + 1, dtype=float)[None, None, :]  # periods alive
    k = np.arange(n_max + 1, dtype=float)[None, :, None]  # transactions
    dp = d + n_obs
    p_j = np.where(
        j < whole,
        np.exp(betaln(g + 1.0, dp + j) - betaln(g, dp)),
        np.exp(betaln(g, dp + j) - betaln(g, dp)),
    )
    a1, b1 = a + x, b + n_obs - x
    with np.errstate(invalid="ignore"):
        log_binom = gammaln(j + 1.0) - gammaln(k + 1.0) - gammaln(j - k + 1.0)
        log_mix = betaln(a1 + k, b1 + j - k) - betaln(a1, b1)
    given_j = np.where(k <= j, np.exp(log_binom + log_mix), 0.0)
    if_alive = (p_j * given_j).sum(axis=2)[index]
    return _mix(if_alive, alive)


def _mix(if_alive: np.ndarray, alive) -> np.ndarray:
    """Mix with the dropped-out customers, who make no purchase."""
    alive = np.asarray(alive, dtype=float)[:, None]
    out = alive * if_alive
    out[:, 0] += 1.0 - alive[:, 0]
    return out
