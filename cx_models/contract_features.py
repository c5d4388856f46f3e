"""Contractual churn: features and labels of the relationships active on a day.

Churn for a subscription business is an event: **the relationship ends within the
``horizon_days`` after the snapshot day** (its last day of service falls in
``(s, s + horizon]``), among the relationships active on ``s``. Relationships with
a cancellation visible on ``s`` are known to be leaving: they are flagged
``cancellation_pending`` and left out of the labels.

Every feature of a snapshot on day ``s`` comes from what is visible on ``s``:
subscriptions starting on or before it with ends after it hidden, surveys and
activity events up to it, and the retention models (shifted-beta-geometric and
Kaplan–Meier) fitted on the relationships as seen that day.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from cx_models.billing import BillingPeriod
from cx_models.contract import SURVEY_TYPES, score_0_100
from cx_models.errors import CXDataError
from cx_models.relationships import relationship_periods, relationships
from cx_models.survey_features import survey_features
from cx_models.timeutil import as_of_cutoff, parse_as_of

__all__ = [
    "CONTRACT_FEATURES",
    "KEY_COLUMNS",
    "contract_features",
    "contract_labels",
    "features_to_pandas",
    "renewals_due",
    "visible_on",
]

#: The columns before the features: who, which spell, since when, what is known.
KEY_COLUMNS = ("customer_id", "relationship", "start", "next_renewal", "cancellation_pending")

#: Churn features of the contractual kind (``plan`` is categorical).
CONTRACT_FEATURES = (
    "tenure_days",
    "renewals",
    "renewals_due",
    "days_to_next_renewal",
    "period_elapsed_share",
    "plan",
    "price",
    "price_change_ratio",
    "price_changes",
    "subscriptions",
    "prior_relationships",
    "nps_latest", "nps_mean", "nps_days_since",
    "csat_latest", "csat_mean", "csat_days_since",
    "ces_latest", "ces_mean", "ces_days_since",
    "survey_count",
    "latest_experience",
    "latest_experience_days_since",
    "experience_trend",
    "activity_30d",
    "activity_90d",
    "days_since_activity",
    "sbg_churn_prob",
    "km_churn_prob",
)


def visible_on(subscriptions: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """Return validated subscriptions as seen on ``day`` (later starts dropped, ends hidden)."""
    later = pl.lit(day, dtype=pl.Date)
    return subscriptions.filter(pl.col("start") <= later).with_columns(
        pl.when(pl.col("end") > later).then(None).otherwise(pl.col("end")).alias("end"),
        pl.when(pl.col("cancelled_at") > later).then(None)
        .otherwise(pl.col("cancelled_at")).alias("cancelled_at"),
    )


def renewals_due(start: pl.Expr, day, horizon_days: int, period: BillingPeriod) -> pl.Expr:
    """Renewal dates of a relationship that fall within ``(day, day + horizon]``."""
    today = pl.lit(day, dtype=pl.Date)
    later = pl.lit(day + dt.timedelta(days=int(horizon_days)), dtype=pl.Date)
    return (period.period_of(start, later) - period.period_of(start, today)).cast(pl.Int64)


def _surveys(surveys: pl.DataFrame | None, day: dt.date, ids: pl.Series,
             lookback_days: int, ces_higher_is_better: bool) -> pl.DataFrame:
    frame = pl.DataFrame({"customer_id": ids})
    if surveys is not None and surveys.height:
        seen = surveys.filter(pl.col("timestamp") < as_of_cutoff(day))
        if seen["customer_id"].dtype != ids.dtype:
            seen = seen.with_columns(pl.col("customer_id").cast(ids.dtype, strict=False))
        wide = survey_features(seen, day, lookback_days) if seen.height else None
        if wide is not None:
            frame = frame.join(wide, on="customer_id", how="left")
    for s in SURVEY_TYPES:
        for stat in ("latest", "mean", "days_since"):
            if f"{s}_{stat}" not in frame.columns:
                frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias(f"{s}_{stat}"))
    latest = np.column_stack([
        score_0_100(s, frame[f"{s}_latest"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
                    ces_higher_is_better=ces_higher_is_better) for s in SURVEY_TYPES])
    mean = np.column_stack([
        score_0_100(s, frame[f"{s}_mean"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
                    ces_higher_is_better=ces_higher_is_better) for s in SURVEY_TYPES])
    since = np.column_stack([
        frame[f"{s}_days_since"].cast(pl.Float64).fill_null(np.nan).to_numpy()
        for s in SURVEY_TYPES])
    counts = np.column_stack([
        frame[f"{s}_count"].fill_null(0).to_numpy() if f"{s}_count" in frame.columns
        else np.zeros(frame.height) for s in SURVEY_TYPES])
    answered = ~np.isnan(since).all(axis=1)
    newest = np.argmin(np.where(np.isnan(since), np.inf, since), axis=1)
    rows = np.arange(frame.height)
    present = ~np.isnan(mean)
    with np.errstate(invalid="ignore", divide="ignore"):
        overall = np.where(present, mean, 0.0).sum(axis=1) / present.sum(axis=1)
    latest_exp = np.where(answered, latest[rows, newest], np.nan)
    return frame.select(
        "customer_id",
        *[pl.col(f"{s}_{stat}").cast(pl.Float64)
          for s in SURVEY_TYPES for stat in ("latest", "mean", "days_since")],
    ).with_columns(
        pl.Series("survey_count", counts.sum(axis=1).astype(float)),
        pl.Series("latest_experience", latest_exp),
        pl.Series("latest_experience_days_since", np.where(answered, since[rows, newest], np.nan)),
        pl.Series("experience_trend", latest_exp - overall),
    )


def _activity(transactions: pl.DataFrame | None, day: dt.date, ids: pl.Series) -> pl.DataFrame:
    frame = pl.DataFrame({"customer_id": ids})
    if transactions is None or not transactions.height:
        return frame.with_columns(
            pl.lit(None, dtype=pl.Float64).alias(c)
            for c in ("activity_30d", "activity_90d", "days_since_activity")
        )
    tx = transactions.filter(pl.col("timestamp") < as_of_cutoff(day))
    if tx["customer_id"].dtype != ids.dtype:
        tx = tx.with_columns(pl.col("customer_id").cast(ids.dtype, strict=False))
    age = (pl.lit(day, dtype=pl.Date) - pl.col("timestamp").dt.date()).dt.total_days()
    per = tx.group_by("customer_id").agg(
        (age < 30).sum().cast(pl.Float64).alias("activity_30d"),
        (age < 90).sum().cast(pl.Float64).alias("activity_90d"),
        age.min().cast(pl.Float64).alias("days_since_activity"),
    )
    return frame.join(per, on="customer_id", how="left").with_columns(
        pl.col("activity_30d").fill_null(0.0), pl.col("activity_90d").fill_null(0.0)
    )


def contract_features(
    subscriptions: pl.DataFrame,
    *,
    day,
    horizon_days: int,
    period,
    grace_days: int = 0,
    surveys: pl.DataFrame | None = None,
    transactions: pl.DataFrame | None = None,
    lookback_days: int = 365,
    ces_higher_is_better: bool = False,
    retention=None,
) -> pl.DataFrame:
    """One row per relationship active on ``day``: the contractual churn features.

    Parameters
    ----------
    subscriptions : polars.DataFrame
        Validated subscriptions (:func:`cx_models.subscriptions.validate_subscriptions`);
        what ``day`` cannot see is hidden here again, so any later as-of will do.
    day : str or date
        The snapshot day.
    horizon_days : int
        The churn horizon: ``renewals_due`` and the baselines' probabilities count the
        renewals due in ``(day, day + horizon]``.
    period : BillingPeriod, int or str
        The billing period.
    grace_days : int
        Gaps without service that still continue a relationship.
    surveys, transactions : polars.DataFrame, optional
        Validated surveys and activity events (usage, payments).
    lookback_days : int
        The survey look-back window.
    ces_higher_is_better : bool
        The declared CES direction.
    retention : RetentionBaselines, optional
        Fitted retention models for ``sbg_churn_prob`` and ``km_churn_prob`` (a
        scorer's); by default fitted on the relationships as seen on ``day``.

    Returns
    -------
    polars.DataFrame
        :data:`KEY_COLUMNS` and :data:`CONTRACT_FEATURES`, sorted by customer.
    """
    day = parse_as_of(day, name="snapshot day")
    period = BillingPeriod.of(period)
    seen = visible_on(subscriptions, day)
    if not seen.height:
        raise CXDataError(f"no subscription has started by {day}")
    rels = relationship_periods(relationships(seen, as_of=day, grace_days=grace_days),
                                as_of=day, period=period)
    prior = rels.group_by("customer_id").agg(pl.col("lost").sum().alias("_lost_before"))
    active = rels.filter(pl.col("active")).join(prior, on="customer_id", how="left")
    next_renewal = period.boundary(pl.col("start"), pl.col("period"))
    current_start = period.boundary(pl.col("start"), pl.col("period") - 1)
    today = pl.lit(day, dtype=pl.Date)
    active = active.with_columns(
        (today - pl.col("start")).dt.total_days().cast(pl.Float64).alias("tenure_days"),
        pl.col("renewals").cast(pl.Float64),
        renewals_due(pl.col("start"), day, horizon_days, period).alias("renewals_due"),
        next_renewal.alias("next_renewal"),
        (next_renewal - today).dt.total_days().cast(pl.Float64).alias("days_to_next_renewal"),
        ((today - current_start).dt.total_days()
         / (next_renewal - current_start).dt.total_days()).cast(pl.Float64)
        .alias("period_elapsed_share"),
        (pl.col("price") / pl.col("first_price")).alias("price_change_ratio"),
        pl.col("price_changes").cast(pl.Float64),
        pl.col("subscriptions").cast(pl.Float64),
        pl.col("_lost_before").cast(pl.Float64).alias("prior_relationships"),
    ).with_columns(
        pl.when(pl.col("price_change_ratio").is_finite()).then(pl.col("price_change_ratio"))
        .otherwise(None).alias("price_change_ratio"),
        pl.col("renewals_due").cast(pl.Float64),
    )
    if not active.height:
        raise CXDataError(f"no relationship is active on {day}")
    from cx_models.retention_baselines import RetentionBaselines

    retention = retention or RetentionBaselines.fit(rels)
    sbg_prob, km_prob = retention.churn_probabilities(
        active["renewals"].to_numpy(), active["renewals_due"].to_numpy()
    )
    active = active.with_columns(
        pl.Series("sbg_churn_prob", sbg_prob), pl.Series("km_churn_prob", km_prob)
    )
    ids = active["customer_id"]
    out = (
        active.join(_surveys(surveys, day, ids, lookback_days, ces_higher_is_better),
                    on="customer_id", how="left")
        .join(_activity(transactions, day, ids), on="customer_id", how="left")
    )
    return out.select(
        *KEY_COLUMNS, *CONTRACT_FEATURES
    ).sort("customer_id")


def contract_labels(subscriptions: pl.DataFrame, features: pl.DataFrame, *, day,
                    horizon_days: int, grace_days: int = 0) -> np.ndarray:
    """Return 1 for each relationship of ``features`` that ends in ``(day, day + horizon]``.

    ``subscriptions`` must be seen at least to ``day + horizon`` (validated with that
    as-of or later); the relationships are rebuilt as seen on ``day + horizon``.
    """
    day = parse_as_of(day, name="snapshot day")
    later = day + dt.timedelta(days=int(horizon_days))
    seen = visible_on(subscriptions, later)
    rels = relationships(seen, as_of=later, grace_days=grace_days).select(
        "customer_id", "start", "end"
    )
    # a relationship active on day may have been joined to a later row by `later`:
    # match on the customer and the spell that covers day
    spell = rels.filter(pl.col("start") <= day).rename({"start": "_start"})
    joined = features.select("customer_id").with_row_index("_row").join(
        spell.filter(pl.col("end").is_null() | (pl.col("end") > day)),
        on="customer_id", how="left",
    ).sort("_row")
    if joined.height != features.height:
        raise CXDataError("a relationship matched more than one spell; check grace_days")
    ended = joined["end"].is_not_null() & (joined["end"] <= later)
    return ended.to_numpy().astype(np.int64)


def features_to_pandas(frame: pl.DataFrame):
    """Return a contractual feature table as pandas, ``plan`` as text with ``None`` when empty.

    The churn model reads a text column as categorical.
    """
    out = frame.to_pandas()
    if "plan" in out.columns:
        out["plan"] = out["plan"].astype(object).where(out["plan"].notna(), None)
    return out
