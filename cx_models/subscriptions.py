"""Validation of the subscriptions input: one row per subscription (contract, membership).

Columns ``customer_id, start, end`` and, when present, ``plan``, ``price`` (the
amount per billing period) and ``cancelled_at``; other names are mapped with
:class:`SubscriptionColumns`. ``end`` is the last day of service, inclusive (a
customer is active on day D when start ≤ D ≤ end) and empty while the subscription
runs. Dates may carry a time of day; only the calendar day is kept.

Row problems are quarantined with one reason from :data:`SUBSCRIPTION_REASONS`;
the counts satisfy ``rows_in = rows_used + rows_quarantined + rows_after_as_of``,
where a row is *after as_of* when it starts after the as-of day. What the as-of day
cannot see is hidden, not dropped: an ``end`` after as_of becomes empty (the
subscription is active at as_of) and so does a ``cancelled_at`` after as_of.
Relationships are built from the kept rows by :mod:`cx_models.relationships`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from cx_models.cells import (
    customer_ids,
    no_cells,
    numbers,
    require_scalar_columns,
    text_cells,
    timestamps,
)
from cx_models.contract import require_columns
from cx_models.errors import CXDataError
from cx_models.io import read_input
from cx_models.quarantine import ValidatedTable, ValidationReport
from cx_models.timeutil import parse_as_of

__all__ = [
    "SUBSCRIPTION_REASONS",
    "SubscriptionColumns",
    "SubscriptionSpec",
    "validate_subscriptions",
]

#: Why a subscription row is quarantined, in the order the checks apply.
SUBSCRIPTION_REASONS = {
    "missing_customer_id": "the customer id is empty",
    "missing_start": "the start date is empty",
    "unparseable_start": "the start is not a date",
    "unparseable_end": "the end is not a date (leave it empty while the subscription runs)",
    "end_before_start": "the last day of service is before the start",
    "unparseable_cancelled_at": "cancelled_at is not a date",
    "missing_price": "the price column is given but this row's price is empty",
    "non_numeric_price": "the price is not a finite number",
    "negative_price": "the price is below zero",
    "duplicate_subscription": "an earlier row has the same customer, start, end and plan",
}


@dataclass(frozen=True)
class SubscriptionColumns:
    """Names of the subscription columns in the user's data.

    ``plan``, ``price`` and ``cancelled_at`` are optional: used when the data has them.

    Examples
    --------
    >>> SubscriptionColumns(start="began").roles()["start"]
    ('began', '--start-col')
    """

    customer: str = "customer_id"
    start: str = "start"
    end: str = "end"
    plan: str = "plan"
    price: str = "price"
    cancelled_at: str = "cancelled_at"

    def roles(self) -> dict[str, tuple[str, str]]:
        """Map each required canonical name to (user column, CLI flag)."""
        return {
            "customer_id": (self.customer, "--customer-col"),
            "start": (self.start, "--start-col"),
            "end": (self.end, "--end-col"),
        }

    def optional(self) -> dict[str, str]:
        """Map each optional canonical name to its user column."""
        return {"plan": self.plan, "price": self.price, "cancelled_at": self.cancelled_at}


@dataclass(frozen=True)
class SubscriptionSpec:
    """How to read subscriptions and count their time: columns, date format, billing period.

    Parameters
    ----------
    columns : SubscriptionColumns
        The column names.
    period : BillingPeriod, int or str, optional
        The billing period (``--period-days`` / ``--period``).
    grace_days : int
        The longest gap without service that still continues a relationship.
    time_format : str, optional
        ``strptime`` format for dates that are not ISO 8601 text.

    Examples
    --------
    >>> SubscriptionSpec(period=30).period.days
    30
    """

    columns: SubscriptionColumns = SubscriptionColumns()
    period: object = None
    grace_days: int = 0
    time_format: str | None = None

    def __post_init__(self):
        from cx_models.billing import BillingPeriod

        if self.period is not None:
            object.__setattr__(self, "period", BillingPeriod.of(self.period))
        grace = self.grace_days
        if isinstance(grace, bool) or int(grace) != grace or grace < 0:
            raise CXDataError(f"grace_days must be a whole number of days >= 0, got {grace!r}")

    def require_period(self):
        """Return the billing period, or raise an error saying how to give it."""
        if self.period is None:
            raise CXDataError(
                "subscriptions need their billing period: --period-days N or --period "
                "monthly|annual (Python: period_days= / period=)"
            )
        return self.period


def _dates(raw: pl.DataFrame, column: str | None, source: str, time_format):
    if column is None:
        none = pl.Series([None] * raw.height, dtype=pl.Date)
        return none, no_cells(raw.height)
    parsed, bad = timestamps(raw[column], time_format, source, column)
    return parsed.dt.date(), bad


def validate_subscriptions(
    data,
    *,
    as_of,
    columns: SubscriptionColumns | None = None,
    time_format: str | None = None,
    id_dtype=None,
) -> ValidatedTable:
    """Validate a subscriptions input as seen on ``as_of`` (see the module docstring).

    Parameters
    ----------
    data : path, DatabaseSource, pandas.DataFrame or polars.DataFrame
        One row per subscription.
    as_of : str, date or datetime
        The calendar day the data is seen from; its whole day is included.
    columns : SubscriptionColumns, optional
        The column names.
    time_format : str, optional
        ``strptime`` format for dates that are not ISO 8601 text.
    id_dtype : polars data type, optional
        Impose the customer id type (the other inputs').

    Returns
    -------
    ValidatedTable
        ``data``: ``customer_id``, ``start``, ``end`` (Date; empty while active at
        as_of), ``plan`` (String), ``price`` (Float64), ``cancelled_at`` (Date;
        empty unless on or before as_of) for the rows that start on or before as_of.

    Examples
    --------
    >>> raw = pl.DataFrame({"customer_id": [1, 1, 2, None, 3],
    ...                     "start": ["2024-01-01", "2024-01-01", "2024-03-01", "2024-01-01",
    ...                               "2025-01-01"],
    ...                     "end": ["2024-06-30", "2024-06-30", "", "", None]})
    >>> v = validate_subscriptions(raw, as_of="2024-12-31")
    >>> v.data.rows(), v.report.reasons, v.report.rows_after_as_of
    ([(1, datetime.date(2024, 1, 1), datetime.date(2024, 6, 30), None, None, None), \
(2, datetime.date(2024, 3, 1), None, None, None, None)], \
{'duplicate_subscription': 1, 'missing_customer_id': 1}, 1)
    """
    columns = columns or SubscriptionColumns()
    as_of = parse_as_of(as_of)
    raw, source = read_input(data, what="subscriptions")
    roles = columns.roles()
    require_columns(raw.columns, source, roles)
    optional = {k: c for k, c in columns.optional().items() if c in raw.columns}
    require_scalar_columns(
        raw.schema, source, {**roles, **{k: (c, "") for k, c in optional.items()}}
    )
    customer = customer_ids(raw[columns.customer], source, columns.customer, id_dtype)
    start, bad_start = _dates(raw, columns.start, source, time_format)
    end, bad_end = _dates(raw, columns.end, source, time_format)
    cancelled, bad_cancel = _dates(raw, optional.get("cancelled_at"), source, time_format)
    if "plan" in optional:
        plan = text_cells(raw[optional["plan"]])
    else:
        plan = pl.Series([None] * raw.height, dtype=pl.String)
    if "price" in optional:
        price, non_numeric = numbers(raw[optional["price"]], source, optional["price"], "price")
        missing_price = price.is_null() & ~non_numeric
        finite = price.is_finite().fill_null(False)
        non_numeric = non_numeric | (price.is_not_null() & ~finite)
        negative = finite & (price.fill_nan(0.0) < 0)
    else:
        price = pl.Series([None] * raw.height, dtype=pl.Float64)
        missing_price = non_numeric = negative = no_cells(raw.height)
    checks = [
        ("missing_customer_id", customer.is_null()),
        ("missing_start", start.is_null() & ~bad_start),
        ("unparseable_start", bad_start),
        ("unparseable_end", bad_end),
        ("end_before_start", (end < start).fill_null(False)),
        ("unparseable_cancelled_at", bad_cancel),
        ("missing_price", missing_price),
        ("non_numeric_price", non_numeric),
        ("negative_price", negative),
    ]
    canonical = pl.DataFrame(
        {
            "customer_id": customer,
            "start": start,
            "end": end,
            "plan": plan.cast(pl.String),
            "price": price.cast(pl.Float64),
            "cancelled_at": cancelled,
        }
    )
    return _finish(raw, canonical, checks, source, as_of)


def _finish(raw, canonical, checks, source, as_of: dt.date) -> ValidatedTable:
    from cx_models.cells import first_reason

    height = raw.height
    reason = first_reason(checks, height)
    # a duplicate repeats an earlier row that passed every other check
    key = canonical.select("customer_id", "start", "end", "plan").with_row_index("row")
    passing = key.filter(reason.is_null())
    repeats = passing.filter(
        ~passing.select(pl.struct("customer_id", "start", "end", "plan").is_first_distinct())
        .to_series()
    )["row"]
    duplicate = no_cells(height).scatter(repeats, True)
    reason = pl.select(
        pl.when(pl.lit(duplicate)).then(pl.lit("duplicate_subscription"))
        .otherwise(pl.lit(reason)).alias("reason")
    ).to_series()
    bad = reason.is_not_null()
    rows = pl.Series("row", range(height), dtype=pl.Int64)
    quarantine = pl.DataFrame(
        {"source": pl.Series(["subscriptions"] * int(bad.sum()), dtype=pl.String)}
    ).with_columns(
        rows.filter(bad), reason.filter(bad),
        *[raw[c].filter(bad).cast(pl.String) for c in raw.columns],
    )
    good = canonical.filter(~bad)
    after = good["start"] > as_of
    used = good.filter(~after).with_columns(
        pl.when(pl.col("end") > as_of).then(None).otherwise(pl.col("end")).alias("end"),
        pl.when(pl.col("cancelled_at") > as_of).then(None)
        .otherwise(pl.col("cancelled_at")).alias("cancelled_at"),
    )
    tally = reason.filter(bad).value_counts()
    report = ValidationReport(
        source=source,
        kind="subscriptions",
        rows_in=height,
        rows_used=used.height,
        rows_quarantined=int(bad.sum()),
        rows_after_as_of=int(after.sum()),
        duplicate_rows=int(duplicate.sum()),
        reasons={r: int(n) for r, n in sorted(tally.iter_rows(), key=lambda rn: (-rn[1], rn[0]))},
        quarantine=quarantine,
    )
    assert report.rows_in == report.rows_used + report.rows_quarantined + report.rows_after_as_of
    if not used.height:
        listing = ", ".join(f"{r}: {n}" for r, n in report.reasons.items()) or "none quarantined"
        raise CXDataError(
            f"{source}: no usable subscription on or before {as_of}: {height} rows, "
            f"{report.rows_after_as_of} start after as_of ({listing})"
        )
    return ValidatedTable(data=used, report=report)
