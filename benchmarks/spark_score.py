"""Benchmark: ``cx-models score --engine spark`` (local mode) against one machine and lifetimes.

Scores the same base three ways, each in a fresh process, with the model that
``batch_score.py`` trains (``models:/cx-bench@champion`` in ``benchmarks/data/mlruns``):

1. ``cx-models score`` — one machine, streamed chunks;
2. ``cx-models score --engine spark --spark-master local[2]`` — validation, features
   and the global rank in Spark, the model through ``mlflow.pyfunc.spark_udf``;
3. lifetimes' RFM summary + BG/NBD + Gamma-Gamma CLV (no churn, no surveys).

It then checks that the Spark table equals the single-machine one (largest relative
difference per column). Spark on one 2-core machine is about overheads (JVM start,
Python workers, Arrow transfers), not speed: the point of the engine is running
where the data lives, on many machines. Needs the ``spark`` extra and Java 17+.

Run: ``python benchmarks/spark_score.py [--customers 200000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from batch_score import AS_OF, DATA, _clv_params, cli, ensure_base, timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{DATA / 'mlruns' / 'mlflow.db'}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PYSPARK_PYTHON": sys.executable,
    }
    base = ensure_base(args.customers, 2)
    model = "models:/cx-bench@champion"
    common = [
        "score",
        "--model",
        model,
        "--transactions",
        str(base / "transactions.parquet"),
        "--surveys",
        str(base / "surveys.parquet"),
        "--as-of",
        AS_OF,
        "--quiet",
    ]
    single_out = DATA / f"scored-single-{args.customers}.parquet"
    spark_out = DATA / f"scored-spark-{args.customers}.parquet"
    single_s, single_rss = timed([cli(), *common, "--out", str(single_out)], env)
    print(
        f"one machine: {args.customers:,} customers in {single_s:.1f} s, peak {single_rss:,.0f} MB"
    )
    spark_s, spark_rss = timed(
        [
            cli(),
            *common,
            "--engine",
            "spark",
            "--spark-master",
            args.master,
            "--out",
            str(spark_out),
        ],
        env,
    )
    del spark_rss  # the JVM and the Python workers are other processes: not comparable
    print(f"Spark {args.master}: {args.customers:,} customers in {spark_s:.1f} s")

    import pyarrow.parquet as pq

    meta = json.loads(pq.read_schema(single_out).metadata[b"cx_models"])
    (DATA / "bench-clv.json").write_text(json.dumps(_clv_params(env, meta)))
    ref = subprocess.run(
        [sys.executable, str(HERE / "batch_score.py"), "--lifetimes-worker", str(base)],
        check=True,
        capture_output=True,
        text=True,
    )
    lt = json.loads(ref.stdout.strip().splitlines()[-1])
    print(
        f"lifetimes RFM + BG/NBD + Gamma-Gamma CLV: {lt['seconds']:.1f} s; ratios lifetimes / "
        f"one machine {lt['seconds'] / single_s:.2f}x, "
        f"lifetimes / Spark {lt['seconds'] / spark_s:.2f}x"
    )
    _compare(single_out, spark_out)


def _compare(single_out: Path, spark_out: Path) -> None:
    import numpy as np
    import pandas as pd

    a = pd.read_parquet(single_out).sort_values("customer_id").reset_index(drop=True)
    b = pd.read_parquet(spark_out).sort_values("customer_id").reset_index(drop=True)
    assert len(a) == len(b) and list(a.columns) == list(b.columns), "different tables"
    worst = 0.0
    for col in a.columns:
        if col == "drivers":
            same = (a[col] == b[col]).mean()
            print(f"drivers identical for {same:.4%} of customers")
            continue
        x, y = a[col].to_numpy(dtype=float), b[col].to_numpy(dtype=float)
        both = ~(np.isnan(x) | np.isnan(y))
        assert (np.isnan(x) == np.isnan(y)).all(), col
        rel = np.abs(x[both] - y[both]) / np.maximum(np.abs(x[both]), 1e-12)
        worst = max(worst, float(rel.max()) if rel.size else 0.0)
    print(f"largest relative difference, Spark against one machine: {worst:.2e}")


if __name__ == "__main__":
    main()
