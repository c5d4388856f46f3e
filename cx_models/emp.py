"""The expected maximum profit measure for customer churn (EMPC).

Verbraken, Verbeke & Baesens (IEEE TKDE 25(5), 2013): contact the customers a
churn model ranks first; a contacted would-be churner accepts the incentive and
stays with probability ``γ ~ Beta(α, β)``; every contacted customer costs the
contact ``f``, every one who accepts the incentive ``d``. For a cut-off that
contacts the share ``F0`` of churners and ``F1`` of the others, the profit per
customer is

    CLV · [(γ (1 − δ) − φ) π0 F0 − (δ + φ) π1 F1],   δ = d / CLV, φ = f / CLV,

with ``π0`` the churn rate. ``emp`` is its maximum over cut-offs, averaged over
``γ``; ``emp_fraction`` the share of customers contacted at that maximum, averaged
the same way. Defaults are the paper's: CLV 200, incentive 10, contact 1,
``γ ~ Beta(6, 14)``. The maximum is always on the convex hull of the ROC curve,
so only its vertices are searched; ``γ`` is integrated on a fine grid.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn.metrics import roc_curve

from cx_models.errors import CXDataError

__all__ = ["emp_score"]


def _roc_hull(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of the ROC curve's upper convex hull, from (0, 0) to (1, 1)."""
    fpr, tpr, _ = roc_curve(y, score)
    hull: list[tuple[float, float]] = []
    for point in zip(fpr, tpr, strict=True):
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (point[1] - y1) - (y2 - y1) * (point[0] - x1) >= 0:
                hull.pop()  # the middle vertex lies on or under the chord
            else:
                break
        hull.append(point)
    f1, f0 = (np.array(v, dtype=float) for v in zip(*hull, strict=True))
    return f0, f1


def emp_score(
    y,
    score,
    *,
    clv: float = 200.0,
    incentive_cost: float = 10.0,
    contact_cost: float = 1.0,
    alpha: float = 6.0,
    beta: float = 14.0,
    grid: int = 4001,
) -> dict:
    """Return ``{"emp", "emp_fraction"}`` of a churn score (1 = churn, higher = riskier).

    Examples
    --------
    >>> r = emp_score([0, 1, 0, 1, 0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.8, 0.9])
    >>> round(r["emp"], 4), round(r["emp_fraction"], 4)
    (23.8756, 0.8744)
    """
    y = np.asarray(y, dtype=float)
    score = np.asarray(score, dtype=float)
    if y.size == 0 or y.min() == y.max():
        raise CXDataError("the EMP measure needs both churners and non-churners")
    if not (clv > 0 and incentive_cost >= 0 and contact_cost >= 0 and alpha > 0 and beta > 0):
        raise CXDataError("the EMP measure needs clv > 0, costs >= 0, alpha and beta > 0")
    pi0 = float(y.mean())
    pi1 = 1.0 - pi0
    delta, phi = incentive_cost / clv, contact_cost / clv
    f0, f1 = _roc_hull(y, score)
    gamma = np.linspace(0.0, 1.0, grid)
    # profit at every hull vertex for every gamma: (grid, vertices)
    profit = clv * (
        ((gamma[:, None] * (1 - delta) - phi) * pi0 * f0[None, :])
        - (delta + phi) * pi1 * f1[None, :]
    )
    best = profit.argmax(axis=1)
    weight = stats.beta.pdf(gamma, alpha, beta)
    fraction = pi0 * f0[best] + pi1 * f1[best]
    emp = np.trapezoid(profit[np.arange(grid), best] * weight, gamma)
    share = np.trapezoid(fraction * weight, gamma)
    norm = np.trapezoid(weight, gamma)
    return {"emp": float(emp / norm), "emp_fraction": float(share / norm)}
