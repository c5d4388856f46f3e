"""Named shapes of transaction data for the benchmark suite (``benchmarks/suite.py``).

Each shape is a seeded recipe for ``customer_id, timestamp, amount`` with about
``customers`` customers, written once to ``benchmarks/data/shape-<name>-<n>.parquet``.
They differ where an engine can be lucky on our own generator:

* ``generator`` — the project's synthetic base (BG/NBD by construction, its own
  acquisition curve, timestamps to the second);
* ``cdnow-like`` — BG/NBD with CDNOW's published parameters (r 0.243, α 4.414
  weeks, a 0.793, b 2.426; Fader, Hardie & Lee 2005): few repeat buyers, a 12-week
  acquisition window, 78 weeks observed, integer days (midnight timestamps);
* ``seconds`` — ten purchases per customer on average, customer and instant drawn
  uniformly over two years, timestamps to the second (no process behind them);
* ``one-cohort`` — every customer acquired on the same day, BG/NBD afterwards;
* ``single-purchase`` — 85 % of customers buy once, the rest as ``generator``;
* ``heavy`` — one customer in 50 of the others, each with hundreds of purchase
  occasions (a purchase every two days on average, over two years).

Spend is Gamma-Gamma (p 6.25, q 3.74, v 15.44: CDNOW's) everywhere but
``generator``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
#: Every shape ends here (as_of of the suite's work).
END = np.datetime64("2025-12-31T23:59:59", "s")
SHAPES = ("generator", "cdnow-like", "seconds", "one-cohort", "single-purchase", "heavy")


def bgnbd_purchases(rng, start_s, horizon_s, rate_per_s, p_drop) -> tuple[np.ndarray, np.ndarray]:
    """Simulate BG/NBD purchase instants: (customer index, second) for every purchase.

    Each customer buys at ``start_s``, then at Poisson rate ``rate_per_s`` and
    after every purchase leaves with probability ``p_drop``, until ``horizon_s``.
    """
    n = start_s.size
    who, when = [np.arange(n)], [start_s.astype(np.float64)]
    t = start_s.astype(np.float64)
    alive = rng.random(n) >= p_drop
    idx = np.flatnonzero(alive)
    t = t[idx]
    while idx.size:
        t = t + rng.exponential(1.0 / rate_per_s[idx])
        keep = t <= horizon_s
        idx, t = idx[keep], t[keep]
        who.append(idx)
        when.append(t)
        stay = rng.random(idx.size) >= p_drop[idx]
        idx, t = idx[stay], t[stay]
    return np.concatenate(who), np.concatenate(when)


def _spend(rng, who: np.ndarray, n: int) -> np.ndarray:
    """Gamma-Gamma spend per purchase: ν per customer ~ Gamma(q, γ), amount ~ Gamma(p, ν)."""
    p, q, gamma = 6.25, 3.74, 15.44
    nu = rng.gamma(q, 1.0 / gamma, size=n)
    return np.round(rng.gamma(p, 1.0 / nu[who]), 2)


def _frame(who, seconds, amounts, start: np.datetime64) -> pl.DataFrame:
    stamps = start + seconds.astype("timedelta64[s]")
    return pl.DataFrame({
        "customer_id": who.astype(np.int64),
        "timestamp": pl.Series(stamps.astype("datetime64[us]")),
        "amount": amounts,
    }).sort("timestamp")


def _bgnbd_shape(rng, n, *, days, acquisition_days, r, alpha_days, a, b, whole_days):
    start = END - np.timedelta64(days * 86_400 - 1, "s")
    rate = rng.gamma(r, 1.0 / alpha_days, size=n) / 86_400.0
    p_drop = rng.beta(a, b, size=n)
    first = rng.uniform(0, acquisition_days * 86_400, size=n)
    who, when = bgnbd_purchases(rng, first, days * 86_400 - 1, rate, p_drop)
    if whole_days:
        when = np.floor(when / 86_400) * 86_400
    return _frame(who, when, _spend(rng, who, n), start)


def make_shape(name: str, customers: int, seed: int = 0) -> pl.DataFrame:
    """Return the transactions of shape ``name`` (see the module) with ``customers`` customers."""
    rng = np.random.default_rng([seed, SHAPES.index(name)])
    if name == "generator":
        from cx_models.synthetic import generate_customer_base

        return generate_customer_base(customers, seed=seed).transactions.select(
            "customer_id", "timestamp", "amount")
    if name == "cdnow-like":
        return _bgnbd_shape(rng, customers, days=546, acquisition_days=84, r=0.243,
                            alpha_days=4.414 * 7, a=0.793, b=2.426, whole_days=True)
    if name == "one-cohort":
        return _bgnbd_shape(rng, customers, days=730, acquisition_days=1 / 86_400, r=0.6,
                            alpha_days=25.0, a=0.8, b=4.0, whole_days=False)
    if name == "seconds":
        span = 730 * 86_400
        rows = 10 * customers
        who = rng.integers(0, customers, size=rows)
        when = rng.integers(0, span, size=rows).astype(np.float64)
        return _frame(who, when, _spend(rng, who, customers), END - np.timedelta64(span, "s"))
    if name == "single-purchase":
        repeat = customers * 15 // 100
        base = make_shape("generator", repeat, seed)
        start = base["timestamp"].min()
        single = pl.DataFrame({
            "customer_id": np.arange(repeat, customers, dtype=np.int64) + 10**9,
            "offset": rng.integers(0, 730 * 86_400, size=customers - repeat),
        }).select(
            "customer_id",
            timestamp=pl.lit(start) + pl.duration(seconds=pl.col("offset")),
            amount=pl.Series(_spend(rng, np.arange(customers - repeat), customers - repeat)),
        )
        return pl.concat([base, single.cast(base.schema)]).sort("timestamp")
    if name == "heavy":
        heavy = max(customers // 50, 1)
        span = 730 * 86_400
        rate = rng.gamma(4.0, 1 / 8.0, size=heavy) / 86_400.0  # mean 0.5 a day
        counts = rng.poisson(rate * span)
        who = np.repeat(np.arange(heavy), counts)
        when = rng.uniform(0, span, size=who.size)
        return _frame(who, when, _spend(rng, who, heavy), END - np.timedelta64(span, "s"))
    raise SystemExit(f"unknown shape {name!r}; shapes: {', '.join(SHAPES)}")


def ensure_shape(name: str, customers: int, seed: int = 0) -> Path:
    """Write the shape's Parquet file once (seeded), in a child process; return its path.

    A child: the suite's own memory stays small, and Linux counts a forked child's
    peak RSS from before its ``exec`` (the parent's pages) in the child's maximum.
    """
    import subprocess
    import sys

    path = DATA / f"shape-{name}-{customers}-{seed}.parquet"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, __file__, name, str(customers), str(seed)], check=True)
    return path


if __name__ == "__main__":
    import sys

    shape, n, seed_ = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    target = DATA / f"shape-{shape}-{n}-{seed_}.parquet"
    partial = target.with_suffix(".partial")
    make_shape(shape, n, seed_).write_parquet(partial)
    partial.rename(target)
