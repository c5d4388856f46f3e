"""Gamma-Gamma spend model: likelihood with analytic gradients, expected spend, patterns.

Parameters ``p, q, v`` (``v`` is the literature's gamma); fitted on repeat
customers' mean spend ``m`` over ``x`` repeat occasions (Fader, Hardie & Lee 2005).
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln

__all__ = ["GammaGammaPatterns", "gg_expected_spend", "gg_loglik", "gg_objective"]


def gg_loglik(params, x, m, *, grad: bool = False):
    """Per-customer Gamma-Gamma log-likelihood of mean spend ``m`` over ``x`` repeat occasions.

    Examples
    --------
    >>> round(float(gg_loglik((6.25, 3.74, 15.44), [2], [22.35])[0]), 4)
    -3.5513
    """
    p, q, v = (float(u) for u in params)
    x = np.asarray(x, dtype=float)
    m = np.asarray(m, dtype=float)
    px = p * x
    log_vmx = np.log(v + m * x)
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * log_vmx
    )
    if not grad:
        return ll
    dg = digamma(px + q)
    d_p = x * (dg - digamma(px) + np.log(m) + np.log(x) - log_vmx)
    d_q = dg - digamma(q) + np.log(v) - log_vmx
    d_v = q / v - (px + q) / (v + m * x)
    return ll, np.vstack([d_p, d_q, d_v])


def gg_objective(theta, x, m, weights, penalizer: float = 0.0):
    """Gamma-Gamma objective in ``(log p, log(q - 1), log v)``; keeps ``q > 1``.

    ``-sum(w * ll) / sum(w) + penalizer * sum(params ** 2)``.
    """
    p, q_minus_1, v = np.exp(theta)
    params = np.array([p, 1.0 + q_minus_1, v])
    ll, d = gg_loglik(params, x, m, grad=True)
    w = np.asarray(weights, dtype=float)
    total = w.sum()
    value = -(w @ ll) / total + penalizer * np.sum(params**2)
    d_params = -(d @ w) / total + 2.0 * penalizer * params
    return value, d_params * np.array([p, q_minus_1, v])


def gg_expected_spend(params, x, m) -> np.ndarray:
    """Conditional expected average order value; the population mean when ``x == 0``.

    Examples
    --------
    >>> gg_expected_spend((6.25, 3.74, 15.44), [0, 2], [0.0, 22.35]).round(2)
    array([35.22, 24.66])
    """
    p, q, v = (float(u) for u in params)
    x = np.asarray(x, dtype=float)
    m = np.asarray(m, dtype=float)
    return p * (v + x * m) / (p * x + q - 1)


class GammaGammaPatterns:
    """Weighted (x, m) repeat-customer patterns prepared for fast evaluations.

    :meth:`objective` equals :func:`gg_objective` (tested).

    Examples
    --------
    >>> data = GammaGammaPatterns([2, 5], [22.35, 10.0], [1, 3])
    >>> theta = np.log([6.25, 2.74, 15.44])
    >>> bool(np.isclose(data.objective(theta)[0],
    ...                 gg_objective(theta, [2, 5], [22.35, 10.0], [1, 3])[0]))
    True
    """

    def __init__(self, x, m, weights):
        x = np.asarray(x, dtype=float)
        m = np.asarray(m, dtype=float)
        w = np.asarray(weights, dtype=float)
        self.x_values, self.x_index = np.unique(x, return_inverse=True)
        self.x_weight = np.bincount(self.x_index, weights=w)
        self.total = w.sum()
        self.x, self.m, self.w = x, m, w
        log_m = np.log(m)
        self.sum_w_log_m = w @ log_m
        self.sum_wx_log_m = (w * x) @ log_m
        self.sum_wx_log_x = (w * x) @ np.log(x)
        self.sum_wx = w @ x

    def objective(self, theta, penalizer: float = 0.0):
        """Return the objective and gradient in ``(log p, log(q - 1), log v)``."""
        p, q_minus_1, v = np.exp(theta)
        q = 1.0 + q_minus_1
        params = np.array([p, q, v])
        xv = self.x_values
        xw = self.x_weight
        pxv = p * xv
        vmx = v + self.m * self.x
        log_vmx = np.log(vmx)
        per_x = gammaln(pxv + q) - gammaln(pxv) - gammaln(q) + q * np.log(v)
        ll_total = (
            xw @ per_x
            + p * self.sum_wx_log_m
            - self.sum_w_log_m
            + p * self.sum_wx_log_x
            - (self.w * (p * self.x + q)) @ log_vmx
        )
        dg = digamma(pxv + q)
        wx_log_vmx = (self.w * self.x) @ log_vmx
        g_p = (xw * xv) @ (dg - digamma(pxv)) + self.sum_wx_log_m + self.sum_wx_log_x - wx_log_vmx
        g_q = xw @ (dg - digamma(q)) + self.total * np.log(v) - self.w @ log_vmx
        g_v = self.total * q / v - (self.w * (p * self.x + q)) @ (1.0 / vmx)
        grad_ll = np.array([g_p, g_q, g_v])
        value = -ll_total / self.total + penalizer * np.sum(params**2)
        d_params = -grad_ll / self.total + 2.0 * penalizer * params
        return value, d_params * np.array([p, q_minus_1, v])
