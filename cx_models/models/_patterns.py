"""The CLV fitter's helpers: RFM arrays from a table, weighted unique patterns, CLV sums.

Private to :mod:`cx_models.models` (the CLV facade and its predictions).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl

from cx_models.columns import as_float
from cx_models.errors import CXDataError
from cx_models.timeutil import DAYS_PER_UNIT, check_time_unit

__all__ = [
    "DAYS_PER_MONTH",
    "RFM_COLUMNS",
    "SPEND_PARAMS",
    "discounted_clv",
    "distinct_pairs",
    "month_ends",
    "numeric_hessian",
    "pattern_columns",
    "pattern_counts",
    "positive_inverse",
    "rfm_arrays",
    "sort_order",
    "spend_patterns",
    "table_unit",
    "transaction_patterns",
    "weighted_patterns",
]

#: Length of a CLV month in days: 365.25 / 12.
DAYS_PER_MONTH = 365.25 / 12
#: Columns the model reads from a feature table.
RFM_COLUMNS = ("frequency", "recency", "T", "monetary_value")
#: Parameter names of Gamma-Gamma, in order (the transaction models' are in _families).
SPEND_PARAMS = ("p", "q", "v")


def distinct_pairs(x: np.ndarray, T: np.ndarray):
    """Distinct (x, T) pairs and, for each customer, the index of its pair.

    Examples
    --------
    >>> px, pT, of = distinct_pairs(np.array([1.0, 0.0, 1.0]), np.array([5.0, 9.0, 5.0]))
    >>> px.tolist(), pT.tolist(), of.tolist()
    ([0.0, 1.0], [9.0, 5.0], [1, 0, 1])
    """
    (xs, Ts), pair_of = distinct_rows(x, T)
    return xs, Ts, pair_of


def distinct_rows(*columns) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Return the distinct rows of equal-length columns and each row's index among them.

    In lexicographic order (the first column leads). A BG/BB history is a few hundred
    (x, tₓ, n) patterns however many customers share them: its predictions are computed
    once per pattern.

    Examples
    --------
    >>> (x, n), index = distinct_rows([1, 0, 1], [5, 5, 5])
    >>> x.tolist(), n.tolist(), index.tolist()
    ([0.0, 1.0], [5.0, 5.0], [1, 0, 1])
    """
    cols = [np.asarray(c, dtype=float).ravel() for c in np.broadcast_arrays(*columns)]
    n = cols[0].size
    if n == 0:
        return tuple(cols), np.zeros(0, dtype=np.intp)
    order = np.lexsort(cols[::-1])
    sorted_cols = [c[order] for c in cols]
    first = np.zeros(n, dtype=bool)
    first[0] = True
    for c in sorted_cols:
        first[1:] |= c[1:] != c[:-1]
    index = np.empty(n, dtype=np.intp)
    index[order] = np.cumsum(first) - 1
    return tuple(c[first] for c in sorted_cols), index


def month_ends(clv_months: int, time_unit: str) -> np.ndarray:
    """Return the end of each CLV month 1..clv_months, in model time units."""
    return np.arange(1, int(clv_months) + 1) * DAYS_PER_MONTH / DAYS_PER_UNIT[time_unit]


def discounted_clv(if_alive, pair_of, alive, order_value, discount_rate: float) -> np.ndarray:
    """Discounted CLV from per-pair expected purchases by each month's end (if alive).

    Month m's expected purchases (the increment of the cumulative ones) are
    discounted by (1 + rate)^(-m/12), summed per pair, then scaled by each
    customer's P(alive) and expected order value.
    """
    months = np.arange(1, if_alive.shape[1] + 1)
    monthly = np.diff(if_alive, axis=1, prepend=0.0)
    per_pair = monthly @ ((1.0 + discount_rate) ** (-months / 12.0))
    return np.clip(per_pair[pair_of] * alive, 0.0, None) * order_value


def table_unit(features: pd.DataFrame) -> str:
    return check_time_unit(getattr(features, "attrs", {}).get("time_unit", "D"))


def rfm_arrays(features, *, source: str = "features") -> dict[str, np.ndarray]:
    """Extract and check the RFM columns (lifetimes' rules, with clear messages)."""
    if isinstance(features, pl.DataFrame):
        features = features.to_pandas()
    missing = [c for c in RFM_COLUMNS if c not in features.columns]
    if missing:
        raise CXDataError(
            f"{source}: required column(s) {', '.join(map(repr, missing))} missing; a customer "
            "feature table from `cx-models features` / build_customer_features has them"
        )
    out = {}
    for col in RFM_COLUMNS:
        values = as_float(features[col])
        if not np.isfinite(values).all():
            raise CXDataError(f"{source}: column {col!r} has missing or non-finite values")
        if (values < 0).any():
            raise CXDataError(f"{source}: column {col!r} has negative values")
        out[col] = values
    x = out["frequency"]
    if (x != np.round(x)).any():
        raise CXDataError(f"{source}: column 'frequency' must hold whole numbers")
    if (out["recency"] > out["T"] * (1 + 1e-9) + 1e-9).any():
        raise CXDataError(f"{source}: recency must be <= T for every customer")
    if ((x == 0) & (out["recency"] > 0)).any():
        raise CXDataError(f"{source}: customers with frequency 0 must have recency 0")
    return out


def weighted_patterns(*columns: np.ndarray, weights=None) -> tuple[list[np.ndarray], np.ndarray]:
    """Return the unique rows of the columns and how many customers share each.

    ``weights``: how many customers each row stands for (one each by default).
    """
    frame = pl.DataFrame({f"c{i}": c for i, c in enumerate(columns)})
    keys = frame.columns
    w = np.ones(frame.height) if weights is None else weights
    frame = frame.with_columns(pl.Series("w", w))
    grouped = frame.group_by(keys).agg(pl.col("w").sum())
    return [grouped[f"c{i}"].to_numpy() for i in range(len(columns))], grouped["w"].to_numpy()


def fit_table(features, *, allow_no_spend: bool = True):
    """Return a pandas RFM table, its row weights and whether it has spend.

    ``periods`` stands for ``T`` (BG/BB tables), a ``weights`` column counts the
    customers of each row, and a missing ``monetary_value`` is filled with 0 (the
    third result is then false, so that no spend model is fitted) — unless
    ``allow_no_spend`` is false, when it is an error naming the column.
    """
    if isinstance(features, pl.DataFrame):
        features = features.to_pandas()
    if "T" not in features.columns and "periods" in features.columns:
        features = features.rename(columns={"periods": "T"})
    has_spend = "monetary_value" in features.columns
    if not has_spend:
        if not allow_no_spend:
            rfm_arrays(features)  # the error that names the missing column
        features = features.assign(monetary_value=0.0)
    weights = None
    if "weights" in features.columns:
        weights = as_float(features["weights"])
        if not (np.isfinite(weights).all() and (weights >= 0).all()):
            raise CXDataError("features: column 'weights' must hold counts >= 0")
    else:
        weights = np.ones(len(features))
    return features, weights, has_spend


def sort_order(*keys: np.ndarray) -> np.ndarray:
    """Return a canonical order of the rows of ``keys``, whatever order they came in.

    The fit sums over patterns, and the order of a sum moves the estimates by up
    to 1e-6 (Gamma-Gamma's optimum is flat): one canonical order makes them
    reproducible however the patterns were aggregated. The order is that of a
    seeded 64-bit hash of each row (a stable sort of one integer key is several
    times faster than sorting on the float columns).

    Examples
    --------
    >>> a = sort_order(np.array([2, 1, 1]), np.array([0.5, 3.0, 2.0]))
    >>> b = sort_order(np.array([1, 1, 2]), np.array([2.0, 3.0, 0.5]))
    >>> [(2, 1, 1)[i] for i in a] == [(1, 1, 2)[i] for i in b]
    True
    """
    frame = pl.DataFrame({f"k{i}": k for i, k in enumerate(keys)})
    digest = frame.select(pl.struct(pl.all()).hash(seed=0)).to_series().to_numpy()
    # the first key (frequency, a whole number) leads: the likelihoods' per-frequency
    # terms then find their distinct values in sorted order
    first = np.asarray(keys[0])
    if first.dtype.kind in "iu" and first.size and 0 <= first.min() and first.max() < 2**20:
        digest = (first.astype(np.uint64) << np.uint64(44)) | (digest >> np.uint64(20))
    return np.argsort(digest, kind="stable")


def pattern_counts(counts, size: int, source: str) -> np.ndarray:
    """Check pattern counts: one positive whole number per pattern."""
    w = np.asarray(counts, dtype=float)
    if w.shape != (size,):
        raise CXDataError(f"{source}: {w.size} counts for {size} patterns")
    if not (np.isfinite(w).all() and (w > 0).all() and (w == np.round(w)).all()):
        raise CXDataError(f"{source}: counts must be whole numbers > 0")
    return w


def numeric_hessian(grad, theta: np.ndarray, step: float = 1e-5) -> np.ndarray:
    """Central-difference Hessian of an analytic gradient."""
    k = theta.size
    hess = np.empty((k, k))
    for i in range(k):
        e = np.zeros(k)
        e[i] = step
        hess[:, i] = (grad(theta + e) - grad(theta - e)) / (2 * step)
    return (hess + hess.T) / 2


def positive_inverse(matrix: np.ndarray) -> np.ndarray | None:
    """Return the symmetric inverse of a well-conditioned positive definite matrix, else None."""
    if not np.all(np.isfinite(matrix)):
        return None
    eig = np.linalg.eigvalsh(matrix)
    if eig.min() <= 0 or eig.max() / eig.min() > 1e12:
        return None
    inverse = np.linalg.inv(matrix)
    return (inverse + inverse.T) / 2


def pattern_columns(table, names: tuple[str, ...], source: str) -> list[np.ndarray]:
    """Return the named columns of a frame or mapping as NumPy arrays.

    Examples
    --------
    >>> pattern_columns({"frequency": [1, 2], "count": [3, 4]}, ("frequency", "count"), "t")
    [array([1, 2]), array([3, 4])]
    """
    try:
        present = set(table.keys() if hasattr(table, "keys") else table.columns)
    except AttributeError:
        raise CXDataError(f"{source}: expected a table with columns {', '.join(names)}") from None
    missing = [name for name in names if name not in present]
    if missing:
        raise CXDataError(f"{source}: pattern column(s) {', '.join(missing)} missing")
    return [np.asarray(table[name]) for name in names]


def transaction_patterns(patterns, source: str, *, periods: bool = False):
    """Return checked (frequency, recency, T, count) arrays of a pattern table, canonical order.

    ``periods``: BG/BB's discrete histories, whole numbers with frequency <= recency
    (the last period with a transaction) <= T (the periods observed).
    """
    frequency, recency, T, counts = pattern_columns(
        patterns, ("frequency", "recency", "T", "count"), source
    )
    rfm = rfm_arrays(
        pd.DataFrame(
            {
                "frequency": np.asarray(frequency, dtype=float),
                "recency": np.asarray(recency, dtype=float),
                "T": np.asarray(T, dtype=float),
                "monetary_value": 0.0,
            }
        ),
        source=source,
    )
    px, pr, pT = rfm["frequency"].astype(np.int64), rfm["recency"], rfm["T"]
    if periods:
        if (pr != np.round(pr)).any() or (pT != np.round(pT)).any():
            raise CXDataError(f"{source}: BG/BB needs whole periods in recency and T")
        if (px > pr).any():
            raise CXDataError(
                f"{source}: BG/BB needs frequency <= recency (the last period with a "
                "transaction) for every customer"
            )
    w = pattern_counts(counts, px.size, source)
    # one canonical order: the estimates do not depend on how patterns were aggregated
    order = sort_order(px, pr, pT)
    return px[order], pr[order], pT[order], w[order]


def spend_patterns(spend, source: str):
    """Return checked (frequency, monetary_value, count) arrays of a spend table, sorted."""
    spend_frequency, spend_monetary_value, spend_counts = pattern_columns(
        spend, ("frequency", "monetary_value", "count"), source
    )
    gx = np.asarray(spend_frequency, dtype=float)
    gm = np.asarray(spend_monetary_value, dtype=float)
    gw = pattern_counts(spend_counts, gx.size, source)
    if gx.size != gm.size:
        raise CXDataError(f"{source}: spend frequency and monetary_value differ in length")
    if not (np.isfinite(gm).all() and (gm > 0).all() and (gx > 0).all()):
        raise CXDataError(
            f"{source}: spend patterns need frequency > 0 and a finite monetary_value > 0"
        )
    gx = gx.astype(np.int64)
    order = sort_order(gx, gm)
    return gx[order], gm[order], gw[order]
