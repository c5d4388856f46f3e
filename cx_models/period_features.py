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
"""

from __future__ import annotations

import pandas as pd
import polars as pl

from cx_models.errors import CXDataError
from cx_models.timeutil import parse_as_of

__all__ = ["period_features"]


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
    out = (
        spans.join(periods, on="customer_id", how="left")
        .with_columns(
            pl.col("frequency").fill_null(0).cast(pl.Int64),
            pl.col("recency").fill_null(0).cast(pl.Int64),
            pl.col("T").cast(pl.Int64),
            pl.col("monetary_value").fill_null(0.0),
        )
        .select("customer_id", "frequency", "recency", "T", "monetary_value")
        .sort("customer_id")
        .to_pandas()
    )
    out.attrs = {"time_unit": "P", "period_days": period, "as_of": as_of.isoformat()}
    return out
