"""Survey features: each survey type's latest, mean, count and recency in a look-back window.

Used by :func:`cx_models.features.features_from_validated`.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from cx_models.contract import NPS_BANDS, SURVEY_TYPES

__all__ = ["nps_category", "survey_features"]


def survey_features(sv: pl.DataFrame, as_of: dt.date, lookback_days: int) -> pl.DataFrame:
    """Per customer and survey type: latest, mean, count and days since, in the look-back."""
    as_of_day = pl.lit(as_of, dtype=pl.Date)
    day = pl.col("timestamp").dt.date()
    in_window = sv.filter((as_of_day - day).dt.total_days() < lookback_days)
    per_type = in_window.group_by("customer_id", "survey").agg(
        pl.col("score")
        .filter(pl.col("timestamp") == pl.col("timestamp").max())
        .mean()
        .alias("latest"),
        pl.col("score").mean().alias("mean"),
        pl.len().alias("count"),
        (as_of_day - pl.col("timestamp").max().dt.date())
        .dt.total_days()
        .cast(pl.Float64)
        .alias("days_since"),
    )
    wide = None
    for s in SURVEY_TYPES:
        part = per_type.filter(pl.col("survey") == s).select(
            "customer_id",
            pl.col("latest").alias(f"{s}_latest"),
            pl.col("mean").alias(f"{s}_mean"),
            pl.col("count").alias(f"{s}_count"),
            pl.col("days_since").alias(f"{s}_days_since"),
        )
        wide = (
            part if wide is None else wide.join(part, on="customer_id", how="full", coalesce=True)
        )
    return wide


def nps_category() -> pl.Expr:
    """Return the NPS band of ``nps_latest`` (promoter, passive, detractor) as an expression."""
    nps = pl.col("nps_latest")
    expr = None
    for name, lowest in NPS_BANDS:  # highest band first
        expr = (pl.when if expr is None else expr.when)(nps >= lowest).then(pl.lit(name))
    return expr.otherwise(pl.lit(None, dtype=pl.String)).alias("nps_category")
