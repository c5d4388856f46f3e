"""Observed retention: churn and retention rates by calendar period and cohort, Kaplan–Meier.

The usual definitions: the **retention rate** of a period is the share of the
customers active on its first day who are still active on its last day; the
**churn rate** is one minus it; customers acquired during the period count in
neither. Periods form a calendar grid: for a period in days, consecutive blocks of
that many days from the earliest start; for calendar periods, calendar months or
years. Only periods that end on or before as_of are complete and reported.

A customer's **cohort** is the period of their first start, their **tenure** in a
period the number of periods since it. :func:`retention_rates` gives one row per
(period, cohort) and one per period for the whole base (cohort and tenure empty);
:func:`retention_matrix` pivots it into the cohort × tenure matrix.
:func:`kaplan_meier` estimates the survival of relationships by tenure in billing
periods from right-censored lifetimes, with Greenwood's standard error.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from cx_models.billing import BillingPeriod
from cx_models.errors import CXDataError
from cx_models.timeutil import parse_as_of

__all__ = ["RATE_COLUMNS", "calendar_grid", "kaplan_meier", "retention_matrix", "retention_rates"]

#: The columns of :func:`retention_rates`, in order.
RATE_COLUMNS = ("period", "cohort", "tenure", "at_start", "lost", "churn_rate", "retention_rate")


def calendar_grid(period, first: dt.date, as_of: dt.date) -> tuple[np.ndarray, np.ndarray]:
    """First and last days of the complete calendar periods from ``first`` to ``as_of``.

    Examples
    --------
    >>> starts, ends = calendar_grid("monthly", dt.date(2024, 1, 15), dt.date(2024, 3, 30))
    >>> [str(d) for d in starts], [str(d) for d in ends]
    (['2024-01-01', '2024-02-01'], ['2024-01-31', '2024-02-29'])
    """
    period = BillingPeriod.of(period)
    if period.days is not None:
        count = ((as_of - first).days + 1) // period.days
        starts = np.datetime64(first, "D") + np.arange(count) * period.days
        return starts, starts + (period.days - 1)
    step = period.months
    origin = first.year * 12 + first.month - 1
    if step == 12:
        origin -= first.month - 1  # calendar years
    end_month = as_of.year * 12 + as_of.month - 1
    months = np.arange(origin, end_month + 2, step)
    bounds = np.array([np.datetime64(f"{m // 12:04d}-{m % 12 + 1:02d}-01", "D") for m in months])
    starts, ends = bounds[:-1], bounds[1:] - 1
    complete = ends <= np.datetime64(as_of, "D")
    return starts[complete], ends[complete]


def _covering(days: np.ndarray, start: np.ndarray, end: np.ndarray):
    """Index ranges [lo, hi) of the grid days that fall within each [start, end]."""
    lo = np.searchsorted(days, start, side="left")
    hi = np.searchsorted(days, end, side="right")
    return lo, np.maximum(hi, lo)


def _explode(ids, lo, hi) -> pl.DataFrame:
    counts = hi - lo
    rows = np.repeat(np.arange(lo.size), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return pl.DataFrame({"customer_id": ids[rows], "p": (lo[rows] + offsets).astype(np.int64)})


def retention_rates(rels: pl.DataFrame, *, as_of, period) -> pl.DataFrame:
    """Observed churn and retention rates by calendar period, per cohort and overall.

    Parameters
    ----------
    rels : polars.DataFrame
        Relationships (:func:`cx_models.relationships.relationships`): ``customer_id,
        start, end`` with ``end`` empty while active.
    as_of : str or date
        The day they are seen from; periods ending after it are left out.
    period : BillingPeriod, int or str
        The period length (days, ``"monthly"``, ``"annual"``).

    Returns
    -------
    polars.DataFrame
        :data:`RATE_COLUMNS`; ``period`` and ``cohort`` are the first days of their
        periods; the overall rows have ``cohort`` and ``tenure`` empty.

    Examples
    --------
    >>> rels = pl.DataFrame({"customer_id": [1, 2, 3],
    ...     "start": [dt.date(2024, 1, 1), dt.date(2024, 1, 1), dt.date(2024, 1, 15)],
    ...     "end": [dt.date(2024, 1, 20), None, dt.date(2024, 2, 10)]})
    >>> r = retention_rates(rels, as_of="2024-02-29", period="monthly")
    >>> r.filter(pl.col("cohort").is_null()).select("at_start", "lost", "churn_rate").rows()
    [(2, 1, 0.5), (2, 1, 0.5)]
    """
    as_of = parse_as_of(as_of)
    if not rels.height:
        raise CXDataError("no relationship to compute retention rates from")
    first = rels["start"].min()
    starts, ends = calendar_grid(period, first, as_of)
    if not starts.size:
        raise CXDataError(
            f"no complete {BillingPeriod.of(period).label} period between the first start "
            f"{first} and as_of {as_of}; give a later --as-of or a shorter period"
        )
    ids = rels["customer_id"].to_numpy()
    s = rels["start"].to_numpy().astype("datetime64[D]")
    e = rels["end"].fill_null(dt.date(9999, 12, 31)).to_numpy().astype("datetime64[D]")
    at_first = _explode(ids, *_covering(starts, s, e)).unique()
    at_last = _explode(ids, *_covering(ends, s, e)).unique()
    first_start = rels.group_by("customer_id").agg(pl.col("start").min())
    cohort_p = np.searchsorted(
        starts, first_start["start"].to_numpy().astype("datetime64[D]"), side="right"
    ) - 1
    cohorts = first_start.select("customer_id").with_columns(
        pl.Series("cohort_p", cohort_p.astype(np.int64))
    )
    still = at_last.with_columns(pl.lit(True).alias("_kept"))
    flagged = (
        at_first.join(still, on=["customer_id", "p"], how="left")
        .with_columns(pl.col("_kept").fill_null(False))
        .join(cohorts, on="customer_id", how="left")
    )
    by_cohort = flagged.group_by("p", "cohort_p").agg(
        pl.len().alias("at_start"), (~pl.col("_kept")).sum().alias("lost")
    )
    overall = flagged.group_by("p").agg(
        pl.len().alias("at_start"), (~pl.col("_kept")).sum().alias("lost")
    ).with_columns(pl.lit(None, dtype=pl.Int64).alias("cohort_p"))
    days = pl.DataFrame({"p": np.arange(starts.size, dtype=np.int64),
                         "day": pl.Series(starts.astype("datetime64[D]")).cast(pl.Date)})
    out = pl.concat([by_cohort.select(overall.columns), overall]).with_columns(
        pl.col("at_start").cast(pl.Int64), pl.col("lost").cast(pl.Int64)
    )
    return (
        out.join(days.rename({"day": "period"}), on="p", how="left")
        .join(days.rename({"p": "cohort_p", "day": "cohort"}), on="cohort_p", how="left")
        .with_columns(
            (pl.col("p") - pl.col("cohort_p")).alias("tenure"),
            (pl.col("lost") / pl.col("at_start")).alias("churn_rate"),
        )
        .with_columns((1.0 - pl.col("churn_rate")).alias("retention_rate"))
        .sort("period", pl.col("cohort").is_null(), "cohort")
        .select(RATE_COLUMNS)
    )


def retention_matrix(rates: pl.DataFrame) -> pl.DataFrame:
    """Pivot :func:`retention_rates` into a cohort × tenure matrix of retention rates.

    Examples
    --------
    >>> rates = pl.DataFrame({"cohort": [dt.date(2024, 1, 1)] * 2, "tenure": [0, 1],
    ...                       "retention_rate": [0.9, 0.8]})
    >>> retention_matrix(rates).columns
    ['cohort', '0', '1']
    """
    cells = rates.filter(pl.col("cohort").is_not_null()).sort("tenure")
    return cells.pivot(on="tenure", index="cohort", values="retention_rate").sort("cohort")


def kaplan_meier(renewals, lost, *, weights=None) -> pl.DataFrame:
    """Kaplan–Meier survival of relationships by tenure in billing periods.

    Parameters
    ----------
    renewals : array_like of int
        Renewals made (a lost relationship was lost in period ``renewals + 1``; an
        active one is censored after ``renewals`` renewals).
    lost : array_like of bool
        Lost or still active.
    weights : array_like, optional
        How many relationships each row stands for.

    Returns
    -------
    polars.DataFrame
        ``tenure`` (t = 0, 1, …), ``at_risk`` (relationships still observed in period
        t), ``lost`` (lost in period t), ``survival`` (the share still active after t
        renewals) and ``se`` (Greenwood).

    Examples
    --------
    >>> km = kaplan_meier([0, 0, 1, 2, 1], [True, False, True, False, False])
    >>> km.select("tenure", "at_risk", "lost", "survival").rows()
    [(0, 5, 0, 1.0), (1, 4, 1, 0.75), (2, 2, 1, 0.375)]
    """
    k = np.asarray(renewals, dtype=np.int64)
    lost = np.asarray(lost, dtype=bool)
    w = np.ones(k.size) if weights is None else np.asarray(weights, dtype=float)
    if k.size == 0:
        raise CXDataError("Kaplan–Meier: no relationship")
    # a lost relationship is lost in period k + 1; an active one is observed through period k
    event_t = np.where(lost, k + 1, 0)
    horizon = int(max(event_t.max(initial=0), k.max(initial=0)))
    t = np.arange(horizon + 1)
    # at risk in period t: lost in period >= t, or censored after >= t renewals
    last = np.where(lost, k + 1, k)
    # at risk in period t: relationships observed through t or later (a reversed running sum)
    through = np.bincount(last, weights=w, minlength=horizon + 1)[: horizon + 1]
    at_risk = np.cumsum(through[::-1])[::-1]
    events = np.bincount(event_t[lost], weights=w[lost], minlength=horizon + 1)[: horizon + 1]
    events[0] = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(at_risk > 0, events / at_risk, 0.0)
        surv = np.cumprod(1.0 - hazard)
        terms = np.where((at_risk > events) & (at_risk > 0),
                         events / (at_risk * (at_risk - events)), 0.0)
    se = surv * np.sqrt(np.cumsum(terms))
    frame = pl.DataFrame({"tenure": t, "at_risk": at_risk, "lost": events,
                          "survival": surv, "se": se})
    if weights is None:
        frame = frame.with_columns(pl.col("at_risk").cast(pl.Int64), pl.col("lost").cast(pl.Int64))
    return frame
