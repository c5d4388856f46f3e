"""Time-invariant covariates in BG/NBD, MBG/NBD and Pareto/NBD.

Fader & Hardie, "Incorporating time-invariant covariates into the Pareto/NBD and
BG/NBD models" (2007): each customer's scale parameters move with their
covariates, the shape parameters stay common,

* purchase covariates ``z₁`` (every model): ``α = α₀ · exp(−β₁ᵀz₁)``, so a positive
  coefficient means more frequent purchases;
* dropout covariates ``z₂`` — Pareto/NBD: ``β = β₀ · exp(−β₂ᵀz₂)`` (a positive
  coefficient: a higher dropout rate); BG/NBD and MBG/NBD:
  ``a = a₀ · exp(γ₁ᵀz₂)``, ``b = b₀ · exp(γ₂ᵀz₂)`` (the mean dropout probability
  ``a / (a + b)`` rises with ``γ₁`` and falls with ``γ₂``).

Covariates are the customer's attributes or values fixed at acquisition (the
channel, the first order's amount) — never columns derived from the purchase
history being modelled. They are columns of the feature table: numeric (booleans
count as 0/1) or categorical — text columns, whose levels the fit learns
(:meth:`Covariates.learn`: the most frequent level is the reference, the next
:data:`MAX_LEVELS` - 1 each get an indicator ``"column=level"``; rarer, unseen or
missing values count as the reference). ``params_`` then holds
``α₀, β₀, a₀, b₀`` (the parameters of a customer whose covariates are all 0) and
``coefficients_`` the slopes, by block (``purchase``; ``dropout`` or
``dropout_a`` and ``dropout_b``) and column.

The fit maximises the likelihood with its analytic gradient (the chain rule
through the per-customer parameters) on covariates centred and scaled by the
fit (the estimates are then transformed back), starting from the model without
covariates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl

from cx_models.columns import as_float
from cx_models.errors import CXDataError
from cx_models.models._families import family

__all__ = [
    "MAX_LEVELS",
    "Covariates",
    "blocks",
    "covariate_matrix",
    "customer_params",
    "theta",
    "with_theta",
]

#: A categorical covariate keeps at most this many levels (the reference included).
MAX_LEVELS = 10

#: Per model: (block, index of the parameter it moves, sign of the exponent, covariate group).
_LINKS = {
    "bgnbd": (("purchase", 1, -1.0, "purchase"), ("dropout_a", 2, 1.0, "dropout"),
              ("dropout_b", 3, 1.0, "dropout")),
    "pnbd": (("purchase", 1, -1.0, "purchase"), ("dropout", 3, -1.0, "dropout")),
}
_LINKS["mbgnbd"] = _LINKS["bgnbd"]


@dataclass(frozen=True)
class Covariates:
    """Which feature-table columns move purchase rates and which move dropout.

    Parameters
    ----------
    purchase : tuple of str
        Columns ``z₁`` of the purchase process.
    dropout : tuple of str
        Columns ``z₂`` of the dropout process. A column may be in both.
    levels : tuple of (column, levels)
        The categorical columns and their levels, the reference first; set by
        :meth:`learn` (empty until then).

    Examples
    --------
    >>> Covariates(purchase=("web",), dropout=("web", "first_amount")).columns
    ('web', 'first_amount')
    >>> cov = Covariates(dropout=("plan",)).learn(pd.DataFrame({"plan": ["a", "b", "a", "c"]}))
    >>> cov.levels, cov.columns
    ((('plan', ('a', 'b', 'c')),), ('plan=b', 'plan=c'))
    >>> Covariates()
    Traceback (most recent call last):
    ...
    cx_models.errors.CXDataError: covariates: name at least one purchase or dropout column
    """

    purchase: tuple[str, ...] = ()
    dropout: tuple[str, ...] = ()
    levels: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __post_init__(self):
        for group in ("purchase", "dropout"):
            names = getattr(self, group)
            names = (names,) if isinstance(names, str) else tuple(names)
            object.__setattr__(self, group, names)
            if any(not isinstance(c, str) or not c for c in names):
                raise CXDataError(f"covariates: {group} columns must be non-empty names")
            if len(set(names)) != len(names):
                raise CXDataError(f"covariates: {group} names a column twice: {list(names)}")
        if not self.purchase and not self.dropout:
            raise CXDataError("covariates: name at least one purchase or dropout column")
        object.__setattr__(
            self, "levels", tuple((str(c), tuple(map(str, lv))) for c, lv in self.levels)
        )

    @property
    def inputs(self) -> tuple[str, ...]:
        """The feature-table columns read, each once, purchase columns first."""
        return tuple(dict.fromkeys(self.purchase + self.dropout))

    @property
    def columns(self) -> tuple[str, ...]:
        """The model's covariates: numeric inputs, and an indicator per non-reference level."""
        return self.terms(self.inputs)

    def terms(self, names) -> tuple[str, ...]:
        """Return the covariates of the input columns ``names`` (categorical ones expanded)."""
        levels = dict(self.levels)
        return tuple(
            t
            for name in names
            for t in ([f"{name}={lv}" for lv in levels[name][1:]] if name in levels else [name])
        )

    def learn(self, features) -> Covariates:
        """Return these covariates with the levels of their text columns learnt on ``features``.

        Levels by number of customers (ties in text order), the most frequent the
        reference; at most :data:`MAX_LEVELS`. Learnt once: a model keeps its levels.
        """
        if self.levels:
            return self
        if isinstance(features, pl.DataFrame):
            features = features.select([c for c in self.inputs if c in features.columns])
            features = features.to_pandas()
        found = []
        for name in self.inputs:
            if name not in features.columns or not _text(features[name]):
                continue
            text = features[name].dropna().astype(str).str.strip()
            counts = text[text != ""].value_counts()
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            if len(ranked) < 2:
                raise CXDataError(
                    f"features: covariate column {name!r} takes one value for every customer, so "
                    "its effect cannot be told apart from the base rate; drop it"
                )
            found.append((name, tuple(level for level, _ in ranked[:MAX_LEVELS])))
        return self if not found else Covariates(self.purchase, self.dropout, tuple(found))

    def to_dict(self) -> dict:
        """Return the settings as JSON-serialisable data."""
        out = {"purchase": list(self.purchase), "dropout": list(self.dropout)}
        if self.levels:
            out["levels"] = {name: list(levels) for name, levels in self.levels}
        return out

    @classmethod
    def coerce(cls, value) -> Covariates | None:
        """``None``, a :class:`Covariates` or its :meth:`to_dict` mapping."""
        if value is None or isinstance(value, Covariates):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {"purchase", "dropout", "levels"}
            if unknown:
                raise CXDataError(
                    f"covariates: unknown key(s) {sorted(unknown)}; expected purchase, dropout"
                )
            levels = tuple((k, tuple(v)) for k, v in (value.get("levels") or {}).items())
            return cls(tuple(value.get("purchase", ())), tuple(value.get("dropout", ())), levels)
        raise CXDataError(
            f"covariates must be a Covariates or a mapping, got {type(value).__name__}"
        )


def blocks(model: str, covariates: Covariates):
    """Return the model's coefficient blocks: ``[(block, param index, sign, columns), ...]``."""
    if model not in _LINKS:
        raise CXDataError(
            f"covariates work with bgnbd, mbgnbd and pnbd; model {model!r} takes none"
        )
    out = []
    for name, index, sign, group in _LINKS[model]:
        columns = covariates.terms(getattr(covariates, group))
        if columns:
            out.append((name, index, sign, columns))
    return out


def _text(column) -> bool:
    kind = column.dtype
    return (
        pd.api.types.is_string_dtype(kind)
        or pd.api.types.is_object_dtype(kind)
        or isinstance(kind, pd.CategoricalDtype)
    )


def _numeric(column) -> bool:
    return pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


def covariate_matrix(features, covariates: Covariates, *, source: str = "features"):
    """Return the covariate columns of a feature table as a float matrix (customers, columns).

    Errors name the column: missing, not numeric, or with missing values.

    Examples
    --------
    >>> import pandas as pd
    >>> covariate_matrix(pd.DataFrame({"web": [True, False]}), Covariates(("web",))).tolist()
    [[1.0], [0.0]]
    """
    if isinstance(features, pl.DataFrame):
        features = features.to_pandas()
    inputs = covariates.inputs
    missing = [c for c in inputs if c not in features.columns]
    if missing:
        raise CXDataError(
            f"{source}: covariate column(s) {', '.join(map(repr, missing))} missing; the model "
            f"was given covariates {list(inputs)}"
        )
    levels = dict(covariates.levels)
    parts = []
    for col in inputs:
        column = features[col]
        if col in levels:  # indicators of the non-reference levels; anything else: reference
            text = column.astype("string").str.strip().fillna("")
            parts.extend((text == lv).to_numpy(dtype=float) for lv in levels[col][1:])
            continue
        if not _numeric(column):
            raise CXDataError(
                f"{source}: covariate column {col!r} must be numeric (booleans count as 0/1) "
                "or text learnt as categories when the model is fitted"
            )
        values = as_float(column.astype(float) if pd.api.types.is_bool_dtype(column) else column)
        bad = ~np.isfinite(values)
        if bad.any():
            raise CXDataError(
                f"{source}: covariate column {col!r} has {int(bad.sum()):,} missing or "
                "non-finite values; fill or drop those customers"
            )
        parts.append(values)
    if not parts:
        return np.empty((len(features), 0))
    return np.column_stack(parts)


def _index(covariates: Covariates, columns) -> list[int]:
    return [covariates.columns.index(c) for c in columns]


def customer_params(model, features, *, source: str = "features") -> tuple:
    """Return each customer's transaction parameters (arrays where covariates move them).

    ``model`` is a fitted :class:`~cx_models.models.clv.CLVModel` with covariates.
    """
    cov = model.covariates
    Z = covariate_matrix(features, cov, source=source)
    base = [model.params_[k] for k in family(model.model).params]
    params = list(base)
    for name, index, sign, columns in blocks(model.model, cov):
        slope = np.array([model.coefficients_[name][c] for c in columns])
        params[index] = params[index] * np.exp(sign * (Z[:, _index(cov, columns)] @ slope))
    return tuple(params)


def theta(model) -> np.ndarray:
    """Return the log-parameters followed by the coefficients (the covariance's order)."""
    names = family(model.model).params
    values = [np.log(model.params_[k]) for k in names]
    for name, _, _, columns in blocks(model.model, model.covariates):
        values.extend(model.coefficients_[name][c] for c in columns)
    return np.array(values, dtype=float)


def with_theta(model, vector) -> None:
    """Set ``params_`` and ``coefficients_`` from a vector in :func:`theta`'s order."""
    names = family(model.model).params
    vector = np.asarray(vector, dtype=float)
    model.params_ = dict(zip(names, map(float, np.exp(vector[: len(names)])), strict=True))
    at = len(names)
    coefficients = {}
    for name, _, _, columns in blocks(model.model, model.covariates):
        coefficients[name] = dict(zip(columns, map(float, vector[at:at + len(columns)]),
                                      strict=True))
        at += len(columns)
    model.coefficients_ = coefficients
