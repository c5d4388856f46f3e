"""Training pipeline of the contractual kind: subscriptions → a :class:`ContractScorer`.

Given validated subscriptions (and optionally surveys, activity events and
customer attributes) seen on ``as_of``:

1. **Forward evaluation** — the churn model trained with data up to
   ``as_of − horizon``, evaluated on the window after it against the sBG,
   Kaplan–Meier and logistic-regression baselines
   (:func:`cx_models.contract_churn.evaluate_contract_churn`).
2. **Final churn model** — the same on the snapshots whose label windows end at
   ``as_of``.
3. **Retention models** — sBG and Kaplan–Meier on every relationship at ``as_of``
   (the scorer's features and CLV use them).
4. **NCO value reference** — the CLV of every relationship active at ``as_of``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import polars as pl

from cx_models.contract_churn import ContractPlan, contract_snapshots, evaluate_contract_churn
from cx_models.contract_features import CONTRACT_FEATURES
from cx_models.contract_scoring import ContractScorer
from cx_models.models.churn import ChurnModel
from cx_models.nco import ValueReference
from cx_models.relationships import relationship_periods, relationships
from cx_models.retention_baselines import RetentionBaselines
from cx_models.timeutil import parse_as_of

__all__ = ["ContractTrainingResult", "contract_plan", "train_contract_scorer"]


@dataclass
class ContractTrainingResult:
    """What a contractual training run produced (the fields a run logs)."""

    scorer: ContractScorer
    config: object
    evaluation: dict
    features: pd.DataFrame
    snapshot_counts: dict
    timings: dict
    design: dict = field(default_factory=dict)
    clv_choice: dict | None = None

    def choice_metrics(self) -> dict:
        """No CLV model choice for subscriptions."""
        return {}


def contract_plan(config) -> ContractPlan:
    """Return the snapshot plan of a :class:`~cx_models.training.pipeline.TrainingConfig`."""
    return ContractPlan(
        horizon_days=config.horizon_days,
        step_days=config.step_days,
        max_snapshots=config.max_snapshots or 6,
        lookback_days=config.lookback_days,
        ces_higher_is_better=config.ces_higher_is_better,
    )


def train_contract_scorer(
    subscriptions: pl.DataFrame,
    surveys: pl.DataFrame | None,
    config,
    *,
    spec,
    transactions: pl.DataFrame | None = None,
    attributes: pl.DataFrame | None = None,
    truth=None,
    progress: Callable[[str], None] | None = None,
) -> ContractTrainingResult:
    """Run the pipeline in the module docstring on validated frames."""
    say = progress or (lambda message: None)
    plan = contract_plan(config)
    timings = {}

    def churn_model() -> ChurnModel:
        return ChurnModel(horizon_days=config.horizon_days, calibration=config.calibration,
                          random_state=config.random_state)

    inputs = {"surveys": surveys, "transactions": transactions, "attributes": attributes}
    t0 = time.perf_counter()
    say("forward evaluation: train to as_of - horizon, score the window after it")
    evaluation = evaluate_contract_churn(subscriptions, as_of=config.as_of, plan=plan,
                                         spec=spec, truth=truth, model=churn_model(), **inputs)
    timings["evaluation_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    say("final churn model: snapshots whose label windows end at as_of")
    snaps = contract_snapshots(subscriptions, as_of=config.as_of, plan=plan, spec=spec, **inputs)
    churn = churn_model().fit(
        snaps, features=[*CONTRACT_FEATURES, *snaps.attrs["attribute_columns"]]
    )
    timings["churn_fit_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    say("retention models on every relationship at as_of, and the NCO value reference")
    as_of = parse_as_of(config.as_of)
    rels = relationship_periods(
        relationships(subscriptions, as_of=as_of, grace_days=spec.grace_days),
        as_of=as_of, period=spec.period,
    )
    scorer = ContractScorer(
        churn=churn,
        retention=RetentionBaselines.fit(rels),
        reference=ValueReference.from_clv([0.0]),
        period=spec.period,
        horizon_days=config.horizon_days,
        grace_days=spec.grace_days,
        lookback_days=config.lookback_days,
        ces_higher_is_better=config.ces_higher_is_better,
        weights=config.nco_weights,
        clv_months=config.clv_months,
        discount_rate=config.discount_rate,
        trained_as_of=config.as_of,
    )
    features = scorer.features(subscriptions, day=as_of, **inputs)
    clv = scorer.score(features, explain=False)["clv"]
    scorer.reference = ValueReference.from_clv(
        clv[~features["cancellation_pending"].to_numpy(dtype=bool)],
        settings={"clv_months": config.clv_months, "discount_rate": config.discount_rate},
    )
    from cx_models.drift import drift_reference

    live = features[~features["cancellation_pending"].to_numpy(dtype=bool)]
    frame = scorer.drift_frame(live)
    scorer.drift_reference = drift_reference(frame, frame.columns)
    timings["retention_fit_s"] = time.perf_counter() - t0
    counts = snaps.groupby("snapshot")["churn"].agg(["size", "mean"])
    design = {"final": {**snaps.attrs["snapshot_design"], "holdout": churn.holdout_},
              "evaluation": evaluation.get("design")}
    return ContractTrainingResult(
        scorer=scorer,
        config=config,
        evaluation=evaluation,
        features=features,
        snapshot_counts={day: {"relationships": int(r["size"]), "churn_rate": float(r["mean"])}
                         for day, r in counts.iterrows()},
        timings=timings,
        design=design,
    )
