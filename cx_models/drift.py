"""Drift: how far a feature's or a score's distribution has moved since training.

At training, :func:`drift_reference` records for each column (the churn model's
features, which are rates, gaps and recent windows rather than ages that grow by
design, and the scores ``churn_risk``, ``clv``, ``nco``) its deciles, the share of
rows in each decile bin and of missing values, and 101 percentiles — JSON,
logged with the model. :func:`drift_report` compares a later table with it:

* **PSI** (population stability index) over the reference's decile bins plus a
  missing bin: ``Σ (a − e) ln(a / e)``, shares floored at 1e-4;
* **KS D**: the largest gap between the reference's cumulative distribution and the
  current one, at the reference's percentile points (the reference's CDF there is
  stored, so discrete features with ties are compared right);
* ``verdict``: ``alarm`` if any PSI ≥ 0.25 or any D ≥ 0.15, ``warn`` if any
  PSI ≥ 0.1, else ``ok`` — the usual rules of thumb.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cx_models.columns import as_float

__all__ = ["ALARM_KS", "ALARM_PSI", "WARN_PSI", "drift_reference", "drift_report"]

WARN_PSI, ALARM_PSI, ALARM_KS = 0.1, 0.25, 0.15
_FLOOR = 1e-4


def _bins(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares of rows per bin: missing, then ``(-inf, e1], (e1, e2], ..., (ek, inf)``."""
    present = values[np.isfinite(values)]
    counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=len(edges) + 1)
    shares = np.concatenate([[len(values) - len(present)], counts]) / max(len(values), 1)
    return shares


def drift_reference(frame: pd.DataFrame, columns) -> dict:
    """Return the reference distribution of each of ``columns`` in ``frame`` (JSON-ready).

    Examples
    --------
    >>> ref = drift_reference(pd.DataFrame({"x": np.arange(100.0)}), ["x"])
    >>> len(ref["x"]["edges"]), round(sum(ref["x"]["shares"]), 6), len(ref["x"]["percentiles"])
    (9, 1.0, 101)
    """
    out = {}
    for col in columns:
        if col not in frame.columns:
            continue
        values = as_float(frame[col])
        present = values[np.isfinite(values)]
        if present.size == 0:
            continue
        edges = np.unique(np.quantile(present, np.linspace(0.1, 0.9, 9)))
        points = np.unique(np.quantile(present, np.linspace(0, 1, 101)))
        ordered = np.sort(present)
        out[col] = {
            "edges": edges.tolist(),
            "shares": _bins(values, edges).tolist(),
            "percentiles": points.tolist(),
            # the reference's own CDF at those points (ties make it differ from i / 100)
            "cdf": (np.searchsorted(ordered, points, side="right") / ordered.size).tolist(),
        }
    return out


def _ks(reference: dict, values: np.ndarray) -> float:
    present = np.sort(values[np.isfinite(values)])
    if present.size == 0:
        return 1.0
    points = np.asarray(reference["percentiles"], dtype=float)
    ref_cdf = np.asarray(reference["cdf"], dtype=float)
    cur_cdf = np.searchsorted(present, points, side="right") / present.size
    return float(np.max(np.abs(cur_cdf - ref_cdf)))


def drift_report(frame: pd.DataFrame, reference: dict) -> dict:
    """Compare ``frame`` with a :func:`drift_reference`; return per-column PSI and KS, a verdict.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = drift_reference(pd.DataFrame({"x": rng.normal(size=5000)}), ["x"])
    >>> drift_report(pd.DataFrame({"x": rng.normal(size=5000)}), ref)["verdict"]
    'ok'
    >>> drift_report(pd.DataFrame({"x": rng.normal(1.0, size=5000)}), ref)["verdict"]
    'alarm'
    """
    columns = {}
    for col, ref in reference.items():
        if col not in frame.columns:
            columns[col] = {"psi": None, "ks": None, "missing_column": True}
            continue
        values = as_float(frame[col])
        expected = np.maximum(np.asarray(ref["shares"], dtype=float), _FLOOR)
        actual = np.maximum(_bins(values, np.asarray(ref["edges"], dtype=float)), _FLOOR)
        psi = float(np.sum((actual - expected) * np.log(actual / expected)))
        columns[col] = {"psi": psi, "ks": _ks(ref, values)}
    psis = [c["psi"] for c in columns.values() if c["psi"] is not None]
    kss = [c["ks"] for c in columns.values() if c["ks"] is not None]
    missing = [k for k, c in columns.items() if c.get("missing_column")]
    if missing or any(p >= ALARM_PSI for p in psis) or any(d >= ALARM_KS for d in kss):
        verdict = "alarm"
    elif any(p >= WARN_PSI for p in psis):
        verdict = "warn"
    else:
        verdict = "ok"
    # largest first; a PSI of exactly 0 is a value (no drift), only a missing one sorts last
    worst = sorted(
        columns,
        key=lambda k: -columns[k]["psi"] if columns[k]["psi"] is not None else np.inf,
    )[:5]
    return {"verdict": verdict, "columns": columns, "largest_psi": worst,
            "rules": {"warn_psi": WARN_PSI, "alarm_psi": ALARM_PSI, "alarm_ks": ALARM_KS}}
