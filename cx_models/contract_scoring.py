"""The contractual CX scorer: churn risk, CLV, NCO and drivers for active relationships.

:class:`ContractScorer` bundles the contractual churn model (XGBoost on
:data:`~cx_models.contract_features.CONTRACT_FEATURES`), the retention models
fitted on the relationships at its as-of day
(:class:`~cx_models.retention_baselines.RetentionBaselines`: the sBG fit and the
Kaplan–Meier curve), the training-time CLV reference of the value score and the
NCO weights. One scored row per relationship active on the scoring day, columns
:data:`SUBSCRIPTION_SCORE_COLUMNS`.

``churn_risk``, ``clv``, the NCO block, ``value_at_risk``, ``priority_rank`` and
``drivers`` mean what they mean for the non-contractual kind. Specific to this kind:

* ``p_active`` — the sBG probability to be still active after the renewals due in
  the churn horizon, for the relationship's tenure (``1 − sbg_churn_prob``);
* ``expected_residual_periods`` — the expected number of renewals within
  ``clv_months`` (sBG);
* ``clv`` — price × the expected discounted payments within ``clv_months``: the
  renewal in month ``m`` after the scoring day is discounted by
  ``(1 + discount_rate)^(−m/12)``, as the non-contractual CLV's month ``m``;
* ``residual_value`` — price × DERL (Fader & Hardie 2010) at the per-period rate
  of ``discount_rate``: all future payments, the next one undiscounted;
* ``next_renewal`` — the next renewal date; ``renewals`` — renewals so far.

A relationship with a pending cancellation is leaving: ``churn_risk`` 1, no future
payments (``clv``, ``residual_value``, ``expected_residual_periods`` and
``p_active`` 0) and the driver ``cancellation pending``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cx_models._version import __version__
from cx_models.billing import BillingPeriod
from cx_models.columns import as_float
from cx_models.errors import CXDataError
from cx_models.models.churn import ChurnModel
from cx_models.nco import ValueReference, nco_arrays, rank_arrays, validate_weights

__all__ = ["SUBSCRIPTION_SCORE_COLUMNS", "ContractScorer"]

#: The columns of a contractual scored table, in order.
SUBSCRIPTION_SCORE_COLUMNS = (
    "customer_id", "relationship", "plan", "price", "tenure_days", "renewals", "next_renewal",
    "renewals_due", "p_active", "expected_residual_periods", "residual_value", "clv",
    "churn_risk", "csat_score", "nps_score", "ces_score", "retention_score", "value_score",
    "experience_score", "nco", "nco_coverage", "value_at_risk", "priority_rank",
    "cancellation_pending", "drivers",
)
_NCO = ("csat_score", "nps_score", "ces_score", "retention_score", "value_score",
        "experience_score", "nco", "nco_coverage", "value_at_risk")
_MONTH_DAYS = 365.25 / 12
PENDING_DRIVER = "cancellation pending"


@dataclass
class ContractScorer:
    """Everything needed to score the relationships active on a day.

    Examples
    --------
    >>> ContractScorer.kind
    'subscriptions'
    """

    churn: ChurnModel
    retention: object  # RetentionBaselines
    reference: ValueReference
    period: BillingPeriod
    horizon_days: int
    grace_days: int = 0
    lookback_days: int = 365
    ces_higher_is_better: bool = False
    weights: dict = field(default_factory=lambda: validate_weights(None))
    clv_months: int = 12
    discount_rate: float = 0.10
    trained_as_of: str | None = None
    #: the training-time distribution of each numeric churn feature and score
    drift_reference: dict = field(default_factory=dict)
    kind = "subscriptions"

    @property
    def feature_spec(self):
        """The survey look-back of the features, as the other kind's scorer says it."""
        from cx_models.settings import FeatureSpec

        return FeatureSpec(lookback_days=self.lookback_days)

    @property
    def attribute_columns(self) -> list[str]:
        """The customer attributes the churn model was trained with."""
        from cx_models.contract_features import CONTRACT_FEATURES

        return [f for f in self.churn.features_ if f not in CONTRACT_FEATURES]

    def features(self, subscriptions, *, day, surveys=None, transactions=None,
                 attributes=None):
        """Build the feature table of the relationships active on ``day`` (validated inputs)."""
        from cx_models.contract_features import contract_features

        feats = contract_features(
            subscriptions, day=day, horizon_days=self.horizon_days, period=self.period,
            grace_days=self.grace_days, surveys=surveys, transactions=transactions,
            lookback_days=self.lookback_days, ces_higher_is_better=self.ces_higher_is_better,
            retention=self.retention,
        )
        if attributes is not None:
            from cx_models.attributes import join_attributes

            feats = join_attributes(feats, attributes)
        missing = [c for c in self.attribute_columns if c not in feats.columns]
        if missing:
            raise CXDataError(
                f"the model was trained with customer attributes ({', '.join(missing)}): "
                "score with them (--attributes; Python attributes=)"
            )
        from cx_models.contract_features import features_to_pandas

        return features_to_pandas(feats)

    def _payments(self, renewals, days_to_next, months: int, rate: float):
        """Return the expected and the discounted payments within ``months`` (sBG)."""
        k = np.asarray(renewals, dtype=float)
        first = np.asarray(days_to_next, dtype=float)
        horizon = months * _MONTH_DAYS
        step = self.period.approx_days
        count = int(np.ceil(horizon / step)) + 1
        expected = np.zeros(k.shape)
        discounted = np.zeros(k.shape)
        sbg = self.retention.sbg
        for j in range(1, count + 1):
            when = first + (j - 1) * step
            due = when <= horizon
            if not due.any():
                break
            if sbg is not None:
                alive = sbg.p_active(k, j)
            else:
                alive = 1.0 - self.retention.churn_probabilities(k, np.full(k.shape, j))[1]
            month = np.maximum(np.ceil(when / _MONTH_DAYS), 1.0)
            expected += np.where(due, alive, 0.0)
            discounted += np.where(due, alive * (1.0 + rate) ** (-month / 12.0), 0.0)
        return expected, discounted

    def score(self, features: pd.DataFrame, params=None, **keywords) -> pd.DataFrame:
        """Score a contractual feature table (:meth:`features`): one row per relationship.

        ``params`` (:class:`~cx_models.settings.ScoreParams`) may set ``clv_months``,
        ``discount_rate`` and ``explain``; the churn horizon is the trained one
        (``horizon_days`` and ``intervals`` are refused).
        """
        from cx_models.settings import ScoreParams

        params = params or ScoreParams(**keywords)
        if params.horizon_days is not None and params.horizon_days != self.horizon_days:
            raise CXDataError(
                f"a subscription scorer predicts for its trained horizon ({self.horizon_days} "
                "days); leave horizon_days out"
            )
        if params.intervals is not None:
            raise CXDataError("intervals are not available for subscription scorers yet")
        if "customer_id" not in features.columns:
            raise CXDataError("the feature table needs a 'customer_id' column")
        months = self.clv_months if params.clv_months is None else params.clv_months
        rate = self.discount_rate if params.discount_rate is None else params.discount_rate
        pending = features["cancellation_pending"].fillna(False).to_numpy(dtype=bool) \
            if "cancellation_pending" in features.columns else np.zeros(len(features), bool)
        risk, drivers = self.churn.predict_and_explain(features, explain=params.explain)
        risk = np.where(pending, 1.0, np.asarray(risk, dtype=float))
        k = as_float(features["renewals"])
        due = as_float(features["renewals_due"])
        price = as_float(features["price"]) if "price" in features.columns \
            else np.full(len(features), np.nan)
        sbg_prob, _ = self.retention.churn_probabilities(k, due)
        expected, discounted = self._payments(k, as_float(features["days_to_next_renewal"]),
                                              months, rate)
        value_clv = price * (discounted if (months, rate) == (self.clv_months, self.discount_rate)
                             else self._payments(k, as_float(features["days_to_next_renewal"]),
                                                 self.clv_months, self.discount_rate)[1])
        residual = np.full(len(features), np.nan)
        if self.retention.sbg is not None:
            d = self.period.per_period_rate(rate) if rate > 0 else None
            if d:  # renewals are whole numbers: one DERL per distinct count
                distinct, where = np.unique(np.nan_to_num(k), return_inverse=True)
                residual = price * self.retention.sbg.derl(distinct, discount_rate=d)[where]
        clv = np.where(pending, 0.0, price * discounted)
        inputs = {name: as_float(features[name]) if name in features.columns
                  else np.full(len(features), np.nan)
                  for name in ("csat_latest", "nps_latest", "ces_latest")}
        inputs.update(churn_risk=risk, clv=clv, value_clv=np.where(pending, 0.0, value_clv))
        nco = nco_arrays(inputs, reference=self.reference, weights=self.weights,
                         ces_higher_is_better=self.ces_higher_is_better)
        ids = features["customer_id"]
        texts = drivers if params.explain else [""] * len(features)
        out = {
            "customer_id": pd.Series(ids.to_numpy(), dtype=ids.dtype),
            "relationship": features["relationship"].to_numpy(),
            "plan": features["plan"].to_numpy() if "plan" in features.columns else None,
            "price": price,
            "tenure_days": as_float(features["tenure_days"]),
            "renewals": k,
            "next_renewal": features["next_renewal"].to_numpy(),
            "renewals_due": due,
            "p_active": np.where(pending, 0.0, 1.0 - sbg_prob),
            "expected_residual_periods": np.where(pending, 0.0, expected),
            "residual_value": np.where(pending, 0.0, residual),
            "clv": clv,
            "churn_risk": risk,
            **{name: nco[name] for name in _NCO},
            "priority_rank": rank_arrays(nco["value_at_risk"], nco["nco"], ids.to_numpy()),
            "cancellation_pending": pending,
            "drivers": [PENDING_DRIVER if p else t for p, t in zip(pending, texts, strict=True)],
        }
        return pd.DataFrame(out)[list(SUBSCRIPTION_SCORE_COLUMNS)]

    def drift_frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """Return the columns drift is watched on: the numeric churn features and the scores."""
        numeric = [f for f in self.churn.features_ if f not in self.churn.categories_]
        scored = self.score(features, explain=False)
        frame = features[numeric].reset_index(drop=True)
        return frame.assign(**{c: scored[c].to_numpy() for c in ("churn_risk", "clv", "nco")})

    # -------------------------------------------------------------- persistence
    def save(self, directory) -> Path:
        """Write the scorer as JSON files and the booster as UBJ (no pickle)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.churn.save(directory / "churn")
        meta = {
            "kind": self.kind,
            "retention": self.retention.to_dict(),
            "reference": self.reference.to_dict(),
            "period": {"days": self.period.days, "calendar": self.period.calendar},
            "horizon_days": int(self.horizon_days),
            "grace_days": int(self.grace_days),
            "lookback_days": int(self.lookback_days),
            "ces_higher_is_better": bool(self.ces_higher_is_better),
            "weights": self.weights,
            "clv_months": int(self.clv_months),
            "discount_rate": float(self.discount_rate),
            "features": self.churn.features_,
            "trained_as_of": self.trained_as_of,
            "drift_reference": self.drift_reference,
            "cx_models_version": __version__,
        }
        (directory / "scorer.json").write_text(json.dumps(meta, indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory) -> ContractScorer:
        """Read a scorer written by :meth:`save`."""
        from cx_models.retention_baselines import RetentionBaselines

        directory = Path(directory)
        meta = json.loads((directory / "scorer.json").read_text())
        if meta.get("kind") != cls.kind:
            raise CXDataError(f"{directory}: not a subscription scorer")
        return cls(
            churn=ChurnModel.load(directory / "churn"),
            retention=RetentionBaselines.from_dict(meta["retention"]),
            reference=ValueReference.from_dict(meta["reference"]),
            period=BillingPeriod(**meta["period"]),
            horizon_days=int(meta["horizon_days"]),
            grace_days=int(meta["grace_days"]),
            lookback_days=int(meta["lookback_days"]),
            ces_higher_is_better=bool(meta["ces_higher_is_better"]),
            weights=validate_weights(meta["weights"]),
            clv_months=int(meta["clv_months"]),
            discount_rate=float(meta["discount_rate"]),
            trained_as_of=meta.get("trained_as_of"),
            drift_reference=meta.get("drift_reference") or {},
        )

    def settings(self) -> dict:
        """Return the scorer's settings as a dict (for logging)."""
        return {"kind": self.kind, "period": asdict(self.period),
                "horizon_days": self.horizon_days, "grace_days": self.grace_days,
                "lookback_days": self.lookback_days, "clv_months": self.clv_months,
                "discount_rate": self.discount_rate}
