"""Benchmark: single-customer ``POST /score`` latency and throughput against a real server.

Starts ``cx-models serve`` on 127.0.0.1 (the model: the benchmark store's
``models:/cx-bench@champion`` from ``batch_score.py``, or ``--model``/``--tracking-uri``),
waits for ``/readyz``, then sends a bounded number of requests — one customer each,
taken from a feature table — with 1 and with 50 concurrent clients, and prints
p50/p99 latency, throughput and the error count. For comparison, in the same run,
it times lifetimes' BG/NBD + Gamma-Gamma conditional predictions for one customer
in-process (no HTTP, no churn model): the ratio is what the full scorer behind
HTTP costs against the RFM-only computation.

With ``--rate R`` the 50 clients are an **open** load: together they send R
requests a second on a fixed schedule (each client R/50), and a request's latency
counts from its scheduled time, so a server that falls behind shows its queue
(no coordinated omission). Without it they are a closed loop (each sends when its
last answer came; by Little's law their latency is 50 / throughput). During the
50-client run a probe sends ``GET /healthz`` every 100 ms (its worst and p99
latency are printed: liveness probes time out at 1 s).

Run: ``python benchmarks/api_load.py [--requests 2000] [--workers 2] [--rate 150]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"


def percentile(values, q):
    return float(np.percentile(np.asarray(values) * 1000, q))


def run_load(url: str, bodies: list[dict], clients: int, total: int, seconds: float,
             rate: float | None = None) -> dict:
    """Send ``total`` requests from ``clients`` threads (closed loop, or open at ``rate``/s)."""
    import threading

    latencies, errors = [], 0
    # every client is made and connected before the clock starts: building 50 httpx
    # clients (an SSL context each) took ~0.5 s of the first requests' schedule, which
    # showed up as the p99 of the open load, a cost of the load generator, not the server
    ready, go = threading.Barrier(clients + 1), threading.Event()
    clock = {}

    def worker(k: int):
        nonlocal errors
        out = []
        with httpx.Client(timeout=10) as client:
            client.get(url.rsplit("/", 1)[0] + "/healthz")
            ready.wait()
            go.wait()
            start, deadline = clock["start"], clock["deadline"]
            for n, i in enumerate(range(k, total, clients)):
                if time.perf_counter() > deadline:
                    break
                if rate:  # this client's n-th request is due at its slot of the schedule
                    due = start + (n * clients + k) / rate
                    time.sleep(max(due - time.perf_counter(), 0.0))
                    t0 = due
                else:
                    t0 = time.perf_counter()
                r = client.post(url, json=bodies[i % len(bodies)])
                out.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors += 1
        return out

    with ThreadPoolExecutor(clients) as pool:
        parts = [pool.submit(worker, k) for k in range(clients)]
        ready.wait()
        t0 = time.perf_counter()
        clock.update(start=t0 + 0.05, deadline=t0 + seconds)
        go.set()
        for part in parts:
            latencies.extend(part.result())
    wall = time.perf_counter() - t0
    return {
        "clients": clients,
        "rate": rate,
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "throughput_rps": len(latencies) / wall,
    }


def probe_health(url: str, stop) -> list[float]:
    """``GET /healthz`` every 100 ms until ``stop`` is set; the latencies (s)."""
    times = []
    with httpx.Client(timeout=5) as client:
        while not stop.is_set():
            t0 = time.perf_counter()
            client.get(url)
            times.append(time.perf_counter() - t0)
            stop.wait(0.1)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models:/cx-bench-db@champion")
    parser.add_argument("--tracking-uri", default=f"sqlite:///{DATA / 'mlruns' / 'mlflow.db'}")
    parser.add_argument("--features", type=Path, default=None)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rate", type=float, default=None,
                        help="Open load for the 50 clients: requests per second in all.")
    args = parser.parse_args()

    import pandas as pd

    from cx_models.features import build_customer_features

    if args.features is not None:
        features = pd.read_parquet(args.features)
    else:
        sys.path.insert(0, str(HERE))
        from batch_score import ensure_base

        base = ensure_base(20_000, 1)
        features = build_customer_features(
            base / "transactions.parquet", base / "surveys.parquet", as_of="2025-12-31"
        )
    sample = features.head(500).replace({np.nan: None}).to_dict(orient="records")
    bodies = [
        {"customers": [{k: (int(v) if k == "customer_id" else v) for k, v in r.items()}]}
        for r in sample
    ]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("cx-models")),
            "serve",
            "--model",
            args.model,
            "--tracking-uri",
            args.tracking_uri,
            "--host",
            "127.0.0.1",
            "--port",
            str(args.port),
            "--workers",
            str(args.workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{args.port}"
    try:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 120:
            try:
                if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise SystemExit("server did not become ready in 120 s")
        print(f"ready after {time.perf_counter() - t0:.1f} s")
        for _ in range(50):  # warm-up
            httpx.post(f"{base_url}/score", json=bodies[0], timeout=10)
        import threading

        results = [run_load(f"{base_url}/score", bodies, 1, args.requests, args.max_seconds)]
        stop = threading.Event()
        with ThreadPoolExecutor(1) as prober:
            health = prober.submit(probe_health, f"{base_url}/healthz", stop)
            results.append(run_load(f"{base_url}/score", bodies, 50, args.requests,
                                    args.max_seconds, args.rate))
            stop.set()
            health = health.result()
        for r in results:
            print(
                f"{r['clients']:>2} client(s): {r['requests']:,} requests, {r['errors']} errors, "
                f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
                f"{r['throughput_rps']:.0f} req/s"
                + (f" (open load at {r['rate']:.0f} req/s offered)" if r["rate"] else "")
            )
        print(f"GET /healthz during the 50-client run: {len(health)} probes, p99 "
              f"{percentile(health, 99):.1f} ms, worst {max(health) * 1000:.1f} ms; "
              f"{args.workers} worker(s), load average {os.getloadavg()[0]:.2f}")
    finally:
        server.terminate()
        server.wait(timeout=30)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pandas as pd
        from lifetimes import BetaGeoFitter, GammaGammaFitter

    import mlflow

    mlflow.set_tracking_uri(args.tracking_uri)
    local = Path(mlflow.artifacts.download_artifacts(args.model))
    clv = json.loads((local / "artifacts" / "scorer" / "clv.json").read_text())
    bg, gg = BetaGeoFitter(), GammaGammaFitter()
    bg.params_, gg.params_ = pd.Series(clv["params"]), pd.Series(clv["spend_params"])
    row = features.iloc[0]
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        bg.conditional_probability_alive(row["frequency"], row["recency"], row["T"])
        bg.conditional_expected_number_of_purchases_up_to_time(
            90, row["frequency"], row["recency"], row["T"]
        )
        gg.conditional_expected_average_profit(max(row["frequency"], 1), row["monetary_value"])
        times.append(time.perf_counter() - t0)
    lt = statistics.median(times) * 1000
    print(
        f"lifetimes in-process RFM predictions for one customer: median {lt:.2f} ms; "
        f"ratio API p50 / lifetimes {results[0]['p50_ms'] / lt:.1f}x"
    )


if __name__ == "__main__":
    main()
