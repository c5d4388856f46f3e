"""``cx-models demo --kind subscriptions``: the contractual main job end to end."""

from __future__ import annotations

import json
from pathlib import Path

from cx_models.cli._app import err

__all__ = ["MODEL_NAME", "demo_subscriptions"]

#: The registered name of the subscription scorer (beside ``cx-scorer``).
MODEL_NAME = "cx-subscription-scorer"


def demo_subscriptions(out: Path, *, customers: int, seed: int, tracking_uri) -> None:
    """Generate a subscription base, train and register, score, plan, report."""
    from cx_models.campaign import CampaignSettings, plan_campaign
    from cx_models.cli.data import generate
    from cx_models.cli.demo import tool_path
    from cx_models.cli.report import write_report
    from cx_models.cli.score_contract import score_contract
    from cx_models.cli.target import write_profit_curve
    from cx_models.cli.train_contract import run_contract_training
    from cx_models.io import read_table_metadata, write_table, write_text_atomic
    from cx_models.settings import EventFormat, ScoreParams
    from cx_models.subscriptions import SubscriptionSpec
    from cx_models.synthetic_subscriptions import SubscriptionParams
    from cx_models.timeutil import parse_as_of

    data = out / "data"
    params = SubscriptionParams()
    as_of = parse_as_of(params.end)
    spec = SubscriptionSpec(period=params.period_days)
    err.rule("1. generate a synthetic subscription base")
    generate(customers=customers, out=data, seed=seed, kind="subscriptions")
    err.rule("2. train, evaluate, log to MLflow and register the subscription scorer")
    run = run_contract_training(
        data / "subscriptions.parquet", data / "surveys.parquet", None,
        settings={"as_of": as_of.isoformat(), "horizon_days": 91}, fmt=EventFormat(),
        contract=spec, target={"tracking_uri": tracking_uri, "model_name": MODEL_NAME},
        truth=data / "truth.parquet", quarantine_out=None,
    )
    write_text_atomic(out / "churn_evaluation.json", json.dumps(run["evaluation"], indent=2))
    err.rule("3. score every active relationship with the registered champion")
    champion = f"models:/{MODEL_NAME}@champion"
    score_contract(
        champion, out / "scored.parquet", data / "subscriptions.parquet",
        surveys=data / "surveys.parquet", transactions=None, attributes=None, as_of=as_of,
        spec=SubscriptionSpec(), fmt=EventFormat(), params=ScoreParams(),
        tracking_uri=run["tracking_uri"], quiet=False, quarantine_out=None,
    )
    import pandas as pd

    scored = pd.read_parquet(out / "scored.parquet")
    plan, summary = plan_campaign(scored, CampaignSettings(contact_cost=5.0, save_rate=0.15))
    write_table(plan, out / "plan.parquet", metadata={"campaign": summary})
    write_profit_curve(plan, summary["chosen"], out / "profit_curve.svg")
    write_report(out / "scored.parquet", out / "report.html", plan_path=out / "plan.parquet",
                 subscriptions=data / "subscriptions.parquet", contract=SubscriptionSpec(),
                 segment="plan")
    meta = read_table_metadata(out / "scored.parquet")
    err.print(
        f"{len(scored):,} active relationships scored: predicted 91-day churn rate "
        f"{scored['churn_risk'].mean():.1%}, value at risk {scored['value_at_risk'].sum():,.0f} "
        f"of 12-month CLV {scored['clv'].sum():,.0f}"
    )
    err.rule("outputs")
    err.print(f"  synthetic data      {data}/ (subscriptions, surveys, truth, params)")
    err.print(f"  churn evaluation    {out / 'churn_evaluation.json'}")
    err.print(f"  scored              {out / 'scored.parquet'} (one row per active relationship)")
    err.print(f"  at-risk report      {out / 'report.html'} (retention curves, cohort matrix)")
    err.print(f"  campaign plan       {out / 'plan.parquet'}: contact {summary['contacted']:,}, "
              f"expected profit {summary['expected_profit']:,.0f} (illustrative economics)")
    err.print(f"  model trained       {run['model_uri']}")
    err.print(f"  model that scored   {meta['model_uri']} ({champion})")
    err.print(f"  tracking store      {run['tracking_uri']}")
    err.print(f"  score again         {tool_path('cx-models')} score --model {champion} "
              "--subscriptions ... --as-of ...")
