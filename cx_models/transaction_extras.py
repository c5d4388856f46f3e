"""Extra transaction columns as per-customer features: quantities, channels, categories.

A transactions export often carries more than the amount: the number of items
(CDNOW's ``cds``), a sales channel, a product category. Declared with
:class:`TransactionExtras` (``--tx-numeric quantity --tx-categorical channel``),
each becomes per-customer aggregates computed like every other feature: from
the transactions at or before the cutoff only (leakage-safe), per purchase
*occasion* (a customer's calendar day).

* A **numeric** column ``q`` (any finite number; an empty cell is missing): an
  occasion's value is the sum over its rows (missing when all are empty), and
  ``q_sum`` / ``q_mean`` are the sum and the mean per occasion over the whole
  history, ``q_sum_{w}d`` / ``q_mean_{w}d`` over the last ``w`` days for the
  windows of 30, 90 and 180 days. A sum over no value is 0, a mean over none is
  missing (NaN).
* A **categorical** column ``c`` (stripped text; an empty cell counts for no
  level): the :data:`MAX_LEVELS` most frequent levels, counted in occasions
  (ties in text order), are learnt once — on the training data at the model's
  cutoff, so every snapshot and every scoring run uses the same levels — and
  ``c_share_<level>`` is the share of the customer's occasions with that level,
  ``c_share_other`` the share with any other level (a level first seen at
  scoring time is ``other``). Shares need not add up to 1: one occasion may
  hold several levels.

Column names from levels are lower case with every run of other characters
than ``a-z0-9`` turned into ``_`` (``"Mail order"`` → ``channel_share_mail_order``);
two levels with the same name get ``_2``, ``_3``, ….

Examples
--------
>>> import datetime as dt
>>> tx = pl.DataFrame({
...     "customer_id": [1, 1, 1, 2],
...     "timestamp": [dt.datetime(2024, 1, d) for d in (1, 1, 20, 5)],
...     "amount": [10.0, 5.0, 8.0, 3.0],
...     "cds": [2.0, 1.0, 4.0, None],
...     "channel": ["web", "store", "web", "web"]})
>>> extras = TransactionExtras(numeric=["cds"], categorical=["channel"]).learn(tx)
>>> extras.levels
(('channel', ('web', 'store')),)
>>> f = extras.features(tx, as_of=dt.date(2024, 1, 31))
>>> f.select("customer_id", "cds_sum", "cds_mean", "cds_sum_30d", "channel_share_store").rows()
[(1, 7.0, 3.5, 4.0, 0.5), (2, None, None, 0.0, 0.0)]
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import polars as pl

from cx_models.contract import WINDOWS_DAYS
from cx_models.errors import CXDataError

__all__ = ["MAX_LEVELS", "TransactionExtras"]

#: The most frequent levels of a categorical column that get a share each.
MAX_LEVELS = 10
#: Names the validated transactions already use: an extra column cannot take them.
_CANONICAL = ("customer_id", "timestamp", "amount")


def _names(value, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    names = tuple(str(v).strip() for v in value if str(v).strip())
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise CXDataError(f"{what} names {', '.join(repeated)} more than once")
    return names


def _slug(level: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", level.lower()).strip("_") or "level"


@dataclass(frozen=True)
class TransactionExtras:
    """Which extra transaction columns become features, and the levels learnt for them.

    Parameters
    ----------
    numeric : sequence of str
        Numeric columns (``--tx-numeric``), by their name in the export.
    categorical : sequence of str
        Categorical columns (``--tx-categorical``).
    levels : tuple of (column, levels)
        The levels of each categorical column, most frequent first; set by
        :meth:`learn` (empty until then).

    Examples
    --------
    >>> TransactionExtras(numeric="quantity, weight").numeric
    ('quantity', 'weight')
    >>> TransactionExtras(numeric=["x"], categorical=["x"])
    Traceback (most recent call last):
    ...
    cx_models.errors.CXDataError: transaction column x is declared both numeric \
(--tx-numeric) and categorical (--tx-categorical)
    """

    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    levels: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    def __post_init__(self):
        numeric = _names(self.numeric, "--tx-numeric")
        categorical = _names(self.categorical, "--tx-categorical")
        object.__setattr__(self, "numeric", numeric)
        object.__setattr__(self, "categorical", categorical)
        both = sorted(set(numeric) & set(categorical))
        if both:
            raise CXDataError(
                f"transaction column {', '.join(both)} is declared both numeric (--tx-numeric) "
                "and categorical (--tx-categorical)"
            )
        taken = sorted(set(numeric + categorical) & set(_CANONICAL))
        if taken:
            raise CXDataError(
                f"an extra transaction column cannot be named {', '.join(taken)} (the validated "
                "transactions' own columns): rename it in the export or a query"
            )
        levels = tuple((str(c), tuple(str(v) for v in lv)) for c, lv in (self.levels or ()))
        object.__setattr__(self, "levels", levels)

    def __bool__(self) -> bool:
        return bool(self.numeric or self.categorical)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every declared column, numeric first."""
        return self.numeric + self.categorical

    @property
    def learnt(self) -> bool:
        """Whether every categorical column has its levels."""
        return {c for c, _ in self.levels} == set(self.categorical)

    def flags(self) -> dict[str, str]:
        """Map each declared column to its command-line flag."""
        return {**dict.fromkeys(self.numeric, "--tx-numeric"),
                **dict.fromkeys(self.categorical, "--tx-categorical")}

    def declaration(self) -> str:
        """Return the command-line flags that declare these columns (``--tx-numeric q``)."""
        return " ".join(
            f"{flag} {','.join(cols)}"
            for flag, cols in (("--tx-numeric", self.numeric),
                               ("--tx-categorical", self.categorical))
            if cols
        )

    def check_columns(self, columns, source: str, roles) -> dict[str, str]:
        """Refuse declared columns that are missing or are the id, time or amount column.

        Returns each declared column's flag. ``columns``: the export's column names;
        ``roles``: its customer, time and amount columns (name → role).
        """
        flags = self.flags()
        for column, flag in flags.items():
            if column in roles:
                raise CXDataError(
                    f"{source}: column {column!r} is the transactions' {roles[column]} column; "
                    f"it cannot also be an extra column ({flag})"
                )
            if column not in columns:
                found = ", ".join(repr(c) for c in columns if not c.startswith("__"))
                raise CXDataError(
                    f"{source}: column {column!r} ({flag}, declared for the features) is "
                    f"missing; found columns: {found}"
                )
        return flags

    def validate(self, raw: pl.DataFrame, source: str, roles) -> tuple[list, list]:
        """Read the declared columns of a raw transactions export.

        Returns the canonical columns (Float64 numeric, stripped text categorical)
        and the quarantine checks ``(reason, mask)`` of their cells. ``roles`` are
        the export's customer, time and amount columns, which cannot be extras.
        """
        from cx_models.cells import numbers, require_scalar_columns, text_cells
        from cx_models.contract import MAX_AMOUNT

        flags = self.check_columns(raw.columns, source, roles)
        require_scalar_columns(raw.schema, source, {c: (c, f) for c, f in flags.items()})
        columns, checks = [], []
        for q in self.numeric:
            values, text = numbers(raw[q], source, q, "--tx-numeric")
            present = values.is_not_null()
            finite = values.is_finite().fill_null(False)
            checks += [
                ("non_numeric_extra", text | (present & ~finite)),
                ("extra_too_large", finite & (values.fill_nan(0.0).abs() > MAX_AMOUNT)),
            ]
            columns.append(values.alias(q))
        for c in self.categorical:
            columns.append(text_cells(raw[c]).alias(c))
        return columns, checks

    def level_names(self, column: str) -> list[tuple[str, str]]:
        """Return (level, feature name) of a categorical column's learnt levels (none yet: [])."""
        levels = dict(self.levels).get(column, ())
        out, seen = [], set()
        for level in levels:
            name = f"{column}_share_{_slug(level)}"
            k = 2
            while name in seen or name == f"{column}_share_other":
                name, k = f"{column}_share_{_slug(level)}_{k}", k + 1
            seen.add(name)
            out.append((level, name))
        return out

    def feature_names(self) -> list[str]:
        """Return the feature columns these extras add, in output order."""
        names = []
        for q in self.numeric:
            names += [f"{q}_sum", f"{q}_mean"]
            for w in WINDOWS_DAYS:
                names += [f"{q}_sum_{w}d", f"{q}_mean_{w}d"]
        for c in self.categorical:
            names += [name for _, name in self.level_names(c)] + [f"{c}_share_other"]
        return names

    def learn(self, transactions: pl.DataFrame) -> TransactionExtras:
        """Return these extras with the levels of ``transactions`` (already cut at as_of).

        Levels already learnt are kept, so a trained model's levels never change.
        """
        if self.learnt:
            return self
        known = dict(self.levels)
        occasions = transactions.select(
            pl.col("customer_id"), pl.col("timestamp").dt.date().alias("_day"),
            *[pl.col(c) for c in self.categorical if c not in known],
        )
        for c in self.categorical:
            if c in known:
                continue
            counts = (
                occasions.select("customer_id", "_day", c).drop_nulls(c).unique()
                .group_by(c).len()
                .sort(["len", c], descending=[True, False])
            )
            known[c] = tuple(counts[c].head(MAX_LEVELS).to_list())
        levels = tuple((c, known[c]) for c in self.categorical)
        return TransactionExtras(numeric=self.numeric, categorical=self.categorical,
                                 levels=levels)

    def features(self, transactions: pl.DataFrame, *, as_of: dt.date) -> pl.DataFrame:
        """Per-customer aggregates of ``transactions`` (already cut at ``as_of``).

        One row per customer of ``transactions``, ``customer_id`` first, then
        :meth:`feature_names`. The categorical levels must be learnt.
        """
        if not self.learnt:
            raise CXDataError("the categorical levels are not learnt: call learn() first")
        missing = [c for c in self.columns if c not in transactions.columns]
        if missing:
            raise CXDataError(
                f"the features need the transaction column(s) {', '.join(missing)} "
                "(--tx-numeric / --tx-categorical), missing here"
            )
        day = pl.col("timestamp").dt.date().cast(pl.Int32)
        as_of_day = as_of.toordinal() - dt.date(1970, 1, 1).toordinal()
        keys = transactions.select(pl.col("customer_id"), day.alias("_day"))
        out = keys.select("customer_id").unique().sort("customer_id")
        if self.numeric:
            out = out.join(self._numeric(transactions, keys, as_of_day), on="customer_id",
                           how="left")
        for c in self.categorical:
            out = out.join(self._shares(transactions, keys, c), on="customer_id", how="left")
        return out.select("customer_id", *self.feature_names())

    def _numeric(self, tx: pl.DataFrame, keys: pl.DataFrame, as_of_day: int) -> pl.DataFrame:
        frame = pl.concat([keys, tx.select(self.numeric)], how="horizontal")
        per_day = frame.group_by("customer_id", "_day").agg(
            *[
                pl.when(pl.col(q).is_not_null().any()).then(pl.col(q).sum()).alias(q)
                for q in self.numeric
            ]
        )
        before = as_of_day - pl.col("_day")
        aggs = []
        for q in self.numeric:
            v = pl.col(q)
            aggs += [
                pl.when(v.is_not_null().any()).then(v.sum()).alias(f"{q}_sum"),
                v.mean().alias(f"{q}_mean"),
            ]
            for w in WINDOWS_DAYS:
                inside = v.filter(before < w)
                aggs += [inside.sum().alias(f"{q}_sum_{w}d"),
                         inside.mean().alias(f"{q}_mean_{w}d")]
        return per_day.group_by("customer_id").agg(aggs)

    def _shares(self, tx: pl.DataFrame, keys: pl.DataFrame, column: str) -> pl.DataFrame:
        named = self.level_names(column)
        other = f"{column}_share_other"
        level = tx[column]
        frame = keys.with_columns(level.alias("_level"))
        n_occasions = keys.unique().group_by("customer_id").len("_n")
        seen = frame.drop_nulls("_level").unique()
        known = [lv for lv, _ in named]
        shares = seen.group_by("customer_id").agg(
            *[(pl.col("_level") == lv).sum().alias(name) for lv, name in named],
            # occasions with any level outside the learnt ones
            pl.col("_day").filter(~pl.col("_level").is_in(known)).n_unique().alias(other),
        )
        names = [name for _, name in named] + [other]
        return (
            n_occasions.join(shares, on="customer_id", how="left")
            .select(
                "customer_id",
                *[(pl.col(n).fill_null(0) / pl.col("_n")).cast(pl.Float64).alias(n)
                  for n in names],
            )
        )

    def to_dict(self) -> dict:
        """JSON-friendly form (saved with the feature definition)."""
        return {
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "levels": {c: list(lv) for c, lv in self.levels},
        }

    @classmethod
    def from_dict(cls, data: dict | None) -> TransactionExtras:
        """Read :meth:`to_dict`'s form."""
        data = data or {}
        return cls(
            numeric=tuple(data.get("numeric", ())),
            categorical=tuple(data.get("categorical", ())),
            levels=tuple((c, tuple(lv)) for c, lv in (data.get("levels") or {}).items()),
        )
