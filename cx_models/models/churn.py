"""Churn classifier: XGBoost on leakage-safe snapshots, calibrated, with per-customer drivers.

The one module that imports xgboost. Training rows come from
:func:`cx_models.churn_data.training_snapshots`; the **latest** snapshot is held
out (never random folds of one period): the booster is trained on the older
snapshots with early stopping on the latest, and the probability calibrator
(Platt's sigmoid by default, or isotonic regression) is fitted on the latest
snapshot's predictions. No class re-weighting distorts the probabilities. The
sigmoid is the default because XGBoost's log-loss probabilities are already close
to calibrated: two parameters correct a shift without the isotonic step
function's noise (on the synthetic base isotonic made the forward Brier score
slightly worse, the sigmoid slightly better).

Drivers come from XGBoost's own ``pred_contribs`` (SHAP values in log-odds):
for each customer the features that push the raw margin most, with their sign.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from cx_models._version import __version__
from cx_models.churn_data import CHURN_FEATURES
from cx_models.drivers import driver_texts
from cx_models.errors import CXDataError, NotFittedError
from cx_models.models._booster import (
    FEATURE_LABELS,
    BoosterSettings,
    category_levels,
    feature_matrix,
    unseen_levels,
)
from cx_models.models._calibration import apply_calibrator, fit_calibrator

__all__ = ["BoosterSettings", "ChurnModel", "FEATURE_LABELS"]

#: Share of customers held out when the model is trained on a single snapshot.
HOLDOUT_SHARE = 0.25

#: Up to this many rows, predict single-threaded (see ``ChurnModel._small_booster``).
SMALL_BATCH = 256


def _xgb():
    import xgboost

    return xgboost


class ChurnModel:
    """Calibrated XGBoost churn classifier.

    Parameters
    ----------
    horizon_days : int
        The churn horizon the labels were built with (recorded with the model).
    booster : BoosterSettings, optional
        The XGBoost settings (defaults: :class:`~cx_models.models._booster.BoosterSettings`;
        ``learning_rate_`` says which learning rate a fit used).
    calibration : {"sigmoid", "isotonic"}
        Probability calibration fitted on the held-out snapshot (scikit-learn's
        logistic regression on the logit, or its isotonic regression).
    random_state : int
        Seed of XGBoost's row and column sampling and of the one-snapshot split.
    """

    def __init__(
        self,
        *,
        horizon_days: int = 90,
        booster: BoosterSettings | None = None,
        calibration: str = "sigmoid",
        random_state: int = 0,
    ):
        self.horizon_days = horizon_days
        self.booster = booster
        self.calibration = calibration
        self.random_state = random_state

    def fit(self, snapshots: pd.DataFrame, *, features: list[str] | None = None) -> ChurnModel:
        """Train on labelled snapshots, holding the latest one out.

        Parameters
        ----------
        snapshots : pandas.DataFrame
            From :func:`~cx_models.churn_data.training_snapshots`: ``snapshot``,
            ``churn`` and the feature columns. The latest snapshot is held out for
            early stopping and calibration; with one snapshot only, a random
            :data:`HOLDOUT_SHARE` of its customers is (``holdout_`` says which).
        features : list of str, optional
            Feature columns (default :data:`~cx_models.churn_data.CHURN_FEATURES`,
            the aggregates of extra transaction columns, ``attrs["extra_columns"]``,
            and the customer attributes, ``attrs["attribute_columns"]``).
            Text columns are categorical (their levels go to ``categories_``).

        Returns
        -------
        ChurnModel
            ``self`` with ``booster_``, ``calibrator_``, ``features_``,
            ``best_iteration_`` and ``n_train_rows_``.
        """
        if self.calibration not in ("isotonic", "sigmoid"):
            raise CXDataError(
                f"calibration must be 'isotonic' or 'sigmoid', got {self.calibration!r}"
            )
        for col in ("snapshot", "churn"):
            if col not in snapshots.columns:
                raise CXDataError(f"snapshots need a {col!r} column (see training_snapshots)")
        extra = [
            c
            for key in ("extra_columns", "attribute_columns")
            for c in snapshots.attrs.get(key, [])
            if c in snapshots
        ]
        features = list(features or [*CHURN_FEATURES, *extra])
        days = sorted(snapshots["snapshot"].unique())
        if len(days) >= 2:
            held = (snapshots["snapshot"] == days[-1]).to_numpy()
            self.holdout_ = "latest snapshot"
        else:
            # one snapshot: a split by customer (a customer is once in a snapshot, so
            # never on both sides) for early stopping and calibration
            ids = snapshots["customer_id"].unique()
            pick = np.random.default_rng(self.random_state).random(len(ids)) < HOLDOUT_SHARE
            held = snapshots["customer_id"].isin(ids[pick]).to_numpy()
            self.holdout_ = f"customer split of the only snapshot ({HOLDOUT_SHARE:.0%})"
        train, hold = snapshots[~held], snapshots[held]
        settings = self.booster or BoosterSettings()
        self.learning_rate_ = settings.learning_rate_for(len(train))
        y_train, y_hold = train["churn"].to_numpy(), hold["churn"].to_numpy()
        for name, y in (("training", y_train), ("held-out", y_hold)):
            if y.min() == y.max():
                raise CXDataError(f"the {name} snapshots hold only one class (churn={y[0]})")
        # text columns (customer attributes such as region or plan) are categorical: their
        # levels are learnt here, and XGBoost splits on them natively
        self.features_ = features
        self.categories_ = {
            f: category_levels(train[f])
            for f in features
            if f in train.columns
            and (
                not pd.api.types.is_numeric_dtype(train[f].dtype)
                or isinstance(train[f].dtype, pd.CategoricalDtype)
            )
        }
        xgb = _xgb()
        dtrain = self._dmatrix(train, label=y_train)
        dhold = self._dmatrix(hold, label=y_hold)
        booster = xgb.train(
            settings.params(features, learning_rate=self.learning_rate_, seed=self.random_state),
            dtrain,
            num_boost_round=settings.n_estimators,
            evals=[(dhold, "held_out")],
            early_stopping_rounds=settings.early_stopping_rounds,
            verbose_eval=False,
        )
        self.booster_ = booster
        self.best_iteration_ = int(booster.best_iteration)
        raw = self._raw_proba(dhold)
        self.calibrator_ = fit_calibrator(raw, y_hold, self.calibration)
        self.n_train_rows_ = int(len(train))
        self.n_holdout_rows_ = int(len(hold))
        self.snapshots_ = [str(d) for d in days]
        return self

    def _matrix(self, frame) -> np.ndarray:
        missing = [f for f in self.features_ if f not in frame.columns]
        if missing and not set(missing) & set(CHURN_FEATURES):
            raise CXDataError(
                f"the model was trained with customer attributes ({', '.join(missing)}), "
                "missing here: score with them (--attributes; Python attributes=)"
            )
        return feature_matrix(frame, self.features_, getattr(self, "categories_", None))

    def _dmatrix(self, frame=None, *, matrix=None, **options):
        """XGBoost's matrix of ``frame`` (or of a ``matrix`` already built)."""
        categories = getattr(self, "categories_", None) or {}
        if categories:
            options["feature_types"] = ["c" if f in categories else "q" for f in self.features_]
            options["enable_categorical"] = True
        data = self._matrix(frame) if matrix is None else matrix
        return _xgb().DMatrix(data, feature_names=self.features_, **options)

    def unseen_levels(self, frame) -> dict[str, int]:
        """Count, per categorical feature, the values of ``frame`` not seen in training.

        They are scored as missing values.
        """
        return {
            f: unseen_levels(frame[f], levels)
            for f, levels in (getattr(self, "categories_", None) or {}).items()
            if f in frame.columns
        }

    def _require_fitted(self) -> None:
        if not hasattr(self, "booster_"):
            raise NotFittedError("this ChurnModel is not fitted yet: call fit(snapshots) first")

    def _raw_proba(self, dmatrix, booster=None) -> np.ndarray:
        booster = booster or self.booster_
        return booster.predict(dmatrix, iteration_range=(0, self.best_iteration_ + 1))

    def _small_booster(self):
        """Return a single-threaded copy of the booster, for a few rows at a time.

        For one customer, XGBoost's thread pool costs more than the trees: with
        other work on the machine, waking the threads dominated the tail latency
        (figures: benchmarks/README.md).
        """
        small = getattr(self, "_small_booster_", None)
        if small is None:
            small = self.booster_.copy()
            small.set_param({"nthread": 1})
            self._small_booster_ = small
        return small

    def predict_proba_raw(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the uncalibrated probabilities of churn."""
        self._require_fitted()
        dm = self._dmatrix(frame)
        return self._raw_proba(dm)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Return calibrated probabilities of churn within the horizon, one per row."""
        return apply_calibrator(self.calibrator_, self.predict_proba_raw(frame))

    def predict_and_explain(
        self,
        frame: pd.DataFrame,
        *,
        top: int = 3,
        explain: bool = True,
        exact: bool = False,
        defer: bool = False,
    ) -> tuple[np.ndarray, list[str] | None]:
        """Return calibrated probabilities and, when asked, driver texts, from one matrix.

        With ``defer=True`` the second item is a function that returns the texts
        as a pyarrow string array: a batch job writes them beside the next
        chunk's trees, without making a Python string per customer.
        """
        self._require_fitted()
        matrix = self._matrix(frame)
        few = len(matrix) <= SMALL_BATCH
        booster = self._small_booster() if few else self.booster_
        dm = self._dmatrix(matrix=matrix, nthread=1 if few else None)
        if not explain:
            return apply_calibrator(self.calibrator_, self._raw_proba(dm, booster)), None
        contrib = booster.predict(
            dm,
            pred_contribs=True,
            approx_contribs=not exact,
            iteration_range=(0, self.best_iteration_ + 1),
        )
        # the attributions (with the bias) add up to the raw margin: no second pass over the
        # trees for the probability (it agrees with predict() to float32 rounding, ~1e-7)
        margin = contrib.sum(axis=1, dtype=np.float64)
        raw = 1.0 / (1.0 + np.exp(-margin))
        proba = apply_calibrator(self.calibrator_, raw)

        def texts():
            return self._driver_texts(contrib[:, :-1], matrix, top)

        return proba, (texts if defer else texts().to_pylist())

    def contributions(self, frame: pd.DataFrame, *, exact: bool = False) -> pd.DataFrame:
        """Per-feature contributions to the raw margin (log-odds), plus ``bias``.

        Each row sums to the booster's raw margin for that customer. XGBoost's
        ``pred_contribs`` with ``approx_contribs`` (Saabas' path attribution) by
        default: much cheaper than exact TreeSHAP (``exact=True``), which is too
        slow for nightly scoring of millions (figures: benchmarks/README.md).
        """
        self._require_fitted()
        dm = self._dmatrix(frame)
        contrib = self.booster_.predict(
            dm,
            pred_contribs=True,
            approx_contribs=not exact,
            iteration_range=(0, self.best_iteration_ + 1),
        )
        return pd.DataFrame(contrib, columns=[*self.features_, "bias"], index=frame.index)

    def margin(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the booster's raw margin (log-odds before calibration)."""
        self._require_fitted()
        dm = self._dmatrix(frame)
        return self.booster_.predict(
            dm, output_margin=True, iteration_range=(0, self.best_iteration_ + 1)
        )

    def drivers(self, frame: pd.DataFrame, *, top: int = 3, exact: bool = False) -> list[str]:
        """Return each customer's top churn drivers as text.

        Example: ``"days since last purchase = 240 (+0.81); latest NPS = 3 (+0.40)"`` —
        the feature's value and its signed contribution to the log-odds of churn.
        """
        contrib = self.contributions(frame, exact=exact).drop(columns="bias").to_numpy()
        return self._driver_texts(contrib, self._matrix(frame), top).to_pylist()

    def _driver_texts(self, contrib: np.ndarray, values: np.ndarray, top: int):
        labels = [FEATURE_LABELS.get(f, f) for f in self.features_]
        categories = getattr(self, "categories_", None) or {}
        levels = {j: categories[f] for j, f in enumerate(self.features_) if f in categories}
        return driver_texts(contrib, values, labels, top, levels=levels or None)

    # -------------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        """Everything but the booster, as JSON-serialisable data."""
        self._require_fitted()
        return {
            "horizon_days": self.horizon_days,
            "features": self.features_,
            "categories": getattr(self, "categories_", None) or {},
            "best_iteration": self.best_iteration_,
            "calibrator": self.calibrator_,
            "settings": {
                **asdict(self.booster or BoosterSettings()),
                "calibration": self.calibration,
                "random_state": self.random_state,
            },
            "n_train_rows": self.n_train_rows_,
            "n_holdout_rows": self.n_holdout_rows_,
            "learning_rate": self.learning_rate_,
            "holdout": self.holdout_,
            "snapshots": self.snapshots_,
            "cx_models_version": __version__,
        }

    def save(self, directory) -> Path:
        """Write ``booster.ubj`` and ``churn.json`` (no pickle) into ``directory``."""
        self._require_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(directory / "booster.ubj"))
        (directory / "churn.json").write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory) -> ChurnModel:
        """Read a model written by :meth:`save`."""
        directory = Path(directory)
        meta_path, booster_path = directory / "churn.json", directory / "booster.ubj"
        for path in (meta_path, booster_path):
            if not path.exists():
                raise CXDataError(f"{path}: churn model file not found")
        meta = json.loads(meta_path.read_text())
        settings = dict(meta["settings"])
        model = cls(
            horizon_days=meta["horizon_days"],
            calibration=settings.pop("calibration", "sigmoid"),
            random_state=settings.pop("random_state", 0),
            booster=BoosterSettings(**settings),
        )
        booster = _xgb().Booster()
        booster.load_model(str(booster_path))
        model.booster_ = booster
        model.best_iteration_ = int(meta["best_iteration"])
        model.features_ = list(meta["features"])
        model.categories_ = {f: list(v) for f, v in meta.get("categories", {}).items()}
        model.calibrator_ = meta["calibrator"]
        model.n_train_rows_ = int(meta["n_train_rows"])
        model.n_holdout_rows_ = int(meta["n_holdout_rows"])
        model.snapshots_ = list(meta["snapshots"])
        model.holdout_ = meta.get("holdout", "latest snapshot")
        model.learning_rate_ = meta.get("learning_rate") or meta["settings"]["learning_rate"]
        return model
