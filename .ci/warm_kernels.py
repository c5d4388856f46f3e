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
    dropout = {"dropout": ["z"]} if name == "pnbd" else {"dropout_a": ["z"]}
    model = CLVModel(model=name, covariates=Covariates(purchase=["z"], **dropout)).fit(table)
    model.predict(table, horizon_days=90, intervals=0.9)
print("numba kernels compiled and cached")
