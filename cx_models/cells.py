"""Cell parsers shared by every validator: each returns parsed values and masks of problems.

A validator (:mod:`cx_models.schemas`, and those of later inputs) turns one raw column
into canonical values with these, collects ``(reason, mask)`` checks, and lets
:func:`first_reason` pick one reason per rejected row.
"""

from __future__ import annotations

import pandas as pd
import polars as pl

from cx_models.contract import INTEGER_ID_PATTERN, decide_id_type
from cx_models.errors import CXDataError

__all__ = [
    "canonical_id_expr",
    "decide_scan_id_dtype",
    "require_scalar_columns",
    "customer_ids",
    "duplicate_mask",
    "first_reason",
    "no_cells",
    "numbers",
    "text_cells",
    "timestamps",
]


def no_cells(n: int) -> pl.Series:
    """Return an all-false mask of ``n`` cells (built by polars, not from a Python list).

    Examples
    --------
    >>> no_cells(3).to_list()
    [False, False, False]
    """
    return pl.repeat(False, n, dtype=pl.Boolean, eager=True)


def require_scalar_columns(schema, source: str, roles: dict[str, tuple[str, str]]) -> None:
    """Refuse a required column of nested type (list, array, struct): one value per cell.

    Examples
    --------
    >>> schema = pl.Schema({"customer_id": pl.Int64, "amount": pl.List(pl.Float64)})
    >>> try:
    ...     require_scalar_columns(schema, "t.parquet", {"amount": ("amount", "--amount-col")})
    ... except CXDataError as exc:
    ...     print(str(exc).split(";")[0])
    t.parquet: column 'amount' (amount) has type List(Float64)
    """
    for canonical, (column, _flag) in roles.items():
        dtype = schema.get(column)
        if dtype is None:
            continue
        if dtype.is_nested() or dtype == pl.Object:
            raise CXDataError(
                f"{source}: column {column!r} ({canonical}) has type {dtype}; expected one "
                "number, text or date per cell, not a list or struct"
            )
        if dtype in (pl.Boolean, pl.Binary):
            kind = "boolean" if dtype == pl.Boolean else "bytes (bytea, blob)"
            raise CXDataError(
                f"{source}: column {column!r} ({canonical}) has type {kind}, which cannot hold "
                f"the {canonical}; cast it (in a query: to text or numeric)"
            )


def text_cells(series: pl.Series) -> pl.Series:
    """Strip text and turn empty strings into nulls."""
    stripped = series.cast(pl.String).str.strip_chars()
    return pl.select(
        pl.when(stripped.str.len_chars() == 0).then(None).otherwise(stripped)
    ).to_series()


def customer_ids(series: pl.Series, source: str, column: str, force=None) -> pl.Series:
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
    text = text_cells(series)
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


def timestamps(
    series: pl.Series, time_format: str | None, source: str, column: str
) -> tuple[pl.Series, pl.Series]:
    """Return (naive UTC datetimes, mask of present-but-unparseable values)."""
    dtype = series.dtype
    if dtype == pl.Null:  # every cell empty
        return series.cast(pl.Datetime("us")), no_cells(len(series))
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            series = series.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        parsed = series.cast(pl.Datetime("us"))
        return parsed, no_cells(len(series))
    if dtype == pl.Date:
        return series.cast(pl.Datetime("us")), no_cells(len(series))
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
    text = text_cells(series)
    parsed = pd.to_datetime(
        text.to_pandas(), format=time_format or "ISO8601", errors="coerce", utc=True
    ).dt.tz_convert(None)
    out = pl.from_pandas(parsed).cast(pl.Datetime("us")).alias(series.name)
    bad = text.is_not_null() & out.is_null()
    return out, bad


def numbers(series: pl.Series, source: str, column: str, what: str) -> tuple[pl.Series, pl.Series]:
    """Return (Float64 values, mask of present-but-non-numeric values)."""
    dtype = series.dtype
    if dtype.is_numeric():
        return series.cast(pl.Float64), no_cells(len(series))
    if dtype == pl.Boolean:
        raise CXDataError(f"{source}: column {column!r} ({what}) is boolean; expected numbers")
    text = text_cells(series)
    values = text.cast(pl.Float64, strict=False)
    return values, text.is_not_null() & values.is_null()


def duplicate_mask(raw: pl.DataFrame) -> pl.Series:
    """Mark each row that exactly repeats an earlier row (all columns).

    Rows are hashed and only rows whose hash occurs more than once are compared
    exactly, which is several times faster than hashing whole rows into a set.
    """
    height = raw.height
    mask = no_cells(height).alias("duplicate")
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


def first_reason(checks: list[tuple[str, pl.Series]], height: int) -> pl.Series:
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


def decide_scan_id_dtype(scan: pl.LazyFrame, column: str, raw_dtype, source: str):
    """Decide the customer id type from the whole column without holding it in memory.

    The rule is :func:`cx_models.contract.decide_id_type`; this computes its inputs
    in one streamed pass.
    """
    if raw_dtype.is_integer():
        kind = decide_id_type("int", source=source, column=column)
    elif raw_dtype.is_float():
        values = pl.col(column).fill_nan(None).drop_nulls()
        whole = scan.select((values.round(0) == values).all()).collect(engine="streaming").item()
        kind = decide_id_type("float", source=source, column=column, all_whole=bool(whole))
    elif raw_dtype == pl.Boolean:
        kind = decide_id_type("bool", source=source, column=column)
    else:
        text = pl.col(column).cast(pl.String).str.strip_chars()
        present = text.filter(text.is_not_null() & (text.str.len_chars() > 0))
        all_int, count = (
            scan.select(
                present.str.contains(INTEGER_ID_PATTERN).all().alias("all_int"),
                present.len().alias("n"),
            )
            .collect(engine="streaming")
            .row(0)
        )
        kind = decide_id_type(
            "text", source=source, column=column, present=count, all_integer_text=bool(all_int)
        )
    return pl.Int64 if kind == "int" else pl.String
