"""The customer feature table on Spark: the same columns, types and values as one machine."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from cx_models.serving.spark._session import EPOCH as _EPOCH
from cx_models.serving.spark._validation import validate_surveys, validate_transactions
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from cx_models.contract import (
    NPS_BANDS,
    SURVEY_TYPES,
    WINDOWS_DAYS,
    feature_columns,
)
from cx_models.legacy_keywords import from_keywords
from cx_models.schemas import ValidationReport, require_usable
from cx_models.settings import EventFormat, FeatureSpec
from cx_models.timeutil import as_of_cutoff, parse_as_of

__all__ = ["SparkFeatureBuild", "build_features", "features_from_validated"]


# --------------------------------------------------------------------------- features
def _epoch_day(ts):
    return F.datediff(F.to_date(ts), F.lit(_EPOCH))


def _transaction_features(tx: DataFrame, as_of: dt.date, unit_days: float) -> DataFrame:
    as_of_day = (as_of - _EPOCH).days
    occasions = tx.groupBy("customer_id", _epoch_day("timestamp").alias("day")).agg(
        F.sum("amount").alias("amount"), F.count(F.lit(1)).alias("n_tx")
    )
    by_day = Window.partitionBy("customer_id").orderBy("day")
    occasions = occasions.withColumn(
        "gap", (F.col("day") - F.lag("day").over(by_day)).cast("double")
    )
    bounds = sorted({b for w in WINDOWS_DAYS for b in (w, 2 * w)})
    days_before = F.lit(as_of_day) - F.col("day")
    per_customer = occasions.groupBy("customer_id").agg(
        F.min("day").alias("first_day"),
        F.max("day").alias("last_day"),
        F.count(F.lit(1)).alias("n_occasions"),
        F.sum("n_tx").alias("n_transactions"),
        F.sum("amount").alias("total_spend"),
        F.min_by("amount", "day").alias("first_amount"),
        F.stddev_samp("gap").alias("std_gap_days"),
        *[
            F.sum(F.when(days_before < t, 1).otherwise(0)).cast("long").alias(f"_n{t}")
            for t in bounds
        ],
        *[
            F.sum(F.when(days_before < t, F.col("amount")).otherwise(0.0)).alias(f"_s{t}")
            for t in bounds
        ],
    )
    recency_days = (F.col("last_day") - F.col("first_day")).cast("double")
    t_days = (F.lit(as_of_day) - F.col("first_day")).cast("double")
    since_last = (F.lit(as_of_day) - F.col("last_day")).cast("double")
    repeat = F.col("n_occasions") - 1
    mean_gap = F.when(repeat > 0, recency_days / repeat)
    return per_customer.select(
        "customer_id",
        repeat.cast("double").alias("frequency"),
        (recency_days / unit_days).alias("recency"),
        (t_days / unit_days).alias("T"),
        F.when(repeat > 0, (F.col("total_spend") - F.col("first_amount")) / repeat)
        .otherwise(0.0)
        .alias("monetary_value"),
        F.col("n_transactions").cast("long").alias("n_transactions"),
        "total_spend",
        (F.col("total_spend") / F.col("n_transactions")).alias("mean_spend"),
        since_last.alias("days_since_last_purchase"),
        t_days.alias("tenure_days"),
        mean_gap.alias("mean_gap_days"),
        "std_gap_days",
        (since_last / mean_gap).alias("gap_ratio"),
        *[
            expr
            for w in WINDOWS_DAYS
            for expr in (
                F.col(f"_n{w}").alias(f"purchases_{w}d"),
                F.col(f"_s{w}").alias(f"spend_{w}d"),
                (2 * F.col(f"_n{w}") - F.col(f"_n{2 * w}")).alias(f"purchases_trend_{w}d"),
                (2 * F.col(f"_s{w}") - F.col(f"_s{2 * w}")).alias(f"spend_trend_{w}d"),
            )
        ],
    )


def _survey_features(sv: DataFrame, as_of: dt.date, lookback_days: int) -> DataFrame:
    as_of_day = (as_of - _EPOCH).days
    in_window = sv.filter(F.lit(as_of_day) - _epoch_day("timestamp") < lookback_days)
    latest_ts = F.max("timestamp").over(Window.partitionBy("customer_id", "survey"))
    per_type = (
        in_window.withColumn("__latest_ts", latest_ts)
        .groupBy("customer_id", "survey")
        .agg(
            # ties at the latest timestamp are averaged
            F.avg(F.when(F.col("timestamp") == F.col("__latest_ts"), F.col("score"))).alias(
                "latest"
            ),
            F.avg("score").alias("mean"),
            F.count(F.lit(1)).alias("count"),
            (F.lit(as_of_day) - _epoch_day(F.max("timestamp"))).cast("double").alias("days_since"),
        )
    )
    return per_type.groupBy("customer_id").agg(
        *[
            F.max(F.when(F.col("survey") == s, F.col(stat))).alias(f"{s}_{stat}")
            for s in SURVEY_TYPES
            for stat in ("latest", "mean", "count", "days_since")
        ]
    )


def features_from_validated(
    transactions: DataFrame,
    surveys: DataFrame | None,
    *,
    as_of,
    spec: FeatureSpec | None = None,
) -> DataFrame:
    """Compute the feature table, defined by ``spec``, from validated canonical Spark frames.

    The columns, their order and types are those of
    :func:`cx_models.features.feature_columns`; rows are in no particular order.
    """
    as_of = parse_as_of(as_of)
    spec = spec or FeatureSpec()
    cutoff = F.lit(as_of_cutoff(as_of))
    transactions = transactions.filter(F.col("timestamp") < cutoff)
    feats = _transaction_features(transactions, as_of, spec.unit_days)
    if surveys is not None:
        id_type = feats.schema["customer_id"].dataType
        surveys = surveys.filter(F.col("timestamp") < cutoff).withColumn(
            "customer_id", F.col("customer_id").try_cast(id_type)
        )
        survey_feats = _survey_features(surveys, as_of, spec.lookback_days)
        feats = feats.join(survey_feats, "customer_id", "left")
    else:
        feats = feats.select(
            "*",
            *[
                F.lit(None).cast("double").alias(f"{s}_{stat}")
                for s in SURVEY_TYPES
                for stat in ("latest", "mean", "days_since")
            ],
            *[F.lit(None).cast("long").alias(f"{s}_count") for s in SURVEY_TYPES],
        )
    nps = F.col("nps_latest")
    category = None
    for name, lowest in NPS_BANDS:  # highest band first
        category = (F.when if category is None else category.when)(nps >= lowest, F.lit(name))
    category = category.otherwise(F.lit(None).cast("string"))
    feats = feats.withColumns(
        {f"{s}_count": F.coalesce(F.col(f"{s}_count"), F.lit(0)).cast("long") for s in SURVEY_TYPES}
    ).withColumn("nps_category", category)
    feats = feats.select(*feature_columns())
    if spec.period_days is not None:  # BG/BB's history in periods, beside the continuous one
        periods = _period_histories(transactions, as_of, spec.period_days)
        feats = feats.join(periods, "customer_id", "left")
    if spec.extras:  # levels not yet learnt are learnt on these transactions
        from cx_models.serving.spark._extras import extra_features, learn_levels

        extras = learn_levels(transactions, spec.extras)
        feats = feats.join(extra_features(transactions, extras, as_of), "customer_id", "left")
        spec = replace(spec, extras=extras)
    return feats.select(*feature_columns(), *spec.added_columns())


def _period_histories(tx: DataFrame, as_of: dt.date, period: int) -> DataFrame:
    """:func:`cx_models.period_features.period_histories` in Spark (``tx`` cut at as_of)."""
    days = tx.select("customer_id", _epoch_day("timestamp").alias("day"), "amount")
    end = (as_of - _EPOCH).days + 1
    spans = days.groupBy("customer_id").agg(F.min("day").alias("first")).withColumn(
        "period_T",
        F.greatest(F.floor((F.lit(end) - F.col("first")) / period) - 1, F.lit(0)).cast("long"),
    )
    active = (
        days.join(spans, "customer_id")
        .withColumn("k", F.floor((F.col("day") - F.col("first")) / period).cast("long"))
        .filter((F.col("k") >= 1) & (F.col("k") <= F.col("period_T")))
        .groupBy("customer_id", "k")
        .agg(F.sum("amount").alias("spend"))
        .groupBy("customer_id")
        .agg(
            F.count(F.lit(1)).cast("long").alias("period_frequency"),
            F.max("k").alias("period_recency"),
            F.avg("spend").alias("period_monetary_value"),
        )
    )
    return spans.join(active, "customer_id", "left").select(
        "customer_id",
        F.coalesce("period_frequency", F.lit(0)).cast("long").alias("period_frequency"),
        F.coalesce("period_recency", F.lit(0)).cast("long").alias("period_recency"),
        "period_T",
        F.coalesce("period_monetary_value", F.lit(0.0)).cast("double").alias(
            "period_monetary_value"
        ),
    )


@dataclass
class SparkFeatureBuild:
    """A Spark feature table with what validation did to the inputs."""

    features: DataFrame
    as_of: str
    time_unit: str
    transactions: ValidationReport
    surveys: ValidationReport | None
    survey_customers_without_purchase: int
    quarantine: DataFrame | None = field(default=None, repr=False)

    def summary(self) -> dict:
        """JSON-friendly counts for logs and reports."""
        return {
            "as_of": self.as_of,
            "time_unit": self.time_unit,
            "transactions": self.transactions.to_dict(),
            "surveys": None if self.surveys is None else self.surveys.to_dict(),
            "survey_customers_without_purchase": self.survey_customers_without_purchase,
        }


def build_features(
    transactions: DataFrame,
    surveys: DataFrame | None = None,
    *,
    as_of,
    spec: FeatureSpec | None = None,
    fmt: EventFormat | None = None,
    sources: tuple[str | None, str | None] = (None, None),
    **keywords,
) -> SparkFeatureBuild:
    """Validate raw Spark inputs and build the customer feature table with Spark.

    Same parameters and the same table as :func:`cx_models.features.build_features`
    (one row per customer with a purchase by ``as_of``), as a Spark DataFrame.
    """
    fmt, spec = from_keywords("build_features", keywords, fmt=fmt, spec=spec)
    as_of = parse_as_of(as_of)
    unit = spec.time_unit
    tx = validate_transactions(transactions, as_of=as_of, fmt=fmt, source=sources[0],
                               extras=spec.extras)
    require_usable(tx.report, as_of, fmt.time_format)
    sv = None
    if surveys is not None:
        sv = validate_surveys(surveys, as_of=as_of, fmt=fmt, id_type=tx.id_type, source=sources[1])
    feats = features_from_validated(
        tx.data, None if sv is None else sv.data, as_of=as_of, spec=spec
    )
    orphans = 0
    quarantine = tx.quarantine
    if sv is not None:
        ids = sv.data.select("customer_id").distinct()
        orphans = ids.join(feats.select("customer_id"), "customer_id", "left_anti").count()
        quarantine = quarantine.unionByName(sv.quarantine, allowMissingColumns=True)
    return SparkFeatureBuild(
        features=feats,
        as_of=as_of.isoformat(),
        time_unit=unit,
        transactions=tx.report,
        surveys=None if sv is None else sv.report,
        survey_customers_without_purchase=int(orphans),
        quarantine=quarantine,
    )
