"""Likelihood maths the BTYD models share: rising factorials and digammas by cumulative sums.

``table`` caches one cumulative sum per base (and ``max_x``, the largest count),
so a fit's many likelihood evaluations on the same patterns cost one lookup each.
"""

from __future__ import annotations

import numpy as np

__all__ = ["log_rising", "rising_digamma"]


def log_rising(base: float, counts: np.ndarray, table: dict) -> np.ndarray:
    """``lnGamma(base + n) - lnGamma(base)`` for integer ``n``, via cumulative sums."""
    key = ("lr", base)
    if key not in table:
        top = int(table["max_x"])
        table[key] = np.concatenate([[0.0], np.cumsum(np.log(base + np.arange(top)))])
    return table[key][counts]


def rising_digamma(base: float, counts: np.ndarray, table: dict) -> np.ndarray:
    """``digamma(base + n) - digamma(base)`` for integer ``n``, via cumulative sums."""
    key = ("dg", base)
    if key not in table:
        top = int(table["max_x"])
        table[key] = np.concatenate([[0.0], np.cumsum(1.0 / (base + np.arange(top)))])
    return table[key][counts]
