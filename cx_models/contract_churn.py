"""Contractual churn: leakage-safe training snapshots and the forward evaluation.

Snapshots are taken at ``as_of − horizon``, ``as_of − horizon − step``, … (the
step defaults to the horizon), so every label window ends on or before ``as_of``;
the earliest snapshot needs two billing periods of history since the first start
(some relationships must have been lost for the retention models). Each snapshot's
features (:func:`cx_models.contract_features.contract_features`) are computed
from what is visible on its day. Relationships with a pending cancellation are
left out of the labels.

The forward evaluation trains with the data up to ``as_of − horizon`` and scores
the relationships active then against what happened in the window after it, beside
the baselines: the shifted-beta-geometric churn probability over the renewals due
(``1 − S(k+m)/S(k)``), Kaplan–Meier's, and a logistic regression on the same
numeric features; with the generator's truth, the ceiling ``1 − (1 − θ)^m``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl

from cx_models.billing import BillingPeriod
from cx_models.contract_features import (
    CONTRACT_FEATURES,
    contract_features,
    contract_labels,
    features_to_pandas,
)
from cx_models.errors import CXDataError
from cx_models.timeutil import parse_as_of

__all__ = ["ContractPlan", "contract_snapshots", "evaluate_contract_churn"]

#: Baselines of the forward evaluation (besides the logistic regression).
BASELINES = ("sbg_churn_prob", "km_churn_prob")


@dataclass(frozen=True)
class ContractPlan:
    """Where the contractual snapshots go and what each one's features see.

    Parameters
    ----------
    horizon_days : int
        The churn window after each snapshot.
    step_days : int, optional
        Days between snapshots (default: the horizon).
    max_snapshots : int
        At most this many snapshots.
    lookback_days : int
        The survey look-back window.
    ces_higher_is_better : bool
        The declared CES direction.

    Examples
    --------
    >>> ContractPlan(horizon_days=91).step
    91
    """

    horizon_days: int = 90
    step_days: int | None = None
    max_snapshots: int = 6
    lookback_days: int = 365
    ces_higher_is_better: bool = False

    def __post_init__(self):
        for name in ("horizon_days", "max_snapshots", "lookback_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise CXDataError(f"{name} must be a whole number >= 1, got {value!r}")
        if self.step_days is not None and (int(self.step_days) != self.step_days
                                           or self.step_days < 1):
            raise CXDataError(f"step_days must be a whole number >= 1, got {self.step_days!r}")

    @property
    def step(self) -> int:
        """Days between snapshots."""
        return int(self.step_days or self.horizon_days)


def _snapshot_days(subscriptions: pl.DataFrame, as_of: dt.date, plan: ContractPlan,
                   period: BillingPeriod) -> list[dt.date]:
    first = subscriptions["start"].min()
    earliest = first + dt.timedelta(days=int(np.ceil(2 * period.approx_days)))
    last = as_of - dt.timedelta(days=plan.horizon_days)
    days = [last - dt.timedelta(days=i * plan.step) for i in range(plan.max_snapshots)]
    days = [d for d in days if d >= earliest]
    if not days:
        need = earliest + dt.timedelta(days=plan.horizon_days)
        raise CXDataError(
            f"contractual churn needs a snapshot two billing periods ({period.label}) after "
            f"the first start ({first}) and a {plan.horizon_days}-day label window before "
            f"as_of {as_of}: the earliest --as-of that works is {need}, or give a shorter "
            "--horizon-days"
        )
    return sorted(days)


def contract_snapshots(
    subscriptions: pl.DataFrame,
    *,
    as_of,
    plan: ContractPlan,
    spec,
    surveys: pl.DataFrame | None = None,
    transactions: pl.DataFrame | None = None,
    attributes: pl.DataFrame | None = None,
) -> pd.DataFrame:
    """Labelled snapshots of the relationships active on each snapshot day.

    Parameters
    ----------
    subscriptions : polars.DataFrame
        Validated subscriptions seen on ``as_of`` (or later).
    as_of : str or date
        The last day of data: every label window ends on or before it.
    plan : ContractPlan
        Horizon and snapshot design.
    spec : SubscriptionSpec
        The billing period and grace days.
    surveys, transactions, attributes : polars.DataFrame, optional
        Validated surveys, activity events, customer attributes (static).

    Returns
    -------
    pandas.DataFrame
        ``snapshot``, ``customer_id``, ``churn`` and the features;
        ``attrs["snapshot_design"]`` and ``attrs["attribute_columns"]``.
    """
    as_of = parse_as_of(as_of)
    period = spec.require_period()
    frames = []
    for day in _snapshot_days(subscriptions, as_of, plan, period):
        feats = _features(subscriptions, day, plan, spec, surveys, transactions, attributes)
        feats = feats.filter(~pl.col("cancellation_pending"))
        y = contract_labels(subscriptions, feats, day=day, horizon_days=plan.horizon_days,
                            grace_days=spec.grace_days)
        frames.append(feats.with_columns(pl.lit(day.isoformat()).alias("snapshot"),
                                         pl.Series("churn", y)))
    snaps = features_to_pandas(pl.concat(frames, how="vertical_relaxed"))
    snaps.attrs["snapshot_design"] = {
        "snapshots": [str(d) for d in sorted(snaps["snapshot"].unique())],
        "step_days": plan.step, "horizon_days": plan.horizon_days,
    }
    snaps.attrs["attribute_columns"] = [] if attributes is None else [
        c for c in attributes.columns if c != "customer_id"]
    return snaps


def _features(subscriptions, day, plan, spec, surveys, transactions, attributes):
    feats = contract_features(
        subscriptions, day=day, horizon_days=plan.horizon_days, period=spec.period,
        grace_days=spec.grace_days, surveys=surveys, transactions=transactions,
        lookback_days=plan.lookback_days, ces_higher_is_better=plan.ces_higher_is_better,
    )
    if attributes is not None:
        from cx_models.attributes import join_attributes

        feats = join_attributes(feats, attributes)
    return feats


def _true_churn_prob(current: pd.DataFrame, truth) -> np.ndarray:
    truth = truth.to_pandas() if isinstance(truth, pl.DataFrame) else truth
    theta = current[["customer_id"]].merge(
        truth[["customer_id", "churn_prob"]], on="customer_id", how="left"
    )["churn_prob"].to_numpy(dtype=float)
    return 1.0 - (1.0 - theta) ** current["renewals_due"].to_numpy(dtype=float)


def evaluate_contract_churn(
    subscriptions: pl.DataFrame,
    *,
    as_of,
    plan: ContractPlan,
    spec,
    surveys: pl.DataFrame | None = None,
    transactions: pl.DataFrame | None = None,
    attributes: pl.DataFrame | None = None,
    truth=None,
    model=None,
) -> dict:
    """Train to ``as_of − horizon``, score the relationships active then, compare with baselines.

    Returns
    -------
    dict
        ``metrics`` per scorer (:func:`cx_models.churn_eval.classification_metrics`),
        ``beats`` (the model minus each scorer: ROC-AUC, PR-AUC; Brier the other way),
        the evaluation day, snapshot design, rows; ``_model``, ``_scores``,
        ``_labels`` and ``_features`` for the caller (not JSON).
    """
    from cx_models.churn_eval import classification_metrics
    from cx_models.models.churn import ChurnModel

    as_of = parse_as_of(as_of)
    day = as_of - dt.timedelta(days=plan.horizon_days)
    # each snapshot's features hide what its day cannot see
    snaps = contract_snapshots(subscriptions, as_of=day, plan=plan, spec=spec, surveys=surveys,
                               transactions=transactions, attributes=attributes)
    features = [*CONTRACT_FEATURES, *snaps.attrs["attribute_columns"]]
    model = model or ChurnModel(horizon_days=plan.horizon_days)
    model.fit(snaps, features=features)
    current = _features(subscriptions, day, plan, spec, surveys, transactions, attributes)
    current = current.filter(~pl.col("cancellation_pending"))
    y = contract_labels(subscriptions, current, day=day, horizon_days=plan.horizon_days,
                        grace_days=spec.grace_days)
    current = features_to_pandas(current)
    numeric = [f for f in model.features_ if f not in model.categories_]
    scores = {
        "model": model.predict_proba(current),
        "model_uncalibrated": model.predict_proba_raw(current),
        **{name: current[name].to_numpy(dtype=float) for name in BASELINES},
        "logistic_regression": _logistic(snaps, current, numeric),
    }
    if truth is not None:
        scores["ceiling_true_churn_prob"] = _true_churn_prob(current, truth)
    metrics = {}
    for name, s in scores.items():
        s = np.where(np.isfinite(s), s, np.nanmean(s) if np.isfinite(s).any() else 0.5)
        metrics[name] = classification_metrics(y, s, probability=True)
    ours = metrics["model"]
    beats = {
        name: {
            "roc_auc": ours["roc_auc"] - m["roc_auc"],
            "pr_auc": ours["pr_auc"] - m["pr_auc"],
            "brier": m["brier"] - ours["brier"],
        }
        for name, m in metrics.items() if name != "model"
    }
    return {
        "kind": "subscriptions",
        "as_of": as_of.isoformat(),
        "evaluation_day": day.isoformat(),
        "horizon_days": plan.horizon_days,
        "relationships": int(len(current)),
        "churn_rate": float(y.mean()),
        "training_rows": int(model.n_train_rows_),
        "holdout_rows": int(model.n_holdout_rows_),
        "best_iteration": model.best_iteration_,
        "design": {**snaps.attrs["snapshot_design"], "holdout": model.holdout_},
        "metrics": metrics,
        "beats": beats,
        "_model": model,
        "_scores": scores,
        "_labels": y,
        "_features": current,
    }


def _logistic(snaps: pd.DataFrame, current: pd.DataFrame, numeric: list[str]) -> np.ndarray:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    logistic = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(max_iter=2000),
    )
    logistic.fit(snaps[numeric].to_numpy(dtype=float), snaps["churn"].to_numpy())
    return logistic.predict_proba(current[numeric].to_numpy(dtype=float))[:, 1]
