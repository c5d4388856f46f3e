"""BG/BB: the published donations figures, gradients, lifetimes, predictions by enumeration."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import approx_fprime

from cx_models.datasets import load_donations
from cx_models.errors import CXDataError
from cx_models.models import bgbb
from cx_models.models.clv import CLVModel

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from lifetimes import BetaGeoBetaBinomFitter

# Fader, Hardie & Shang (2010), Table 2 / Figure 6
PUBLISHED = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}


@pytest.fixture(scope="module")
def fitted():
    return CLVModel(model="bgbb", period_days=365.25).fit(load_donations())


def test_published_estimates_and_p_alive_in_2002(fitted):
    for name, value in PUBLISHED.items():
        assert fitted.params_[name] == pytest.approx(value, abs=6e-4), name
    assert fitted.n_customers_ == 11_104 and fitted.spend_params_ == {}
    who = pd.DataFrame({"frequency": [0, 2, 6], "recency": [0, 4, 6], "periods": 6})
    alive_2002 = fitted.p_alive_at(who, days=365.25)
    np.testing.assert_allclose(alive_2002, [0.11, 0.59, 0.93], atol=0.005)
    pred = fitted.predict(who, horizon_days=5 * 365.25)
    assert list(pred.columns) == ["p_alive", "expected_purchases", "prob_no_purchase"]
    with pytest.raises(CXDataError, match="fitted without spend"):
        fitted.clv([0], [0], [6], [1.0], clv_months=12, discount_rate=0.1)


def test_equals_lifetimes_fit_and_predictions(fitted):
    d = load_donations()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = BetaGeoBetaBinomFitter().fit(d["frequency"], d["recency"], d["periods"],
                                           weights=d["weights"])
    for name in PUBLISHED:
        assert fitted.params_[name] == pytest.approx(ref.params_[name], rel=1e-4)
    ref.params_ = pd.Series(fitted.params_)
    x, tx, n = (d[c].to_numpy() for c in ("frequency", "recency", "periods"))
    params = tuple(fitted.params_.values())
    np.testing.assert_allclose(bgbb.p_alive_at(params, 1, x, tx, n),
                               ref.conditional_probability_alive(1, x, tx, n), rtol=1e-10)
    for m in (1, 5):
        np.testing.assert_allclose(
            bgbb.purchases_if_alive(params, m, x, n) * bgbb.p_alive(params, x, tx, n),
            ref.conditional_expected_number_of_purchases_up_to_time(m, x, tx, n), rtol=1e-10,
        )
    assert fitted.log_likelihood_ == pytest.approx(-33_225.58, abs=0.01)


def test_analytic_gradient():
    rng = np.random.default_rng(2)
    n = rng.integers(1, 12, 60)
    tx = np.floor(rng.uniform(0, 1, 60) * (n + 1)).astype(int)
    x = np.where(tx > 0, rng.integers(1, 50, 60) % np.maximum(tx, 1) + 1, 0)
    w = rng.integers(1, 9, 60)
    data = bgbb.BGBBPatterns(x, tx, n, w)
    for theta in (np.log([1.2, 0.75, 0.66, 2.8]), np.log([0.3, 4.0, 2.0, 0.4])):
        g = data.objective(theta, 0.01)[1]
        num = approx_fprime(theta, lambda th: data.objective(th, 0.01)[0], 1e-7)
        np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-8)


def _enumerate(params, m, x, tx, n, draws=400_000, seed=0):
    """Monte Carlo over (p, θ) given the history, by Bayes with importance weights."""
    a, b, g, d = params
    rng = np.random.default_rng(seed)
    p = rng.beta(a, b, draws)
    th = rng.beta(g, d, draws)
    # likelihood of the history for each draw: alive through n, or dropped out after t_x + i
    alive_n = p**x * (1 - p) ** (n - x) * (1 - th) ** n
    dead = sum(p**x * (1 - p) ** (tx - x + i) * th * (1 - th) ** (tx + i) for i in range(n - tx))
    weight = alive_n + dead
    # no transaction in the next m periods: dead already, or alive j more periods, all quiet
    quiet_alive = sum(th * (1 - th) ** j * (1 - p) ** j for j in range(m))
    quiet_alive = quiet_alive + ((1 - th) * (1 - p)) ** m
    no_purchase = (dead + alive_n * quiet_alive) / weight
    return float(np.average(no_purchase, weights=weight)), float(np.average(alive_n / weight,
                                                                           weights=weight))


@pytest.mark.parametrize(("x", "tx", "n", "m"), [(0, 0, 6, 1), (2, 4, 6, 3), (6, 6, 6, 2)])
def test_prob_no_purchase_and_p_alive_against_monte_carlo(x, tx, n, m):
    params = tuple(PUBLISHED.values())
    no_mc, alive_mc = _enumerate(params, m, x, tx, n)
    assert bgbb.prob_no_purchase(params, m, [x], [tx], [n])[0] == pytest.approx(no_mc, abs=3e-3)
    assert bgbb.p_alive(params, [x], [tx], [n])[0] == pytest.approx(alive_mc, abs=3e-3)


def test_bad_period_tables_are_named():
    bad = pd.DataFrame({"frequency": [3], "recency": [2], "periods": [6]})
    with pytest.raises(CXDataError, match="frequency <= recency"):
        CLVModel(model="bgbb").fit(bad)
    half = pd.DataFrame({"frequency": [1], "recency": [2.5], "periods": [6]})
    with pytest.raises(CXDataError, match="whole periods"):
        CLVModel(model="bgbb").fit(half)
    model = CLVModel(model="bgbb").fit(load_donations())
    with pytest.raises(CXDataError, match="period_days"):
        model.predict(load_donations(), horizon_days=365)
    with pytest.raises(CXDataError, match="period_days must be"):
        CLVModel(model="bgbb", period_days=0).fit(load_donations())


# -- from transactions -----------------------------------------------------------------------
def test_period_histories_equal_a_hand_count_and_fit_through_the_cli(tmp_path):
    import json

    import polars as pl
    from typer.testing import CliRunner

    from cx_models.cli import app
    from cx_models.period_features import period_features
    from cx_models.schemas import validate_transactions
    from cx_models.synthetic import generate_customer_base

    base = generate_customer_base(2_000, seed=4)
    tx = validate_transactions(base.transactions, as_of="2025-12-31").data
    table = period_features(tx, as_of="2025-12-31", period_days=91)
    assert len(table) == tx["customer_id"].n_unique()  # every customer, none dropped
    assert ((table["frequency"] <= table["recency"]) & (table["recency"] <= table["T"])).all()
    # by hand for 40 customers: periods of 91 days from the first purchase day
    import datetime as dt

    days = tx.with_columns(pl.col("timestamp").dt.date().alias("day")).to_pandas()
    days["day"] = pd.to_datetime(days["day"]).dt.date
    end = dt.date(2025, 12, 31)
    for cid in table["customer_id"].iloc[::50]:
        own = days[days["customer_id"] == cid]
        first = own["day"].min()
        n = max((end - first).days + 1, 0) // 91 - 1
        k = own["day"].map(lambda d, f=first: (d - f).days // 91)
        seen = k[(k >= 1) & (k <= n)]
        row = table.set_index("customer_id").loc[cid]
        assert row["T"] == max(n, 0)
        assert row["frequency"] == seen.nunique()
        assert row["recency"] == (seen.max() if len(seen) else 0)
    path = tmp_path / "tx.parquet"
    base.transactions.write_parquet(path)
    runner = CliRunner()
    res = runner.invoke(app, ["clv", "fit", "--transactions", str(path), "--as-of", "2025-12-31",
                              "--period-days", "91", "--out", str(tmp_path / "bgbb.json")])
    assert res.exit_code == 0, res.stderr
    model = json.loads((tmp_path / "bgbb.json").read_text())
    assert model["model"] == "bgbb" and model["settings"]["period_days"] == 91
    assert set(model["params"]) == set(PUBLISHED) and model["spend_params"]
    out = tmp_path / "pred.parquet"
    res = runner.invoke(app, ["clv", "predict", "--transactions", str(path), "--as-of",
                              "2025-12-31", "--model-file", str(tmp_path / "bgbb.json"),
                              "--horizon-days", "182", "--out", str(out)])
    assert res.exit_code == 0, res.stderr
    pred = pd.read_parquet(out)
    assert len(pred) == len(table) and pred["clv"].ge(0).all()
    res = runner.invoke(app, ["clv", "fit", "--transactions", str(path), "--as-of", "2025-12-31",
                              "--clv-model", "bgbb", "--out", str(tmp_path / "x.json")])
    assert res.exit_code != 0 and "give --period-days" in res.stderr
