import json
import warnings

import mpmath as mp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import approx_fprime

from cx_models.datasets import load_cdnow, load_cdnow_summary
from cx_models.errors import CXDataError, NotFittedError
from cx_models.features import build_customer_features
from cx_models.models import bgnbd, gamma_gamma
from cx_models.models.clv import DAYS_PER_MONTH, CLVModel

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter

PUBLISHED = (0.243, 4.414, 0.793, 2.426)


@pytest.fixture(scope="module")
def cdnow():
    return load_cdnow_summary()


@pytest.fixture(scope="module")
def fitted(cdnow):
    return CLVModel().fit(cdnow)


# -- published figures ------------------------------------------------------------------------
def test_bgnbd_published_estimates(fitted):
    got = [fitted.params_[k] for k in ("r", "alpha", "a", "b")]
    np.testing.assert_allclose(got, PUBLISHED, atol=6e-4)
    assert fitted.log_likelihood_ == pytest.approx(-9582.4, abs=0.05)
    assert fitted.time_unit_ == "W"
    assert fitted.n_customers_ == 2357


def test_gamma_gamma_published_estimates(fitted):
    assert fitted.n_repeat_customers_ == 946
    assert fitted.spend_params_["p"] == pytest.approx(6.25, abs=0.005)
    assert fitted.spend_params_["q"] == pytest.approx(3.74, abs=0.005)
    assert fitted.spend_params_["v"] == pytest.approx(15.44, abs=0.01)


def test_customer_one_expects_1_226_purchases_in_39_weeks(fitted, cdnow):
    pred = fitted.predict(cdnow.head(1), horizon_days=39 * 7)
    assert pred["expected_purchases"].iloc[0] == pytest.approx(1.226, abs=5e-4)


def test_features_from_raw_cdnow_give_the_same_fit(fitted):
    sample = load_cdnow("sample")
    features = build_customer_features(sample, as_of="1997-09-30", time_unit="W")
    ours = CLVModel().fit(features)
    for k, v in fitted.params_.items():
        assert ours.params_[k] == pytest.approx(v, rel=2e-3)  # the summary file is rounded


# -- held to lifetimes ------------------------------------------------------------------------
def test_weighted_fit_equals_lifetimes_row_by_row(cdnow, fitted):
    ref = BetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    for k in ("r", "alpha", "a", "b"):
        assert fitted.params_[k] == pytest.approx(ref.params_[k], rel=1e-5)
        assert fitted.standard_errors_[k] == pytest.approx(ref.standard_errors_[k], rel=1e-4)
    ref_engine = CLVModel(engine="lifetimes").fit(cdnow)
    for k in ("r", "alpha", "a", "b", "p", "q", "v"):
        both = {**fitted.params_, **fitted.spend_params_}
        ref_both = {**ref_engine.params_, **ref_engine.spend_params_}
        assert both[k] == pytest.approx(ref_both[k], rel=1e-4)


def test_gamma_gamma_equals_lifetimes(cdnow, fitted):
    rep = cdnow[cdnow["frequency"] > 0]
    ref = GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
    for k in ("p", "q", "v"):
        assert fitted.spend_params_[k] == pytest.approx(ref.params_[k], rel=1e-4)


def test_log_likelihood_matches_lifetimes_and_is_sum_of_rows(cdnow, fitted):
    params = np.array([fitted.params_[k] for k in ("r", "alpha", "a", "b")])
    x, tx, T = (cdnow[c].to_numpy() for c in ("frequency", "recency", "T"))
    rows = bgnbd.bgnbd_loglik(params, x, tx, T)
    assert rows.sum() == pytest.approx(fitted.log_likelihood_, rel=1e-12)
    ref = -BetaGeoFitter._negative_log_likelihood(np.log(params), x, tx, T, np.ones_like(T), 0)
    assert rows.mean() == pytest.approx(ref, rel=1e-12)
    mb = bgnbd.bgnbd_loglik(params, x, tx, T, model="mbgnbd")
    ref_mb = -ModifiedBetaGeoFitter._negative_log_likelihood(
        np.log(params), x, tx, T, np.ones_like(T), 0
    )
    assert mb.mean() == pytest.approx(ref_mb, rel=1e-12)


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd"])
def test_analytic_gradients(model):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 30, 50)
    T = rng.uniform(1, 5, 50)
    tx = np.where(x > 0, T * rng.uniform(0, 1, 50), 0.0)
    w = rng.integers(1, 5, 50)
    theta = np.log([0.5, 2.0, 0.8, 3.0])
    g = bgnbd.bgnbd_objective(theta, x, tx, T, w, 0.01, model)[1]
    num = approx_fprime(
        theta, lambda th: bgnbd.bgnbd_objective(th, x, tx, T, w, 0.01, model)[0], 1e-7
    )
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-7)
    m = rng.gamma(5, 5, 50)
    xs = np.maximum(x, 1)
    theta = np.log([3.0, 2.0, 10.0])
    g = gamma_gamma.gg_objective(theta, xs, m, w, 0.01)[1]
    num = approx_fprime(theta, lambda th: gamma_gamma.gg_objective(th, xs, m, w, 0.01)[0], 1e-7)
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-7)


def test_mbgnbd_fit_equals_lifetimes(cdnow):
    ours = CLVModel(model="mbgnbd").fit(cdnow)
    ref = ModifiedBetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    for k in ("r", "alpha", "a", "b"):
        assert ours.params_[k] == pytest.approx(ref.params_[k], rel=1e-4)


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd"])
def test_predictions_equal_lifetimes_formulas(cdnow, model):
    m = CLVModel(model=model).fit(cdnow)
    cls = BetaGeoFitter if model == "bgnbd" else ModifiedBetaGeoFitter
    ref = cls()
    ref.params_ = pd.Series(m.params_)
    x, tx, T = (cdnow[c].to_numpy() for c in ("frequency", "recency", "T"))
    pred = m.predict(cdnow, horizon_days=52 * 7)
    np.testing.assert_allclose(
        pred["p_alive"], ref.conditional_probability_alive(x, tx, T), rtol=1e-10
    )
    np.testing.assert_allclose(
        pred["expected_purchases"],
        ref.conditional_expected_number_of_purchases_up_to_time(52, x, tx, T),
        rtol=1e-8,
    )
    gg = GammaGammaFitter()
    gg.params_ = pd.Series(m.spend_params_)
    rep = x > 0
    np.testing.assert_allclose(
        pred["expected_order_value"][rep],
        gg.conditional_expected_average_profit(x[rep], cdnow["monetary_value"].to_numpy()[rep]),
        rtol=1e-12,
    )


# -- extreme customers --------------------------------------------------------------------------
def _mp_expected(params, t, x, tx, T):
    """E[Y(t) | x, t_x, T] for BG/NBD from the published formula, in 60-digit arithmetic."""
    mp.mp.dps = 60
    r, alpha, a, b = (mp.mpf(v) for v in params)
    x, tx, T, t = mp.mpf(x), mp.mpf(tx), mp.mpf(T), mp.mpf(t)
    hyp = mp.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    num = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    den = 1 + (x > 0) * (a / (b + x - 1)) * ((alpha + T) / (alpha + tx)) ** (r + x)
    return float(num / den)


def _mp_alive(params, x, tx, T):
    mp.mp.dps = 60
    r, alpha, a, b = (mp.mpf(v) for v in params)
    if x == 0:
        return 1.0
    x, tx, T = mp.mpf(x), mp.mpf(tx), mp.mpf(T)
    return float(1 / (1 + (a / (b + x - 1)) * ((alpha + T) / (alpha + tx)) ** (r + x)))


@pytest.mark.parametrize(
    ("x", "tx", "T", "t"),
    [
        (3000, 3650.0, 3650.0, 365.0),
        (3000, 3650.0, 3650.0, 3650.0),
        (3000, 3000.0, 3650.0, 30.0),
        (500, 3649.0, 3650.0, 365.0),
        (0, 0.0, 3650.0, 3650.0),
        (1, 1.0, 3650.0, 1.0),
        (40, 100.0, 3650.0, 365.0),
    ],
)
def test_extreme_customers_finite_and_exact(x, tx, T, t):
    params = (0.243, 4.414 * 7, 0.793, 2.426)  # CDNOW, alpha in days
    got = bgnbd.conditional_expected_purchases(params, t, [x], [tx], [T])[0]
    alive = bgnbd.p_alive(params, [x], [tx], [T])[0]
    assert np.isfinite(got) and np.isfinite(alive)
    assert got == pytest.approx(_mp_expected(params, t, x, tx, T), rel=1e-9, abs=1e-300)
    assert alive == pytest.approx(_mp_alive(params, x, tx, T), rel=1e-9, abs=1e-300)
    no = bgnbd.prob_no_purchase(params, t, [x], [tx], [T])[0]
    assert 0 <= no <= 1


# -- invariants ---------------------------------------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(
    x=st.integers(0, 3000),
    frac=st.floats(0, 1),
    T=st.floats(0.5, 3650),
    horizon=st.floats(1, 3650),
    spend=st.floats(0.01, 1e4),
)
def test_prediction_invariants(fitted, x, frac, T, horizon, spend):
    tx = 0.0 if x == 0 else frac * T
    table = pd.DataFrame(
        {"frequency": [x], "recency": [tx], "T": [T], "monetary_value": [spend if x else 0.0]}
    )
    table.attrs["time_unit"] = "D"
    pred = fitted.predict(table, horizon_days=horizon).iloc[0]
    assert 0 <= pred["p_alive"] <= 1
    assert 0 <= pred["prob_no_purchase"] <= 1
    assert pred["expected_purchases"] >= 0 and np.isfinite(pred["expected_purchases"])
    assert pred["clv"] >= 0 and np.isfinite(pred["clv"])
    if x:
        richer = table.assign(monetary_value=spend * 2)
        assert fitted.predict(richer, horizon_days=horizon)["clv"].iloc[0] >= pred["clv"]


def test_clv_definition_by_hand(fitted, cdnow):
    row = cdnow.iloc[[0]]
    pred = fitted.predict(row, horizon_days=7, clv_months=3, discount_rate=0.12).iloc[0]
    params = [fitted.params_[k] for k in ("r", "alpha", "a", "b")]
    x, tx, T = (row[c].to_numpy() for c in ("frequency", "recency", "T"))
    ends = [
        bgnbd.conditional_expected_purchases(params, m * DAYS_PER_MONTH / 7, x, tx, T)[0]
        for m in range(4)
    ]
    by_hand = sum((ends[m] - ends[m - 1]) * 1.12 ** (-m / 12) for m in (1, 2, 3))
    assert pred["clv"] == pytest.approx(by_hand * pred["expected_order_value"], rel=1e-12)


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd"])
def test_once_per_frequency_and_age_equals_customer_by_customer(cdnow, model):
    # predictions are evaluated once per distinct (frequency, T); the same pairs with other
    # recencies, in shuffled order, must give what each customer's own formula gives
    m = CLVModel(model=model).fit(cdnow)
    again = cdnow.assign(recency=cdnow["recency"] * 0.5)
    table = pd.concat([cdnow, again], ignore_index=True).sample(frac=1.0, random_state=3)
    pairs = table[["frequency", "T"]].drop_duplicates()
    assert len(pairs) < len(table) / 2
    pred = m.predict(table, horizon_days=70, clv_months=6, discount_rate=0.08)
    params = [m.params_[k] for k in ("r", "alpha", "a", "b")]
    x, tx, T = (table[c].to_numpy() for c in ("frequency", "recency", "T"))
    expected = bgnbd.conditional_expected_purchases(params, 10.0, x, tx, T, model=model)
    np.testing.assert_allclose(pred["expected_purchases"], expected, rtol=1e-12)
    ends = [
        bgnbd.conditional_expected_purchases(params, mo * DAYS_PER_MONTH / 7, x, tx, T, model=model)
        for mo in range(7)
    ]
    by_hand = sum((ends[mo] - ends[mo - 1]) * 1.08 ** (-mo / 12) for mo in range(1, 7))
    np.testing.assert_allclose(
        pred["clv"], np.clip(by_hand, 0, None) * pred["expected_order_value"], rtol=1e-11
    )


def test_days_or_weeks_same_predictions():
    sample = load_cdnow("sample")
    d = build_customer_features(sample, as_of="1997-09-30", time_unit="D")
    w = build_customer_features(sample, as_of="1997-09-30", time_unit="W")
    md, mw = CLVModel().fit(d), CLVModel().fit(w)
    assert md.params_["alpha"] == pytest.approx(7 * mw.params_["alpha"], rel=1e-5)
    assert md.params_["r"] == pytest.approx(mw.params_["r"], rel=1e-5)
    pd_, pw = md.predict(d, horizon_days=90), mw.predict(w, horizon_days=90)
    for col in ("p_alive", "expected_purchases", "prob_no_purchase", "clv"):
        np.testing.assert_allclose(pd_[col], pw[col], rtol=1e-4, err_msg=col)
    # a model converts a table in the other unit
    np.testing.assert_allclose(md.predict(w, horizon_days=90)["clv"], pd_["clv"], rtol=1e-10)


def test_one_time_buyers_are_alive_under_bgnbd(fitted, cdnow):
    pred = fitted.predict(cdnow, horizon_days=30)
    once = cdnow["frequency"].to_numpy() == 0
    assert (pred["p_alive"][once] == 1).all()
    pop_mean = gamma_gamma.gg_expected_spend(list(fitted.spend_params_.values()), [0], [0])[0]
    np.testing.assert_allclose(pred["expected_order_value"][once], pop_mean)


# -- persistence and errors ---------------------------------------------------------------------
def test_json_round_trip(tmp_path, fitted, cdnow):
    path = fitted.save(tmp_path / "clv.json")
    data = json.loads(path.read_text())
    assert data["time_unit"] == "W" and set(data["params"]) == {"r", "alpha", "a", "b"}
    back = CLVModel.load(path)
    pd.testing.assert_frame_equal(
        back.predict(cdnow, horizon_days=100), fitted.predict(cdnow, horizon_days=100)
    )


def test_errors(cdnow):
    with pytest.raises(NotFittedError, match="call fit"):
        CLVModel().predict(cdnow, horizon_days=10)
    with pytest.raises(CXDataError, match="'monetary_value'"):
        CLVModel().fit(cdnow.drop(columns="monetary_value"))
    bad = cdnow.copy()
    bad.loc[0, "recency"] = bad.loc[0, "T"] + 1
    with pytest.raises(CXDataError, match="recency must be <= T"):
        CLVModel().fit(bad)
    with pytest.raises(CXDataError, match="model must be"):
        CLVModel(model="pareto").fit(cdnow)
    with pytest.raises(CXDataError, match="horizon_days"):
        CLVModel().fit(cdnow).predict(cdnow, horizon_days=0)
    with pytest.raises(CXDataError, match="not found"):
        CLVModel.load("/nonexistent/clv.json")


# -- parameter recovery -------------------------------------------------------------------------
def _continuous_rfm(base):
    """Exact (frequency, recency, T) in fractional days, one row per customer.

    The generator's purchases happen in continuous time; the day-level feature
    table merges same-day purchases (about 2.5 % of them at the defaults), which
    biases r upward by a few percent. Recovery is tested on the process itself.
    """
    import datetime as dt

    import polars as pl

    end = dt.datetime(2026, 1, 1)
    g = (
        base.transactions.sort("timestamp")
        .group_by("customer_id")
        .agg(
            pl.len().alias("n"),
            pl.col("timestamp").first().alias("first"),
            pl.col("timestamp").last().alias("last"),
            pl.col("amount").sum().alias("total"),
            pl.col("amount").first().alias("first_amount"),
        )
    )
    frame = pd.DataFrame(
        {
            "frequency": (g["n"] - 1).to_numpy(),
            "recency": ((g["last"] - g["first"]).dt.total_seconds() / 86400).to_numpy(),
            "T": ((end - g["first"]).dt.total_seconds() / 86400).to_numpy(),
            "monetary_value": np.where(
                g["n"] > 1, (g["total"] - g["first_amount"]) / np.maximum(g["n"] - 1, 1), 0.0
            ),
        }
    )
    frame.attrs["time_unit"] = "D"
    return frame


def test_recovers_synthetic_parameters():
    from cx_models.synthetic import SyntheticParams, generate_customer_base

    truth = SyntheticParams()
    base = generate_customer_base(30_000, seed=3)
    m = CLVModel().fit(_continuous_rfm(base))
    for k in ("r", "alpha", "a", "b"):
        lo = m.params_[k] - 1.96 * m.standard_errors_[k]
        hi = m.params_[k] + 1.96 * m.standard_errors_[k]
        assert lo <= getattr(truth, k) <= hi, (k, m.params_[k], m.standard_errors_[k])
    spend_truth = {"p": truth.p_spend, "q": truth.q, "v": truth.gamma}
    for k, v in spend_truth.items():
        se = m.standard_errors_[k]
        assert abs(m.spend_params_[k] - v) <= 1.96 * se, (k, m.spend_params_[k], se)


def test_constant_spend_fails_with_a_clear_convergence_error(cdnow):
    from cx_models.errors import ConvergenceError

    flat = cdnow.assign(monetary_value=np.where(cdnow["frequency"] > 0, 10.0, 0.0))
    flat.attrs = dict(cdnow.attrs)
    with pytest.raises(
        ConvergenceError,
        match=r"Gamma-Gamma.*946 customers.*"
        r"penalizer",
    ):
        CLVModel().fit(flat)


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd"])
def test_fast_pattern_objectives_equal_the_reference(model):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 60, 300)
    T = rng.integers(1, 700, 300).astype(float)
    tx = np.where(x > 0, np.floor(T * rng.uniform(0, 1, 300)), 0.0)
    w = rng.integers(1, 9, 300)
    data = bgnbd.BGNBDPatterns(x, tx, T, w, model=model)
    for theta in (np.log([0.5, 20, 0.8, 3]), np.log([2, 100, 1.5, 9])):
        fast, ref = (
            data.objective(theta, 0.01),
            bgnbd.bgnbd_objective(theta, x, tx, T, w, 0.01, model),
        )
        assert fast[0] == pytest.approx(ref[0], rel=1e-12)
        np.testing.assert_allclose(fast[1], ref[1], rtol=1e-10, atol=1e-12)
    m = rng.gamma(5, 5, 300)
    xs = np.maximum(x, 1)
    spend = gamma_gamma.GammaGammaPatterns(xs, m, w)
    for theta in (np.log([6, 2.7, 15]), np.log([1, 0.5, 3])):
        fast, ref = spend.objective(theta, 0.01), gamma_gamma.gg_objective(theta, xs, m, w, 0.01)
        assert fast[0] == pytest.approx(ref[0], rel=1e-12)
        np.testing.assert_allclose(fast[1], ref[1], rtol=1e-10, atol=1e-12)


def test_purchases_if_alive_when_the_hypergeometric_term_is_negative():
    """a + b < 1 and x = 0 make c < 0 (seen on early CDNOW snapshots): no NaN, exact value."""
    r, alpha, a, b = params = (0.3, 5.0, 0.3, 0.5)
    x, T, t = np.array([0.0, 0.0, 1.0]), np.array([30.0, 60.0, 60.0]), 91.0
    got = bgnbd.purchases_if_alive(params, t, x, T)
    for xi, Ti, value in zip(x, T, got, strict=True):
        z = mp.mpf(t) / (alpha + Ti + t)
        c = a + b + xi - 1
        ref = c / (a - 1) * (1 - (1 - z) ** (a - 1) * mp.hyp2f1(a + b - 1 - r, a - 1, c, z))
        assert value == pytest.approx(float(ref), rel=1e-12)
