"""Training pipeline: CLV on all history, churn on leakage-safe snapshots, NCO reference.

Given validated events up to ``as_of`` (see :mod:`cx_models.schemas`):

1. **Forward evaluation** — the churn model is trained with data up to
   ``as_of - horizon`` and evaluated on the window after it against the
   baselines (:func:`cx_models.churn_eval.evaluate_churn`).
2. **Final churn model** — trained the same way on the snapshots whose label
   windows end at ``as_of`` (the latest held out for early stopping and
   calibration).
3. **CLV** — the configured (or, with ``"auto"``, chosen) transaction model +
   Gamma-Gamma fitted on all history to ``as_of``, with the configured customer
   attributes as covariates; beside it, when they differ, the churn features' own
   transaction model (:data:`~cx_models.training.config.CHURN_CLV_MODEL`).
4. **NCO value reference** — the CLV of every customer at ``as_of``, at the
   trained CLV settings, saved as quantiles.

The result is a :class:`~cx_models.scoring.CXScorer` plus everything a run
should record (configuration, evaluation, fit summaries).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pandas as pd
import polars as pl
from cx_models.training.config import CHURN_CLV_MODEL, TrainingConfig, load_config_file

from cx_models.churn_data import SnapshotCache, training_snapshots
from cx_models.churn_eval import evaluate_churn
from cx_models.clv_choice import CANDIDATES, choose_clv_model
from cx_models.clv_fallback import fit_snapshot_clv
from cx_models.errors import CXDataError
from cx_models.features import features_from_validated, to_pandas_features
from cx_models.models.churn import ChurnModel
from cx_models.nco import ValueReference
from cx_models.scoring import CXScorer
from cx_models.snapshot_design import NotEnoughHistory
from cx_models.timeutil import as_of_cutoff, parse_as_of

__all__ = [
    "CHURN_CLV_MODEL",
    "GIVES_UP",
    "TrainingConfig",
    "TrainingResult",
    "describe_design",
    "load_config_file",
    "train_scorer",
]


@dataclass
class TrainingResult:
    """What a training run produced."""

    scorer: CXScorer
    config: TrainingConfig
    evaluation: dict
    features: pd.DataFrame
    snapshot_counts: dict
    timings: dict
    design: dict = field(default_factory=dict)
    clv_choice: dict | None = None  # with clv_model="auto": the candidates and the choice

    def choice_metrics(self) -> dict:
        """Each candidate's holdout figures of the CLV model choice, as flat metrics."""
        candidates = (self.clv_choice or {}).get("candidates") or {}
        return {
            f"clv.choice.{name}.{key}": value
            for name, figures in candidates.items()
            for key, value in figures.items()
            if isinstance(value, int | float)
        }


def train_scorer(
    transactions: pl.DataFrame,
    surveys: pl.DataFrame | None,
    config: TrainingConfig,
    *,
    truth: pd.DataFrame | None = None,
    plots_dir=None,
    progress: Callable[[str], None] | None = None,
    attributes: pl.DataFrame | None = None,
) -> TrainingResult:
    """Run the pipeline in the module docstring on validated canonical frames.

    ``attributes`` (validated customer attributes, static) join every snapshot,
    the forward evaluation and the feature table at as_of, as churn features.
    """
    say = progress or (lambda message: None)
    timings = {}
    asked, choice = config, None
    _check_covariates(config, attributes)
    if config.clv_model == "auto":
        t0 = time.perf_counter()
        say("choosing the CLV model on a holdout inside the training data")
        choice = choose_clv_model(
            transactions, as_of=config.as_of, spec=config.feature_spec.core(),
            penalizer=config.penalizer,
            # BG/BB takes no covariates: with them it is no candidate
            candidates=CANDIDATES if config.covariates is not None else None,
        )
        say(f"CLV model: {choice['chosen']} ({choice['reason']})")
        # periods only where a model counts them (the features then leave them out)
        discrete = "bgbb" in (choice["chosen"], config.churn_clv_model)
        config = replace(config, clv_model=choice["chosen"],
                         period_days=config.period_days if discrete else None)
        timings["clv_choice_s"] = time.perf_counter() - t0

    def churn_model() -> ChurnModel:
        return ChurnModel(
            horizon_days=config.horizon_days,
            calibration=config.calibration,
            random_state=config.random_state,
        )

    # the evaluation's snapshots are days of the final model's design too: built once
    cache = SnapshotCache()
    t0 = time.perf_counter()
    say("forward evaluation: train to as_of - horizon, score the window after it")
    cut = parse_as_of(config.as_of) - dt.timedelta(days=config.horizon_days)
    try:
        evaluation = evaluate_churn(
            transactions,
            surveys,
            as_of=config.as_of,
            plan=config.snapshot_plan,
            model=churn_model(),
            truth=truth,
            plots_dir=plots_dir,
            campaign=config.campaign,
            attributes=attributes,
            cache=cache,
            baselines=(config.clv_model,),
        )
    except NotEnoughHistory as exc:
        evaluation = _skipped_evaluation(config, cut, exc)
        say(f"warning: forward evaluation skipped: {evaluation['reason']}; {GIVES_UP}")
    except CXDataError as exc:
        raise CXDataError(
            f"forward evaluation (a model trained to as_of - horizon = {cut}, scored on the "
            f"{config.horizon_days} days up to as_of {config.as_of}): {exc}"
        ) from None
    timings["evaluation_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    say("final churn model: snapshots whose label windows end at as_of")
    # the levels of extra transaction columns: learnt once at as_of, kept by the scorer
    plan = config.snapshot_plan.learn(
        transactions.filter(pl.col("timestamp") < as_of_cutoff(parse_as_of(config.as_of)))
    )
    spec = plan.spec
    snaps = training_snapshots(
        transactions, surveys, as_of=config.as_of, plan=plan, attributes=attributes, cache=cache,
    )
    del cache
    churn = churn_model().fit(snaps)
    timings["churn_fit_s"] = time.perf_counter() - t0
    design = {
        "final": {**snaps.attrs["snapshot_design"], "holdout": churn.holdout_},
        "evaluation": evaluation.get("design"),
        "evaluation_skipped": evaluation.get("reason") if evaluation.get("skipped") else None,
    }

    t0 = time.perf_counter()
    say("CLV on all history to as_of, and the NCO value reference")
    # the plain feature table at as_of: one CLV fit, with the configured model
    table, _ = features_from_validated(
        transactions, surveys, as_of=config.as_of, spec=spec, attributes=attributes,
    )
    features = to_pandas_features(table, as_of=parse_as_of(config.as_of), spec=spec)
    # refitted with a larger penalizer where the configured one is not identified (recorded)
    clv = fit_snapshot_clv(
        features, config.clv_model, penalizer=config.penalizer, covariates=config.covariates
    )
    reference_clv = clv.predict(
        features,
        horizon_days=config.horizon_days,
        clv_months=config.clv_months,
        discount_rate=config.discount_rate,
    )["clv"]
    reference = ValueReference.from_clv(
        reference_clv,
        settings={"clv_months": config.clv_months, "discount_rate": config.discount_rate},
    )
    churn_clv = None
    # the churn features' own CLV model: another model, or the same one without covariates
    if config.churn_feature_model != config.clv_model or config.covariates is not None:
        churn_clv = fit_snapshot_clv(
            features, config.churn_feature_model, penalizer=config.penalizer
        )
    design["penalized"] = [
        {"model": name, "model_name": fit.model, "penalizer": fit.penalizer}
        for name, fit in (("CLV", clv), ("churn features' CLV", churn_clv))
        if fit is not None and fit.penalizer != config.penalizer
    ]
    timings["clv_fit_s"] = time.perf_counter() - t0
    scorer = CXScorer(
        clv=clv,
        churn=churn,
        reference=reference,
        weights=config.nco_weights,
        clv_months=config.clv_months,
        discount_rate=config.discount_rate,
        feature_spec=spec,
        ces_higher_is_better=config.ces_higher_is_better,
        churn_clv=churn_clv,
    )
    from cx_models.drift import drift_reference

    reference_frame = scorer.drift_frame(features)
    scorer.drift_reference = drift_reference(reference_frame, reference_frame.columns)
    scorer.trained_as_of = config.as_of
    snapshot_counts = dict(sorted(snaps.attrs["snapshot_counts"].items()))
    return TrainingResult(
        scorer=scorer,
        config=asked,
        clv_choice=choice,
        evaluation=evaluation,
        features=features,
        snapshot_counts=snapshot_counts,
        timings=timings,
        design=design,
    )


def _check_covariates(config: TrainingConfig, attributes) -> None:
    """Covariates are customer attributes: refuse names that are not among them."""
    covariates = config.covariates
    if covariates is None:
        return
    given = [] if attributes is None else [c for c in attributes.columns if c != "customer_id"]
    unknown = [c for c in covariates.inputs if c not in given]
    if unknown:
        where = f"the attributes hold {', '.join(given)}" if given else "no --attributes given"
        raise CXDataError(
            f"CLV covariate(s) {', '.join(map(repr, unknown))} must be customer attributes "
            f"(--attributes; Python attributes=), fixed before the history modelled: {where}"
        )


#: What a run without a forward evaluation gives up (printed and logged with it).
GIVES_UP = (
    "without it there is no out-of-time check of the churn model and no comparison with the "
    "BTYD baselines on this data; train at a later as_of or with a shorter horizon to get one"
)


def _skipped_evaluation(config: TrainingConfig, cut: dt.date, exc: Exception) -> dict:
    return {
        "skipped": True,
        "reason": str(exc),
        "gives_up": GIVES_UP,
        "as_of": config.as_of,
        "evaluation_day": cut.isoformat(),
        "horizon_days": int(config.horizon_days),
        "metrics": {},
        "beats": {},
    }


def describe_design(design: dict) -> list[str]:
    """Return one line per snapshot design (final model, forward evaluation) and adaptation.

    Examples
    --------
    >>> final = {"rule": "short history", "snapshots": ["1997-07-01", "1997-06-11"],
    ...          "step_days": 20, "min_history_days": 30, "dropped": [],
    ...          "penalized": [{"snapshot": "1997-06-11", "penalizer": 0.001}],
    ...          "holdout": "latest snapshot"}
    >>> for line in describe_design({"final": final, "evaluation": None,
    ...                              "evaluation_skipped": "no snapshot"}):
    ...     print(line)
    final model: 2 snapshots, short history (30 days of history, every 20 days); held out: \
latest snapshot
      final model: CLV fit of 1997-06-11 penalized (0.001)
    forward evaluation: skipped (no snapshot)
    """
    lines = []
    for name, part in (("final model", design.get("final")), ("forward evaluation",
                                                              design.get("evaluation"))):
        if part is None:
            continue
        lines.append(
            f"{name}: {len(part['snapshots'])} snapshot{'s' * (len(part['snapshots']) != 1)}, "
            f"{part['rule']} ({part['min_history_days']} days of history, every "
            f"{part['step_days']} days); held out: {part['holdout']}"
        )
        for drop in part["dropped"]:
            lines.append(f"  {name}: snapshot {drop['snapshot']} dropped ({drop['reason']})")
        for pen in part["penalized"]:
            lines.append(
                f"  {name}: CLV fit of {pen['snapshot']} penalized ({pen['penalizer']:g})"
            )
        if part.get("sampled"):
            s = part["sampled"]
            lines.append(
                f"  {name}: trained on {s['kept']:,} of {s['rows']:,} snapshot rows (the same "
                f"random {s['share']:.1%} of every snapshot, seed {s['seed']}; "
                "--max-training-rows)"
            )
    if design.get("evaluation_skipped"):
        lines.append(f"forward evaluation: skipped ({design['evaluation_skipped']})")
    for pen in design.get("penalized") or []:
        lines.append(
            f"{pen['model']} ({pen['model_name']}): not identified with the penalizer asked, "
            f"fitted with {pen['penalizer']:g}"
        )
    return lines
