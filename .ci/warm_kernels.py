"""Compile (and cache) the numba kernels once before the test suite runs.

A fresh clone has no numba cache: the first test that fits Pareto/NBD, draws an
interval or fits covariates would otherwise pay for compiling (about 40 s on two
cores); locally the cache beside the modules is warm after the first run. This
runs the same code paths on a small table.
"""

import numpy as np

from cx_models.datasets import load_cdnow_summary
from cx_models.models.clv import CLVModel
from cx_models.models.covariates import Covariates

table = load_cdnow_summary().head(400).reset_index(drop=True)
table.attrs["time_unit"] = "W"
for name in ("bgnbd", "mbgnbd", "pnbd"):
    model = CLVModel(model=name).fit(table)
    model.predict(table, horizon_days=90, intervals=0.9)
    model.purchase_distribution(table, horizon_days=90, n_max=5)
    model.p_alive_at(table, days=30)
table["z"] = np.random.default_rng(0).normal(size=len(table))
for name in ("bgnbd", "pnbd"):
    model = CLVModel(model=name, covariates=Covariates(purchase=("z",), dropout=("z",)))
    model.fit(table)
    model.predict(table, horizon_days=90, intervals=0.9)
# the same in days, on integer counts, as the generator's feature tables are
from cx_models.features import build_customer_features  # noqa: E402
from cx_models.models._covariate_fit import CovariatePatterns  # noqa: E402
from cx_models.synthetic import generate_customer_base  # noqa: E402

base = generate_customer_base(1_500, seed=0)
days = build_customer_features(base.transactions, base.surveys, as_of="2025-12-31")
for name in ("bgnbd", "pnbd"):
    model = CLVModel(model=name).fit(days)
    model.predict(days.head(10), horizon_days=90, clv_months=12, intervals=0.9)
    model.predict(days, horizon_days=90, intervals=0.9)
covariate_rows = table.head(40)
for name in ("bgnbd", "pnbd"):
    model = CLVModel(model=name, covariates=Covariates(purchase=("z",), dropout=("z",)))
    model.fit(table)
    model.purchase_distribution(covariate_rows, horizon_days=182, n_max=8)
    model.p_alive_at(covariate_rows, days=91)
data = CovariatePatterns([2, 0], [30.0, 0.0], [38.0, 38.0], [1, 1], [[1.0], [0.0]],
                         model="pnbd", links=[(1, -1.0, [0])])
data.objective(np.log([0.5, 10.0, 0.6, 11.0]).tolist() + [0.0])
print("numba kernels compiled and cached")
