"""The data contracts on Spark: the same quarantine reasons, as Spark expressions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl
from cx_models.serving.spark._session import require_utc as _require_utc
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cx_models.contract import (
    INTEGER_ID_PATTERN,
    MAX_AMOUNT,
    REQUESTED_REASONS,
    SURVEY_SCALES,
    decide_id_type,
    require_columns,
)
from cx_models.errors import CXDataError
from cx_models.legacy_keywords import from_keywords
from cx_models.schemas import ValidationReport
from cx_models.settings import EventFormat
from cx_models.timeutil import as_of_cutoff, parse_as_of

__all__ = ["SparkValidated", "spark_time_format", "validate_surveys", "validate_transactions"]


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


@dataclass(frozen=True)
class _Source:
    """What a validated Spark table is: its file, kind, cut-off day, format and id type."""

    name: str
    kind: str
    as_of: dt.date
    fmt: EventFormat
    id_type: str


def _finish(
    sdf: DataFrame, canonical: dict, checks: list, *, helpers: dict, source: _Source
) -> SparkValidated:
    """Tag each row with its first failed check; count, split and report (one pass)."""
    kind, as_of, id_type = source.kind, source.as_of, source.id_type
    drop_duplicates, strict = source.fmt.drop_duplicates, source.fmt.strict
    source = source.name
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
        blocking = {r: n for r, n in reasons.items() if r not in REQUESTED_REASONS}
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
    extras=None,
    **keywords,
) -> SparkValidated:
    """Validate a transactions Spark DataFrame, as :func:`cx_models.schemas.validate_transactions`.

    The same reasons, in the same priority order; the report's counts come from
    one Spark aggregation. Row numbers are not kept (a Spark DataFrame has no
    row order): the quarantine keeps the rows' values. ``extras``
    (:class:`~cx_models.transaction_extras.TransactionExtras`): the declared extra
    columns are kept under their own names, checked as on one machine.
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
        ("amount_too_large", finite & (a > MAX_AMOUNT)),
    ]
    if extras:
        from cx_models.serving.spark._extras import validate_extras

        roles = {column: role for role, (column, _) in columns.roles().items()}
        more, more_helpers, more_checks = validate_extras(sdf, extras, source, roles)
        canonical.update(more)
        helpers.update(more_helpers)
        checks += more_checks
    return _finish(
        sdf,
        canonical,
        checks,
        helpers=helpers,
        source=_Source(source, "transactions", as_of, fmt, id_type),
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
        source=_Source(source, "surveys", as_of, fmt, id_type),
    )
