"""Seeded simulators of the BTYD models with time-invariant covariates (for recovery tests).

Each draws customers' rates from the model's mixing distributions with the
per-customer scale parameters of :mod:`cx_models.models.covariates`, then their
purchase histories to age ``T``, and returns a feature table
(``frequency, recency, T`` and the covariate columns).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd


def _last_arrival(rng, count, window):
    """Time of the last of ``count`` uniform arrivals on [0, window] (0 when none)."""
    u = rng.random(count.size)
    with np.errstate(divide="ignore"):
        return np.where(count > 0, window * u ** (1.0 / np.maximum(count, 1)), 0.0)


def _table(rng, x, t_x, T, covariates):
    """The feature table, with a Gamma-distributed mean order value for repeat buyers."""
    spend = np.where(x > 0, rng.gamma(6.0, 5.0, x.size), 0.0)
    return pd.DataFrame({"frequency": x, "recency": t_x, "T": T, "monetary_value": spend,
                         **covariates})


def simulate_pnbd(rng, n, *, r, alpha0, s, beta0, purchase=None, dropout=None, T=52.0):
    """Pareto/NBD histories: λ ~ Gamma(r, α), μ ~ Gamma(s, β), α = α₀e^{−β₁z₁}, β = β₀e^{−β₂z₂}.

    ``purchase`` / ``dropout``: ``{column: (values, slope)}``.
    """
    alpha = np.full(n, alpha0)
    beta = np.full(n, beta0)
    table = {}
    for name, (z, slope) in (purchase or {}).items():
        alpha = alpha * np.exp(-slope * z)
        table[name] = z
    for name, (z, slope) in (dropout or {}).items():
        beta = beta * np.exp(-slope * z)
        table[name] = z
    lam = rng.gamma(r, 1.0 / alpha)
    mu = rng.gamma(s, 1.0 / beta)
    T = np.broadcast_to(np.asarray(T, dtype=float), (n,))
    window = np.minimum(rng.exponential(1.0 / mu), T)
    x = rng.poisson(lam * window)
    t_x = _last_arrival(rng, x, window)
    return _table(rng, x, t_x, T, table)


def simulate_bgnbd(rng, n, *, r, alpha0, a0, b0, purchase=None, dropout=None, T=52.0):
    """BG/NBD histories: λ ~ Gamma(r, α), p ~ Beta(a, b) with covariates.

    ``α = α₀e^{−β₁z₁}``, ``a = a₀e^{γ₁z₂}``, ``b = b₀e^{γ₂z₂}``.

    ``purchase``: ``{column: (values, slope)}``; ``dropout``: ``{column: (values, (γ₁, γ₂))}``.
    """
    alpha = np.full(n, alpha0)
    a = np.full(n, a0)
    b = np.full(n, b0)
    table = {}
    for name, (z, slope) in (purchase or {}).items():
        alpha = alpha * np.exp(-slope * z)
        table[name] = z
    for name, (z, (g1, g2)) in (dropout or {}).items():
        a = a * np.exp(g1 * z)
        b = b * np.exp(g2 * z)
        table[name] = z
    lam = rng.gamma(r, 1.0 / alpha)
    p = rng.beta(a, b)
    T = np.broadcast_to(np.asarray(T, dtype=float), (n,))
    opportunities = rng.poisson(lam * T)  # purchases in (0, T] were the customer never to drop
    alive_for = rng.geometric(p)  # the repeat purchase after which the customer drops out
    x = np.minimum(opportunities, alive_for)
    # the x-th of `opportunities` uniform arrival times: T * Beta(x, opportunities - x + 1)
    with np.errstate(invalid="ignore"):
        order = rng.beta(np.maximum(x, 1), np.maximum(opportunities - x + 1, 1))
    t_x = np.where(x > 0, T * order, 0.0)
    return _table(rng, x, t_x, T, table)


#: The BG/BB world of :func:`simulate_bgbb_orders`: p ~ Beta(α, β), θ ~ Beta(γ, δ).
BGBB_TRUTH = {"alpha": 1.2, "beta": 2.5, "gamma": 0.6, "delta": 3.0}
BGBB_PERIOD = 30
BGBB_START = dt.date(2024, 1, 1)
BGBB_DAYS = 720  # 24 periods of 30 days; customers join in the first 180 days
BGBB_AS_OF = (BGBB_START + dt.timedelta(days=BGBB_DAYS - 1)).isoformat()


def simulate_bgbb_orders(n: int, seed: int) -> pd.DataFrame:
    """Orders of a BG/BB world: one chance to buy in each 30-day period after the first order.

    A customer alive at the start of a period stays so with probability 1 − θ and then
    buys in it with probability p (Fader, Hardie & Shang 2010), on a random day of it.
    """
    rng = np.random.default_rng(seed)
    truth, period, days = BGBB_TRUTH, BGBB_PERIOD, BGBB_DAYS
    p = rng.beta(truth["alpha"], truth["beta"], n)
    theta = rng.beta(truth["gamma"], truth["delta"], n)
    first = rng.integers(0, 180, n)
    customers, when = [np.arange(n)], [first]
    alive = np.ones(n, dtype=bool)
    for k in range(1, days // period + 1):
        alive &= rng.random(n) >= theta  # inactive at the start of a period with prob θ
        day = first + k * period + rng.integers(0, period, n)
        keep = alive & (rng.random(n) < p) & (day < days)
        customers.append(np.flatnonzero(keep))
        when.append(day[keep])
    cid, day = np.concatenate(customers), np.concatenate(when)
    # Gamma-Gamma spend: order values ~ Gamma(p = 4, rate ν), ν ~ Gamma(q = 3, rate 15)
    nu = rng.gamma(3.0, 1.0 / 15.0, n)
    return pd.DataFrame({
        "customer_id": cid,
        "timestamp": pd.to_datetime(BGBB_START) + pd.to_timedelta(day, unit="D"),
        "amount": np.round(rng.gamma(4.0, 1.0 / nu[cid]), 2) + 0.01,
    })
