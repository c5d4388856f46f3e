"""Customer features as of a cutoff: one row per customer with a purchase by ``as_of``.

Only events at or before ``as_of`` (its whole calendar day) are used. A
purchase *occasion* is a distinct calendar day per customer (amounts summed).

Columns, in order:

* ``customer_id`` — as in the input (integer or text).
* BTYD summary in the table's ``time_unit`` with lifetimes' conventions:
  ``frequency`` (occasions - 1), ``recency`` (first to last occasion), ``T``
  (first occasion to ``as_of``) and ``monetary_value`` (mean amount of the
  repeat occasions, 0 when there is none).
* Behaviour, always in days: ``n_transactions``, ``total_spend``,
  ``mean_spend`` (per transaction), ``days_since_last_purchase``,
  ``tenure_days``, ``mean_gap_days`` and ``std_gap_days`` (between occasions),
  ``gap_ratio`` (days since last / mean gap), and for each window ``w`` of 30,
  90 and 180 days ``purchases_{w}d`` (occasions), ``spend_{w}d`` and their
  ``*_trend_{w}d`` against the ``w`` days before the window (difference).
* Surveys, per type ``s`` in nps, csat, ces over the look-back window
  (responses dated after ``as_of - lookback_days`` and at or before
  ``as_of``): ``{s}_latest`` (latest score; ties at the latest timestamp are
  averaged), ``{s}_mean``, ``{s}_count`` and ``{s}_days_since``; and
  ``nps_category`` (promoter 9-10, passive 7-8, detractor 0-6). Missing stays
  missing (NaN), never 0.
* With ``FeatureSpec(period_days=N)``: BG/BB's history in periods of N days,
  ``period_frequency``, ``period_recency``, ``period_T`` and
  ``period_monetary_value`` (:mod:`cx_models.period_features`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import polars as pl

from cx_models.contract import (
    BTYD_COLUMNS,
    SURVEY_TYPES,
    WINDOWS_DAYS,
    feature_columns,
)
from cx_models.legacy_keywords import from_keywords
from cx_models.occasions import sorted_occasions
from cx_models.period_features import PERIOD_COLUMNS, occasion_periods
from cx_models.schemas import ValidationReport, quarantine_table, validate_events
from cx_models.settings import EventFormat, FeatureSpec
from cx_models.survey_features import nps_category, survey_features
from cx_models.timeutil import as_of_cutoff, parse_as_of

__all__ = [
    "BTYD_COLUMNS",
    "FeatureBuild",
    "FeatureSpec",
    "SURVEY_TYPES",
    "WINDOWS_DAYS",
    "build_customer_features",
    "build_features",
    "feature_columns",
    "features_from_validated",
    "to_pandas_features",
]

@dataclass
class FeatureBuild:
    """A feature table together with what validation did to the inputs."""

    features: pd.DataFrame
    transactions: ValidationReport
    surveys: ValidationReport | None
    survey_customers_without_purchase: int
    attributes: ValidationReport | None = None
    attribute_customers_without_purchase: int = 0
    #: The feature definition the table was built with, its levels learnt.
    spec: FeatureSpec | None = None

    def quarantine(self):
        """Every rejected row of every input (see :func:`~cx_models.schemas.quarantine_table`)."""
        return quarantine_table(self.transactions, self.surveys, self.attributes)

    def summary(self) -> dict:
        """JSON-friendly counts for logs and reports."""
        return {
            "as_of": self.features.attrs["as_of"],
            "time_unit": self.features.attrs["time_unit"],
            "customers": int(len(self.features)),
            "transactions": self.transactions.to_dict(),
            "surveys": None if self.surveys is None else self.surveys.to_dict(),
            "survey_customers_without_purchase": self.survey_customers_without_purchase,
            **({} if self.attributes is None else {
                "attributes": self.attributes.to_dict(),
                "attribute_customers_without_purchase": self.attribute_customers_without_purchase,
            }),
        }


def _transaction_features(
    tx: pl.DataFrame, as_of: dt.date, unit_days: float, period_days: int | None = None
) -> pl.DataFrame:
    as_of_day = as_of.toordinal() - dt.date(1970, 1, 1).toordinal()
    occasions = sorted_occasions(tx).with_columns(
        pl.when(pl.col("customer_id") == pl.col("customer_id").shift(1))
        .then(pl.col("day") - pl.col("day").shift(1))
        .otherwise(None)
        .cast(pl.Float64)
        .alias("gap"),
    )
    # occasions are sorted by customer then day: first/last are the first/last occasion
    per_customer = occasions.group_by("customer_id", maintain_order=True).agg(
        pl.col("day").first().alias("first_day"),
        pl.col("day").last().alias("last_day"),
        pl.len().cast(pl.Int64).alias("n_occasions"),
        pl.col("n_tx").sum().alias("n_transactions"),
        pl.col("amount").sum().alias("total_spend"),
        pl.col("amount").first().alias("first_amount"),
        pl.col("gap").std().alias("std_gap_days"),
    )
    # Recent activity: occasions fewer than t days before as_of, for every window
    # bound t (w and 2w), counted only over the occasions recent enough to matter.
    bounds = sorted({b for w in WINDOWS_DAYS for b in (w, 2 * w)})
    days_before = as_of_day - pl.col("day")
    recent = (
        occasions.filter(days_before < bounds[-1])
        .group_by("customer_id", maintain_order=True)
        .agg(
            *[(days_before < t).sum().cast(pl.Int64).alias(f"_n{t}") for t in bounds],
            *[
                pl.when(days_before < t).then(pl.col("amount")).otherwise(0.0).sum().alias(f"_s{t}")
                for t in bounds
            ],
        )
    )
    if period_days is not None:  # BG/BB's history in periods, from the same sorted occasions
        periods = occasion_periods(occasions, as_of=as_of, period_days=period_days)
        per_customer = per_customer.hstack(periods.drop("customer_id").get_columns())
    per_customer = (
        per_customer.join(recent, on="customer_id", how="left")
        .with_columns(pl.col(f"_n{t}").fill_null(0) for t in bounds)
        .with_columns(pl.col(f"_s{t}").fill_null(0.0) for t in bounds)
    )
    recency_days = (pl.col("last_day") - pl.col("first_day")).cast(pl.Float64)
    t_days = (as_of_day - pl.col("first_day")).cast(pl.Float64)
    since_last = (as_of_day - pl.col("last_day")).cast(pl.Float64)
    repeat = pl.col("n_occasions") - 1
    mean_gap = pl.when(repeat > 0).then(recency_days / repeat).otherwise(None)
    return per_customer.with_columns(
        repeat.cast(pl.Float64).alias("frequency"),
        (recency_days / unit_days).alias("recency"),
        (t_days / unit_days).alias("T"),
        pl.when(repeat > 0)
        .then((pl.col("total_spend") - pl.col("first_amount")) / repeat)
        .otherwise(0.0)
        .alias("monetary_value"),
        (pl.col("total_spend") / pl.col("n_transactions")).alias("mean_spend"),
        since_last.alias("days_since_last_purchase"),
        t_days.alias("tenure_days"),
        mean_gap.alias("mean_gap_days"),
        (since_last / mean_gap).alias("gap_ratio"),
        *[pl.col(f"_n{w}").alias(f"purchases_{w}d") for w in WINDOWS_DAYS],
        *[pl.col(f"_s{w}").alias(f"spend_{w}d") for w in WINDOWS_DAYS],
        # trend: the last w days minus the w days before them
        *[
            (2 * pl.col(f"_n{w}") - pl.col(f"_n{2 * w}")).alias(f"purchases_trend_{w}d")
            for w in WINDOWS_DAYS
        ],
        *[
            (2 * pl.col(f"_s{w}") - pl.col(f"_s{2 * w}")).alias(f"spend_trend_{w}d")
            for w in WINDOWS_DAYS
        ],
    )


def features_from_validated(
    transactions: pl.DataFrame,
    surveys: pl.DataFrame | None,
    *,
    as_of,
    spec: FeatureSpec | None = None,
    attributes: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, int]:
    """Compute the feature table (polars) from already validated canonical frames.

    Returns the features, defined by ``spec``, and the number of survey customers
    without a purchase by ``as_of`` (who get no row). The extra transaction columns
    of ``spec.extras`` (:mod:`cx_models.transaction_extras`; levels not yet learnt
    are learnt on these transactions) follow the standard feature columns, after
    each customer's BG/BB history in periods with ``spec.period_days``
    (:data:`~cx_models.period_features.PERIOD_COLUMNS`). ``attributes`` (validated
    by :func:`cx_models.attributes.validate_attributes`:
    ``customer_id`` and static columns) are joined after them; a customer without
    a row gets nulls.
    """
    as_of = parse_as_of(as_of)
    spec = spec or FeatureSpec()
    cutoff = as_of_cutoff(as_of)
    transactions = transactions.filter(pl.col("timestamp") < cutoff)
    feats = _transaction_features(transactions, as_of, spec.unit_days, spec.period_days)
    extras = spec.extras.learn(transactions) if spec.extras else None
    orphans = 0
    if surveys is not None and surveys.height:
        surveys = surveys.filter(pl.col("timestamp") < cutoff)
        if surveys["customer_id"].dtype != feats["customer_id"].dtype:
            surveys = surveys.with_columns(
                pl.col("customer_id").cast(feats["customer_id"].dtype, strict=False)
            )
        sv = survey_features(surveys, as_of, spec.lookback_days)
        feats = feats.join(sv, on="customer_id", how="left")
        survey_ids = surveys.select(pl.col("customer_id").unique())
        orphans = survey_ids.join(feats.select("customer_id"), on="customer_id", how="anti").height
    for s in SURVEY_TYPES:
        for stat in ("latest", "mean", "days_since"):
            name = f"{s}_{stat}"
            if name not in feats.columns:
                feats = feats.with_columns(pl.lit(None, dtype=pl.Float64).alias(name))
        name = f"{s}_count"
        feats = feats.with_columns(
            (pl.col(name) if name in feats.columns else pl.lit(0))
            .fill_null(0)
            .cast(pl.Int64)
            .alias(name)
        )
    periods = list(PERIOD_COLUMNS) if spec.period_days is not None else []
    feats = feats.with_columns(nps_category()).select(*feature_columns(), *periods)
    if extras is not None:
        feats = feats.join(extras.features(transactions, as_of=as_of), on="customer_id",
                           how="left", maintain_order="left")
    if attributes is not None:
        from cx_models.attributes import join_attributes

        feats = join_attributes(feats, attributes)
    if not feats["customer_id"].is_sorted():
        feats = feats.sort("customer_id")
    return feats, orphans


def to_pandas_features(feats: pl.DataFrame, *, as_of: dt.date, spec: FeatureSpec) -> pd.DataFrame:
    """Convert a polars feature table to pandas, keeping the id's type and NaN for missing.

    ``attrs`` record ``as_of``, ``time_unit`` and ``lookback_days``.
    """
    frame = feats.to_pandas()
    if feats["customer_id"].dtype.is_integer():
        frame["customer_id"] = frame["customer_id"].astype("Int64")
    float_cols = [c for c, t in zip(feats.columns, feats.dtypes, strict=True) if t.is_float()]
    frame[float_cols] = frame[float_cols].astype("float64")
    frame.attrs["as_of"] = as_of.isoformat()
    frame.attrs["time_unit"] = spec.time_unit
    frame.attrs["lookback_days"] = spec.lookback_days
    if spec.period_days is not None:
        frame.attrs["period_days"] = spec.period_days
    return frame


def build_features(
    transactions,
    surveys=None,
    *,
    as_of,
    spec: FeatureSpec | None = None,
    fmt: EventFormat | None = None,
    attributes=None,
    **keywords,
) -> FeatureBuild:
    """Validate raw inputs and build the customer feature table, keeping the reports.

    Same parameters as :func:`build_customer_features`; returns a
    :class:`FeatureBuild` with the table, the validation reports and the
    quarantined rows. ``attributes`` is a customer attributes input (a path, a
    frame or a database source, read with the default
    :class:`~cx_models.attributes.AttributeSpec`) or an
    :class:`~cx_models.attributes.AttributeInput`; its columns follow the features.
    """
    fmt, spec = from_keywords("build_features", keywords, fmt=fmt, spec=spec)
    as_of = parse_as_of(as_of)
    tx, sv = validate_events(transactions, surveys, as_of=as_of, fmt=fmt, extras=spec.extras)
    spec = spec.learn(tx.data.filter(pl.col("timestamp") < as_of_cutoff(as_of)))
    attrs = None
    if attributes is not None:
        from cx_models.attributes import AttributeInput

        attrs = AttributeInput.of(attributes).validate(
            id_dtype=tx.data["customer_id"].dtype,
            reserved=[*feature_columns(), *spec.added_columns()],
        )
    feats, orphans = features_from_validated(
        tx.data, None if sv is None else sv.data, as_of=as_of, spec=spec,
        attributes=None if attrs is None else attrs.data,
    )
    frame = to_pandas_features(feats, as_of=as_of, spec=spec)
    if attrs is not None:
        frame.attrs["attributes"] = dict(attrs.kinds)
    return FeatureBuild(
        features=frame,
        transactions=tx.report,
        surveys=None if sv is None else sv.report,
        survey_customers_without_purchase=orphans,
        attributes=None if attrs is None else attrs.report,
        attribute_customers_without_purchase=(
            0 if attrs is None else attrs.without_purchase(feats["customer_id"])
        ),
        spec=spec,
    )


def build_customer_features(
    transactions,
    surveys=None,
    *,
    as_of,
    spec: FeatureSpec | None = None,
    fmt: EventFormat | None = None,
    **keywords,
) -> pd.DataFrame:
    """Build one row per customer with a purchase at or before ``as_of``.

    Parameters
    ----------
    transactions : path, pandas.DataFrame or polars.DataFrame
        Orders: customer id, timestamp, amount (see :mod:`cx_models.schemas`).
    surveys : path, pandas.DataFrame or polars.DataFrame, optional
        Long-format survey responses: customer id, timestamp, survey, score.
    as_of : str, date or datetime
        The cutoff calendar day, included whole. Nothing after it is used.
    spec : FeatureSpec, optional
        The feature definition: ``time_unit`` of ``recency`` and ``T`` (``"D"``
        days or ``"W"`` weeks of seven days; the behaviour and survey columns are
        always in days) and the survey ``lookback_days`` (default 365).
    fmt : EventFormat, optional
        How to read the inputs: column names, ``strptime`` formats for non-ISO
        timestamps, ``drop_duplicates``, ``strict``.
    **keywords
        The keywords of earlier releases (``time_unit=``, ``lookback_days=``,
        ``transaction_columns=``, ...) still work, with a ``DeprecationWarning``.

    Returns
    -------
    pandas.DataFrame
        The feature table (columns listed in the module docstring), sorted by
        ``customer_id``; ``attrs`` record ``as_of``, ``time_unit`` and
        ``lookback_days``. Use :func:`build_features` for the validation reports
        and quarantined rows.

    Examples
    --------
    >>> tx = pd.DataFrame({
    ...     "customer_id": [7, 7, 7, 8],
    ...     "timestamp": ["2024-01-01", "2024-01-15", "2024-01-29 18:00", "2024-01-20"],
    ...     "amount": [10.0, 20.0, 40.0, 5.0]})
    >>> f = build_customer_features(tx, as_of="2024-01-29", spec=FeatureSpec(time_unit="W"))
    >>> f[["customer_id", "frequency", "recency", "T", "monetary_value"]].to_dict("records")[0]
    {'customer_id': 7, 'frequency': 2.0, 'recency': 4.0, 'T': 4.0, 'monetary_value': 30.0}
    >>> f.attrs["time_unit"]
    'W'
    """
    fmt, spec = from_keywords("build_customer_features", keywords, fmt=fmt, spec=spec)
    return build_features(transactions, surveys, as_of=as_of, spec=spec, fmt=fmt).features
