"""Likelihood maths the BTYD models share: rising factorials and digammas by cumulative sums.

``table`` caches one cumulative sum per base (and ``max_x``, the largest count),
so a fit's many likelihood evaluations on the same patterns cost one lookup each.
A base that varies by customer (a model with covariates) is an array: then the
functions are taken directly, element by element.
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln

__all__ = ["as_params", "log_rising", "rising_digamma"]


def as_params(params) -> tuple:
    """Model parameters as floats, or as arrays where they vary by customer (covariates).

    Examples
    --------
    >>> as_params([1, np.array([2.0, 3.0])])
    (1.0, array([2., 3.]))
    """
    return tuple(float(v) if np.ndim(v) == 0 else np.asarray(v, dtype=float) for v in params)


def log_rising(base: float, counts: np.ndarray, table: dict) -> np.ndarray:
    """``lnGamma(base + n) - lnGamma(base)`` for integer ``n``, via cumulative sums."""
    if np.ndim(base):
        return gammaln(base + counts) - gammaln(base)
    key = ("lr", base)
    if key not in table:
        top = int(table["max_x"])
        table[key] = np.concatenate([[0.0], np.cumsum(np.log(base + np.arange(top)))])
    return table[key][counts]


def rising_digamma(base: float, counts: np.ndarray, table: dict) -> np.ndarray:
    """``digamma(base + n) - digamma(base)`` for integer ``n``, via cumulative sums."""
    if np.ndim(base):
        return digamma(base + counts) - digamma(base)
    key = ("dg", base)
    if key not in table:
        top = int(table["max_x"])
        table[key] = np.concatenate([[0.0], np.cumsum(1.0 / (base + np.arange(top)))])
    return table[key][counts]
