"""Benchmark: score a subscription base from raw subscriptions + surveys with the CLI.

For each data shape:

1. generates (once, seeded) a training sample of 20,000 subscribers and the scoring base
   of ``--customers`` (default 1 M) under ``benchmarks/data/``;
2. trains the subscription scorer on the sample with ``cx-models train --subscriptions``
   into a local tracking store;
3. times ``cx-models score --subscriptions --quiet`` end to end (read, validate,
   relationships, features, churn, CLV, NCO, drivers, write) in a fresh process, with
   its peak RSS.

Shapes: ``generator`` (the generator's defaults: 30-day periods, θ ~ Beta(0.9, 2.5));
``long-tenure`` (θ ~ Beta(0.6, 12): most customers stay for years, so far more of the
base is active at as_of); ``weekly`` (7-day periods: many more renewals per
relationship). No peer library scores contractual relationships (lifetimes has no
sBG; pymc-marketing's is a Bayesian fit, no scorer), so the figure is compared with
the issue's goal (≤ 20 s per 1 M subscribers) and, as a ratio, with the time to
read and validate the same files alone (the floor of any scorer).

Run: ``python benchmarks/subscriptions_score.py [--customers 1000000] [--shapes generator]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
AS_OF = "2025-12-31"
SHAPES = {
    "generator": {},
    "long-tenure": {"alpha": 0.6, "beta": 12.0},
    "weekly": {"period_days": 7},
}


def cli() -> str:
    return str(Path(sys.executable).with_name("cx-models"))


def ensure_base(shape: str, customers: int, seed: int) -> Path:
    from cx_models.synthetic_subscriptions import (
        SubscriptionParams,
        generate_subscription_base,
        write_subscription_base,
    )

    out = DATA / f"subs-{shape}-{customers}-{seed}"
    if not (out / "subscriptions.parquet").exists():
        params = dataclasses.replace(SubscriptionParams(), **SHAPES[shape])
        write_subscription_base(generate_subscription_base(customers, seed=seed, params=params),
                                out)
    return out


_WRAP = (
    "import resource, subprocess, sys, time; t = time.perf_counter();"
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL);"
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def timed(args: list[str]) -> tuple[float, float]:
    """Run a command in a fresh process: (seconds, its own peak RSS in MB)."""
    done = subprocess.run([sys.executable, "-c", _WRAP, *args], check=True,
                          capture_output=True, text=True)
    seconds, rss = done.stdout.split()
    return float(seconds), float(rss) / 1024


def validate_only(base: Path) -> float:
    code = (
        "import time; t=time.perf_counter();"
        "from cx_models.subscriptions import validate_subscriptions;"
        "from cx_models.schemas import validate_surveys;"
        f"validate_subscriptions('{base}/subscriptions.parquet', as_of='{AS_OF}');"
        f"validate_surveys('{base}/surveys.parquet', as_of='{AS_OF}');"
        "print(time.perf_counter()-t)"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                          text=True)
    return float(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    args = parser.parse_args()
    store = f"sqlite:///{DATA}/subs-mlruns/mlflow.db"
    (DATA / "subs-mlruns").mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at start")
    rows = []
    for shape in args.shapes:
        sample = ensure_base(shape, 20_000, 1)
        base = ensure_base(shape, args.customers, 0)
        period = str(SHAPES[shape].get("period_days", 30))
        name = f"subs-bench-{shape}"
        subprocess.run([
            cli(), "train", "--subscriptions", f"{sample}/subscriptions.parquet", "--surveys",
            f"{sample}/surveys.parquet", "--period-days", period, "--as-of", AS_OF,
            "--horizon-days", "91", "--tracking-uri", store, "--model-name", name, "--promote",
        ], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out = DATA / f"scored-subs-{shape}.parquet"
        load = os.getloadavg()[0]
        seconds, rss = timed([
            cli(), "score", "--model", f"models:/{name}@champion", "--tracking-uri", store,
            "--subscriptions", f"{base}/subscriptions.parquet", "--surveys",
            f"{base}/surveys.parquet", "--as-of", AS_OF, "--out", str(out), "--quiet",
        ])
        import polars as pl

        scored = pl.scan_parquet(out).select(pl.len()).collect().item()
        floor = validate_only(base)
        rows.append((shape, args.customers, scored, seconds, rss, floor, load))
    print(f"{'shape':12s} {'subscribers':>11s} {'scored':>9s} {'seconds':>8s} {'peak MB':>8s} "
          f"{'validate s':>10s} {'ratio':>6s} {'load':>5s}")
    for shape, n, scored, seconds, rss, floor, load in rows:
        print(f"{shape:12s} {n:11,d} {scored:9,d} {seconds:8.1f} {rss:8.0f} {floor:10.1f} "
              f"{seconds / floor:6.1f} {load:5.2f}")
    print("goal: <= 20 s per 1 M subscribers (issue 17); ratio = scoring / read + validate")


if __name__ == "__main__":
    main()
