"""Compiled kernel of the Pareto/NBD integrals (the one module that imports numba).

``power_integral`` evaluates, per row, ``I = ∫_lo^hi (α+τ)^-e_a (β+τ)^-e_b dτ``
(every argument but the rule's constants is one value per row)
by the rule described in :mod:`cx_models.models.pareto_nbd`: in ``y = ln(m + τ)``
(``m = min(α, β)``) the integrand is log-concave, with its mode where its slope
``σ(y) = 1 − e_m − e_M e^y / (e^y + D)`` vanishes and its sharpest bend at
``y = ln D`` (``D = |α − β|``); split at those points it is monotone on each
piece, and each piece gets Gauss-Legendre panels growing away from its higher
end, sized by the local scale there (``1/|σ|`` or ``1/sqrt|σ'|``). With the
gradient it also returns, per row, the means under the integrand of
``ln(α+τ)``, ``1/(α+τ)``, ``ln(β+τ)`` and ``1/(β+τ)`` (the derivatives under the
integral sign). One pass per row, in parallel over rows, no temporaries.

Compiled on first use and cached beside the module (``NUMBA_CACHE_DIR`` moves
the cache); ``NUMBA_NUM_THREADS`` caps the threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["BREAKS", "GL_NODES", "GL_WEIGHTS", "power_integral"]

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
