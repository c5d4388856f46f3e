"""Benchmark: raw transactions -> the full customer feature table, against lifetimes.

Generates (once, seeded) a synthetic base of about 10 M transactions and 1 M
customers under ``benchmarks/data/``, then times in separate processes, so
each one's peak memory is its own:

* cx-models ``build_features`` from the Parquet files (read + validate +
  features, transactions and surveys);
* cx-models ``build_features`` from an in-memory pandas frame (transactions
  only, the same input lifetimes gets);
* lifetimes' RFM-only ``summary_data_from_transaction_data`` on that frame.

Run: ``python benchmarks/features.py [--customers N]``. Prints one line per
run and the ratio lifetimes / cx-models.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
AS_OF = "2025-12-31"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(kind: str, data: Path) -> dict:
    import pandas as pd

    if kind == "cx-file":
        from cx_models.features import build_features

        t0 = time.perf_counter()
        build = build_features(data / "transactions.parquet", data / "surveys.parquet", as_of=AS_OF)
        seconds = time.perf_counter() - t0
        rows = len(build.features)
    elif kind == "cx-frame":
        from cx_models.features import build_features

        tx = pd.read_parquet(data / "transactions.parquet")
        t0 = time.perf_counter()
        build = build_features(tx, as_of=AS_OF)
        seconds = time.perf_counter() - t0
        rows = len(build.features)
    elif kind == "lifetimes":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from lifetimes.utils import summary_data_from_transaction_data
        tx = pd.read_parquet(data / "transactions.parquet")
        t0 = time.perf_counter()
        summary = summary_data_from_transaction_data(
            tx,
            "customer_id",
            "timestamp",
            monetary_value_col="amount",
            observation_period_end=AS_OF,
            freq="D",
        )
        seconds = time.perf_counter() - t0
        rows = len(summary)
    else:
        raise SystemExit(f"unknown worker {kind}")
    return {"kind": kind, "seconds": seconds, "customers": rows, "peak_rss_mb": peak_rss_mb()}


def run_worker(kind: str, data: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", kind, "--data", str(data)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_075_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--worker", default=None)
    parser.add_argument("--skip-lifetimes", action="store_true")
    args = parser.parse_args()
    data = args.data or HERE / "data" / f"base-{args.customers}-{args.seed}"
    if args.worker:
        print(json.dumps(worker(args.worker, data)))
        return

    if not (data / "transactions.parquet").exists():
        from cx_models.synthetic import generate_customer_base, write_customer_base

        t0 = time.perf_counter()
        base = generate_customer_base(args.customers, seed=args.seed)
        gen = time.perf_counter() - t0
        write_customer_base(base, data)
        print(
            f"generate: {args.customers:,} customers, {base.transactions.height:,} transactions, "
            f"{base.surveys.height:,} survey responses in {gen:.1f} s (written to {data})"
        )
        del base
    import polars as pl

    n_tx = pl.scan_parquet(data / "transactions.parquet").select(pl.len()).collect().item()
    print(f"input: {n_tx:,} transactions")
    results = [run_worker("cx-file", data), run_worker("cx-frame", data)]
    if not args.skip_lifetimes:
        results.append(run_worker("lifetimes", data))
    for r in results:
        print(
            f"{r['kind']:>10}: {r['seconds']:7.2f} s  {r['customers']:,} customers  "
            f"peak RSS {r['peak_rss_mb']:,.0f} MB"
        )
    if not args.skip_lifetimes:
        ref = results[-1]["seconds"]
        print(f"ratio lifetimes / cx-models (from a frame): {ref / results[1]['seconds']:.1f}x")
        print(
            f"ratio lifetimes / cx-models (from Parquet, with surveys): "
            f"{ref / results[0]['seconds']:.1f}x"
        )


if __name__ == "__main__":
    main()
