"""Pareto/NBD: published CDNOW figures, exactness against mpmath, gradients, recovery, lifetimes."""

import warnings

import mpmath as mp
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import approx_fprime

from cx_models.datasets import load_cdnow_summary
from cx_models.errors import CXDataError
from cx_models.models import bgnbd, pareto_nbd
from cx_models.models.clv import CLVModel

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from lifetimes import ParetoNBDFitter

# Fader, Hardie & Lee (2005), "A note on deriving the Pareto/NBD model", CDNOW summary, weeks
PUBLISHED = {"r": 0.553, "alpha": 10.58, "s": 0.606, "beta": 11.67}
PUBLISHED_LL = -9594.97


@pytest.fixture(scope="module")
def cdnow():
    return load_cdnow_summary()


@pytest.fixture(scope="module")
def fitted(cdnow):
    return CLVModel(model="pnbd").fit(cdnow)


def test_published_estimates_and_log_likelihood(fitted):
    assert fitted.log_likelihood_ == pytest.approx(PUBLISHED_LL, abs=0.01)
    for name, value in PUBLISHED.items():
        assert fitted.params_[name] == pytest.approx(value, rel=1e-3), name
    assert list(fitted.params_) == ["r", "alpha", "s", "beta"]
    assert all(se > 0 for se in fitted.standard_errors_.values())


def test_published_customer_26_purchases_in_31_weeks(fitted):
    one = pd.DataFrame({"frequency": [26], "recency": [30.86], "T": [31.0],
                        "monetary_value": [40.0]})
    one.attrs["time_unit"] = "W"
    pred = fitted.predict(one, horizon_days=52 * 7)
    assert pred["expected_purchases"].iloc[0] == pytest.approx(25.46, abs=0.005)
    assert pred["p_alive"].iloc[0] == pytest.approx(0.998, abs=0.0005)


# -- exact against mpmath ------------------------------------------------------------------------
def _mp_loglik(params, x, tx, T):
    """The closed form with the Gauss hypergeometric function (Fader, Hardie & Lee 2005)."""
    mp.mp.dps = 50
    r, a, s, b = (mp.mpf(v) for v in params)
    x, tx, T = mp.mpf(x), mp.mpf(tx), mp.mpf(T)
    first = (a + T) ** (-(r + x)) * (b + T) ** (-s)
    k = r + s + x
    if a >= b:
        def term(t):
            return mp.hyp2f1(k, s + 1, k + 1, (a - b) / (a + t)) / (a + t) ** k
    else:
        def term(t):
            return mp.hyp2f1(k, r + x, k + 1, (b - a) / (b + t)) / (b + t) ** k
    total = first + s / k * (term(tx) - term(T))
    ll = mp.loggamma(r + x) - mp.loggamma(r) + r * mp.log(a) + s * mp.log(b) + mp.log(total)
    return float(ll), float(first / total)


CDNOW_DAYS = (0.5533, 10.5776 * 7, 0.6062, 11.6679 * 7)


@pytest.mark.parametrize("params", [CDNOW_DAYS, (0.2, 0.01, 3.0, 500.0), (3.0, 0.5, 0.3, 0.5),
                                    (0.05, 1.0, 0.05, 1.5), (5.0, 200.0, 0.05, 20.0)])
@pytest.mark.parametrize(("x", "tx", "T"), [(3000, 3600.0, 3650.0), (3000, 3650.0, 3650.0),
                                            (0, 0.0, 3650.0), (5, 1.0, 3650.0),
                                            (1, 38.0, 38.0), (100, 100.0, 3650.0),
                                            (2, 213.0, 272.0)])
def test_log_likelihood_and_p_alive_exact_for_extreme_customers(params, x, tx, T):
    ll = pareto_nbd.pnbd_loglik(params, [x], [tx], [T])[0]
    alive = pareto_nbd.p_alive(params, [x], [tx], [T])[0]
    ref_ll, ref_alive = _mp_loglik(params, x, tx, T)
    assert np.isfinite(ll) and 0.0 <= alive <= 1.0
    assert ll == pytest.approx(ref_ll, rel=1e-9, abs=1e-9)
    assert alive == pytest.approx(ref_alive, rel=1e-8, abs=1e-12)


@pytest.mark.parametrize(("x", "tx", "T", "t"), [(0, 0.0, 3650.0, 365.0),
                                                 (26, 216.0, 217.0, 364.0),
                                                 (3000, 3600.0, 3650.0, 30.0),
                                                 (4, 10.0, 700.0, 90.0)])
def test_horizon_probabilities_exact(x, tx, T, t):
    r, a, s, b = CDNOW_DAYS
    mp.mp.dps = 40
    # P(no purchase | alive): 1 - ∫_0^t (r+x)/(a+T) (1+v/(a+T))^-(r+x+1) (1+v/(b+T))^-s dv
    first = mp.quad(lambda v: (r + x) / (a + T) * (1 + v / (a + T)) ** (-(r + x + 1))
                    * (1 + v / (b + T)) ** (-s), mp.linspace(0, t, 30))
    alive = _mp_loglik(CDNOW_DAYS, x, tx, T)[1]
    expected = 1 - alive * float(first)
    got = pareto_nbd.prob_no_purchase(CDNOW_DAYS, t, [x], [tx], [T])[0]
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
    later = pareto_nbd.p_alive_at(CDNOW_DAYS, t, [x], [tx], [T])[0]
    assert later == pytest.approx(alive * ((b + T) / (b + T + t)) ** s, rel=1e-9, abs=1e-300)
    # expected purchases: the published closed form, and its s = 1 limit is continuous
    e = pareto_nbd.conditional_expected_purchases(CDNOW_DAYS, t, [x], [tx], [T])[0]
    bracket = 1 - ((b + T) / (b + T + t)) ** (s - 1)
    closed = alive * (r + x) * (b + T) / ((a + T) * (s - 1)) * bracket
    assert e == pytest.approx(closed, rel=1e-9, abs=1e-300)
    near = pareto_nbd.purchases_if_alive((r, a, 1.0 + 1e-9, b), t, [x], [T])
    at = pareto_nbd.purchases_if_alive((r, a, 1.0, b), t, [x], [T])
    np.testing.assert_allclose(near, at, rtol=1e-7)


def test_analytic_gradient():
    rng = np.random.default_rng(0)
    n = 200
    x = rng.integers(0, 40, n)
    T = rng.uniform(1, 5, n)
    tx = np.where(x > 0, T * rng.uniform(0, 1, n), 0.0)
    w = rng.integers(1, 5, n)
    data = pareto_nbd.ParetoNBDPatterns(x, tx, T, w)
    for theta in (np.log([0.5, 2.0, 0.8, 3.0]), np.log([2.0, 0.3, 0.2, 9.0])):
        g = data.objective(theta, 0.01)[1]
        num = approx_fprime(theta, lambda th: data.objective(th, 0.01)[0], 1e-7)
        np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-7)
    ll, d = pareto_nbd.pnbd_loglik(np.exp(theta), x, tx, T, grad=True)
    assert d.shape == (4, n)
    assert data.objective(theta)[0] == pytest.approx(-(w @ ll) / w.sum(), rel=1e-12)


# -- recovery and the reference ------------------------------------------------------------------
def _simulate(n, params, T_max, seed):
    """Simulate Pareto/NBD customers: Poisson purchases at rate λ until an exponential death."""
    r, alpha, s, beta = params
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    T = rng.uniform(0.5, 1.0, n) * T_max
    alive_for = np.minimum(rng.exponential(1.0 / mu), T)
    x = rng.poisson(lam * alive_for)
    # given x purchases in (0, alive_for], they are uniform: t_x is the largest
    tx = np.where(x > 0, alive_for * rng.beta(np.maximum(x, 1), 1.0), 0.0)
    spend = rng.gamma(4.0, 10.0, n)  # any positive order values: the spend model is not tested here
    return pd.DataFrame({"frequency": x, "recency": tx, "T": T, "monetary_value": spend})


@pytest.mark.slow  # ~4 s; CI runs the slow tests
def test_recovers_simulated_parameters():
    truth = {"r": 0.8, "alpha": 12.0, "s": 0.7, "beta": 30.0}
    data = _simulate(12_000, tuple(truth.values()), 100.0, seed=11)
    m = CLVModel(model="pnbd").fit(data)
    for k, v in truth.items():
        z = (m.params_[k] - v) / m.standard_errors_[k]
        assert abs(z) < 2.5, (k, m.params_[k], m.standard_errors_[k])


def test_at_least_lifetimes_likelihood_and_same_predictions(cdnow, fitted):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ParetoNBDFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    x, tx, T = (cdnow[c].to_numpy() for c in ("frequency", "recency", "T"))
    theirs = pareto_nbd.pnbd_loglik(tuple(ref.params_[k] for k in PUBLISHED), x, tx, T).sum()
    assert fitted.log_likelihood_ >= theirs - 1e-6 * abs(theirs)
    for k in PUBLISHED:
        assert fitted.params_[k] == pytest.approx(ref.params_[k], rel=1e-3)
    # at the same parameters, the same conditional predictions as lifetimes' closed forms
    ref.params_ = pd.Series(fitted.params_)
    pred = fitted.predict(cdnow, horizon_days=39 * 7)
    np.testing.assert_allclose(pred["p_alive"], ref.conditional_probability_alive(x, tx, T),
                               rtol=1e-7)
    np.testing.assert_allclose(
        pred["expected_purchases"],
        ref.conditional_expected_number_of_purchases_up_to_time(39, x, tx, T),
        rtol=1e-7,
    )


def test_json_round_trip_and_model_errors(tmp_path, fitted, cdnow):
    back = CLVModel.load(fitted.save(tmp_path / "pnbd.json"))
    assert back.model == "pnbd" and back.params_ == fitted.params_
    a = fitted.predict(cdnow, horizon_days=90)
    b = back.predict(cdnow, horizon_days=90)
    pd.testing.assert_frame_equal(a, b)
    assert ((a["prob_no_purchase"] >= 0) & (a["prob_no_purchase"] <= 1)).all()
    assert (a["clv"] >= 0).all() and np.isfinite(a["clv"]).all()
    with pytest.raises(CXDataError, match="model must be one of bgnbd, mbgnbd, pnbd"):
        CLVModel(model="pareto").fit(cdnow)


@pytest.mark.parametrize(("x", "tx", "T", "t"), [(2, 30.43, 38.86, 52.0), (0, 0.0, 38.86, 10.0),
                                                 (40, 38.0, 39.0, 100.0)])
def test_bgnbd_p_alive_at_a_future_day_by_quadrature(x, tx, T, t):
    """BG/NBD: P(alive at T + t) = P(alive at T) E[(1 + p t/(α+T))^-(r+x)], p ~ Beta(a, b+x)."""
    params = (0.243, 4.414, 0.793, 2.426)
    r, alpha, a, b = params
    mp.mp.dps = 30

    def integrand(p):
        density = p ** (a - 1) * (1 - p) ** (b + x - 1) / mp.beta(a, b + x)
        return density * (1 + p * t / (alpha + T)) ** (-(r + x))

    survive = mp.quad(integrand, [0, 1])
    alive = bgnbd.p_alive(params, [x], [tx], [T])[0]
    got = bgnbd.p_alive_at(params, t, [x], [tx], [T])[0]
    assert got == pytest.approx(alive * float(survive), rel=1e-9)
    assert bgnbd.p_alive_at(params, 0.0, [x], [tx], [T])[0] == pytest.approx(alive)


@pytest.mark.slow  # default suite under two minutes; CI runs it
def test_churn_snapshots_and_the_forward_evaluation_use_the_configured_model():
    from cx_models.churn_data import training_snapshots
    from cx_models.churn_eval import evaluate_churn
    from cx_models.schemas import validate_transactions
    from cx_models.settings import SnapshotPlan
    from cx_models.synthetic import generate_customer_base

    base = generate_customer_base(3_000, seed=5)
    tx = validate_transactions(base.transactions, as_of="2025-12-31").data
    plan = SnapshotPlan(horizon_days=90, max_snapshots=2, clv_model="pnbd")
    snaps = training_snapshots(tx, None, as_of="2025-12-31", plan=plan)
    one_timers = (snaps["frequency"] == 0) & (snaps["T"] > 0)  # T = 0: just acquired
    # BG/NBD gives every one-time buyer P(alive) = 1; Pareto/NBD lets them drop out
    assert one_timers.any() and (snaps.loc[one_timers, "p_alive"] < 1).all()
    bg = training_snapshots(tx, None, as_of="2025-12-31",
                            plan=SnapshotPlan(horizon_days=90, max_snapshots=2))
    assert (bg.loc[bg["frequency"] == 0, "p_alive"] == 1).all()
    report = evaluate_churn(tx, None, as_of="2025-12-31", plan=plan)
    assert {"bgnbd_prob_no_purchase", "pnbd_prob_no_purchase"} <= set(report["metrics"])
    assert report["metrics"]["pnbd_prob_no_purchase"]["roc_auc"] > 0.8
    with pytest.raises(CXDataError, match="model must be one of"):
        SnapshotPlan(clv_model="nbd")
