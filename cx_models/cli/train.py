"""``cx-models train`` and ``cx-models churn evaluate``: the tracked model and its evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from cx_models.cli._app import (
    app,
    err,
    print_json,
    report_table,
    say_quarantine,
    user_errors,
)
from cx_models.cli.db_options import database_sources, database_targets
from cx_models.cli.options import (
    EVENT_FORMAT,
    FEATURE_SPEC,
    AsOfOpt,
    AttributesOpt,
    CategoricalOpt,
    ChurnClvModelOpt,
    ClvModelOpt,
    ContactCostOpt,
    DropoutCovariatesOpt,
    HorizonDaysOpt,
    IncentiveCostOpt,
    MarginOpt,
    MaxSnapshotsOpt,
    MaxTrainingRowsOpt,
    NcoWeightsOpt,
    PenalizerOpt,
    PurchaseCovariatesOpt,
    QuarantineOut,
    SaveRateOpt,
    StepOpt,
    SurveysOpt,
    TrackingUriOpt,
    TruthOpt,
    attribute_input,
    settings_from,
)
from cx_models.cli.subscriptions import (
    SUBSCRIPTION_SPEC,
    OptionalSubscriptionsOpt,
    OptionalTransactionsOpt,
)
from cx_models.errors import CXDataError
from cx_models.settings import EventFormat, FeatureSpec
from cx_models.sources import redacted

__all__ = ["describe_replay", "read_truth", "run_training", "train"]

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help=escape(
            "TOML or JSON file of training settings: any of as_of, horizon_days, time_unit, "
            "lookback_days, step_days, max_snapshots, max_training_rows, clv_model, "
            "churn_clv_model, purchase_covariates, dropout_covariates, penalizer, clv_months, "
            "discount_rate, calibration, random_state "
            "at the top or under [train], NCO "
            "weights under [nco.weights], the replayed campaign under [campaign] (contact_cost, "
            "save_rate, margin, incentive_cost, budget, max_contacts). Options given on the "
            "command line win."
        ),
    ),
]


def read_truth(path: Path | None):
    """Read a generator's truth.parquet (``--truth``), or ``None``."""
    import pandas as pd

    if path is None:
        return None
    if not path.exists():
        raise CXDataError(f"{path}: truth file not found")
    return pd.read_parquet(path)


def _names(text: str | None) -> list[str] | None:
    """Split a comma-separated option into names (``None`` when not given)."""
    if text is None:
        return None
    return [name.strip() for name in text.split(",") if name.strip()]


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the user gave an option (its value did not come from the default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"


@app.command()
@user_errors
@settings_from(spec=FEATURE_SPEC, fmt=EVENT_FORMAT, contract=SUBSCRIPTION_SPEC)
@database_sources("transactions", "surveys", "attributes", "subscriptions")
@database_targets("quarantine_out")
def train(
    ctx: typer.Context,
    as_of: AsOfOpt,
    transactions: OptionalTransactionsOpt = None,
    subscriptions: OptionalSubscriptionsOpt = None,
    horizon_days: HorizonDaysOpt = 90,
    surveys: SurveysOpt = None,
    attributes: AttributesOpt = None,
    categorical: CategoricalOpt = None,
    experiment: Annotated[str, typer.Option("--experiment", help="MLflow experiment.")] = (
        "cx-models"
    ),
    model_name: Annotated[str, typer.Option("--model-name", help="Registered model name.")] = (
        "cx-scorer"
    ),
    tracking_uri: TrackingUriOpt = None,
    promote: Annotated[
        bool,
        typer.Option(
            "--promote", help="Move the 'champion' alias to the new version.", metavar=""
        ),
    ] = False,
    promote_if_better: Annotated[
        bool,
        typer.Option(
            "--promote-if-better",
            help="Move 'champion' to the new version only if it beats the champion on its "
            "forward-evaluation window (see cx-models promote).",
            metavar="",
        ),
    ] = False,
    config: ConfigOpt = None,
    nco_weights: NcoWeightsOpt = None,
    step_days: StepOpt = None,
    max_snapshots: MaxSnapshotsOpt = None,
    max_training_rows: MaxTrainingRowsOpt = None,
    truth: TruthOpt = None,
    quarantine_out: QuarantineOut = None,
    clv_model: ClvModelOpt = "auto",
    churn_clv_model: ChurnClvModelOpt = None,
    purchase_covariates: PurchaseCovariatesOpt = None,
    dropout_covariates: DropoutCovariatesOpt = None,
    penalizer: PenalizerOpt = 0.0,
    contact_cost: ContactCostOpt = None,
    save_rate: SaveRateOpt = None,
    margin: MarginOpt = None,
    incentive_cost: IncentiveCostOpt = None,
    *,
    spec: FeatureSpec,
    fmt: EventFormat,
    contract,
) -> None:
    """Train, evaluate, log and register the CX scorer; print the run id and model URI.

    The forward evaluation replays a retention campaign on the window's known
    outcomes (contact cost 1, save rate 0.3 unless --contact-cost, --save-rate,
    --margin, --incentive-cost or a [campaign] table in --config say otherwise).
    """
    from cx_models.training.pipeline import load_config_file

    if promote and promote_if_better:
        raise CXDataError("give --promote or --promote-if-better, not both")
    settings = load_config_file(config) if config is not None else {}
    settings["as_of"] = as_of
    cli = {
        "horizon_days": horizon_days,
        "time_unit": spec.time_unit,
        "lookback_days": spec.lookback_days,
        "tx_numeric": list(spec.extras.numeric) or None,
        "tx_categorical": list(spec.extras.categorical) or None,
        "step_days": step_days,
        "max_snapshots": max_snapshots,
        "max_training_rows": max_training_rows,
        "clv_model": clv_model,
        "churn_clv_model": churn_clv_model,
        "purchase_covariates": _names(purchase_covariates),
        "dropout_covariates": _names(dropout_covariates),
        "penalizer": penalizer,
    }
    for name, value in cli.items():
        if _given(ctx, name) or name not in settings:
            if value is not None:
                settings[name] = value
    if fmt.ces_higher_is_better:
        settings["ces_higher_is_better"] = True
    campaign = {
        "contact_cost": contact_cost,
        "save_rate": save_rate,
        "margin": margin,
        "incentive_cost": incentive_cost,
    }
    if any(v is not None for v in campaign.values()):
        from dataclasses import asdict

        from cx_models.campaign_outcomes import EVALUATION_CAMPAIGN

        base = settings.get("campaign") or asdict(EVALUATION_CAMPAIGN)
        settings["campaign"] = {**base, **{k: v for k, v in campaign.items() if v is not None}}
    # a training config's top level holds settings; its weights sit under [nco.weights]
    # (read by load_config_file), then --nco-weights
    from cx_models.nco import parse_weights

    settings["nco_weights"] = parse_weights(nco_weights or "", base=settings.get("nco_weights"))
    if subscriptions is None and transactions is None:
        raise CXDataError(
            "give --transactions (a non-contractual business) or --subscriptions (contracts, "
            "memberships)"
        )
    if subscriptions is not None:
        from cx_models.cli.train_contract import run_contract_training, subscription_model_name

        model_name = model_name if _given(ctx, "model_name") else subscription_model_name()
        run = run_contract_training(
            subscriptions, surveys, transactions, settings=settings, fmt=fmt, contract=contract,
            target={"tracking_uri": tracking_uri, "experiment": experiment,
                    "model_name": model_name, "promote": promote},
            truth=truth, quarantine_out=quarantine_out,
            attributes=attribute_input(attributes, categorical),
        )
    else:
        from cx_models.cli.model_options import transaction_periods

        if (periods := transaction_periods(contract)) is not None:
            settings["period_days"] = periods
        run = run_training(
            transactions,
            surveys,
            settings=settings,
            fmt=fmt,
            target={
                "tracking_uri": tracking_uri,
                "experiment": experiment,
                "model_name": model_name,
                "promote": promote,
            },
            truth=truth,
            quarantine_out=quarantine_out,
            attributes=attribute_input(attributes, categorical),
        )
    if promote_if_better and not run["champion"]:
        run["champion"] = _promote_if_better(model_name, run)
    shown = {k: run[k] for k in ("run_id", "model_uri", "version", "champion", "tracking_uri")}
    print_json({**shown, "tracking_uri": redacted(shown["tracking_uri"])})


def describe_replay(campaign: dict | None) -> list[str]:
    """Describe the campaign replayed on the forward evaluation (one line per ranking)."""
    if not campaign or "model" not in campaign:
        return []
    s, m = campaign["settings"], campaign["model"]
    lines = [
        f"campaign replayed on the window (contact cost {s['contact_cost']:g}, save rate "
        f"{s['save_rate']:g}, margin {s['margin']:g}, incentive {s['incentive_cost']:g}): the "
        f"plan contacts {m['contacts']:,} of {m['customers']:,}, expected profit "
        f"{m['expected_profit']:,.2f}, realised {m['realised_profit']:,.2f} (best in hindsight "
        f"{m['best_realised_profit']:,.2f} at {m['best_contacts']:,} contacts)"
    ]
    for name, r in campaign.items():
        if name not in ("settings", "model"):
            lines.append(
                f"  ranked by {name}: realised {r['realised_profit']:,.2f} with "
                f"{r['contacts']:,} contacts"
            )
    return lines


def _promote_if_better(model_name: str, run: dict) -> bool:
    """Apply the promotion gate to the version just trained; say what it decided."""
    from cx_models.cli.promote import say_promotion
    from cx_models.training.promotion import NotPromoted, promote

    try:
        result = promote(model_name, run["version"], tracking_uri=run["tracking_uri"])
    except NotPromoted as exc:
        err.print(f"not promoted: {exc}", highlight=False, soft_wrap=True)
        return False
    say_promotion(result)
    return True


def run_training(
    transactions, surveys, *, settings: dict, fmt, target: dict, truth, quarantine_out,
    attributes=None,
):
    """Train with progress on stderr; return the run summary (also used by ``demo``)."""
    from dataclasses import replace

    from cx_models.io import table_format
    from cx_models.training.pipeline import TrainingConfig
    from cx_models.training.tracking import TrackingTarget
    from cx_models.training.train import train as train_job

    if quarantine_out is not None:
        table_format(quarantine_out, what="quarantine output")
    config = TrainingConfig(**settings)
    fmt = replace(fmt, ces_higher_is_better=config.ces_higher_is_better)
    with err.status("training") as status:
        run = train_job(
            transactions,
            surveys,
            config=config,
            fmt=fmt,
            target=TrackingTarget(**target),
            truth=read_truth(truth),
            progress=lambda message: (err.print(f"  {message}"), status.update(message)),
            attributes=attributes,
        )
    reports = run["reports"]
    err.print(report_table({k: None if r is None else r.to_dict() for k, r in reports.items()}))
    say_quarantine(
        quarantine_out, reports["transactions"], reports["surveys"], reports.get("attributes")
    )
    from cx_models.training.pipeline import describe_design

    for line in describe_design(run["design"]):
        err.print(line, highlight=False, soft_wrap=True)
    evaluation = run["evaluation"]
    if evaluation.get("skipped"):
        err.print(
            f"warning: no forward evaluation: {evaluation['gives_up']}",
            highlight=False,
            soft_wrap=True,
        )
    else:
        metrics = evaluation["metrics"]
        gap = evaluation["beats"]["bgnbd_prob_no_purchase"]["roc_auc"]
        err.print(
            f"churn ROC-AUC {metrics['model']['roc_auc']:.4f} on the {config.horizon_days} days "
            f"after {evaluation['evaluation_day']} ({gap:+.4f} against BG/NBD P(no purchase))"
        )
        for line in describe_replay(evaluation.get("campaign")):
            err.print(line, highlight=False, soft_wrap=True)
    err.print(
        f"run {run['run_id']}; model {run['model_uri']} (alias challenger"
        f"{', champion' if run['champion'] else ''}) in {redacted(run['tracking_uri'])}"
    )
    return run
