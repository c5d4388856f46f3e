"""Compiled kernels (the one module that imports numba).

**Pareto/NBD integrals.** ``power_integral`` evaluates, per row,
``I = ∫_lo^hi (α+τ)^-e_a (β+τ)^-e_b dτ`` (every argument but the rule's
constants is one value per row)
by the rule described in :mod:`cx_models.models.pareto_nbd`: in ``y = ln(m + τ)``
(``m = min(α, β)``) the integrand is log-concave, with its mode where its slope
``σ(y) = 1 − e_m − e_M e^y / (e^y + D)`` vanishes and its sharpest bend at
``y = ln D`` (``D = |α − β|``); split at those points it is monotone on each
piece, and each piece gets Gauss-Legendre panels growing away from its higher
end, sized by the local scale there (``1/|σ|`` or ``1/sqrt|σ'|``). With the
gradient it also returns, per row, the means under the integrand of
``ln(α+τ)``, ``1/(α+τ)``, ``ln(β+τ)`` and ``1/(β+τ)`` (the derivatives under the
integral sign). One pass per row, in parallel over rows, no temporaries.

**Count intervals.** ``bgnbd_count_bounds`` finds, per customer, the central
interval of the BG/NBD (MBG/NBD) count distribution mixed over parameter draws
(:mod:`cx_models.models._intervals`), walking ``n = 0, 1, …`` with the
recurrences of its terms and stopping at the upper bound: no distribution is
materialised. ``pnbd_count_bounds`` does the same for Pareto/NBD with its
Gauss-Legendre integral over the dropout time.

Compiled on first use and cached beside the module (``NUMBA_CACHE_DIR`` moves
the cache); ``NUMBA_NUM_THREADS`` caps the threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = [
    "BREAKS", "GL_NODES", "GL_WEIGHTS", "bgnbd_count_bounds", "pnbd_count_bounds",
    "power_integral",
]

#: Panel edges from an anchor, in local scales: 0.5 wide, growing by half (85 scales).
BREAKS = np.concatenate([[0.0], np.cumsum(0.5 * 1.5 ** np.arange(11))])
GL_NODES, GL_WEIGHTS = np.polynomial.legendre.leggauss(6)


@njit(cache=True, fastmath=False)
def _log_f(y, e_a, e_b, alpha, beta, m):
    grow = math.exp(y)
    return y - e_a * math.log(grow + (alpha - m)) - e_b * math.log(grow + (beta - m))


@njit(cache=True, parallel=True, fastmath=False)
def power_integral(e_a, e_b, alphas, betas, lo, hi, grad, breaks, nodes, weights):
    """Return ``log I`` (n,) and, with ``grad``, the four means (n, 4); see the module."""
    n = lo.size
    log_I = np.empty(n)
    means = np.zeros((n, 4)) if grad else np.zeros((0, 4))
    for i in prange(n):
        alpha, beta = alphas[i], betas[i]
        m = min(alpha, beta)
        D = max(alpha, beta) - m
        a_small = alpha <= beta
        log_D = math.log(D) if D > 0 else -math.inf
        ea, eb = e_a[i], e_b[i]
        em, eM = (ea, eb) if a_small else (eb, ea)
        q = ea + eb - 1.0
        y0 = math.log(m + lo[i])
        y1 = math.log(m + hi[i])
        if not y1 > y0:
            log_I[i] = -math.inf
            continue
        mode = -math.inf
        if D > 0 and em < 1.0:
            mode = log_D + math.log(1.0 - em) - math.log(q)
        mode = min(max(mode, y0), y1)
        knee = min(max(log_D, y0), y1)
        c0, c1 = min(mode, knee), max(mode, knee)
        top = _log_f(mode, ea, eb, alpha, beta, m)
        total = 0.0
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for piece in range(3):
            p_lo = y0 if piece == 0 else (c0 if piece == 1 else c1)
            p_hi = c0 if piece == 0 else (c1 if piece == 1 else y1)
            if not p_hi > p_lo:
                continue
            rising = p_hi <= mode
            anchor = p_hi if rising else p_lo
            direction = -1.0 if rising else 1.0
            grow = math.exp(anchor)
            share = grow / (grow + D)
            slope = abs(1.0 - em - eM * share)
            bend = math.sqrt(eM * share * (1.0 - share))
            scale = 1.0 / max(1.0, slope, bend)
            for k in range(breaks.size - 1):
                u = anchor + direction * scale * breaks[k]
                v = anchor + direction * scale * breaks[k + 1]
                a = min(max(min(u, v), p_lo), p_hi)
                b = min(max(max(u, v), p_lo), p_hi)
                if not b > a:
                    break  # the panels have left the piece
                half = 0.5 * (b - a)
                mid = 0.5 * (b + a)
                for j in range(nodes.size):
                    y = mid + half * nodes[j]
                    m_tau = math.exp(y)
                    a_tau = m_tau + (alpha - m)
                    b_tau = m_tau + (beta - m)
                    log_a = y if a_small else math.log(a_tau)
                    log_b = math.log(b_tau) if a_small else y
                    kern = half * weights[j] * math.exp(y - ea * log_a - eb * log_b - top)
                    total += kern
                    if grad:
                        s0 += kern * log_a
                        s1 += kern / a_tau
                        s2 += kern * log_b
                        s3 += kern / b_tau
        log_I[i] = top + math.log(total) if total > 0 else -math.inf
        if grad and total > 0:
            means[i, 0] = s0 / total
            means[i, 1] = s1 / total
            means[i, 2] = s2 / total
            means[i, 3] = s3 / total
    return log_I, means


@njit(cache=True)
def _bounds(pmf, low_q, high_q):
    """Central interval of a count distribution given as its first terms (lower, upper, mass)."""
    cdf = 0.0
    for k in range(pmf.size):
        before = cdf
        cdf += pmf[k]
        if cdf >= low_q - 1e-12:
            lower, below = k, before
            break
    else:
        return pmf.size - 1, pmf.size - 1, pmf[-1]
    for k in range(lower, pmf.size):
        if k > lower:
            cdf += pmf[k]
        if cdf >= high_q - 1e-12:
            return lower, k, cdf - below
    return lower, pmf.size - 1, cdf - below


#: Rows per work unit of the count kernels (their scratch arrays are allocated once per unit).
_UNIT = 512


@njit(cache=True)
def _at(values, d, i):
    """Draw ``d``'s value for customer ``i`` of a (draws, 1 or customers) parameter array."""
    return values[d, i if values.shape[1] > 1 else 0]


@njit(cache=True)
def _bgnbd_step(r, alpha, a, b, x, T, t, shift, alive, i, log_nb, cum, drop, stay, nbv, p1,
                k):
    total = 0.0
    for d in range(log_nb.size):
        sh = _at(r, d, i) + x[i]
        ad, bd, al = _at(a, d, i), _at(b, d, i) + x[i] + shift, alive[d, i]
        if k == 0:
            aT = _at(alpha, d, i) + T[i]
            log_q = math.log(aT) - math.log(aT + t)
            log_nb[d] = sh * log_q
            nbv[d] = math.exp(log_nb[d])  # 0 when it underflows (a heavy buyer): logs then
            p1[d] = t / (aT + t)
            cum[d] = nbv[d]
            stay[d] = 1.0
            drop[d] = ad / (ad + bd)
            total += al * nbv[d] + 1.0 - al
        else:
            ratio = (sh + k - 1.0) / k * p1[d]
            if log_nb[d] > -700.0:
                nbv[d] *= ratio
            else:
                log_nb[d] += math.log(ratio)
                if log_nb[d] > -700.0:
                    nbv[d] = math.exp(log_nb[d])
            nb = nbv[d]
            stay[d] *= (bd + k - 1.0) / (ad + bd + k - 1.0)
            if k > 1:
                drop[d] *= (bd + k - 2.0) / (ad + bd + k - 1.0)
            total += al * (drop[d] * max(1.0 - cum[d], 0.0) + stay[d] * nb)
            cum[d] += nb
    return total / log_nb.size


@njit(cache=True, parallel=True)
def bgnbd_count_bounds(r, alpha, a, b, x, T, t, shift, alive, low_q, high_q, cap):
    """Central interval of the mixed BG/NBD count distributions, per customer.

    Parameters per draw (rows) and customer (columns; one column when common):
    ``r, alpha, a, b``; per customer ``x``, ``T``; the horizon ``t``; ``shift``
    1 for MBG/NBD, else 0; P(alive) per draw and customer. With ``q =
    (α+T)/(α+T+t)`` and ``b' = b+x+shift``: ``P(N=0) = q^(r+x)``; for ``n ≥ 1``
    ``P(N=n) = drop(n)·P(NB ≥ n) + stay(n)·NB(n)`` with
    ``stay(n) = B(a, b'+n)/B(a, b')`` and ``drop(n) = B(a+1, b'+n−1)/B(a, b')``.
    Returns (lower, upper, mass) of the mixture; ``cap`` bounds ``upper`` per customer.
    """
    draws, n = alive.shape
    lower = np.zeros(n, dtype=np.int64)
    upper = np.zeros(n, dtype=np.int64)
    mass = np.zeros(n)
    for unit in prange((n + _UNIT - 1) // _UNIT):
        log_nb, cum, drop = np.empty(draws), np.empty(draws), np.empty(draws)
        stay, nbv, p1 = np.empty(draws), np.empty(draws), np.empty(draws)
        pmf = np.empty(cap.max() + 1)
        for i in range(unit * _UNIT, min(n, (unit + 1) * _UNIT)):
            cdf = 0.0
            size = cap[i] + 1
            for k in range(cap[i] + 1):
                pmf[k] = _bgnbd_step(r, alpha, a, b, x, T, t, shift, alive, i, log_nb, cum,
                                     drop, stay, nbv, p1, k)
                cdf += pmf[k]
                if cdf >= high_q - 1e-12:
                    size = k + 1
                    break
            lower[i], upper[i], mass[i] = _bounds(pmf[:size], low_q, high_q)
    return lower, upper, mass


@njit(cache=True)
def _pnbd_step(state, k):
    shape, alive, log_term, p1, term, linear = state
    total = 0.0
    for d in range(shape.size):
        if_alive = 0.0
        if k == 0:
            for j in range(term.shape[1]):
                if_alive += term[d, j]
            total += alive[d] * if_alive + 1.0 - alive[d]
            continue
        grow = (shape[d] + k - 1.0) / k
        if linear:  # every term representable: plain products (the usual case)
            for j in range(term.shape[1]):
                term[d, j] *= grow * p1[d, j]
                if_alive += term[d, j]
        else:  # a heavy buyer whose first terms underflow: logs
            for j in range(term.shape[1]):
                log_term[d, j] += math.log(grow * p1[d, j])
                if_alive += math.exp(log_term[d, j])
        total += alive[d] * if_alive
    return total / shape.size


@njit(cache=True, parallel=True)
def pnbd_count_bounds(shape, aT, bT, s, alive, t, nodes, weights, low_q, high_q, cap):
    """Central interval of the mixed Pareto/NBD count distributions, per customer.

    Per draw and customer (arrays (draws, customers)): ``shape = r+x``,
    ``aT = α+T``, ``bT = β+T``, ``s`` and P(alive); ``t`` the horizon. Alive, the
    count is ``NB(n; shape, aT/(aT+τ))`` with ``τ`` the horizon or, with the
    dropout density ``s/bT·(1+τ/bT)^-(s+1)``, the time of dropout inside it
    (Gauss-Legendre ``nodes``/``weights`` on [-1, 1]). Returns (lower, upper, mass).
    """
    draws, n = alive.shape
    m = nodes.size
    lower = np.zeros(n, dtype=np.int64)
    upper = np.zeros(n, dtype=np.int64)
    mass = np.zeros(n)
    taus = np.empty(m + 1)
    log_w = np.empty(m + 1)
    for j in range(m):
        taus[j] = 0.5 * t * (1.0 + nodes[j])
        log_w[j] = math.log(0.5 * t * weights[j])
    taus[m] = t
    log_w[m] = 0.0
    for i in prange(n):
        # per draw: each dropout node, then the horizon; term = weight x NB(n) there
        log_term = np.empty((draws, m + 1))
        p1 = np.empty((draws, m + 1))
        for d in range(draws):
            a_i, b_i, s_i = aT[d, i], bT[d, i], s[d, i]
            log_a = math.log(a_i)
            log_rate = math.log(s_i / b_i)
            for j in range(m + 1):
                tau = taus[j]
                log_q = log_a - math.log(a_i + tau)
                p1[d, j] = tau / (a_i + tau)
                survive = math.log1p(tau / b_i)
                if j == m:
                    log_coef = -s_i * survive
                else:
                    log_coef = log_w[j] + log_rate - (s_i + 1.0) * survive
                log_term[d, j] = log_coef + shape[d, i] * log_q
        linear = log_term.min() > -700.0
        state = (shape[:, i].copy(), alive[:, i].copy(), log_term, p1, np.exp(log_term), linear)
        pmf = np.zeros(cap[i] + 1)
        cdf = 0.0
        for k in range(cap[i] + 1):
            pmf[k] = _pnbd_step(state, k)
            cdf += pmf[k]
            if cdf >= high_q - 1e-12:
                pmf = pmf[:k + 1]
                break
        lower[i], upper[i], mass[i] = _bounds(pmf, low_q, high_q)
    return lower, upper, mass
