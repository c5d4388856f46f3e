"""The benchmark suite: every named data shape, each work against its peer, one table.

For each shape of ``benchmarks/shapes.py`` (generated once, seeded) and each work,
cx-models and its peer run in the same suite run, **each in a fresh process**
(its wall seconds and its own peak RSS):

* ``features`` — transactions (a pandas frame in memory, the input lifetimes takes)
  → the customer feature table: cx-models ``build_features`` (every feature)
  against lifetimes' RFM-only ``summary_data_from_transaction_data`` (days);
* ``fit`` — BG/NBD + Gamma-Gamma on those features (days): ``CLVModel().fit``
  against lifetimes' ``BetaGeoFitter`` + ``GammaGammaFitter``;
* ``score`` — ``cx-models score`` from the Parquet file to a scored table (a model
  trained on 20 k customers of the generator, as ``batch_score.py``); no peer,
  the target is 10 s per million customers;
* ``train`` — ``cx-models train`` with its defaults on the shape's transactions
  (forward evaluation, CLV choice, final model, MLflow logging to a fresh sqlite
  store); no peer, the target is 30 s per 100 k customers (run it with
  ``--customers 100000``).

Beside every measured process the suite reads ``/proc/stat``: **others' CPU** is
the cores that other processes kept busy during the run (the machine's busy
time minus the measured process's own CPU time, per wall second). A ratio
measured with others' CPU above 0.3 of a core was measured beside another busy
process and is flagged as such (``busy`` column), not hidden.

Run: ``python benchmarks/suite.py [--customers 1000000] [--shapes ...] [--works ...]``
(``--no-peer`` skips lifetimes). Prints one Markdown table (for
``benchmarks/README.md``) and keeps the figures in ``benchmarks/data/suite.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from shapes import DATA, SHAPES, ensure_shape  # noqa: E402

AS_OF = "2025-12-31"
WORKS = ("features", "fit", "score", "train")
TARGETS = {"features": "≥ 10× lifetimes", "fit": "≥ 20× lifetimes", "score": "≤ 10 s / 1 M",
           "train": "≤ 30 s / 100 k"}
MODEL = "models:/cx-bench-db@champion"


def _busy_seconds() -> float:
    """Seconds of CPU the whole machine has spent busy since boot (all cores)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def measure(cmd: list[str], env: dict | None = None) -> dict:
    """Run ``cmd``; its wall seconds, peak RSS (MB), last stdout line and others' CPU."""
    busy0, t0 = _busy_seconds(), time.perf_counter()
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall, busy = time.perf_counter() - t0, _busy_seconds() - busy0
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"failed: {' '.join(cmd)}")
    own = usage.ru_utime + usage.ru_stime
    lines = out.strip().splitlines()
    return {
        "wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024, "cpu_s": own,
        "others_cores": max(busy - own, 0.0) / wall,
        "result": _json(lines[-1]) if lines else {},
    }


def _json(line: str) -> dict:
    try:
        return json.loads(line)
    except json.JSONDecodeError:  # a verb's own output (train prints its summary)
        return {}


def worker(work: str, engine: str, path: Path) -> dict:
    """One measured step (in its own process); prints its result as JSON."""
    import warnings

    import pandas as pd

    warnings.simplefilter("ignore")
    tx = pd.read_parquet(path)
    note = None
    if work == "features" and engine == "cx":
        from cx_models.features import build_features

        t0 = time.perf_counter()
        rows = len(build_features(tx, as_of=AS_OF).features)
    elif work == "features":
        from lifetimes.utils import summary_data_from_transaction_data

        t0 = time.perf_counter()
        rows = len(summary_data_from_transaction_data(
            tx, "customer_id", "timestamp", monetary_value_col="amount",
            observation_period_end=AS_OF, freq="D"))
    elif work == "fit":
        from cx_models.features import build_customer_features

        feats = build_customer_features(tx, as_of=AS_OF, time_unit="D")
        rows = len(feats)
        t0 = time.perf_counter()
        if engine == "cx":
            from cx_models.errors import ConvergenceError
            from cx_models.models.clv import CLVModel

            try:
                CLVModel().fit(feats)
            except ConvergenceError:  # no dropout in the data: refit as training does
                CLVModel(penalizer=0.001).fit(feats)
                note = "not identified; refitted with penalizer 0.001 (both fits timed)"
        else:
            from lifetimes import BetaGeoFitter, GammaGammaFitter

            try:
                BetaGeoFitter().fit(feats["frequency"], feats["recency"], feats["T"])
            except Exception:  # noqa: BLE001 - lifetimes' ConvergenceError: the same refit
                note = "not identified; refitted with penalizer 0.001 (both fits timed)"
                try:
                    BetaGeoFitter(penalizer_coef=0.001).fit(
                        feats["frequency"], feats["recency"], feats["T"])
                except Exception:  # noqa: BLE001
                    return {"seconds": time.perf_counter() - t0, "customers": rows,
                            "transactions": len(tx), "failed": True,
                            "note": "lifetimes did not converge, even with penalizer 0.001"}
            repeat = feats[(feats["frequency"] > 0) & (feats["monetary_value"] > 0)]
            GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    else:
        raise SystemExit(f"unknown work {work} / {engine}")
    return {"seconds": time.perf_counter() - t0, "customers": rows, "transactions": len(tx),
            "note": note}


def _step(work: str, engine: str, path: Path, env: dict) -> dict:
    return measure([sys.executable, __file__, "--worker", work, engine, str(path)], env)


def _score(path: Path, env: dict) -> dict:
    cli = str(Path(sys.executable).with_name("cx-models"))
    out = DATA / f"suite-scored-{path.stem}.parquet"
    run = measure([cli, "score", "--model", MODEL, "--transactions", str(path), "--as-of", AS_OF,
                   "--out", str(out), "--quiet"], env)
    import polars as pl

    run["result"] = {"seconds": run["wall_s"], "customers": pl.scan_parquet(out).select(
        pl.len()).collect().item()}
    out.unlink()
    return run


def _train(path: Path, env: dict) -> dict:
    import tempfile

    import polars as pl

    cli = str(Path(sys.executable).with_name("cx-models"))
    customers = pl.scan_parquet(path).select(pl.col("customer_id").n_unique()).collect().item()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            run = measure([cli, "train", "--transactions", str(path), "--as-of", AS_OF,
                           "--tracking-uri", f"sqlite:///{tmp}/mlflow.db", "--experiment",
                           "suite-train", "--model-name", "suite-train"],
                          {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db"})
        except SystemExit:  # the data refused (its error line is printed above)
            return {"wall_s": float("nan"), "peak_rss_mb": float("nan"), "others_cores": 0.0,
                    "result": {"seconds": float("nan"), "customers": customers,
                               "note": "cx-models train refused the data (its error above)"}}
    run["result"] = {"seconds": run["wall_s"], "customers": customers}
    return run


def _ensure_model(env: dict) -> None:
    from batch_score import cli, ensure_base

    probe = subprocess.run([sys.executable, "-c", "import mlflow; mlflow.MlflowClient()"
                            ".get_model_version_by_alias('cx-bench-db', 'champion')"],
                           env=env, capture_output=True)
    if probe.returncode == 0:
        return
    sample = ensure_base(20_000, 1)
    subprocess.run([cli(), "train", "--transactions", str(sample / "transactions.parquet"),
                    "--surveys", str(sample / "surveys.parquet"), "--as-of", AS_OF,
                    "--max-snapshots", "2", "--experiment", "bench-db", "--model-name",
                    "cx-bench-db", "--promote"], env=env, check=True, stdout=subprocess.DEVNULL)


def row(shape: str, work: str, ours: dict, peer: dict | None, customers: int) -> dict:
    """One line of the table: times, ratio or target, memory, others' CPU."""
    failed = peer is not None and peer["result"].get("failed")
    ratio = None if peer is None or failed else peer["result"]["seconds"] / ours["result"][
        "seconds"]
    busy = max(ours["others_cores"], peer["others_cores"] if peer else 0.0)
    per_million = ours["result"]["seconds"] * 1e6 / max(ours["result"]["customers"], 1)
    return {
        "shape": shape, "work": work, "customers": ours["result"]["customers"],
        "transactions": ours["result"].get("transactions"),
        "cx_s": ours["result"]["seconds"], "peer_s": peer and peer["result"]["seconds"],
        "ratio": ratio, "per_million_s": per_million, "cx_mb": ours["peak_rss_mb"],
        "peer_mb": peer and peer["peak_rss_mb"], "others_cores": busy, "busy": busy > 0.3,
        "target": TARGETS[work], "asked_customers": customers,
        "note": ours["result"].get("note") or (peer or {}).get("result", {}).get("note"),
    }


def markdown(rows: list[dict]) -> str:
    head = ("| shape | work | customers | transactions | cx-models s | peer s | ratio | "
            "cx-models MB | peer MB | others' CPU | target |\n|" + "---|" * 11)
    lines = [head]
    for r in rows:
        def num(v, fmt):
            return "–" if v is None else format(v, fmt)

        ratio = num(r["ratio"], ".1f") + "×" if r["ratio"] else f"{r['per_million_s']:.1f} s/M"
        if r["work"] == "train":
            ratio = f"{r['per_million_s'] / 10:.1f} s/100k"
        if r["ratio"] is None and r["peer_s"] is not None:
            ratio = "peer failed"
        flag = " (busy)" if r["busy"] else ""
        lines.append(
            f"| {r['shape']} | {r['work']} | {r['customers']:,} | "
            f"{num(r['transactions'], ',')} | {r['cx_s']:.2f} | {num(r['peer_s'], '.2f')} | "
            f"{ratio}{flag} | {r['cx_mb']:,.0f} | {num(r['peer_mb'], ',.0f')} | "
            f"{r['others_cores']:.2f} | {r['target']} |")
    notes = [f"* {r['shape']} / {r['work']}: {r['note']}" for r in rows if r.get("note")]
    return "\n".join(lines + ([""] + notes if notes else []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=SHAPES)
    parser.add_argument("--works", nargs="*", default=list(WORKS), choices=WORKS)
    parser.add_argument("--no-peer", action="store_true", help="Time cx-models alone.")
    parser.add_argument("--worker", nargs=3, default=None, metavar=("WORK", "ENGINE", "PATH"))
    args = parser.parse_args()
    if args.worker:
        work, engine, path = args.worker
        print(json.dumps(worker(work, engine, Path(path))))
        return
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{DATA / 'mlruns' / 'mlflow.db'}",
           "MLFLOW_DISABLE_TELEMETRY": "true"}
    if "score" in args.works:
        (DATA / "mlruns").mkdir(parents=True, exist_ok=True)
        _ensure_model(env)
    rows = []
    for shape in args.shapes:
        path = ensure_shape(shape, args.customers)
        for work in args.works:
            if work == "score":
                ours, peer = _score(path, env), None
            elif work == "train":
                ours, peer = _train(path, env), None
            else:
                ours = _step(work, "cx", path, env)
                peer = None if args.no_peer else _step(work, "lifetimes", path, env)
            rows.append(row(shape, work, ours, peer, args.customers))
            print(markdown(rows[-1:]).splitlines()[2], flush=True)
            _keep(rows[-1:])
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end; {os.cpu_count()} CPUs\n")
    print(markdown(rows))


def _keep(rows: list[dict]) -> None:
    """Add rows to ``benchmarks/data/suite.json`` (the latest figures per shape and work)."""
    results = DATA / "suite.json"
    previous = json.loads(results.read_text()) if results.exists() else {}
    previous.update({f"{r['shape']}/{r['work']}/{r['asked_customers']}": r for r in rows})
    results.write_text(json.dumps(previous, indent=1))


if __name__ == "__main__":
    main()
