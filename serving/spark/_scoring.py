"""Scoring on Spark: the logged CX scorer as a UDF, one global rank, the dataset written."""

from __future__ import annotations

import json
from pathlib import Path

from cx_models.serving.spark._features import SparkFeatureBuild, build_features
from cx_models.serving.spark._session import METADATA_FILE, SparkRun, read_table
from cx_models.serving.spark._session import job_errors as _job_errors
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cx_models._version import __version__
from cx_models.contract import (
    EXTRA_COLUMNS,
    MAX_FEATURE_VALUE,
    SCORE_COLUMNS,
    atomic_output,
)
from cx_models.errors import CXDataError
from cx_models.settings import FeatureSpec, ScoreParams
from cx_models.sources import EventInputs
from cx_models.timeutil import DAYS_PER_UNIT, check_time_unit

__all__ = [
    "score_feature_file",
    "score_features",
    "score_files",
    "with_priority_rank",
    "write_quarantine",
    "write_scored",
]


# --------------------------------------------------------------------------- scoring
def _result_type(id_type) -> T.StructType:
    fields = [T.StructField("customer_id", id_type)]
    for name in SCORE_COLUMNS[1:]:
        if name == "priority_rank":
            fields.append(T.StructField(name, T.LongType()))
        elif name == "drivers":
            fields.append(T.StructField(name, T.StringType()))
        else:
            fields.append(T.StructField(name, T.DoubleType()))
    return T.StructType(fields)


def _nan_to_null(name: str):
    return F.when(F.isnan(F.col(name)), F.lit(None)).otherwise(F.col(name))


def with_priority_rank(scored: DataFrame) -> DataFrame:
    """Set ``priority_rank`` 1..n over the whole table, as :func:`cx_models.nco.priority_rank`.

    Highest value at risk first; ties: lower NCO, then customer_id; missing
    values sort last. Spark sorts by range partitions; each partition's rows are
    counted and numbered from the partition's offset, so the table never moves
    to a single partition.
    """
    ordered = scored.orderBy(
        _nan_to_null("value_at_risk").desc_nulls_last(),
        _nan_to_null("nco").asc_nulls_last(),
        F.col("customer_id").asc_nulls_last(),
    )
    positioned = (
        ordered.withColumn("__part", F.spark_partition_id())
        .withColumn("__pos", F.monotonically_increasing_id())
        .persist()
    )
    sizes = sorted(
        positioned.groupBy("__part")
        .agg(F.count(F.lit(1)).alias("n"), F.min("__pos").alias("first"))
        .collect()
    )
    shifts, done = [], 0
    for row in sizes:
        shifts.append((int(row["__part"]), done + 1 - int(row["first"])))
        done += int(row["n"])
    spark = scored.sparkSession
    shift = spark.createDataFrame(shifts, "__part int, __shift long")
    columns = [c for c in scored.columns]
    return positioned.join(F.broadcast(shift), "__part").select(
        *[
            (F.col("__pos") + F.col("__shift")).alias(c) if c == "priority_rank" else F.col(c)
            for c in columns
        ]
    )


def score_features(
    features: DataFrame | SparkFeatureBuild,
    model_uri: str,
    *,
    time_unit: str | None = None,
    tracking_uri: str | None = None,
    params: ScoreParams | None = None,
    **keywords,
) -> DataFrame:
    """Score a Spark feature table with a logged CX scorer, on the executors.

    ``params`` (or its fields as keywords) override the trained scoring settings.

    Returns a Spark DataFrame with the scoring contract's columns
    (:data:`cx_models.scoring.SCORE_COLUMNS`) and then the raw survey answers
    (``nps_latest``, ``csat_latest``, ``ces_latest``), one ``priority_rank``
    over the whole table: the rows of :func:`cx_models.serving.batch.score_features`.
    """
    from cx_models.training.tracking import spark_udf

    params = params or ScoreParams(**keywords)
    if isinstance(features, SparkFeatureBuild):
        time_unit = time_unit or features.time_unit
        features = features.features
    unit = check_time_unit(time_unit or "D")
    if "customer_id" not in features.columns:
        raise CXDataError("the features Spark DataFrame needs a 'customer_id' column")
    if unit != "D":  # the logged scorer reads a feature table in days
        factor = DAYS_PER_UNIT[unit]
        features = features.withColumns(
            {c: F.col(c) * factor for c in ("recency", "T") if c in features.columns}
        )
    id_type = features.schema["customer_id"].dataType
    udf = spark_udf(
        features.sparkSession,
        model_uri,
        result_type=_result_type(id_type),
        params=params.to_pyfunc(),
        tracking_uri=tracking_uri,
    )
    extras = [
        (F.col(c) if c in features.columns else F.lit(None)).cast("double").alias(c)
        for c in EXTRA_COLUMNS
    ]
    scored = features.select(
        udf(F.struct(*[F.col(c) for c in features.columns])).alias("__scores"), *extras
    ).select(*[F.col(f"__scores.{c}").alias(c) for c in SCORE_COLUMNS], *EXTRA_COLUMNS)
    # kept: the range sort samples its input before sorting it, and the model must run once
    return with_priority_rank(scored.persist())


def write_scored(scored: DataFrame, out, *, metadata: dict | None = None) -> str:
    """Write a scored table as a Parquet dataset directory with a metadata file.

    Local paths are written under a temporary name beside ``out`` and renamed at
    the end, so a failed job leaves nothing at ``out``; other URIs rely on
    Spark's output committer (``_SUCCESS``). The directory reads back with
    pandas, polars or Spark; ``_cx_models.json`` holds the metadata.
    """
    text = str(out)
    meta = json.dumps({**(metadata or {}), "cx_models_version": __version__}, default=str)
    if "://" in text:
        scored.write.mode("overwrite").parquet(text)
        scored.sparkSession.createDataFrame([(meta,)], "value string").coalesce(1).write.mode(
            "overwrite"
        ).text(text.rstrip("/") + "/" + METADATA_FILE)
        return text
    with atomic_output(Path(text), directory=True) as tmp:
        scored.write.parquet(str(tmp))
        (tmp / METADATA_FILE).write_text(meta + "\n")
    return text


def score_files(
    model_uri: str,
    inputs: EventInputs,
    *,
    as_of,
    out,
    spec: FeatureSpec | None = None,
    run: SparkRun | None = None,
    params: ScoreParams | None = None,
    metadata: dict | None = None,
) -> dict:
    """Score a customer base from raw event files on Spark (``cx-models score --engine spark``).

    ``inputs`` names the files and how to read them; ``spec`` is the model's
    feature definition (the caller reads it from the model:
    :func:`cx_models.serving.batch.feature_spec_of`). Returns the validation counts,
    the number of customers scored and, as ``quarantine``, the rejected rows as a
    Spark DataFrame (``None`` when none was kept) for :func:`write_quarantine`.
    """
    inputs = EventInputs.of(inputs)
    run = run or SparkRun()
    transactions, surveys = inputs.transactions, inputs.surveys
    with _job_errors(f"scoring {transactions}"):
        spark = run.spark()
        tx = read_table(spark, transactions, what="transactions")
        sv = None if surveys is None else read_table(spark, surveys, what="surveys")
        build = build_features(
            tx,
            sv,
            as_of=as_of,
            spec=spec,
            fmt=inputs.fmt,
            sources=(str(transactions), None if surveys is None else str(surveys)),
        )
        build.features = build.features.persist()  # counted for the report, then scored
        scored = score_features(build, model_uri, tracking_uri=run.tracking_uri, params=params)
        write_scored(scored, out, metadata={**(metadata or {}), "engine": "spark"})
        customers = scored.count()
        scored.unpersist()
    return {**build.summary(), "customers": int(customers), "quarantine": build.quarantine}


def write_quarantine(quarantine: DataFrame, path) -> None:
    """Write a Spark job's quarantined rows to ``path`` (CSV by its suffix, else Parquet).

    Spark writes a directory; a local one is written under a temporary name and
    renamed at the end, as :func:`write_scored` does.
    """
    text = str(path)
    csv = text.lower().endswith(".csv")

    def write(target: str, mode: str = "errorifexists") -> None:
        writer = quarantine.write.mode(mode)
        if csv:
            writer.option("header", True).csv(target)
        else:
            writer.parquet(target)

    with _job_errors(f"writing the quarantine to {path}"):
        if "://" in text:
            write(text, "overwrite")
            return
        with atomic_output(Path(text), directory=True) as tmp:
            write(str(tmp))


def score_feature_file(
    model_uri: str,
    features_path,
    *,
    out,
    time_unit: str = "D",
    run: SparkRun | None = None,
    params: ScoreParams | None = None,
    metadata: dict | None = None,
) -> dict:
    """Score a feature table file (``cx-models features`` output) on Spark."""
    run = run or SparkRun()
    with _job_errors(f"scoring {features_path}"):
        spark = run.spark()
        features = read_table(spark, features_path, what="features")
        usable = _usable_rows(features)
        rejected = features.filter(~usable).count()
        scored = score_features(
            features.filter(usable),
            model_uri,
            time_unit=time_unit,
            tracking_uri=run.tracking_uri,
            params=params,
        )
        write_scored(scored, out, metadata={**(metadata or {}), "engine": "spark"})
        customers = scored.count()
    return {"customers": int(customers), "feature_out_of_range": int(rejected)}


def _usable_rows(features: DataFrame):
    """Rows whose every numeric feature is missing or finite and at most 1e30 in size.

    The others are left out (``feature_out_of_range``), as on the single machine: one
    such customer never fails the table.
    """
    from pyspark.sql.types import NumericType

    condition = F.lit(True)
    for field in features.schema.fields:
        if isinstance(field.dataType, NumericType) and field.name != "customer_id":
            col = F.col(field.name)
            ok = col.isNull() | F.isnan(col) | (F.abs(col) <= F.lit(MAX_FEATURE_VALUE))
            condition = condition & ok
    return condition
