"""Benchmark: score a whole customer base from raw history with the CLI, against lifetimes.

1. Generates (once, seeded) the bases under ``benchmarks/data/``: a 100 k-customer
   training sample and the scoring bases (1 M customers ≈ 9.3 M transactions +
   2 M survey responses; optionally 4 M).
2. Trains the CX scorer on the sample with ``cx-models train`` into a local
   tracking store (``benchmarks/data/mlruns``).
3. Times ``cx-models score --quiet`` end to end (read, validate, features, CLV,
   churn, NCO, drivers, write) in a fresh process for each base, with its peak RSS.
4. In the same run, lifetimes on the 1 M base: ``summary_data_from_transaction_data``,
   ``BetaGeoFitter`` predictions (P(alive), expected purchases) and Gamma-Gamma
   CLV with the fitted parameters, no churn model, no surveys: the ratio shows
   what the full pipeline costs against the RFM-only path.

5. With ``--intervals 0.9``, also ``cx-models score --intervals 0.9`` of each base in
   the same run, and the ratio to the score without intervals (the goal: at most
   1.25).

Run: ``python benchmarks/batch_score.py [--sizes 1000000 4000000] [--intervals 0.9]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
AS_OF = "2025-12-31"


def cli() -> str:
    return str(Path(sys.executable).with_name("cx-models"))


def ensure_base(customers: int, seed: int) -> Path:
    out = DATA / f"base-{customers}-{seed}"
    if not (out / "transactions.parquet").exists():
        subprocess.run(
            [
                cli(),
                "generate",
                "--customers",
                str(customers),
                "--out",
                str(out),
                "--seed",
                str(seed),
            ],
            check=True,
        )
    return out


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) / 1024


def lifetimes_worker(base: Path) -> None:
    import warnings

    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter, GammaGammaFitter
        from lifetimes.utils import summary_data_from_transaction_data
    clv = json.loads((DATA / "bench-clv.json").read_text())
    tx = pd.read_parquet(base / "transactions.parquet")
    t0 = time.perf_counter()
    summary = summary_data_from_transaction_data(
        tx,
        "customer_id",
        "timestamp",
        monetary_value_col="amount",
        observation_period_end=AS_OF,
        freq="D",
    )
    bg = BetaGeoFitter()
    bg.params_ = pd.Series(clv["params"])
    # lifetimes binds `predict` inside fit(); an unfitted instance with set params lacks it
    bg.predict = bg.conditional_expected_number_of_purchases_up_to_time
    gg = GammaGammaFitter()
    gg.params_ = pd.Series(clv["spend_params"])
    x, tx_, T = summary["frequency"], summary["recency"], summary["T"]
    summary["p_alive"] = bg.conditional_probability_alive(x, tx_, T)
    summary["expected"] = bg.conditional_expected_number_of_purchases_up_to_time(90, x, tx_, T)
    summary["clv"] = gg.customer_lifetime_value(
        bg, x, tx_, T, summary["monetary_value"], time=12, freq="D", discount_rate=0.01
    )
    print(json.dumps({"seconds": time.perf_counter() - t0, "customers": len(summary)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--chunk-customers", type=int, default=250_000)
    parser.add_argument("--lifetimes-worker", type=Path, default=None)
    parser.add_argument("--no-train", action="store_true", help="Reuse the last trained model.")
    parser.add_argument("--no-lifetimes", action="store_true", help="Skip the lifetimes run.")
    parser.add_argument("--intervals", type=float, default=None,
                        help="Also score with --intervals LEVEL and print the ratio.")
    parser.add_argument("--repeat", type=int, default=3,
                        help="Runs of each, alternating, with --intervals (medians).")
    args = parser.parse_args()
    if args.lifetimes_worker:
        lifetimes_worker(args.lifetimes_worker)
        return
    DATA.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{DATA / 'mlruns' / 'mlflow.db'}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    (DATA / "mlruns").mkdir(exist_ok=True)
    sample = ensure_base(100_000, 1)
    if args.no_train:
        print("train: skipped (--no-train); scoring with the last models:/cx-bench@champion")
    else:
        _train(sample, env)
    model = "models:/cx-bench@champion"
    for size in args.sizes:
        base = ensure_base(size, 0)
        out = DATA / f"scored-{size}.parquet"
        command = [
            cli(), "score", "--model", model,
            "--transactions", str(base / "transactions.parquet"),
            "--surveys", str(base / "surveys.parquet"),
            "--as-of", AS_OF, "--out", str(out),
            "--chunk-customers", str(args.chunk_customers), "--quiet",
        ]
        seconds, rss = timed(command, env)
        print(
            f"score {size:,} customers from raw history: {seconds:.1f} s "
            f"({size / seconds:,.0f} customers/s), peak RSS {rss:,.0f} MB"
        )
        if args.intervals is not None:
            with_iv = [*command[:command.index("--out") + 1],
                       str(DATA / f"scored-{size}-intervals.parquet"),
                       *command[command.index("--out") + 2:], "--intervals", str(args.intervals)]
            # alternate without / with, so that a slow spell of the machine hits both
            plain, rows = [seconds], []
            for i in range(args.repeat):
                if i:
                    plain.append(timed(command, env)[0])
                rows.append(timed(with_iv, env))
            with_seconds = [r[0] for r in rows]
            print(
                f"score {size:,} customers with --intervals {args.intervals:g}: "
                f"{', '.join(f'{t:.1f}' for t in with_seconds)} s (without: "
                f"{', '.join(f'{t:.1f}' for t in plain)} s), peak RSS "
                f"{max(r[1] for r in rows):,.0f} MB; ratio of medians "
                f"{sorted(with_seconds)[len(rows) // 2] / sorted(plain)[len(plain) // 2]:.2f}x "
                "(goal <= 1.25)"
            )
        if size == args.sizes[0] and not args.no_lifetimes:
            import pandas as pd
            import pyarrow.parquet as pq

            meta = json.loads(pq.read_schema(out).metadata[b"cx_models"])
            run_clv = _clv_params(env, meta)
            (DATA / "bench-clv.json").write_text(json.dumps(run_clv))
            ref = subprocess.run(
                [sys.executable, __file__, "--lifetimes-worker", str(base)],
                check=True,
                capture_output=True,
                text=True,
            )
            lt = json.loads(ref.stdout.strip().splitlines()[-1])
            print(
                f"lifetimes RFM summary + BG/NBD + Gamma-Gamma CLV on {lt['customers']:,} "
                f"customers: {lt['seconds']:.1f} s; ratio lifetimes / cx-models "
                f"{lt['seconds'] / seconds:.2f}x (cx-models also validates, builds 38 "
                "features, scores churn with drivers and the NCO, and writes the file)"
            )
            del pd


def _train(sample: Path, env: dict) -> None:
    t_train, rss_train = timed(
        [
            cli(),
            "train",
            "--transactions",
            str(sample / "transactions.parquet"),
            "--surveys",
            str(sample / "surveys.parquet"),
            "--as-of",
            AS_OF,
            "--horizon-days",
            "90",
            "--experiment",
            "bench",
            "--model-name",
            "cx-bench",
            "--promote",
        ],
        env,
    )
    print(f"train on 100,000 customers: {t_train:.1f} s, peak RSS {rss_train:,.0f} MB")


def _clv_params(env: dict, meta: dict) -> dict:
    os.environ.update(env)
    import mlflow

    local = Path(mlflow.artifacts.download_artifacts(f"models:/{meta['name']}/{meta['version']}"))
    return json.loads((local / "artifacts" / "scorer" / "clv.json").read_text())


if __name__ == "__main__":
    main()
