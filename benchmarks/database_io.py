"""Benchmark: transactions read from PostgreSQL and scores written back, against Parquet.

Needs a PostgreSQL server: ``CX_TEST_POSTGRES_URI`` (``.ci/postgres python
benchmarks/database_io.py`` starts a throw-away one). In one run, each step in a
fresh process (wall seconds and that process's peak RSS):

1. The generator's base (``benchmarks/data/base-N-0``, as ``batch_score.py``;
   1 M customers ≈ 9.3 M transactions) loaded into ``bench_tx`` (``bigserial``
   primary key, ``bigint`` ids, ``timestamptz``, ``numeric(12,2)`` amounts) and
   ``bench_sv``.
2. ``COPY (SELECT … ORDER BY id) TO STDOUT (FORMAT binary)`` read to nothing (psycopg):
   the floor of getting the rows out of the server.
3. The feature table from the Parquet file, then from the table
   (:class:`cx_models.io.DatabaseSource`): the goal is database ≤ 1.3 × (COPY + Parquet).
4. The scored table of the base (``cx-models score`` from Parquet, a model trained
   on a 20 k sample) written to Parquet (``write_table``) and to PostgreSQL
   (``write_target``: staging table, one transaction).
5. ``cx-models score`` streamed from the tables for each ``--memory-sizes`` base,
   with its peak RSS (the goal: 4 M at most 1.2 × 1 M).

Run: ``python benchmarks/database_io.py [--customers 1000000] [--memory-sizes 1000000 4000000]``.
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

from batch_score import AS_OF, DATA, cli, ensure_base  # noqa: E402


def run(cmd: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) of this child alone, and its last stdout line."""
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"failed ({child.returncode}): {' '.join(cmd)}")
    last = out.strip().splitlines()[-1] if out.strip() else ""
    return time.perf_counter() - t0, usage.ru_maxrss / 1024, last


def worker(kind: str, uri: str, base: Path) -> None:
    """One measured step, in its own process."""
    if kind == "copy":
        import psycopg

        rows = 0
        with psycopg.connect(uri) as con, con.cursor() as cur, cur.copy(
            "COPY (SELECT * FROM bench_tx ORDER BY id) TO STDOUT (FORMAT binary)"
        ) as copy:
            for block in copy:
                rows += len(block)  # bytes, not rows: nothing is decoded
        print(json.dumps({"bytes": rows}))
        return
    if kind in ("features-parquet", "features-db"):
        from cx_models.features import build_features
        from cx_models.io import DatabaseSource

        source = (base / "transactions.parquet" if kind == "features-parquet"
                  else DatabaseSource(uri, table="bench_tx"))
        built = build_features(source, None, as_of=AS_OF)
        print(json.dumps({"customers": len(built.features)}))
        return
    if kind in ("write-parquet", "write-db"):
        import pandas as pd

        from cx_models.io import DatabaseTarget, write_table

        scored = pd.read_parquet(DATA / f"scored-{base.name}.parquet")
        target = (DATA / "rewritten.parquet" if kind == "write-parquet"
                  else DatabaseTarget(uri, "bench_scores"))
        t0 = time.perf_counter()
        write_table(scored, target, metadata={"as_of": AS_OF})
        print(json.dumps({"rows": len(scored), "write_seconds": time.perf_counter() - t0}))
        return
    raise SystemExit(f"unknown worker {kind}")


def load(uri: str, base: Path, suffix: str = "") -> None:
    """Load a base's transactions and surveys into bench_tx / bench_sv (once per size)."""
    import polars as pl
    from adbc_driver_postgresql import dbapi

    tx_table, sv_table = f"bench_tx{suffix}", f"bench_sv{suffix}"
    with dbapi.connect(uri) as con, con.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM pg_tables WHERE tablename = '{tx_table}'")
        if cur.fetchone()[0]:
            return
        t0 = time.perf_counter()
        tx = pl.read_parquet(base / "transactions.parquet")
        cur.adbc_ingest(f"{tx_table}_raw", tx.to_arrow(), mode="replace")
        cur.execute(f"CREATE TABLE {tx_table} (id bigserial PRIMARY KEY, customer_id bigint, "
                    "timestamp timestamptz, amount numeric(12, 2))")
        cur.execute(f"INSERT INTO {tx_table} (customer_id, timestamp, amount) SELECT "
                    f"customer_id, timestamp AT TIME ZONE 'UTC', amount FROM {tx_table}_raw")
        cur.execute(f"DROP TABLE {tx_table}_raw")
        cur.adbc_ingest(sv_table, pl.read_parquet(base / "surveys.parquet").to_arrow(),
                        mode="replace")
        con.commit()
        print(f"loaded {tx.height:,} transactions into {tx_table} in "
              f"{time.perf_counter() - t0:.0f} s")


def train(env: dict) -> None:
    sample = ensure_base(20_000, 1)
    seconds, _, _ = run([
        cli(), "train", "--transactions", str(sample / "transactions.parquet"),
        "--surveys", str(sample / "surveys.parquet"), "--as-of", AS_OF,
        "--max-snapshots", "2", "--experiment", "bench-db", "--model-name", "cx-bench-db",
        "--promote",
    ], env)
    print(f"train on 20,000 customers (the model that scores): {seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--memory-sizes", type=int, nargs="*", default=[])
    parser.add_argument("--worker", default=None)
    parser.add_argument("--base", type=Path, default=None)
    args = parser.parse_args()
    uri = os.environ.get("CX_TEST_POSTGRES_URI")
    if not uri:
        raise SystemExit("set CX_TEST_POSTGRES_URI (or run under .ci/postgres)")
    if args.worker:
        worker(args.worker, uri, args.base)
        return
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / "mlruns").mkdir(exist_ok=True)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{DATA / 'mlruns' / 'mlflow.db'}",
           "MLFLOW_DISABLE_TELEMETRY": "true"}
    base = ensure_base(args.customers, 0)
    load(uri, base)

    def step(kind: str) -> tuple[float, float, dict]:
        seconds, rss, last = run(
            [sys.executable, __file__, "--worker", kind, "--base", str(base)], env)
        return seconds, rss, json.loads(last)

    load_avg = os.getloadavg()[0]
    copy_s, copy_rss, copied = step("copy")
    par_s, par_rss, built = step("features-parquet")
    db_s, db_rss, _ = step("features-db")
    print(f"\n{built['customers']:,} customers (load average at start {load_avg:.2f})")
    print(f"COPY ... TO STDOUT (FORMAT binary), {copied['bytes'] / 1e6:,.0f} MB: {copy_s:.1f} s")
    print(f"features from Parquet: {par_s:.1f} s, peak RSS {par_rss:,.0f} MB")
    print(f"features from PostgreSQL: {db_s:.1f} s, peak RSS {db_rss:,.0f} MB; "
          f"ratio to COPY + Parquet {db_s / (copy_s + par_s):.2f}x (goal <= 1.3)")
    model = "models:/cx-bench-db@champion"
    scored = DATA / f"scored-{base.name}.parquet"
    if not scored.exists():
        train(env)
        run([cli(), "score", "--model", model, "--transactions",
             str(base / "transactions.parquet"), "--surveys", str(base / "surveys.parquet"),
             "--as-of", AS_OF, "--out", str(scored), "--quiet"], env)
    _, wp_rss, wp = step("write-parquet")
    _, wd_rss, wd = step("write-db")
    print(f"write {wp['rows']:,} scored rows: Parquet {wp['write_seconds']:.1f} s, PostgreSQL "
          f"{wd['write_seconds']:.1f} s ({wd['write_seconds'] / wp['write_seconds']:.1f}x), "
          f"peak RSS {wp_rss:,.0f} / {wd_rss:,.0f} MB")
    for size in args.memory_sizes:
        sized = ensure_base(size, 0)
        suffix = "" if size == args.customers else f"_{size}"
        load(uri, sized, suffix)
        seconds, rss, _ = run([
            cli(), "score", "--model", model, "--transactions", uri,
            "--transactions-table", f"bench_tx{suffix}", "--surveys", uri,
            "--surveys-table", f"bench_sv{suffix}", "--as-of", AS_OF,
            "--out", str(DATA / f"scored-db-{size}.parquet"), "--quiet",
        ], env)
        print(f"score {size:,} customers streamed from PostgreSQL: {seconds:.1f} s, "
              f"peak RSS {rss:,.0f} MB")


if __name__ == "__main__":
    main()
