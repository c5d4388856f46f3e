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
from pathlib import Path

import numpy as np
import pandas as pd

from cx_models._version import __version__
from cx_models.churn_data import CHURN_FEATURES
from cx_models.columns import NumericView, as_float
from cx_models.drivers import driver_texts
from cx_models.errors import CXDataError, NotFittedError
from cx_models.models._calibration import apply_calibrator, fit_calibrator

__all__ = ["ChurnModel", "FEATURE_LABELS"]

#: Features whose effect on churn has a known direction (+1: more means more churn).
#: Trees then cannot learn a reversal that only holds at the ages seen in training:
#: the training snapshots are younger than the customers scored.
MONOTONE = {
    "days_since_last_purchase": 1,
    "prob_no_purchase": 1,
    "p_alive": -1,
    "expected_purchases": -1,
    "purchases_30d": -1,
    "purchases_90d": -1,
    "purchases_180d": -1,
}

#: From this many training rows on, the default learning rate is 0.1 instead of 0.05.
LARGE_TRAINING_ROWS = 200_000

#: Share of customers held out when the model is trained on a single snapshot.
HOLDOUT_SHARE = 0.25

#: Human-readable names used in driver texts.
FEATURE_LABELS = {
    "days_since_last_purchase": "days since last purchase",
    "mean_gap_days": "mean days between purchases",
    "std_gap_days": "std of days between purchases",
    "gap_ratio": "days since last / mean gap",
    "purchase_rate_per_year": "purchases per year",
    "recency_share": "recency / age",
    "mean_spend": "mean spend",
    "monetary_value": "mean repeat spend",
    "purchases_30d": "purchases in last 30 days",
    "spend_30d": "spend in last 30 days",
    "purchases_trend_30d": "purchase trend (30 days)",
    "purchases_90d": "purchases in last 90 days",
    "spend_90d": "spend in last 90 days",
    "purchases_trend_90d": "purchase trend (90 days)",
    "purchases_180d": "purchases in last 180 days",
    "spend_180d": "spend in last 180 days",
    "purchases_trend_180d": "purchase trend (180 days)",
    "spend_trend_180d": "spend trend (180 days)",
    "nps_latest": "latest NPS",
    "nps_mean": "mean NPS",
    "nps_days_since": "days since NPS answer",
    "csat_latest": "latest CSAT",
    "csat_mean": "mean CSAT",
    "csat_days_since": "days since CSAT answer",
    "ces_latest": "latest CES",
    "ces_mean": "mean CES",
    "ces_days_since": "days since CES answer",
    "survey_count": "survey answers",
    "latest_experience": "latest survey score (0-100)",
    "latest_experience_days_since": "days since latest survey answer",
    "answered_since_last_purchase": "answered a survey since the last purchase",
    "p_alive": "P(alive)",
    "expected_purchases": "expected purchases",
    "prob_no_purchase": "BG/NBD P(no purchase)",
    "clv": "CLV",
}


#: Up to this many rows, predict single-threaded (see ``ChurnModel._small_booster``).
SMALL_BATCH = 256


def _xgb():
    import xgboost

    return xgboost


def _matrix(frame, features: list[str]) -> np.ndarray:
    """Return the model matrix (float32, NaN = missing) from a frame or a column view."""
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise CXDataError(
            f"churn features missing: {', '.join(missing)}; build them with "
            "cx_models.churn_data.snapshot_features"
        )
    if isinstance(frame, NumericView):  # the scorer's view: arrays by name, no frame built
        return _row_major([as_float(frame[f]) for f in features])
    # categories and nullable dtypes become plain floats here (NaN = missing)
    part = frame[features]
    if all(
        pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in part.dtypes
    ):
        return part.to_numpy(dtype=np.float32, na_value=np.nan)
    return part.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float32)


def _row_major(columns: list[np.ndarray], block: int = 8192) -> np.ndarray:
    """Stack columns into a C-order float32 matrix, a block of rows at a time.

    Filling a whole column of a wide row-major matrix strides through all of it
    once per column; a block of rows stays in cache (figures: benchmarks/README.md).

    Examples
    --------
    >>> _row_major([np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])], block=2).tolist()
    [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]
    """
    n = len(columns[0]) if columns else 0
    out = np.empty((n, len(columns)), dtype=np.float32)
    for start in range(0, n, block):
        rows = out[start : start + block]
        for j, column in enumerate(columns):
            rows[:, j] = column[start : start + block]
    return out


class ChurnModel:
    """Calibrated XGBoost churn classifier.

    Parameters
    ----------
    horizon_days : int
        The churn horizon the labels were built with (recorded with the model).
    n_estimators, learning_rate, max_depth, min_child_weight, subsample, colsample_bytree
        XGBoost settings (``tree_method="hist"``). ``learning_rate=None`` (the default)
        takes 0.05 below :data:`LARGE_TRAINING_ROWS` training rows and 0.1 from there:
        with many rows each round's trees are well determined and the larger step
        reaches the same fit in about half the rounds (``learning_rate_`` says which).
    early_stopping_rounds : int
        Rounds without improvement on the held-out snapshot before stopping.
    calibration : {"sigmoid", "isotonic"}
        Probability calibration fitted on the held-out snapshot (scikit-learn's
        logistic regression on the logit, or its isotonic regression).
    random_state : int
        Seed of XGBoost's row and column sampling.
    n_jobs : int
        XGBoost threads.
    """

    def __init__(
        self,
        *,
        horizon_days: int = 90,
        n_estimators: int = 1000,
        learning_rate: float | None = None,
        max_depth: int = 4,
        min_child_weight: float = 20.0,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        early_stopping_rounds: int = 50,
        calibration: str = "sigmoid",
        random_state: int = 0,
        n_jobs: int = 2,
    ):
        self.horizon_days = horizon_days
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.early_stopping_rounds = early_stopping_rounds
        self.calibration = calibration
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _params(self, features: list[str]) -> dict:
        constraints = ",".join(str(MONOTONE.get(f, 0)) for f in features)
        return {
            "monotone_constraints": f"({constraints})",
            "objective": "binary:logistic",
            "eval_metric": "logloss",
            "tree_method": "hist",
            "learning_rate": self.learning_rate_,
            "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "seed": self.random_state,
            "nthread": self.n_jobs,
        }

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
            Feature columns (default :data:`~cx_models.churn_data.CHURN_FEATURES`).

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
        features = list(features or CHURN_FEATURES)
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
        self.learning_rate_ = self.learning_rate or (
            0.05 if len(train) < LARGE_TRAINING_ROWS else 0.1
        )
        y_train, y_hold = train["churn"].to_numpy(), hold["churn"].to_numpy()
        for name, y in (("training", y_train), ("held-out", y_hold)):
            if y.min() == y.max():
                raise CXDataError(f"the {name} snapshots hold only one class (churn={y[0]})")
        xgb = _xgb()
        dtrain = xgb.DMatrix(_matrix(train, features), label=y_train, feature_names=features)
        dhold = xgb.DMatrix(_matrix(hold, features), label=y_hold, feature_names=features)
        booster = xgb.train(
            self._params(features),
            dtrain,
            num_boost_round=self.n_estimators,
            evals=[(dhold, "held_out")],
            early_stopping_rounds=self.early_stopping_rounds,
            verbose_eval=False,
        )
        self.booster_ = booster
        self.best_iteration_ = int(booster.best_iteration)
        self.features_ = features
        raw = self._raw_proba(dhold)
        self.calibrator_ = fit_calibrator(raw, y_hold, self.calibration)
        self.n_train_rows_ = int(len(train))
        self.n_holdout_rows_ = int(len(hold))
        self.snapshots_ = [str(d) for d in days]
        return self

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
        dm = _xgb().DMatrix(_matrix(frame, self.features_), feature_names=self.features_)
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
        matrix = _matrix(frame, self.features_)
        few = len(matrix) <= SMALL_BATCH
        booster = self._small_booster() if few else self.booster_
        dm = _xgb().DMatrix(matrix, feature_names=self.features_, nthread=1 if few else None)
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
        dm = _xgb().DMatrix(_matrix(frame, self.features_), feature_names=self.features_)
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
        dm = _xgb().DMatrix(_matrix(frame, self.features_), feature_names=self.features_)
        return self.booster_.predict(
            dm, output_margin=True, iteration_range=(0, self.best_iteration_ + 1)
        )

    def drivers(self, frame: pd.DataFrame, *, top: int = 3, exact: bool = False) -> list[str]:
        """Return each customer's top churn drivers as text.

        Example: ``"days since last purchase = 240 (+0.81); latest NPS = 3 (+0.40)"`` —
        the feature's value and its signed contribution to the log-odds of churn.
        """
        contrib = self.contributions(frame, exact=exact).drop(columns="bias").to_numpy()
        return self._driver_texts(contrib, _matrix(frame, self.features_), top).to_pylist()

    def _driver_texts(self, contrib: np.ndarray, values: np.ndarray, top: int):
        labels = [FEATURE_LABELS.get(f, f) for f in self.features_]
        return driver_texts(contrib, values, labels, top)

    # -------------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        """Everything but the booster, as JSON-serialisable data."""
        self._require_fitted()
        return {
            "horizon_days": self.horizon_days,
            "features": self.features_,
            "best_iteration": self.best_iteration_,
            "calibrator": self.calibrator_,
            "settings": {
                k: getattr(self, k)
                for k in (
                    "n_estimators",
                    "learning_rate",
                    "max_depth",
                    "min_child_weight",
                    "subsample",
                    "colsample_bytree",
                    "early_stopping_rounds",
                    "calibration",
                    "random_state",
                    "n_jobs",
                )
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
        model = cls(horizon_days=meta["horizon_days"], **meta["settings"])
        booster = _xgb().Booster()
        booster.load_model(str(booster_path))
        model.booster_ = booster
        model.best_iteration_ = int(meta["best_iteration"])
        model.features_ = list(meta["features"])
        model.calibrator_ = meta["calibrator"]
        model.n_train_rows_ = int(meta["n_train_rows"])
        model.n_holdout_rows_ = int(meta["n_holdout_rows"])
        model.snapshots_ = list(meta["snapshots"])
        model.holdout_ = meta.get("holdout", "latest snapshot")
        model.learning_rate_ = meta.get("learning_rate") or meta["settings"]["learning_rate"]
        return model
