"""Net Customer Outcome: survey experience, predicted value and churn risk in one 0-100 score.

Customer-level components, each on 0-100 and NaN when its input is missing:

* ``csat_score`` = (CSAT - 1) / 4 * 100
* ``nps_score`` = NPS * 10
* ``ces_score`` = (7 - CES) / 6 * 100 (default: 1 = very low effort is best), or
  (CES - 1) / 6 * 100 when CES is declared higher-is-better
* ``retention_score`` = 100 * (1 - churn_risk)
* ``value_score`` = 100 * the empirical CDF of the customer's CLV in a
  **reference distribution saved at training time** (:class:`ValueReference`), so a
  customer's score does not depend on who else is in the batch.

``experience_score`` is the weighted mean of the available survey components;
``nco`` the weighted mean of all available components, weights renormalised over
what is present, and ``nco_coverage`` the share of the total weight that was
available (0-1). ``value_at_risk`` = clv * churn_risk and ``priority_rank`` ranks
customers 1..n by value at risk (ties: lower NCO first, then customer_id).

Survey inputs are the feature table's latest scores in the look-back window
(``csat_latest``, ``nps_latest``, ``ces_latest``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cx_models.errors import CXDataError
from cx_models.nco_weights import (
    DEFAULT_WEIGHTS,
    MAX_WEIGHT,
    load_weights,
    parse_weights,
    validate_weights,
)

__all__ = [
    "COMPONENTS",
    "DEFAULT_WEIGHTS",
    "MAX_WEIGHT",
    "SURVEY_COMPONENTS",
    "ValueReference",
    "NCO_INPUTS",
    "load_weights",
    "nco_arrays",
    "parse_weights",
    "priority_rank",
    "rank_arrays",
    "score_nco",
    "summarise",
    "validate_weights",
]

#: Components of the NCO, in output order.
COMPONENTS = ("csat", "nps", "ces", "retention", "value")
#: The survey-based components (the experience score).
SURVEY_COMPONENTS = ("csat", "nps", "ces")
@dataclass(frozen=True)
class ValueReference:
    """A reference CLV distribution, saved at training time, for the value score.

    Stored as ``n_quantiles`` quantiles of the training customers' CLV; the
    value score of a CLV is 100 x the share of the reference at or below it.
    ``settings`` records the CLV settings (months, discount rate) it was built
    with: the value score must always use CLV at those settings.

    Examples
    --------
    >>> ref = ValueReference.from_clv([0, 10, 20, 30], settings={"clv_months": 12})
    >>> ref.score([-1, 0, 15, 30, 99]).tolist()
    [0.0, 25.0, 50.0, 100.0, 100.0]
    """

    quantiles: tuple[float, ...]
    settings: dict

    @classmethod
    def from_clv(cls, clv, *, settings: dict | None = None, n_quantiles: int = 1001):
        """Build a reference from the CLV of the training customers."""
        values = np.asarray(clv, dtype=float)
        values = values[np.isfinite(values)]
        if values.size == 0:
            raise CXDataError("the CLV reference needs at least one finite CLV value")
        if values.size <= n_quantiles:
            grid = np.sort(values)
        else:
            grid = np.quantile(values, np.linspace(0, 1, n_quantiles), method="inverted_cdf")
        return cls(quantiles=tuple(float(v) for v in grid), settings=dict(settings or {}))

    def score(self, clv) -> np.ndarray:
        """Return 100 x the empirical CDF of ``clv`` in the reference (NaN stays NaN)."""
        clv = np.asarray(clv, dtype=float)
        grid = np.asarray(self.quantiles)
        # The reference holds the training customers' own CLV values, so scoring them lands
        # exactly on a step of the ECDF; a relative tolerance of 1e-12 keeps last-bit noise
        # (vectorised math differs by array length) from moving a customer across a step.
        probe = clv + np.abs(clv) * 1e-12 + 1e-12
        out = 100.0 * np.searchsorted(grid, probe, side="right") / grid.size
        return np.where(np.isnan(clv), np.nan, out)

    def to_dict(self) -> dict:
        """Return JSON-serialisable data."""
        return {"quantiles": list(self.quantiles), "settings": dict(self.settings)}

    @classmethod
    def from_dict(cls, data: dict) -> ValueReference:
        """Rebuild from :meth:`to_dict` output."""
        try:
            quantiles = tuple(float(v) for v in data["quantiles"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CXDataError(f"not a CLV reference description: {exc}") from None
        if not quantiles or list(quantiles) != sorted(quantiles):
            raise CXDataError("a CLV reference needs sorted, non-empty quantiles")
        return cls(quantiles=quantiles, settings=dict(data.get("settings", {})))


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)


def _weighted(components: dict[str, np.ndarray], weights: dict[str, float]):
    names = list(components)
    values = np.column_stack([components[n] for n in names])
    w = np.array([weights[n] for n in names])
    present = ~np.isnan(values)
    used = present @ w
    total = np.nansum(np.where(present, values, 0.0) * w, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(used > 0, total / used, np.nan)
    return mean, used / w.sum() if w.sum() > 0 else np.zeros(len(values))


def score_nco(
    frame: pd.DataFrame,
    *,
    reference: ValueReference,
    weights: dict | None = None,
    ces_higher_is_better: bool = False,
    clv_col: str = "clv",
    value_clv_col: str | None = None,
    churn_col: str = "churn_risk",
) -> pd.DataFrame:
    """Compute the NCO components, composite, value at risk and priority rank.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per customer with ``customer_id``, ``churn_risk`` and ``clv``
        (names configurable) and, when available, ``csat_latest``,
        ``nps_latest`` and ``ces_latest`` from the feature table.
    reference : ValueReference
        The training-time CLV reference for ``value_score``.
    weights : dict, optional
        Component weights (see :func:`validate_weights`); defaults otherwise.
    ces_higher_is_better : bool
        The declared CES direction (default: 1 = very low effort is best).
    clv_col, churn_col : str
        Columns with CLV (for value at risk) and churn risk (0-1).
    value_clv_col : str, optional
        Column with CLV at the reference's settings, for ``value_score`` when
        ``clv_col`` was computed with other settings; ``clv_col`` otherwise.

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` and ``csat_score, nps_score, ces_score, retention_score,
        value_score, experience_score, nco, nco_coverage, value_at_risk,
        priority_rank``, in the input's row order.

    Examples
    --------
    >>> ref = ValueReference.from_clv([0, 50, 100, 200])
    >>> one = pd.DataFrame({"customer_id": [1], "csat_latest": [5], "nps_latest": [9],
    ...                     "ces_latest": [1], "churn_risk": [0.2], "clv": [100.0]})
    >>> score_nco(one, reference=ref).iloc[0][["nps_score", "value_score", "nco"]].tolist()
    [90.0, 75.0, 86.75]
    """
    for required in (clv_col, churn_col):
        if required not in frame.columns:
            raise CXDataError(f"NCO needs column {required!r}; found {', '.join(frame.columns)}")
    inputs = {
        "csat_latest": _column(frame, "csat_latest"),
        "nps_latest": _column(frame, "nps_latest"),
        "ces_latest": _column(frame, "ces_latest"),
        "churn_risk": _column(frame, churn_col),
        "clv": _column(frame, clv_col),
        "value_clv": _column(frame, value_clv_col or clv_col),
    }
    columns = nco_arrays(
        inputs,
        reference=reference,
        weights=weights,
        ces_higher_is_better=ces_higher_is_better,
        churn_col=churn_col,
    )
    ids = frame["customer_id"] if "customer_id" in frame.columns else None
    columns["priority_rank"] = rank_arrays(
        columns["value_at_risk"], columns["nco"], None if ids is None else ids.to_numpy()
    )
    out = pd.DataFrame(columns, index=frame.index)
    if ids is not None:
        out.insert(0, "customer_id", ids)
    return out


#: The arrays :func:`nco_arrays` combines, in order.
NCO_INPUTS = ("csat_latest", "nps_latest", "ces_latest", "churn_risk", "clv", "value_clv")


def nco_arrays(
    inputs: Mapping[str, np.ndarray],
    *,
    reference: ValueReference,
    weights: dict | None = None,
    ces_higher_is_better: bool = False,
    churn_col: str = "churn_risk",
) -> dict[str, np.ndarray]:
    """:func:`score_nco` on arrays, without ``customer_id`` and ``priority_rank``.

    ``inputs`` maps each of :data:`NCO_INPUTS` (the latest CSAT, NPS and CES
    answers, ``churn_risk``, ``clv`` and ``value_clv``, the CLV the value score
    ranks) to an array. Returns ``csat_score ... value_at_risk`` (the contract's
    NCO block up to the rank) as a dict of float arrays: the scorer's per-call path.
    """
    missing = [name for name in NCO_INPUTS if name not in inputs]
    if missing:
        raise CXDataError(f"NCO inputs missing: {', '.join(missing)}")
    csat_latest, nps_latest, ces_latest, churn_risk, clv, value_clv = (
        inputs[name] for name in NCO_INPUTS
    )
    w = validate_weights(weights)
    churn = np.asarray(churn_risk, dtype=float)
    if np.any((churn < 0) | (churn > 1)):
        raise CXDataError(f"column {churn_col!r} must hold probabilities in [0, 1]")
    ces = np.asarray(ces_latest, dtype=float)
    comps = {
        "csat": (np.asarray(csat_latest, dtype=float) - 1.0) / 4.0 * 100.0,
        "nps": np.asarray(nps_latest, dtype=float) * 10.0,
        "ces": ((ces - 1.0) if ces_higher_is_better else (7.0 - ces)) / 6.0 * 100.0,
        "retention": 100.0 * (1.0 - churn),
        "value": reference.score(np.asarray(value_clv, dtype=float)),
    }
    out = {f"{name}_score": comps[name] for name in COMPONENTS}
    out["experience_score"], _ = _weighted({k: comps[k] for k in SURVEY_COMPONENTS}, w)
    out["nco"], out["nco_coverage"] = _weighted(comps, w)
    out["value_at_risk"] = np.asarray(clv, dtype=float) * churn
    return out


def priority_rank(scored: pd.DataFrame) -> np.ndarray:
    """Rank 1..n by value at risk (highest first); ties: lower NCO, then customer_id.

    Missing value at risk or NCO sort last among their ties. No two customers
    share a rank.
    """
    ids = scored["customer_id"].to_numpy() if "customer_id" in scored.columns else None
    return rank_arrays(
        scored["value_at_risk"].to_numpy(dtype=float), scored["nco"].to_numpy(dtype=float), ids
    )


def rank_arrays(var: np.ndarray, nco: np.ndarray, ids: np.ndarray | None) -> np.ndarray:
    """Rank 1..n by value at risk, then lower NCO, then id (:func:`priority_rank` on arrays)."""
    n = len(var)
    if n <= 1:
        return np.ones(n, dtype=np.int64)
    if ids is None:
        ids = np.arange(n)
    ids = np.asarray(ids)
    # numbers sort as they are (lexsort is stable: equal ids keep their order, as
    # rank(method="first")); other ids by their rank
    id_key = ids if ids.dtype.kind in "iuf" else pd.Series(ids).rank(method="first").to_numpy()
    order = np.lexsort(
        (
            id_key,
            np.where(np.isnan(nco), np.inf, nco),
            np.where(np.isnan(var), np.inf, -var),
        )
    )
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    return rank


def summarise(scored: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """Portfolio (or per-segment) aggregates of a scored table.

    NPS is % promoters - % detractors over customers with a latest NPS in the
    window (one vote each; -100..100) with the respondent count; CSAT % satisfied
    is the share of 4-5 among CSAT respondents; CES is the mean raw CES.

    Examples
    --------
    >>> t = pd.DataFrame({"nps_latest": [10, 9, 7, 3, np.nan], "csat_latest": [5, 4, 2, np.nan, 1],
    ...                   "ces_latest": [2, 4, np.nan, np.nan, np.nan],
    ...                   "churn_risk": [0.1, 0.2, 0.3, 0.4, 0.5], "clv": [10, 20, 30, 40, 50],
    ...                   "value_at_risk": [1, 4, 9, 16, 25], "nco": [80, 70, 60, 50, 40],
    ...                   "nco_coverage": [1, 1, 1, 1, 1]})
    >>> s = summarise(t).iloc[0]
    >>> [float(s[k]) for k in ("nps", "nps_respondents", "csat_pct_satisfied", "mean_ces")]
    [25.0, 4.0, 50.0, 3.0]
    """
    if by is not None and by not in scored.columns:
        raise CXDataError(f"segment column {by!r} not found; found {', '.join(scored.columns)}")
    groups = [("all", scored)] if by is None else list(scored.groupby(by, dropna=False))
    rows = []
    for key, part in groups:
        nps = _column(part, "nps_latest")
        nps = nps[~np.isnan(nps)]
        csat = _column(part, "csat_latest")
        csat = csat[~np.isnan(csat)]
        churn = _column(part, "churn_risk")
        row = {
            "segment": key if by is not None else "all",
            "customers": int(len(part)),
            "nps": float(100.0 * (np.mean(nps >= 9) - np.mean(nps <= 6))) if nps.size else np.nan,
            "nps_respondents": int(nps.size),
            "csat_pct_satisfied": float(100.0 * np.mean(csat >= 4)) if csat.size else np.nan,
            "csat_respondents": int(csat.size),
            "mean_ces": float(np.nanmean(_column(part, "ces_latest")))
            if np.isfinite(_column(part, "ces_latest")).any()
            else np.nan,
            "predicted_churn_rate": float(np.nanmean(churn)) if len(part) else np.nan,
            "retention_rate": float(1.0 - np.nanmean(churn)) if len(part) else np.nan,
            "total_clv": float(np.nansum(_column(part, "clv"))),
            "mean_clv": float(np.nanmean(_column(part, "clv"))) if len(part) else np.nan,
            "total_value_at_risk": float(np.nansum(_column(part, "value_at_risk"))),
            "mean_nco": float(np.nanmean(_column(part, "nco")))
            if np.isfinite(_column(part, "nco")).any()
            else np.nan,
            "mean_coverage": float(np.nanmean(_column(part, "nco_coverage")))
            if len(part)
            else np.nan,
        }
        rows.append(row)
    out = pd.DataFrame(rows)
    if by is not None:
        out = out.rename(columns={"segment": by})
    return out
