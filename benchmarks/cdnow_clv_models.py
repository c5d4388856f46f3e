"""CDNOW master: every transaction model on the standard calibration / holdout split.

Calibration to 1997-09-30, holdout to 1998-06-30 (39 weeks), weeks, with
``cx_models.clv_validation.validate_clv``: predicted and actual holdout purchase
occasions and spend, per-customer MAE and correlations, log-likelihood, fit
time — BG/BB on weekly periods (``period_days=7``: it predicts weeks with a
purchase) — and which model ``clv_model="auto"`` would choose at 1997-09-30 (its
own holdout inside the calibration data, BG/BB a candidate). Prints one table.
Run: ``python benchmarks/cdnow_clv_models.py [--cut sample|master]``.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cut", choices=("sample", "master"), default="master")
    args = parser.parse_args()

    from cx_models.clv_choice import choose_clv_model
    from cx_models.clv_validation import validate_clv
    from cx_models.datasets import load_cdnow
    from cx_models.schemas import validate_transactions
    from cx_models.settings import FeatureSpec

    tx = load_cdnow(args.cut)
    print(f"CDNOW {args.cut}: calibration to 1997-09-30, holdout 1997-10-01..1998-06-30")
    header = (f"{'model':8} {'purchases pred/actual':>22} {'ratio':>6} {'MAE':>6} {'corr':>6} "
              f"{'spend pred/actual':>22} {'ratio':>6} {'corr':>6} {'loglik':>10} {'fit s':>6}")
    print(header)
    for model in ("bgnbd", "mbgnbd", "pnbd", "bgbb"):
        t0 = time.perf_counter()
        rep = validate_clv(tx, calibration_end="1997-09-30", holdout_end="1998-06-30",
                           model=model, spec=FeatureSpec(time_unit="W", period_days=7))
        elapsed = time.perf_counter() - t0
        h = rep["holdout"]
        print(
            f"{model:8} {h['purchases_predicted']:>10,.0f} / {h['purchases_actual']:<9,.0f} "
            f"{h['purchases_predicted'] / h['purchases_actual']:>6.3f} {h['purchases_mae']:>6.3f} "
            f"{h['purchases_corr']:>6.3f} {h['spend_predicted']:>10,.0f} / "
            f"{h['spend_actual']:<9,.0f} {h['spend_predicted'] / h['spend_actual']:>6.3f} "
            f"{h['spend_corr']:>6.3f} {rep['log_likelihood']:>10,.1f} {elapsed:>6.2f}"
        )
    validated = validate_transactions(tx, as_of="1997-09-30").data
    choice = choose_clv_model(validated, as_of="1997-09-30",
                              spec=FeatureSpec(time_unit="W", period_days=7))
    print(f"auto at 1997-09-30 chooses {choice['chosen']}: {choice['reason']}")


if __name__ == "__main__":
    main()
