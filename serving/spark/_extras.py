"""Extra transaction columns on Spark: the contracts and features of one machine's extras.

As in :mod:`cx_models.transaction_extras`, the same cells are quarantined for the
same reasons (``non_numeric_extra``, ``extra_too_large``), the same levels are
learnt (the most frequent in occasions, ties in text order) and the same
aggregates come out, column for column.
"""

from __future__ import annotations

import datetime as dt

from cx_models.serving.spark._features import _epoch_day
from cx_models.serving.spark._session import EPOCH as _EPOCH
from cx_models.serving.spark._validation import _blank_to_null, _finite, _numbers
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cx_models.contract import MAX_AMOUNT, WINDOWS_DAYS
from cx_models.errors import CXDataError
from cx_models.transaction_extras import MAX_LEVELS, TransactionExtras

__all__ = ["extra_features", "learn_levels", "validate_extras"]


def validate_extras(sdf: DataFrame, extras: TransactionExtras, source: str, roles: dict):
    """Return the canonical extra columns, helper columns and quarantine checks.

    ``roles``: the export's customer, time and amount columns (name → role). The
    checks read the tagged frame's ``__cx_<name>`` columns, as the others do.
    """
    flags = extras.check_columns(sdf.columns, source, roles)
    for column, flag in flags.items():
        dtype = sdf.schema[column].dataType
        if isinstance(dtype, (T.ArrayType, T.MapType, T.StructType, T.BinaryType)):
            raise CXDataError(
                f"{source}: column {column!r} ({flag}) has type {dtype.simpleString()}; "
                "expected one number or text per cell"
            )
    canonical, helpers, checks = {}, {}, []
    for q in extras.numeric:
        canonical[q], helpers[f"{q}__text"] = _numbers(sdf, q, source, "--tx-numeric")
        v, text = F.col(f"__cx_{q}"), F.col(f"__cx_{q}__text")
        present = v.isNotNull()
        finite = present & _finite(v)
        checks += [
            ("non_numeric_extra", text | (present & ~_finite(v))),
            ("extra_too_large", finite & (F.abs(v) > MAX_AMOUNT)),
        ]
    for c in extras.categorical:
        canonical[c] = _blank_to_null(F.col(c))
    return canonical, helpers, checks


def _level_counts(tx: DataFrame, column: str) -> DataFrame:
    day = _epoch_day("timestamp").alias("_day")
    return (tx.select("customer_id", day, F.col(column).alias("_level"))
            .filter(F.col("_level").isNotNull()).distinct())


def learn_levels(tx: DataFrame, extras: TransactionExtras) -> TransactionExtras:
    """Return ``extras`` with the levels of ``tx`` (validated, cut at as_of) learnt.

    As :meth:`TransactionExtras.learn`: levels already learnt are kept.
    """
    if extras.learnt:
        return extras
    known = dict(extras.levels)
    for c in extras.categorical:
        if c in known:
            continue
        top = (_level_counts(tx, c).groupBy("_level").count()
               .orderBy(F.desc("count"), F.asc("_level")).limit(MAX_LEVELS).collect())
        known[c] = tuple(row["_level"] for row in top)
    return TransactionExtras(numeric=extras.numeric, categorical=extras.categorical,
                             levels=tuple((c, known[c]) for c in extras.categorical))


def extra_features(tx: DataFrame, extras: TransactionExtras, as_of: dt.date) -> DataFrame:
    """Per-customer aggregates of ``tx`` (validated, cut at as_of): ``customer_id`` + names."""
    if not extras.learnt:
        raise CXDataError("the categorical levels are not learnt: call learn_levels() first")
    as_of_day = (as_of - _EPOCH).days
    day = _epoch_day("timestamp")
    out = tx.select("customer_id").distinct()
    if extras.numeric:
        # an occasion's value: the sum of its rows, missing when all are empty
        per_day = tx.groupBy("customer_id", day.alias("_day")).agg(
            *[F.sum(q).alias(q) for q in extras.numeric])
        before = F.lit(as_of_day) - F.col("_day")
        aggs = []
        for q in extras.numeric:
            v = F.col(q)
            aggs += [F.sum(v).alias(f"{q}_sum"), F.avg(v).alias(f"{q}_mean")]
            for w in WINDOWS_DAYS:
                inside = F.when(before < w, v)
                aggs += [F.coalesce(F.sum(inside), F.lit(0.0)).alias(f"{q}_sum_{w}d"),
                         F.avg(inside).alias(f"{q}_mean_{w}d")]
        out = out.join(per_day.groupBy("customer_id").agg(*aggs), "customer_id", "left")
    if extras.categorical:
        occasions = tx.select("customer_id", day.alias("_day")).distinct().groupBy(
            "customer_id").agg(F.count(F.lit(1)).alias("_n"))
        out = out.join(occasions, "customer_id", "left")
    for c in extras.categorical:
        named = extras.level_names(c)
        known = [lv for lv, _ in named]
        other = f"{c}_share_other"
        outside = ~F.col("_level").isin(*known) if known else F.lit(True)
        counts = _level_counts(tx, c).groupBy("customer_id").agg(
            *[F.sum((F.col("_level") == lv).cast("long")).alias(name) for lv, name in named],
            F.countDistinct(F.when(outside, F.col("_day"))).alias(other),
        )
        out = out.join(counts, "customer_id", "left").withColumns({
            name: (F.coalesce(F.col(name), F.lit(0)) / F.col("_n")).cast("double")
            for name in [*(n for _, n in named), other]
        })
    return out.select("customer_id", *extras.feature_names())
