"""Customer attributes: one row per customer of static columns (region, plan, channel, …).

:func:`validate_attributes` reads an attributes input (CSV, Parquet, a frame or a
database table) with the contracts of the event inputs: a report whose counts
satisfy ``rows_in = rows_used + rows_quarantined`` (attributes have no time, so
nothing is after as_of), the rejected rows in the quarantine with one reason
each (``missing_customer_id``; ``duplicate_customer_id`` for every row of an id
given more than once, since which one is right cannot be told), and ids of the
same type as the transactions'.

Each column is **numeric** or **categorical**: declared categorical
(:class:`AttributeSpec` ``categorical=``, ``--categorical region,plan``), else
numeric when the column has a numeric type or every non-empty cell reads as a
finite number, else categorical. Numeric cells become ``Float64`` (empty: null),
categorical cells stripped text (empty: null).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from cx_models.errors import CXDataError
from cx_models.quarantine import ValidationReport

__all__ = [
    "ATTRIBUTE_REASONS",
    "AttributeInput",
    "AttributeSpec",
    "ValidatedAttributes",
    "join_attributes",
    "validate_attributes",
]

#: Why an attributes row is quarantined.
ATTRIBUTE_REASONS = {
    "missing_customer_id": "the customer id is empty",
    "duplicate_customer_id": "the customer id is on more than one row (every such row)",
}
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


@dataclass(frozen=True)
class AttributeSpec:
    """How to read an attributes input.

    Parameters
    ----------
    customer : str
        The customer id column.
    categorical : tuple of str
        Columns declared categorical; the others are inferred (module docstring).

    Examples
    --------
    >>> AttributeSpec(categorical=["region"]).categorical
    ('region',)
    """

    customer: str = "customer_id"
    categorical: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self):
        object.__setattr__(self, "categorical", tuple(self.categorical))


@dataclass
class ValidatedAttributes:
    """The attributes kept (``customer_id`` first), each column's kind, and the report."""

    data: pl.DataFrame
    kinds: dict[str, str]
    report: ValidationReport

    @property
    def categorical(self) -> list[str]:
        """The categorical columns."""
        return [c for c, k in self.kinds.items() if k == "categorical"]

    def without_purchase(self, ids: pl.Series) -> int:
        """Count the customers with attributes but no row in ``ids`` (no purchase)."""
        known = self.data["customer_id"]
        return int((~known.is_in(ids.cast(known.dtype, strict=False).implode())).sum())


@dataclass(frozen=True)
class AttributeInput:
    """An attributes input and how to read it (:class:`AttributeSpec`).

    Examples
    --------
    >>> AttributeInput.of("attrs.csv").spec.categorical
    ()
    """

    source: object
    spec: AttributeSpec = field(default_factory=AttributeSpec)

    @classmethod
    def of(cls, value) -> AttributeInput:
        """Return ``value`` as an input (a bare path or frame: the default spec)."""
        return value if isinstance(value, AttributeInput) else cls(value)

    def validate(self, *, id_dtype=None, reserved=()) -> ValidatedAttributes:
        """Validate the input (see :func:`validate_attributes`)."""
        return validate_attributes(self.source, self.spec, id_dtype=id_dtype, reserved=reserved)


def join_attributes(features: pl.DataFrame, attributes: pl.DataFrame) -> pl.DataFrame:
    """Left-join validated attribute columns after a feature table's own, by ``customer_id``."""
    ids = features["customer_id"].dtype
    if attributes["customer_id"].dtype != ids:
        attributes = attributes.with_columns(pl.col("customer_id").cast(ids, strict=False))
    return features.join(attributes, on="customer_id", how="left", maintain_order="left")


def _kind(series: pl.Series, declared: bool) -> str:
    if declared:
        return "categorical"
    if series.dtype.is_numeric() and series.dtype != pl.Boolean:
        return "numeric"
    if series.dtype not in (pl.String, pl.Categorical, pl.Enum):
        return "categorical"
    text = series.cast(pl.String).str.strip_chars()
    present = text.filter(text.is_not_null() & (text.str.len_chars() > 0))
    if not present.len() or not bool(present.str.contains(_NUMBER).all()):
        return "categorical"
    return "numeric"


def _values(series: pl.Series, kind: str) -> pl.Series:
    if kind == "numeric":
        values = series.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
        return values.fill_nan(None)
    text = series.cast(pl.String).str.strip_chars()
    return pl.select(pl.when(text.str.len_chars() == 0).then(None).otherwise(text)).to_series()


def validate_attributes(
    data, spec: AttributeSpec | None = None, *, reserved=(), id_dtype=None
) -> ValidatedAttributes:
    """Validate a customer attributes input (see the module docstring).

    Parameters
    ----------
    data : path, DatabaseSource or DataFrame
        ``customer_id`` plus any columns.
    spec : AttributeSpec, optional
        The id column and the declared categorical columns.
    reserved : iterable of str
        Column names an attribute may not take (the feature table's own).
    id_dtype : polars type, optional
        The id type of the transactions, imposed on the attributes' ids.

    Examples
    --------
    >>> raw = pl.DataFrame({"customer_id": [1, 2, 2, None], "region": ["N", "S", "E", "W"],
    ...                     "age": ["31", "", "40", "22"]})
    >>> v = validate_attributes(raw)
    >>> v.kinds, v.data.rows(), v.report.reasons
    ({'region': 'categorical', 'age': 'numeric'}, [(1, 'N', 31.0)], \
{'duplicate_customer_id': 2, 'missing_customer_id': 1})
    """
    from cx_models.cells import customer_ids, require_scalar_columns
    from cx_models.io import read_input

    spec = spec or AttributeSpec()
    raw, source = read_input(data, what="attributes")
    if spec.customer not in raw.columns:
        raise CXDataError(
            f"{source}: no customer id column {spec.customer!r} in the attributes (columns: "
            f"{', '.join(raw.columns)})"
        )
    columns = [c for c in raw.columns if c != spec.customer]
    unknown = [c for c in spec.categorical if c not in columns]
    if unknown:
        raise CXDataError(
            f"{source}: --categorical names {', '.join(map(repr, unknown))}, not columns of the "
            f"attributes ({', '.join(columns) or 'none'})"
        )
    clash = [c for c in columns if c in set(reserved) or c.lower() == "customer_id"]
    if clash:
        raise CXDataError(
            f"{source}: attribute column(s) {', '.join(map(repr, clash))} have the name of a "
            "feature; rename them"
        )
    require_scalar_columns(raw.schema, source, {c: (c, "--attributes") for c in columns})
    ids = customer_ids(raw[spec.customer], source, spec.customer, force=id_dtype)
    missing = ids.is_null()
    counts = ids.to_frame("id").with_columns(pl.len().over("id").alias("n"))["n"]
    duplicate = ~missing & (counts > 1)
    reason = (
        pl.select(
            pl.when(pl.lit(missing)).then(pl.lit("missing_customer_id"))
            .when(pl.lit(duplicate)).then(pl.lit("duplicate_customer_id"))
            .otherwise(None)
        ).to_series().alias("reason")
    )
    bad = reason.is_not_null()
    rows = pl.Series("row", range(raw.height), dtype=pl.Int64)
    quarantine = pl.DataFrame(
        {"source": pl.Series(["attributes"] * int(bad.sum()), dtype=pl.String)}
    ).with_columns(
        rows.filter(bad), reason.filter(bad),
        *[raw[c].filter(bad).cast(pl.String) for c in raw.columns],
    )
    kinds = {c: _kind(raw[c], c in spec.categorical) for c in columns}
    kept = pl.DataFrame([ids.alias("customer_id")] + [
        _values(raw[c], kinds[c]).alias(c) for c in columns
    ]).filter(~bad)
    tally = reason.filter(bad).value_counts()
    report = ValidationReport(
        source=source,
        kind="attributes",
        rows_in=raw.height,
        rows_used=kept.height,
        rows_quarantined=int(bad.sum()),
        rows_after_as_of=0,
        duplicate_rows=int(duplicate.sum()),
        reasons={r: int(n) for r, n in sorted(tally.iter_rows(), key=lambda rn: (-rn[1], rn[0]))},
        quarantine=quarantine,
    )
    assert report.rows_in == report.rows_used + report.rows_quarantined
    return ValidatedAttributes(data=kept, kinds=kinds, report=report)
