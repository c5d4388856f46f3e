"""The CX scorer: CLV, churn risk, NCO, value at risk and drivers for a customer table.

:class:`CXScorer` bundles a fitted :class:`~cx_models.models.clv.CLVModel`, a fitted
:class:`~cx_models.models.churn.ChurnModel`, the training-time CLV reference for the
value score and the NCO weights. Its output is the **scoring contract**, these
columns first and in this order (:data:`SCORE_COLUMNS`)::

    customer_id, p_alive, expected_purchases, prob_no_purchase, expected_order_value,
    clv, churn_risk, csat_score, nps_score, ces_score, retention_score, value_score,
    experience_score, nco, nco_coverage, value_at_risk, priority_rank, drivers

``churn_risk`` is for the horizon the churn model was trained on;
``expected_purchases`` and ``prob_no_purchase`` use the requested
``horizon_days`` (default: the trained horizon); ``value_score`` always uses CLV at
the trained CLV settings, whatever ``clv_months`` and ``discount_rate`` are asked
for the ``clv`` column (:class:`~cx_models.settings.ScoreParams`).

The scorer carries the :class:`~cx_models.settings.FeatureSpec` it was trained
on: every path that builds features for it from raw events builds them that way,
and a feature table built with another survey look-back is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from cx_models._version import __version__
from cx_models.churn_data import (
    CHURN_CLV_DISCOUNT_RATE,
    CHURN_CLV_MONTHS,
    model_feature_arrays,
)
from cx_models.columns import NumericView, as_float
from cx_models.contract import MAX_FEATURE_VALUE, SCORE_COLUMNS
from cx_models.errors import CXDataError
from cx_models.models.churn import ChurnModel
from cx_models.models.clv import CLVModel
from cx_models.nco import ValueReference, nco_arrays, rank_arrays, validate_weights
from cx_models.settings import FeatureSpec, ScoreParams

__all__ = ["CXScorer", "SCORE_COLUMNS"]

#: The scores whose distribution is watched for drift, beside the churn features.
DRIFT_SCORES = ("churn_risk", "clv", "nco")

# the contract's blocks: CLV outputs, then the NCO block after churn_risk
_CLV_COLUMNS = SCORE_COLUMNS[1:6]
_NCO_COLUMNS = SCORE_COLUMNS[7:17]


@dataclass
class CXScorer:
    """Everything needed to score a customer feature table.

    Examples
    --------
    >>> CXScorer.__name__
    'CXScorer'
    """

    clv: CLVModel
    churn: ChurnModel
    reference: ValueReference
    weights: dict = field(default_factory=lambda: validate_weights(None))
    clv_months: int = 12
    discount_rate: float = 0.10
    feature_spec: FeatureSpec = field(default_factory=FeatureSpec)
    ces_higher_is_better: bool = False
    #: the training-time distribution of each churn feature and score (:mod:`cx_models.drift`)
    drift_reference: dict = field(default_factory=dict)
    #: the day the scorer was trained as of (ISO text; ``None`` for older models)
    trained_as_of: str | None = None
    #: the transaction model whose outputs are the churn model's features, when it is not
    #: ``clv`` (``TrainingConfig.churn_clv_model``; ``None``: ``clv`` itself)
    churn_clv: CLVModel | None = None

    @property
    def feature_clv(self) -> CLVModel:
        """The CLV model whose outputs feed the churn model (``churn_clv`` or ``clv``)."""
        return self.clv if self.churn_clv is None else self.churn_clv

    @property
    def lookback_days(self) -> int:
        """The survey look-back of the features the scorer was trained on, in days."""
        return self.feature_spec.lookback_days

    @property
    def horizon_days(self) -> int:
        """The churn horizon the scorer was trained on, in days."""
        return int(self.churn.horizon_days)

    @property
    def time_unit(self) -> str:
        """The time unit of the CLV model."""
        return self.clv.time_unit_

    def score(
        self, features: pd.DataFrame, params: ScoreParams | None = None, **keywords
    ) -> pd.DataFrame:
        """Score a customer feature table (one row per customer, any time unit).

        ``params`` (or its fields as keywords: ``horizon_days``, ``clv_months``,
        ``discount_rate``, ``explain``) override the trained settings. Returns the
        scoring contract's columns (:data:`SCORE_COLUMNS`), in the input's row order.
        """
        scored, drivers = self.score_deferred(features, params, **keywords)
        scored["drivers"] = drivers().to_pylist()
        return scored

    def score_deferred(
        self, features: pd.DataFrame, params: ScoreParams | None = None, **keywords
    ):
        """Return :meth:`score`'s table with ``drivers`` empty, and a function giving them.

        For batch jobs: the texts (a pyarrow string array) can then be made beside
        the next chunk's scoring.
        """
        columns, drivers = self.score_columns(features, params, **keywords)
        return pd.DataFrame(columns), drivers

    def score_columns(
        self, features: pd.DataFrame, params: ScoreParams | None = None, **keywords
    ):
        """Return :meth:`score_deferred`'s columns as a dict of arrays, without a frame.

        In the contract's order (``drivers`` empty; the intervals after it), with the
        function giving the driver texts: for one customer (the REST API) the frame
        cost more than a third of the scoring.
        """
        if "customer_id" not in features.columns:
            raise CXDataError("the feature table needs a 'customer_id' column")
        if params is None:
            params = ScoreParams(**keywords)
        elif keywords:
            raise TypeError("give params=ScoreParams(...) or its keywords, not both")
        view = NumericView(features)  # each column read once, as arrays
        self.check_features(features, view=view)
        horizon = self.horizon_days if params.horizon_days is None else params.horizon_days
        months = self.clv_months if params.clv_months is None else params.clv_months
        rate = self.discount_rate if params.discount_rate is None else params.discount_rate
        explain = params.explain
        # Arrays throughout, one frame at the end: for one customer (the API) building
        # frames column by column cost more than the models.
        # churn features: CLV outputs at the trained horizon (and the churn features' CLV)
        table, features = features, view
        model_features = model_feature_arrays(
            features, self.feature_clv, horizon_days=self.horizon_days
        )
        churn_risk, drivers = self.churn.predict_and_explain(
            features.with_columns(model_features), explain=explain, defer=True
        )
        # the CLV model's own outputs at the churn features' settings are those features
        feature_settings = (
            (CHURN_CLV_MONTHS, CHURN_CLV_DISCOUNT_RATE) if self.churn_clv is None else None
        )
        if horizon == self.horizon_days and (months, rate) == feature_settings:
            clv_part = model_features  # already computed for the churn model
        else:
            clv_part = self.clv.predict_arrays(
                features, horizon_days=horizon, clv_months=months, discount_rate=rate
            )
        # the value score always uses CLV at the trained settings (those of the reference)
        trained = (self.clv_months, self.discount_rate)
        if trained == feature_settings:
            value_clv = model_features["clv"]
        elif trained == (months, rate):
            value_clv = clv_part["clv"]
        else:
            value_clv = self.clv.predict_arrays(
                features,
                horizon_days=horizon,
                clv_months=self.clv_months,
                discount_rate=self.discount_rate,
            )["clv"]
        churn_risk = np.asarray(churn_risk, dtype=np.float64)
        surveys = ("csat_latest", "nps_latest", "ces_latest")
        inputs = {name: _col(features, name) for name in surveys}
        inputs.update(churn_risk=churn_risk, clv=clv_part["clv"], value_clv=value_clv)
        nco = nco_arrays(
            inputs,
            reference=self.reference,
            weights=self.weights,
            ces_higher_is_better=self.ces_higher_is_better,
        )
        ids = table["customer_id"]
        columns = {"customer_id": pd.Series(ids.to_numpy(), dtype=ids.dtype)}
        columns.update({col: clv_part[col] for col in _CLV_COLUMNS})
        columns["churn_risk"] = churn_risk
        columns.update({col: nco[col] for col in _NCO_COLUMNS if col != "priority_rank"})
        columns["priority_rank"] = rank_arrays(nco["value_at_risk"], nco["nco"], ids.to_numpy())
        n = len(features)
        columns["drivers"] = ""
        if not explain:
            drivers = lambda: pa.array([""] * n, type=pa.string())  # noqa: E731 - as the texts
        if tuple(columns) != SCORE_COLUMNS:  # pragma: no cover - a programming error
            raise AssertionError(f"scored columns out of the contract's order: {list(columns)}")
        if params.intervals is not None:  # after the contract's columns
            from cx_models.models._intervals import prediction_intervals

            extra = prediction_intervals(
                self.clv, table, horizon_days=horizon, clv_months=months, discount_rate=rate,
                level=params.intervals, expected=clv_part["expected_purchases"],
                point_clv=clv_part["clv"],
            )
            columns.update({name: np.asarray(values) for name, values in extra.items()})
        return columns, drivers

    def drift_frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """Return the columns drift is measured on: the churn features and the scores."""
        model_features = model_feature_arrays(
            NumericView(features), self.feature_clv, horizon_days=self.horizon_days
        )
        frame = features.assign(**model_features)[list(self.churn.features_)]
        scored = self.score(features, explain=False)
        return frame.assign(**{c: scored[c].to_numpy() for c in DRIFT_SCORES})

    @property
    def attribute_columns(self) -> list[str]:
        """The customer attributes the churn model was trained with (none: ``[]``)."""
        from cx_models.churn_data import CHURN_FEATURES

        extra = set(self.extra_columns)
        return [f for f in self.churn.features_ if f not in CHURN_FEATURES and f not in extra]

    @property
    def period_columns(self) -> list[str]:
        """The period history columns the scorer reads (its CLV is BG/BB; else ``[]``)."""
        if "bgbb" not in (self.clv.model, self.feature_clv.model):
            return []
        from cx_models.period_features import PERIOD_COLUMNS

        return list(PERIOD_COLUMNS)

    @property
    def extra_columns(self) -> list[str]:
        """The features aggregated from extra transaction columns (none: ``[]``)."""
        return self.feature_spec.extras.feature_names()

    def check_features(self, features: pd.DataFrame, *, view: NumericView | None = None) -> None:
        """Refuse a feature table whose recorded definition differs from the trained one.

        Tables built by cx-models record their survey look-back in ``attrs``
        (``lookback_days``); a table without it is taken as given. ``view``: the
        table's :class:`~cx_models.columns.NumericView`, when the caller has one
        (its matrix is checked instead of reading the columns again).
        """
        _check_magnitudes(features, view)
        spec = self.feature_spec
        _require_columns(
            features, self.extra_columns,
            "the model was trained with features of extra transaction columns",
            spec.extras.declaration(),
        )
        _require_columns(
            features, self.period_columns,
            f"the model's CLV is BG/BB, which reads each customer's history in periods of "
            f"{spec.period_days} days",
            f"--period-days {spec.period_days} (Python: FeatureSpec(period_days=...))",
        )
        built = features.attrs.get("lookback_days")
        if built is not None and int(built) != self.feature_spec.lookback_days:
            raise CXDataError(
                f"the features were built with a survey look-back of {int(built)} days but "
                f"the model was trained on {self.feature_spec.lookback_days}: rebuild them "
                f"with lookback_days={self.feature_spec.lookback_days} (or score from the "
                "raw events, which uses the trained definition)"
            )

    # -------------------------------------------------------------- persistence
    def save(self, directory) -> Path:
        """Write the scorer as JSON files and the booster as UBJ (no pickle)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.clv.save(directory / "clv.json")
        if self.churn_clv is not None:
            self.churn_clv.save(directory / "churn_clv.json")
        self.churn.save(directory / "churn")
        meta = {
            "reference": self.reference.to_dict(),
            "weights": self.weights,
            "clv_months": self.clv_months,
            "discount_rate": self.discount_rate,
            "lookback_days": self.lookback_days,
            "feature_spec": self.feature_spec.to_dict(),
            "ces_higher_is_better": self.ces_higher_is_better,
            "horizon_days": self.horizon_days,
            "time_unit": self.time_unit,
            "features": self.churn.features_,
            "drift_reference": self.drift_reference,
            "trained_as_of": self.trained_as_of,
            "churn_clv": None if self.churn_clv is None else "churn_clv.json",
            "cx_models_version": __version__,
        }
        (directory / "scorer.json").write_text(json.dumps(meta, indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory) -> CXScorer:
        """Read a scorer written by :meth:`save`."""
        directory = Path(directory)
        meta_path = directory / "scorer.json"
        if not meta_path.exists():
            raise CXDataError(f"{meta_path}: scorer file not found")
        meta = json.loads(meta_path.read_text())
        return cls(
            clv=CLVModel.load(directory / "clv.json"),
            churn=ChurnModel.load(directory / "churn"),
            reference=ValueReference.from_dict(meta["reference"]),
            weights=validate_weights(meta["weights"]),
            clv_months=int(meta["clv_months"]),
            discount_rate=float(meta["discount_rate"]),
            feature_spec=FeatureSpec.from_dict(
                meta.get("feature_spec")
                or {"time_unit": meta.get("time_unit", "D"), "lookback_days": meta["lookback_days"]}
            ),
            ces_higher_is_better=bool(meta["ces_higher_is_better"]),
            drift_reference=meta.get("drift_reference") or {},
            trained_as_of=meta.get("trained_as_of"),
            churn_clv=(
                CLVModel.load(directory / meta["churn_clv"]) if meta.get("churn_clv") else None
            ),
        )


def _require_columns(features, columns, what: str, how: str) -> None:
    """Refuse a feature table without ``columns``: say ``what`` needs them and ``how`` to build."""
    missing = [c for c in columns if c not in features.columns]
    if missing:
        shown = f"{', '.join(missing[:4])}{', …' if len(missing) > 4 else ''}"
        raise CXDataError(
            f"{what} ({shown}), missing here: score from the transactions (they are built the "
            f"trained way) or build the features with {how}"
        )


def _col(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name in frame.columns:
        return as_float(frame[name])
    return np.full(len(frame), np.nan)


def extreme_cells(features: pd.DataFrame) -> tuple[pd.Index, np.ndarray]:
    """Return the numeric columns and a mask of their infinite or huge cells.

    Huge: above :data:`~cx_models.contract.MAX_FEATURE_VALUE` in size.

    Examples
    --------
    >>> cols, bad = extreme_cells(pd.DataFrame({"customer_id": [1, 2], "T": [3.0, np.inf]}))
    >>> bad.any(axis=1).tolist()
    [False, True]
    """
    numeric = features.select_dtypes(include="number")
    if numeric.empty:
        return numeric.columns, np.zeros((len(features), 0), dtype=bool)
    values = numeric.to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        return numeric.columns, np.isinf(values) | (np.abs(values) > MAX_FEATURE_VALUE)


def _check_magnitudes(features: pd.DataFrame, view: NumericView | None = None) -> None:
    """Refuse infinite or huge feature values, naming the first customers that hold them.

    Tables built by cx-models never hold them (amounts above
    :data:`~cx_models.contract.MAX_AMOUNT` are quarantined); a table from elsewhere may
    (``cx-models score --features`` quarantines such customers instead).
    """
    if view is not None:  # one pass over the matrix already read: inf > any bound
        names, values = view.numeric
        with np.errstate(invalid="ignore"):
            bad_cell = np.abs(values) > MAX_FEATURE_VALUE
        names = pd.Index(names)
    else:
        names, bad_cell = extreme_cells(features)
    if not bad_cell.any():
        return
    rows = np.flatnonzero(bad_cell.any(axis=1))
    columns = sorted({names[j] for j in np.flatnonzero(bad_cell.any(axis=0))})
    ids = features["customer_id"].iloc[rows[:5]].tolist()
    raise CXDataError(
        f"{len(rows):,} customer(s) have infinite or huge feature values (above "
        f"{MAX_FEATURE_VALUE:g}) in {', '.join(map(repr, columns))}, e.g. customer_id "
        f"{', '.join(map(str, ids))}: rebuild the features from the transactions (amounts "
        "above 1e15 are quarantined there) or drop these customers"
    )
