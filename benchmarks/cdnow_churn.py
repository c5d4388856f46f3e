"""Churn on real data: CDNOW master cut at several days, against the BTYD baselines.

For each cut (as_of, horizon) the scorer is trained with the defaults on the
transactions up to as_of (no MLflow), scores every customer at as_of, and is
compared with what really happened in the ``horizon`` days after it (no purchase =
churn) — beside lifetimes' BG/NBD expected purchases for the horizon (fitted in days
on distinct purchase days), our BG/NBD P(no purchase) and days since the last
purchase. The forward evaluation's own figures (model trained to as_of - horizon)
are printed too.

    python benchmarks/cdnow_churn.py                      # the cuts of the issue
    python benchmarks/cdnow_churn.py --cuts 1997-09-30:91
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
import warnings

import numpy as np
import pandas as pd
import polars as pl
from cx_models.training.pipeline import TrainingConfig, train_scorer
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from cx_models.datasets import load_cdnow
from cx_models.schemas import validate_transactions
from cx_models.settings import MAX_TRAINING_ROWS

DEFAULT_CUTS = [
    "1997-06-30:91",
    "1997-09-30:30",
    "1997-09-30:61",
    "1997-09-30:91",
    "1997-12-31:91",
    "1998-03-31:91",
    "1998-06-30:91",
]


def _lift(y: np.ndarray, s: np.ndarray) -> float:
    top = np.argsort(-s, kind="stable")[: max(1, len(s) // 10)]
    return float(y[top].mean() / y.mean())


def _metrics(y, s, probability: bool) -> dict:
    return {
        "roc_auc": roc_auc_score(y, s),
        "pr_auc": average_precision_score(y, s),
        "brier": brier_score_loss(y, s) if probability else None,
        "lift": _lift(y, s),
        "mean": float(np.mean(s)) if probability else None,
    }


def _lifetimes_expected(tx: pd.DataFrame, as_of: dt.date, horizon: int) -> pd.Series:
    from lifetimes import BetaGeoFitter
    from lifetimes.utils import summary_data_from_transaction_data

    days = tx.assign(day=tx["timestamp"].dt.normalize()).drop_duplicates(["customer_id", "day"])
    rfm = summary_data_from_transaction_data(
        days, "customer_id", "day", observation_period_end=pd.Timestamp(as_of), freq="D"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bg = BetaGeoFitter(penalizer_coef=0.0).fit(rfm["frequency"], rfm["recency"], rfm["T"])
        expected = bg.conditional_expected_number_of_purchases_up_to_time(
            horizon, rfm["frequency"], rfm["recency"], rfm["T"]
        )
    return expected


def run_cut(tx_all: pl.DataFrame, as_of: dt.date, horizon: int, max_rows=MAX_TRAINING_ROWS) -> dict:
    cutoff = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    end = cutoff + dt.timedelta(days=horizon)
    tx = tx_all.filter(pl.col("timestamp") < cutoff)
    began = time.perf_counter()
    result = train_scorer(
        tx,
        None,
        TrainingConfig(as_of=as_of.isoformat(), horizon_days=horizon, max_training_rows=max_rows),
    )
    seconds = time.perf_counter() - began
    scored = result.scorer.score(result.features, explain=False)
    future = tx_all.filter((pl.col("timestamp") >= cutoff) & (pl.col("timestamp") < end))
    buyers = set(future["customer_id"].unique().to_list())
    ids = scored["customer_id"].tolist()
    y = np.array([0 if c in buyers else 1 for c in ids])
    if y.min() == y.max():  # the data end at as_of: nothing to compare with
        return {
            "as_of": as_of,
            "horizon": horizon,
            "customers": len(ids),
            "observed": None,
            "rows": {},
            "evaluation": result.evaluation,
            "design": result.design,
            "train_s": seconds,
        }
    expected = _lifetimes_expected(tx.to_pandas(), as_of, horizon).reindex(ids).to_numpy()
    features = result.features.set_index("customer_id").loc[ids]
    rows = {
        "model churn_risk": _metrics(y, scored["churn_risk"].to_numpy(), True),
        "lifetimes BG/NBD -E[purchases]": _metrics(y, -expected, False),
        "BG/NBD P(no purchase)": _metrics(y, scored["prob_no_purchase"].to_numpy(), True),
        "days since last purchase": _metrics(
            y, features["days_since_last_purchase"].to_numpy(), False
        ),
    }
    return {
        "as_of": as_of,
        "horizon": horizon,
        "customers": len(ids),
        "observed": float(y.mean()),
        "rows": rows,
        "evaluation": result.evaluation,
        "design": result.design,
        "train_s": seconds,
    }


def _fmt(value, digits=4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuts", nargs="*", default=DEFAULT_CUTS, help="AS_OF:HORIZON ...")
    parser.add_argument("--dataset", default="master", choices=["master", "sample"])
    parser.add_argument(
        "--max-training-rows",
        type=int,
        default=MAX_TRAINING_ROWS,
        help="cap on churn training rows (0: all)",
    )
    args = parser.parse_args()
    tx_all = validate_transactions(load_cdnow(args.dataset), as_of="1998-06-30").data
    for cut in args.cuts:
        day, horizon = cut.split(":")
        out = run_cut(tx_all, dt.date.fromisoformat(day), int(horizon), args.max_training_rows)
        observed = "-" if out["observed"] is None else f"{out['observed']:.3f}"
        print(
            f"\n## CDNOW {args.dataset} at {out['as_of']}, horizon {out['horizon']} days: "
            f"{out['customers']:,} customers, observed churn {observed}, trained in "
            f"{out['train_s']:.1f} s ({out['design']['final']['rule']}, "
            f"{len(out['design']['final']['snapshots'])} snapshots, "
            f"sampled: {out['design']['final'].get('sampled')})"
        )
        print("| scorer | ROC-AUC | PR-AUC | Brier | top-decile lift | mean |")
        print("|---|---|---|---|---|---|")
        for name, m in out["rows"].items():
            print(
                f"| {name} | {_fmt(m['roc_auc'])} | {_fmt(m['pr_auc'])} | {_fmt(m['brier'])} "
                f"| {_fmt(m['lift'], 3)} | {_fmt(m['mean'], 3)} |"
            )
        ev = out["evaluation"]
        if ev.get("skipped"):
            print(f"forward evaluation skipped: {ev['reason']}")
            continue
        print(f"forward evaluation (trained to {ev['evaluation_day']}):")
        for name, m in ev["metrics"].items():
            print(f"  {name:28s} ROC-AUC {_fmt(m['roc_auc'])}  Brier {_fmt(m.get('brier'))}")


if __name__ == "__main__":
    main()
