"""``cx-models monitor``: drift of the customer base from what the model was trained on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cx_models.cli._app import app, err, print_json, report_table, user_errors
from cx_models.cli.db_options import database_sources
from cx_models.cli.options import (
    EVENT_FORMAT,
    AsOfOpt,
    SurveysOpt,
    TrackingUriOpt,
    settings_from,
)
from cx_models.cli.score import ModelUriOpt, resolve_and_load
from cx_models.cli.subscriptions import (
    SUBSCRIPTION_SPEC,
    OptionalSubscriptionsOpt,
    OptionalTransactionsOpt,
)
from cx_models.errors import CXDataError
from cx_models.settings import EventFormat
from cx_models.timeutil import parse_as_of

__all__ = ["monitor"]


@app.command()
@user_errors
@settings_from(fmt=EVENT_FORMAT, contract=SUBSCRIPTION_SPEC)
@database_sources("transactions", "surveys", "subscriptions")
def monitor(
    model: ModelUriOpt,
    as_of: AsOfOpt,
    transactions: OptionalTransactionsOpt = None,
    subscriptions: OptionalSubscriptionsOpt = None,
    surveys: SurveysOpt = None,
    tracking_uri: TrackingUriOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Report (.json).")] = None,
    scored_at: Annotated[
        str | None,
        typer.Option(
            "--scored-at",
            help="Also score at this earlier day and compare with what followed (at most "
            "--as-of minus the horizon).",
        ),
    ] = None,
    *,
    fmt: EventFormat,
    contract,
) -> None:
    """Compare each churn feature and score at --as-of with the model's training reference.

    PSI over the reference deciles and the KS statistic D per column; verdict alarm if any
    PSI >= 0.25 or D >= 0.15, warn if any PSI >= 0.1, else ok.
    """
    from cx_models.drift import drift_report
    from cx_models.features import features_from_validated, to_pandas_features
    from cx_models.schemas import validate_events
    from cx_models.serving.predictors import as_predictor

    day = parse_as_of(as_of, name="--as-of")
    loaded, info = resolve_and_load(model, tracking_uri)
    if subscriptions is not None:
        if scored_at is not None:
            raise CXDataError("--scored-at is not available for subscription scorers yet")
        report = _contract_drift(loaded, info, subscriptions, surveys, transactions, day=day,
                                 contract=contract, fmt=fmt)
        _finish(report, info, day, out, tracking_uri)
        print_json(report)
        return
    if transactions is None:
        raise CXDataError("give --transactions, or --subscriptions for a subscription model")
    scorer = getattr(as_predictor(loaded), "scorer", None)
    reference = getattr(scorer, "drift_reference", None)
    if not reference:
        raise CXDataError(
            f"model {info['model_uri']} carries no drift reference (logged before cx-models "
            "recorded one): train it again to monitor it"
        )
    tx, sv = validate_events(
        transactions, surveys, as_of=day, fmt=fmt, extras=scorer.feature_spec.extras
    )
    sv_data = None if sv is None else sv.data
    table, _ = features_from_validated(tx.data, sv_data, as_of=day, spec=scorer.feature_spec)
    features = to_pandas_features(table, as_of=day, spec=scorer.feature_spec)
    err.print(report_table({"transactions": tx.report.to_dict(),
                            "surveys": None if sv is None else sv.report.to_dict()}))
    report = drift_report(scorer.drift_frame(features), reference)
    report.update(as_of=day.isoformat(), model_uri=info["model_uri"], customers=len(features))
    if scored_at is not None:
        from cx_models.realised import realised_performance

        report["realised"] = realised_performance(
            scorer,
            tx.data,
            sv_data,
            scored_at=parse_as_of(scored_at, name="--scored-at"),
            as_of=day,
        )
    _finish(report, info, day, out, tracking_uri)
    realised = report.get("realised")
    if realised:
        auc = "-" if realised["roc_auc"] is None else f"{realised['roc_auc']:.4f}"
        err.print(
            f"scored at {realised['scored_at']}: ROC-AUC {auc}, churn predicted "
            f"{realised['predicted_churn_rate']:.1%} vs observed "
            f"{realised['observed_churn_rate']:.1%}; spend predicted "
            f"{realised['spend_predicted']:,.0f} vs actual {realised['spend_actual']:,.0f}",
            highlight=False,
            soft_wrap=True,
        )
    print_json(report)


def _finish(report: dict, info: dict, day, out, tracking_uri) -> None:
    """Log the report under the model's run, write it, print the verdict."""
    from cx_models.io import write_text_atomic

    if info.get("run_id"):
        from cx_models.training.tracking import log_monitoring

        log_monitoring(info["run_id"], report, tracking_uri=tracking_uri)
    if out is not None:
        write_text_atomic(out, json.dumps(report, indent=2) + "\n")
    worst = ", ".join(
        f"{name} PSI {report['columns'][name]['psi']:.3f}" for name in report["largest_psi"][:3]
    )
    err.print(
        f"drift at {day} against {info['model_uri']}'s training reference: "
        f"{report['verdict']} (largest: {worst})",
        highlight=False,
        soft_wrap=True,
    )


def _contract_drift(loaded, info, subscriptions, surveys, transactions, *, day, contract, fmt):
    from cx_models.contract_inputs import validate_contract_inputs
    from cx_models.drift import drift_report
    from cx_models.serving.predictors import contract_scorer

    scorer = contract_scorer(loaded)
    if not scorer.drift_reference:
        raise CXDataError(f"model {info['model_uri']} carries no drift reference: train it "
                          "again to monitor it")
    inputs = validate_contract_inputs(subscriptions, as_of=day, spec=contract, surveys=surveys,
                                      transactions=transactions, fmt=fmt)
    err.print(report_table({k: None if r is None else r.to_dict()
                            for k, r in inputs.reports().items()}))
    frames = inputs.frames()
    features = scorer.features(inputs.subscriptions.data, day=day, surveys=frames["surveys"],
                               transactions=frames["transactions"])
    live = features[~features["cancellation_pending"].to_numpy(dtype=bool)]
    report = drift_report(scorer.drift_frame(live), scorer.drift_reference)
    report.update(as_of=day.isoformat(), model_uri=info["model_uri"], relationships=len(live))
    return report
