"""Benchmark: fitting BG/NBD (or Pareto/NBD) + Gamma-Gamma, cx-models vs lifetimes.

Customer features at day resolution (so most (frequency, recency, T) triples are
unique) come from the synthetic base of ``benchmarks/features.py`` (generated
on first use). Times, in one process and the same run:

* cx-models ``CLVModel(model=...).fit`` (weighted unique patterns, analytic
  gradients, standard errors included);
* lifetimes' plain ``BetaGeoFitter().fit`` (``ParetoNBDFitter`` for ``--model
  pnbd``) + ``GammaGammaFitter().fit``, row by row, as a user of lifetimes would
  call them.

Prints both times, the ratio, both log-likelihoods at the same data and the
largest relative parameter difference. ``--no-lifetimes`` times cx-models alone
(lifetimes' Pareto/NBD needs minutes per 100 k customers). ``--model bgbb``:
BG/BB on the base's period histories (``--period-days``, 91 by default) against
lifetimes' ``BetaGeoBetaBinomFitter`` on the same weighted patterns (its intended
input) — no spend model.
Run: ``python benchmarks/clv_fit.py [--customers N] [--model bgnbd|pnbd|bgbb]``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="cx-models runs (median).")
    parser.add_argument("--model", choices=("bgnbd", "pnbd", "bgbb"), default="bgnbd")
    parser.add_argument("--period-days", type=int, default=91, help="BG/BB's period.")
    parser.add_argument("--no-lifetimes", action="store_true", help="Time cx-models alone.")
    args = parser.parse_args()
    if args.model == "bgbb":
        bgbb(args)
        return

    from cx_models.features import build_customer_features
    from cx_models.models.clv import CLVModel
    from cx_models.synthetic import generate_customer_base

    base = generate_customer_base(args.customers, seed=args.seed)
    features = build_customer_features(base.transactions, as_of="2025-12-31", time_unit="D")
    triples = features[["frequency", "recency", "T"]].drop_duplicates()
    print(
        f"{len(features):,} customers, {len(triples):,} unique (frequency, recency, T) "
        f"triples in days, {int((features['frequency'] > 0).sum()):,} repeat customers"
    )

    runs = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        ours = CLVModel(model=args.model).fit(features)
        runs.append(time.perf_counter() - t0)
    t_ours = float(np.median(runs))
    print(
        f"cx-models CLVModel.fit: median {t_ours:.2f} s of {args.repeat} runs "
        f"({', '.join(f'{r:.2f}' for r in runs)})"
    )

    if args.no_lifetimes:
        print(f"log-likelihood (days): {ours.log_likelihood_:,.2f}; lifetimes not run")
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter

        fitter = {"bgnbd": BetaGeoFitter, "pnbd": ParetoNBDFitter}[args.model]
        t0 = time.perf_counter()
        bg = fitter().fit(features["frequency"], features["recency"], features["T"])
        repeat = features[(features["frequency"] > 0) & (features["monetary_value"] > 0)]
        gg = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
        t_ref = time.perf_counter() - t0
    print(f"lifetimes {fitter.__name__} + GammaGammaFitter: {t_ref:.2f} s")
    print(f"ratio lifetimes / cx-models: {t_ref / t_ours:.1f}x")
    worst = 0.0
    for name in ours.params_:
        worst = max(worst, abs(ours.params_[name] / bg.params_[name] - 1))
    for name in ("p", "q", "v"):
        worst = max(worst, abs(ours.spend_params_[name] / gg.params_[name] - 1))
    print("cx-models:", {k: round(v, 6) for k, v in {**ours.params_, **ours.spend_params_}.items()})
    print("lifetimes:", {k: round(float(v), 6) for k, v in {**bg.params_, **gg.params_}.items()})
    print(f"largest relative parameter difference: {worst:.2e}")
    from cx_models.models._families import family

    x, t_x, T = (features[c].to_numpy() for c in ("frequency", "recency", "T"))
    theirs = family(args.model).loglik(tuple(bg.params_[k] for k in ours.params_), x, t_x, T)
    print(f"log-likelihood at lifetimes' estimates: {theirs.sum():,.4f} (ours minus theirs "
          f"{ours.log_likelihood_ - theirs.sum():+.4f})")
    print(
        f"log-likelihood (days): {ours.log_likelihood_:,.2f}; spend: "
        f"{ours.spend_log_likelihood_:,.2f}; fitted in {np.nan if t_ours == 0 else t_ours:.2f} s"
    )


def bgbb(args) -> None:
    """BG/BB on period histories of the generator's base, cx-models vs lifetimes."""
    from cx_models.models.clv import CLVModel
    from cx_models.period_features import period_features
    from cx_models.synthetic import generate_customer_base

    base = generate_customer_base(args.customers, seed=args.seed)
    t0 = time.perf_counter()
    table = period_features(base.transactions, as_of="2025-12-31", period_days=args.period_days)
    t_table = time.perf_counter() - t0
    table = table.drop(columns=["monetary_value"], errors="ignore")
    patterns = table.groupby(["frequency", "recency", "T"]).size().rename("weights")
    patterns = patterns.reset_index()
    print(f"{len(table):,} customers, {len(patterns):,} (x, t_x, n) patterns of "
          f"{args.period_days}-day periods (table built in {t_table:.2f} s)")
    runs = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        ours = CLVModel(model="bgbb", period_days=args.period_days).fit(table)
        runs.append(time.perf_counter() - t0)
    t_ours = float(np.median(runs))
    print(f"cx-models CLVModel(model='bgbb').fit on one row per customer: median {t_ours:.3f} s "
          f"of {args.repeat} runs ({', '.join(f'{r:.3f}' for r in runs)})")
    if args.no_lifetimes:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoBetaBinomFitter

        t0 = time.perf_counter()
        ref = BetaGeoBetaBinomFitter().fit(patterns["frequency"], patterns["recency"],
                                           patterns["T"], weights=patterns["weights"])
        t_ref = time.perf_counter() - t0
    print(f"lifetimes BetaGeoBetaBinomFitter on the weighted patterns: {t_ref:.3f} s; "
          f"ratio lifetimes / cx-models {t_ref / t_ours:.1f}x")
    worst = max(abs(ours.params_[k] / ref.params_[k] - 1) for k in ours.params_)
    print("cx-models:", {k: round(v, 6) for k, v in ours.params_.items()})
    print("lifetimes:", {k: round(float(v), 6) for k, v in ref.params_.items()})
    print(f"largest relative parameter difference: {worst:.2e}; log-likelihood "
          f"{ours.log_likelihood_:,.4f}")


if __name__ == "__main__":
    main()
