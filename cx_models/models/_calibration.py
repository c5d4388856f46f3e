"""Probability calibration of the churn booster, stored as JSON (no pickle).

Platt's sigmoid (scikit-learn's logistic regression on the logit) or isotonic
regression, fitted on held-out predictions and applied with NumPy alone.
"""

from __future__ import annotations

import numpy as np

__all__ = ["apply_calibrator", "fit_calibrator"]


def fit_calibrator(raw: np.ndarray, y: np.ndarray, method: str) -> dict:
    """Fit scikit-learn's isotonic regression or a Platt sigmoid; return JSON data."""
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
        return {
            "method": "isotonic",
            "x": [float(v) for v in iso.X_thresholds_],
            "y": [float(v) for v in iso.y_thresholds_],
        }
    from sklearn.linear_model import LogisticRegression

    logit = np.log(np.clip(raw, 1e-7, 1 - 1e-7) / np.clip(1 - raw, 1e-7, 1))
    lr = LogisticRegression(C=1e6).fit(logit[:, None], y)
    return {"method": "sigmoid", "a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}


def apply_calibrator(cal: dict, raw: np.ndarray) -> np.ndarray:
    """Map raw probabilities through a calibrator from :func:`fit_calibrator`."""
    if cal["method"] == "isotonic":
        return np.interp(raw, np.asarray(cal["x"]), np.asarray(cal["y"]))
    logit = np.log(np.clip(raw, 1e-7, 1 - 1e-7) / np.clip(1 - raw, 1e-7, 1))
    return 1.0 / (1.0 + np.exp(-(cal["a"] * logit + cal["b"])))
