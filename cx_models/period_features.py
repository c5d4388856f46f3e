"""Discrete-time histories for BG/BB: transactions become (frequency, recency, T) in periods.

With periods of ``period_days`` counted from each customer's first purchase day
(period 0 holds it; period k is days [k·P, (k+1)·P) after it), a customer's
history as of a day is

* ``T`` (BG/BB's ``n``): the complete periods after the first by ``as_of``;
* ``frequency`` (``x``): how many of periods 1..T hold at least one purchase;
* ``recency`` (``t_x``): the last such period (0 if none);
* ``monetary_value``: the mean spend of those periods (a period's purchases summed).

Purchases in the period still open at ``as_of`` are not counted: its opportunity
is not over. Rows in = customers out; nothing is dropped.

A customer feature table built with ``FeatureSpec(period_days=N)`` carries the
same history beside the continuous one, as :data:`PERIOD_COLUMNS`; a BG/BB model
reads those (:func:`btyd_view`), the other models the continuous columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl

from cx_models.errors import CXDataError
from cx_models.timeutil import parse_as_of

__all__ = ["PERIOD_COLUMNS", "btyd_view", "period_features", "period_histories"]

#: The period history's columns in a customer feature table, and the BTYD name of each.
PERIOD_COLUMNS = {
    "period_frequency": "frequency",
    "period_recency": "recency",
    "period_T": "T",
    "period_monetary_value": "monetary_value",
}


def period_features(transactions: pl.DataFrame, *, as_of, period_days: int) -> pd.DataFrame:
    """Return one BG/BB history per customer with a purchase by ``as_of``.

    Parameters
    ----------
    transactions : polars.DataFrame
        Validated canonical transactions (``customer_id``, ``timestamp``, ``amount``).
    as_of : str or date
        The last day observed.
    period_days : int
        The length of one opportunity, in days (365 for a yearly event).

    Returns
    -------
    pandas.DataFrame
        ``customer_id, frequency, recency, T, monetary_value``, with ``attrs``
        ``time_unit="P"``, ``period_days`` and ``as_of``.

    Examples
    --------
    >>> tx = pl.DataFrame({"customer_id": [1, 1, 1, 2],
    ...                    "timestamp": pl.Series(["2020-01-01", "2021-02-01", "2023-01-05",
    ...                                            "2023-06-01"]).str.to_datetime(),
    ...                    "amount": [10.0, 20.0, 40.0, 5.0]})
    >>> period_features(tx, as_of="2023-12-31", period_days=365).to_dict("list")
    {'customer_id': [1, 2], 'frequency': [2, 0], 'recency': [3, 0], 'T': [3, 0], \
'monetary_value': [30.0, 0.0]}
    """
    as_of = parse_as_of(as_of)
    out = (
        period_histories(transactions, as_of=as_of, period_days=period_days)
        .rename({name: btyd for name, btyd in PERIOD_COLUMNS.items()})
        .sort("customer_id")
        .to_pandas()
    )
    out.attrs = {"time_unit": "P", "period_days": int(period_days), "as_of": as_of.isoformat()}
    return out


def period_histories(transactions: pl.DataFrame, *, as_of, period_days: int) -> pl.DataFrame:
    """Return :func:`period_features`' histories as :data:`PERIOD_COLUMNS` (polars, unsorted).

    Examples
    --------
    >>> tx = pl.DataFrame({"customer_id": [1, 1], "amount": [10.0, 20.0],
    ...                    "timestamp": pl.Series(["2020-01-01", "2021-02-01"]).str.to_datetime()})
    >>> period_histories(tx, as_of="2023-12-31", period_days=365).row(0)
    (1, 1, 1, 3, 20.0)
    """
    if int(period_days) != period_days or not 1 <= period_days <= 36_525:
        raise CXDataError(f"period_days must be a whole number of days in 1..36525, got "
                          f"{period_days!r}")
    as_of = parse_as_of(as_of)
    period = int(period_days)
    day = pl.col("timestamp").dt.date()
    seen = transactions.filter(day <= as_of).with_columns(day.alias("day"))
    first = seen.group_by("customer_id").agg(pl.col("day").min().alias("first"))
    end = pl.lit(as_of) + pl.duration(days=1)
    spans = first.with_columns(
        (((end - pl.col("first")).dt.total_days() // period) - 1).clip(lower_bound=0).alias("T")
    )
    periods = (
        seen.join(spans, on="customer_id")
        .with_columns(((pl.col("day") - pl.col("first")).dt.total_days() // period).alias("k"))
        .filter((pl.col("k") >= 1) & (pl.col("k") <= pl.col("T")))
        .group_by("customer_id", "k")
        .agg(pl.col("amount").sum().alias("spend"))
        .group_by("customer_id")
        .agg(
            pl.len().alias("frequency"),
            pl.col("k").max().alias("recency"),
            pl.col("spend").mean().alias("monetary_value"),
        )
    )
    return (
        spans.join(periods, on="customer_id", how="left")
        .with_columns(
            pl.col("frequency").fill_null(0).cast(pl.Int64),
            pl.col("recency").fill_null(0).cast(pl.Int64),
            pl.col("T").cast(pl.Int64),
            pl.col("monetary_value").fill_null(0.0),
        )
        .select(
            "customer_id",
            *(pl.col(btyd).alias(name) for name, btyd in PERIOD_COLUMNS.items()),
        )
    )


def btyd_view(features, *, period_days: float | None = None) -> pd.DataFrame | None:
    """Return a feature table's period history under the BTYD names, or ``None`` without one.

    What a BG/BB model fits and predicts on: ``frequency, recency, T,
    monetary_value`` from :data:`PERIOD_COLUMNS` (a pandas frame or a
    :class:`~cx_models.columns.NumericView`). A table that records another
    ``period_days`` than the model's is refused.

    Examples
    --------
    >>> table = pd.DataFrame({"customer_id": [1], "frequency": [4.0], "period_frequency": [2],
    ...                       "period_recency": [3], "period_T": [3],
    ...                       "period_monetary_value": [20.0]})
    >>> btyd_view(table).to_dict("records")
    [{'frequency': 2, 'recency': 3, 'T': 3, 'monetary_value': 20.0}]
    """
    if not all(name in features.columns for name in PERIOD_COLUMNS):
        return None
    built = getattr(features, "attrs", {}).get("period_days")
    if period_days is not None and built is not None and float(built) != float(period_days):
        raise CXDataError(
            f"the features hold histories in periods of {built} days but the BG/BB model "
            f"counts periods of {period_days:g} days: rebuild them with period_days="
            f"{period_days:g} (--period-days), or score from the transactions"
        )
    view = pd.DataFrame({btyd: features[name] for name, btyd in PERIOD_COLUMNS.items()})
    _check_histories(view)
    view.attrs = {"time_unit": "P", "period_days": built or period_days}
    return view


def _check_histories(view: pd.DataFrame) -> None:
    """Refuse period histories that no purchase record gives, naming the column and rule."""
    values = {c: pd.to_numeric(view[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
              for c in view.columns}
    x, t_x, n, m = (values[c] for c in ("frequency", "recency", "T", "monetary_value"))
    whole = [(name, ~(np.isfinite(v) & (v >= 0) & (v == np.round(v))))
             for name, v in (("period_frequency", x), ("period_recency", t_x), ("period_T", n))]
    rules = [
        *[(f"{name}: a whole number of periods >= 0", bad) for name, bad in whole],
        ("period_monetary_value: a finite amount >= 0", ~(np.isfinite(m) & (m >= 0))),
        ("period_recency <= period_T", t_x > n),
        ("period_frequency <= period_recency (x active periods among 1..t_x)", x > t_x),
        ("period_frequency 0 exactly when period_recency 0", (x == 0) != (t_x == 0)),
    ]
    for rule, bad in rules:
        if bad.any():
            raise CXDataError(
                f"features: {int(bad.sum()):,} customer(s) break the period history's rule "
                f"{rule}; build the features with --period-days (FeatureSpec(period_days=...))"
            )
