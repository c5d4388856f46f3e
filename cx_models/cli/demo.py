"""``cx-models demo``: the main job end to end, with the same steps as the verbs."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from cx_models.cli._app import app, err, read_frame, user_errors
from cx_models.cli.data import generate, write_features
from cx_models.cli.options import TrackingUriOpt
from cx_models.cli.report import write_report
from cx_models.cli.score import score_table_file
from cx_models.cli.train import run_training

__all__ = ["demo", "tool_path"]


def tool_path(name: str) -> str:
    """Return how to run a console script: its name when on PATH, else its full path."""
    if shutil.which(name):
        return name
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


@app.command()
@user_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("cx-demo"),
    customers: Annotated[
        int, typer.Option("--customers", min=1000, help="Customers to simulate.")
    ] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the simulation.")] = 0,
    tracking_uri: TrackingUriOpt = None,
    kind: Annotated[
        str,
        typer.Option("--kind", help="transactions (non-contractual) or subscriptions "
                     "(contractual; registered as cx-subscription-scorer)."),
    ] = "transactions",
) -> None:
    """Run the main job end to end: synthetic base -> tracked model -> scored table + report."""
    if kind not in ("transactions", "subscriptions"):
        from cx_models.errors import CXDataError

        raise CXDataError(f"--kind must be transactions or subscriptions, got {kind!r}")
    if kind == "subscriptions":
        from cx_models.cli.demo_contract import demo_subscriptions

        demo_subscriptions(out, customers=customers, seed=seed, tracking_uri=tracking_uri)
        return
    from cx_models.io import write_text_atomic
    from cx_models.nco import summarise
    from cx_models.settings import EventFormat, FeatureSpec, ScoreParams
    from cx_models.sources import EventInputs
    from cx_models.synthetic import SyntheticParams
    from cx_models.timeutil import parse_as_of

    data = out / "data"
    as_of = parse_as_of(SyntheticParams().end)
    err.rule("1. generate a synthetic customer base")
    generate(customers=customers, out=data, seed=seed)
    err.rule(f"2. customer features as of {as_of}")
    write_features(
        data / "transactions.parquet",
        data / "surveys.parquet",
        as_of=as_of,
        out=out / "features.parquet",
        spec=FeatureSpec(),
        fmt=EventFormat(),
        quarantine_out=out / "quarantine.csv",
    )
    err.rule("3. train, evaluate, log to MLflow and register the CX scorer")
    run = run_training(
        data / "transactions.parquet",
        data / "surveys.parquet",
        settings={"as_of": as_of.isoformat(), "horizon_days": 90, "clv_model": "auto"},
        fmt=EventFormat(),
        target={"tracking_uri": tracking_uri},
        truth=data / "truth.parquet",
        quarantine_out=None,
    )
    write_text_atomic(out / "churn_evaluation.json", json.dumps(run["evaluation"], indent=2))
    err.rule("4. score every customer with the registered champion")
    scored, meta = score_table_file(
        "models:/cx-scorer@champion",
        out / "features.parquet",
        out / "scored.parquet",
        tracking_uri=run["tracking_uri"],
        params=ScoreParams(),
        chunk_customers=200_000,
        quiet=False,
    )
    if meta["version"] != run["version"]:
        err.print(
            f"note: this run registered version {run['version']} as challenger; the champion "
            f"that scored is version {meta['version']} (train with --promote to move it)"
        )
    plan_summary = _campaign(scored, out)
    monitored = _monitor(out, run, tracking_uri=run["tracking_uri"], as_of=as_of)
    write_report(
        out / "scored.parquet",
        out / "report.html",
        history_from=EventInputs(data / "transactions.parquet"),
        plan_path=out / "plan.parquet",
    )
    summary = summarise(scored).iloc[0]
    err.print(
        f"{len(scored):,} customers scored: NPS {summary['nps']:.1f} "
        f"({summary['nps_respondents']:,} respondents), predicted 90-day churn rate "
        f"{summary['predicted_churn_rate']:.1%}, value at risk "
        f"{summary['total_value_at_risk']:,.0f} of 12-month CLV {summary['total_clv']:,.0f}"
    )
    err.rule("outputs")
    err.print(f"  synthetic data      {data}/ (transactions, surveys, truth, params)")
    err.print(f"  features            {out / 'features.parquet'}")
    err.print(f"  churn evaluation    {out / 'churn_evaluation.json'}")
    err.print(f"  scored customers    {out / 'scored.parquet'} (customer order; rank by priority)")
    err.print(f"  at-risk report      {out / 'report.html'} (open it in a browser)")
    err.print(
        f"  campaign plan       {out / 'plan.parquet'} and {out / 'profit_curve.svg'}: contact "
        f"{plan_summary['contacted']:,}, expected profit {plan_summary['expected_profit']:,.0f} "
        "(illustrative: contact cost 5, save rate 0.15 — an input, not an estimate)"
    )
    err.print(
        f"  monitor report      {out / 'monitor.json'}: drift {monitored['verdict']} at {as_of}"
        + _realised_line(monitored.get("realised"))
    )
    err.print(f"  model trained       {run['model_uri']}")
    err.print(f"  model that scored   {meta['model_uri']} (models:/cx-scorer@champion)")
    err.print(f"  tracking store      {run['tracking_uri']}")
    mlflow_ui = f"{tool_path('mlflow')} ui --backend-store-uri {run['tracking_uri']}"
    err.print(f"  MLflow UI           {mlflow_ui}")
    rescore = f"{tool_path('cx-models')} score --model models:/cx-scorer@champion ..."
    err.print(f"  score again         {rescore}")


def _monitor(out: Path, run: dict, *, tracking_uri: str, as_of) -> dict:
    """Write ``monitor.json``: the champion's drift at as_of, the forward model's realised churn.

    The champion was trained at as_of, so no horizon has passed since; the realised
    performance shown is the forward-evaluation model's (trained to as_of - horizon)
    on the horizon that followed, as ``cx-models monitor --scored-at`` computes for an
    older model.
    """
    from cx_models.cli.score import resolve_and_load
    from cx_models.drift import drift_report
    from cx_models.io import read_table_metadata, write_text_atomic
    from cx_models.serving.predictors import as_predictor

    loaded, info = resolve_and_load("models:/cx-scorer@champion", tracking_uri)
    scorer = as_predictor(loaded).scorer
    features = read_frame(out / "features.parquet", "features")
    features.attrs["time_unit"] = read_table_metadata(out / "features.parquet").get(
        "time_unit", "D"
    )
    report = drift_report(scorer.drift_frame(features), scorer.drift_reference)
    report.update(as_of=as_of.isoformat(), model_uri=info["model_uri"], customers=len(features))
    evaluation = run["evaluation"]
    if not evaluation.get("skipped"):
        m = evaluation["metrics"]["model"]
        report["realised"] = {
            "model": "forward evaluation (trained to as_of - horizon)",
            "scored_at": evaluation["evaluation_day"],
            "as_of": evaluation["as_of"],
            "horizon_days": evaluation["horizon_days"],
            "customers": m["n"],
            "roc_auc": m["roc_auc"],
            "brier": m["brier"],
            "predicted_churn_rate": m["mean_predicted"],
            "observed_churn_rate": m["churn_rate"],
        }
    write_text_atomic(out / "monitor.json", json.dumps(report, indent=2) + "\n")
    return report


def _realised_line(realised: dict | None) -> str:
    if not realised:
        return ""
    return (
        f"; forward model on {realised['scored_at']} + {realised['horizon_days']} days: "
        f"ROC-AUC {realised['roc_auc']:.3f}, churn predicted "
        f"{realised['predicted_churn_rate']:.1%} vs observed {realised['observed_churn_rate']:.1%}"
    )


def _campaign(scored, out):
    """Write the demo's illustrative campaign plan (`cx-models target`, example economics)."""
    from cx_models.campaign import CampaignSettings, plan_campaign
    from cx_models.cli.target import write_profit_curve
    from cx_models.io import write_table

    plan, summary = plan_campaign(scored, CampaignSettings(contact_cost=5.0, save_rate=0.15))
    write_table(plan, out / "plan.parquet", metadata={"campaign": summary})
    write_profit_curve(plan, summary["chosen"], out / "profit_curve.svg")
    return summary
