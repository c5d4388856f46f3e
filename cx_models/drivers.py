"""Driver texts: each customer's strongest churn drivers, from per-feature attributions.

A driver reads ``"days since last purchase = 240 (+0.81)"``: the feature's label,
its value and its signed contribution to the log-odds of churn. A customer's
text joins its ``top`` drivers by ``"; "``, strongest first; a zero
contribution is left out.

Values are written for people: ``missing`` for NaN; whole numbers, and anything
of 100 or more, as integers with thousands separators (``1,234``); smaller
values to three significant digits without trailing zeros (``23.5``,
``0.0123``), at most six decimals. Every number is rounded once, in NumPy; a
few customers (the REST API) are written in plain Python, many (batch jobs) in
polars, outside the GIL — both from the same rounded parts, so the texts are
identical.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

__all__ = ["driver_texts", "format_values"]

#: Up to this many customers, texts are written in plain Python.
FEW = 256
# |values| from here on are written with Python's "%.3g" (no integer holds them)
_HUGE = 1e15
_MAX_DECIMALS = 6


def _parts(values: np.ndarray) -> dict[str, np.ndarray]:
    """Round each value once: sign, integer part, decimal digits and their count."""
    v = np.asarray(values, dtype=float)
    magnitude = np.abs(v)
    plain = np.isfinite(v) & (magnitude < _HUGE)
    a = np.where(plain, magnitude, 0.0)
    with np.errstate(divide="ignore"):
        exponent = np.floor(np.log10(np.where(a > 0, a, 1.0)))
    # three significant digits: none after the point from 100 on, nor for whole numbers
    decimals = np.where(a == np.floor(a), 0, np.clip(2 - exponent, 0, _MAX_DECIMALS))
    decimals = decimals.astype(np.int64)
    scale = 10**decimals
    scaled = np.rint(a * scale).astype(np.int64)
    whole, digits = np.divmod(scaled, scale)
    return {
        "plain": plain,
        "negative": (v < 0) & (scaled > 0),
        "whole": whole,
        "digits": digits,
        "decimals": decimals,
    }


def _special(value: float) -> str:
    return "missing" if np.isnan(value) else f"{value:.3g}"


def format_values(values) -> list[str]:
    """Format feature values for driver texts (plain Python; see the module docstring).

    Examples
    --------
    >>> format_values([240.0, 1234.56, 23.456, 0.012345, 0.5, -2.0, float("nan"), 99.96])
    ['240', '1,235', '23.5', '0.0123', '0.5', '-2', 'missing', '100']
    """
    values = np.asarray(values, dtype=float)
    p = _parts(values)
    out = []
    for i in range(values.size):
        if not p["plain"][i]:
            out.append(_special(values[i]))
            continue
        text = f"{int(p['whole'][i]):,}"
        places = int(p["decimals"][i])
        if places:
            fraction = str(int(p["digits"][i])).zfill(places).rstrip("0")
            if fraction:
                text += "." + fraction
        out.append("-" + text if p["negative"][i] else text)
    return out


def _thousands(whole: np.ndarray) -> pl.Series:
    """Whole numbers with thousands separators: groups of three, leading zeros stripped."""
    n = pl.Series("whole", whole)
    groups = [((n // 10 ** (3 * k)) % 1000).cast(pl.String).str.zfill(3) for k in range(4, -1, -1)]
    return pl.select(pl.concat_str(groups, separator=",").str.strip_chars_start("0,")).to_series()


def _format_many(values: np.ndarray) -> pl.Series:
    """:func:`format_values` as polars computations over many values."""
    p = _parts(values)
    integer = pl.Series("integer", p["whole"]).cast(pl.String)
    big = np.flatnonzero(p["whole"] >= 1000)  # only these need separators
    if big.size:
        integer = integer.scatter(big, _thousands(p["whole"][big]))
    frame = pl.DataFrame(
        [integer, *(pl.Series(k, p[k]) for k in ("negative", "digits", "decimals"))]
    )
    fraction = (
        pl.col("digits").cast(pl.String).str.zfill(pl.col("decimals")).str.strip_chars_end("0")
    )
    text = pl.concat_str(
        [
            pl.when(pl.col("negative")).then(pl.lit("-")).otherwise(pl.lit("")),
            pl.col("integer"),
            pl.when(fraction != "").then(pl.lit(".") + fraction).otherwise(pl.lit("")),
        ]
    )
    out = frame.select(text.alias("value")).to_series()
    missing = np.flatnonzero(np.isnan(values))
    if missing.size:
        out = out.scatter(missing, "missing")
    special = np.flatnonzero(~p["plain"] & ~np.isnan(values))
    if special.size:  # infinities and huge values: rare, in Python
        out = out.scatter(special, [_special(values[i]) for i in special])
    return out


def _cents(contrib: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether each contribution is negative, and its size in whole hundredths (rounded once)."""
    contrib = np.asarray(contrib, dtype=float)
    return contrib < 0, np.rint(np.abs(contrib) * 100).astype(np.int64)


def _top(contrib: np.ndarray, top: int) -> np.ndarray:
    """Column indices of each row's ``top`` largest |contribution|, strongest first.

    Ties go to the earlier feature; a few argmax passes beat a partition of every row.
    """
    strength = np.abs(contrib)
    every = np.arange(len(contrib))
    picks = []
    for _ in range(top):
        best = strength.argmax(axis=1)
        picks.append(best)
        strength[every, best] = -1.0
    return np.column_stack(picks)


def _is_none(values: np.ndarray) -> np.ndarray:
    """Return where an object array holds None."""
    return np.frompyfunc(lambda v: v is None, 1, 1)(values).astype(bool)


def _level_names(shown: np.ndarray, features: np.ndarray, levels: dict[int, list[str]]):
    """Return the level of each shown categorical value (None where numeric)."""
    names = np.full(shown.shape, None, dtype=object)
    for j, names_j in levels.items():
        at = np.flatnonzero(features == j)
        codes = shown[at]
        known = ~np.isnan(codes)
        text = np.full(at.size, "missing", dtype=object)
        text[known] = np.asarray(names_j, dtype=object)[codes[known].astype(np.int64)]
        names[at] = text
    return names


def driver_texts(
    contrib: np.ndarray,
    values: np.ndarray,
    labels: list[str],
    top: int = 3,
    levels: dict[int, list[str]] | None = None,
):
    """Return each row's driver text as a pyarrow string array.

    Parameters
    ----------
    contrib : numpy.ndarray
        Attributions, shape (customers, features), without the bias column.
    values : numpy.ndarray
        The feature values the model saw, same shape.
    labels : list of str
        A readable label per feature column.
    top : int
        Drivers per customer.
    levels : dict, optional
        For categorical features, by column position: their levels (the values
        are level positions; a missing one reads ``missing``).

    Examples
    --------
    >>> contrib = np.array([[0.81, -0.4, 0.0], [0.0, 0.0, 0.0]])
    >>> values = np.array([[240.0, 3.0, 1.0], [1.0, 2.0, 3.0]])
    >>> driver_texts(contrib, values, ["days since last purchase", "latest NPS", "x"]).to_pylist()
    ['days since last purchase = 240 (+0.81); latest NPS = 3 (-0.40)', '']
    """
    n, k = contrib.shape
    top = min(top, k)
    if n == 0 or top == 0:
        return pa.array([""] * n, type=pa.string())
    pick = _top(contrib, top)
    rows = np.arange(n)[:, None]
    # slot by slot (column-major): slot s holds rows s*n .. (s+1)*n - 1
    chosen = contrib[rows, pick].ravel(order="F")
    shown = values[rows, pick].ravel(order="F").astype(float)
    negative, cents = _cents(chosen)
    named = _level_names(shown, pick.ravel(order="F"), levels) if levels else None
    if n <= FEW:  # a few customers (the API): plain Python beats building frames
        written = format_values(shown)
        if named is not None:
            written = [w if t is None else t for w, t in zip(written, named, strict=True)]
        label = [labels[j] for j in pick.ravel(order="F")]
        signs = ["-" if neg else "+" for neg in negative]
        pieces = [
            f"{label[i]} = {written[i]} ({signs[i]}{cents[i] // 100}.{cents[i] % 100:02d})"
            if chosen[i] != 0
            else None
            for i in range(n * top)
        ]
        texts = ["; ".join(p for p in pieces[i::n] if p is not None) for i in range(n)]
        return pa.array(texts, type=pa.string())
    frame = pl.DataFrame(
        {
            "label": pl.Series(labels, dtype=pl.String).gather(pick.ravel(order="F")),
            "value": _format_many(shown) if named is None else pl.Series(
                np.where(_is_none(named), _format_many(shown).to_numpy(), named),
                dtype=pl.String,
            ),
            "negative": negative,
            "cents": cents,
            "keep": chosen != 0,
        }
    )
    cents = pl.col("cents")
    piece = frame.select(
        pl.when(pl.col("keep")).then(
            pl.concat_str(
                [
                    pl.col("label"),
                    pl.lit(" = "),
                    pl.col("value"),
                    pl.lit(" ("),
                    pl.when(pl.col("negative")).then(pl.lit("-")).otherwise(pl.lit("+")),
                    (cents // 100).cast(pl.String),
                    pl.lit("."),
                    (cents % 100).cast(pl.String).str.zfill(2),
                    pl.lit(")"),
                ]
            )
        )
    ).to_series()
    slots = pl.DataFrame({f"slot{s}": piece.slice(s * n, n) for s in range(top)})
    joined = slots.select(pl.concat_str(pl.all(), separator="; ", ignore_nulls=True))
    return joined.to_series().fill_null("").to_arrow().cast(pa.string())
