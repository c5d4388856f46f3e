"""Validation of the event inputs: transactions and surveys.

Cell parsers live in :mod:`cx_models.cells`, reports in :mod:`cx_models.quarantine`.

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

import polars as pl

from cx_models.cells import (
    customer_ids,
    duplicate_mask,
    first_reason,
    numbers,
    require_scalar_columns,
    text_cells,
    timestamps,
)
from cx_models.contract import (
    MAX_AMOUNT,
    QUARANTINE_REASONS,
    REQUESTED_REASONS,
    ROW_INDEX,
    SURVEY_SCALES,
    SurveyColumns,
    SurveyScale,
    TransactionColumns,
    require_columns,
    survey_scales,
)
from cx_models.errors import CXDataError
from cx_models.io import read_input
from cx_models.legacy_keywords import from_keywords
from cx_models.quarantine import (
    ValidatedTable,
    ValidationReport,
    check_usable,
    merge_reports,
    quarantine_table,
    require_usable,
    write_quarantine,
)
from cx_models.settings import EventFormat
from cx_models.timeutil import as_of_cutoff, parse_as_of
from cx_models.transaction_extras import TransactionExtras

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
    duplicate = duplicate_mask(raw)
    if drop_duplicates:
        checks = [*checks, ("duplicate_row", duplicate)]
    reason = first_reason(checks, height)
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
    extras: TransactionExtras | None = None,
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
    extras : TransactionExtras, optional
        Extra columns the features aggregate (a feature definition's
        ``extras``): kept under their own names, numeric ones as Float64 (a
        cell that is not a finite number is quarantined, ``non_numeric_extra``),
        categorical ones as stripped text.

    Returns
    -------
    ValidatedTable
        ``data`` has ``customer_id`` (Int64 or String), ``timestamp`` (naive
        UTC datetime) and ``amount`` (Float64, finite, >= 0) for rows at or
        before ``as_of``, then the ``extras``; ``report`` counts everything else.

    Raises
    ------
    CXDataError
        On a structural problem, including no usable transaction at or before
        ``as_of``.

    Examples
    --------
    >>> import pandas as pd
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
    require_scalar_columns(raw.schema, source, roles)
    customer = customer_ids(raw[columns.customer], source, columns.customer, id_dtype)
    timestamp, bad_time = timestamps(raw[columns.time], time_format, source, columns.time)
    amount, non_numeric = numbers(raw[columns.amount], source, columns.amount, "amount")
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
        ("amount_too_large", finite & (amount.fill_nan(0.0) > MAX_AMOUNT)),
    ]
    canonical = pl.DataFrame(
        {
            "customer_id": customer,
            "timestamp": timestamp,
            "amount": amount,
        }
    )
    if extras:
        role_of = {column: role for role, (column, _) in roles.items()}
        extra_columns, extra_checks = extras.validate(raw, source, role_of)
        canonical = canonical.with_columns(extra_columns)
        checks += extra_checks
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
        check_usable(validated.report, source, as_of, time_format)
    return validated


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
    >>> import pandas as pd
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
    require_scalar_columns(raw.schema, source, columns.roles())
    customer = customer_ids(raw[columns.customer], source, columns.customer, id_dtype)
    timestamp, bad_time = timestamps(raw[columns.time], time_format, source, columns.time)
    survey = text_cells(raw[columns.survey]).str.to_lowercase().alias("survey")
    score, non_numeric = numbers(raw[columns.score], source, columns.score, "score")
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
    extras: TransactionExtras | None = None,
    **keywords,
) -> tuple[ValidatedTable, ValidatedTable | None]:
    """Validate transactions and (optionally) surveys together, read as ``fmt`` says.

    Survey ids take the transactions' id type, so an answer whose id cannot join
    the transactions is quarantined (``missing_customer_id``) rather than kept
    and silently left out of the features.

    Examples
    --------
    >>> import pandas as pd
    >>> tx = pd.DataFrame({"customer_id": [1], "timestamp": ["2024-01-02"], "amount": [5.0]})
    >>> sv = pd.DataFrame({"customer_id": ["1", "x"], "timestamp": ["2024-01-03"] * 2,
    ...                    "survey": ["nps", "nps"], "score": [9, 7]})
    >>> t, s = validate_events(tx, sv, as_of="2024-12-31")
    >>> s.report.rows_used, s.report.reasons
    (1, {'missing_customer_id': 1})
    """
    fmt, _ = from_keywords("validate_events", keywords, fmt=fmt)
    tx = validate_transactions(transactions, as_of=as_of, fmt=fmt, extras=extras)
    if surveys is None:
        return tx, None
    sv = validate_surveys(surveys, as_of=as_of, fmt=fmt, id_dtype=tx.data["customer_id"].dtype)
    return tx, sv


