"""``cx-models train --subscriptions``: the contractual kind's training run, with progress."""

from __future__ import annotations

from cx_models.cli._app import err, report_table, say_quarantine
from cx_models.cli.train import read_truth
from cx_models.sources import redacted

__all__ = [
    "describe_contract_evaluation",
    "evaluate_contract_verb",
    "run_contract_training",
    "subscription_model_name",
]


def describe_contract_evaluation(evaluation: dict) -> list[str]:
    """One line per scorer of the contractual forward evaluation."""
    metrics = evaluation["metrics"]
    lines = [
        f"churn ROC-AUC {metrics['model']['roc_auc']:.4f} on the {evaluation['horizon_days']} "
        f"days after {evaluation['evaluation_day']} ({evaluation['relationships']:,} active "
        f"relationships, churn rate {evaluation['churn_rate']:.3f})"
    ]
    for name in ("sbg_churn_prob", "km_churn_prob", "logistic_regression",
                 "ceiling_true_churn_prob"):
        if name in metrics:
            gap = evaluation["beats"][name]["roc_auc"]
            lines.append(f"  {name}: ROC-AUC {metrics[name]['roc_auc']:.4f} (model {gap:+.4f}), "
                         f"Brier {metrics[name]['brier']:.4f} vs {metrics['model']['brier']:.4f}")
    return lines


def run_contract_training(subscriptions, surveys, transactions, *, settings: dict, fmt,
                          contract, target: dict, truth, quarantine_out, attributes=None):
    """Train the contractual scorer with progress on stderr; return the run summary."""
    from dataclasses import replace

    from cx_models.io import table_format
    from cx_models.training.pipeline import TrainingConfig
    from cx_models.training.tracking import TrackingTarget
    from cx_models.training.train_contract import train_subscriptions

    if quarantine_out is not None:
        table_format(quarantine_out, what="quarantine output")
    contract.require_period()
    config = TrainingConfig(**settings)
    fmt = replace(fmt, ces_higher_is_better=config.ces_higher_is_better)
    with err.status("training") as status:
        run = train_subscriptions(
            subscriptions, surveys, config=config, spec=contract, transactions=transactions,
            attributes=attributes, fmt=fmt, target=TrackingTarget(**target),
            truth=read_truth(truth),
            progress=lambda message: (err.print(f"  {message}"), status.update(message)),
        )
    reports = run["reports"]
    err.print(report_table({k: None if r is None else r.to_dict() for k, r in reports.items()}))
    say_quarantine(quarantine_out, *[r for r in reports.values() if r is not None])
    for line in describe_contract_evaluation(run["evaluation"]):
        err.print(line, highlight=False, soft_wrap=True)
    err.print(
        f"run {run['run_id']}; model {run['model_uri']} (alias challenger"
        f"{', champion' if run['champion'] else ''}) in {redacted(run['tracking_uri'])}"
    )
    return run


def subscription_model_name() -> str:
    """Return the default registered name of a subscription scorer (not ``cx-scorer``).

    The other kind's champion stays where it is.
    """
    from cx_models.cli.demo_contract import MODEL_NAME

    return MODEL_NAME


def evaluate_contract_verb(subscriptions, surveys, transactions, *, as_of, horizon_days,
                           step_days, max_snapshots, lookback_days, contract, fmt, truth, out,
                           quarantine_out, attributes) -> None:
    """``cx-models churn evaluate --subscriptions``: the contractual forward evaluation."""
    import json

    from cx_models.contract_churn import ContractPlan, evaluate_contract_churn
    from cx_models.contract_inputs import validate_contract_inputs
    from cx_models.io import write_text_atomic

    contract.require_period()
    inputs = validate_contract_inputs(subscriptions, as_of=as_of, spec=contract, surveys=surveys,
                                      transactions=transactions, attributes=attributes, fmt=fmt)
    reports = inputs.reports()
    err.print(report_table({k: None if r is None else r.to_dict() for k, r in reports.items()}))
    say_quarantine(quarantine_out, *[r for r in reports.values() if r is not None])
    plan = ContractPlan(horizon_days=horizon_days, step_days=step_days,
                        max_snapshots=max_snapshots or 6, lookback_days=lookback_days,
                        ces_higher_is_better=fmt.ces_higher_is_better)
    with err.status("building snapshots, training and evaluating forward in time"):
        report = evaluate_contract_churn(
            inputs.subscriptions.data, as_of=as_of, plan=plan, spec=contract,
            truth=read_truth(truth), **inputs.frames(),
        )
    report = {k: v for k, v in report.items() if not k.startswith("_")}
    for line in describe_contract_evaluation(report):
        err.print(line, highlight=False, soft_wrap=True)
    if out is not None:
        write_text_atomic(out, json.dumps(report, indent=2) + "\n")
        err.print(f"wrote the evaluation to {out}")
