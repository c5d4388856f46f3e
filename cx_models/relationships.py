"""Relationships: a customer's subscriptions joined into spells of continuous service.

Rows of one customer that overlap, follow each other (the next starts the day after
the last day of service) or are separated by at most ``grace_days`` days without
service form one relationship. A relationship is *active at as_of* when its last
row has no visible end (its end is after as_of, or empty); a relationship whose
last day of service is on or before as_of is *lost*.

In billing periods (:class:`cx_models.billing.BillingPeriod`) a lost relationship
was lost in the period of its last day of service and made ``period − 1``
renewals; an active one is in the period of the as-of day and has made
``period − 1`` renewals, its lifetime censored there — the observations the
shifted-beta-geometric model (:mod:`cx_models.sbg`) is fitted on.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from cx_models.billing import BillingPeriod
from cx_models.errors import CXDataError
from cx_models.timeutil import parse_as_of

__all__ = ["RELATIONSHIP_COLUMNS", "load_relationships", "relationship_periods", "relationships"]

#: The columns of :func:`relationships`, in order.
RELATIONSHIP_COLUMNS = (
    "customer_id", "relationship", "start", "end", "active", "plan", "price", "first_price",
    "price_changes", "subscriptions", "cancelled_at", "cancellation_pending",
)
_OPEN = dt.date(9999, 12, 31)
# days since 1970 + this offset is >= 0 for any date from year 1; _SPAN exceeds the last day
_DAY_OFFSET = 719_163
_SPAN = 1 << 22


def relationships(subscriptions: pl.DataFrame, *, as_of, grace_days: int = 0) -> pl.DataFrame:
    """Join validated subscriptions into relationships, one row each.

    Parameters
    ----------
    subscriptions : polars.DataFrame
        ``data`` of :func:`cx_models.subscriptions.validate_subscriptions` (ends and
        cancellations after as_of already hidden).
    as_of : str or date
        The day the relationships are seen from.
    grace_days : int
        The longest gap without service (in days) that still continues a relationship.

    Returns
    -------
    polars.DataFrame
        :data:`RELATIONSHIP_COLUMNS`: ``relationship`` numbers a customer's
        relationships from 1; ``end`` is empty while active; ``plan`` and ``price``
        are the latest row's; ``price_changes`` counts the rows whose price differs
        from the row before; ``cancellation_pending`` marks an active relationship
        whose latest row has a visible ``cancelled_at``.

    Examples
    --------
    >>> subs = pl.DataFrame({
    ...     "customer_id": [1, 1, 1, 2],
    ...     "start": [dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 6, 1),
    ...               dt.date(2024, 1, 1)],
    ...     "end": [dt.date(2024, 1, 31), dt.date(2024, 3, 31), None, dt.date(2024, 4, 30)],
    ...     "plan": ["a", "b", "b", "a"], "price": [10.0, 12.0, 12.0, 10.0],
    ...     "cancelled_at": [None, None, None, None]})
    >>> r = relationships(subs, as_of="2024-12-31")
    >>> r.select("customer_id", "relationship", "end", "active", "price_changes").rows()
    [(1, 1, datetime.date(2024, 3, 31), False, 1), (1, 2, None, True, 0), \
(2, 1, datetime.date(2024, 4, 30), False, 0)]
    """
    as_of = parse_as_of(as_of)
    if isinstance(grace_days, bool) or int(grace_days) != grace_days or grace_days < 0:
        raise CXDataError(f"grace_days must be a whole number of days >= 0, got {grace_days!r}")
    gap = int(grace_days) + 1
    visible_end = pl.when(pl.col("end") > as_of).then(None).otherwise(pl.col("end"))
    rows = (
        subscriptions.filter(pl.col("start") <= as_of)
        .with_columns(visible_end.alias("end"))
        .sort("customer_id", "start", pl.col("end").fill_null(_OPEN))
        .with_columns(pl.col("end").fill_null(_OPEN).alias("_reach"))
    )
    # Window functions over a million small groups are slow in polars; the rows are sorted
    # by customer, so each customer's running maximum of the last day of service is a
    # global running maximum of (customer number, day), and relationships a global
    # running count restarted at each customer's first row.
    first = pl.col("customer_id") != pl.col("customer_id").shift(1)
    first = first.fill_null(True)
    day = pl.col("_reach").cast(pl.Int32).cast(pl.Int64) + _DAY_OFFSET
    rows = rows.with_columns(first.alias("_first"))
    rows = rows.with_columns(
        (pl.col("_first").cum_sum().cast(pl.Int64) * _SPAN + day).cum_max().alias("_key")
    )
    reach_before = (pl.col("_key").shift(1) % _SPAN) - _DAY_OFFSET
    start_day = pl.col("start").cast(pl.Int32).cast(pl.Int64)
    new = pl.col("_first") | (start_day > reach_before + gap)
    rows = rows.with_columns(new.cum_sum().cast(pl.Int64).alias("_count"))
    rows = rows.with_columns(
        (pl.col("_count") - pl.when(pl.col("_first")).then(pl.col("_count")).forward_fill() + 1)
        .alias("relationship")
    )
    same = ~pl.col("_first") & (pl.col("relationship") == pl.col("relationship").shift(1))
    changed = same & (pl.col("price") != pl.col("price").shift(1))
    rows = rows.with_columns(changed.fill_null(False).alias("_changed"))
    out = rows.group_by("customer_id", "relationship", maintain_order=True).agg(
        pl.col("start").min(),
        pl.col("_reach").max().alias("end"),
        pl.col("plan").last(),
        pl.col("price").last(),
        pl.col("price").first().alias("first_price"),
        pl.col("_changed").sum().cast(pl.Int64).alias("price_changes"),
        pl.len().cast(pl.Int64).alias("subscriptions"),
        pl.col("cancelled_at").last(),
    )
    active = pl.col("end") == _OPEN
    return out.with_columns(
        pl.when(active).then(None).otherwise(pl.col("end")).alias("end"),
        active.alias("active"),
        pl.when(active).then(pl.col("cancelled_at")).otherwise(None).alias("cancelled_at"),
        (active & pl.col("cancelled_at").is_not_null()).alias("cancellation_pending"),
    ).select(RELATIONSHIP_COLUMNS)


def relationship_periods(rels: pl.DataFrame, *, as_of, period) -> pl.DataFrame:
    """Add each relationship's billing period at its end (lost) or at as_of (active).

    Parameters
    ----------
    rels : polars.DataFrame
        Output of :func:`relationships`.
    as_of : str or date
        The day they are seen from.
    period : BillingPeriod, int or str
        The billing period (days, ``"monthly"`` or ``"annual"``).

    Returns
    -------
    polars.DataFrame
        ``rels`` with ``period`` (the period of the last day of service, or of
        as_of while active), ``renewals`` (``period − 1``) and ``lost`` (not active).

    Examples
    --------
    >>> rels = pl.DataFrame({"start": [dt.date(2024, 1, 1)] * 2,
    ...                      "end": [dt.date(2024, 3, 31), None], "active": [False, True]})
    >>> relationship_periods(rels, as_of="2024-12-31", period="monthly").rows()
    [(datetime.date(2024, 1, 1), datetime.date(2024, 3, 31), False, 3, 2, True), \
(datetime.date(2024, 1, 1), None, True, 12, 11, False)]
    """
    as_of = parse_as_of(as_of)
    period = BillingPeriod.of(period)
    last_day = pl.when(pl.col("active")).then(pl.lit(as_of)).otherwise(pl.col("end"))
    t = period.period_of(pl.col("start"), last_day)
    return rels.with_columns(
        t.alias("period"), (t - 1).alias("renewals"), (~pl.col("active")).alias("lost")
    )


def load_relationships(subscriptions, *, as_of, spec=None, id_dtype=None):
    """Validate a subscriptions input and return its relationships with their periods.

    Parameters
    ----------
    subscriptions : path, DatabaseSource or DataFrame
        Raw subscriptions.
    as_of : str or date
        The day they are seen from.
    spec : SubscriptionSpec, optional
        Columns, date format, billing period (required) and grace days.
    id_dtype : polars data type, optional
        Impose the customer id type of the other inputs.

    Returns
    -------
    tuple of (polars.DataFrame, ValidationReport)
        :func:`relationship_periods` of :func:`relationships`, and the validation report.
    """
    from cx_models.subscriptions import SubscriptionSpec, validate_subscriptions

    spec = spec or SubscriptionSpec()
    period = spec.require_period()
    validated = validate_subscriptions(
        subscriptions, as_of=as_of, columns=spec.columns, time_format=spec.time_format,
        id_dtype=id_dtype,
    )
    rels = relationships(validated.data, as_of=as_of, grace_days=spec.grace_days)
    return relationship_periods(rels, as_of=as_of, period=period), validated.report
