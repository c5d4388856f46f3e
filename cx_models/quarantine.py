"""Validation reports and the quarantine: what validation did with each input.

Every validator returns a :class:`ValidatedTable`: the rows it kept, in canonical
columns, and a :class:`ValidationReport` whose counts always satisfy
``rows_in = rows_used + rows_quarantined + rows_after_as_of``. Rejected rows keep
their original values and one ``reason`` from
:data:`cx_models.contract.QUARANTINE_REASONS`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from cx_models.errors import CXDataError
from cx_models.io import write_table
from cx_models.timeutil import parse_as_of

__all__ = [
    "ValidatedTable",
    "ValidationReport",
    "check_usable",
    "merge_reports",
    "quarantine_table",
    "require_usable",
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


def require_usable(report: ValidationReport, as_of, time_format=None) -> None:
    """Raise a clear error when a transactions report leaves no usable row."""
    check_usable(report, report.source, parse_as_of(as_of), time_format)


def check_usable(report: ValidationReport, source: str, as_of: dt.date, time_format) -> None:
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


def quarantine_table(*reports: ValidationReport | None) -> pl.DataFrame:
    """One table of every rejected row of every input.

    Columns are ``source`` (``transactions`` or ``surveys``), ``row`` (0-based
    row number in that input), ``reason``, then the row's original values as
    text.

    Examples
    --------
    >>> import pandas as pd
    >>> from cx_models.schemas import validate_transactions
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
