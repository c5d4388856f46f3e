"""P(N = n purchases in the horizon) for every model: sums to 1, mean = E[N], Monte Carlo."""

import numpy as np
import pandas as pd
import pytest

from cx_models.datasets import load_cdnow_summary, load_donations
from cx_models.models import bgnbd, pareto_nbd
from cx_models.models.clv import CLVModel

CUSTOMERS = pd.DataFrame({"frequency": [0, 2, 7, 26, 1], "recency": [0.0, 30.43, 20.0, 30.86, 2.0],
                          "T": [38.86, 38.86, 38.0, 31.0, 39.0], "monetary_value": 20.0})
CUSTOMERS.attrs["time_unit"] = "W"


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd", "pnbd"])
def test_the_distribution_sums_to_one_and_its_mean_is_the_conditional_expectation(model):
    m = CLVModel(model=model).fit(load_cdnow_summary())
    pmf = m.purchase_distribution(CUSTOMERS, horizon_days=52 * 7, n_max=400)
    assert (pmf >= -1e-12).all()
    np.testing.assert_allclose(pmf.sum(axis=1), 1.0, atol=1e-8)
    mean = pmf @ np.arange(pmf.shape[1])
    expected = m.predict(CUSTOMERS, horizon_days=52 * 7)
    np.testing.assert_allclose(mean, expected["expected_purchases"], rtol=1e-6)
    np.testing.assert_allclose(pmf[:, 0], expected["prob_no_purchase"], rtol=1e-8)
    short = m.purchase_distribution(CUSTOMERS, horizon_days=52 * 7, n_max=3)
    np.testing.assert_allclose(short, pmf[:, :4])


def test_bgbb_distribution_sums_to_one_and_matches_the_expectation():
    m = CLVModel(model="bgbb", period_days=365.25).fit(load_donations())
    who = pd.DataFrame({"frequency": [0, 2, 6], "recency": [0, 4, 6], "periods": 6})
    pmf = m.purchase_distribution(who, horizon_days=5 * 365.25, n_max=5)
    np.testing.assert_allclose(pmf.sum(axis=1), 1.0, atol=1e-12)
    pred = m.predict(who, horizon_days=5 * 365.25)
    np.testing.assert_allclose(pmf @ np.arange(6), pred["expected_purchases"], rtol=1e-10)
    np.testing.assert_allclose(pmf[:, 0], pred["prob_no_purchase"], rtol=1e-10)


def _simulate(kind, params, x, tx, T, t, draws, rng):
    """Posterior draws given alive, then the process forward; dropped-out customers buy nothing."""
    r, alpha, c, d = params
    lam = rng.gamma(r + x, 1.0 / (alpha + T), draws)
    if kind == "pnbd":
        alive = pareto_nbd.p_alive(params, [x], [tx], [T])[0]
        life = rng.exponential(1.0 / rng.gamma(c, 1.0 / (d + T), draws))
        counts = rng.poisson(lam * np.minimum(life, t))
    else:
        alive = bgnbd.p_alive(params, [x], [tx], [T])[0]
        p = rng.beta(c, d + x, draws)
        counts = np.zeros(draws, dtype=int)
        clock = np.zeros(draws)
        going = np.ones(draws, dtype=bool)
        while going.any():
            clock[going] += rng.exponential(1.0 / lam[going])
            going &= clock < t
            counts[going] += 1
            going &= rng.random(draws) >= p
    counts[rng.random(draws) >= alive] = 0
    return np.bincount(counts, minlength=4)[:4] / draws


@pytest.mark.parametrize("kind", ["bgnbd", "pnbd"])
def test_against_monte_carlo(kind):
    params = (0.243, 4.414, 0.793, 2.426) if kind == "bgnbd" else (0.5533, 10.5776, 0.6062,
                                                                   11.6679)
    rng = np.random.default_rng(3)
    model = CLVModel(model=kind)
    model.params_ = dict(zip(("r", "alpha", "a", "b") if kind == "bgnbd"
                             else ("r", "alpha", "s", "beta"), params, strict=True))
    model.spend_params_, model.time_unit_ = {}, "W"
    for x, tx, T in [(2, 30.43, 38.86), (7, 20.0, 38.0)]:
        one = pd.DataFrame({"frequency": [x], "recency": [tx], "T": [T]})
        one.attrs["time_unit"] = "W"
        got = model.purchase_distribution(one, horizon_days=39 * 7, n_max=3)[0]
        sim = _simulate(kind, params, x, tx, T, 39.0, 300_000, rng)
        np.testing.assert_allclose(got, sim, atol=4e-3)
