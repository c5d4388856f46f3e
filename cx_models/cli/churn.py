"""``cx-models churn evaluate``: the forward evaluation of the churn model alone."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from cx_models.cli._app import app, err, print_json, report_table, say_quarantine, user_errors
from cx_models.cli.db_options import database_sources, database_targets
from cx_models.cli.options import (
    EVENT_FORMAT,
    FEATURE_SPEC,
    AsOfOpt,
    AttributesOpt,
    CategoricalOpt,
    HorizonDaysOpt,
    MaxSnapshotsOpt,
    MaxTrainingRowsOpt,
    PlotsOpt,
    QuarantineOut,
    ReportOutOpt,
    StepOpt,
    SurveysOpt,
    TruthOpt,
    attribute_input,
    settings_from,
)
from cx_models.cli.subscriptions import (
    SUBSCRIPTION_SPEC,
    OptionalSubscriptionsOpt,
    OptionalTransactionsOpt,
)
from cx_models.cli.train import describe_replay, read_truth
from cx_models.errors import CXDataError
from cx_models.settings import MAX_TRAINING_ROWS, EventFormat, FeatureSpec, SnapshotPlan
from cx_models.timeutil import parse_as_of

__all__ = ["churn_app"]

churn_app = typer.Typer(
    help="Churn: leakage-safe snapshots, calibrated XGBoost, forward evaluation.",
    no_args_is_help=True,
)
app.add_typer(churn_app, name="churn")


@churn_app.command("evaluate")
@user_errors
@settings_from(spec=FEATURE_SPEC, fmt=EVENT_FORMAT, contract=SUBSCRIPTION_SPEC)
@database_sources("transactions", "surveys", "attributes", "subscriptions")
@database_targets("quarantine_out")
def churn_evaluate(
    as_of: AsOfOpt,
    horizon_days: HorizonDaysOpt,
    transactions: OptionalTransactionsOpt = None,
    subscriptions: OptionalSubscriptionsOpt = None,
    surveys: SurveysOpt = None,
    step_days: StepOpt = None,
    max_snapshots: MaxSnapshotsOpt = None,
    max_training_rows: MaxTrainingRowsOpt = None,
    truth: TruthOpt = None,
    plots: PlotsOpt = None,
    out: ReportOutOpt = None,
    quarantine_out: QuarantineOut = None,
    attributes: AttributesOpt = None,
    categorical: CategoricalOpt = None,
    *,
    spec: FeatureSpec,
    fmt: EventFormat,
    contract,
) -> None:
    """Train up to as_of - horizon and evaluate on the window after it, against baselines."""
    from cx_models.churn_eval import evaluate_churn
    from cx_models.io import table_format, write_text_atomic
    from cx_models.schemas import validate_events

    if quarantine_out is not None:
        table_format(quarantine_out, what="quarantine output")
    if subscriptions is not None:
        from cx_models.cli.train_contract import evaluate_contract_verb

        evaluate_contract_verb(
            subscriptions, surveys, transactions, as_of=as_of, horizon_days=horizon_days,
            step_days=step_days, max_snapshots=max_snapshots, lookback_days=spec.lookback_days,
            contract=contract, fmt=fmt, truth=truth, out=out, quarantine_out=quarantine_out,
            attributes=attribute_input(attributes, categorical),
        )
        return
    if transactions is None:
        raise CXDataError("give --transactions, or --subscriptions for a subscription business")
    from dataclasses import replace

    from cx_models.cli.model_options import transaction_periods

    if (periods := transaction_periods(contract)) is not None:  # BG/BB joins the baselines
        spec = replace(spec, period_days=periods)
    day = parse_as_of(as_of, name="--as-of")
    tx, sv = validate_events(transactions, surveys, as_of=day, fmt=fmt, extras=spec.extras)
    given = attribute_input(attributes, categorical)
    attrs = None
    if given is not None:
        from cx_models.contract import feature_columns

        attrs = given.validate(id_dtype=tx.data["customer_id"].dtype,
                               reserved=[*feature_columns(), *spec.added_columns()])
    reports = {"transactions": tx.report, "surveys": None if sv is None else sv.report,
               "attributes": None if attrs is None else attrs.report}
    err.print(report_table({k: None if r is None else r.to_dict() for k, r in reports.items()}))
    say_quarantine(quarantine_out, *reports.values())
    with err.status("building snapshots, training and evaluating forward in time"):
        report = evaluate_churn(
            tx.data,
            None if sv is None else sv.data,
            as_of=day,
            plan=SnapshotPlan(
                horizon_days=horizon_days,
                step_days=step_days,
                max_snapshots=max_snapshots,
                max_rows=(
                    MAX_TRAINING_ROWS if max_training_rows is None else max_training_rows or None
                ),
                spec=spec,
            ),
            truth=read_truth(truth),
            plots_dir=plots,
            attributes=None if attrs is None else attrs.data,
            baselines=("bgbb",) if periods is not None else (),
        )
    for key in [k for k in report if k.startswith("_")]:
        report.pop(key)
    table = Table(title=f"Churn within {horizon_days} days after {report['evaluation_day']}")
    for col in ("scorer", "ROC-AUC", "PR-AUC", "Brier", "lift@10%", "model beats by (AUC)"):
        table.add_column(col, justify="left" if col == "scorer" else "right")
    for name, m in report["metrics"].items():
        gap = report["beats"].get(name, {}).get("roc_auc")
        table.add_row(
            name,
            f"{m['roc_auc']:.4f}",
            f"{m['pr_auc']:.4f}",
            "-" if m["brier"] is None else f"{m['brier']:.4f}",
            f"{m['lift_top_decile']:.2f}",
            "" if gap is None else f"{gap:+.4f}",
        )
    err.print(table)
    for line in describe_replay(report.get("campaign")):
        err.print(line, highlight=False, soft_wrap=True)
    if out is not None:
        write_text_atomic(out, json.dumps(report, indent=2) + "\n")
        err.print(f"wrote the report to {out}")
    else:
        print_json(report)
