"""Scale-out on Spark: validation, customer features, CLV fitting and scoring where the data lives.

The one module of cx-models that imports pyspark (install the extra:
``pip install 'cx-models[spark]'``). It mirrors the single-machine path step by
step, with Spark doing the work:

* :func:`validate_transactions` / :func:`validate_surveys` — the same data
  contracts and quarantine reasons as :mod:`cx_models.schemas`, as Spark
  expressions; ``rows_in = rows_used + rows_quarantined + rows_after_as_of``.
* :func:`build_features` — the feature table of :mod:`cx_models.features`
  (same columns, types and values), grouped by customer in Spark.
* :func:`fit_clv` — BG/NBD + Gamma-Gamma from the unique
  (frequency, recency, T) and (frequency, monetary_value) counts Spark
  aggregates; only those few rows reach the driver.
* :func:`score_features` — the logged CX scorer as a Spark UDF
  (:func:`mlflow.pyfunc.spark_udf`), then one global ``priority_rank``
  computed without moving the table to one partition.
* :func:`score_files` — all of it from files, for ``cx-models score --engine spark``.

Time
----
Event days are UTC calendar days, as on one machine: text timestamps without
an offset are UTC, offsets are honoured. Spark reads text and wall-clock
timestamps in the session time zone, so these functions require
``spark.sql.session.timeZone = UTC`` (:func:`spark_session` sets it) and say
so otherwise.

Executors
---------
The UDF runs the model in each executor's own Python. The logged model carries
the ``cx_models`` package itself (in its ``code_paths``), so executors need
only its Python requirements (numpy, pandas, polars, scipy, xgboost, mlflow,
...; the model's ``requirements.txt`` lists them). Either install
``cx-models`` on the cluster's Python (image or init script), or ship a packed
virtual environment with the job (``venv-pack -o env.tar.gz``, then
``--archives env.tar.gz#env`` and ``PYSPARK_PYTHON=./env/bin/python``).
In local mode the executors are this interpreter: :func:`spark_session` sets
``PYSPARK_PYTHON`` to it unless it is set.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cx_models._version import __version__
from cx_models.clv import CLVModel
from cx_models.contract import (
    EXTRA_COLUMNS,
    INTEGER_ID_PATTERN,
    NPS_BANDS,
    SCORE_COLUMNS,
    SURVEY_SCALES,
    SURVEY_TYPES,
    WINDOWS_DAYS,
    atomic_output,
    decide_id_type,
    feature_columns,
    require_columns,
)
from cx_models.errors import CXDataError
from cx_models.schemas import ValidationReport, require_usable
from cx_models.settings import EventFormat, FeatureSpec, ScoreParams, from_keywords
from cx_models.timeutil import DAYS_PER_UNIT, as_of_cutoff, check_time_unit, parse_as_of

# pyspark 4 warns at each pandas conversion that it does not yet fully support pandas 3;
# the spark tests check the conversions cx-models makes
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")

__all__ = [
    "SparkFeatureBuild",
    "SparkValidated",
    "build_features",
    "features_from_validated",
    "fit_clv",
    "read_table",
    "score_features",
    "score_files",
    "spark_session",
    "validate_surveys",
    "validate_transactions",
    "with_priority_rank",
    "write_scored",
]

#: The session time zone the functions here require (event days are UTC days).
TIME_ZONE = "UTC"
#: The metadata file written inside a scored Parquet dataset directory.
METADATA_FILE = "_cx_models.json"
_EPOCH = dt.date(1970, 1, 1)
_REQUESTED_REASONS = {"duplicate_row"}


# --------------------------------------------------------------------------- session
def spark_session(master: str = "local[*]", *, app_name: str = "cx-models", progress=False):
    """Return a Spark session set up for cx-models (UTC time zone, Arrow, quiet logs).

    Parameters
    ----------
    master : str
        Spark master URL, ``local[*]`` by default.
    app_name : str
        Application name shown by Spark.
    progress : bool
        Show Spark's console progress bar.

    Returns
    -------
    pyspark.sql.SparkSession
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # the JVM logs at WARN from its first line: errors only
    quiet_logs = tempfile.NamedTemporaryFile(
        "w", prefix="cx-log4j2-", suffix=".properties", delete=False
    )
    with quiet_logs:
        quiet_logs.write(_LOG4J2)
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.sql.session.timeZone", TIME_ZONE)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.showConsoleProgress", "true" if progress else "false")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.extraJavaOptions", f"-Dlog4j.configurationFile={quiet_logs.name}")
    )
    if master.startswith("local"):
        # one machine: a few shuffle partitions per core, not Spark's cluster default of 200
        builder = (
            builder.config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", str(4 * (os.cpu_count() or 1)))
        )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
"""


def _require_utc(spark) -> None:
    zone = spark.conf.get("spark.sql.session.timeZone")
    if zone not in ("UTC", "Etc/UTC", "Z", "+00:00", "GMT"):
        raise CXDataError(
            f"the Spark session time zone is {zone!r}; cx-models counts UTC calendar days: "
            "spark.conf.set('spark.sql.session.timeZone', 'UTC') (spark_session() sets it)"
        )


def read_table(spark, path, *, what: str) -> DataFrame:
    """Read a CSV (header, every cell as text) or Parquet input with Spark.

    CSV cells stay text so that validation, not the reader, decides what a value
    is, as on one machine. ``path`` may be any URI Spark reads (``s3a://``,
    ``hdfs://``, a directory of part files).
    """
    text = str(path)
    suffix = Path(text.rstrip("/")).suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise CXDataError(f"{text}: cannot tell the {what} format; expected .csv or .parquet")
    if "://" not in text and not Path(text).exists():
        raise CXDataError(f"{text}: {what} file not found")
    try:
        if suffix == ".csv":
            return spark.read.option("header", True).option("inferSchema", False).csv(text)
        return spark.read.parquet(text)
    except Exception as exc:  # noqa: BLE001 - Spark raises its own AnalysisException family
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CXDataError(f"{text}: cannot read the {what} input ({first})") from None


# --------------------------------------------------------------------------- validation
@dataclass
class SparkValidated:
    """Validated rows at or before ``as_of`` in canonical columns, the report and the rejects.

    ``data`` has ``customer_id`` (long or string), ``timestamp`` (UTC),
    ``amount`` or ``survey``/``score``; ``quarantine`` has ``source``,
    ``reason`` and the rejected rows' original values as text.
    """

    data: DataFrame
    quarantine: DataFrame
    report: ValidationReport
    id_type: str


def _blank_to_null(col):
    text = F.trim(col.cast("string"))
    return F.when(F.length(text) == 0, F.lit(None)).otherwise(text)


def _id_type(sdf: DataFrame, column: str, source: str) -> str:
    """Decide the canonical id type on the whole input: ``long`` or ``string``.

    The rule is :func:`cx_models.contract.decide_id_type`; Spark computes its inputs.
    """
    dtype = sdf.schema[column].dataType
    if isinstance(dtype, T.IntegralType):
        kind = decide_id_type("int", source=source, column=column)
    elif isinstance(dtype, T.BooleanType):
        kind = decide_id_type("bool", source=source, column=column)
    elif isinstance(dtype, (T.FloatType, T.DoubleType, T.DecimalType)):
        col = F.col(column).cast("double")
        bad = sdf.filter(col.isNotNull() & ~F.isnan(col) & (col != F.round(col))).limit(1)
        kind = decide_id_type("float", source=source, column=column, all_whole=not bad.count())
    else:
        text = _blank_to_null(F.col(column))
        row = sdf.agg(
            F.count(text).alias("present"),
            F.count(F.when(~text.rlike(INTEGER_ID_PATTERN), 1)).alias("non_int"),
        ).first()
        kind = decide_id_type(
            "text",
            source=source,
            column=column,
            present=row["present"],
            all_integer_text=not row["non_int"],
        )
    return "long" if kind == "int" else "string"


def _ids(sdf: DataFrame, column: str, target: str):
    dtype = sdf.schema[column].dataType
    col = F.col(column)
    if isinstance(dtype, (T.FloatType, T.DoubleType, T.DecimalType)):
        col = F.when(F.isnan(col.cast("double")), F.lit(None)).otherwise(col.cast("long"))
        return col.cast(target) if target == "long" else col.cast("string")
    if isinstance(dtype, T.IntegralType):
        return col.cast("long") if target == "long" else col.cast("string")
    text = _blank_to_null(col)
    return text.try_cast("long") if target == "long" else text


_STRPTIME_TO_SPARK = {
    "%Y": "yyyy",
    "%m": "MM",
    "%d": "dd",
    "%H": "HH",
    "%M": "mm",
    "%S": "ss",
    "%f": "SSSSSS",
    "%y": "yy",
    "%b": "MMM",
    "%z": "XX",
    "%%": "%",
}


def spark_time_format(time_format: str) -> str:
    """Translate a ``strptime`` format into a Spark datetime pattern.

    Examples
    --------
    >>> spark_time_format("%Y%m%d")
    'yyyyMMdd'
    >>> spark_time_format("%d/%m/%Y %H:%M")
    'dd/MM/yyyy HH:mm'
    """
    out, i = [], 0
    while i < len(time_format):
        piece = time_format[i : i + 2]
        if piece.startswith("%"):
            if piece not in _STRPTIME_TO_SPARK:
                raise CXDataError(
                    f"time format {time_format!r}: {piece!r} has no Spark equivalent here; "
                    f"use {', '.join(k for k in _STRPTIME_TO_SPARK if k != '%%')}"
                )
            out.append(_STRPTIME_TO_SPARK[piece])
            i += 2
        else:
            char = time_format[i]
            out.append(f"'{char}'" if char.isalpha() else char)
            i += 1
    return "".join(out)


def _timestamps(sdf: DataFrame, column: str, time_format: str | None, source: str):
    """Return (UTC timestamp column, column marking present-but-unparseable values)."""
    dtype = sdf.schema[column].dataType
    col = F.col(column)
    if isinstance(dtype, (T.TimestampType, T.TimestampNTZType, T.DateType)):
        return col.cast("timestamp"), F.lit(False)
    if isinstance(dtype, T.IntegralType):
        if time_format is None:
            raise CXDataError(
                f"{source}: column {column!r} (timestamp) holds integers; give the format "
                "with --time-format / time_format (e.g. %Y%m%d)"
            )
    elif not isinstance(dtype, T.StringType):
        raise CXDataError(
            f"{source}: column {column!r} (timestamp) has type {dtype.simpleString()}; expected "
            "dates, datetimes or text such as 2024-06-30 or 2024-06-30T14:05:00"
        )
    text = _blank_to_null(col)
    if time_format is None:
        parsed = F.try_to_timestamp(text)
    else:
        parsed = F.try_to_timestamp(text, F.lit(spark_time_format(time_format)))
    return parsed, text.isNotNull() & parsed.isNull()


def _numbers(sdf: DataFrame, column: str, source: str, what: str):
    """Return (double column, column marking present-but-non-numeric values)."""
    dtype = sdf.schema[column].dataType
    if isinstance(dtype, T.NumericType):
        return F.col(column).cast("double"), F.lit(False)
    if isinstance(dtype, T.BooleanType):
        raise CXDataError(f"{source}: column {column!r} ({what}) is boolean; expected numbers")
    text = _blank_to_null(F.col(column))
    value = text.try_cast("double")
    return value, text.isNotNull() & value.isNull()


def _finite(col):
    return ~F.isnan(col) & ~col.isin(float("inf"), float("-inf"))


def _finish(
    sdf: DataFrame,
    canonical: dict,
    checks: list,
    *,
    helpers: dict,
    source: str,
    kind: str,
    as_of: dt.date,
    drop_duplicates: bool,
    strict: bool,
    id_type: str,
) -> SparkValidated:
    raw_cols = list(sdf.columns)
    dup_window = Window.partitionBy(*[F.col(c) for c in raw_cols]).orderBy(F.lit(1))
    duplicate = F.row_number().over(dup_window) > 1
    if drop_duplicates:
        checks = [*checks, ("duplicate_row", F.col("__cx_duplicate"))]
    reason = None
    for name, cond in checks:
        cond = F.coalesce(cond, F.lit(False))
        reason = F.when(cond, F.lit(name)) if reason is None else reason.when(cond, F.lit(name))
    reason = reason.otherwise(F.lit(None).cast("string"))
    tagged = sdf.withColumn("__cx_duplicate", duplicate).select(
        *[F.col(c) for c in raw_cols],
        "__cx_duplicate",
        *[expr.alias(f"__cx_{name}") for name, expr in {**canonical, **helpers}.items()],
    )
    # the checks read the canonical columns, so evaluate them on the tagged frame
    tagged = tagged.withColumn("__cx_reason", reason)
    cutoff = as_of_cutoff(as_of)
    after = F.col("__cx_reason").isNull() & (F.col("__cx_timestamp") >= F.lit(cutoff))
    rows = tagged.groupBy("__cx_reason", after.alias("after")).agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(F.col("__cx_duplicate").cast("long")).alias("dups"),
    )
    counts = rows.collect()
    rows_in = sum(r["n"] for r in counts)
    reasons: dict[str, int] = {}
    for r in counts:
        if r["__cx_reason"] is not None:
            reasons[r["__cx_reason"]] = reasons.get(r["__cx_reason"], 0) + int(r["n"])
    reasons = dict(sorted(reasons.items(), key=lambda rn: (-rn[1], rn[0])))
    quarantined = sum(reasons.values())
    after_as_of = sum(int(r["n"]) for r in counts if r["after"])
    report = ValidationReport(
        source=source,
        kind=kind,
        rows_in=int(rows_in),
        rows_used=int(rows_in - quarantined - after_as_of),
        rows_quarantined=int(quarantined),
        rows_after_as_of=int(after_as_of),
        duplicate_rows=int(sum(r["dups"] or 0 for r in counts)),
        reasons=reasons,
        quarantine=pl.DataFrame(),  # the rows themselves stay in Spark: SparkValidated.quarantine
    )
    if strict:
        blocking = {r: n for r, n in reasons.items() if r not in _REQUESTED_REASONS}
        if blocking:
            listing = ", ".join(f"{r}: {n}" for r, n in blocking.items())
            raise CXDataError(
                f"{source}: --strict: {quarantined} of {rows_in} {kind} rows would be "
                f"quarantined ({listing})"
            )
    good = F.col("__cx_reason").isNull() & (F.col("__cx_timestamp") < F.lit(cutoff))
    data = tagged.filter(good).select(*[F.col(f"__cx_{n}").alias(n) for n in canonical])
    quarantine = tagged.filter(F.col("__cx_reason").isNotNull()).select(
        F.lit(kind).alias("source"),
        F.col("__cx_reason").alias("reason"),
        *[F.col(c).cast("string").alias(c) for c in raw_cols],
    )
    return SparkValidated(data=data, quarantine=quarantine, report=report, id_type=id_type)


def _source(sdf: DataFrame, source: str | None, what: str) -> str:
    if not isinstance(sdf, DataFrame):
        raise CXDataError(f"{what}: expected a Spark DataFrame, got {type(sdf).__name__}")
    return source or f"{what} Spark DataFrame"


def validate_transactions(
    sdf: DataFrame,
    *,
    as_of,
    fmt: EventFormat | None = None,
    source: str | None = None,
    **keywords,
) -> SparkValidated:
    """Validate a transactions Spark DataFrame, as :func:`cx_models.schemas.validate_transactions`.

    The same reasons, in the same priority order; the report's counts come from
    one Spark aggregation. Row numbers are not kept (a Spark DataFrame has no
    row order): the quarantine keeps the rows' values.
    """
    source = _source(sdf, source, "transactions")
    _require_utc(sdf.sparkSession)
    fmt, _ = from_keywords("validate_transactions", keywords, fmt=fmt)
    columns, time_format = fmt.transactions, fmt.time_format
    as_of = parse_as_of(as_of)
    require_columns(sdf.columns, source, columns.roles())
    id_type = _id_type(sdf, columns.customer, source)
    timestamp, bad_time = _timestamps(sdf, columns.time, time_format, source)
    amount, non_numeric = _numbers(sdf, columns.amount, source, "amount")
    canonical = {
        "customer_id": _ids(sdf, columns.customer, id_type),
        "timestamp": timestamp,
        "amount": amount,
    }
    helpers = {"bad_time": bad_time, "non_numeric": non_numeric}  # read by the checks only
    a, ts = F.col("__cx_amount"), F.col("__cx_timestamp")
    bad, nonnum = F.col("__cx_bad_time"), F.col("__cx_non_numeric")
    present = a.isNotNull()
    finite = present & _finite(a)
    checks = [
        ("missing_customer_id", F.col("__cx_customer_id").isNull()),
        ("missing_timestamp", ts.isNull() & ~bad),
        ("unparseable_timestamp", bad),
        ("missing_amount", ~present & ~nonnum),
        ("non_numeric_amount", nonnum),
        ("non_finite_amount", present & ~_finite(a)),
        ("negative_amount", finite & (a < 0)),
    ]
    return _finish(
        sdf,
        canonical,
        checks,
        helpers=helpers,
        source=source,
        kind="transactions",
        as_of=as_of,
        drop_duplicates=fmt.drop_duplicates,
        strict=fmt.strict,
        id_type=id_type,
    )


def validate_surveys(
    sdf: DataFrame,
    *,
    as_of,
    fmt: EventFormat | None = None,
    id_type: str | None = None,
    source: str | None = None,
    **keywords,
) -> SparkValidated:
    """Validate a surveys Spark DataFrame, as :func:`cx_models.schemas.validate_surveys`.

    ``id_type`` imposes the transactions' id type (``"long"`` or ``"string"``);
    ids that cannot take it are ``missing_customer_id``.
    """
    source = _source(sdf, source, "surveys")
    _require_utc(sdf.sparkSession)
    if "columns" in keywords:  # here, the survey columns
        keywords["survey_columns"] = keywords.pop("columns")
    if "time_format" in keywords:
        keywords["survey_time_format"] = keywords.pop("time_format")
    fmt, _ = from_keywords("validate_surveys", keywords, fmt=fmt)
    columns, time_format = fmt.surveys, fmt.survey_time_format_or_default
    as_of = parse_as_of(as_of)
    require_columns(sdf.columns, source, columns.roles())
    id_type = id_type or _id_type(sdf, columns.customer, source)
    timestamp, bad_time = _timestamps(sdf, columns.time, time_format, source)
    score, non_numeric = _numbers(sdf, columns.score, source, columns.score)
    canonical = {
        "customer_id": _ids(sdf, columns.customer, id_type),
        "timestamp": timestamp,
        "survey": F.lower(_blank_to_null(F.col(columns.survey))),
        "score": score,
    }
    helpers = {"bad_time": bad_time, "non_numeric": non_numeric}  # read by the checks only
    s, ts, kind = F.col("__cx_score"), F.col("__cx_timestamp"), F.col("__cx_survey")
    bad, nonnum = F.col("__cx_bad_time"), F.col("__cx_non_numeric")
    low = high = None
    for name, scale in SURVEY_SCALES.items():
        low = (F.when if low is None else low.when)(kind == name, F.lit(float(scale.low)))
        high = (F.when if high is None else high.when)(kind == name, F.lit(float(scale.high)))
    present = s.isNotNull()
    finite = present & _finite(s)
    checks = [
        ("missing_customer_id", F.col("__cx_customer_id").isNull()),
        ("missing_timestamp", ts.isNull() & ~bad),
        ("unparseable_timestamp", bad),
        ("missing_survey_type", kind.isNull()),
        ("unknown_survey_type", kind.isNotNull() & ~kind.isin(*SURVEY_SCALES)),
        ("missing_score", ~present & ~nonnum),
        ("non_numeric_score", nonnum | (present & ~_finite(s))),
        ("non_integer_score", finite & (s != F.round(s))),
        ("out_of_range_score", finite & ((s < low) | (s > high))),
    ]
    return _finish(
        sdf,
        canonical,
        checks,
        helpers=helpers,
        source=source,
        kind="surveys",
        as_of=as_of,
        drop_duplicates=fmt.drop_duplicates,
        strict=fmt.strict,
        id_type=id_type,
    )


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
    return feats.select(*feature_columns())


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
    tx = validate_transactions(transactions, as_of=as_of, fmt=fmt, source=sources[0])
    require_usable(tx.report, as_of, fmt.time_format)
    sv = None
    if surveys is not None:
        sv = validate_surveys(
            surveys, as_of=as_of, fmt=fmt, id_type=tx.id_type, source=sources[1]
        )
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


# --------------------------------------------------------------------------- CLV
def fit_clv(
    features: DataFrame | SparkFeatureBuild,
    *,
    time_unit: str | None = None,
    model: CLVModel | None = None,
) -> CLVModel:
    """Fit BG/NBD + Gamma-Gamma on a Spark feature table from its unique patterns.

    Spark counts the unique (frequency, recency, T) triples and the repeat
    customers' (frequency, monetary_value) pairs; only those counts reach the
    driver, where :meth:`cx_models.clv.CLVModel.fit_patterns` fits them. The
    estimates equal those of :meth:`~cx_models.clv.CLVModel.fit` on the same
    table collected to one machine.

    Parameters
    ----------
    features : pyspark.sql.DataFrame or SparkFeatureBuild
        One row per customer with ``frequency``, ``recency``, ``T`` and
        ``monetary_value``.
    time_unit : {"D", "W"}, optional
        The unit of ``recency`` and ``T`` (default: the build's, else days).
    model : CLVModel, optional
        An unfitted model carrying the settings (model, penalizers, tol).
    """
    if isinstance(features, SparkFeatureBuild):
        time_unit = time_unit or features.time_unit
        features = features.features
    missing = [
        c for c in ("frequency", "recency", "T", "monetary_value") if c not in features.columns
    ]
    if missing:
        raise CXDataError(
            f"features Spark DataFrame: required column(s) {', '.join(map(repr, missing))} missing"
        )
    patterns = features.groupBy("frequency", "recency", "T").count().toPandas()
    spend = (
        features.filter((F.col("frequency") > 0) & (F.col("monetary_value") > 0))
        .groupBy("frequency", "monetary_value")
        .count()
        .toPandas()
    )
    model = model or CLVModel()
    return model.fit_patterns(
        patterns["frequency"],
        patterns["recency"],
        patterns["T"],
        patterns["count"],
        spend["frequency"],
        spend["monetary_value"],
        spend["count"],
        time_unit=time_unit or "D",
        source="features Spark DataFrame",
    )


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


@contextlib.contextmanager
def _job_errors(what: str):
    """Report a failed Spark job in one line (its first), not as a JVM stack trace."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    try:
        yield
    except (PySparkException, Py4JError) as exc:
        text = str(exc).strip()
        first = next((line for line in text.splitlines() if line.strip()), type(exc).__name__)
        raise CXDataError(f"{what}: the Spark job failed: {first.strip()[:500]}") from None


def score_files(
    model_uri: str,
    transactions,
    surveys=None,
    *,
    as_of,
    out,
    master: str = "local[*]",
    tracking_uri: str | None = None,
    params: ScoreParams | None = None,
    fmt: EventFormat | None = None,
    spec: FeatureSpec | None = None,
    quarantine_out=None,
    metadata: dict | None = None,
    progress: bool = False,
    spark=None,
) -> dict:
    """Score a customer base from raw event files on Spark (``cx-models score --engine spark``).

    ``spec`` is the model's feature definition (the caller reads it from the
    model: :func:`cx_models.serving.batch.feature_spec_of`). Returns the
    validation counts and the number of customers scored.
    """
    with _job_errors(f"scoring {transactions}"):
        spark = spark or spark_session(master, progress=progress)
        tx = read_table(spark, transactions, what="transactions")
        sv = None if surveys is None else read_table(spark, surveys, what="surveys")
        build = build_features(
            tx,
            sv,
            as_of=as_of,
            spec=spec,
            fmt=fmt,
            sources=(str(transactions), None if surveys is None else str(surveys)),
        )
        build.features = build.features.persist()  # counted for the report, then scored
        scored = score_features(
            build,
            model_uri,
            tracking_uri=tracking_uri,
            params=params,
        )
        write_scored(scored, out, metadata={**(metadata or {}), "engine": "spark"})
        customers = scored.count()
        scored.unpersist()
        if quarantine_out is not None and build.quarantine is not None:
            writer = build.quarantine.write.mode("overwrite")
            if str(quarantine_out).lower().endswith(".csv"):
                writer.option("header", True).csv(str(quarantine_out))
            else:
                writer.parquet(str(quarantine_out))
    return {**build.summary(), "customers": int(customers)}


def score_feature_file(
    model_uri: str,
    features_path,
    *,
    out,
    master: str = "local[*]",
    tracking_uri: str | None = None,
    time_unit: str = "D",
    params: ScoreParams | None = None,
    metadata: dict | None = None,
    progress: bool = False,
    spark=None,
) -> dict:
    """Score a feature table file (``cx-models features`` output) on Spark."""
    with _job_errors(f"scoring {features_path}"):
        spark = spark or spark_session(master, progress=progress)
        features = read_table(spark, features_path, what="features")
        scored = score_features(
            features,
            model_uri,
            time_unit=time_unit,
            tracking_uri=tracking_uri,
            params=params,
        )
        write_scored(scored, out, metadata={**(metadata or {}), "engine": "spark"})
        customers = scored.count()
    return {"customers": int(customers)}
