"""Data contracts: column names, survey scales, validation and quarantine.

Two inputs are accepted, each as CSV, Parquet, a pandas or a polars frame:

* **transactions** — ``customer_id, timestamp, amount``: one row per order.
* **surveys** (long format) — ``customer_id, timestamp, survey, score`` with
  ``survey`` one of ``nps``, ``csat``, ``ces`` (any case).

Other column names are mapped with :class:`TransactionColumns` /
:class:`SurveyColumns`; extra columns are ignored. Structural problems (file,
required column, option value, no usable transaction) raise
:class:`~cx_models.errors.CXDataError`. Row problems are *quarantined*: each
rejected row keeps its original values and gets one ``reason``; the counts
always satisfy ``rows_in = rows_used + rows_quarantined + rows_after_as_of``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import polars as pl

from cx_models.contract import (
    INTEGER_ID_PATTERN,
    QUARANTINE_REASONS,
    REQUESTED_REASONS,
    ROW_INDEX,
    SURVEY_SCALES,
    SurveyColumns,
    SurveyScale,
    TransactionColumns,
    decide_id_type,
    require_columns,
    survey_scales,
)
from cx_models.errors import CXDataError
from cx_models.io import read_input, write_table
from cx_models.settings import EventFormat, from_keywords
from cx_models.timeutil import as_of_cutoff, parse_as_of

__all__ = [
    "QUARANTINE_REASONS",
    "ROW_INDEX",
    "merge_reports",
    "SURVEY_SCALES",
    "SurveyColumns",
    "SurveyScale",
    "TransactionColumns",
    "ValidatedTable",
    "ValidationReport",
    "quarantine_table",
    "require_usable",
    "survey_scales",
    "validate_events",
    "validate_surveys",
    "validate_transactions",
    "write_quarantine",
]

@dataclass
class ValidationReport:
    """What validation did with one input.

    ``rows_in = rows_used + rows_quarantined + rows_after_as_of`` always holds.
    """

    source: str
    kind: str
    rows_in: int
    rows_used: int
    rows_quarantined: int
    rows_after_as_of: int
    duplicate_rows: int
    reasons: dict[str, int]
    quarantine: pl.DataFrame = field(repr=False)

    def to_dict(self) -> dict:
        """Return the counts as a JSON-friendly dict.

        Examples
        --------
        >>> import polars as pl
        >>> r = ValidationReport("t.csv", "transactions", 3, 2, 1, 0, 0,
        ...                      {"negative_amount": 1}, pl.DataFrame())
        >>> r.to_dict()["rows_quarantined"]
        1
        """
        return {
            "source": self.source,
            "rows_in": self.rows_in,
            "rows_used": self.rows_used,
            "rows_quarantined": self.rows_quarantined,
            "rows_after_as_of": self.rows_after_as_of,
            "duplicate_rows": self.duplicate_rows,
            "reasons": dict(self.reasons),
        }


@dataclass
class ValidatedTable:
    """Validated rows at or before ``as_of`` in canonical columns, with the report."""

    data: pl.DataFrame
    report: ValidationReport


# ---------------------------------------------------------------------------
# Column parsing helpers: each returns the parsed column and masks of problems.
# ---------------------------------------------------------------------------

def _text(series: pl.Series) -> pl.Series:
    """Strip text and turn empty strings into nulls."""
    stripped = series.cast(pl.String).str.strip_chars()
    return pl.select(
        pl.when(stripped.str.len_chars() == 0).then(None).otherwise(stripped)
    ).to_series()


def _customer_ids(series: pl.Series, source: str, column: str, force=None) -> pl.Series:
    """Canonical customer ids: Int64 for integer ids, String otherwise; null = missing.

    ``force`` imposes the type decided on the whole input when it is read in chunks.
    The rule itself is :func:`cx_models.contract.decide_id_type`.
    """
    if force is not None:
        return (
            series.to_frame()
            .select(canonical_id_expr(series.name, series.dtype, force))
            .to_series()
        )
    dtype = series.dtype
    if dtype.is_integer():
        return series.cast(pl.Int64)
    if dtype.is_float():
        values = series.fill_nan(None)
        present = values.drop_nulls()
        whole = not present.len() or bool((present == present.round(0)).all())
        decide_id_type("float", source=source, column=column, all_whole=whole)
        return values.cast(pl.Int64)
    if dtype == pl.Boolean:
        decide_id_type("bool", source=source, column=column)
    text = _text(series)
    present = text.drop_nulls()
    kind = decide_id_type(
        "text",
        source=source,
        column=column,
        present=present.len(),
        all_integer_text=bool(present.str.contains(INTEGER_ID_PATTERN).all()),
    )
    return text.cast(pl.Int64) if kind == "int" else text


def canonical_id_expr(column: str, raw_dtype, target) -> pl.Expr:
    """Return the expression turning a raw id column into ids of type ``target``.

    Examples
    --------
    >>> frame = pl.DataFrame({"c": [" 7", "", None]})
    >>> frame.select(canonical_id_expr("c", pl.String, pl.Int64)).to_series().to_list()
    [7, None, None]
    """
    col = pl.col(column)
    if raw_dtype.is_integer():
        expr = col.cast(target, strict=False)
    elif raw_dtype.is_float():
        expr = col.fill_nan(None).cast(pl.Int64, strict=False).cast(target, strict=False)
    else:
        text = col.cast(pl.String).str.strip_chars()
        text = pl.when(text.str.len_chars() == 0).then(None).otherwise(text)
        expr = text.cast(target, strict=False) if target != pl.String else text
    return expr.alias(column)


def _timestamps(
    series: pl.Series, time_format: str | None, source: str, column: str
) -> tuple[pl.Series, pl.Series]:
    """Return (naive UTC datetimes, mask of present-but-unparseable values)."""
    dtype = series.dtype
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            series = series.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        parsed = series.cast(pl.Datetime("us"))
        return parsed, pl.Series([False] * len(series), dtype=pl.Boolean)
    if dtype == pl.Date:
        return series.cast(pl.Datetime("us")), pl.Series([False] * len(series), dtype=pl.Boolean)
    if dtype.is_integer():
        if time_format is None:
            raise CXDataError(
                f"{source}: column {column!r} (timestamp) holds integers; give the format "
                "with --time-format / time_format (e.g. %Y%m%d)"
            )
        series = series.cast(pl.String)
    elif dtype != pl.String and not isinstance(dtype, (pl.Categorical, pl.Enum)):
        raise CXDataError(
            f"{source}: column {column!r} (timestamp) has type {dtype}; expected dates, "
            "datetimes or text such as 2024-06-30 or 2024-06-30T14:05:00"
        )
    text = _text(series)
    parsed = pd.to_datetime(
        text.to_pandas(), format=time_format or "ISO8601", errors="coerce", utc=True
    ).dt.tz_convert(None)
    out = pl.from_pandas(parsed).cast(pl.Datetime("us")).alias(series.name)
    bad = text.is_not_null() & out.is_null()
    return out, bad


def _numbers(series: pl.Series, source: str, column: str, what: str) -> tuple[pl.Series, pl.Series]:
    """Return (Float64 values, mask of present-but-non-numeric values)."""
    dtype = series.dtype
    if dtype.is_numeric():
        return series.cast(pl.Float64), pl.Series([False] * len(series), dtype=pl.Boolean)
    if dtype == pl.Boolean:
        raise CXDataError(f"{source}: column {column!r} ({what}) is boolean; expected numbers")
    text = _text(series)
    values = text.cast(pl.Float64, strict=False)
    return values, text.is_not_null() & values.is_null()


def _duplicate_mask(raw: pl.DataFrame) -> pl.Series:
    """Mark each row that exactly repeats an earlier row (all columns).

    Rows are hashed and only rows whose hash occurs more than once are compared
    exactly, which is several times faster than hashing whole rows into a set.
    """
    height = raw.height
    mask = pl.Series("duplicate", [False] * height, dtype=pl.Boolean)
    if height < 2 or raw.width == 0:
        return mask
    hashes = raw.hash_rows(seed=0)
    ordered = hashes.sort()
    repeated = ordered.filter(ordered == ordered.shift(1)).unique()
    if repeated.len() == 0:
        return mask
    candidates = hashes.is_in(repeated.implode()).arg_true()
    later = ~raw[candidates].select(pl.struct(pl.all()).is_first_distinct()).to_series()
    return mask.scatter(candidates.filter(later), True)


def _first_reason(checks: list[tuple[str, pl.Series]], height: int) -> pl.Series:
    """Return the first failing check per row, in priority order (null when none fails)."""
    expr = None
    for reason, mask in checks:
        cond = pl.lit(mask.fill_null(False))
        expr = (
            pl.when(cond).then(pl.lit(reason))
            if expr is None
            else expr.when(cond).then(pl.lit(reason))
        )
    if expr is None or height == 0:
        return pl.Series("reason", [None] * height, dtype=pl.String)
    return pl.select(expr.otherwise(pl.lit(None, dtype=pl.String)).alias("reason")).to_series()


def _finish(
    *,
    raw: pl.DataFrame,
    canonical: pl.DataFrame,
    checks: list[tuple[str, pl.Series]],
    source: str,
    kind: str,
    as_of: dt.date,
    drop_duplicates: bool,
    strict: bool,
) -> ValidatedTable:
    height = raw.height
    if ROW_INDEX in raw.columns:  # rows of a larger input, read in chunks
        rows = raw[ROW_INDEX].cast(pl.Int64).alias("row")
        raw = raw.drop(ROW_INDEX)
    else:
        rows = pl.Series("row", range(height), dtype=pl.Int64)
    duplicate = _duplicate_mask(raw)
    if drop_duplicates:
        checks = [*checks, ("duplicate_row", duplicate)]
    reason = _first_reason(checks, height)
    bad = reason.is_not_null()

    quarantine = pl.DataFrame(
        {"source": pl.Series([kind] * int(bad.sum()), dtype=pl.String)}
    ).with_columns(
        rows.filter(bad),
        reason.filter(bad),
        *[raw[c].filter(bad).cast(pl.String) for c in raw.columns],
    )
    good = canonical.filter(~bad)
    cutoff = as_of_cutoff(as_of)
    after = good["timestamp"] >= cutoff
    used = good.filter(~after)
    counts = reason.filter(bad).value_counts()
    reasons = {r: int(n) for r, n in sorted(counts.iter_rows(), key=lambda rn: (-rn[1], rn[0]))}
    report = ValidationReport(
        source=source,
        kind=kind,
        rows_in=height,
        rows_used=used.height,
        rows_quarantined=int(bad.sum()),
        rows_after_as_of=int(after.sum()),
        duplicate_rows=int(duplicate.sum()),
        reasons=reasons,
        quarantine=quarantine,
    )
    assert report.rows_in == report.rows_used + report.rows_quarantined + report.rows_after_as_of
    if strict:
        blocking = {r: n for r, n in reasons.items() if r not in REQUESTED_REASONS}
        if blocking:
            listing = ", ".join(f"{r}: {n}" for r, n in blocking.items())
            first = quarantine.filter(~pl.col("reason").is_in(list(REQUESTED_REASONS)))
            first_rows = ", ".join(str(r) for r in first["row"].head(5).to_list())
            raise CXDataError(
                f"{source}: --strict: {report.rows_quarantined} of {height} {kind} rows would be "
                f"quarantined ({listing}); first bad rows (0-based): {first_rows}"
            )
    return ValidatedTable(data=used, report=report)


def validate_transactions(
    data,
    *,
    as_of,
    fmt: EventFormat | None = None,
    id_dtype=None,
    require_usable: bool = True,
    **keywords,
) -> ValidatedTable:
    """Validate a transactions input and keep the rows usable at ``as_of``.

    Parameters
    ----------
    data : path, pandas.DataFrame or polars.DataFrame
        Transactions, one row per order.
    as_of : str, date or datetime
        The calendar day the data is seen from; its whole day is included.
    fmt : EventFormat, optional
        How to read the export: ``fmt.transactions`` names the customer, time and
        amount columns; ``fmt.time_format`` is the ``strptime`` format for text or
        integer timestamps (ISO 8601 text needs none); ``fmt.drop_duplicates``
        quarantines exact copies of an earlier row (reason ``duplicate_row``;
        counted either way); ``fmt.strict`` raises instead of quarantining.
    id_dtype : polars data type, optional
        Impose the customer id type (``pl.Int64`` or ``pl.String``) decided on
        the whole input when it is validated in chunks.
    require_usable : bool
        Raise when no row is usable (off for one chunk of a larger input).

    Returns
    -------
    ValidatedTable
        ``data`` has ``customer_id`` (Int64 or String), ``timestamp`` (naive
        UTC datetime) and ``amount`` (Float64, finite, >= 0) for rows at or
        before ``as_of``; ``report`` counts everything else.

    Raises
    ------
    CXDataError
        On a structural problem, including no usable transaction at or before
        ``as_of``.

    Examples
    --------
    >>> raw = pd.DataFrame({"customer_id": [1, 1, None, 2],
    ...                     "timestamp": ["2024-01-02", "2024-02-01", "2024-01-03", "2025-01-01"],
    ...                     "amount": [10.0, -5.0, 3.0, 4.0]})
    >>> v = validate_transactions(raw, as_of="2024-12-31")
    >>> v.report.rows_used, v.report.reasons, v.report.rows_after_as_of
    (1, {'missing_customer_id': 1, 'negative_amount': 1}, 1)
    """
    fmt, _ = from_keywords("validate_transactions", keywords, fmt=fmt)
    columns, time_format = fmt.transactions, fmt.time_format
    as_of = parse_as_of(as_of)
    raw, source = read_input(data, what="transactions")
    roles = columns.roles()
    require_columns(raw.columns, source, roles)
    customer = _customer_ids(raw[columns.customer], source, columns.customer, id_dtype)
    timestamp, bad_time = _timestamps(raw[columns.time], time_format, source, columns.time)
    amount, non_numeric = _numbers(raw[columns.amount], source, columns.amount, "amount")
    present = amount.is_not_null()
    finite = amount.is_finite().fill_null(False)
    checks = [
        ("missing_customer_id", customer.is_null()),
        ("missing_timestamp", timestamp.is_null() & ~bad_time),
        ("unparseable_timestamp", bad_time),
        ("missing_amount", ~present & ~non_numeric),
        ("non_numeric_amount", non_numeric),
        ("non_finite_amount", present & ~finite),
        ("negative_amount", finite & (amount.fill_nan(0.0) < 0)),
    ]
    canonical = pl.DataFrame(
        {
            "customer_id": customer,
            "timestamp": timestamp,
            "amount": amount,
        }
    )
    validated = _finish(
        raw=raw,
        canonical=canonical,
        checks=checks,
        source=source,
        kind="transactions",
        as_of=as_of,
        drop_duplicates=fmt.drop_duplicates,
        strict=fmt.strict,
    )
    if require_usable:
        _require_usable(validated.report, source, as_of, time_format)
    return validated


def require_usable(report: ValidationReport, as_of, time_format=None) -> None:
    """Raise a clear error when a transactions report leaves no usable row."""
    _require_usable(report, report.source, parse_as_of(as_of), time_format)


def _require_usable(report: ValidationReport, source: str, as_of: dt.date, time_format) -> None:
    """Raise when nothing is left to build features from."""
    if report.rows_used:
        return
    if report.rows_in == 0:
        raise CXDataError(f"{source}: no usable transaction: the input has no rows")
    if report.rows_quarantined == report.rows_in:
        listing = ", ".join(f"{r}: {n}" for r, n in report.reasons.items())
        hint = ""
        if "unparseable_timestamp" in report.reasons and time_format is None:
            hint = "; for timestamps that are not ISO 8601 give --time-format (e.g. %Y%m%d)"
        raise CXDataError(
            f"{source}: no usable transaction: every one of the {report.rows_in} rows was "
            f"quarantined ({listing}){hint}"
        )
    if report.rows_after_as_of == report.rows_in:
        raise CXDataError(
            f"{source}: no usable transaction: all {report.rows_in} rows are dated after "
            f"as_of {as_of.isoformat()}; choose a later --as-of"
        )
    raise CXDataError(
        f"{source}: no usable transaction at or before as_of {as_of.isoformat()}: "
        f"{report.rows_quarantined} rows quarantined, {report.rows_after_as_of} after as_of"
    )


def validate_surveys(
    data,
    *,
    as_of,
    fmt: EventFormat | None = None,
    id_dtype=None,
    **keywords,
) -> ValidatedTable:
    """Validate a long-format survey input and keep the responses usable at ``as_of``.

    Parameters
    ----------
    data : path, pandas.DataFrame or polars.DataFrame
        One row per response: customer, timestamp, survey type, score.
    as_of : str, date or datetime
        The calendar day the data is seen from; its whole day is included.
    fmt : EventFormat, optional
        ``fmt.surveys`` names the customer, time, survey-type and score columns;
        ``fmt.survey_time_format`` (else ``fmt.time_format``) reads non-ISO
        timestamps; ``drop_duplicates`` and ``strict`` as in
        :func:`validate_transactions`. Scores are checked against the declared
        scales (:data:`cx_models.contract.SURVEY_SCALES`).
    id_dtype : polars data type, optional
        Impose the customer id type (the transactions' when validated together).

    Returns
    -------
    ValidatedTable
        ``data`` has ``customer_id``, ``timestamp``, ``survey`` (lower case)
        and ``score`` (Float64, a whole number on the declared scale).

    Examples
    --------
    >>> raw = pd.DataFrame({"customer_id": [1, 1, 2],
    ...                     "timestamp": ["2024-01-02", "2024-01-05", "2024-01-03"],
    ...                     "survey": ["NPS", "csat", "ces"], "score": [9, 6, 2]})
    >>> v = validate_surveys(raw, as_of="2024-12-31")
    >>> v.report.rows_used, v.report.reasons
    (2, {'out_of_range_score': 1})
    """
    if "columns" in keywords:  # here, the survey columns
        keywords["survey_columns"] = keywords.pop("columns")
    if "time_format" in keywords:  # here, the surveys' own format
        keywords["survey_time_format"] = keywords.pop("time_format")
    fmt, _ = from_keywords("validate_surveys", keywords, fmt=fmt)
    columns, time_format, scales = fmt.surveys, fmt.survey_time_format_or_default, fmt.scales()
    as_of = parse_as_of(as_of)
    raw, source = read_input(data, what="surveys")
    require_columns(raw.columns, source, columns.roles())
    customer = _customer_ids(raw[columns.customer], source, columns.customer, id_dtype)
    timestamp, bad_time = _timestamps(raw[columns.time], time_format, source, columns.time)
    survey = _text(raw[columns.survey]).str.to_lowercase().alias("survey")
    score, non_numeric = _numbers(raw[columns.score], source, columns.score, "score")
    known = survey.is_in(list(scales))
    low = survey.replace_strict({k: s.low for k, s in scales.items()}, default=None)
    high = survey.replace_strict({k: s.high for k, s in scales.items()}, default=None)
    present = score.is_not_null()
    finite = score.is_finite().fill_null(False)
    whole = finite & (score.fill_nan(0.0) == score.fill_nan(0.0).round(0))
    checks = [
        ("missing_customer_id", customer.is_null()),
        ("missing_timestamp", timestamp.is_null() & ~bad_time),
        ("unparseable_timestamp", bad_time),
        ("missing_survey_type", survey.is_null()),
        ("unknown_survey_type", survey.is_not_null() & ~known.fill_null(False)),
        ("missing_score", ~present & ~non_numeric),
        ("non_numeric_score", non_numeric | (present & ~finite)),
        ("non_integer_score", finite & ~whole),
        ("out_of_range_score", finite & ((score < low) | (score > high)).fill_null(False)),
    ]
    canonical = pl.DataFrame(
        {"customer_id": customer, "timestamp": timestamp, "survey": survey, "score": score}
    )
    return _finish(
        raw=raw,
        canonical=canonical,
        checks=checks,
        source=source,
        kind="surveys",
        as_of=as_of,
        drop_duplicates=fmt.drop_duplicates,
        strict=fmt.strict,
    )


def validate_events(
    transactions,
    surveys=None,
    *,
    as_of,
    fmt: EventFormat | None = None,
    **keywords,
) -> tuple[ValidatedTable, ValidatedTable | None]:
    """Validate transactions and (optionally) surveys together, read as ``fmt`` says.

    Survey ids take the transactions' id type, so an answer whose id cannot join
    the transactions is quarantined (``missing_customer_id``) rather than kept
    and silently left out of the features.

    Examples
    --------
    >>> tx = pd.DataFrame({"customer_id": [1], "timestamp": ["2024-01-02"], "amount": [5.0]})
    >>> sv = pd.DataFrame({"customer_id": ["1", "x"], "timestamp": ["2024-01-03"] * 2,
    ...                    "survey": ["nps", "nps"], "score": [9, 7]})
    >>> t, s = validate_events(tx, sv, as_of="2024-12-31")
    >>> s.report.rows_used, s.report.reasons
    (1, {'missing_customer_id': 1})
    """
    fmt, _ = from_keywords("validate_events", keywords, fmt=fmt)
    tx = validate_transactions(transactions, as_of=as_of, fmt=fmt)
    if surveys is None:
        return tx, None
    sv = validate_surveys(surveys, as_of=as_of, fmt=fmt, id_dtype=tx.data["customer_id"].dtype)
    return tx, sv


def quarantine_table(*reports: ValidationReport | None) -> pl.DataFrame:
    """One table of every rejected row of every input.

    Columns are ``source`` (``transactions`` or ``surveys``), ``row`` (0-based
    row number in that input), ``reason``, then the row's original values as
    text.

    Examples
    --------
    >>> raw = pd.DataFrame({"customer_id": [1, 2], "timestamp": ["2024-01-01", "x"],
    ...                     "amount": [1.0, 2.0]})
    >>> v = validate_transactions(raw, as_of="2024-12-31")
    >>> quarantine_table(v.report).select("source", "row", "reason").rows()
    [('transactions', 1, 'unparseable_timestamp')]
    """
    frames = [r.quarantine for r in reports if r is not None]
    if not frames:
        return pl.DataFrame(schema={"source": pl.String, "row": pl.Int64, "reason": pl.String})
    return pl.concat(frames, how="diagonal")


def write_quarantine(path, *reports: ValidationReport | None) -> Path:
    """Write :func:`quarantine_table` to a CSV or Parquet file (by extension)."""
    return write_table(quarantine_table(*reports), path)


def merge_reports(reports: list[ValidationReport]) -> ValidationReport:
    """Add up the reports of the chunks of one input (quarantined rows keep their numbers).

    Examples
    --------
    >>> a = ValidationReport("t.csv", "transactions", 3, 2, 1, 0, 0, {"negative_amount": 1},
    ...                      pl.DataFrame({"row": [2]}))
    >>> b = ValidationReport("t.csv", "transactions", 2, 1, 0, 1, 0, {}, pl.DataFrame())
    >>> m = merge_reports([a, b])
    >>> m.rows_in, m.rows_used, m.rows_after_as_of, m.reasons
    (5, 3, 1, {'negative_amount': 1})
    """
    first = reports[0]
    reasons: dict[str, int] = {}
    for r in reports:
        for reason, count in r.reasons.items():
            reasons[reason] = reasons.get(reason, 0) + count
    quarantines = [r.quarantine for r in reports if r.quarantine.height]
    quarantine = (
        pl.concat(quarantines, how="diagonal").sort("row") if quarantines else first.quarantine
    )
    return ValidationReport(
        source=first.source,
        kind=first.kind,
        rows_in=sum(r.rows_in for r in reports),
        rows_used=sum(r.rows_used for r in reports),
        rows_quarantined=sum(r.rows_quarantined for r in reports),
        rows_after_as_of=sum(r.rows_after_as_of for r in reports),
        duplicate_rows=sum(r.duplicate_rows for r in reports),
        reasons=dict(sorted(reasons.items(), key=lambda rn: (-rn[1], rn[0]))),
        quarantine=quarantine,
    )
