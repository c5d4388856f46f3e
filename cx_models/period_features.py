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

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl

from cx_models.errors import CXDataError
from cx_models.timeutil import parse_as_of

__all__ = [
    "PERIOD_COLUMNS", "btyd_view", "occasion_periods", "period_features", "period_histories",
]

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
    """Return :func:`period_features`' histories as :data:`PERIOD_COLUMNS` (polars, by id).

    Examples
    --------
    >>> tx = pl.DataFrame({"customer_id": [1, 1], "amount": [10.0, 20.0],
    ...                    "timestamp": pl.Series(["2020-01-01", "2021-02-01"]).str.to_datetime()})
    >>> period_histories(tx, as_of="2023-12-31", period_days=365).row(0)
    (1, 1, 1, 3, 20.0)
    """
    from cx_models.occasions import sorted_occasions
    from cx_models.timeutil import as_of_cutoff

    as_of = parse_as_of(as_of)
    seen = transactions.filter(pl.col("timestamp") < as_of_cutoff(as_of))
    return occasion_periods(sorted_occasions(seen), as_of=as_of, period_days=period_days)


def occasion_periods(occasions: pl.DataFrame, *, as_of, period_days: int) -> pl.DataFrame:
    """Return the period histories of sorted purchase occasions, one row per customer.

    ``occasions``: :func:`cx_models.occasions.sorted_occasions` (``customer_id``,
    ``day`` in days since 1970-01-01, ``amount``), sorted by customer then day and
    cut at ``as_of``; the rows come out in its customer order. The mean spend of the
    active periods is their total spend over their number.
    """
    from cx_models.settings import FeatureSpec

    period = FeatureSpec(period_days=period_days).period_days  # the one rule for the length
    end = (parse_as_of(as_of) - dt.date(1970, 1, 1)).days + 1  # the day after as_of
    ids = occasions["customer_id"]
    if ids.len() == 0:
        return pl.DataFrame({"customer_id": ids, **{
            c: pl.Series([], dtype=pl.Float64 if c == "period_monetary_value" else pl.Int64)
            for c in PERIOD_COLUMNS}})
    # arrays over the sorted occasions: a customer's rows are one run, in day order
    new = (ids != ids.shift(1)).fill_null(True).to_numpy()
    starts = np.flatnonzero(new)
    day = occasions["day"].to_numpy().astype(np.int64)
    amount = occasions["amount"].to_numpy().astype(np.float64)
    first = day[starts]
    n = np.maximum((end - first) // period - 1, 0)
    counts = np.diff(np.append(starts, day.size))
    k = (day - np.repeat(first, counts)) // period
    active = (k >= 1) & (k <= np.repeat(n, counts))
    # a period opens where k moves on within the customer's run
    opens = np.empty(day.size, dtype=bool)
    opens[0] = True
    np.not_equal(k[1:], k[:-1], out=opens[1:])
    opens |= new
    frequency = np.add.reduceat((opens & active).astype(np.int64), starts)
    recency = np.maximum.reduceat(np.where(active, k, 0), starts)
    spend = np.add.reduceat(np.where(active, amount, 0.0), starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(frequency > 0, spend / np.maximum(frequency, 1), 0.0)
    return pl.DataFrame({
        "customer_id": ids.gather(starts),
        "period_frequency": frequency,
        "period_recency": recency,
        "period_T": n,
        "period_monetary_value": mean,
    })


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
